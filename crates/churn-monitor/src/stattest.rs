//! The statistics behind Evidently's drift tests, each computed as the scipy or numpy call Evidently
//! makes computes it, from value counts instead of rows.
//!
//! Two kinds of input: aligned counts (both sides' counts over the union of their values, ordered by
//! value) for the value-count tests, and [`NumericSummary`]s for the tests on the numbers themselves.
//! Kolmogorov–Smirnov lives in its own module (`ks`), which builds on this one.

use libm::{erf, erfc};
use statrs::distribution::{ChiSquared, ContinuousCDF};

use crate::profile::{CategoricalSummary, NumericSummary};

/// Each side's count of every value that occurs on either side, ordered by value: what Evidently's
/// `dict.fromkeys(keys, 0) | value_counts()` builds, in a fixed order.
#[derive(Debug, Clone, PartialEq)]
pub struct AlignedCounts {
    pub reference: Vec<u64>,
    pub current: Vec<u64>,
}

impl AlignedCounts {
    /// Aligns two numeric summaries on the union of their distinct values.
    pub fn numeric(reference: &NumericSummary, current: &NumericSummary) -> Self {
        let (mut r, mut c) = (Vec::new(), Vec::new());
        merge_distinct(&reference.values, &current.values, |_, i, j| {
            r.push(i.map_or(0, |i| reference.counts[i]));
            c.push(j.map_or(0, |j| current.counts[j]));
        });
        Self {
            reference: r,
            current: c,
        }
    }

    /// Aligns two categorical summaries on the union of their values.
    pub fn categorical(reference: &CategoricalSummary, current: &CategoricalSummary) -> Self {
        let mut r_iter = reference.counts.iter().peekable();
        let mut c_iter = current.counts.iter().peekable();
        let (mut r, mut c) = (Vec::new(), Vec::new());
        loop {
            let order = match (r_iter.peek(), c_iter.peek()) {
                (None, None) => break,
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some((a, _)), Some((b, _))) => a.cmp(b),
            };
            let take_r = order != std::cmp::Ordering::Greater;
            let take_c = order != std::cmp::Ordering::Less;
            r.push(if take_r {
                r_iter.next().map_or(0, |(_, n)| *n)
            } else {
                0
            });
            c.push(if take_c {
                c_iter.next().map_or(0, |(_, n)| *n)
            } else {
                0
            });
        }
        Self {
            reference: r,
            current: c,
        }
    }

    /// Number of distinct values on either side: pandas' `concat([ref, cur]).nunique()`.
    pub fn n_unique(&self) -> usize {
        self.reference.len()
    }

    /// Each side's share of every value (`count / len`, Evidently's `get_binned_data` for value counts).
    pub fn percents(&self) -> (Vec<f64>, Vec<f64>) {
        (shares(&self.reference), shares(&self.current))
    }
}

/// Walks the union of two strictly ascending value lists in order, calling `each(x, i, j)` with each
/// union value and the index it has on each side that holds it.
pub(crate) fn merge_distinct(
    a: &[f64],
    b: &[f64],
    mut each: impl FnMut(f64, Option<usize>, Option<usize>),
) {
    let (mut i, mut j) = (0, 0);
    loop {
        let (x, take_a, take_b) = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) if x == y => (x, true, true),
            (Some(&x), Some(&y)) if x < y => (x, true, false),
            (Some(&x), None) => (x, true, false),
            (_, Some(&y)) => (y, false, true),
            (None, None) => break,
        };
        each(x, take_a.then_some(i), take_b.then_some(j));
        if take_a {
            i += 1;
        }
        if take_b {
            j += 1;
        }
    }
}

/// `count / total` per entry, as numpy's `counts / len(data)` computes it.
fn shares(counts: &[u64]) -> Vec<f64> {
    let total: u64 = counts.iter().sum();
    counts.iter().map(|&c| c as f64 / total as f64).collect()
}

/// Pearson's chi-square p-value of the current counts against the reference counts scaled to the
/// current size (`scipy.stats.chisquare(f_obs, f_exp)` with `f_exp = ref · n_cur / n_ref`), with
/// `k − 1` degrees of freedom. A value absent from the reference makes the statistic infinite and p 0,
/// as in scipy. With a single value on both sides scipy answers NaN; that cannot differ, so 1.
pub fn chisquare_p(counts: &AlignedCounts) -> f64 {
    let n_ref: u64 = counts.reference.iter().sum();
    let n_cur: u64 = counts.current.iter().sum();
    let k_norm = n_cur as f64 / n_ref as f64;
    let mut statistic = 0.0;
    for (&r, &c) in counts.reference.iter().zip(&counts.current) {
        let expected = r as f64 * k_norm;
        let observed = c as f64;
        statistic += (observed - expected).powi(2) / expected;
    }
    let df = counts.n_unique().saturating_sub(1);
    if df == 0 {
        return 1.0;
    }
    chi2_sf(statistic, df as f64)
}

/// Upper tail of the chi-square distribution (scipy's `chdtrc`).
pub fn chi2_sf(x: f64, df: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x == f64::INFINITY {
        return 0.0;
    }
    if x <= 0.0 {
        return 1.0;
    }
    match ChiSquared::new(df) {
        Ok(d) => d.sf(x),
        Err(_) => f64::NAN,
    }
}

/// Standard normal CDF (with libm's erf/erfc, accurate to an ulp where statrs' loses ~10 digits in the
/// tail), formed as cephes' `ndtr` forms it (from `erfc` beyond |z| > √½, then
/// `1 − ½·erfc` for positive z), so `1 − Φ(z)` rounds as scipy's does.
pub fn normal_cdf(z: f64) -> f64 {
    let x = z * std::f64::consts::FRAC_1_SQRT_2;
    if x.abs() < std::f64::consts::FRAC_1_SQRT_2 {
        0.5 + 0.5 * erf(x)
    } else {
        let y = 0.5 * erfc(x.abs());
        if x > 0.0 { 1.0 - y } else { y }
    }
}

/// Evidently's two-proportion Z-test p-value: the first value in sorted order is coded 0 and every
/// other value 1, the pooled z statistic is formed and `p = 2·(1 − Φ(|z|))`. When both sides hold the
/// same single value, p is 1.
pub fn z_p(counts: &AlignedCounts) -> f64 {
    if counts.n_unique() <= 1 {
        return 1.0;
    }
    let n1: u64 = counts.reference.iter().sum();
    let n2: u64 = counts.current.iter().sum();
    // Evidently: p = float(sum(ones)) / n, with the first sorted key mapped to 0.
    let p1 = (n1 - counts.reference[0]) as f64 / n1 as f64;
    let p2 = (n2 - counts.current[0]) as f64 / n2 as f64;
    let (f1, f2) = (n1 as f64, n2 as f64);
    let pooled = (p1 * f1 + p2 * f2) / (f1 + f2);
    let z = (p1 - p2) / (pooled * (1.0 - pooled) * (1.0 / f1 + 1.0 / f2)).sqrt();
    2.0 * (1.0 - normal_cdf(z.abs()))
}

/// Population standard deviation (`np.std`, ddof 0) of the summarised values.
pub fn std_ddof0(s: &NumericSummary) -> f64 {
    let n = s.n() as f64;
    let sum: f64 = s
        .values
        .iter()
        .zip(&s.counts)
        .map(|(v, &c)| v * c as f64)
        .sum();
    let mean = sum / n;
    let squares: f64 = s
        .values
        .iter()
        .zip(&s.counts)
        .map(|(v, &c)| (v - mean).powi(2) * c as f64)
        .sum();
    (squares / n).sqrt()
}

/// First Wasserstein distance between the two empirical distributions
/// (`scipy.stats.wasserstein_distance`): the area between their CDFs.
pub fn wasserstein(u: &NumericSummary, v: &NumericSummary) -> f64 {
    let (nu, nv) = (u.n() as f64, v.n() as f64);
    let (mut cu, mut cv) = (0u64, 0u64);
    // Both CDFs are step functions, constant from one union value to the next: the area is the sum of
    // |F_u − F_v| at each value times the gap to the next one (scipy's `_cdf_distance` with p = 1).
    let mut previous: Option<(f64, f64)> = None;
    let mut total = 0.0;
    merge_distinct(&u.values, &v.values, |x, i, j| {
        if let Some((px, gap)) = previous {
            total += gap * (x - px);
        }
        cu += i.map_or(0, |i| u.counts[i]);
        cv += j.map_or(0, |j| v.counts[j]);
        previous = Some((x, (cu as f64 / nu - cv as f64 / nv).abs()));
    });
    total
}

/// Evidently's normed Wasserstein distance: the distance divided by the reference's population
/// standard deviation, or by 0.001 when that is smaller (a constant reference).
pub fn wasserstein_normed(reference: &NumericSummary, current: &NumericSummary) -> f64 {
    let norm = std_ddof0(reference).max(0.001);
    wasserstein(reference, current) / norm
}

/// scipy's `rel_entr(x, y)`: `x·ln(x/y)`, 0 when `x` is 0, infinite when only `y` is 0.
fn rel_entr(x: f64, y: f64) -> f64 {
    if x > 0.0 && y > 0.0 {
        x * (x / y).ln()
    } else if x == 0.0 && y >= 0.0 {
        0.0
    } else {
        f64::INFINITY
    }
}

/// Jensen–Shannon distance with natural logarithms (`scipy.spatial.distance.jensenshannon(p, q)`): the
/// square root of the mean KL divergence of each side from their midpoint. Each side is renormalised
/// to sum to 1 first, as scipy does. A divergence that rounds below zero counts as 0 (scipy would
/// answer NaN there, which cannot be stored and means "identical").
pub fn jensenshannon(p: &[f64], q: &[f64]) -> f64 {
    let (sp, sq): (f64, f64) = (p.iter().sum(), q.iter().sum());
    let (mut left, mut right) = (0.0, 0.0);
    for (&a, &b) in p.iter().zip(q) {
        let (a, b) = (a / sp, b / sq);
        let m = (a + b) / 2.0;
        left += rel_entr(a, m);
        right += rel_entr(b, m);
    }
    ((left + right) / 2.0).max(0.0).sqrt()
}

/// Population stability index, `Σ (ref − cur)·ln(ref / cur)`, over shares already freed of zeros.
pub fn psi(reference: &[f64], current: &[f64]) -> f64 {
    reference
        .iter()
        .zip(current)
        .map(|(&r, &c)| (r - c) * (r / c).ln())
        .sum()
}

/// Evidently's `feel_zeroes`: each zero share becomes the smallest non-zero share divided by 10⁶ when
/// that is at most 10⁻⁴, otherwise 10⁻⁴, so logarithms stay finite.
pub fn feel_zeroes(shares: &mut [f64]) {
    let min_nonzero = shares
        .iter()
        .copied()
        .filter(|&s| s != 0.0)
        .fold(f64::INFINITY, f64::min);
    if !min_nonzero.is_finite() {
        return;
    }
    let replacement = if min_nonzero <= 0.0001 {
        min_nonzero / 1e6
    } else {
        0.0001
    };
    for s in shares.iter_mut().filter(|s| **s == 0.0) {
        *s = replacement;
    }
}

/// `np.histogram_bin_edges(concat(reference, current), bins="sturges")`: ⌈range / width⌉ equal bins
/// over [min, max] with width = range / (log₂ N + 1), at least 1 for integer data; the edges are
/// numpy's `linspace` values bit for bit, so every value lands in the bin numpy puts it in.
pub fn sturges_edges(reference: &NumericSummary, current: &NumericSummary) -> Vec<f64> {
    let size = reference.n() + current.n();
    let first_value = |s: &NumericSummary| s.values.first().copied().unwrap_or(f64::NAN);
    let last_value = |s: &NumericSummary| s.values.last().copied().unwrap_or(f64::NAN);
    let (mut first, mut last) = (
        first_value(reference).min(first_value(current)),
        last_value(reference).max(last_value(current)),
    );
    // pandas concatenates two integer columns into an integer column, and numpy then keeps bins at
    // least one unit wide.
    let integer = reference.integer && current.integer;
    let ptp = last - first;
    if first == last {
        first -= 0.5;
        last += 0.5;
    }
    let mut width = ptp / ((size as f64).log2() + 1.0);
    let n_bins = if width != 0.0 {
        if integer && width < 1.0 {
            width = 1.0;
        }
        ((last - first) / width).ceil() as usize
    } else {
        1
    };
    linspace(first, last, n_bins + 1)
}

/// numpy's `linspace(start, stop, num)` with its exact arithmetic: `i·step + start`, the last point
/// set to `stop`.
pub fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    let div = num.saturating_sub(1);
    let delta = stop - start;
    let mut points: Vec<f64> = if div > 0 {
        let step = delta / div as f64;
        if step == 0.0 {
            (0..num)
                .map(|i| (i as f64 / div as f64) * delta + start)
                .collect()
        } else {
            (0..num).map(|i| i as f64 * step + start).collect()
        }
    } else {
        (0..num).map(|i| i as f64 * delta + start).collect()
    };
    if num > 1
        && let Some(last) = points.last_mut()
    {
        *last = stop;
    }
    points
}

/// Each bin's share of the summarised values, as `np.histogram(data, edges)[0] / len(data)`: bins are
/// half-open `[e_i, e_i+1)` except the last, which includes its right edge.
pub fn histogram_shares(s: &NumericSummary, edges: &[f64]) -> Vec<f64> {
    // cumulative[k] = number of values among the first k distinct values.
    let mut cumulative = Vec::with_capacity(s.counts.len() + 1);
    cumulative.push(0u64);
    let mut running = 0;
    for &c in &s.counts {
        running += c;
        cumulative.push(running);
    }
    let last = edges.len().saturating_sub(1);
    let below: Vec<u64> = edges
        .iter()
        .enumerate()
        .map(|(k, &e)| {
            let index = if k == last {
                s.values.partition_point(|&v| v <= e)
            } else {
                s.values.partition_point(|&v| v < e)
            };
            cumulative[index]
        })
        .collect();
    let n = s.n() as f64;
    below.windows(2).map(|w| (w[1] - w[0]) as f64 / n).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a failure should stop the test loudly
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn num(values: &[f64]) -> NumericSummary {
        NumericSummary::from_finite(values.to_vec())
    }

    fn cat(values: &[&str]) -> CategoricalSummary {
        let mut counts = BTreeMap::new();
        for v in values {
            *counts.entry((*v).to_owned()).or_insert(0) += 1;
        }
        CategoricalSummary { counts }
    }

    fn assert_close(actual: f64, expected: f64, tolerance: f64) {
        assert!(
            (actual - expected).abs() <= tolerance,
            "expected {expected}, got {actual}"
        );
    }

    #[test]
    fn aligned_counts_cover_the_union_of_values_in_sorted_order() {
        let a = AlignedCounts::categorical(&cat(&["b", "a", "b"]), &cat(&["c", "b"]));
        assert_eq!(a.reference, vec![1, 2, 0]);
        assert_eq!(a.current, vec![0, 1, 1]);
        let n = AlignedCounts::numeric(&num(&[1.0, 2.0, 2.0]), &num(&[2.0, 3.0]));
        assert_eq!(n.reference, vec![1, 2, 0]);
        assert_eq!(n.current, vec![0, 1, 1]);
        assert_eq!(n.n_unique(), 3);
    }

    #[test]
    fn chi_square_matches_scipy_on_a_small_table() {
        // Reference a:20 b:30 c:50 (n 100); current a:30 b:30 c:40 (n 100), so f_exp = 20, 30, 50.
        // stat = 10²/20 + 0 + 10²/50 = 5 + 2 = 7, df 2, p = e^(−7/2) = 0.0301973834223185.
        // scipy.stats.chisquare([30, 30, 40], [20, 30, 50]) → pvalue 0.0301973834223185.
        let counts = AlignedCounts {
            reference: vec![20, 30, 50],
            current: vec![30, 30, 40],
        };
        assert_close(chisquare_p(&counts), 0.030_197_383_422_318_5, 1e-12);
    }

    #[test]
    fn chi_square_is_zero_when_the_current_data_holds_an_unseen_value() {
        // scipy.stats.chisquare([3, 1, 1], [4.0, 1.0, 0.0]) → statistic inf, pvalue 0.0.
        let counts = AlignedCounts {
            reference: vec![4, 1, 0],
            current: vec![3, 1, 1],
        };
        assert_eq!(chisquare_p(&counts), 0.0);
    }

    #[test]
    fn z_test_matches_the_pooled_two_proportion_formula() {
        // Reference 30 of 100 are "Yes" (coded 1: "No" sorts first), current 45 of 100.
        // pooled P = 75/200 = 0.375; z = (0.30 − 0.45) / sqrt(0.375·0.625·(2/100)) = −2.1908902300206647;
        // p = 2·(1 − scipy.stats.norm.cdf(2.1908902300206647)) = 0.02845973691631065.
        let counts = AlignedCounts {
            reference: vec![70, 30],
            current: vec![55, 45],
        };
        assert_close(z_p(&counts), 0.028_459_736_916_310_65, 1e-15);
    }

    #[test]
    fn z_test_of_one_identical_value_on_both_sides_is_one() {
        let counts = AlignedCounts::categorical(&cat(&["US", "US"]), &cat(&["US"]));
        assert_eq!(z_p(&counts), 1.0);
    }

    #[test]
    fn wasserstein_matches_scipy_examples() {
        // scipy.stats.wasserstein_distance([0, 1, 3], [5, 6, 8]) → 5.0 (its docstring example).
        assert_close(
            wasserstein(&num(&[0.0, 1.0, 3.0]), &num(&[5.0, 6.0, 8.0])),
            5.0,
            1e-12,
        );
        // wasserstein_distance([1, 2, 2, 4], [2, 3]) → 0.75: CDFs differ by 1/4 on [1,2), 1/4 on [2,3),
        // 1/4 on [3,4): 0.25 + 0.25 + 0.25.
        assert_close(
            wasserstein(&num(&[1.0, 2.0, 2.0, 4.0]), &num(&[2.0, 3.0])),
            0.75,
            1e-12,
        );
    }

    #[test]
    fn the_normed_wasserstein_divides_by_the_reference_population_std() {
        // Reference [1, 2, 3, 4]: mean 2.5, population variance 1.25, std 1.118033988749895.
        // Current [2, 3, 4, 5] is the reference shifted by 1: distance 1; normed 1/1.118… = 0.894427190999916.
        assert_close(
            wasserstein_normed(&num(&[1.0, 2.0, 3.0, 4.0]), &num(&[2.0, 3.0, 4.0, 5.0])),
            0.894_427_190_999_916,
            1e-12,
        );
        // A constant reference is normed by 0.001: distance 1 → 1000.
        assert_close(
            wasserstein_normed(&num(&[3.0, 3.0]), &num(&[4.0])),
            1000.0,
            1e-9,
        );
    }

    #[test]
    fn jensen_shannon_matches_scipy() {
        // scipy.spatial.distance.jensenshannon([1.0, 0.0], [0.5, 0.5]) → 0.46450140402245893.
        assert_close(
            jensenshannon(&[1.0, 0.0], &[0.5, 0.5]),
            0.464_501_404_022_458_93,
            1e-12,
        );
        // Identical distributions are at distance 0; unnormalised input is renormalised.
        assert_eq!(jensenshannon(&[0.2, 0.8], &[0.2, 0.8]), 0.0);
        assert_close(
            jensenshannon(&[2.0, 0.0], &[1.0, 1.0]),
            0.464_501_404_022_458_93,
            1e-12,
        );
    }

    #[test]
    fn psi_sums_share_differences_times_their_log_ratio() {
        // (0.5 − 0.25)·ln(2) + (0.5 − 0.75)·ln(2/3) = 0.25·0.6931471805599453 + 0.25·0.4054651081081644
        // = 0.27465307216702745.
        assert_close(
            psi(&[0.5, 0.5], &[0.25, 0.75]),
            0.274_653_072_167_027_45,
            1e-15,
        );
    }

    #[test]
    fn feel_zeroes_replaces_zeros_as_evidently_does() {
        let mut shares = vec![0.0, 0.25, 0.75];
        feel_zeroes(&mut shares);
        assert_eq!(shares, vec![0.0001, 0.25, 0.75]);
        let mut tiny = vec![0.0, 0.00005, 0.99995];
        feel_zeroes(&mut tiny);
        assert_eq!(tiny[0], 0.00005 / 1e6);
    }

    #[test]
    fn sturges_edges_match_numpy() {
        // np.histogram_bin_edges(np.arange(10.0), "sturges"): width 9/(log2(10)+1) = 2.0565…,
        // ⌈9/2.0565⌉ = 5 bins → [0, 1.8, 3.6, 5.4, 7.2, 9] (linspace values).
        let reference = num(&[0.0, 1.0, 2.0, 3.0, 4.0]);
        let current = num(&[5.5, 6.0, 7.0, 8.0, 9.0]);
        let edges = sturges_edges(&reference, &current);
        let expected = [0.0, 1.8, 3.6, 5.4, 7.2, 9.0];
        assert_eq!(edges.len(), expected.len());
        for (e, x) in edges.iter().zip(expected) {
            assert_close(*e, x, 1e-12);
        }
        // np.histogram([0,1,2,3,4], edges)[0] = [2, 2, 1, 0, 0]; [5.5,6,7,8,9] → [0, 0, 0, 3, 2].
        assert_eq!(
            histogram_shares(&reference, &edges),
            vec![0.4, 0.4, 0.2, 0.0, 0.0]
        );
        assert_eq!(
            histogram_shares(&current, &edges),
            vec![0.0, 0.0, 0.0, 0.6, 0.4]
        );
    }

    #[test]
    fn sturges_bins_are_at_least_one_unit_wide_for_integer_data() {
        // np.histogram_bin_edges([i % 4 for i in range(512)], "sturges") = [0, 1, 2, 3]: the width
        // 3/(log2(512)+1) = 0.3 is below 1 for integer data, so it becomes 1 and ⌈3/1⌉ = 3 bins.
        let values: Vec<f64> = (0..256).map(|i| f64::from(i % 4)).collect();
        let s = NumericSummary::from_finite(values);
        let edges = sturges_edges(&s, &s);
        assert_eq!(edges, vec![0.0, 1.0, 2.0, 3.0]);
    }

    #[test]
    fn linspace_reproduces_numpy_rounding() {
        // np.linspace(0, 1, 11)[3] == 0.30000000000000004 (3 · 0.1), not 0.3.
        let points = linspace(0.0, 1.0, 11);
        assert_eq!(points[3], 3.0 * 0.1);
        assert_ne!(points[3], 0.3);
        assert_eq!(points[10], 1.0);
    }
}
