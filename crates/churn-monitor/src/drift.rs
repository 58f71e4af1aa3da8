//! Data and prediction drift decided as Evidently 0.7.23's `DataDriftPreset` decides it on pandas frames
//! read from the same rows written as CSV: column type, statistical test, score, threshold and verdict
//! per column, then the share of drifted columns.
//!
//! The rules, from Evidently's sources (`core/datasets.py` `infer_column_type`,
//! `legacy/calculations/stattests/registry.py` `_get_default_stattest`, the stattest modules and
//! `legacy/calculations/data_drift.py`):
//!
//! - **Column type** is inferred from the *current* data (Evidently's report takes its data definition
//!   from the current dataset): an integer column with at most 10 distinct values is categorical, other
//!   integers and all floats numerical, strings categorical. A float column whose values are all whole
//!   numbers is an integer column here, because our CSV writer prints `20.0` as `20` and pandas then
//!   reads integers. The zip code is numeric (pandas reads it as integers).
//! - **Test**: with a reference of at most 1,000 rows, KS for numerical columns with more than 5
//!   distinct values (over reference and current together), otherwise chi-square when there are more
//!   than 2 values and the Z-test when there are at most 2; with a larger reference, Wasserstein (normed)
//!   for numerical columns with more than 5 values and Jensen–Shannon for everything else.
//! - **Verdict**: KS drifts when p ≤ threshold, chi-square and Z when p < threshold (both 0.05 by
//!   default); Wasserstein, Jensen–Shannon and PSI when the distance ≥ threshold (0.1).
//! - **Dataset drift** when the share of drifted columns is at least `drift_share` (0.5).
//!
//! PSI is computed for every column as well (Evidently's `psi` test with `feel_zeroes`), beside the
//! chosen statistic.
//!
//! **One known difference.** Evidently types a string column as *text* when its distinct values
//! outnumber half its current rows, and then trains a text classifier to detect drift. With our data
//! only `city` gets there (1,129 cities in the seed), and only in current windows of up to roughly
//! 2,300 rows; a window of a single row would make every string column text. We keep such columns
//! categorical (chi-square or Jensen–Shannon on the city counts), so on those small windows `city`'s
//! test, score and verdict differ from Evidently's; every other column, and every window large enough,
//! matches.

use serde::{Deserialize, Serialize};

use churn_core::Customer;

use crate::Error;
use crate::ks::ks_2samp;
use crate::profile::{
    ColumnProfile, ColumnSummary, DRIFT_FIELDS, NumericSummary, ReferenceProfile,
};
use crate::stattest::{
    AlignedCounts, chisquare_p, feel_zeroes, histogram_shares, jensenshannon, psi, sturges_edges,
    wasserstein_normed, z_p,
};

/// Integer columns with at most this many distinct values are categorical (Evidently's
/// `INTEGER_CARDINALITY_LIMIT`).
pub const INTEGER_CARDINALITY_LIMIT: usize = 10;
/// References up to this many rows get the p-value tests; larger ones the distances.
pub const SMALL_REFERENCE_ROWS: u64 = 1000;
/// Numeric columns binned into Sturges histograms for PSI and Jensen–Shannon need more than this many
/// distinct reference values; fewer are compared value by value.
pub const BINNING_MIN_UNIQUE: usize = 20;

/// How Evidently treats a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    Numerical,
    Categorical,
}

impl ColumnType {
    pub const fn name(self) -> &'static str {
        match self {
            ColumnType::Numerical => "numerical",
            ColumnType::Categorical => "categorical",
        }
    }
}

impl std::fmt::Display for ColumnType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A drift test, named as Evidently's registry names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatTest {
    /// Two-sample Kolmogorov–Smirnov p-value.
    Ks,
    /// Pearson chi-square p-value of the current counts against the reference's.
    Chisquare,
    /// Two-proportion Z-test p-value.
    Z,
    /// Wasserstein distance divided by the reference's standard deviation.
    Wasserstein,
    /// Jensen–Shannon distance (natural logarithm).
    Jensenshannon,
    /// Population stability index.
    Psi,
}

impl StatTest {
    /// Every test, in a fixed order.
    pub const ALL: [StatTest; 6] = [
        StatTest::Ks,
        StatTest::Chisquare,
        StatTest::Z,
        StatTest::Wasserstein,
        StatTest::Jensenshannon,
        StatTest::Psi,
    ];

    /// The stable snake_case name (Evidently's registry name).
    pub const fn name(self) -> &'static str {
        match self {
            StatTest::Ks => "ks",
            StatTest::Chisquare => "chisquare",
            StatTest::Z => "z",
            StatTest::Wasserstein => "wasserstein",
            StatTest::Jensenshannon => "jensenshannon",
            StatTest::Psi => "psi",
        }
    }

    /// Whether the score is a p-value (drift when small) rather than a distance (drift when large).
    pub const fn is_p_value(self) -> bool {
        matches!(self, StatTest::Ks | StatTest::Chisquare | StatTest::Z)
    }

    /// Evidently's default threshold for the test.
    pub const fn default_threshold(self) -> f64 {
        if self.is_p_value() { 0.05 } else { 0.1 }
    }

    /// Evidently's verdict: KS drifts at p ≤ threshold, chi-square and Z at p < threshold, the
    /// distances at score ≥ threshold.
    pub fn drifted(self, score: f64, threshold: f64) -> bool {
        match self {
            StatTest::Ks => score <= threshold,
            StatTest::Chisquare | StatTest::Z => score < threshold,
            StatTest::Wasserstein | StatTest::Jensenshannon | StatTest::Psi => score >= threshold,
        }
    }

    /// Whether Evidently lets the test be chosen for a column of this type (its
    /// `allowed_feature_types`; only checked when a test is imposed through [`DriftOptions::stattest`],
    /// since Evidently's own default picks chi-square or Z for low-cardinality numerical columns too).
    pub const fn allows(self, column_type: ColumnType) -> bool {
        match self {
            StatTest::Ks | StatTest::Wasserstein => matches!(column_type, ColumnType::Numerical),
            StatTest::Chisquare | StatTest::Z => matches!(column_type, ColumnType::Categorical),
            StatTest::Jensenshannon | StatTest::Psi => true,
        }
    }

    fn threshold_parameter(self) -> &'static str {
        match self {
            StatTest::Ks => "ks_threshold",
            StatTest::Chisquare => "chisquare_threshold",
            StatTest::Z => "z_threshold",
            StatTest::Wasserstein => "wasserstein_threshold",
            StatTest::Jensenshannon => "jensenshannon_threshold",
            StatTest::Psi => "psi_threshold",
        }
    }
}

impl std::fmt::Display for StatTest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Drift settings as given; [`DriftOptions::check`] turns them into [`ValidDriftOptions`], the only
/// form the drift functions take, so an out-of-range setting is refused once, with its name.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DriftOptions {
    /// Dataset drift when at least this share of columns drift (Evidently's `drift_share`, 0.5).
    pub drift_share: f64,
    pub ks_threshold: f64,
    pub chisquare_threshold: f64,
    pub z_threshold: f64,
    pub wasserstein_threshold: f64,
    pub jensenshannon_threshold: f64,
    pub psi_threshold: f64,
    /// Impose one test on every column instead of Evidently's default choice (its `method`).
    pub stattest: Option<StatTest>,
}

impl Default for DriftOptions {
    fn default() -> Self {
        Self {
            drift_share: 0.5,
            ks_threshold: StatTest::Ks.default_threshold(),
            chisquare_threshold: StatTest::Chisquare.default_threshold(),
            z_threshold: StatTest::Z.default_threshold(),
            wasserstein_threshold: StatTest::Wasserstein.default_threshold(),
            jensenshannon_threshold: StatTest::Jensenshannon.default_threshold(),
            psi_threshold: StatTest::Psi.default_threshold(),
            stattest: None,
        }
    }
}

impl DriftOptions {
    /// Evidently's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the share of drifted columns that makes the dataset drift.
    pub fn drift_share(mut self, share: f64) -> Self {
        self.drift_share = share;
        self
    }

    /// Sets the threshold of one test.
    pub fn threshold(mut self, test: StatTest, value: f64) -> Self {
        *self.threshold_slot(test) = value;
        self
    }

    /// Imposes one test on every column.
    pub fn stattest(mut self, test: StatTest) -> Self {
        self.stattest = Some(test);
        self
    }

    fn threshold_slot(&mut self, test: StatTest) -> &mut f64 {
        match test {
            StatTest::Ks => &mut self.ks_threshold,
            StatTest::Chisquare => &mut self.chisquare_threshold,
            StatTest::Z => &mut self.z_threshold,
            StatTest::Wasserstein => &mut self.wasserstein_threshold,
            StatTest::Jensenshannon => &mut self.jensenshannon_threshold,
            StatTest::Psi => &mut self.psi_threshold,
        }
    }

    fn threshold_of(&self, test: StatTest) -> f64 {
        match test {
            StatTest::Ks => self.ks_threshold,
            StatTest::Chisquare => self.chisquare_threshold,
            StatTest::Z => self.z_threshold,
            StatTest::Wasserstein => self.wasserstein_threshold,
            StatTest::Jensenshannon => self.jensenshannon_threshold,
            StatTest::Psi => self.psi_threshold,
        }
    }

    /// Refuses a setting out of range, naming it, its value and the allowed range: the drift share
    /// must lie in (0, 1], a p-value threshold in (0, 1), a distance threshold be finite and above 0.
    pub fn check(&self) -> Result<ValidDriftOptions, Error> {
        // `contains` and the comparisons are false for NaN, so NaN is refused everywhere.
        if !(self.drift_share > 0.0 && self.drift_share <= 1.0) {
            return Err(Error::InvalidParameter {
                parameter: "drift_share",
                value: self.drift_share,
                allowed: "a share in (0, 1]",
            });
        }
        for test in StatTest::ALL {
            let value = self.threshold_of(test);
            let (ok, allowed) = if test.is_p_value() {
                (value > 0.0 && value < 1.0, "a p-value in (0, 1)")
            } else {
                (
                    value > 0.0 && value.is_finite(),
                    "a finite distance above 0",
                )
            };
            if !ok {
                return Err(Error::InvalidParameter {
                    parameter: test.threshold_parameter(),
                    value,
                    allowed,
                });
            }
        }
        Ok(ValidDriftOptions(*self))
    }
}

/// Drift settings that passed [`DriftOptions::check`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(transparent)]
pub struct ValidDriftOptions(DriftOptions);

impl Default for ValidDriftOptions {
    /// Evidently's defaults, which are valid by construction.
    fn default() -> Self {
        Self(DriftOptions::default())
    }
}

impl ValidDriftOptions {
    pub fn drift_share(&self) -> f64 {
        self.0.drift_share
    }

    pub fn threshold(&self, test: StatTest) -> f64 {
        self.0.threshold_of(test)
    }

    /// The test imposed on every column, if any.
    pub fn stattest(&self) -> Option<StatTest> {
        self.0.stattest
    }

    /// The settings as given.
    pub fn options(&self) -> &DriftOptions {
        &self.0
    }
}

/// Drift of one column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnDrift {
    /// snake_case attribute name, or [`crate::PREDICTION_COLUMN`].
    pub column: String,
    pub column_type: ColumnType,
    pub stattest: StatTest,
    /// The p-value or distance of `stattest`.
    pub score: f64,
    pub threshold: f64,
    pub drifted: bool,
    /// Population stability index of the same column (Evidently's `psi` test), whatever `stattest` is.
    pub psi: f64,
    pub n_reference: u64,
    pub n_current: u64,
}

/// Drift of every attribute and the dataset verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetDrift {
    /// One entry per attribute, in the dataset's column order.
    pub columns: Vec<ColumnDrift>,
    pub n_columns: usize,
    pub n_drifted: usize,
    pub share_drifted: f64,
    pub drift_share_threshold: f64,
    /// `share_drifted >= drift_share_threshold`.
    pub dataset_drift: bool,
}

/// Drift of the 25 attributes of `current` against the reference profile.
pub fn data_drift(
    reference: &ReferenceProfile,
    current: &[Customer],
    options: &ValidDriftOptions,
) -> Result<DatasetDrift, Error> {
    if current.is_empty() {
        return Err(Error::EmptyCurrent);
    }
    let current = ReferenceProfile::from_customers(current).map_err(current_side)?;
    dataset_drift(reference, &current, options)
}

/// Drift between two profiles (e.g. one of a window built elsewhere), attribute by attribute.
pub fn dataset_drift(
    reference: &ReferenceProfile,
    current: &ReferenceProfile,
    options: &ValidDriftOptions,
) -> Result<DatasetDrift, Error> {
    let mut columns = Vec::with_capacity(DRIFT_FIELDS.len());
    for field in DRIFT_FIELDS {
        let name = field.name();
        let r = reference
            .column(name)
            .ok_or_else(|| Error::MissingColumn(name.to_owned()))?;
        let c = current
            .column(name)
            .ok_or_else(|| Error::MissingColumn(name.to_owned()))?;
        columns.push(column_drift(r, c, options)?);
    }
    let n_columns = columns.len();
    let n_drifted = columns.iter().filter(|c| c.drifted).count();
    let share_drifted = n_drifted as f64 / n_columns as f64;
    Ok(DatasetDrift {
        columns,
        n_columns,
        n_drifted,
        share_drifted,
        drift_share_threshold: options.drift_share(),
        dataset_drift: share_drifted >= options.drift_share(),
    })
}

/// Drift of the model's churn probabilities on `current` rows against the reference's.
pub fn prediction_drift(
    reference: &ReferenceProfile,
    current_probabilities: &[f64],
    options: &ValidDriftOptions,
) -> Result<ColumnDrift, Error> {
    let reference = reference
        .prediction
        .as_ref()
        .ok_or(Error::NoPredictionReference)?;
    if current_probabilities.is_empty() {
        return Err(Error::EmptyCurrent);
    }
    let current = ColumnProfile::from_probabilities(current_probabilities).map_err(current_side)?;
    column_drift(reference, &current, options)
}

/// Errors from profiling the current side name it as such.
fn current_side(error: Error) -> Error {
    match error {
        Error::EmptyReference => Error::EmptyCurrent,
        other => other,
    }
}

/// Evidently's type for a column, from the current side's values.
pub fn infer_column_type(current: &ColumnSummary) -> ColumnType {
    match current {
        ColumnSummary::Numeric(s) if s.integer && s.n_unique() <= INTEGER_CARDINALITY_LIMIT => {
            ColumnType::Categorical
        }
        ColumnSummary::Numeric(_) => ColumnType::Numerical,
        ColumnSummary::Categorical(_) => ColumnType::Categorical,
    }
}

/// Evidently's default test (`_get_default_stattest`) for a reference of `n_reference` rows and
/// `n_unique` distinct values over both sides.
pub fn default_stattest(column_type: ColumnType, n_reference: u64, n_unique: usize) -> StatTest {
    let p_value_test = if n_unique > 2 {
        StatTest::Chisquare
    } else {
        StatTest::Z
    };
    match (n_reference <= SMALL_REFERENCE_ROWS, column_type) {
        (true, ColumnType::Numerical) if n_unique > 5 => StatTest::Ks,
        (true, _) => p_value_test,
        (false, ColumnType::Numerical) if n_unique > 5 => StatTest::Wasserstein,
        (false, _) => StatTest::Jensenshannon,
    }
}

/// Drift of one column between two profiles of the same kind.
pub fn column_drift(
    reference: &ColumnProfile,
    current: &ColumnProfile,
    options: &ValidDriftOptions,
) -> Result<ColumnDrift, Error> {
    let n_reference = reference.summary.n();
    let n_current = current.summary.n();
    if n_current == 0 {
        return Err(Error::EmptyCurrent);
    }
    if n_reference == 0 {
        return Err(Error::EmptyReference);
    }
    let aligned = match (&reference.summary, &current.summary) {
        (ColumnSummary::Numeric(r), ColumnSummary::Numeric(c)) => AlignedCounts::numeric(r, c),
        (ColumnSummary::Categorical(r), ColumnSummary::Categorical(c)) => {
            AlignedCounts::categorical(r, c)
        }
        (r, c) => {
            return Err(Error::KindMismatch {
                column: reference.column.clone(),
                reference: r.kind(),
                current: c.kind(),
            });
        }
    };
    let column_type = infer_column_type(&current.summary);
    let stattest = match options.stattest() {
        Some(test) if !test.allows(column_type) => {
            return Err(Error::StatTestNotApplicable {
                column: reference.column.clone(),
                stattest: test.name(),
                column_type: column_type.name(),
            });
        }
        Some(test) => test,
        None => default_stattest(column_type, n_reference, aligned.n_unique()),
    };
    let numeric = match (&reference.summary, &current.summary) {
        (ColumnSummary::Numeric(r), ColumnSummary::Numeric(c)) => Some((r, c)),
        _ => None,
    };
    let score = match (stattest, numeric) {
        (StatTest::Ks, Some((r, c))) => ks_2samp(r, c).p_value,
        (StatTest::Wasserstein, Some((r, c))) => wasserstein_normed(r, c),
        (StatTest::Chisquare, _) => chisquare_p(&aligned),
        (StatTest::Z, _) => z_p(&aligned),
        (StatTest::Jensenshannon, _) => {
            let (p, q) = binned(numeric, &aligned, column_type, false);
            jensenshannon(&p, &q)
        }
        (StatTest::Psi, _) => {
            let (p, q) = binned(numeric, &aligned, column_type, true);
            psi(&p, &q)
        }
        // KS and Wasserstein need numbers; a numerical column always has them.
        (test, None) => {
            return Err(Error::StatTestNotApplicable {
                column: reference.column.clone(),
                stattest: test.name(),
                column_type: "text",
            });
        }
    };
    let threshold = options.threshold(stattest);
    let (p, q) = binned(numeric, &aligned, column_type, true);
    Ok(ColumnDrift {
        column: reference.column.clone(),
        column_type,
        stattest,
        score,
        threshold,
        drifted: stattest.drifted(score, threshold),
        psi: psi(&p, &q),
        n_reference,
        n_current,
    })
}

/// Evidently's `get_binned_data`: Sturges histograms over both sides for a numerical column with more
/// than 20 distinct reference values, otherwise each value's share; zeros filled when asked.
fn binned(
    numeric: Option<(&NumericSummary, &NumericSummary)>,
    aligned: &AlignedCounts,
    column_type: ColumnType,
    fill_zeroes: bool,
) -> (Vec<f64>, Vec<f64>) {
    let (mut p, mut q) = match numeric {
        Some((r, c))
            if column_type == ColumnType::Numerical && r.n_unique() > BINNING_MIN_UNIQUE =>
        {
            let edges = sturges_edges(r, c);
            (histogram_shares(r, &edges), histogram_shares(c, &edges))
        }
        _ => aligned.percents(),
    };
    if fill_zeroes {
        feel_zeroes(&mut p);
        feel_zeroes(&mut q);
    }
    (p, q)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a failure should stop the test loudly
mod tests {
    use super::*;
    use crate::profile::CategoricalSummary;
    use std::collections::BTreeMap;

    fn numeric(column: &str, values: &[f64]) -> ColumnProfile {
        ColumnProfile {
            column: column.to_owned(),
            summary: ColumnSummary::Numeric(NumericSummary::from_finite(values.to_vec())),
        }
    }

    fn categorical(column: &str, values: &[(&str, u64)]) -> ColumnProfile {
        let counts: BTreeMap<String, u64> =
            values.iter().map(|(k, c)| ((*k).to_owned(), *c)).collect();
        ColumnProfile {
            column: column.to_owned(),
            summary: ColumnSummary::Categorical(CategoricalSummary { counts }),
        }
    }

    fn defaults() -> ValidDriftOptions {
        DriftOptions::default().check().unwrap()
    }

    #[test]
    fn default_tests_follow_evidentlys_table() {
        use ColumnType::{Categorical as C, Numerical as N};
        // Small reference (≤ 1000 rows).
        assert_eq!(default_stattest(N, 1000, 6), StatTest::Ks);
        assert_eq!(default_stattest(N, 1000, 5), StatTest::Chisquare);
        assert_eq!(default_stattest(N, 1000, 3), StatTest::Chisquare);
        assert_eq!(default_stattest(N, 1000, 2), StatTest::Z);
        assert_eq!(default_stattest(C, 1000, 40), StatTest::Chisquare);
        assert_eq!(default_stattest(C, 1000, 2), StatTest::Z);
        assert_eq!(default_stattest(C, 1000, 1), StatTest::Z);
        // Large reference (> 1000 rows).
        assert_eq!(default_stattest(N, 1001, 6), StatTest::Wasserstein);
        assert_eq!(default_stattest(N, 1001, 5), StatTest::Jensenshannon);
        assert_eq!(default_stattest(C, 1001, 40), StatTest::Jensenshannon);
        assert_eq!(default_stattest(C, 1001, 1), StatTest::Jensenshannon);
    }

    #[test]
    fn integer_columns_with_at_most_ten_values_are_categorical() {
        let ten: Vec<f64> = (0..10).map(f64::from).collect();
        let eleven: Vec<f64> = (0..11).map(f64::from).collect();
        let t = |v: &[f64]| infer_column_type(&numeric("x", v).summary);
        assert_eq!(t(&ten), ColumnType::Categorical);
        assert_eq!(t(&eleven), ColumnType::Numerical);
        // One fractional value makes the whole column float, hence numerical.
        assert_eq!(t(&[1.0, 2.5]), ColumnType::Numerical);
        assert_eq!(
            infer_column_type(&categorical("x", &[("a", 1)]).summary),
            ColumnType::Categorical
        );
    }

    #[test]
    fn verdicts_follow_each_tests_direction_at_the_threshold() {
        // KS drifts at p == threshold, chi-square and Z do not; distances drift at == threshold.
        assert!(StatTest::Ks.drifted(0.05, 0.05));
        assert!(!StatTest::Chisquare.drifted(0.05, 0.05));
        assert!(!StatTest::Z.drifted(0.05, 0.05));
        assert!(StatTest::Wasserstein.drifted(0.1, 0.1));
        assert!(StatTest::Jensenshannon.drifted(0.1, 0.1));
        assert!(!StatTest::Jensenshannon.drifted(0.099, 0.1));
    }

    #[test]
    fn a_small_binary_column_gets_the_z_test_with_its_p_value() {
        // 70/30 against 55/45 "No"/"Yes": z = −2.1908902300206647, p = 0.02845973691631065 (scipy).
        let r = categorical("partner", &[("No", 70), ("Yes", 30)]);
        let c = categorical("partner", &[("No", 55), ("Yes", 45)]);
        let d = column_drift(&r, &c, &defaults()).unwrap();
        assert_eq!(d.stattest, StatTest::Z);
        assert_eq!(d.column_type, ColumnType::Categorical);
        assert!(
            (d.score - 0.028_459_736_916_310_65).abs() < 1e-15,
            "{}",
            d.score
        );
        assert!(d.drifted);
        assert_eq!((d.n_reference, d.n_current), (100, 100));
        // PSI over the two shares: (0.7−0.55)·ln(0.7/0.55) + (0.3−0.45)·ln(0.3/0.45)
        // = 0.09699407473875783 (numpy).
        assert!(
            (d.psi - 0.096_994_074_738_757_83).abs() < 1e-15,
            "{}",
            d.psi
        );
    }

    #[test]
    fn a_constant_column_never_drifts_against_itself() {
        let r = categorical("country", &[("United States", 2000)]);
        let c = categorical("country", &[("United States", 30)]);
        let d = column_drift(&r, &c, &defaults()).unwrap();
        // A large reference: Jensen–Shannon of identical one-value distributions is 0.
        assert_eq!(
            (d.stattest, d.score, d.drifted),
            (StatTest::Jensenshannon, 0.0, false)
        );
        assert_eq!(d.psi, 0.0);
        let small = categorical("country", &[("United States", 20)]);
        let d = column_drift(&small, &c, &defaults()).unwrap();
        assert_eq!((d.stattest, d.score, d.drifted), (StatTest::Z, 1.0, false));
    }

    #[test]
    fn a_large_numeric_reference_gets_the_normed_wasserstein_distance() {
        // 1001 reference values 0..=1000 (population std 288.9636655359978) against the same values
        // shifted by 100: the distance is 100, normed 100/288.96… = 0.34606…
        let r: Vec<f64> = (0..=1000).map(f64::from).collect();
        let c: Vec<f64> = r.iter().map(|v| v + 100.0).collect();
        let d = column_drift(
            &numeric("tenure_months", &r),
            &numeric("tenure_months", &c),
            &defaults(),
        )
        .unwrap();
        assert_eq!(d.stattest, StatTest::Wasserstein);
        let expected = 100.0 / 288.963_665_535_997_8;
        assert!((d.score - expected).abs() < 1e-9, "{}", d.score);
        assert!(d.drifted);
    }

    #[test]
    fn an_imposed_test_must_suit_the_column_type() {
        let options = DriftOptions::default()
            .stattest(StatTest::Ks)
            .check()
            .unwrap();
        let r = categorical("gender", &[("Female", 1), ("Male", 1)]);
        let error = column_drift(&r, &r, &options).unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("ks") && message.contains("gender"),
            "{message}"
        );
        let psi = DriftOptions::default()
            .stattest(StatTest::Psi)
            .check()
            .unwrap();
        let d = column_drift(&r, &r, &psi).unwrap();
        assert_eq!(
            (d.stattest, d.score, d.drifted),
            (StatTest::Psi, 0.0, false)
        );
    }

    #[test]
    fn each_bad_option_is_refused_naming_the_parameter_its_value_and_range() {
        let cases = [
            (DriftOptions::default().drift_share(0.0), "drift_share", "0"),
            (
                DriftOptions::default().drift_share(1.5),
                "drift_share",
                "1.5",
            ),
            (
                DriftOptions::default().drift_share(f64::NAN),
                "drift_share",
                "NaN",
            ),
            (
                DriftOptions::default().threshold(StatTest::Ks, 1.0),
                "ks_threshold",
                "1",
            ),
            (
                DriftOptions::default().threshold(StatTest::Chisquare, -0.1),
                "chisquare_threshold",
                "-0.1",
            ),
            (
                DriftOptions::default().threshold(StatTest::Z, 0.0),
                "z_threshold",
                "0",
            ),
            (
                DriftOptions::default().threshold(StatTest::Wasserstein, 0.0),
                "wasserstein_threshold",
                "0",
            ),
            (
                DriftOptions::default().threshold(StatTest::Jensenshannon, f64::INFINITY),
                "jensenshannon_threshold",
                "inf",
            ),
            (
                DriftOptions::default().threshold(StatTest::Psi, -1.0),
                "psi_threshold",
                "-1",
            ),
        ];
        for (options, parameter, value) in cases {
            let error = options.check().unwrap_err();
            let message = error.to_string();
            assert!(
                matches!(error, Error::InvalidParameter { parameter: p, .. } if p == parameter),
                "{message}"
            );
            assert!(
                message.starts_with(&format!("{parameter} is {value};"))
                    && message.contains("must be"),
                "{message}"
            );
        }
        assert!(DriftOptions::default().drift_share(1.0).check().is_ok());
    }

    #[test]
    fn empty_current_data_is_an_error_not_a_nan() {
        let profile = ReferenceProfile {
            schema_version: crate::PROFILE_SCHEMA_VERSION,
            n_rows: 1,
            columns: Vec::new(),
            prediction: Some(numeric(crate::PREDICTION_COLUMN, &[0.5])),
        };
        assert_eq!(
            data_drift(&profile, &[], &defaults()).unwrap_err(),
            Error::EmptyCurrent
        );
        assert_eq!(
            prediction_drift(&profile, &[], &defaults()).unwrap_err(),
            Error::EmptyCurrent
        );
        let no_prediction = ReferenceProfile {
            prediction: None,
            ..profile
        };
        assert_eq!(
            prediction_drift(&no_prediction, &[0.5], &defaults()).unwrap_err(),
            Error::NoPredictionReference
        );
    }

    #[test]
    fn options_read_back_from_json_with_defaults_for_missing_keys() {
        let options: DriftOptions =
            serde_json::from_str(r#"{"drift_share": 0.3, "stattest": "psi"}"#).unwrap();
        assert_eq!(options.drift_share, 0.3);
        assert_eq!(options.stattest, Some(StatTest::Psi));
        assert_eq!(options.ks_threshold, 0.05);
        assert!(serde_json::from_str::<DriftOptions>(r#"{"drift_shar": 0.3}"#).is_err());
    }
}
