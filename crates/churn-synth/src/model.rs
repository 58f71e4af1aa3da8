//! The fitted model: a Gaussian copula per service segment, its artifact format, and fitting.
//!
//! Customers are split into segments by (phone service, internet service). Inside a segment the
//! "No phone service" / "No internet service" values are fixed, so the business rules hold by
//! construction, and a Gaussian copula couples the remaining columns: categorical columns by
//! frequency-interval encoding, numeric columns through fitted marginals. Total charges are modelled as
//! the ratio total / (monthly × tenure), kept inside the ratios seen in training. Location is one key
//! (the zip code); city, state, country, latitude and longitude are looked up from training data.

use std::collections::BTreeMap;

use churn_core::{AddOn, Category, Customer, InternetService, MultipleLines, YesNo};
use nalgebra::{DMatrix, SymmetricEigen};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

use crate::marginal::{self, MarginalFit};
use crate::{Error, normal};

/// Version of the artifact layout; bumped whenever a field changes meaning.
pub const SCHEMA_VERSION: u32 = 1;

/// The smallest training set a model is fitted on.
pub const MIN_TRAINING_ROWS: usize = 50;

/// Most columns a segment's copula may have (the sampler's scratch space).
pub const MAX_DIMENSION: usize = 64;

/// A real place from the training data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Location {
    pub zip_code: String,
    pub city: String,
    pub state: String,
    pub country: String,
    pub latitude: f64,
    pub longitude: f64,
}

/// A column of the copula.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Column {
    Location,
    Gender,
    SeniorCitizen,
    Partner,
    Dependents,
    MultipleLines,
    OnlineSecurity,
    OnlineBackup,
    DeviceProtection,
    TechSupport,
    StreamingTv,
    StreamingMovies,
    Contract,
    PaperlessBilling,
    PaymentMethod,
    ChurnLabel,
    TenureMonths,
    MonthlyCharges,
    /// total_charges / (monthly_charges × tenure_months)
    ChargeRatio,
}

const ADD_ON_COLUMNS: [Column; 6] = [
    Column::OnlineSecurity,
    Column::OnlineBackup,
    Column::DeviceProtection,
    Column::TechSupport,
    Column::StreamingTv,
    Column::StreamingMovies,
];

/// A categorical column: category codes in latent order with their probabilities.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoricalColumn {
    pub column: Column,
    /// Category codes (the domain enum's code, or the location index) in the order of their intervals.
    pub categories: Vec<u32>,
    pub probabilities: Vec<f64>,
}

/// A numeric column: its fitted marginal, its training range and the step values are rounded to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumericColumn {
    pub column: Column,
    pub fit: MarginalFit,
    pub low: f64,
    pub high: f64,
    /// Values are multiples of this (1 for whole months, 0.05 for charges in the seed data).
    pub quantum: Option<f64>,
}

/// One (phone service, internet service) segment and its copula.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    pub phone_service: YesNo,
    pub internet_service: InternetService,
    pub rows: usize,
    pub categorical: Vec<CategoricalColumn>,
    pub numeric: Vec<NumericColumn>,
    /// Correlation of normal scores, row-major, categorical columns first then numeric.
    pub correlation: Vec<f64>,
}

impl Segment {
    pub fn dimension(&self) -> usize {
        self.categorical.len() + self.numeric.len()
    }
}

/// The whole fitted synthesizer; serializes to the versioned artifact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SynthModel {
    pub schema_version: u32,
    /// The crate and version that fitted it.
    pub generator: String,
    pub training_rows: usize,
    /// Locations sorted by latitude then longitude; categorical code = index here.
    pub locations: Vec<Location>,
    pub segments: Vec<Segment>,
    /// Range of total charges seen in training.
    pub total_charges_range: (f64, f64),
}

/// Settings of a fit, unchecked; [`FitOptions::check`] (which [`SynthModel::fit`] calls first) refuses
/// values that cannot work.
#[derive(Debug, Clone, Copy)]
pub struct FitOptions {
    /// Seeds the tie-breaking of ranks; the same data and seed give the same model.
    pub seed: u64,
    /// Fewest training rows accepted: 10 to 10,000,000 (default [`MIN_TRAINING_ROWS`]). Fewer rows give
    /// correlations and marginals too noisy to sample from.
    pub min_rows: usize,
}

impl Default for FitOptions {
    fn default() -> Self {
        Self {
            seed: 0x5eed,
            min_rows: MIN_TRAINING_ROWS,
        }
    }
}

impl FitOptions {
    /// Refuses settings that cannot work, naming the parameter, its value and the allowed range.
    pub fn check(self) -> Result<Self, Error> {
        if !(10..=10_000_000).contains(&self.min_rows) {
            return Err(Error::InvalidParameter {
                name: "min_rows",
                value: self.min_rows.to_string(),
                rule: "must be between 10 and 10000000",
            });
        }
        Ok(self)
    }
}

/// One family choice per numeric column and segment, for reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FamilyChoice {
    pub segment: String,
    pub column: Column,
    pub family: &'static str,
    pub ks: f64,
}

impl SynthModel {
    /// Fits the model on labelled customers.
    pub fn fit(customers: &[Customer], options: FitOptions) -> Result<SynthModel, Error> {
        let options = options.check()?;
        if customers.len() < options.min_rows {
            return Err(Error::TooFewRows {
                rows: customers.len(),
                min: options.min_rows,
            });
        }
        if let Some(i) = customers.iter().position(|c| c.churn_label.is_none()) {
            return Err(Error::MissingLabel { index: i });
        }
        let locations = collect_locations(customers);
        let location_index: BTreeMap<&str, u32> = locations
            .iter()
            .enumerate()
            .map(|(i, l)| (l.zip_code.as_str(), i as u32))
            .collect();

        let mut rng = Xoshiro256PlusPlus::seed_from_u64(options.seed);
        let mut segments = Vec::new();
        for phone in YesNo::ALL {
            for internet in InternetService::ALL {
                let rows: Vec<&Customer> = customers
                    .iter()
                    .filter(|c| c.phone_service == *phone && c.internet_service == *internet)
                    .collect();
                if rows.is_empty() {
                    continue;
                }
                segments.push(fit_segment(
                    *phone,
                    *internet,
                    &rows,
                    &location_index,
                    &mut rng,
                )?);
            }
        }
        let totals = customers.iter().map(|c| c.total_charges);
        let total_charges_range = (
            totals.clone().fold(f64::INFINITY, f64::min),
            totals.fold(f64::NEG_INFINITY, f64::max),
        );
        Ok(SynthModel {
            schema_version: SCHEMA_VERSION,
            generator: format!("churn-synth {}", env!("CARGO_PKG_VERSION")),
            training_rows: customers.len(),
            locations,
            segments,
            total_charges_range,
        })
    }

    /// The artifact: JSON with the schema version inside.
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        serde_json::to_vec(self).map_err(|e| Error::Artifact(e.to_string()))
    }

    /// Reads an artifact, refusing other schema versions.
    pub fn from_bytes(bytes: &[u8]) -> Result<SynthModel, Error> {
        let model: SynthModel = churn_core::artifact::from_json(bytes, SCHEMA_VERSION)?;
        model.check()?;
        Ok(model)
    }

    /// Structural checks an artifact must pass before it is sampled from.
    fn check(&self) -> Result<(), Error> {
        let bad = |what: String| Err(Error::Artifact(what));
        if self.segments.is_empty() || self.locations.is_empty() {
            return bad("the model has no segments or no locations".into());
        }
        for s in &self.segments {
            let d = s.dimension();
            if d > MAX_DIMENSION {
                return bad(format!(
                    "a segment has {d} columns; at most {MAX_DIMENSION} are supported"
                ));
            }
            if s.correlation.len() != d * d {
                return bad(format!(
                    "segment correlation has {} entries, expected {}",
                    s.correlation.len(),
                    d * d
                ));
            }
            for c in &s.categorical {
                if c.categories.is_empty() || c.categories.len() != c.probabilities.len() {
                    return bad(format!("column {:?} has mismatched categories", c.column));
                }
                if c.column == Column::Location
                    && c.categories
                        .iter()
                        .any(|i| *i as usize >= self.locations.len())
                {
                    return bad("a location code points outside the location table".into());
                }
            }
        }
        Ok(())
    }

    /// The marginal family chosen for each numeric column of each segment.
    pub fn families(&self) -> Vec<FamilyChoice> {
        self.segments
            .iter()
            .flat_map(|s| {
                let name = segment_name(s);
                s.numeric.iter().map(move |n| FamilyChoice {
                    segment: name.clone(),
                    column: n.column,
                    family: n.fit.marginal.family(),
                    ks: n.fit.ks,
                })
            })
            .collect()
    }
}

pub fn segment_name(s: &Segment) -> String {
    format!(
        "phone={} internet={}",
        s.phone_service.label(),
        s.internet_service.label()
    )
}

/// Each zip code once, with the first city and coordinates seen for it, sorted by latitude so that the
/// location's latent score carries geography.
fn collect_locations(customers: &[Customer]) -> Vec<Location> {
    let mut by_zip: BTreeMap<&str, Location> = BTreeMap::new();
    for c in customers {
        by_zip
            .entry(c.zip_code.as_str())
            .or_insert_with(|| Location {
                zip_code: c.zip_code.clone(),
                city: c.city.clone(),
                state: c.state.clone(),
                country: c.country.clone(),
                latitude: c.latitude,
                longitude: c.longitude,
            });
    }
    let mut locations: Vec<Location> = by_zip.into_values().collect();
    locations.sort_by(|a, b| {
        a.latitude
            .total_cmp(&b.latitude)
            .then(a.longitude.total_cmp(&b.longitude))
            .then(a.zip_code.cmp(&b.zip_code))
    });
    locations
}

/// The code of a categorical column's value for one customer.
fn category_code(c: &Customer, column: Column, location_index: &BTreeMap<&str, u32>) -> u32 {
    let add_ons = c.add_ons();
    let code = match column {
        Column::Location => {
            return location_index
                .get(c.zip_code.as_str())
                .copied()
                .unwrap_or(0);
        }
        Column::Gender => c.gender.code(),
        Column::SeniorCitizen => c.senior_citizen.code(),
        Column::Partner => c.partner.code(),
        Column::Dependents => c.dependents.code(),
        Column::MultipleLines => c.multiple_lines.code(),
        Column::OnlineSecurity => add_ons[0].code(),
        Column::OnlineBackup => add_ons[1].code(),
        Column::DeviceProtection => add_ons[2].code(),
        Column::TechSupport => add_ons[3].code(),
        Column::StreamingTv => add_ons[4].code(),
        Column::StreamingMovies => add_ons[5].code(),
        Column::Contract => c.contract.code(),
        Column::PaperlessBilling => c.paperless_billing.code(),
        Column::PaymentMethod => c.payment_method.code(),
        Column::ChurnLabel => c.churn_label.map_or(0, YesNo::code),
        Column::TenureMonths | Column::MonthlyCharges | Column::ChargeRatio => 0,
    };
    code as u32
}

fn numeric_value(c: &Customer, column: Column) -> f64 {
    match column {
        Column::TenureMonths => f64::from(c.tenure_months),
        Column::MonthlyCharges => c.monthly_charges,
        Column::ChargeRatio => charge_ratio(c).unwrap_or(1.0),
        _ => 0.0,
    }
}

/// total / (monthly × tenure), undefined for new customers or free plans.
pub fn charge_ratio(c: &Customer) -> Option<f64> {
    let expected = c.monthly_charges * f64::from(c.tenure_months);
    (expected > 0.0).then(|| c.total_charges / expected)
}

/// The largest of a few decimal steps that every value is a multiple of.
fn detect_quantum(values: &[f64]) -> Option<f64> {
    [1.0, 0.5, 0.25, 0.1, 0.05, 0.01].into_iter().find(|q| {
        values
            .iter()
            .all(|v| ((v / q) - (v / q).round()).abs() < 1e-6)
    })
}

fn fit_segment(
    phone: YesNo,
    internet: InternetService,
    rows: &[&Customer],
    location_index: &BTreeMap<&str, u32>,
    rng: &mut Xoshiro256PlusPlus,
) -> Result<Segment, Error> {
    let n = rows.len();
    let mut cat_columns = vec![
        Column::Location,
        Column::Gender,
        Column::SeniorCitizen,
        Column::Partner,
        Column::Dependents,
    ];
    if phone == YesNo::Yes {
        cat_columns.push(Column::MultipleLines);
    }
    if internet != InternetService::No {
        cat_columns.extend(ADD_ON_COLUMNS);
    }
    cat_columns.extend([
        Column::Contract,
        Column::PaperlessBilling,
        Column::PaymentMethod,
        Column::ChurnLabel,
    ]);
    let num_columns = [
        Column::TenureMonths,
        Column::MonthlyCharges,
        Column::ChargeRatio,
    ];

    let tenure: Vec<f64> = rows.iter().map(|c| f64::from(c.tenure_months)).collect();
    let mut categorical = Vec::new();
    // Ordinal keys per column, used for the rank-based normal scores.
    let mut keys: Vec<Vec<f64>> = Vec::new();
    for column in cat_columns {
        let codes: Vec<u32> = rows
            .iter()
            .map(|c| category_code(c, column, location_index))
            .collect();
        let mut counts: BTreeMap<u32, usize> = BTreeMap::new();
        for code in &codes {
            *counts.entry(*code).or_default() += 1;
        }
        let mut order: Vec<u32> = counts.keys().copied().collect();
        if column == Column::PaymentMethod {
            // A nominal column: order its categories by the mean tenure of their customers, so the one
            // latent axis runs from short-lived to long-lived payers.
            let mean_tenure = |code: u32| {
                let (sum, k) = codes
                    .iter()
                    .zip(&tenure)
                    .filter(|(c, _)| **c == code)
                    .fold((0.0, 0usize), |(s, k), (_, t)| (s + t, k + 1));
                sum / k.max(1) as f64
            };
            order.sort_by(|a, b| mean_tenure(*a).total_cmp(&mean_tenure(*b)));
        }
        let position: BTreeMap<u32, f64> = order
            .iter()
            .enumerate()
            .map(|(i, code)| (*code, i as f64))
            .collect();
        keys.push(codes.iter().map(|c| position[c]).collect());
        categorical.push(CategoricalColumn {
            column,
            probabilities: order.iter().map(|c| counts[c] as f64 / n as f64).collect(),
            categories: order,
        });
    }

    let mut numeric = Vec::new();
    for column in num_columns {
        let values: Vec<f64> = rows.iter().map(|c| numeric_value(c, column)).collect();
        let quantum = if column == Column::ChargeRatio {
            None
        } else {
            detect_quantum(&values)
        };
        let fit = marginal::fit(&values, quantum == Some(1.0));
        let (low, high) = values
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
                (l.min(*v), h.max(*v))
            });
        keys.push(values);
        numeric.push(NumericColumn {
            column,
            fit,
            low,
            high,
            quantum,
        });
    }

    let scores: Vec<Vec<f64>> = keys.iter().map(|k| normal_scores(k, rng)).collect();
    let correlation = nearest_correlation(&pearson_matrix(&scores))?;
    Ok(Segment {
        phone_service: phone,
        internet_service: internet,
        rows: n,
        categorical,
        numeric,
        correlation,
    })
}

/// Rank-based normal scores Φ⁻¹((rank + ½)/n), ties broken at random. For a categorical column whose
/// keys are category positions this is exactly frequency-interval encoding with a uniform draw inside
/// each category's interval.
fn normal_scores(keys: &[f64], rng: &mut Xoshiro256PlusPlus) -> Vec<f64> {
    let n = keys.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(rng);
    // A stable sort after a shuffle breaks ties uniformly at random.
    order.sort_by(|a, b| keys[*a].total_cmp(&keys[*b]));
    let mut scores = vec![0.0; n];
    for (rank, i) in order.into_iter().enumerate() {
        scores[i] = normal::inverse_cdf((rank as f64 + 0.5) / n as f64);
    }
    scores
}

fn pearson_matrix(columns: &[Vec<f64>]) -> DMatrix<f64> {
    let d = columns.len();
    let n = columns.first().map_or(0, Vec::len) as f64;
    let centered: Vec<Vec<f64>> = columns
        .iter()
        .map(|c| {
            let mean = c.iter().sum::<f64>() / n;
            c.iter().map(|v| v - mean).collect()
        })
        .collect();
    let norms: Vec<f64> = centered
        .iter()
        .map(|c| c.iter().map(|v| v * v).sum::<f64>().sqrt())
        .collect();
    DMatrix::from_fn(d, d, |i, j| {
        if i == j {
            1.0
        } else if norms[i] == 0.0 || norms[j] == 0.0 {
            0.0
        } else {
            centered[i]
                .iter()
                .zip(&centered[j])
                .map(|(a, b)| a * b)
                .sum::<f64>()
                / (norms[i] * norms[j])
        }
    })
}

/// Repairs a symmetric matrix to the nearest valid correlation matrix (eigenvalues clipped to be
/// positive, then rescaled to a unit diagonal), so that its Cholesky factor exists.
pub(crate) fn nearest_correlation(m: &DMatrix<f64>) -> Result<Vec<f64>, Error> {
    const MIN_EIGENVALUE: f64 = 1e-6;
    let d = m.nrows();
    let eigen = SymmetricEigen::new(m.clone());
    let repaired = if eigen.eigenvalues.iter().all(|l| *l >= MIN_EIGENVALUE) {
        m.clone()
    } else {
        let clipped = eigen.eigenvalues.map(|l| l.max(MIN_EIGENVALUE));
        let v = &eigen.eigenvectors;
        let rebuilt = v * DMatrix::from_diagonal(&clipped) * v.transpose();
        let scale: Vec<f64> = (0..d).map(|i| rebuilt[(i, i)].sqrt()).collect();
        DMatrix::from_fn(d, d, |i, j| rebuilt[(i, j)] / (scale[i] * scale[j]))
    };
    if repaired.clone().cholesky().is_none() {
        return Err(Error::Numerical(
            "the correlation matrix could not be repaired to positive definite".into(),
        ));
    }
    Ok(repaired.transpose().as_slice().to_vec())
}

/// Decodes a category code of `column` into the customer's typed value, for the sampler.
pub(crate) fn decode<T: Category>(code: u32) -> T {
    T::from_code(code as usize).unwrap_or(T::ALL[0])
}

/// The fixed value of a column a segment does not model.
pub(crate) fn fixed_multiple_lines(phone: YesNo) -> MultipleLines {
    if phone == YesNo::No {
        MultipleLines::NoPhoneService
    } else {
        MultipleLines::No
    }
}

pub(crate) fn fixed_add_on(internet: InternetService) -> AddOn {
    if internet == InternetService::No {
        AddOn::NoInternetService
    } else {
        AddOn::No
    }
}
