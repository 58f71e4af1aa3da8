//! Binary-classification metrics on P(churn): one implementation for training, evaluation and monitoring.
//!
//! [`evaluate`] checks its input and returns every metric at once. The free functions
//! ([`roc_auc`], [`pr_auc`], [`log_loss`], [`brier`], [`confusion`], [`best_f1_threshold`]) assume input
//! that [`evaluate`] would accept: equal, non-zero lengths and probabilities in `[0, 1]` (scores for the
//! two AUCs need only be comparable, not NaN). They never panic in release builds on bad input, but
//! their results are then meaningless.
//!
//! Conventions follow scikit-learn so that numbers agree with notebooks: precision, recall and F1 are
//! 0 when undefined (`zero_division=0`), log loss clips at `1e-15`, and PR AUC is the step-wise
//! average precision (`average_precision_score`), not a trapezoidal area, which would be optimistic.

use serde::{Deserialize, Serialize};

/// How far log loss keeps probabilities from 0 and 1, so that one confident mistake costs
/// `-ln(1e-15) ≈ 34.5` instead of infinity (scikit-learn's historical default).
pub const LOG_LOSS_EPSILON: f64 = 1e-15;

/// Every metric of one set of predictions, computed by [`evaluate`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Number of examples.
    pub n: usize,
    /// Number of examples labelled positive (churned).
    pub positives: usize,
    /// The threshold the confusion-based metrics used: positive when `p >= threshold`.
    pub threshold: f64,
    pub accuracy: f64,
    /// 0 when nothing is predicted positive.
    pub precision: f64,
    /// 0 when no example is positive.
    pub recall: f64,
    /// 0 when precision and recall are both 0.
    pub f1: f64,
    /// Mean negative log-likelihood, probabilities clipped to `[1e-15, 1 - 1e-15]`.
    pub log_loss: f64,
    /// `None` when only one class is present.
    pub roc_auc: Option<f64>,
    /// Average precision; `None` when there are no positives.
    pub pr_auc: Option<f64>,
    /// Mean squared error of the probabilities.
    pub brier: f64,
}

/// Counts of a thresholded prediction against the labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Confusion {
    pub tp: usize,
    pub fp: usize,
    pub tn: usize,
    /// False negatives (`fn` is a keyword in Rust; JSON calls it `fn`).
    #[serde(rename = "fn")]
    pub fn_: usize,
}

impl Confusion {
    /// Total number of examples counted.
    pub fn total(&self) -> usize {
        self.tp + self.fp + self.tn + self.fn_
    }

    /// Fraction classified correctly; 0 for an empty confusion matrix.
    pub fn accuracy(&self) -> f64 {
        ratio(self.tp + self.tn, self.total())
    }

    /// `tp / (tp + fp)`; 0 when nothing is predicted positive.
    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }

    /// `tp / (tp + fn)`; 0 when no example is positive.
    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }

    /// Harmonic mean of precision and recall; 0 when both are 0.
    pub fn f1(&self) -> f64 {
        f1_from_counts(self.tp, self.fp, self.fn_)
    }
}

/// Why [`evaluate`] refused its input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricsError {
    #[error("no examples: metrics need at least one label and probability")]
    Empty,
    #[error("{labels} labels but {probabilities} probabilities; they must pair up one to one")]
    LengthMismatch { labels: usize, probabilities: usize },
    #[error("probability at index {index} is {value}; it must be a number in [0, 1]")]
    InvalidProbability { index: usize, value: f64 },
    #[error("threshold is {threshold}; it must be a number in [0, 1]")]
    InvalidThreshold { threshold: f64 },
}

/// Checks the input, then computes every metric; the confusion-based ones count `p >= threshold` as
/// a predicted churn.
pub fn evaluate(
    labels: &[bool],
    probabilities: &[f64],
    threshold: f64,
) -> Result<Metrics, MetricsError> {
    // A length mismatch is reported before emptiness: "0 labels but 5 probabilities" says more than
    // "no examples".
    if labels.len() != probabilities.len() {
        return Err(MetricsError::LengthMismatch {
            labels: labels.len(),
            probabilities: probabilities.len(),
        });
    }
    if labels.is_empty() {
        return Err(MetricsError::Empty);
    }
    // `contains` is false for NaN, so NaN is rejected too.
    if !(0.0..=1.0).contains(&threshold) {
        return Err(MetricsError::InvalidThreshold { threshold });
    }
    if let Some((index, &value)) = probabilities
        .iter()
        .enumerate()
        .find(|(_, p)| !(0.0..=1.0).contains(*p))
    {
        return Err(MetricsError::InvalidProbability { index, value });
    }

    let counts = confusion(labels, probabilities, threshold);
    // Both ranking metrics walk the same sorted groups: sort once (a million scores take ~0.1 s).
    let groups = tie_groups_descending(labels, probabilities);
    Ok(Metrics {
        n: labels.len(),
        positives: counts.tp + counts.fn_,
        threshold,
        accuracy: counts.accuracy(),
        precision: counts.precision(),
        recall: counts.recall(),
        f1: counts.f1(),
        log_loss: log_loss(labels, probabilities),
        roc_auc: roc_auc_of(&groups),
        pr_auc: pr_auc_of(&groups),
        brier: brier(labels, probabilities),
    })
}

/// Area under the ROC curve: the probability that a random positive scores above a random negative,
/// ties counting 1/2 (the Mann–Whitney U statistic with average ranks). `None` when only one class is
/// present (including empty input). O(n log n). Assumes equal lengths and no NaN scores.
pub fn roc_auc(labels: &[bool], scores: &[f64]) -> Option<f64> {
    roc_auc_of(&tie_groups_descending(labels, scores))
}

fn roc_auc_of(groups: &[TieGroup]) -> Option<f64> {
    let positives: usize = groups.iter().map(|g| g.positives).sum();
    let negatives: usize = groups.iter().map(|g| g.negatives).sum();
    if positives == 0 || negatives == 0 {
        return None;
    }
    // Twice U is an integer, so counting it in u128 keeps the sum exact however large n is; the
    // only rounding is the final division.
    let mut twice_u: u128 = 0;
    let mut positives_above: u128 = 0;
    for group in groups {
        let (p, q) = (group.positives as u128, group.negatives as u128);
        twice_u += q * (2 * positives_above + p);
        positives_above += p;
    }
    let pairs = 2 * positives as u128 * negatives as u128;
    Some(twice_u as f64 / pairs as f64)
}

/// Average precision: `Σ (Rₖ − Rₖ₋₁) · Pₖ` over the distinct scores from highest to lowest, where Pₖ
/// and Rₖ are precision and recall when everything scoring at least the k-th score is called
/// positive (scikit-learn's `average_precision_score`). `None` when there are no positives.
/// O(n log n). Assumes equal lengths and no NaN scores.
pub fn pr_auc(labels: &[bool], scores: &[f64]) -> Option<f64> {
    pr_auc_of(&tie_groups_descending(labels, scores))
}

fn pr_auc_of(groups: &[TieGroup]) -> Option<f64> {
    let positives: usize = groups.iter().map(|g| g.positives).sum();
    if positives == 0 {
        return None;
    }
    let (mut tp, mut fp, mut sum) = (0usize, 0usize, 0.0f64);
    for group in groups {
        tp += group.positives;
        fp += group.negatives;
        // Recall only moves when the group holds positives; a group of negatives adds nothing.
        if group.positives > 0 {
            let recall_step = group.positives as f64 / positives as f64;
            sum += recall_step * ratio(tp, tp + fp);
        }
    }
    Some(sum)
}

/// Mean negative log-likelihood of the labels, probabilities clipped to
/// `[LOG_LOSS_EPSILON, 1 - LOG_LOSS_EPSILON]` so the result is finite. Assumes equal, non-zero
/// lengths and probabilities in `[0, 1]`; empty input gives NaN.
pub fn log_loss(labels: &[bool], probabilities: &[f64]) -> f64 {
    debug_assert_eq!(labels.len(), probabilities.len());
    let total: f64 = labels
        .iter()
        .zip(probabilities)
        .map(|(&label, &p)| {
            let p = p.clamp(LOG_LOSS_EPSILON, 1.0 - LOG_LOSS_EPSILON);
            // ln_1p keeps precision for small p, where 1 - p would round.
            if label { -p.ln() } else { -(-p).ln_1p() }
        })
        .sum();
    total / labels.len() as f64
}

/// Brier score: mean of `(p − y)²` with `y` 1 for positives and 0 for negatives. Assumes equal,
/// non-zero lengths; empty input gives NaN.
pub fn brier(labels: &[bool], probabilities: &[f64]) -> f64 {
    debug_assert_eq!(labels.len(), probabilities.len());
    let total: f64 = labels
        .iter()
        .zip(probabilities)
        .map(|(&label, &p)| {
            let error = p - if label { 1.0 } else { 0.0 };
            error * error
        })
        .sum();
    total / labels.len() as f64
}

/// Counts predictions against labels, predicting positive when `p >= threshold` (so a threshold of
/// 0 calls everything positive). Assumes equal lengths.
pub fn confusion(labels: &[bool], probabilities: &[f64], threshold: f64) -> Confusion {
    debug_assert_eq!(labels.len(), probabilities.len());
    let mut counts = Confusion {
        tp: 0,
        fp: 0,
        tn: 0,
        fn_: 0,
    };
    for (&label, &p) in labels.iter().zip(probabilities) {
        match (label, p >= threshold) {
            (true, true) => counts.tp += 1,
            (false, true) => counts.fp += 1,
            (false, false) => counts.tn += 1,
            (true, false) => counts.fn_ += 1,
        }
    }
    counts
}

/// The threshold among the distinct probabilities that maximises F1, and that F1, as
/// `(threshold, f1)`. With [`confusion`]'s rule `p >= threshold`, a candidate between two distinct
/// probabilities classifies exactly like the higher one, so no other threshold can do better. Ties go
/// to the highest threshold, the one flagging the fewest customers. With no positives every F1 is 0
/// and the highest probability is returned. O(n log n). Assumes equal lengths and probabilities in
/// `[0, 1]`; empty input gives `(NaN, 0.0)`.
pub fn best_f1_threshold(labels: &[bool], probabilities: &[f64]) -> (f64, f64) {
    let groups = tie_groups_descending(labels, probabilities);
    let positives: usize = groups.iter().map(|g| g.positives).sum();
    let mut best: Option<(f64, usize, usize)> = None;
    let (mut tp, mut fp) = (0usize, 0usize);
    for group in &groups {
        tp += group.positives;
        fp += group.negatives;
        let fn_ = positives - tp;
        // F1 = 2tp / (2tp + fp + fn). Comparing the fractions by cross-multiplication is exact, so
        // equal F1 values really tie and the first (highest) threshold keeps its place.
        let better = match best {
            None => true,
            Some((_, best_tp, best_fp)) => {
                let best_fn = positives - best_tp;
                let numerator = 2 * tp as u128;
                let denominator = (2 * tp + fp + fn_) as u128;
                let best_numerator = 2 * best_tp as u128;
                let best_denominator = (2 * best_tp + best_fp + best_fn) as u128;
                numerator * best_denominator > best_numerator * denominator
            }
        };
        if better {
            best = Some((group.score, tp, fp));
        }
    }
    match best {
        Some((threshold, tp, fp)) => (threshold, f1_from_counts(tp, fp, positives - tp)),
        None => (f64::NAN, 0.0),
    }
}

/// Examples sharing one score, with how many of them are positive and negative.
struct TieGroup {
    score: f64,
    positives: usize,
    negatives: usize,
}

/// Groups the examples by equal score, highest score first: every ranking metric here walks the
/// thresholds from the top, and handling a tie as one step is what makes ties count as 1/2.
fn tie_groups_descending(labels: &[bool], scores: &[f64]) -> Vec<TieGroup> {
    debug_assert_eq!(labels.len(), scores.len());
    let mut pairs: Vec<(f64, bool)> = scores.iter().copied().zip(labels.iter().copied()).collect();
    // total_cmp cannot panic on NaN; -0.0 and 0.0 end up adjacent and `==` merges them below.
    pairs.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
    let mut groups: Vec<TieGroup> = Vec::new();
    for (score, label) in pairs {
        let group = match groups.last_mut() {
            Some(last) if last.score == score => last,
            _ => {
                groups.push(TieGroup {
                    score,
                    positives: 0,
                    negatives: 0,
                });
                let index = groups.len() - 1;
                &mut groups[index]
            }
        };
        if label {
            group.positives += 1;
        } else {
            group.negatives += 1;
        }
    }
    groups
}

/// `numerator / denominator`, or 0 when the denominator is 0 (scikit-learn's `zero_division=0`).
fn ratio(numerator: usize, denominator: usize) -> f64 {
    if denominator == 0 {
        0.0
    } else {
        numerator as f64 / denominator as f64
    }
}

/// F1 as `2tp / (2tp + fp + fn)`: equal to the harmonic mean of precision and recall whenever that is
/// defined, computed the same way everywhere so that [`best_f1_threshold`] and [`evaluate`] agree to
/// the last bit.
fn f1_from_counts(tp: usize, fp: usize, fn_: usize) -> f64 {
    ratio(2 * tp, 2 * tp + fp + fn_)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a failure should stop the test loudly
mod tests {
    use super::*;

    const T: bool = true;
    const F: bool = false;

    fn assert_close(actual: f64, expected: f64) {
        assert!(
            (actual - expected).abs() < 1e-12,
            "expected {expected}, got {actual}"
        );
    }

    #[test]
    fn a_perfect_ranking_has_roc_auc_one_and_average_precision_one() {
        let labels = [F, F, T, T];
        let scores = [0.1, 0.4, 0.6, 0.9];
        // Both positives outscore both negatives: 4 of 4 pairs ordered right, AUC = 4/4.
        assert_eq!(roc_auc(&labels, &scores), Some(1.0));
        // From the top: 0.9 → P=1/1, R=1/2; 0.6 → P=2/2, R=2/2. AP = 1/2·1 + 1/2·1 = 1.
        assert_eq!(pr_auc(&labels, &scores), Some(1.0));
    }

    #[test]
    fn a_reversed_ranking_has_roc_auc_zero() {
        let labels = [T, T, F, F];
        let scores = [0.1, 0.4, 0.6, 0.9];
        // Every positive scores below every negative: 0 of 4 pairs, AUC = 0.
        assert_eq!(roc_auc(&labels, &scores), Some(0.0));
        // From the top: 0.9 (F), 0.6 (F) add no recall; 0.4 (T) → P=1/3, R=1/2;
        // 0.1 (T) → P=2/4, R=2/2. AP = 1/2·1/3 + 1/2·1/2 = 1/6 + 1/4 = 5/12.
        assert_close(pr_auc(&labels, &scores).unwrap_or(f64::NAN), 5.0 / 12.0);
    }

    #[test]
    fn tied_scores_count_half_a_pair_in_roc_auc() {
        let labels = [T, F, T, F];
        let scores = [0.5, 0.5, 0.8, 0.2];
        // Pairs (positive, negative): (0.5, 0.5) tie → 1/2; (0.5, 0.2) → 1; (0.8, 0.5) → 1;
        // (0.8, 0.2) → 1. AUC = 3.5 / 4 = 0.875.
        // Check by ranks: 0.2→1, 0.5,0.5→2.5 each, 0.8→4; positive rank sum 2.5 + 4 = 6.5;
        // U = 6.5 − 2·3/2 = 3.5.
        assert_eq!(roc_auc(&labels, &scores), Some(0.875));
    }

    #[test]
    fn tied_scores_form_one_step_of_average_precision() {
        let labels = [T, F, T, F];
        let scores = [0.5, 0.5, 0.8, 0.2];
        // From the top: 0.8 {T} → P=1/1, R=1/2; 0.5 {T, F} together → P=2/3, R=2/2;
        // 0.2 {F} → recall unchanged. AP = 1/2·1 + 1/2·2/3 = 1/2 + 1/3 = 5/6.
        assert_close(pr_auc(&labels, &scores).unwrap_or(f64::NAN), 5.0 / 6.0);
    }

    #[test]
    fn average_precision_matches_the_scikit_learn_documentation_example() {
        // sklearn docs: y_true = [0, 0, 1, 1], y_score = [0.1, 0.4, 0.35, 0.8] → AP 0.83, AUC 0.75.
        let labels = [F, F, T, T];
        let scores = [0.1, 0.4, 0.35, 0.8];
        // From the top: 0.8 (T) → P=1/1, R=1/2; 0.4 (F) → no recall; 0.35 (T) → P=2/3, R=2/2;
        // 0.1 (F) → no recall. AP = 1/2·1 + 1/2·2/3 = 5/6.
        assert_close(pr_auc(&labels, &scores).unwrap_or(f64::NAN), 5.0 / 6.0);
        // Pairs: 0.35 beats 0.1 but not 0.4; 0.8 beats both. 3 of 4 → 0.75.
        assert_eq!(roc_auc(&labels, &scores), Some(0.75));
    }

    #[test]
    fn average_precision_weights_each_positive_by_the_precision_at_its_rank() {
        let labels = [T, F, T, F, T];
        let scores = [0.9, 0.8, 0.7, 0.6, 0.5];
        // Positives at ranks 1, 3, 5: precisions 1/1, 2/3, 3/5, each worth recall 1/3.
        // AP = (1 + 2/3 + 3/5) / 3 = (15 + 10 + 9) / 45 = 34/45.
        assert_close(pr_auc(&labels, &scores).unwrap_or(f64::NAN), 34.0 / 45.0);
    }

    #[test]
    fn roc_auc_agrees_with_counting_every_pair_on_a_large_tied_sample() {
        // A fixed LCG keeps the test deterministic without a rand dependency; scores on a coarse
        // grid of 20 values force many ties.
        let mut state: u64 = 42;
        let mut next = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            state >> 33
        };
        let n = 600;
        let scores: Vec<f64> = (0..n).map(|_| (next() % 20) as f64 / 19.0).collect();
        let labels: Vec<bool> = scores
            .iter()
            .map(|s| (next() % 100) as f64 / 100.0 < *s)
            .collect();
        let (mut wins, mut pairs) = (0.0, 0.0);
        for (i, &pi) in labels.iter().enumerate() {
            for (j, &pj) in labels.iter().enumerate() {
                if pi && !pj {
                    pairs += 1.0;
                    if scores[i] > scores[j] {
                        wins += 1.0;
                    } else if scores[i] == scores[j] {
                        wins += 0.5;
                    }
                }
            }
        }
        assert_close(roc_auc(&labels, &scores).unwrap_or(f64::NAN), wins / pairs);
    }

    #[test]
    fn only_negatives_give_no_aucs_but_every_other_metric() {
        let labels = [F, F, F];
        let probabilities = [0.2, 0.4, 0.6];
        let m = evaluate(&labels, &probabilities, 0.5).unwrap();
        assert_eq!(m.roc_auc, None);
        assert_eq!(m.pr_auc, None);
        assert_eq!(m.positives, 0);
        // 0.6 ≥ 0.5 is a false positive; 0.2 and 0.4 are true negatives.
        assert_eq!(
            confusion(&labels, &probabilities, 0.5),
            Confusion {
                tp: 0,
                fp: 1,
                tn: 2,
                fn_: 0
            }
        );
        assert_close(m.accuracy, 2.0 / 3.0);
        // precision 0/1 = 0; recall 0/0 → 0; f1 → 0.
        assert_eq!((m.precision, m.recall, m.f1), (0.0, 0.0, 0.0));
        // Brier: (0.2² + 0.4² + 0.6²) / 3 = (0.04 + 0.16 + 0.36) / 3 = 0.56 / 3.
        assert_close(m.brier, 0.56 / 3.0);
        // Log loss: −(ln 0.8 + ln 0.6 + ln 0.4) / 3.
        assert_close(m.log_loss, -(0.8f64.ln() + 0.6f64.ln() + 0.4f64.ln()) / 3.0);
    }

    #[test]
    fn only_positives_give_no_roc_auc_but_an_average_precision_of_one() {
        let labels = [T, T];
        let probabilities = [0.6, 0.9];
        assert_eq!(roc_auc(&labels, &probabilities), None);
        // Every threshold has precision 1, so AP = 1.
        assert_eq!(pr_auc(&labels, &probabilities), Some(1.0));
        let m = evaluate(&labels, &probabilities, 0.7).unwrap();
        // 0.9 is a true positive, 0.6 a false negative: precision 1/1, recall 1/2, F1 = 2/3.
        assert_eq!((m.precision, m.recall), (1.0, 0.5));
        assert_close(m.f1, 2.0 / 3.0);
    }

    #[test]
    fn precision_is_zero_when_nothing_is_predicted_positive() {
        let labels = [T, F];
        let probabilities = [0.3, 0.2];
        let m = evaluate(&labels, &probabilities, 0.5).unwrap();
        // tp = fp = 0: precision 0/0 → 0, recall 0/1 = 0, F1 → 0; accuracy 1/2 (the negative).
        assert_eq!((m.precision, m.recall, m.f1), (0.0, 0.0, 0.0));
        assert_eq!(m.accuracy, 0.5);
    }

    #[test]
    fn a_probability_equal_to_the_threshold_is_predicted_positive() {
        let counts = confusion(&[T, F], &[0.5, 0.5], 0.5);
        assert_eq!(
            counts,
            Confusion {
                tp: 1,
                fp: 1,
                tn: 0,
                fn_: 0
            }
        );
    }

    #[test]
    fn evaluate_computes_every_metric_of_a_small_example() {
        let labels = [T, F, T, F];
        let probabilities = [0.5, 0.5, 0.8, 0.2];
        let m = evaluate(&labels, &probabilities, 0.5).unwrap();
        // At p ≥ 0.5: 0.5 T → tp, 0.5 F → fp, 0.8 T → tp, 0.2 F → tn: tp 2, fp 1, tn 1, fn 0.
        assert_eq!((m.n, m.positives, m.threshold), (4, 2, 0.5));
        assert_eq!(m.accuracy, 0.75);
        assert_close(m.precision, 2.0 / 3.0);
        assert_eq!(m.recall, 1.0);
        // F1 = 2·2 / (2·2 + 1 + 0) = 4/5.
        assert_close(m.f1, 0.8);
        // Log loss: −(ln 0.5 + ln 0.5 + ln 0.8 + ln 0.8) / 4 = (ln 2 + ln 1.25) / 2.
        assert_close(m.log_loss, (2f64.ln() + 1.25f64.ln()) / 2.0);
        // Brier: (0.5² + 0.5² + 0.2² + 0.2²) / 4 = 0.58 / 4 = 0.145.
        assert_close(m.brier, 0.145);
        assert_eq!(m.roc_auc, Some(0.875));
        assert_close(m.pr_auc.unwrap_or(f64::NAN), 5.0 / 6.0);
    }

    #[test]
    fn log_loss_is_the_mean_negative_log_likelihood() {
        // −(ln 0.8 + ln(1 − 0.4)) / 2 = (0.2231435513142 + 0.5108256237660) / 2 ≈ 0.3669845875401.
        assert_close(log_loss(&[T, F], &[0.8, 0.4]), 0.366_984_587_540_100_2);
    }

    #[test]
    fn log_loss_clips_probabilities_of_exactly_zero_and_one() {
        // Right and certain: each term is −ln(1 − 1e-15) ≈ 1e-15, finite and near 0.
        let right = log_loss(&[T, F], &[1.0, 0.0]);
        assert!(
            right.is_finite() && (0.0..1e-14).contains(&right),
            "{right}"
        );
        // A positive given 0 costs −ln(1e-15) = 15·ln 10 ≈ 34.5388, not infinity.
        let wrong_positive = log_loss(&[T], &[0.0]);
        assert!(
            (wrong_positive - 15.0 * 10f64.ln()).abs() < 1e-9,
            "{wrong_positive}"
        );
        // A negative given 1 costs −ln(1 − (1 − 1e-15)); 1 − 1e-15 rounds in binary, leaving
        // 1 − p ≈ 9.992e-16 and a cost ≈ 34.5396 (scikit-learn rounds identically). Finite is the point.
        let wrong_negative = log_loss(&[F], &[1.0]);
        assert!((wrong_negative - 34.5396).abs() < 1e-3, "{wrong_negative}");
    }

    #[test]
    fn brier_is_the_mean_squared_error_of_the_probabilities() {
        // ((0.9 − 1)² + (0.2 − 0)² + (0.4 − 1)²) / 3 = (0.01 + 0.04 + 0.36) / 3 = 0.41 / 3.
        assert_close(brier(&[T, F, T], &[0.9, 0.2, 0.4]), 0.41 / 3.0);
    }

    #[test]
    fn best_f1_threshold_picks_the_probability_with_the_highest_f1() {
        let labels = [T, F, T, F, T];
        let probabilities = [0.9, 0.8, 0.7, 0.6, 0.5];
        // 3 positives; F1 = 2tp / (2tp + fp + fn) at each threshold:
        // 0.9: tp1 fp0 fn2 → 2/4 = 0.5;   0.8: tp1 fp1 fn2 → 2/5 = 0.4;
        // 0.7: tp2 fp1 fn1 → 4/6 ≈ 0.667; 0.6: tp2 fp2 fn1 → 4/7 ≈ 0.571;
        // 0.5: tp3 fp2 fn0 → 6/8 = 0.75 ← best.
        let (threshold, f1) = best_f1_threshold(&labels, &probabilities);
        assert_eq!(threshold, 0.5);
        assert_eq!(f1, 0.75);
        // The F1 it reports is the one evaluate computes at that threshold, bit for bit.
        assert_eq!(evaluate(&labels, &probabilities, threshold).unwrap().f1, f1);
    }

    #[test]
    fn best_f1_threshold_breaks_ties_towards_the_highest_threshold() {
        let labels = [T, F, F, T];
        let probabilities = [0.9, 0.7, 0.5, 0.3];
        // 2 positives: 0.9: tp1 fp0 fn1 → 2/3; 0.7: tp1 fp1 fn1 → 2/4; 0.5: tp1 fp2 fn1 → 2/5;
        // 0.3: tp2 fp2 fn0 → 4/6 = 2/3. 0.9 and 0.3 tie at 2/3; the higher wins.
        let (threshold, f1) = best_f1_threshold(&labels, &probabilities);
        assert_eq!(threshold, 0.9);
        assert_close(f1, 2.0 / 3.0);
    }

    #[test]
    fn best_f1_threshold_treats_tied_probabilities_as_one_candidate() {
        let labels = [T, F, T];
        let probabilities = [0.7, 0.7, 0.2];
        // 2 positives: 0.7 takes both tied examples: tp1 fp1 fn1 → 2/4;
        // 0.2: tp2 fp1 fn0 → 4/5 ← best.
        assert_eq!(best_f1_threshold(&labels, &probabilities), (0.2, 0.8));
    }

    #[test]
    fn best_f1_threshold_without_positives_returns_the_highest_probability_and_zero() {
        assert_eq!(best_f1_threshold(&[F, F], &[0.3, 0.6]), (0.6, 0.0));
    }

    #[test]
    fn evaluate_rejects_empty_input() {
        let error = evaluate(&[], &[], 0.5).unwrap_err();
        assert_eq!(error, MetricsError::Empty);
    }

    #[test]
    fn evaluate_rejects_a_length_mismatch_naming_both_lengths() {
        let error = evaluate(&[T, F], &[0.1, 0.2, 0.3], 0.5).unwrap_err();
        assert_eq!(
            error,
            MetricsError::LengthMismatch {
                labels: 2,
                probabilities: 3
            }
        );
        let message = error.to_string();
        assert!(message.contains('2') && message.contains('3'), "{message}");
    }

    #[test]
    fn evaluate_rejects_a_probability_outside_zero_to_one_naming_its_index_and_value() {
        let error = evaluate(&[T, F, T], &[0.1, 1.5, -0.2], 0.5).unwrap_err();
        assert_eq!(
            error,
            MetricsError::InvalidProbability {
                index: 1,
                value: 1.5
            }
        );
        let message = error.to_string();
        assert!(
            message.contains("index 1") && message.contains("1.5"),
            "{message}"
        );
        assert_eq!(
            evaluate(&[T], &[-0.2], 0.5).unwrap_err(),
            MetricsError::InvalidProbability {
                index: 0,
                value: -0.2
            }
        );
    }

    #[test]
    fn evaluate_rejects_a_nan_probability() {
        let error = evaluate(&[T, F], &[0.1, f64::NAN], 0.5).unwrap_err();
        assert!(
            matches!(error, MetricsError::InvalidProbability { index: 1, value } if value.is_nan())
        );
        assert!(error.to_string().contains("NaN"), "{error}");
    }

    #[test]
    fn evaluate_rejects_a_threshold_outside_zero_to_one_or_nan() {
        assert_eq!(
            evaluate(&[T], &[0.5], 1.5).unwrap_err(),
            MetricsError::InvalidThreshold { threshold: 1.5 }
        );
        assert!(matches!(
            evaluate(&[T], &[0.5], f64::NAN).unwrap_err(),
            MetricsError::InvalidThreshold { threshold } if threshold.is_nan()
        ));
    }

    #[test]
    fn metrics_round_trip_through_json_with_missing_aucs_as_null() {
        let m = evaluate(&[F, F], &[0.25, 0.75], 0.5).unwrap();
        let json = serde_json::to_value(m).unwrap();
        assert!(json["roc_auc"].is_null() && json["pr_auc"].is_null());
        let back: Metrics = serde_json::from_value(json).unwrap();
        assert_eq!(back, m);
    }
}
