//! The model families: logistic regression (linfa-logistic and smartcore) and gradient-boosted trees
//! (forust-ml), all scoring in log-odds of churn on standardized features, and blends of them.

use forust_ml::Matrix;
use forust_ml::gradientbooster::GradientBooster;
use forust_ml::objective::ObjectiveType;
use linfa::prelude::*;
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};
use smartcore::linalg::basic::arrays::Array;
use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::linear::logistic_regression::{
    LogisticRegression as SmartLogistic, LogisticRegressionParameters,
};

use crate::Error;

/// Hyper-parameters of one candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "family", rename_all = "snake_case")]
pub enum Params {
    /// L2-regularized logistic regression by linfa-logistic (L-BFGS); `alpha` weighs ½‖w‖².
    LinfaLogistic { alpha: f64 },
    /// L2-regularized logistic regression by smartcore; probabilities from its coefficients.
    SmartcoreLogistic { alpha: f64 },
    /// Gradient-boosted trees by forust-ml on log loss.
    Gbdt(GbdtParams),
}

impl Params {
    /// Refuses hyper-parameters no estimator can fit with, naming the parameter, its value and the range.
    pub fn check(&self) -> Result<(), Error> {
        fn bad(name: &'static str, value: impl ToString, rule: &'static str) -> Result<(), Error> {
            Err(Error::InvalidParameter {
                name,
                value: value.to_string(),
                rule,
            })
        }
        match self {
            Params::LinfaLogistic { alpha } | Params::SmartcoreLogistic { alpha } => {
                if !(alpha.is_finite() && *alpha >= 0.0) {
                    return bad("alpha", alpha, "must be a finite number of at least 0");
                }
            }
            Params::Gbdt(p) => {
                if !(1..=100_000).contains(&p.iterations) {
                    return bad("iterations", p.iterations, "must be between 1 and 100000");
                }
                if !(p.learning_rate > 0.0 && p.learning_rate <= 1.0) {
                    return bad(
                        "learning_rate",
                        p.learning_rate,
                        "must be above 0 and at most 1",
                    );
                }
                if !(1..=32).contains(&p.max_depth) {
                    return bad("max_depth", p.max_depth, "must be between 1 and 32");
                }
                if !(p.min_leaf_weight.is_finite() && p.min_leaf_weight >= 0.0) {
                    return bad(
                        "min_leaf_weight",
                        p.min_leaf_weight,
                        "must be a finite number of at least 0",
                    );
                }
                if !(p.l2.is_finite() && p.l2 >= 0.0) {
                    return bad("l2", p.l2, "must be a finite number of at least 0");
                }
                if !(p.subsample > 0.0 && p.subsample <= 1.0) {
                    return bad("subsample", p.subsample, "must be above 0 and at most 1");
                }
                if !(p.colsample_bytree > 0.0 && p.colsample_bytree <= 1.0) {
                    return bad(
                        "colsample_bytree",
                        p.colsample_bytree,
                        "must be above 0 and at most 1",
                    );
                }
            }
        }
        Ok(())
    }

    pub fn family(&self) -> &'static str {
        match self {
            Params::LinfaLogistic { .. } => "linfa_logistic",
            Params::SmartcoreLogistic { .. } => "smartcore_logistic",
            Params::Gbdt(_) => "gbdt",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GbdtParams {
    pub iterations: usize,
    pub learning_rate: f32,
    pub max_depth: usize,
    pub min_leaf_weight: f32,
    pub l2: f32,
    pub subsample: f32,
    pub colsample_bytree: f64,
    /// Weight positives by negatives/positives so both classes carry equal weight.
    pub balanced: bool,
}

impl Default for GbdtParams {
    /// A sensible first candidate: 300 shallow trees with a small learning rate.
    fn default() -> Self {
        Self {
            iterations: 300,
            learning_rate: 0.03,
            max_depth: 3,
            min_leaf_weight: 5.0,
            l2: 1.0,
            subsample: 1.0,
            colsample_bytree: 1.0,
            balanced: false,
        }
    }
}

/// A fitted estimator, as stored in the artifact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Estimator {
    /// score = w·x + b on standardized features.
    Linear { weights: Vec<f64>, intercept: f64 },
    /// forust-ml's JSON dump; it predicts log-odds.
    Gbdt { booster: String },
    /// Weighted sum of member scores.
    Blend { members: Vec<(f64, Estimator)> },
}

/// An estimator ready to score (boosters parsed once).
pub enum Prepared {
    Linear {
        weights: Vec<f64>,
        intercept: f64,
    },
    /// The booster's trees, flattened for fast scoring and explanations.
    Gbdt(Forest),
    Blend(Vec<(f64, Prepared)>),
}

/// A boosted forest flattened for fast scoring on row-major rows (no column-major copy, no allocation
/// per tree). Every node's two children sit side by side and a leaf points at itself with an infinite
/// threshold, so a step is one load, one compare and one add with no branch, and a tree is walked in a
/// fixed number of steps. Trees are walked [`LANES`] at a time in lockstep: their paths are independent,
/// so the processor overlaps them instead of waiting on one chain of loads.
#[derive(Debug, Clone)]
pub struct Forest {
    base: f64,
    nodes: Vec<ForestNode>,
    /// Every node's weight: a leaf's value, an inner node's expected value (for contributions).
    weights: Vec<f64>,
    /// Groups of up to LANES roots with the number of steps that reaches a leaf in all of them.
    groups: Vec<([u32; LANES], usize, usize)>,
}

#[derive(Debug, Clone, Copy)]
struct ForestNode {
    /// Split value; +∞ for a leaf, so the walk stays put.
    value: f64,
    /// Split feature (0 for a leaf).
    feature: u32,
    /// Index of the left child (the right child is next to it); a leaf's own index.
    left: u32,
}

/// Trees walked together.
const LANES: usize = 8;
/// Rows scored together, tree group by tree group, so each group's nodes stay in cache.
const BLOCK_ROWS: usize = 32;

impl Forest {
    fn from_booster(booster: &GradientBooster) -> Self {
        let count = booster.prediction_iteration.unwrap_or(booster.trees.len());
        let mut nodes: Vec<ForestNode> = Vec::new();
        let mut weights: Vec<f64> = Vec::new();
        let mut trees: Vec<(u32, usize)> = Vec::with_capacity(count);
        for tree in booster.trees.iter().take(count) {
            let root = nodes.len();
            let mut depth = 0;
            // Breadth-first, placing each node's two children in consecutive slots.
            let mut queue = std::collections::VecDeque::from([(0usize, root, 0usize)]);
            nodes.push(ForestNode {
                value: f64::INFINITY,
                feature: 0,
                left: root as u32,
            });
            weights.push(0.0);
            while let Some((source, slot, level)) = queue.pop_front() {
                let Some(node) = tree.nodes.get(source) else {
                    continue;
                };
                weights[slot] = f64::from(node.weight_value);
                if node.is_leaf {
                    nodes[slot] = ForestNode {
                        value: f64::INFINITY,
                        feature: 0,
                        left: slot as u32,
                    };
                } else {
                    let left = nodes.len();
                    for _ in 0..2 {
                        nodes.push(ForestNode {
                            value: f64::INFINITY,
                            feature: 0,
                            left: 0,
                        });
                        weights.push(0.0);
                    }
                    queue.push_back((node.left_child, left, level + 1));
                    queue.push_back((node.right_child, left + 1, level + 1));
                    nodes[slot] = ForestNode {
                        value: node.split_value,
                        feature: node.split_feature as u32,
                        left: left as u32,
                    };
                    depth = depth.max(level + 1);
                }
            }
            trees.push((root as u32, depth));
        }
        // Trees of similar depth share a group, so few steps are wasted on trees already at a leaf.
        trees.sort_by_key(|(_, depth)| *depth);
        let groups = trees
            .chunks(LANES)
            .map(|chunk| {
                let mut roots = [chunk[0].0; LANES];
                for (lane, (root, _)) in roots.iter_mut().zip(chunk) {
                    *lane = *root;
                }
                let depth = chunk.iter().map(|(_, d)| *d).max().unwrap_or(0);
                (roots, chunk.len(), depth)
            })
            .collect();
        Self {
            base: booster.base_score,
            nodes,
            weights,
            groups,
        }
    }

    /// Per-feature contributions to one row's score, by following the row's path through every tree
    /// and crediting each split's feature with the change in expected value (Saabas' method). They sum
    /// to the score minus the base score and every root's expected value.
    fn contributions(&self, row: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; row.len()];
        for (roots, lanes, _) in &self.groups {
            for root in &roots[..*lanes] {
                let mut index = *root as usize;
                loop {
                    let node = self.nodes[index];
                    if node.value == f64::INFINITY {
                        break;
                    }
                    let next =
                        (node.left + u32::from(row[node.feature as usize] >= node.value)) as usize;
                    out[node.feature as usize] += self.weights[next] - self.weights[index];
                    index = next;
                }
            }
        }
        out
    }

    /// The sum of one group's leaf values for a row. Features are always finite here, so forust's
    /// missing-value branch never applies.
    #[inline]
    fn group_sum(&self, roots: &[u32; LANES], lanes: usize, depth: usize, row: &[f64]) -> f64 {
        let mut at = *roots;
        for _ in 0..depth {
            for index in at.iter_mut() {
                let node = self.nodes[*index as usize];
                *index = node.left + u32::from(row[node.feature as usize] >= node.value);
            }
        }
        // Every walk ends at a leaf, whose weight is its value.
        at[..lanes].iter().map(|i| self.weights[*i as usize]).sum()
    }

    /// Log-odds of every row of a row-major matrix.
    fn scores(&self, x: &[f64], cols: usize) -> Vec<f64> {
        let mut out = vec![self.base; x.len() / cols];
        for (block, scores) in x.chunks(cols * BLOCK_ROWS).zip(out.chunks_mut(BLOCK_ROWS)) {
            for (roots, lanes, depth) in &self.groups {
                for (row, score) in block.chunks_exact(cols).zip(scores.iter_mut()) {
                    *score += self.group_sum(roots, *lanes, *depth, row);
                }
            }
        }
        out
    }
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Prepared::Linear { weights, .. } => write!(f, "Linear({} weights)", weights.len()),
            Prepared::Gbdt(forest) => write!(f, "Gbdt({} tree groups)", forest.groups.len()),
            Prepared::Blend(members) => f.debug_list().entries(members).finish(),
        }
    }
}

impl Estimator {
    pub fn prepare(&self) -> Result<Prepared, Error> {
        Ok(match self {
            Estimator::Linear { weights, intercept } => Prepared::Linear {
                weights: weights.clone(),
                intercept: *intercept,
            },
            Estimator::Gbdt { booster } => {
                let booster =
                    GradientBooster::from_json(booster).map_err(|e| Error::Model(e.to_string()))?;
                // The flattened forest is all scoring and explaining need: the booster is dropped here.
                Prepared::Gbdt(Forest::from_booster(&booster))
            }
            Estimator::Blend { members } => Prepared::Blend(
                members
                    .iter()
                    .map(|(w, m)| m.prepare().map(|p| (*w, p)))
                    .collect::<Result<_, _>>()?,
            ),
        })
    }
}

/// Column-major copy of a row-major matrix, as forust wants it.
pub fn column_major(x: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    let mut out = vec![0.0; x.len()];
    for (r, row) in x.chunks_exact(cols).enumerate() {
        for (c, v) in row.iter().enumerate() {
            out[c * rows + r] = *v;
        }
    }
    out
}

impl Prepared {
    /// Log-odds of churn for each row of a row-major standardized matrix with `cols` columns.
    pub fn scores(&self, x: &[f64], cols: usize) -> Vec<f64> {
        let rows = x.len() / cols;
        match self {
            Prepared::Linear { weights, intercept } => x
                .chunks_exact(cols)
                .map(|row| intercept + row.iter().zip(weights).map(|(a, b)| a * b).sum::<f64>())
                .collect(),
            Prepared::Gbdt(forest) => forest.scores(x, cols),
            Prepared::Blend(members) => {
                let mut total = vec![0.0; rows];
                for (w, m) in members {
                    for (t, s) in total.iter_mut().zip(m.scores(x, cols)) {
                        *t += w * s;
                    }
                }
                total
            }
        }
    }

    /// Per-feature contributions to one row's score (they sum to the score minus a constant).
    pub fn contributions(&self, row: &[f64]) -> Vec<f64> {
        let cols = row.len();
        match self {
            Prepared::Linear { weights, .. } => {
                row.iter().zip(weights).map(|(a, b)| a * b).collect()
            }
            Prepared::Gbdt(forest) => forest.contributions(row),
            Prepared::Blend(members) => {
                let mut total = vec![0.0; cols];
                for (w, m) in members {
                    for (t, c) in total.iter_mut().zip(m.contributions(row)) {
                        *t += w * c;
                    }
                }
                total
            }
        }
    }
}

/// A freshly fitted candidate before it is stored: a GBDT keeps its live booster, so scoring it (as
/// cross-validation does for every fold of every candidate) needs no JSON round trip.
pub enum Fitted {
    Linear { weights: Vec<f64>, intercept: f64 },
    Gbdt(Box<GradientBooster>),
}

impl std::fmt::Debug for Fitted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fitted::Linear { weights, .. } => write!(f, "Linear({} weights)", weights.len()),
            Fitted::Gbdt(booster) => write!(f, "Gbdt({} trees)", booster.trees.len()),
        }
    }
}

impl Fitted {
    /// The scoring form, straight from the fitted model.
    pub fn prepare(&self) -> Prepared {
        match self {
            Fitted::Linear { weights, intercept } => Prepared::Linear {
                weights: weights.clone(),
                intercept: *intercept,
            },
            Fitted::Gbdt(booster) => Prepared::Gbdt(Forest::from_booster(booster)),
        }
    }

    /// The stored form (a GBDT becomes forust's JSON dump).
    pub fn into_estimator(self) -> Result<Estimator, Error> {
        Ok(match self {
            Fitted::Linear { weights, intercept } => Estimator::Linear { weights, intercept },
            Fitted::Gbdt(booster) => Estimator::Gbdt {
                booster: booster
                    .json_dump()
                    .map_err(|e| Error::Model(e.to_string()))?,
            },
        })
    }
}

/// Fits one candidate on a standardized row-major matrix, in its stored form.
pub fn fit(
    params: &Params,
    x: &[f64],
    cols: usize,
    y: &[bool],
    seed: u64,
) -> Result<Estimator, Error> {
    fit_live(params, x, cols, y, seed)?.into_estimator()
}

/// Fits one candidate on a standardized row-major matrix, keeping the fitted model live. The parameters
/// are checked first ([`Params::check`]).
pub fn fit_live(
    params: &Params,
    x: &[f64],
    cols: usize,
    y: &[bool],
    seed: u64,
) -> Result<Fitted, Error> {
    params.check()?;
    let rows = x.len() / cols.max(1);
    match params {
        Params::LinfaLogistic { alpha } => {
            let records = Array2::from_shape_vec((rows, cols), x.to_vec())
                .map_err(|e| Error::Model(e.to_string()))?;
            let targets = Array1::from_iter(y.iter().copied());
            let dataset = Dataset::new(records, targets);
            let fitted = LogisticRegression::default()
                .alpha(*alpha)
                .gradient_tolerance(1e-3)
                .max_iterations(100)
                .fit(&dataset)
                .map_err(|e| Error::Model(format!("linfa-logistic: {e}")))?;
            // linfa-logistic calls the majority class "positive"; flip so scores are log-odds of churn.
            let sign = if fitted.labels().pos.class { 1.0 } else { -1.0 };
            Ok(Fitted::Linear {
                weights: fitted.params().iter().map(|w| sign * w).collect(),
                intercept: sign * fitted.intercept(),
            })
        }
        Params::SmartcoreLogistic { alpha } => {
            let matrix = DenseMatrix::new(rows, cols, x.to_vec(), false)
                .map_err(|e| Error::Model(format!("smartcore: {e}")))?;
            let labels: Vec<u32> = y.iter().map(|b| u32::from(*b)).collect();
            let fitted = SmartLogistic::fit(
                &matrix,
                &labels,
                LogisticRegressionParameters::default().with_alpha(*alpha),
            )
            .map_err(|e| Error::Model(format!("smartcore: {e}")))?;
            // Binary smartcore models score the second of the sorted classes, here 1 = churn.
            let weights: Vec<f64> = (0..cols)
                .map(|j| *fitted.coefficients().get((0, j)))
                .collect();
            let intercept = *fitted.intercept().get((0, 0));
            Ok(Fitted::Linear { weights, intercept })
        }
        Params::Gbdt(p) => {
            let data = column_major(x, rows, cols);
            let matrix = Matrix::new(&data, rows, cols);
            let target: Vec<f64> = y.iter().map(|b| f64::from(u8::from(*b))).collect();
            let positives = y.iter().filter(|b| **b).count().max(1) as f64;
            let positive_weight = if p.balanced {
                (rows as f64 - positives) / positives
            } else {
                1.0
            };
            let weights: Vec<f64> = y
                .iter()
                .map(|b| if *b { positive_weight } else { 1.0 })
                .collect();
            let mut booster = GradientBooster::default()
                .set_objective_type(ObjectiveType::LogLoss)
                .set_iterations(p.iterations)
                .set_learning_rate(p.learning_rate)
                .set_max_depth(p.max_depth)
                .set_min_leaf_weight(p.min_leaf_weight)
                .set_l2(p.l2)
                .set_subsample(p.subsample)
                .set_colsample_bytree(p.colsample_bytree)
                .set_seed(seed)
                .set_parallel(false);
            booster
                .fit(&matrix, &target, &weights, None)
                .map_err(|e| Error::Model(format!("forust: {e}")))?;
            Ok(Fitted::Gbdt(Box::new(booster)))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn bad_hyper_parameters_are_refused_naming_the_parameter_before_fitting() {
        let gbdt = |change: fn(&mut GbdtParams)| {
            let mut p = GbdtParams::default();
            change(&mut p);
            Params::Gbdt(p)
        };
        let cases = [
            (gbdt(|p| p.iterations = 0), "iterations"),
            (gbdt(|p| p.learning_rate = 0.0), "learning_rate"),
            (gbdt(|p| p.max_depth = 0), "max_depth"),
            (gbdt(|p| p.min_leaf_weight = f32::NAN), "min_leaf_weight"),
            (gbdt(|p| p.l2 = -1.0), "l2"),
            (gbdt(|p| p.subsample = 1.5), "subsample"),
            (gbdt(|p| p.colsample_bytree = 0.0), "colsample_bytree"),
            (Params::LinfaLogistic { alpha: -1.0 }, "alpha"),
            (
                Params::SmartcoreLogistic {
                    alpha: f64::INFINITY,
                },
                "alpha",
            ),
        ];
        let (x, y) = (vec![0.0, 1.0, 1.0, 0.0], vec![false, true]);
        for (params, name) in cases {
            let err = fit(&params, &x, 2, &y, 0).unwrap_err().to_string();
            assert!(err.starts_with(name), "{err}");
        }
        assert!(Params::Gbdt(GbdtParams::default()).check().is_ok());
    }

    #[test]
    fn the_flattened_forest_scores_exactly_as_forust_does() {
        // A deterministic, non-trivial problem: the label depends on two of four features.
        let (rows, cols) = (600, 4);
        let x: Vec<f64> = (0..rows * cols)
            .map(|i| ((i * 7919) % 1000) as f64 / 100.0)
            .collect();
        let y: Vec<bool> = x
            .chunks_exact(cols)
            .map(|r| r[0] + 0.5 * r[2] > 7.0)
            .collect();
        let params = Params::Gbdt(GbdtParams {
            iterations: 40,
            max_depth: 4,
            ..GbdtParams::default()
        });
        let estimator = fit(&params, &x, cols, &y, 1).unwrap();
        let Estimator::Gbdt { booster } = &estimator else {
            panic!("a GBDT")
        };
        let booster = GradientBooster::from_json(booster).unwrap();
        let expected = booster.predict(
            &Matrix::new(&column_major(&x, rows, cols), rows, cols),
            false,
        );
        let prepared = estimator.prepare().unwrap();
        let ours = prepared.scores(&x, cols);
        for (a, b) in ours.iter().zip(&expected) {
            assert!((a - b).abs() < 1e-9, "{a} vs {b}");
        }
        // Contributions account for the whole score beyond the trees' starting values.
        let Prepared::Gbdt(forest) = &prepared else {
            panic!("a forest")
        };
        let roots: f64 = forest
            .groups
            .iter()
            .flat_map(|(r, n, _)| r[..*n].iter())
            .map(|r| forest.weights[*r as usize])
            .sum();
        for (row, score) in x.chunks_exact(cols).zip(&ours).take(50) {
            let c = prepared.contributions(row);
            assert!((c.iter().sum::<f64>() - (score - forest.base - roots)).abs() < 1e-9);
        }
    }
}
