//! Calibration: predicted against observed churn rate per probability bin, and the expected
//! calibration error.
//!
//! Bins are scikit-learn's `calibration_curve(strategy="uniform")` bins exactly: the edges are numpy's
//! `linspace(0, 1, n_bins + 1)` (so the fourth of ten edges is 0.30000000000000004, not 0.3) and a
//! probability goes to the bin of `searchsorted(inner_edges, p)` (left side), so a probability equal to
//! an inner edge belongs to the bin *below* it. scikit-learn drops empty bins; here they are kept with
//! a count of 0 and no rates, so a dashboard sees every bin. The expected calibration error is
//! `Σ n_b/N · |mean predicted_b − observed rate_b|` over the non-empty bins.

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::stattest::linspace;

/// Most bins accepted: finer bins than this hold a handful of rows each and say nothing.
pub const MAX_BINS: usize = 1000;

/// Calibration settings as given; [`CalibrationOptions::check`] validates them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CalibrationOptions {
    /// Number of equal-width bins over [0, 1] (10 by default).
    pub n_bins: usize,
}

impl Default for CalibrationOptions {
    fn default() -> Self {
        Self { n_bins: 10 }
    }
}

impl CalibrationOptions {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn n_bins(mut self, n_bins: usize) -> Self {
        self.n_bins = n_bins;
        self
    }

    /// Refuses a bin count outside `1..=MAX_BINS`, naming it.
    pub fn check(&self) -> Result<ValidCalibrationOptions, Error> {
        if !(1..=MAX_BINS).contains(&self.n_bins) {
            return Err(Error::InvalidParameter {
                parameter: "n_bins",
                value: self.n_bins as f64,
                allowed: "a whole number of bins from 1 to 1000",
            });
        }
        Ok(ValidCalibrationOptions(*self))
    }
}

/// Calibration settings that passed [`CalibrationOptions::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(transparent)]
pub struct ValidCalibrationOptions(CalibrationOptions);

impl ValidCalibrationOptions {
    pub fn n_bins(&self) -> usize {
        self.0.n_bins
    }
}

/// One probability bin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBin {
    /// Lower edge; the bin holds probabilities above it (and 0 itself for the first bin).
    pub lower: f64,
    /// Upper edge, included in the bin.
    pub upper: f64,
    /// Predictions that fell in the bin.
    pub count: u64,
    /// Churners among them.
    pub positives: u64,
    /// Mean predicted probability (scikit-learn's `prob_pred`); `None` for an empty bin.
    pub mean_predicted: Option<f64>,
    /// Observed churn rate (scikit-learn's `prob_true`); `None` for an empty bin.
    pub observed_rate: Option<f64>,
}

/// The calibration of one set of predictions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Every bin, lowest first, empty ones included.
    pub bins: Vec<CalibrationBin>,
    /// Number of predictions.
    pub n: u64,
    /// Expected calibration error.
    pub ece: f64,
}

/// Bins `probabilities` (each in [0, 1]) with their `labels` (true = churned).
pub fn calibration(
    labels: &[bool],
    probabilities: &[f64],
    options: &ValidCalibrationOptions,
) -> Result<Calibration, Error> {
    if labels.len() != probabilities.len() {
        return Err(Error::LengthMismatch {
            labels: labels.len(),
            probabilities: probabilities.len(),
        });
    }
    if labels.is_empty() {
        return Err(Error::EmptyCalibration);
    }
    if let Some((index, value)) = probabilities
        .iter()
        .enumerate()
        .find(|(_, p)| !(0.0..=1.0).contains(*p))
    {
        return Err(Error::InvalidValue {
            column: "probability".to_owned(),
            index,
            value: value.to_string(),
            rule: "a probability must be a number in [0, 1]",
        });
    }
    let n_bins = options.n_bins();
    let edges = linspace(0.0, 1.0, n_bins + 1);
    let inner = &edges[1..n_bins];
    let mut sums = vec![0.0f64; n_bins];
    let mut counts = vec![0u64; n_bins];
    let mut positives = vec![0u64; n_bins];
    for (&label, &p) in labels.iter().zip(probabilities) {
        // numpy's searchsorted (left): the number of inner edges strictly below p.
        let bin = inner.partition_point(|&e| e < p);
        sums[bin] += p;
        counts[bin] += 1;
        positives[bin] += u64::from(label);
    }
    let n = labels.len() as u64;
    let mut ece = 0.0;
    let bins = (0..n_bins)
        .map(|b| {
            let count = counts[b];
            let (mean_predicted, observed_rate) = if count == 0 {
                (None, None)
            } else {
                let mean = sums[b] / count as f64;
                let observed = positives[b] as f64 / count as f64;
                ece += count as f64 / n as f64 * (mean - observed).abs();
                (Some(mean), Some(observed))
            };
            CalibrationBin {
                lower: edges[b],
                upper: edges[b + 1],
                count,
                positives: positives[b],
                mean_predicted,
                observed_rate,
            }
        })
        .collect();
    Ok(Calibration { bins, n, ece })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a failure should stop the test loudly
mod tests {
    use super::*;

    #[test]
    fn probabilities_on_an_inner_edge_fall_in_the_bin_below() {
        let options = CalibrationOptions::new().n_bins(4).check().unwrap();
        // Edges 0, 0.25, 0.5, 0.75, 1. 0.25 sits on an edge → bin 0; 0.0 → bin 0; 1.0 → bin 3.
        let c = calibration(
            &[true, false, true, false],
            &[0.25, 0.0, 1.0, 0.6],
            &options,
        )
        .unwrap();
        let counts: Vec<u64> = c.bins.iter().map(|b| b.count).collect();
        assert_eq!(counts, vec![2, 0, 1, 1]);
        // Bin 0: mean (0.25 + 0)/2 = 0.125, observed 1/2; bin 2: 0.6 vs 0; bin 3: 1.0 vs 1.
        assert_eq!(c.bins[0].mean_predicted, Some(0.125));
        assert_eq!(c.bins[0].observed_rate, Some(0.5));
        assert_eq!(c.bins[1].mean_predicted, None);
        // ECE = 2/4·|0.125 − 0.5| + 1/4·|0.6 − 0| + 1/4·|1 − 1| = 0.1875 + 0.15 = 0.3375.
        assert!((c.ece - 0.3375).abs() < 1e-15, "{}", c.ece);
    }

    #[test]
    fn the_bin_edges_are_numpys_linspace_values() {
        // linspace(0, 1, 11)[3] is 3·0.1 = 0.30000000000000004, just above 0.3: only the inner edges 0.1
        // and 0.2 lie below 0.3, so it falls in bin 2, where scikit-learn puts it too.
        let options = CalibrationOptions::default().check().unwrap();
        let c = calibration(&[false], &[0.3], &options).unwrap();
        assert_eq!(c.bins[2].count, 1);
        assert_eq!(c.bins[3].lower, 3.0 * 0.1);
    }

    #[test]
    fn bad_bin_counts_and_inputs_are_refused_by_name() {
        for bins in [0, MAX_BINS + 1] {
            let error = CalibrationOptions::new().n_bins(bins).check().unwrap_err();
            let message = error.to_string();
            assert!(
                message.starts_with(&format!("n_bins is {bins};")),
                "{message}"
            );
        }
        let options = ValidCalibrationOptions::default();
        assert_eq!(
            calibration(&[], &[], &options).unwrap_err(),
            Error::EmptyCalibration
        );
        assert_eq!(
            calibration(&[true], &[0.1, 0.2], &options).unwrap_err(),
            Error::LengthMismatch {
                labels: 1,
                probabilities: 2
            }
        );
        let message = calibration(&[true], &[1.2], &options)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("index 0") && message.contains("1.2"),
            "{message}"
        );
    }
}
