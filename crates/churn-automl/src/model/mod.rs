//! The trained churn model: the artifact (preprocessing, estimator, calibration, threshold, importance,
//! training record) and the loaded form that predicts and explains.

use std::time::Instant;

use churn_core::Customer;
use churn_core::metrics::{self, Metrics};
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::calibration::Platt;
use crate::estimators::{self, Estimator, Prepared};
use crate::features::{self, Standardizer};
use crate::importance::Importance;
use crate::options::TrainOptions;
use crate::search::{self, Choice, Trial};

/// Version of the artifact layout.
pub const SCHEMA_VERSION: u32 = 1;
/// The flavor the registry records for these artifacts.
pub const FLAVOR: &str = "churn-automl/v1";

/// What training did, stored with the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingRecord {
    pub rows: usize,
    pub positives: usize,
    pub seed: u64,
    pub time_budget_secs: f64,
    pub folds: usize,
    pub seconds: f64,
    pub stopped_by_clock: bool,
    /// Out-of-fold metrics of the chosen model, calibrated, at the chosen threshold.
    pub cv_metrics: Metrics,
    pub trials: Vec<Trial>,
}

/// The serialized model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChurnModel {
    pub schema_version: u32,
    pub generator: String,
    /// The chosen candidate, e.g. "gbdt" or "ensemble(gbdt+gbdt+linfa_logistic)".
    pub family: String,
    pub params: serde_json::Value,
    pub features: Vec<String>,
    pub standardizer: Standardizer,
    pub estimator: Estimator,
    pub calibration: Platt,
    /// Predicted churn when P(churn) ≥ threshold (chosen for F1 on out-of-fold predictions).
    pub threshold: f64,
    pub importance: Vec<Importance>,
    pub training: TrainingRecord,
}

/// Progress of a training run.
#[derive(Debug)]
pub enum Event<'a> {
    /// A candidate was scored; the second trial is the leader so far.
    Trial(&'a Trial, &'a Trial),
    /// The search is over; the chosen model is being refitted on all training rows.
    Refit { family: &'a str, cv_roc_auc: f64 },
}

/// Trains a model: search, refit on all of `train`, calibrate and choose the threshold on out-of-fold
/// predictions. `importance_data` (e.g. the holdout) is where permutation importance is measured; the
/// training rows are used when it is `None`.
pub fn train(
    train: &[Customer],
    importance_data: Option<&[Customer]>,
    options: TrainOptions,
    mut progress: impl FnMut(Event<'_>),
) -> Result<ChurnModel, Error> {
    let options = options.check()?;
    let started = Instant::now();
    let y = crate::split::labels(train)?;
    let positives = y.iter().filter(|v| **v).count();
    if positives < options.folds || y.len() - positives < options.folds {
        return Err(Error::TooFewRows {
            rows: train.len(),
            positives,
            folds: options.folds,
        });
    }
    let cols = features::feature_count();
    let raw = features::encode_all(train);
    let outcome = search::search(&raw, cols, &y, &options, |trial, leader| {
        progress(Event::Trial(trial, leader))
    })?;

    let (family, params_json) = describe(&outcome.choice);
    progress(Event::Refit {
        family: &family,
        cv_roc_auc: outcome.cv_roc_auc,
    });
    let standardizer = Standardizer::fit(&raw, cols);
    let mut x = raw;
    standardizer.apply(&mut x);
    let estimator = refit(&outcome.choice, &x, cols, &y, options.seed, options.threads)?;

    let calibration = Platt::fit(&outcome.oof_scores, &y);
    let oof_probabilities: Vec<f64> = outcome
        .oof_scores
        .iter()
        .map(|s| calibration.probability(*s))
        .collect();
    let (threshold, _) = metrics::best_f1_threshold(&y, &oof_probabilities);
    let cv_metrics = metrics::evaluate(&y, &oof_probabilities, threshold)
        .map_err(|e| Error::Model(e.to_string()))?;

    let mut model = ChurnModel {
        schema_version: SCHEMA_VERSION,
        generator: format!("churn-automl {}", env!("CARGO_PKG_VERSION")),
        family,
        params: params_json,
        features: features::feature_infos()
            .into_iter()
            .map(|f| f.name)
            .collect(),
        standardizer,
        estimator,
        calibration,
        threshold,
        importance: Vec::new(),
        training: TrainingRecord {
            rows: train.len(),
            positives,
            seed: options.seed,
            time_budget_secs: options.time_budget.as_secs_f64(),
            folds: options.folds,
            seconds: 0.0,
            stopped_by_clock: outcome.stopped_by_clock,
            cv_metrics,
            trials: outcome.trials,
        },
    };
    let loaded = LoadedModel::new(model.clone())?;
    model.importance = crate::importance::permutation(
        |rows| loaded.predict(rows),
        importance_data.unwrap_or(train),
        options.seed,
    )?;
    model.training.seconds = started.elapsed().as_secs_f64();
    Ok(model)
}

fn describe(choice: &Choice) -> (String, serde_json::Value) {
    match choice.members.as_slice() {
        [(_, p)] => (
            p.family().to_owned(),
            serde_json::to_value(p).unwrap_or_default(),
        ),
        members => {
            let families: Vec<&str> = members.iter().map(|(_, p)| p.family()).collect();
            (
                format!("ensemble({})", families.join("+")),
                serde_json::json!(
                    members
                        .iter()
                        .map(|(w, p)| serde_json::json!({ "weight": w, "member": p }))
                        .collect::<Vec<_>>()
                ),
            )
        }
    }
}

/// Refits the chosen members on all training rows, side by side on up to `threads` threads.
fn refit(
    choice: &Choice,
    x: &[f64],
    cols: usize,
    y: &[bool],
    seed: u64,
    threads: usize,
) -> Result<Estimator, Error> {
    if let [(_, p)] = choice.members.as_slice() {
        return estimators::fit(p, x, cols, y, seed);
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let fitted: Vec<std::sync::Mutex<Option<Result<Estimator, Error>>>> = choice
        .members
        .iter()
        .map(|_| std::sync::Mutex::new(None))
        .collect();
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, choice.members.len()) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((_, params)) = choice.members.get(i) else {
                        break;
                    };
                    let result = estimators::fit(params, x, cols, y, seed);
                    if let Ok(mut slot) = fitted[i].lock() {
                        *slot = Some(result);
                    }
                }
            });
        }
    });
    let mut members = Vec::new();
    for ((weight, _), slot) in choice.members.iter().zip(fitted) {
        let estimator = slot
            .into_inner()
            .ok()
            .flatten()
            .unwrap_or_else(|| Err(Error::Model("a refit worker panicked".into())))?;
        members.push((*weight, estimator));
    }
    Ok(Estimator::Blend { members })
}

impl ChurnModel {
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        serde_json::to_vec(self).map_err(|e| Error::Artifact(e.to_string()))
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<ChurnModel, Error> {
        let model: ChurnModel = churn_core::artifact::from_json(bytes, SCHEMA_VERSION)?;
        let expected: Vec<String> = features::feature_infos()
            .into_iter()
            .map(|f| f.name)
            .collect();
        if model.features != expected {
            return Err(Error::Artifact(
                "the model was trained on a different feature layout; retrain it with this version"
                    .into(),
            ));
        }
        Ok(model)
    }
}

/// One field's share of a single prediction, in log-odds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Contribution {
    pub field: String,
    pub contribution: f64,
}

/// A model ready to predict.
#[derive(Debug)]
pub struct LoadedModel {
    /// The model's metadata. Its estimator has been moved into the prepared form (a served model
    /// would otherwise hold its boosters twice, once as JSON text), so this copy is not an artifact.
    pub model: ChurnModel,
    prepared: Prepared,
    sources: Vec<&'static str>,
}

impl LoadedModel {
    pub fn new(mut model: ChurnModel) -> Result<Self, Error> {
        let prepared = model.estimator.prepare()?;
        model.estimator = Estimator::Blend {
            members: Vec::new(),
        };
        let sources = features::feature_infos()
            .into_iter()
            .map(|f| f.source)
            .collect();
        Ok(Self {
            model,
            prepared,
            sources,
        })
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        Self::new(ChurnModel::from_bytes(bytes)?)
    }

    /// Standardized features of many customers, row-major.
    fn matrix(&self, customers: &[Customer]) -> Vec<f64> {
        let mut x = features::encode_all(customers);
        self.model.standardizer.apply(&mut x);
        x
    }

    /// P(churn) for each customer. Large batches are split over the machine's cores.
    pub fn predict(&self, customers: &[Customer]) -> Vec<f64> {
        const PARALLEL_ROWS: usize = 512;
        // Asking for the core count reads cgroup files: only worth it for a large batch.
        if customers.len() < PARALLEL_ROWS {
            return self.predict_chunk(customers);
        }
        let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        if threads == 1 {
            return self.predict_chunk(customers);
        }
        let chunk = customers.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let parts: Vec<_> = customers
                .chunks(chunk)
                .map(|part| scope.spawn(move || self.predict_chunk(part)))
                .collect();
            parts
                .into_iter()
                .flat_map(|p| {
                    p.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        })
    }

    fn predict_chunk(&self, customers: &[Customer]) -> Vec<f64> {
        let x = self.matrix(customers);
        self.prepared
            .scores(&x, features::feature_count())
            .into_iter()
            .map(|s| self.model.calibration.probability(s))
            .collect()
    }

    /// Whether a probability means churn under the model's threshold.
    pub fn label(&self, probability: f64) -> bool {
        probability >= self.model.threshold
    }

    /// The `top` fields that moved this customer's score most, largest magnitude first.
    pub fn explain(&self, customer: &Customer, top: usize) -> Vec<Contribution> {
        self.predict_explained(customer, top).1
    }

    /// P(churn) of one customer and the `top` fields that moved it most, from one encoding of the row.
    pub fn predict_explained(&self, customer: &Customer, top: usize) -> (f64, Vec<Contribution>) {
        let x = self.matrix(std::slice::from_ref(customer));
        let score = self
            .prepared
            .scores(&x, features::feature_count())
            .first()
            .copied()
            .unwrap_or(f64::NAN);
        let probability = self.model.calibration.probability(score);
        let per_feature = self.prepared.contributions(&x);
        let mut by_field: Vec<Contribution> = Vec::new();
        for (source, value) in self.sources.iter().zip(per_feature) {
            match by_field.iter_mut().find(|c| c.field == *source) {
                Some(c) => c.contribution += value,
                None => by_field.push(Contribution {
                    field: (*source).to_owned(),
                    contribution: value,
                }),
            }
        }
        // Calibration scales log-odds by `a`, so contributions are reported on the calibrated scale.
        by_field
            .iter_mut()
            .for_each(|c| c.contribution *= self.model.calibration.a);
        by_field.sort_by(|a, b| b.contribution.abs().total_cmp(&a.contribution.abs()));
        by_field.truncate(top);
        (probability, by_field)
    }

    /// Every metric on labelled customers.
    pub fn evaluate(&self, customers: &[Customer]) -> Result<Metrics, Error> {
        let y = crate::split::labels(customers)?;
        let p = self.predict(customers);
        metrics::evaluate(&y, &p, self.model.threshold).map_err(|e| Error::Model(e.to_string()))
    }
}
