//! Platt scaling: P(churn) = σ(a·score + b), fitted on out-of-fold scores so probabilities are honest.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Platt {
    pub a: f64,
    pub b: f64,
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

impl Platt {
    /// Fits (a, b) by Newton's method on log loss, with Platt's smoothed targets so a perfectly
    /// separable fold cannot push them to infinity.
    pub fn fit(scores: &[f64], labels: &[bool]) -> Platt {
        let positives = labels.iter().filter(|l| **l).count() as f64;
        let negatives = labels.len() as f64 - positives;
        let high = (positives + 1.0) / (positives + 2.0);
        let low = 1.0 / (negatives + 2.0);
        let targets: Vec<f64> = labels.iter().map(|l| if *l { high } else { low }).collect();
        let (mut a, mut b) = (1.0, 0.0);
        for _ in 0..100 {
            let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 1e-9, 0.0, 1e-9);
            for (s, t) in scores.iter().zip(&targets) {
                let p = sigmoid(a * s + b);
                let d = p - t;
                let w = (p * (1.0 - p)).max(1e-12);
                ga += d * s;
                gb += d;
                haa += w * s * s;
                hab += w * s;
                hbb += w;
            }
            let det = haa * hbb - hab * hab;
            if det.abs() < 1e-18 {
                break;
            }
            let da = (hbb * ga - hab * gb) / det;
            let db = (haa * gb - hab * ga) / det;
            a -= da;
            b -= db;
            if da.abs() < 1e-10 && db.abs() < 1e-10 {
                break;
            }
        }
        Platt { a, b }
    }

    pub fn probability(&self, score: f64) -> f64 {
        sigmoid(self.a * score + self.b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platt_recovers_a_scaled_logistic() {
        // Labels drawn deterministically with P(y) = σ(2s − 1).
        let scores: Vec<f64> = (0..4000).map(|i| (i as f64 / 4000.0) * 6.0 - 3.0).collect();
        let labels: Vec<bool> = scores
            .iter()
            .enumerate()
            .map(|(i, s)| ((i * 7919) % 1000) as f64 / 1000.0 < sigmoid(2.0 * s - 1.0))
            .collect();
        let p = Platt::fit(&scores, &labels);
        assert!((p.a - 2.0).abs() < 0.2, "{p:?}");
        assert!((p.b + 1.0).abs() < 0.2, "{p:?}");
    }
}
