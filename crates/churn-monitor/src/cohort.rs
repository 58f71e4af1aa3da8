//! Cohort metrics: ROC AUC, PR AUC, log loss, Brier and calibration of the predictions made on one UTC
//! day or one ISO week (Monday to Sunday, UTC), for every row and per slice value, with the label
//! coverage (labelled predictions / predictions).
//!
//! The figures are `churn_core::metrics::evaluate`'s (scikit-learn's conventions: average precision for
//! PR AUC, log loss clipped at 1e-15) and [`crate::calibration()`]'s bins. A million predictions fall into
//! eight groups each (two cohorts × the `all` slice and three slice columns), so the labelled rows are
//! sorted by probability once and dealt into their groups in that order: each group arrives sorted and
//! its own sort is a linear scan.

use churn_core::metrics;

use crate::Error;
use crate::calibration::{Calibration, ValidCalibrationOptions, calibration};

/// Microseconds in a day.
const DAY_MICROS: i64 = 86_400_000_000;

/// How predictions are grouped by their time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CohortKind {
    /// One UTC calendar day.
    Day,
    /// One ISO week, Monday 00:00 UTC to the next Monday.
    Week,
}

impl CohortKind {
    pub const ALL: [CohortKind; 2] = [CohortKind::Day, CohortKind::Week];

    pub fn as_str(self) -> &'static str {
        match self {
            CohortKind::Day => "day",
            CohortKind::Week => "week",
        }
    }

    /// The cohort's length in days.
    pub fn days(self) -> i64 {
        match self {
            CohortKind::Day => 1,
            CohortKind::Week => 7,
        }
    }

    /// The first day (days since 1970-01-01) of the cohort holding `day`.
    pub fn start_of(self, day: i64) -> i64 {
        match self {
            CohortKind::Day => day,
            // 1970-01-01 was a Thursday: three days after a Monday.
            CohortKind::Week => day - (day + 3).rem_euclid(7),
        }
    }
}

/// A column the cohorts are sliced by: each row's value as an index into `values`.
#[derive(Debug, Clone, Copy)]
pub struct SliceColumn<'a> {
    /// `contract`, `internet_service`, `senior_citizen`.
    pub name: &'static str,
    pub codes: &'a [u16],
    pub values: &'a [String],
}

/// One model version's predictions from one source, column by column.
#[derive(Debug, Clone, Copy)]
pub struct ScoredColumns<'a> {
    /// When each prediction was made, in microseconds since the Unix epoch.
    pub predicted_at: &'a [i64],
    pub probabilities: &'a [f64],
    /// The outcome that judges each prediction, if one is known.
    pub labels: &'a [Option<bool>],
    pub slices: &'a [SliceColumn<'a>],
}

/// The figures of one cohort and slice value.
#[derive(Debug, Clone, PartialEq)]
pub struct CohortFigures {
    pub kind: CohortKind,
    /// The cohort's first day, in days since 1970-01-01.
    pub start_day: i64,
    /// `all` or a slice column's name.
    pub slice: &'static str,
    /// `all` or the slice's value.
    pub slice_value: String,
    pub n_predictions: u64,
    pub n_labelled: u64,
    pub n_positive: u64,
    /// `None` with a single class among the labelled rows.
    pub roc_auc: Option<f64>,
    /// `None` without a positive.
    pub pr_auc: Option<f64>,
    /// `None` without a labelled row, as are the rest.
    pub log_loss: Option<f64>,
    pub brier: Option<f64>,
    pub calibration: Option<Calibration>,
}

impl CohortFigures {
    /// Labelled predictions over predictions.
    pub fn label_coverage(&self) -> f64 {
        if self.n_predictions == 0 {
            0.0
        } else {
            self.n_labelled as f64 / self.n_predictions as f64
        }
    }
}

/// Where a group sits: its cohort and slice value.
#[derive(Debug, Clone, Copy)]
struct GroupKey {
    kind: CohortKind,
    start_day: i64,
    /// Index of the slice column + 1; 0 for `all`.
    slice: usize,
    value: usize,
}

/// The figures of every cohort (day and week) and slice value that holds a prediction, except the
/// cohorts `skip(kind, start_day)` names (final ones, say). Figures of a group without labelled rows are
/// all `None`.
pub fn cohort_figures(
    scored: &ScoredColumns<'_>,
    options: &ValidCalibrationOptions,
    skip: impl Fn(CohortKind, i64) -> bool,
) -> Result<Vec<CohortFigures>, Error> {
    let n = scored.predicted_at.len();
    if scored.probabilities.len() != n
        || scored.labels.len() != n
        || scored.slices.iter().any(|s| s.codes.len() != n)
    {
        return Err(Error::LengthMismatch {
            labels: scored.labels.len(),
            probabilities: scored.probabilities.len(),
        });
    }
    if n == 0 {
        return Ok(Vec::new());
    }
    if let Some((index, p)) = scored
        .probabilities
        .iter()
        .enumerate()
        .find(|(_, p)| !(0.0..=1.0).contains(*p))
    {
        return Err(Error::InvalidValue {
            column: "probability".to_owned(),
            index,
            value: p.to_string(),
            rule: "a probability must be a number in [0, 1]",
        });
    }
    for s in scored.slices {
        if let Some((index, code)) = s
            .codes
            .iter()
            .enumerate()
            .find(|(_, c)| usize::from(**c) >= s.values.len())
        {
            return Err(Error::InvalidValue {
                column: s.name.to_owned(),
                index,
                value: code.to_string(),
                rule: "a slice code must index the slice's values",
            });
        }
    }

    // Dense group ids: cohort (days first, then weeks) × slice value (`all`, then each column's values).
    let days: Vec<i64> = scored
        .predicted_at
        .iter()
        .map(|t| t.div_euclid(DAY_MICROS))
        .collect();
    let (min_day, max_day) = days
        .iter()
        .fold((i64::MAX, i64::MIN), |(lo, hi), &d| (lo.min(d), hi.max(d)));
    let first_week = CohortKind::Week.start_of(min_day);
    let n_days = (max_day - min_day + 1) as usize;
    let n_weeks = ((CohortKind::Week.start_of(max_day) - first_week) / 7 + 1) as usize;
    let mut value_offsets = vec![1usize];
    for s in scored.slices {
        let last = value_offsets[value_offsets.len() - 1];
        value_offsets.push(last + s.values.len());
    }
    let n_values = value_offsets[value_offsets.len() - 1];
    let n_groups = (n_days + n_weeks) * n_values;
    let per_row = 2 * (1 + scored.slices.len());
    let groups_of = |i: usize, out: &mut Vec<usize>| {
        out.clear();
        let day = days[i];
        let cohorts = [
            (day - min_day) as usize,
            n_days + ((CohortKind::Week.start_of(day) - first_week) / 7) as usize,
        ];
        for cohort in cohorts {
            let base = cohort * n_values;
            out.push(base);
            for (k, s) in scored.slices.iter().enumerate() {
                out.push(base + value_offsets[k] + usize::from(s.codes[i]));
            }
        }
    };

    let mut predictions = vec![0u64; n_groups];
    let mut labelled = vec![0usize; n_groups];
    let mut ids = Vec::with_capacity(per_row);
    for i in 0..n {
        groups_of(i, &mut ids);
        for &g in &ids {
            predictions[g] += 1;
            if scored.labels[i].is_some() {
                labelled[g] += 1;
            }
        }
    }
    // Highest probability first, as the ranking metrics walk them.
    let mut order: Vec<u32> = (0..n as u32)
        .filter(|&i| scored.labels[i as usize].is_some())
        .collect();
    order.sort_unstable_by(|&a, &b| {
        scored.probabilities[b as usize].total_cmp(&scored.probabilities[a as usize])
    });
    let mut group_labels: Vec<Vec<bool>> =
        labelled.iter().map(|&c| Vec::with_capacity(c)).collect();
    let mut group_probabilities: Vec<Vec<f64>> =
        labelled.iter().map(|&c| Vec::with_capacity(c)).collect();
    for &i in &order {
        let i = i as usize;
        let label = scored.labels[i].unwrap_or(false);
        let p = scored.probabilities[i];
        groups_of(i, &mut ids);
        for &g in &ids {
            group_labels[g].push(label);
            group_probabilities[g].push(p);
        }
    }

    let key_of = |g: usize| {
        let (cohort, value) = (g / n_values, g % n_values);
        let (kind, start_day) = if cohort < n_days {
            (CohortKind::Day, min_day + cohort as i64)
        } else {
            (CohortKind::Week, first_week + 7 * (cohort - n_days) as i64)
        };
        // Column k's values start at value_offsets[k]; slice 0 is `all`, slice k + 1 column k.
        let slice = value_offsets
            .iter()
            .rposition(|&o| o <= value)
            .map_or(0, |k| k + 1);
        let value = if slice == 0 {
            0
        } else {
            value - value_offsets[slice - 1]
        };
        GroupKey {
            kind,
            start_day,
            slice,
            value,
        }
    };
    let wanted: Vec<(usize, GroupKey)> = (0..n_groups)
        .filter(|&g| predictions[g] > 0)
        .map(|g| (g, key_of(g)))
        .filter(|(_, k)| !skip(k.kind, k.start_day))
        .collect();
    let figure = |&(g, key): &(usize, GroupKey)| -> Result<CohortFigures, Error> {
        let (slice, slice_value) = match key.slice {
            0 => ("all", "all".to_owned()),
            s => (
                scored.slices[s - 1].name,
                scored.slices[s - 1].values[key.value].clone(),
            ),
        };
        let (labels, probabilities) = (&group_labels[g], &group_probabilities[g]);
        let mut out = CohortFigures {
            kind: key.kind,
            start_day: key.start_day,
            slice,
            slice_value,
            n_predictions: predictions[g],
            n_labelled: labels.len() as u64,
            n_positive: labels.iter().filter(|&&l| l).count() as u64,
            roc_auc: None,
            pr_auc: None,
            log_loss: None,
            brier: None,
            calibration: None,
        };
        if !labels.is_empty() {
            let m = metrics::evaluate(labels, probabilities, 0.5)
                .map_err(|e| Error::Cohort(e.to_string()))?;
            out.roc_auc = m.roc_auc;
            out.pr_auc = m.pr_auc;
            out.log_loss = Some(m.log_loss);
            out.brier = Some(m.brier);
            out.calibration = Some(calibration(labels, probabilities, options)?);
        }
        Ok(out)
    };
    // Two cores: each half of the groups on its own thread.
    let (first, second) = wanted.split_at(wanted.len() / 2);
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(|| first.iter().map(figure).collect::<Result<Vec<_>, _>>());
        let b = second.iter().map(figure).collect::<Result<Vec<_>, _>>();
        (a.join(), b)
    });
    let mut out = a.map_err(|_| Error::Cohort("a cohort thread panicked".to_owned()))??;
    out.extend(b?);
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::CalibrationOptions;

    const MONDAY_2026_11_30: i64 = 20_787;

    #[test]
    fn weeks_start_on_monday_in_utc() {
        assert_eq!(CohortKind::Week.start_of(0), -3);
        assert_eq!(
            CohortKind::Week.start_of(MONDAY_2026_11_30),
            MONDAY_2026_11_30
        );
        assert_eq!(
            CohortKind::Week.start_of(MONDAY_2026_11_30 + 6),
            MONDAY_2026_11_30
        );
        assert_eq!(
            CohortKind::Week.start_of(MONDAY_2026_11_30 + 7),
            MONDAY_2026_11_30 + 7
        );
    }

    #[test]
    fn each_cohort_and_slice_value_gets_the_metrics_of_its_own_labelled_rows() {
        let day = |d: i64, hour: i64| (MONDAY_2026_11_30 + d) * DAY_MICROS + hour * 3_600_000_000;
        let predicted_at = [
            day(0, 1),
            day(0, 2),
            day(0, 3),
            day(1, 1),
            day(1, 2),
            day(8, 0),
        ];
        let probabilities = [0.9, 0.2, 0.6, 0.7, 0.1, 0.5];
        let labels = [
            Some(true),
            Some(false),
            None,
            Some(false),
            Some(true),
            Some(true),
        ];
        let values = ["A".to_owned(), "B".to_owned()];
        let codes = [0u16, 0, 1, 1, 1, 0];
        let slices = [SliceColumn {
            name: "contract",
            codes: &codes,
            values: &values,
        }];
        let scored = ScoredColumns {
            predicted_at: &predicted_at,
            probabilities: &probabilities,
            labels: &labels,
            slices: &slices,
        };
        let options = CalibrationOptions::new().check().unwrap();
        let figures = cohort_figures(&scored, &options, |_, _| false).unwrap();
        let find = |kind, start, slice: &str, value: &str| {
            figures
                .iter()
                .find(|f| {
                    f.kind == kind
                        && f.start_day == MONDAY_2026_11_30 + start
                        && f.slice == slice
                        && f.slice_value == value
                })
                .unwrap()
        };
        let monday = find(CohortKind::Day, 0, "all", "all");
        assert_eq!(
            (monday.n_predictions, monday.n_labelled, monday.n_positive),
            (3, 2, 1)
        );
        assert_eq!(monday.roc_auc, Some(1.0));
        let week = find(CohortKind::Week, 0, "all", "all");
        assert_eq!((week.n_predictions, week.n_labelled), (5, 4));
        // Positives 0.9 and 0.1 against negatives 0.2 and 0.7: two of four pairs ordered.
        assert_eq!(week.roc_auc, Some(0.5));
        let b = find(CohortKind::Week, 0, "contract", "B");
        assert_eq!((b.n_predictions, b.n_labelled), (3, 2));
        assert!((b.label_coverage() - 2.0 / 3.0).abs() < 1e-12);
        let next = find(CohortKind::Week, 7, "all", "all");
        assert_eq!(
            (next.n_predictions, next.roc_auc, next.pr_auc),
            (1, None, Some(1.0))
        );
        // Five week groups: all, A and B of the first week; all and A of the next.
        let skipped = cohort_figures(&scored, &options, |k, _| k == CohortKind::Week).unwrap();
        assert!(skipped.iter().all(|f| f.kind == CohortKind::Day));
        assert_eq!(skipped.len(), figures.len() - 5);
    }
}
