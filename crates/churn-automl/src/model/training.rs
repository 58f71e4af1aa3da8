//! Training a churn model: the search, the refit of the chosen candidate on all training rows,
//! calibration, the threshold and permutation importance.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use churn_core::Customer;
use churn_core::metrics;

use super::{ChurnModel, LoadedModel, SCHEMA_VERSION, TrainingRecord};
use crate::Error;
use crate::calibration::Platt;
use crate::estimators::{self, Estimator};
use crate::features::{self, Standardizer};
use crate::options::TrainOptions;
use crate::search::{self, Choice, Trial};

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
    progress: impl FnMut(Event<'_>),
) -> Result<ChurnModel, Error> {
    train_until(
        train,
        importance_data,
        options,
        &AtomicBool::new(false),
        progress,
    )
}

/// [`train`] that stops with [`Error::Cancelled`] soon after `stop` is raised: it is looked at before
/// every cross-validation fold and between the stages, so a stop waits for at most one model fit.
pub fn train_until(
    train: &[Customer],
    importance_data: Option<&[Customer]>,
    options: TrainOptions,
    stop: &AtomicBool,
    mut progress: impl FnMut(Event<'_>),
) -> Result<ChurnModel, Error> {
    let options = options.check()?;
    let check = |stage: &'static str| {
        if stop.load(Ordering::Relaxed) {
            Err(Error::Cancelled { stage })
        } else {
            Ok(())
        }
    };
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
    let outcome = search::search(&raw, cols, &y, &options, stop, |trial, leader| {
        progress(Event::Trial(trial, leader))
    })?;
    check("after the search")?;

    let (family, params_json) = describe(&outcome.choice);
    progress(Event::Refit {
        family: &family,
        cv_roc_auc: outcome.cv_roc_auc,
    });
    let standardizer = Standardizer::fit(&raw, cols);
    let mut x = raw;
    standardizer.apply(&mut x);
    let estimator = refit(&outcome.choice, &x, cols, &y, options.seed, options.threads)?;
    check("after the refit")?;

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
    check("after permutation importance")?;
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
