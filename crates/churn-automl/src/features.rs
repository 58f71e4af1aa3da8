//! The preprocessing pipeline: customer → feature vector (one-hot categories, numeric transforms) and
//! the standardization fitted on training data. It is serialized with every model, so a model always
//! encodes requests exactly as it was trained; leakage columns are not even part of the record.

use churn_core::{
    AddOn, Category, Contract, Customer, Field, Gender, InternetService, MultipleLines,
    PaymentMethod, YesNo,
};
use serde::{Deserialize, Serialize};

/// What a feature is made from, for grouping importances and explanations by the customer's fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureInfo {
    pub name: String,
    /// The customer field it derives from (snake_case).
    pub source: &'static str,
}

fn one_hot<T: Category>(field: Field, out: &mut Vec<FeatureInfo>) {
    for v in T::ALL {
        out.push(FeatureInfo {
            name: format!("{}={}", field.name(), v.label()),
            source: field.name(),
        });
    }
}

/// Derived features: interactions a linear model cannot form by itself (trees find them anyway).
const DERIVED: usize = 5;

/// Tenure boundaries (months) of the tenure-band indicators: churn falls steeply over the first year.
const TENURE_BANDS: [u32; 5] = [0, 6, 12, 24, 48];

/// The feature layout, in encoding order. Fixed by the code: the artifact records the names and the
/// loader checks them, so a model from another layout is refused rather than misread.
pub fn feature_infos() -> Vec<FeatureInfo> {
    let mut f = Vec::new();
    let numeric = |name: &str, source: Field| FeatureInfo {
        name: name.to_owned(),
        source: source.name(),
    };
    f.push(numeric("tenure_months", Field::TenureMonths));
    f.push(numeric("log1p_tenure_months", Field::TenureMonths));
    for (i, low) in TENURE_BANDS.iter().enumerate() {
        let name = match TENURE_BANDS.get(i + 1) {
            Some(high) => format!("tenure_band_{low}_{high}"),
            None => format!("tenure_band_{low}_plus"),
        };
        f.push(numeric(&name, Field::TenureMonths));
    }
    f.push(numeric("monthly_charges", Field::MonthlyCharges));
    f.push(numeric("total_charges", Field::TotalCharges));
    f.push(numeric("log1p_total_charges", Field::TotalCharges));
    f.push(numeric("latitude", Field::Latitude));
    f.push(numeric("longitude", Field::Longitude));
    f.push(numeric("services_count", Field::InternetService));
    f.push(numeric("charge_gap", Field::MonthlyCharges));
    f.push(numeric("month_to_month_x_log1p_tenure", Field::Contract));
    f.push(numeric("fiber_x_monthly_charges", Field::InternetService));
    f.push(numeric(
        "electronic_check_x_month_to_month",
        Field::PaymentMethod,
    ));
    one_hot::<Gender>(Field::Gender, &mut f);
    one_hot::<YesNo>(Field::SeniorCitizen, &mut f);
    one_hot::<YesNo>(Field::Partner, &mut f);
    one_hot::<YesNo>(Field::Dependents, &mut f);
    one_hot::<YesNo>(Field::PhoneService, &mut f);
    one_hot::<MultipleLines>(Field::MultipleLines, &mut f);
    one_hot::<InternetService>(Field::InternetService, &mut f);
    for field in churn_core::ADD_ON_FIELDS {
        one_hot::<AddOn>(field, &mut f);
    }
    one_hot::<Contract>(Field::Contract, &mut f);
    one_hot::<YesNo>(Field::PaperlessBilling, &mut f);
    one_hot::<PaymentMethod>(Field::PaymentMethod, &mut f);
    f
}

/// Number of features [`encode`] writes.
pub fn feature_count() -> usize {
    static COUNT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *COUNT.get_or_init(|| feature_infos().len())
}

#[inline]
fn put_one_hot<T: Category>(value: T, out: &mut [f64], at: &mut usize) {
    let n = T::ALL.len();
    out[*at..*at + n].fill(0.0);
    out[*at + value.code()] = 1.0;
    *at += n;
}

/// Writes the raw (unstandardized) features of one customer into `out` (length [`feature_count`]).
pub fn encode(c: &Customer, out: &mut [f64]) {
    let tenure = f64::from(c.tenure_months);
    out[0] = tenure;
    out[1] = tenure.ln_1p();
    let mut at = 2;
    for (i, low) in TENURE_BANDS.iter().enumerate() {
        let high = TENURE_BANDS.get(i + 1).copied().unwrap_or(u32::MAX);
        out[at] = f64::from(u8::from(c.tenure_months >= *low && c.tenure_months < high));
        at += 1;
    }
    out[at] = c.monthly_charges;
    out[at + 1] = c.total_charges;
    out[at + 2] = c.total_charges.max(0.0).ln_1p();
    out[at + 3] = c.latitude;
    out[at + 4] = c.longitude;
    at += 5;
    let yes = |b: bool| f64::from(u8::from(b));
    let month_to_month = c.contract == Contract::MonthToMonth;
    let services = c.add_ons().iter().filter(|a| **a == AddOn::Yes).count()
        + usize::from(c.phone_service.is_yes())
        + usize::from(c.multiple_lines == MultipleLines::Yes)
        + usize::from(c.internet_service != InternetService::No);
    out[at] = services as f64;
    // A monthly charge above the average so far means the price went up: a classic churn trigger.
    out[at + 1] = c.monthly_charges - c.total_charges / tenure.max(1.0);
    out[at + 2] = yes(month_to_month) * tenure.ln_1p();
    out[at + 3] = yes(c.internet_service == InternetService::FiberOptic) * c.monthly_charges;
    out[at + 4] = yes(c.payment_method == PaymentMethod::ElectronicCheck && month_to_month);
    at += DERIVED;
    put_one_hot(c.gender, out, &mut at);
    put_one_hot(c.senior_citizen, out, &mut at);
    put_one_hot(c.partner, out, &mut at);
    put_one_hot(c.dependents, out, &mut at);
    put_one_hot(c.phone_service, out, &mut at);
    put_one_hot(c.multiple_lines, out, &mut at);
    put_one_hot(c.internet_service, out, &mut at);
    for add_on in c.add_ons() {
        put_one_hot(add_on, out, &mut at);
    }
    put_one_hot(c.contract, out, &mut at);
    put_one_hot(c.paperless_billing, out, &mut at);
    put_one_hot(c.payment_method, out, &mut at);
    debug_assert_eq!(at, out.len(), "the encoder and feature_infos disagree");
}

/// Row-major raw feature matrix of many customers.
pub fn encode_all(customers: &[Customer]) -> Vec<f64> {
    let d = feature_count();
    let mut x = vec![0.0; customers.len() * d];
    for (c, row) in customers.iter().zip(x.chunks_exact_mut(d)) {
        encode(c, row);
    }
    x
}

/// Per-feature mean and standard deviation fitted on training rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Standardizer {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

impl Standardizer {
    /// Fits on a row-major matrix with `d` columns; constant columns get std 1 (they carry no signal).
    pub fn fit(x: &[f64], d: usize) -> Self {
        let n = (x.len() / d).max(1) as f64;
        let mut mean = vec![0.0; d];
        for row in x.chunks_exact(d) {
            for (m, v) in mean.iter_mut().zip(row) {
                *m += v;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n);
        let mut var = vec![0.0; d];
        for row in x.chunks_exact(d) {
            for ((s, v), m) in var.iter_mut().zip(row).zip(&mean) {
                *s += (v - m) * (v - m);
            }
        }
        let std = var
            .iter()
            .map(|s| {
                let sd = (s / n).sqrt();
                if sd > 1e-12 { sd } else { 1.0 }
            })
            .collect();
        Self { mean, std }
    }

    /// Standardizes a row-major matrix in place.
    pub fn apply(&self, x: &mut [f64]) {
        let d = self.mean.len();
        for row in x.chunks_exact_mut(d) {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = (*v - m) / s;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_encoder_writes_every_feature_of_the_layout() {
        let customer = Customer::from_json(&serde_json::json!({
            "country": "United States", "state": "California", "city": "Los Angeles", "zip_code": "90003",
            "latitude": 33.96, "longitude": -118.27, "gender": "Male", "senior_citizen": "No",
            "partner": "No", "dependents": "No", "tenure_months": 2, "phone_service": "Yes",
            "multiple_lines": "No", "internet_service": "Fiber optic", "online_security": "Yes",
            "online_backup": "Yes", "device_protection": "No", "tech_support": "No", "streaming_tv": "No",
            "streaming_movies": "No", "contract": "Month-to-month", "paperless_billing": "Yes",
            "payment_method": "Electronic check", "monthly_charges": 53.85, "total_charges": 108.15
        }))
        .expect("a valid customer");
        let mut out = vec![f64::NAN; feature_count()];
        encode(&customer, &mut out);
        assert!(out.iter().all(|v| v.is_finite()), "{out:?}");
    }

    #[test]
    fn no_feature_comes_from_a_leakage_column() {
        let sources: Vec<&str> = feature_infos().iter().map(|f| f.source).collect();
        for leak in [
            "customer_id",
            "count",
            "churn_value",
            "churn_score",
            "cltv",
            "churn_reason",
            "churn_label",
        ] {
            assert!(!sources.contains(&leak), "{leak}");
        }
    }

    #[test]
    fn standardized_columns_have_zero_mean_and_unit_spread() {
        let x = vec![1.0, 10.0, 3.0, 10.0, 5.0, 10.0];
        let s = Standardizer::fit(&x, 2);
        let mut y = x.clone();
        s.apply(&mut y);
        assert!((y[0] + y[2] + y[4]).abs() < 1e-12);
        assert_eq!(s.std[1], 1.0, "a constant column is left unscaled");
    }
}
