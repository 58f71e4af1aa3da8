//! Fidelity of synthetic data against real data, with SDMetrics' QualityReport definitions, and rule
//! validity of every synthetic row.
//!
//! - Column shapes: 1 − KS statistic for numeric columns, 1 − total-variation distance for categorical.
//! - Column-pair trends: 1 − |r_real − r_synth| / 2 (Pearson) for two numeric columns; otherwise
//!   1 − TVD of the pair's joint frequencies, numeric columns cut into 10 equal-width bins over the real
//!   range (open at both ends).
//! - Overall: the mean of the two scores.
//!
//! Numeric columns are latitude, longitude, tenure_months, monthly_charges and total_charges; the other
//! 21 of the 26 (zip code included, as the identifier it is) are categorical.

use std::collections::{HashMap, HashSet};

use churn_core::{AddOn, Customer, Field, InternetService, MultipleLines, YesNo};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::Serialize;

use crate::model::charge_ratio;

const NUMERIC: [Field; 5] = [
    Field::Latitude,
    Field::Longitude,
    Field::TenureMonths,
    Field::MonthlyCharges,
    Field::TotalCharges,
];
const BINS: usize = 10;

/// One column's shape score.
#[derive(Debug, Clone, Serialize)]
pub struct ColumnShape {
    pub column: &'static str,
    pub metric: &'static str,
    pub score: f64,
}

/// One column pair's trend score.
#[derive(Debug, Clone, Serialize)]
pub struct PairTrend {
    pub columns: (&'static str, &'static str),
    pub metric: &'static str,
    pub score: f64,
}

/// Share of synthetic rows passing each rule.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Validity {
    pub rows: usize,
    /// Internet "No" ⇔ all six add-ons "No internet service".
    pub internet_rule: f64,
    /// Phone "No" ⇔ multiple lines "No phone service".
    pub phone_rule: f64,
    /// (zip, city, state, country, latitude, longitude) exists in the real data.
    pub real_location: f64,
    /// total ≈ monthly × tenure within the ratios seen in the real data (0 for new customers).
    pub charges_consistent: f64,
    /// All four rules at once.
    pub all_rules: f64,
    /// Whole-number tenure and numeric values inside the real data's ranges.
    pub in_training_ranges: f64,
    /// Passes the domain crate's validation.
    pub domain_valid: f64,
}

/// The whole fidelity report.
#[derive(Debug, Clone, Serialize)]
pub struct QualityReport {
    pub real_rows: usize,
    pub synthetic_rows: usize,
    pub column_shapes_score: f64,
    pub column_pair_trends_score: f64,
    pub overall_score: f64,
    pub column_shapes: Vec<ColumnShape>,
    pub column_pair_trends: Vec<PairTrend>,
    pub validity: Validity,
}

enum ColumnData {
    Numeric {
        real: Vec<f64>,
        synthetic: Vec<f64>,
    },
    Categorical {
        real: Vec<u32>,
        synthetic: Vec<u32>,
        categories: usize,
    },
}

fn numeric_value(c: &Customer, field: Field) -> f64 {
    match field {
        Field::Latitude => c.latitude,
        Field::Longitude => c.longitude,
        Field::TenureMonths => f64::from(c.tenure_months),
        Field::MonthlyCharges => c.monthly_charges,
        Field::TotalCharges => c.total_charges,
        _ => f64::NAN,
    }
}

fn column_data(field: Field, real: &[Customer], synthetic: &[Customer]) -> ColumnData {
    if NUMERIC.contains(&field) {
        return ColumnData::Numeric {
            real: real.iter().map(|c| numeric_value(c, field)).collect(),
            synthetic: synthetic.iter().map(|c| numeric_value(c, field)).collect(),
        };
    }
    let mut dictionary: HashMap<String, u32> = HashMap::new();
    let mut encode = |c: &Customer| {
        let text = c.field_text(field);
        if let Some(code) = dictionary.get(text.as_ref()) {
            return *code;
        }
        let code = dictionary.len() as u32;
        dictionary.insert(text.into_owned(), code);
        code
    };
    let real_codes: Vec<u32> = real.iter().map(&mut encode).collect();
    let synthetic_codes: Vec<u32> = synthetic.iter().map(&mut encode).collect();
    ColumnData::Categorical {
        real: real_codes,
        synthetic: synthetic_codes,
        categories: dictionary.len(),
    }
}

/// Two-sample KS statistic.
fn ks_statistic(a: &[f64], b: &[f64]) -> f64 {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j, mut d) = (0usize, 0usize, 0.0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / na - j as f64 / nb).abs());
    }
    d
}

fn frequencies(codes: &[u32], categories: usize) -> Vec<f64> {
    let mut f = vec![0.0; categories];
    for c in codes {
        f[*c as usize] += 1.0;
    }
    let n = codes.len().max(1) as f64;
    f.iter_mut().for_each(|v| *v /= n);
    f
}

fn tv_distance(a: &[f64], b: &[f64]) -> f64 {
    0.5 * a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f64>()
}

fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    sxy / (sxx * syy).sqrt()
}

/// Codes of a column for contingency tables: categories as they are, numeric values as 10 bins.
fn discrete_codes(data: &ColumnData) -> (Vec<u32>, Vec<u32>, usize) {
    match data {
        ColumnData::Categorical {
            real,
            synthetic,
            categories,
        } => (real.clone(), synthetic.clone(), *categories),
        ColumnData::Numeric { real, synthetic } => {
            let (low, high) = real
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
                    (l.min(*v), h.max(*v))
                });
            let width = (high - low) / BINS as f64;
            let bin = |v: &f64| {
                if width <= 0.0 {
                    0
                } else {
                    (((v - low) / width).floor().max(0.0) as usize).min(BINS - 1) as u32
                }
            };
            (
                real.iter().map(bin).collect(),
                synthetic.iter().map(bin).collect(),
                BINS,
            )
        }
    }
}

fn contingency_similarity(a: &(Vec<u32>, Vec<u32>, usize), b: &(Vec<u32>, Vec<u32>, usize)) -> f64 {
    let mut joint: HashMap<u64, (f64, f64)> = HashMap::new();
    let key = |x: u32, y: u32| u64::from(x) * b.2 as u64 + u64::from(y);
    for (x, y) in a.0.iter().zip(&b.0) {
        joint.entry(key(*x, *y)).or_default().0 += 1.0;
    }
    for (x, y) in a.1.iter().zip(&b.1) {
        joint.entry(key(*x, *y)).or_default().1 += 1.0;
    }
    let (nr, ns) = (a.0.len().max(1) as f64, a.1.len().max(1) as f64);
    1.0 - 0.5
        * joint
            .values()
            .map(|(r, s)| (r / nr - s / ns).abs())
            .sum::<f64>()
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values
        .filter(|v| v.is_finite())
        .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 { f64::NAN } else { sum / n as f64 }
}

/// Scores synthetic customers against real ones.
pub fn quality(real: &[Customer], synthetic: &[Customer]) -> QualityReport {
    let fields: Vec<Field> = Field::ALL.to_vec();
    let data: Vec<ColumnData> = fields
        .iter()
        .map(|f| column_data(*f, real, synthetic))
        .collect();

    let column_shapes: Vec<ColumnShape> = fields
        .iter()
        .zip(&data)
        .map(|(field, d)| match d {
            ColumnData::Numeric { real, synthetic } => ColumnShape {
                column: field.name(),
                metric: "KSComplement",
                score: 1.0 - ks_statistic(real, synthetic),
            },
            ColumnData::Categorical {
                real,
                synthetic,
                categories,
            } => ColumnShape {
                column: field.name(),
                metric: "TVComplement",
                score: 1.0
                    - tv_distance(
                        &frequencies(real, *categories),
                        &frequencies(synthetic, *categories),
                    ),
            },
        })
        .collect();

    let discrete: Vec<_> = data.iter().map(discrete_codes).collect();
    let mut column_pair_trends = Vec::new();
    for i in 0..fields.len() {
        for j in i + 1..fields.len() {
            let (metric, score) = match (&data[i], &data[j]) {
                (
                    ColumnData::Numeric {
                        real: ra,
                        synthetic: sa,
                    },
                    ColumnData::Numeric {
                        real: rb,
                        synthetic: sb,
                    },
                ) => (
                    "CorrelationSimilarity",
                    1.0 - (pearson(ra, rb) - pearson(sa, sb)).abs() / 2.0,
                ),
                _ => (
                    "ContingencySimilarity",
                    contingency_similarity(&discrete[i], &discrete[j]),
                ),
            };
            column_pair_trends.push(PairTrend {
                columns: (fields[i].name(), fields[j].name()),
                metric,
                score,
            });
        }
    }
    let column_shapes_score = mean(column_shapes.iter().map(|c| c.score));
    let column_pair_trends_score = mean(column_pair_trends.iter().map(|p| p.score));
    QualityReport {
        real_rows: real.len(),
        synthetic_rows: synthetic.len(),
        column_shapes_score,
        column_pair_trends_score,
        overall_score: (column_shapes_score + column_pair_trends_score) / 2.0,
        column_shapes,
        column_pair_trends,
        validity: validity(real, synthetic),
    }
}

/// Checks every synthetic row against the business rules and the real data's locations and ranges.
pub fn validity(real: &[Customer], synthetic: &[Customer]) -> Validity {
    let location_key = |c: &Customer| {
        format!(
            "{}|{}|{}|{}|{}|{}",
            c.zip_code,
            c.city,
            c.state,
            c.country,
            c.latitude.to_bits(),
            c.longitude.to_bits()
        )
    };
    let locations: HashSet<String> = real.iter().map(location_key).collect();
    let ratios = real.iter().filter_map(charge_ratio);
    let (ratio_low, ratio_high) = ratios.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), r| {
        (l.min(r), h.max(r))
    });
    let range = |get: fn(&Customer) -> f64| {
        real.iter()
            .map(get)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
                (l.min(v), h.max(v))
            })
    };
    let tenure_range = range(|c| f64::from(c.tenure_months));
    let monthly_range = range(|c| c.monthly_charges);
    let total_range = range(|c| c.total_charges);

    let (mut internet, mut phone, mut location, mut charges, mut all, mut ranges, mut domain) =
        (0usize, 0usize, 0usize, 0usize, 0usize, 0usize, 0usize);
    for c in synthetic {
        let no_internet = c.internet_service == InternetService::No;
        let internet_ok = c
            .add_ons()
            .iter()
            .all(|a| (*a == AddOn::NoInternetService) == no_internet);
        let phone_ok =
            (c.phone_service == YesNo::No) == (c.multiple_lines == MultipleLines::NoPhoneService);
        let location_ok = locations.contains(&location_key(c));
        let expected = c.monthly_charges * f64::from(c.tenure_months);
        let charges_ok = if expected == 0.0 {
            c.total_charges == 0.0
        } else {
            // Totals are rounded to cents, which may move the ratio by up to half a cent's worth.
            let slack = 0.005 / expected;
            let r = c.total_charges / expected;
            r >= ratio_low - slack && r <= ratio_high + slack
        };
        let within = |v: f64, (l, h): (f64, f64)| v >= l && v <= h;
        let ranges_ok = within(f64::from(c.tenure_months), tenure_range)
            && within(c.monthly_charges, monthly_range)
            && within(c.total_charges, total_range);
        let domain_ok = serde_json::to_value(c)
            .ok()
            .is_some_and(|v| Customer::from_json(&v).is_ok());
        internet += usize::from(internet_ok);
        phone += usize::from(phone_ok);
        location += usize::from(location_ok);
        charges += usize::from(charges_ok);
        all += usize::from(internet_ok && phone_ok && location_ok && charges_ok);
        ranges += usize::from(ranges_ok);
        domain += usize::from(domain_ok);
    }
    let share = |k: usize| k as f64 / synthetic.len().max(1) as f64;
    Validity {
        rows: synthetic.len(),
        internet_rule: share(internet),
        phone_rule: share(phone),
        real_location: share(location),
        charges_consistent: share(charges),
        all_rules: share(all),
        in_training_ranges: share(ranges),
        domain_valid: share(domain),
    }
}

/// A bootstrap resample of the real rows: the score a perfect generator would get, given sampling noise.
pub fn bootstrap(real: &[Customer], n: usize, seed: u64) -> Vec<Customer> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    (0..n)
        .map(|_| real[rng.random_range(0..real.len())].clone())
        .collect()
}

/// Rows whose every field comes from a different random real row: exact marginals, no dependence (and
/// broken rules), the baseline a copula must beat.
pub fn independent_columns(real: &[Customer], n: usize, seed: u64) -> Vec<Customer> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut pick = || &real[rng.random_range(0..real.len())];
    (0..n)
        .map(|_| {
            let mut c = pick().clone();
            c.country = pick().country.clone();
            c.state = pick().state.clone();
            c.city = pick().city.clone();
            c.zip_code = pick().zip_code.clone();
            c.latitude = pick().latitude;
            c.longitude = pick().longitude;
            c.gender = pick().gender;
            c.senior_citizen = pick().senior_citizen;
            c.partner = pick().partner;
            c.dependents = pick().dependents;
            c.tenure_months = pick().tenure_months;
            c.phone_service = pick().phone_service;
            c.multiple_lines = pick().multiple_lines;
            c.internet_service = pick().internet_service;
            c.online_security = pick().online_security;
            c.online_backup = pick().online_backup;
            c.device_protection = pick().device_protection;
            c.tech_support = pick().tech_support;
            c.streaming_tv = pick().streaming_tv;
            c.streaming_movies = pick().streaming_movies;
            c.contract = pick().contract;
            c.paperless_billing = pick().paperless_billing;
            c.payment_method = pick().payment_method;
            c.monthly_charges = pick().monthly_charges;
            c.total_charges = pick().total_charges;
            c.churn_label = pick().churn_label;
            c
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ks_of_identical_samples_is_zero_and_of_disjoint_ones_is_one() {
        assert_eq!(ks_statistic(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), 0.0);
        assert_eq!(ks_statistic(&[1.0, 2.0], &[5.0, 6.0]), 1.0);
        assert!((ks_statistic(&[1.0, 2.0, 3.0, 4.0], &[3.0, 4.0, 5.0, 6.0]) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn total_variation_distance_is_half_the_l1_distance() {
        assert!((tv_distance(&[0.5, 0.5], &[1.0, 0.0]) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn contingency_similarity_of_a_copy_is_one() {
        let a = (vec![0, 1, 1, 0], vec![0, 1, 1, 0], 2);
        let b = (vec![1, 1, 0, 0], vec![1, 1, 0, 0], 2);
        assert!((contingency_similarity(&a, &b) - 1.0).abs() < 1e-12);
        // Synthetic values of the first column all 0: half the joint mass moves.
        let collapsed = (vec![0, 1, 1, 0], vec![0, 0, 0, 0], 2);
        assert!((contingency_similarity(&collapsed, &b) - 0.5).abs() < 1e-12);
    }
}
