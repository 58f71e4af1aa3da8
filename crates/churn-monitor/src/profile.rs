//! Reference profiles: an exact, compact, serializable summary of a data set from which every drift
//! statistic can be computed later without the rows.
//!
//! A numeric column keeps its distinct values in ascending order with how often each occurs (exact, and
//! far smaller than the rows: 7,043 training rows hold about 13,000 distinct numbers over six columns);
//! a categorical column keeps each value's count. Every statistic Evidently computes (KS, Wasserstein,
//! standard deviation, histograms, value counts) is a function of these counts, so nothing is lost.
//! Floats are written in their shortest round-trip form, so a profile reads back bit for bit.

use std::collections::{BTreeMap, HashMap};

use churn_core::{Customer, Field};
use serde::{Deserialize, Serialize};

use crate::Error;

/// Layout version of [`ReferenceProfile`]'s JSON; a profile of another version is refused on load.
pub const PROFILE_SCHEMA_VERSION: u32 = 1;

/// The name prediction drift reports for the churn-probability column.
pub const PREDICTION_COLUMN: &str = "churn_probability";

/// The 25 customer attributes drift is measured on, in the dataset's column order: every field except
/// the churn label (identifier and leakage columns are not fields at all).
pub const DRIFT_FIELDS: [Field; 25] = [
    Field::Country,
    Field::State,
    Field::City,
    Field::ZipCode,
    Field::Latitude,
    Field::Longitude,
    Field::Gender,
    Field::SeniorCitizen,
    Field::Partner,
    Field::Dependents,
    Field::TenureMonths,
    Field::PhoneService,
    Field::MultipleLines,
    Field::InternetService,
    Field::OnlineSecurity,
    Field::OnlineBackup,
    Field::DeviceProtection,
    Field::TechSupport,
    Field::StreamingTv,
    Field::StreamingMovies,
    Field::Contract,
    Field::PaperlessBilling,
    Field::PaymentMethod,
    Field::MonthlyCharges,
    Field::TotalCharges,
];

/// Largest magnitude below which every integer is exact in an f64; above it "whole number" means little.
const MAX_EXACT_INTEGER: f64 = 9_007_199_254_740_992.0;

/// The distinct values of a numeric column, ascending, with their counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumericSummary {
    /// Whether every value is a whole number. Written as CSV such a column reads back into pandas as
    /// integers, and Evidently types a low-cardinality integer column as categorical, so drift needs it.
    pub integer: bool,
    /// The distinct values, strictly ascending, all finite.
    pub values: Vec<f64>,
    /// How often each value occurs; same length as `values`, every count at least 1.
    pub counts: Vec<u64>,
}

impl NumericSummary {
    /// Summarises finite values (the callers check finiteness and say which row broke it).
    pub(crate) fn from_finite(mut values: Vec<f64>) -> Self {
        // -0.0 and 0.0 are one value to pandas (equal and equally hashed); keep one spelling.
        for v in &mut values {
            *v += 0.0;
        }
        // Sorting the order-preserving integer images of the doubles is about twice as fast as sorting
        // the doubles with a comparator, and gives the same (total) order.
        let mut keys: Vec<u64> = values.iter().map(|v| order_key(*v)).collect();
        keys.sort_unstable();
        for (v, k) in values.iter_mut().zip(&keys) {
            *v = from_order_key(*k);
        }
        let integer = values
            .iter()
            .all(|v| v.fract() == 0.0 && v.abs() <= MAX_EXACT_INTEGER);
        let mut distinct: Vec<f64> = Vec::new();
        let mut counts: Vec<u64> = Vec::new();
        for v in values {
            match distinct.last() {
                Some(&last) if last == v => {
                    if let Some(c) = counts.last_mut() {
                        *c += 1;
                    }
                }
                _ => {
                    distinct.push(v);
                    counts.push(1);
                }
            }
        }
        Self {
            integer,
            values: distinct,
            counts,
        }
    }

    /// Number of rows summarised.
    pub fn n(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Number of distinct values.
    pub fn n_unique(&self) -> usize {
        self.values.len()
    }

    fn check(&self, column: &str) -> Result<(), String> {
        if self.values.len() != self.counts.len() {
            return Err(format!(
                "{column}: {} values but {} counts",
                self.values.len(),
                self.counts.len()
            ));
        }
        if self.values.is_empty() {
            return Err(format!("{column}: no values"));
        }
        if let Some(v) = self.values.iter().find(|v| !v.is_finite()) {
            return Err(format!("{column}: value {v} is not finite"));
        }
        if let Some(w) = self.values.windows(2).find(|w| w[0] >= w[1]) {
            return Err(format!(
                "{column}: values must strictly ascend, but {} is followed by {}",
                w[0], w[1]
            ));
        }
        if self.counts.contains(&0) {
            return Err(format!("{column}: a count is 0"));
        }
        let whole = self
            .values
            .iter()
            .all(|v| v.fract() == 0.0 && v.abs() <= MAX_EXACT_INTEGER);
        if self.integer && !whole {
            return Err(format!(
                "{column}: marked integer but holds a fractional value"
            ));
        }
        Ok(())
    }
}

/// An integer whose unsigned order is the total order of the doubles (IEEE 754 bits with the sign
/// flipped for positives and all bits flipped for negatives).
fn order_key(v: f64) -> u64 {
    let bits = v.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    }
}

fn from_order_key(k: u64) -> f64 {
    f64::from_bits(if k >> 63 == 1 { k & !(1 << 63) } else { !k })
}

/// The values of a categorical column with their counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoricalSummary {
    /// Count of each value, ordered by value (byte order, which is Python's string order too).
    pub counts: BTreeMap<String, u64>,
}

impl CategoricalSummary {
    fn from_values<'a>(values: impl Iterator<Item = &'a str>) -> Self {
        // Counting borrowed strings avoids one allocation per row; the map owns one copy per value.
        let mut counts: HashMap<&str, u64> = HashMap::new();
        for v in values {
            *counts.entry(v).or_insert(0) += 1;
        }
        Self {
            counts: counts.into_iter().map(|(k, c)| (k.to_owned(), c)).collect(),
        }
    }

    /// Number of rows summarised.
    pub fn n(&self) -> u64 {
        self.counts.values().sum()
    }

    /// Number of distinct values.
    pub fn n_unique(&self) -> usize {
        self.counts.len()
    }

    fn check(&self, column: &str) -> Result<(), String> {
        if self.counts.is_empty() {
            return Err(format!("{column}: no values"));
        }
        if let Some((value, _)) = self.counts.iter().find(|(_, c)| **c == 0) {
            return Err(format!("{column}: value {value:?} has count 0"));
        }
        Ok(())
    }
}

/// What a column's summary holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ColumnSummary {
    Numeric(NumericSummary),
    Categorical(CategoricalSummary),
}

impl ColumnSummary {
    /// Number of rows summarised.
    pub fn n(&self) -> u64 {
        match self {
            ColumnSummary::Numeric(s) => s.n(),
            ColumnSummary::Categorical(s) => s.n(),
        }
    }

    /// Number of distinct values.
    pub fn n_unique(&self) -> usize {
        match self {
            ColumnSummary::Numeric(s) => s.n_unique(),
            ColumnSummary::Categorical(s) => s.n_unique(),
        }
    }

    pub(crate) fn kind(&self) -> &'static str {
        match self {
            ColumnSummary::Numeric(_) => "numeric",
            ColumnSummary::Categorical(_) => "categorical",
        }
    }
}

/// One column's name (snake_case, as in [`Field::name`]) and summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnProfile {
    pub column: String,
    pub summary: ColumnSummary,
}

impl ColumnProfile {
    /// Profiles a column of churn probabilities, each of which must be a number in `[0, 1]`.
    pub fn from_probabilities(probabilities: &[f64]) -> Result<Self, Error> {
        if probabilities.is_empty() {
            return Err(Error::EmptyReference);
        }
        if let Some((index, value)) = probabilities
            .iter()
            .enumerate()
            .find(|(_, p)| !(0.0..=1.0).contains(*p))
        {
            return Err(Error::InvalidValue {
                column: PREDICTION_COLUMN.to_owned(),
                index,
                value: value.to_string(),
                rule: "a probability must be a number in [0, 1]",
            });
        }
        Ok(Self {
            column: PREDICTION_COLUMN.to_owned(),
            summary: ColumnSummary::Numeric(NumericSummary::from_finite(probabilities.to_vec())),
        })
    }

    /// Profiles one attribute of `customers` (at least one).
    pub fn from_customers(field: Field, customers: &[Customer]) -> Result<Self, Error> {
        if customers.is_empty() {
            return Err(Error::EmptyReference);
        }
        let numeric = |get: &dyn Fn(&Customer) -> f64| -> Result<ColumnSummary, Error> {
            let mut values = Vec::with_capacity(customers.len());
            for (index, c) in customers.iter().enumerate() {
                let v = get(c);
                if !v.is_finite() {
                    return Err(Error::InvalidValue {
                        column: field.name().to_owned(),
                        index,
                        value: v.to_string(),
                        rule: "must be a finite number",
                    });
                }
                values.push(v);
            }
            Ok(ColumnSummary::Numeric(NumericSummary::from_finite(values)))
        };
        let summary = match field {
            // The zip code is text in the record (leading zeros), but pandas reads the column as
            // integers, and Evidently then treats it as a number: so do we.
            Field::ZipCode => {
                let mut values = Vec::with_capacity(customers.len());
                for (index, c) in customers.iter().enumerate() {
                    let z = c.zip_code.trim();
                    match z.parse::<u32>() {
                        Ok(v) if z.bytes().all(|b| b.is_ascii_digit()) => values.push(f64::from(v)),
                        _ => {
                            return Err(Error::InvalidValue {
                                column: field.name().to_owned(),
                                index,
                                value: c.zip_code.clone(),
                                rule: "a zip code must be digits",
                            });
                        }
                    }
                }
                ColumnSummary::Numeric(NumericSummary::from_finite(values))
            }
            Field::Latitude => numeric(&|c| c.latitude)?,
            Field::Longitude => numeric(&|c| c.longitude)?,
            Field::TenureMonths => numeric(&|c| f64::from(c.tenure_months))?,
            Field::MonthlyCharges => numeric(&|c| c.monthly_charges)?,
            Field::TotalCharges => numeric(&|c| c.total_charges)?,
            Field::ChurnLabel => {
                return Err(Error::MissingColumn(format!(
                    "{} (the label is never profiled for drift)",
                    field.name()
                )));
            }
            // Every other attribute is text or a category: count the dataset's labels, which are
            // exactly what a CSV of the rows holds and what pandas reads back as strings.
            other => ColumnSummary::Categorical(CategoricalSummary::from_values(
                customers.iter().map(|c| category_text(c, other)),
            )),
        };
        Ok(Self {
            column: field.name().to_owned(),
            summary,
        })
    }
}

/// Below this many rows a second thread costs more than it saves.
const PARALLEL_MIN_ROWS: usize = 20_000;

fn profile_numeric(
    fields: &[Field],
    customers: &[Customer],
) -> Result<Vec<(Field, ColumnProfile)>, Error> {
    fields
        .iter()
        .map(|f| ColumnProfile::from_customers(*f, customers).map(|p| (*f, p)))
        .collect()
}

/// Counts every categorical attribute in one pass over the rows (the rows are large and the columns
/// many, so one pass keeps the work in cache).
fn profile_categorical(fields: &[Field], customers: &[Customer]) -> Vec<(Field, ColumnProfile)> {
    let mut counters: Vec<Counter<'_>> = fields.iter().map(|_| Counter::default()).collect();
    for c in customers {
        for (field, counter) in fields.iter().zip(counters.iter_mut()) {
            counter.add(category_text(c, *field));
        }
    }
    fields
        .iter()
        .zip(counters)
        .map(|(f, counter)| {
            (
                *f,
                ColumnProfile {
                    column: f.name().to_owned(),
                    summary: ColumnSummary::Categorical(CategoricalSummary {
                        counts: counter.into_counts(),
                    }),
                },
            )
        })
        .collect()
}

/// Counts borrowed strings: a short list scanned linearly while there are few distinct values (every
/// category has at most four), a hash map once there are many (cities).
#[derive(Default)]
struct Counter<'a> {
    few: Vec<(&'a str, u64)>,
    many: HashMap<&'a str, u64>,
}

impl<'a> Counter<'a> {
    const FEW: usize = 16;

    fn add(&mut self, value: &'a str) {
        if self.many.is_empty() {
            if let Some(entry) = self.few.iter_mut().find(|(v, _)| *v == value) {
                entry.1 += 1;
                return;
            }
            if self.few.len() < Self::FEW {
                self.few.push((value, 1));
                return;
            }
            self.many.extend(self.few.drain(..));
        }
        *self.many.entry(value).or_insert(0) += 1;
    }

    fn into_counts(self) -> BTreeMap<String, u64> {
        self.few
            .into_iter()
            .chain(self.many)
            .map(|(v, c)| (v.to_owned(), c))
            .collect()
    }
}

/// The text of a non-numeric attribute, borrowed (no allocation per row).
fn category_text(c: &Customer, field: Field) -> &str {
    use churn_core::Category;
    match field {
        Field::Country => &c.country,
        Field::State => &c.state,
        Field::City => &c.city,
        Field::Gender => c.gender.label(),
        Field::SeniorCitizen => c.senior_citizen.label(),
        Field::Partner => c.partner.label(),
        Field::Dependents => c.dependents.label(),
        Field::PhoneService => c.phone_service.label(),
        Field::MultipleLines => c.multiple_lines.label(),
        Field::InternetService => c.internet_service.label(),
        Field::OnlineSecurity => c.online_security.label(),
        Field::OnlineBackup => c.online_backup.label(),
        Field::DeviceProtection => c.device_protection.label(),
        Field::TechSupport => c.tech_support.label(),
        Field::StreamingTv => c.streaming_tv.label(),
        Field::StreamingMovies => c.streaming_movies.label(),
        Field::Contract => c.contract.label(),
        Field::PaperlessBilling => c.paperless_billing.label(),
        Field::PaymentMethod => c.payment_method.label(),
        // Numeric fields never reach here (see `from_customers`); an empty key keeps this total.
        _ => "",
    }
}

/// The summary of a training set that drift is measured against; stored beside each model version as
/// JSON ([`ReferenceProfile::to_json`] / [`ReferenceProfile::from_json`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferenceProfile {
    /// [`PROFILE_SCHEMA_VERSION`] when written.
    pub schema_version: u32,
    /// Rows profiled.
    pub n_rows: u64,
    /// The 25 attributes of [`DRIFT_FIELDS`], in that order.
    pub columns: Vec<ColumnProfile>,
    /// The model's churn probabilities on reference rows, for prediction drift; absent until
    /// [`ReferenceProfile::with_prediction`] adds them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction: Option<ColumnProfile>,
}

impl ReferenceProfile {
    /// Profiles the 25 attributes of `customers` (at least one; the label is ignored).
    ///
    /// One pass over the rows counts the categorical attributes while a second thread collects and sorts
    /// the numeric ones: on 100,000 rows this takes a few milliseconds.
    pub fn from_customers(customers: &[Customer]) -> Result<Self, Error> {
        if customers.is_empty() {
            return Err(Error::EmptyReference);
        }
        let (numeric_fields, categorical_fields): (Vec<Field>, Vec<Field>) =
            DRIFT_FIELDS.iter().partition(|f| is_numeric_field(**f));
        let (numeric, categorical) = if customers.len() >= PARALLEL_MIN_ROWS {
            std::thread::scope(|scope| {
                let numeric = scope.spawn(|| profile_numeric(&numeric_fields, customers));
                let categorical = profile_categorical(&categorical_fields, customers);
                let numeric = numeric
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                (numeric, categorical)
            })
        } else {
            (
                profile_numeric(&numeric_fields, customers),
                profile_categorical(&categorical_fields, customers),
            )
        };
        let mut by_field: HashMap<Field, ColumnProfile> =
            numeric?.into_iter().chain(categorical).collect();
        let columns = DRIFT_FIELDS
            .iter()
            .filter_map(|f| by_field.remove(f))
            .collect();
        Ok(Self {
            schema_version: PROFILE_SCHEMA_VERSION,
            n_rows: customers.len() as u64,
            columns,
            prediction: None,
        })
    }

    /// Adds the reference churn probabilities (e.g. the model's out-of-fold or test-set predictions),
    /// each in `[0, 1]`; they need not come from the same rows as the attributes.
    pub fn with_prediction(mut self, probabilities: &[f64]) -> Result<Self, Error> {
        self.prediction = Some(ColumnProfile::from_probabilities(probabilities)?);
        Ok(self)
    }

    /// The profile of the attribute named `column` (snake_case).
    pub fn column(&self, column: &str) -> Option<&ColumnProfile> {
        self.columns.iter().find(|c| c.column == column)
    }

    /// The JSON artifact.
    pub fn to_json(&self) -> Result<Vec<u8>, Error> {
        serde_json::to_vec(self).map_err(|e| Error::InvalidProfile(e.to_string()))
    }

    /// Reads a JSON artifact, refusing another schema version or an inconsistent profile.
    pub fn from_json(bytes: &[u8]) -> Result<Self, Error> {
        let profile: ReferenceProfile =
            churn_core::artifact::from_json(bytes, PROFILE_SCHEMA_VERSION)?;
        profile.check().map_err(Error::InvalidProfile)?;
        Ok(profile)
    }

    /// Structural checks: the 25 columns in order, each of the right kind and consistent, each summing
    /// to `n_rows`; probabilities within `[0, 1]`.
    fn check(&self) -> Result<(), String> {
        if self.columns.len() != DRIFT_FIELDS.len() {
            return Err(format!(
                "{} columns, expected the {} customer attributes",
                self.columns.len(),
                DRIFT_FIELDS.len()
            ));
        }
        for (field, column) in DRIFT_FIELDS.iter().zip(&self.columns) {
            if column.column != field.name() {
                return Err(format!(
                    "column {:?} where {:?} was expected",
                    column.column,
                    field.name()
                ));
            }
            let expected = if is_numeric_field(*field) {
                "numeric"
            } else {
                "categorical"
            };
            if column.summary.kind() != expected {
                return Err(format!(
                    "{}: {} summary, expected {expected}",
                    column.column,
                    column.summary.kind()
                ));
            }
            check_summary(column)?;
            if column.summary.n() != self.n_rows {
                return Err(format!(
                    "{}: counts add up to {}, but the profile has {} rows",
                    column.column,
                    column.summary.n(),
                    self.n_rows
                ));
            }
        }
        if let Some(prediction) = &self.prediction {
            let ColumnSummary::Numeric(s) = &prediction.summary else {
                return Err("the prediction profile must be numeric".into());
            };
            check_summary(prediction)?;
            if s.values.iter().any(|p| !(0.0..=1.0).contains(p)) {
                return Err("a reference probability lies outside [0, 1]".into());
            }
        }
        Ok(())
    }
}

fn check_summary(column: &ColumnProfile) -> Result<(), String> {
    match &column.summary {
        ColumnSummary::Numeric(s) => s.check(&column.column),
        ColumnSummary::Categorical(s) => s.check(&column.column),
    }
}

/// Whether the attribute is profiled as numbers (Evidently sees these columns as numeric dtypes).
pub(crate) fn is_numeric_field(field: Field) -> bool {
    matches!(
        field,
        Field::ZipCode
            | Field::Latitude
            | Field::Longitude
            | Field::TenureMonths
            | Field::MonthlyCharges
            | Field::TotalCharges
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a failure should stop the test loudly
mod tests {
    use super::*;

    #[test]
    fn a_numeric_summary_keeps_distinct_values_in_order_with_their_counts() {
        let s = NumericSummary::from_finite(vec![3.5, 1.0, 3.5, -0.0, 0.0, 2.0]);
        // -0.0 and 0.0 are one value; 3.5 occurs twice.
        assert_eq!(s.values, vec![0.0, 1.0, 2.0, 3.5]);
        assert_eq!(s.counts, vec![2, 1, 1, 2]);
        assert_eq!(s.n(), 6);
        assert!(!s.integer, "3.5 is not whole");
        assert!(NumericSummary::from_finite(vec![1.0, 20.0, 3.0]).integer);
    }

    #[test]
    fn probabilities_outside_zero_to_one_are_refused_naming_the_index_and_value() {
        let error = ColumnProfile::from_probabilities(&[0.2, 1.5]).unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("index 1") && message.contains("1.5"),
            "{message}"
        );
        let nan = ColumnProfile::from_probabilities(&[f64::NAN]).unwrap_err();
        assert!(nan.to_string().contains("NaN"), "{nan}");
        assert_eq!(
            ColumnProfile::from_probabilities(&[]).unwrap_err(),
            Error::EmptyReference
        );
    }

    #[test]
    fn an_empty_training_set_cannot_be_profiled() {
        assert_eq!(
            ReferenceProfile::from_customers(&[]).unwrap_err(),
            Error::EmptyReference
        );
    }
}
