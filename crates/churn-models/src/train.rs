//! Training and promotion as one library call: read (and hash) the data, split off the holdout, search,
//! refit, calibrate, evaluate on the held-out rows once, register with lineage, and run champion/
//! challenger on that same evaluation. `churnctl train` and the scheduler's retrain job both call it;
//! it prints nothing and reports progress through a callback.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use churn_automl::search::Trial;
use churn_automl::split::{SplitParams, split_customers};
use churn_automl::{ChurnModel, Event, LoadedModel, TrainOptions};
use churn_core::metrics::Metrics;
use churn_core::{Customer, VersionNumber};
use churn_registry::{Decision, ModelVersion, Registry};
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::classifier::{self, TrainingInfo};

/// Where the training rows come from.
#[derive(Debug, Clone)]
pub enum TrainingData {
    /// A labelled CSV in the dataset's layout; its SHA-256 is computed while it is read.
    File(PathBuf),
    /// Rows already in memory (e.g. read from the warehouse), described for the lineage.
    Rows {
        customers: Vec<Customer>,
        /// Where they came from, e.g. `warehouse: churn.customers (seed, ingested)`.
        description: String,
        /// A SHA-256 identifying exactly these rows.
        sha256: String,
    },
}

/// The rows the model is tested (and the champion compared) on; the search never sees them.
#[derive(Debug, Clone)]
pub enum Holdout {
    /// A stratified share of the training data.
    Split { fraction: f64, seed: u64 },
    /// A labelled CSV of its own.
    File(PathBuf),
    /// Rows given by the caller.
    Rows(Vec<Customer>),
    /// No holdout: no test metrics, and no registration (promotion needs evidence).
    None,
}

/// One training run, unchecked; [`train_model`] and [`train_and_register`] check it before any work.
#[derive(Debug, Clone)]
pub struct TrainRequest {
    pub data: TrainingData,
    pub holdout: Holdout,
    pub options: TrainOptions,
    /// The candidate's test ROC AUC must beat the champion's by more than this: 0 to 1.
    pub promotion_margin: f64,
    /// A candidate that wins on the held-out rows becomes challenger, not champion, until it also wins
    /// on live labelled rows (see [`crate::classifier::decide_on_live`]).
    pub hold_for_live: bool,
    /// Recorded in the lineage, e.g. `churnctl 0.1.0` or `scheduler 0.1.0`.
    pub code_version: String,
}

/// Progress of a training run, in order.
#[derive(Debug, Clone)]
pub enum TrainEvent {
    /// The data is read and split.
    Loaded {
        train_rows: usize,
        holdout_rows: usize,
        data_sha256: String,
    },
    /// A candidate was scored; `leader` is the best so far.
    Trial { trial: Trial, leader: Trial },
    /// The search is over; the chosen model is refitted on all training rows.
    Refit { family: String, cv_roc_auc: f64 },
    /// The model was scored on the held-out rows.
    Evaluated { test: Metrics },
    /// The model is registered as this version.
    Registered { version: VersionNumber },
    /// Champion/challenger decided.
    Decided { decision: Decision },
}

/// A trained (and, with [`train_and_register`], registered and judged) model.
#[derive(Debug)]
pub struct TrainOutcome {
    pub model: ChurnModel,
    /// Metrics on the held-out rows, when there were any.
    pub test_metrics: Option<Metrics>,
    pub train_rows: usize,
    pub holdout_rows: usize,
    pub data_description: String,
    pub data_sha256: String,
    /// The registered version and the promotion decision ([`train_and_register`] only).
    pub registered: Option<(ModelVersion, Decision)>,
}

impl TrainOutcome {
    /// The search's trials, best cross-validated ROC AUC first.
    pub fn leaderboard(&self) -> Vec<Trial> {
        let mut board = self.model.training.trials.clone();
        board.sort_by(|a, b| b.cv_roc_auc.total_cmp(&a.cv_roc_auc));
        board
    }
}

fn check(request: &TrainRequest) -> Result<(), Error> {
    let invalid = |name: &'static str, value: String, rule: &'static str| {
        Err(Error::Automl(churn_automl::Error::InvalidParameter {
            name,
            value,
            rule,
        }))
    };
    request.options.check()?;
    if !(0.0..=1.0).contains(&request.promotion_margin) {
        return invalid(
            "promotion_margin",
            request.promotion_margin.to_string(),
            "must be between 0 and 1 (a difference of ROC AUC)",
        );
    }
    if let Holdout::Split { fraction, seed } = request.holdout {
        SplitParams {
            test_fraction: fraction,
            seed,
        }
        .check()?;
    }
    Ok(())
}

/// Training with the model, its held-out rows and their evaluation, before registration.
struct Trained {
    outcome: TrainOutcome,
    holdout: Vec<Customer>,
    split_seed: u64,
    /// The training data's profile as JSON, registered with the version.
    profile: Vec<u8>,
}

async fn read_file(path: PathBuf) -> Result<(Vec<Customer>, String), Error> {
    tokio::task::spawn_blocking(move || crate::data::read_customers_hashed(&path))
        .await
        .map_err(|e| Error::Task(e.to_string()))?
}

async fn train_checked<P>(
    request: TrainRequest,
    cancel: &CancellationToken,
    mut progress: P,
) -> Result<(Trained, P), Error>
where
    P: FnMut(TrainEvent) + Send + 'static,
{
    let (all, description, data_sha256) = match request.data {
        TrainingData::File(path) => {
            let description = path.display().to_string();
            let (rows, sha) = read_file(path).await?;
            (rows, description, sha)
        }
        TrainingData::Rows {
            customers,
            description,
            sha256,
        } => (customers, description, sha256),
    };
    let (train_rows, holdout, split_seed) = match request.holdout {
        Holdout::Split { fraction, seed } => {
            let params = SplitParams {
                test_fraction: fraction,
                seed,
            }
            .check()?;
            let (train, test) = split_customers(all, &params)?;
            (train, test, seed)
        }
        Holdout::File(path) => (all, read_file(path).await?.0, 0),
        Holdout::Rows(rows) => (all, rows, 0),
        Holdout::None => (all, Vec::new(), 0),
    };
    progress(TrainEvent::Loaded {
        train_rows: train_rows.len(),
        holdout_rows: holdout.len(),
        data_sha256: data_sha256.clone(),
    });
    let options = request.options;
    // The search is seconds to minutes of CPU: off the async threads, with the rows and the callback
    // moved in and handed back. A cancellation raises the search's stop flag and returns at once: the
    // thread stops at its next fold and its result is dropped, so nothing after it (registration)
    // happens, however long a fit in progress takes.
    let stop = Arc::new(AtomicBool::new(false));
    let raised = stop.clone();
    let training =
        tokio::task::spawn_blocking(move || {
            let importance = (!holdout.is_empty()).then_some(holdout.as_slice());
            let model =
                churn_automl::train_until(&train_rows, importance, options, &raised, |event| {
                    match event {
                        Event::Trial(trial, leader) => progress(TrainEvent::Trial {
                            trial: trial.clone(),
                            leader: leader.clone(),
                        }),
                        Event::Refit { family, cv_roc_auc } => progress(TrainEvent::Refit {
                            family: family.to_owned(),
                            cv_roc_auc,
                        }),
                    }
                })?;
            let loaded = LoadedModel::new(model.clone())?;
            // The held-out evaluation, computed once: it is reported, registered and judged on.
            let test_metrics = if holdout.is_empty() {
                None
            } else {
                let metrics = loaded.evaluate(&holdout)?;
                progress(TrainEvent::Evaluated { test: metrics });
                Some(metrics)
            };
            let profile = classifier::training_profile(&loaded, &train_rows, &holdout)?;
            Ok::<_, Error>((model, test_metrics, train_rows, holdout, profile, progress))
        });
    let (model, test_metrics, train_rows, holdout, profile, progress) = tokio::select! {
        joined = training => joined.map_err(|e| Error::Task(e.to_string()))??,
        () = cancel.cancelled() => {
            stop.store(true, Ordering::Relaxed);
            return Err(Error::Cancelled);
        }
    };
    Ok((
        Trained {
            outcome: TrainOutcome {
                model,
                test_metrics,
                train_rows: train_rows.len(),
                holdout_rows: holdout.len(),
                data_description: description,
                data_sha256,
                registered: None,
            },
            holdout,
            split_seed,
            profile,
        },
        progress,
    ))
}

/// Trains and evaluates without registering: split, search, refit, calibration, test metrics.
pub async fn train_model(
    request: TrainRequest,
    progress: impl FnMut(TrainEvent) + Send + 'static,
) -> Result<TrainOutcome, Error> {
    check(&request)?;
    Ok(train_checked(request, &CancellationToken::new(), progress)
        .await?
        .0
        .outcome)
}

/// Trains, evaluates on the held-out rows, registers a new version of the churn classifier with its run
/// and lineage, and runs champion/challenger on that evaluation (the champion scored on the same rows).
/// A request without held-out rows is refused before any work: promotion needs evidence.
pub async fn train_and_register(
    registry: &Registry,
    request: TrainRequest,
    progress: impl FnMut(TrainEvent) + Send + 'static,
) -> Result<TrainOutcome, Error> {
    train_and_register_until(registry, request, &CancellationToken::new(), progress).await
}

/// [`train_and_register`] that returns [`Error::Cancelled`] as soon as `cancel` is cancelled during the
/// training, registering nothing. Once registration has begun it runs to its end (a few writes): a
/// version half-registered would be worse than a run that finishes a moment late.
pub async fn train_and_register_until(
    registry: &Registry,
    request: TrainRequest,
    cancel: &CancellationToken,
    progress: impl FnMut(TrainEvent) + Send + 'static,
) -> Result<TrainOutcome, Error> {
    check(&request)?;
    if matches!(request.holdout, Holdout::None) {
        return Err(Error::NoHoldout);
    }
    let margin = request.promotion_margin;
    let hold_for_live = request.hold_for_live;
    let code_version = request.code_version.clone();
    let (trained, mut progress) = train_checked(request, cancel, progress).await?;
    if cancel.is_cancelled() {
        return Err(Error::Cancelled);
    }
    let Trained {
        mut outcome,
        holdout,
        split_seed,
        profile,
    } = trained;
    let Some(test_metrics) = outcome.test_metrics else {
        return Err(Error::NoHoldout);
    };
    let info = TrainingInfo {
        data_path: outcome.data_description.clone(),
        data_sha256: outcome.data_sha256.clone(),
        train_rows: outcome.train_rows,
        holdout_rows: outcome.holdout_rows,
        split_seed,
        code_version,
        profile: Some(profile),
    };
    let version =
        classifier::register(registry, &outcome.model, Some(&test_metrics), &info).await?;
    progress(TrainEvent::Registered {
        version: version.version,
    });
    let decision = classifier::promote_if_better(
        registry,
        &version,
        &test_metrics,
        &holdout,
        margin,
        hold_for_live,
    )
    .await?;
    progress(TrainEvent::Decided {
        decision: decision.clone(),
    });
    outcome.registered = Some((version, decision));
    Ok(outcome)
}
