//! Permutation importance by customer field: how much ROC AUC drops when a field's values are shuffled.

use churn_core::{Customer, Field, metrics};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::Error;

/// The platform's importance type: a registered version's metrics carry the same records.
pub use churn_core::Importance;

/// The fields the model reads, in dataset order.
fn model_fields() -> Vec<&'static str> {
    let mut fields: Vec<&'static str> = Vec::new();
    for f in crate::features::feature_infos() {
        if !fields.contains(&f.source) {
            fields.push(f.source);
        }
    }
    fields
}

/// Copies `field` of `from` into `to`.
fn copy_field(to: &mut Customer, from: &Customer, field: &str) {
    match field {
        f if f == Field::TenureMonths.name() => to.tenure_months = from.tenure_months,
        f if f == Field::MonthlyCharges.name() => to.monthly_charges = from.monthly_charges,
        f if f == Field::TotalCharges.name() => to.total_charges = from.total_charges,
        f if f == Field::Latitude.name() => to.latitude = from.latitude,
        f if f == Field::Longitude.name() => to.longitude = from.longitude,
        f if f == Field::Gender.name() => to.gender = from.gender,
        f if f == Field::SeniorCitizen.name() => to.senior_citizen = from.senior_citizen,
        f if f == Field::Partner.name() => to.partner = from.partner,
        f if f == Field::Dependents.name() => to.dependents = from.dependents,
        f if f == Field::PhoneService.name() => to.phone_service = from.phone_service,
        f if f == Field::MultipleLines.name() => to.multiple_lines = from.multiple_lines,
        f if f == Field::InternetService.name() => to.internet_service = from.internet_service,
        f if f == Field::OnlineSecurity.name() => to.online_security = from.online_security,
        f if f == Field::OnlineBackup.name() => to.online_backup = from.online_backup,
        f if f == Field::DeviceProtection.name() => to.device_protection = from.device_protection,
        f if f == Field::TechSupport.name() => to.tech_support = from.tech_support,
        f if f == Field::StreamingTv.name() => to.streaming_tv = from.streaming_tv,
        f if f == Field::StreamingMovies.name() => to.streaming_movies = from.streaming_movies,
        f if f == Field::Contract.name() => to.contract = from.contract,
        f if f == Field::PaperlessBilling.name() => to.paperless_billing = from.paperless_billing,
        f if f == Field::PaymentMethod.name() => to.payment_method = from.payment_method,
        _ => {}
    }
}

/// Importance of each field on `data` for a model whose P(churn) is `predict`, most important first.
/// Shuffled copies may break business rules (that is the point: the model sees the field's values out
/// of context).
pub fn permutation(
    predict: impl Fn(&[Customer]) -> Vec<f64>,
    data: &[Customer],
    seed: u64,
) -> Result<Vec<Importance>, Error> {
    let y = crate::split::labels(data)?;
    let baseline = metrics::roc_auc(&y, &predict(data)).unwrap_or(0.5);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x7065_726d);
    let mut result = Vec::new();
    for field in model_fields() {
        let mut order: Vec<usize> = (0..data.len()).collect();
        order.shuffle(&mut rng);
        let mut shuffled = data.to_vec();
        for (target, source) in shuffled.iter_mut().zip(&order) {
            copy_field(target, &data[*source], field);
        }
        let auc = metrics::roc_auc(&y, &predict(&shuffled)).unwrap_or(0.5);
        result.push(Importance {
            field: field.to_owned(),
            importance: baseline - auc,
        });
    }
    result.sort_by(|a, b| b.importance.total_cmp(&a.importance));
    Ok(result)
}
