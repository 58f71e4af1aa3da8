//! Marginal distributions of numeric columns: parametric families chosen by the Kolmogorov–Smirnov
//! statistic, with an empirical (interpolated quantile) fallback, and a fast quantile table in z-space.

use serde::{Deserialize, Serialize};
use statrs::distribution::{Beta, ContinuousCDF, Gamma};

use crate::normal;

/// A fitted marginal distribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "family", rename_all = "snake_case")]
pub enum Marginal {
    Normal {
        mean: f64,
        std: f64,
    },
    TruncatedNormal {
        mean: f64,
        std: f64,
        low: f64,
        high: f64,
    },
    Beta {
        alpha: f64,
        beta: f64,
        low: f64,
        high: f64,
    },
    Gamma {
        shape: f64,
        scale: f64,
        low: f64,
    },
    Uniform {
        low: f64,
        high: f64,
    },
    /// The sorted training values; the quantile function interpolates between them.
    Empirical {
        values: Vec<f64>,
    },
}

impl Marginal {
    pub fn family(&self) -> &'static str {
        match self {
            Marginal::Normal { .. } => "normal",
            Marginal::TruncatedNormal { .. } => "truncated_normal",
            Marginal::Beta { .. } => "beta",
            Marginal::Gamma { .. } => "gamma",
            Marginal::Uniform { .. } => "uniform",
            Marginal::Empirical { .. } => "empirical",
        }
    }

    pub fn cdf(&self, x: f64) -> f64 {
        match self {
            Marginal::Normal { mean, std } => normal::cdf((x - mean) / std),
            Marginal::TruncatedNormal {
                mean,
                std,
                low,
                high,
            } => {
                let (a, b) = (
                    normal::cdf((low - mean) / std),
                    normal::cdf((high - mean) / std),
                );
                ((normal::cdf((x.clamp(*low, *high) - mean) / std) - a) / (b - a)).clamp(0.0, 1.0)
            }
            Marginal::Beta {
                alpha,
                beta,
                low,
                high,
            } => Beta::new(*alpha, *beta)
                .map(|d| d.cdf(((x - low) / (high - low)).clamp(0.0, 1.0)))
                .unwrap_or(f64::NAN),
            Marginal::Gamma { shape, scale, low } => Gamma::new(*shape, 1.0 / scale)
                .map(|d| d.cdf((x - low).max(0.0)))
                .unwrap_or(f64::NAN),
            Marginal::Uniform { low, high } => ((x - low) / (high - low)).clamp(0.0, 1.0),
            Marginal::Empirical { values } => empirical_cdf(values, x),
        }
    }

    pub fn quantile(&self, u: f64) -> f64 {
        let u = u.clamp(0.0, 1.0);
        match self {
            Marginal::Normal { mean, std } => mean + std * normal::inverse_cdf(u),
            Marginal::TruncatedNormal {
                mean,
                std,
                low,
                high,
            } => {
                let (a, b) = (
                    normal::cdf((low - mean) / std),
                    normal::cdf((high - mean) / std),
                );
                (mean + std * normal::inverse_cdf(a + u * (b - a))).clamp(*low, *high)
            }
            Marginal::Beta {
                alpha,
                beta,
                low,
                high,
            } => Beta::new(*alpha, *beta)
                .map(|d| low + (high - low) * d.inverse_cdf(u))
                .unwrap_or(f64::NAN),
            Marginal::Gamma { shape, scale, low } => Gamma::new(*shape, 1.0 / scale)
                .map(|d| low + d.inverse_cdf(u.min(1.0 - 1e-12)))
                .unwrap_or(f64::NAN),
            Marginal::Uniform { low, high } => low + u * (high - low),
            Marginal::Empirical { values } => empirical_quantile(values, u),
        }
    }
}

fn empirical_quantile(sorted: &[f64], u: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => sorted[0],
        n => {
            let pos = u * (n - 1) as f64;
            let i = (pos.floor() as usize).min(n - 2);
            let frac = pos - i as f64;
            sorted[i] + frac * (sorted[i + 1] - sorted[i])
        }
    }
}

/// The inverse of [`empirical_quantile`]: the fractional position of `x` among the sorted values.
fn empirical_cdf(sorted: &[f64], x: f64) -> f64 {
    let n = sorted.len();
    if n < 2 {
        return if sorted.first().is_some_and(|v| x >= *v) {
            1.0
        } else {
            0.0
        };
    }
    if x <= sorted[0] {
        return 0.0;
    }
    if x >= sorted[n - 1] {
        return 1.0;
    }
    let i = sorted.partition_point(|v| *v <= x) - 1;
    let span = sorted[i + 1] - sorted[i];
    let frac = if span > 0.0 {
        (x - sorted[i]) / span
    } else {
        0.0
    };
    (i as f64 + frac) / (n - 1) as f64
}

/// How well each family fitted one column, and the choice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarginalFit {
    pub marginal: Marginal,
    /// KS statistic of the chosen marginal against the training values.
    pub ks: f64,
    /// Each parametric candidate's KS statistic, in the order tried.
    pub candidates: Vec<(String, f64)>,
}

/// Fits each parametric family by its moments and keeps the one with the smallest KS statistic when the
/// KS test at the 5% level does not reject it; otherwise the empirical quantile function is used.
/// `discrete` columns (whole numbers) are compared after rounding, as they will be sampled.
pub fn fit(values: &[f64], discrete: bool) -> MarginalFit {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len().max(1) as f64;
    let (low, high) = (
        sorted.first().copied().unwrap_or(0.0),
        sorted.last().copied().unwrap_or(0.0),
    );
    let mean = sorted.iter().sum::<f64>() / n;
    let var = sorted.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    let std = var.sqrt();
    let range = high - low;

    let mut candidates = Vec::new();
    if std > 0.0 && range > 0.0 {
        candidates.push(Marginal::Normal { mean, std });
        candidates.push(Marginal::TruncatedNormal {
            mean,
            std,
            low,
            high,
        });
        candidates.push(Marginal::Uniform { low, high });
        // Beta on a range a hair wider than the data, by the method of moments.
        let (bl, bh) = (low - 1e-6 * range, high + 1e-6 * range);
        let m = (mean - bl) / (bh - bl);
        let v = var / (bh - bl).powi(2);
        let common = m * (1.0 - m) / v - 1.0;
        if common > 0.0 {
            candidates.push(Marginal::Beta {
                alpha: m * common,
                beta: (1.0 - m) * common,
                low: bl,
                high: bh,
            });
        }
        let shifted_mean = mean - (low - 1e-6 * range);
        candidates.push(Marginal::Gamma {
            shape: shifted_mean * shifted_mean / var,
            scale: var / shifted_mean,
            low: low - 1e-6 * range,
        });
    }

    let scored: Vec<(Marginal, f64)> = candidates
        .into_iter()
        .map(|m| {
            let d = if discrete {
                ks_discrete(&sorted, &m)
            } else {
                ks_continuous(&sorted, &m)
            };
            (m, d)
        })
        .filter(|(_, d)| d.is_finite())
        .collect();
    let summary: Vec<(String, f64)> = scored
        .iter()
        .map(|(m, d)| (m.family().to_owned(), *d))
        .collect();
    let critical = 1.36 / n.sqrt();
    let best = scored
        .into_iter()
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .filter(|(_, d)| *d <= critical);
    match best {
        Some((marginal, ks)) => MarginalFit {
            marginal,
            ks,
            candidates: summary,
        },
        None => {
            let marginal = Marginal::Empirical { values: sorted };
            let ks = if discrete {
                ks_discrete(marginal_values(&marginal), &marginal)
            } else {
                ks_continuous(marginal_values(&marginal), &marginal)
            };
            MarginalFit {
                marginal,
                ks,
                candidates: summary,
            }
        }
    }
}

fn marginal_values(m: &Marginal) -> &[f64] {
    match m {
        Marginal::Empirical { values } => values,
        _ => &[],
    }
}

/// One-sample KS statistic of sorted continuous data against a CDF.
fn ks_continuous(sorted: &[f64], m: &Marginal) -> f64 {
    let n = sorted.len() as f64;
    sorted
        .iter()
        .enumerate()
        .map(|(i, x)| {
            let f = m.cdf(*x);
            (f - i as f64 / n).max((i + 1) as f64 / n - f)
        })
        .fold(0.0, f64::max)
}

/// KS statistic for whole-number data against the distribution of the rounded variable, whose CDF at k
/// is F(k + 0.5); mass outside the data's range is clamped onto its ends, as sampling does.
fn ks_discrete(sorted: &[f64], m: &Marginal) -> f64 {
    let (Some(first), Some(last)) = (sorted.first(), sorted.last()) else {
        return 0.0;
    };
    let n = sorted.len() as f64;
    let mut d: f64 = 0.0;
    let mut k = first.round();
    while k < last.round() {
        let empirical = sorted.partition_point(|v| *v <= k + 0.5) as f64 / n;
        d = d.max((empirical - m.cdf(k + 0.5)).abs());
        k += 1.0;
    }
    d
}

/// The quantile function composed with Φ, tabulated on a z grid so that sampling needs no special
/// functions: value(z) = clamp(F⁻¹(Φ(z)), low, high).
#[derive(Debug, Clone)]
pub struct ZTable {
    values: Vec<f64>,
}

/// The grid spans ±Z_MAX; beyond it Φ is within 1e-9 of 0 or 1.
const Z_MAX: f64 = 6.0;
const Z_POINTS: usize = 2049;

impl ZTable {
    pub fn new(marginal: &Marginal, low: f64, high: f64) -> Self {
        let step = 2.0 * Z_MAX / (Z_POINTS - 1) as f64;
        let values = (0..Z_POINTS)
            .map(|i| {
                let z = -Z_MAX + i as f64 * step;
                let v = marginal.quantile(normal::cdf(z));
                if v.is_finite() {
                    v.clamp(low, high)
                } else {
                    low
                }
            })
            .collect();
        Self { values }
    }

    #[inline]
    pub fn value(&self, z: f64) -> f64 {
        let pos = (z + Z_MAX) * ((Z_POINTS - 1) as f64 / (2.0 * Z_MAX));
        if pos <= 0.0 {
            return self.values[0];
        }
        let i = pos as usize;
        if i >= Z_POINTS - 1 {
            return self.values[Z_POINTS - 1];
        }
        let frac = pos - i as f64;
        self.values[i] + frac * (self.values[i + 1] - self.values[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_data_is_fitted_by_a_normal_family() {
        // Deterministic normal quantiles stand in for a normal sample.
        let values: Vec<f64> = (1..=2000)
            .map(|i| 50.0 + 10.0 * normal::inverse_cdf(i as f64 / 2001.0))
            .collect();
        let fit = fit(&values, false);
        assert!(
            matches!(
                fit.marginal,
                Marginal::Normal { .. } | Marginal::TruncatedNormal { .. }
            ),
            "{fit:?}"
        );
        assert!(fit.ks < 0.01);
    }

    #[test]
    fn multimodal_data_falls_back_to_the_empirical_quantiles() {
        let values: Vec<f64> = (0..3000)
            .map(|i| {
                if i % 2 == 0 {
                    20.0 + (i % 7) as f64
                } else {
                    90.0 + (i % 11) as f64
                }
            })
            .collect();
        let fit = fit(&values, false);
        assert_eq!(fit.marginal.family(), "empirical");
        assert_eq!(fit.candidates.len(), 5);
    }

    #[test]
    fn the_empirical_quantile_and_cdf_are_inverse() {
        let m = Marginal::Empirical {
            values: vec![1.0, 2.0, 4.0, 8.0],
        };
        for u in [0.0, 0.1, 0.5, 0.9, 1.0] {
            assert!((m.cdf(m.quantile(u)) - u).abs() < 1e-12);
        }
    }

    #[test]
    fn the_z_table_matches_the_exact_transform() {
        let m = Marginal::Gamma {
            shape: 2.0,
            scale: 3.0,
            low: 0.0,
        };
        let table = ZTable::new(&m, 0.0, 100.0);
        for z in [-2.0, -0.5, 0.0, 1.3, 2.5] {
            let exact = m.quantile(normal::cdf(z));
            assert!(
                (table.value(z) - exact).abs() < 1e-3 * exact.max(1.0),
                "{z}"
            );
        }
    }
}
