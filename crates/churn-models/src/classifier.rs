//! The churn classifier in the registry: register a trained model with its run, promote it over the
//! champion only on evidence from held-out data, and load it by reference.

use churn_automl::{ChurnModel, LoadedModel};
use churn_core::metrics::Metrics;
use churn_core::{Customer, VersionMetrics, VersionNumber};
use churn_registry::{
    Alias, Decision, Lineage, ModelRef, ModelVersion, NewRun, NewVersion, Registry, RunStatus,
};
use serde_json::json;

use crate::Error;
pub use crate::TrainingInfo;

/// The classifier's registered model name.
pub const MODEL_NAME: &str = "churn-classifier";
/// The metric promotions compare.
pub const PROMOTION_METRIC: &str = "roc_auc";

/// The drift reference of a trained model: the profile of the rows it was trained on, with its churn
/// probabilities on the held-out rows (on the training rows when there are none) as the reference for
/// prediction drift. Returns the JSON artifact.
pub fn training_profile(
    model: &LoadedModel,
    train: &[Customer],
    holdout: &[Customer],
) -> Result<Vec<u8>, Error> {
    let scored = if holdout.is_empty() { train } else { holdout };
    let profile = churn_monitor::ReferenceProfile::from_customers(train)?
        .with_prediction(&model.predict(scored))?;
    Ok(profile.to_json()?)
}

/// Records the run (params, per-trial and final metrics, lineage) and registers the model as a new
/// version of [`MODEL_NAME`]. `holdout` holds the metrics on held-out rows, when there were any.
pub async fn register(
    registry: &Registry,
    model: &ChurnModel,
    holdout: Option<&Metrics>,
    info: &TrainingInfo,
) -> Result<ModelVersion, Error> {
    let params = vec![
        ("family".to_owned(), model.family.clone()),
        ("params".to_owned(), model.params.to_string()),
        ("seed".to_owned(), model.training.seed.to_string()),
        (
            "time_budget_secs".to_owned(),
            model.training.time_budget_secs.to_string(),
        ),
        ("folds".to_owned(), model.training.folds.to_string()),
        ("threshold".to_owned(), model.threshold.to_string()),
        ("split_seed".to_owned(), info.split_seed.to_string()),
        ("holdout_rows".to_owned(), info.holdout_rows.to_string()),
    ];
    let run_id = registry
        .start_run(&NewRun {
            experiment: MODEL_NAME.to_owned(),
            code_version: info.code_version.clone(),
            training_rows: Some(info.train_rows as u64),
            training_data_sha256: Some(info.data_sha256.clone()),
            parent_run_id: None,
            params,
            tags: vec![("data_path".to_owned(), info.data_path.clone())],
        })
        .await?;
    let registered = async {
        for trial in &model.training.trials {
            registry
                .log_metrics(
                    run_id,
                    trial.number as i64,
                    &[("trial_cv_roc_auc", trial.cv_roc_auc)],
                )
                .await?;
        }
        let metrics = VersionMetrics::classifier(
            &model.training.cv_metrics,
            holdout,
            model.threshold,
            model.importance.clone(),
        );
        registry.log_metrics(run_id, 0, &metrics.scores()).await?;
        let parent = registry.latest(MODEL_NAME).await?.map(|v| v.version);
        registry
            .register(NewVersion {
                model_name: MODEL_NAME.to_owned(),
                flavor: churn_automl::FLAVOR.to_owned(),
                artifact: model.to_bytes()?,
                description: format!(
                    "{} trained on {} rows of {}",
                    model.family, info.train_rows, info.data_path
                ),
                metrics: metrics.to_json(),
                lineage: Lineage {
                    training_rows: Some(info.train_rows as u64),
                    training_data_sha256: Some(info.data_sha256.clone()),
                    code_version: info.code_version.clone(),
                    parent_version: parent,
                    extra: serde_json::Map::from_iter([
                        ("seed".to_owned(), json!(model.training.seed)),
                        ("split_seed".to_owned(), json!(info.split_seed)),
                        ("holdout_rows".to_owned(), json!(info.holdout_rows)),
                    ]),
                },
                run_id: Some(run_id),
                profile: info.profile.clone(),
            })
            .await
            .map_err(Error::from)
    }
    .await;
    let status = if registered.is_ok() {
        RunStatus::Finished
    } else {
        RunStatus::Failed
    };
    registry.end_run(run_id, status).await?;
    registered
}

/// Loads a classifier by reference (registry versions are checksum-verified) off the async threads.
pub async fn load(
    registry: &Registry,
    reference: &ModelRef,
) -> Result<(LoadedModel, Option<ModelVersion>), Error> {
    crate::load_artifact(registry, reference, churn_automl::FLAVOR, |bytes| {
        Ok(LoadedModel::from_bytes(bytes)?)
    })
    .await
}

/// What loading the champion for a comparison gave.
enum ChampionState {
    /// Loaded: compare on the held-out rows.
    Loaded(Box<LoadedModel>),
    /// Proven unusable (artifact missing, checksum mismatch, unreadable or of another flavor): it could
    /// not be served either, so the candidate may replace it without a comparison.
    Unusable(String),
}

/// Loads the champion, telling a proven absence from a failure to find out: only the former may let a
/// candidate through without a comparison; any other error is returned and decides nothing.
async fn load_champion(
    registry: &Registry,
    version: VersionNumber,
) -> Result<ChampionState, Error> {
    let reference = ModelRef::Registry {
        name: MODEL_NAME.to_owned(),
        selector: churn_registry::Selector::Version(version),
    };
    match load(registry, &reference).await {
        Ok((model, _)) => Ok(ChampionState::Loaded(Box::new(model))),
        Err(Error::Registry(churn_registry::Error::ObjectStore(
            object_store::Error::NotFound { .. },
        ))) => Ok(ChampionState::Unusable(format!(
            "the champion's (version {version}) artifact is missing from the object store"
        ))),
        Err(Error::Registry(churn_registry::Error::ChecksumMismatch { .. })) => {
            Ok(ChampionState::Unusable(format!(
                "the champion's (version {version}) artifact fails its checksum"
            )))
        }
        Err(Error::Automl(e)) => Ok(ChampionState::Unusable(format!(
            "the champion's (version {version}) artifact cannot be read: {e}"
        ))),
        Err(Error::Flavor { found, .. }) => Ok(ChampionState::Unusable(format!(
            "the champion's (version {version}) artifact has flavor {found:?}, not a churn classifier"
        ))),
        Err(other) => Err(other),
    }
}

/// How many times a decision is judged again when the champion moves while it is being made.
const DECISION_ATTEMPTS: usize = 3;

/// Champion/challenger: the candidate becomes champion only if its ROC AUC on `holdout` (given as
/// `candidate_metrics`, computed once by the caller) beats the current champion's on the same rows by
/// more than `margin`, or there is no champion, or the champion is proven unusable (its artifact
/// missing or corrupt: recorded as such). Otherwise it becomes the challenger; so does a winner when
/// `hold_for_live` asks for a live win too (see [`decide_on_live`]). Any other failure to load
/// the champion (a timeout, an unreachable store) fails the decision and leaves the aliases alone.
///
/// The decision, the alias move and the NOTIFY are one compare-and-set transaction: if the champion
/// moved while the candidate was being judged, the decision is judged again against the new champion
/// (a few times), so concurrent promotions end with one consistent champion. Every decision is stored
/// with its evidence.
pub async fn promote_if_better(
    registry: &Registry,
    candidate: &ModelVersion,
    candidate_metrics: &Metrics,
    holdout: &[Customer],
    margin: f64,
    hold_for_live: bool,
) -> Result<Decision, Error> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut decision = judge(registry, candidate, candidate_metrics, holdout, margin).await?;
        if hold_for_live && decision.promoted && decision.champion_score.is_some() {
            // It won on the held-out rows; it must also win on live traffic before it serves.
            decision.promoted = false;
            decision.reason = format!(
                "{}; held as challenger until it also wins on live labelled rows",
                decision.reason
            );
            decision.evidence["held_for_live"] = json!(true);
        }
        if decision.champion_version == Some(candidate.version) {
            // Nothing to decide: the candidate already is the champion.
            return Ok(decision);
        }
        match registry
            .record_decision(
                &decision,
                &Alias::CHAMPION,
                Some(Alias::CHALLENGER.as_str()),
            )
            .await
        {
            Ok(()) => return Ok(decision),
            Err(churn_registry::Error::AliasMoved { .. }) if attempt < DECISION_ATTEMPTS => {
                tracing::info!(
                    candidate = %candidate.version,
                    attempt,
                    "the champion moved during the decision; judging again"
                );
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// The evidence of a live comparison: both versions' metrics on the same labelled customers.
#[derive(Debug, Clone)]
pub struct LiveComparison {
    pub champion_version: VersionNumber,
    pub challenger_version: VersionNumber,
    pub champion: Metrics,
    pub challenger: Metrics,
    /// The window the customers were scored in, e.g. `1d`.
    pub window: String,
}

/// Champion/challenger on live traffic: the challenger becomes champion when its ROC AUC on the same
/// live labelled customers beats the champion's by more than `margin`. The decision is stored either
/// way (as a compare-and-set against the champion the comparison used); the challenger keeps its alias
/// when it does not win. Returns `None` when the champion moved since the comparison.
pub async fn decide_on_live(
    registry: &Registry,
    live: &LiveComparison,
    margin: f64,
) -> Result<Option<Decision>, Error> {
    let (cand, champ) = (
        live.challenger.roc_auc.unwrap_or(0.0),
        live.champion.roc_auc.unwrap_or(0.0),
    );
    let promoted = cand > champ + margin;
    let verdict = if promoted { "beats" } else { "does not beat" };
    let decision = Decision {
        model_name: MODEL_NAME.to_owned(),
        candidate_version: live.challenger_version,
        champion_version: Some(live.champion_version),
        metric: PROMOTION_METRIC.to_owned(),
        candidate_score: live.challenger.roc_auc,
        champion_score: live.champion.roc_auc,
        margin,
        promoted,
        reason: format!(
            "live ({} window, {} labelled customers scored by both): challenger ROC AUC {cand:.4} {verdict} the champion's {champ:.4} by more than {margin}",
            live.window, live.champion.n
        ),
        evidence: json!({
            "live": true,
            "window": live.window,
            "candidate": live.challenger,
            "champion": live.champion,
        }),
    };
    match registry
        .record_decision(
            &decision,
            &Alias::CHAMPION,
            Some(Alias::CHALLENGER.as_str()),
        )
        .await
    {
        Ok(()) => Ok(Some(decision)),
        Err(churn_registry::Error::AliasMoved { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Compares the candidate with the current champion; writes nothing.
async fn judge(
    registry: &Registry,
    candidate: &ModelVersion,
    candidate_metrics: &Metrics,
    holdout: &[Customer],
    margin: f64,
) -> Result<Decision, Error> {
    let champion = registry.by_alias(MODEL_NAME, &Alias::CHAMPION).await?;
    let holdout_positives = holdout
        .iter()
        .filter(|c| c.churn_label.is_some_and(|l| l.is_yes()))
        .count();
    let mut evidence = json!({
        "holdout_rows": holdout.len(),
        "holdout_positives": holdout_positives,
        "candidate": candidate_metrics,
    });
    let (champion_version, champion_score, promoted, reason) = match &champion {
        None => (None, None, true, "there was no champion".to_owned()),
        Some(c) if c.version == candidate.version => (
            Some(c.version),
            candidate_metrics.roc_auc,
            false,
            "the candidate already is the champion".to_owned(),
        ),
        Some(c) => match load_champion(registry, c.version).await? {
            ChampionState::Loaded(champion_model) => {
                let rows = holdout.to_vec();
                let champion_metrics =
                    tokio::task::spawn_blocking(move || champion_model.evaluate(&rows))
                        .await
                        .map_err(|e| Error::Task(e.to_string()))??;
                evidence["champion"] = json!(champion_metrics);
                let (cand, champ) = (
                    candidate_metrics.roc_auc.unwrap_or(0.0),
                    champion_metrics.roc_auc.unwrap_or(0.0),
                );
                let promoted = cand > champ + margin;
                let reason = if promoted {
                    format!(
                        "candidate ROC AUC {cand:.4} beats the champion's {champ:.4} by more than {margin}"
                    )
                } else {
                    format!(
                        "candidate ROC AUC {cand:.4} does not beat the champion's {champ:.4} by more than {margin}"
                    )
                };
                (Some(c.version), champion_metrics.roc_auc, promoted, reason)
            }
            ChampionState::Unusable(why) => {
                evidence["champion_unusable"] = json!(why);
                (Some(c.version), None, true, why)
            }
        },
    };
    Ok(Decision {
        model_name: MODEL_NAME.to_owned(),
        candidate_version: candidate.version,
        champion_version,
        metric: PROMOTION_METRIC.to_owned(),
        candidate_score: candidate_metrics.roc_auc,
        champion_score,
        margin,
        promoted,
        reason,
        evidence,
    })
}

/// When the registry has no champion, trains one on the seed data at `seed_path` (downloading the pinned
/// file if it is missing) with a `budget`-second search and registers it, so a fresh platform serves
/// predictions with no manual step. Replicas starting together take turns on a lock: one trains, the
/// others find its champion. Returns what was trained, or `None` when there was a champion already.
pub async fn bootstrap_champion(
    registry: &Registry,
    seed_path: &std::path::Path,
    budget: std::time::Duration,
    code_version: &str,
) -> Result<Option<crate::TrainOutcome>, Error> {
    bootstrap_champion_with_progress(registry, seed_path, budget, code_version, |_| {}).await
}

/// [`bootstrap_champion`], reporting the training's progress to `progress` (a CLI shows it; a service
/// has its log).
pub async fn bootstrap_champion_with_progress(
    registry: &Registry,
    seed_path: &std::path::Path,
    budget: std::time::Duration,
    code_version: &str,
    progress: impl FnMut(crate::TrainEvent) + Send + 'static,
) -> Result<Option<crate::TrainOutcome>, Error> {
    if registry
        .by_alias(MODEL_NAME, &Alias::CHAMPION)
        .await?
        .is_some()
    {
        return Ok(None);
    }
    // A lock of its own: promotion takes the model's lock, which this one must not hold.
    let lock = registry
        .lock_model(&format!("{MODEL_NAME}.bootstrap"))
        .await?;
    if registry
        .by_alias(MODEL_NAME, &Alias::CHAMPION)
        .await?
        .is_some()
    {
        lock.release().await?;
        return Ok(None);
    }
    tracing::info!(path = %seed_path.display(), budget_secs = budget.as_secs(), "no champion yet: training a first one on the seed data");
    churn_store::seed::ensure_seed(seed_path).await?;
    let request = crate::TrainRequest {
        data: crate::TrainingData::File(seed_path.to_path_buf()),
        holdout: crate::Holdout::Split {
            fraction: 0.2,
            seed: 0,
        },
        options: churn_automl::TrainOptions {
            time_budget: budget,
            ..churn_automl::TrainOptions::default()
        },
        promotion_margin: 0.0,
        hold_for_live: false,
        code_version: code_version.to_owned(),
    };
    let outcome = crate::train_and_register(registry, request, progress).await;
    lock.release().await?;
    let outcome = outcome?;
    if let Some((version, decision)) = &outcome.registered {
        tracing::info!(
            version = %version.version,
            promoted = decision.promoted,
            "trained and registered a first champion"
        );
    }
    Ok(Some(outcome))
}
