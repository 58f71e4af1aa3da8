//! The churn classifier in the registry: register a trained model with its run, promote it over the
//! champion only on evidence from held-out data, and load it by reference.

use churn_automl::{ChurnModel, LoadedModel};
use churn_core::Customer;
use churn_core::metrics::Metrics;
use churn_registry::{
    Decision, Lineage, ModelRef, ModelVersion, NewRun, NewVersion, Registry, RunStatus,
};
use serde_json::{Value, json};

use crate::Error;

/// The classifier's registered model name.
pub const MODEL_NAME: &str = "churn-classifier";
/// The alias the classifier service serves.
pub const CHAMPION: &str = "champion";
/// The alias a candidate gets when it does not beat the champion.
pub const CHALLENGER: &str = "challenger";
/// The metric promotions compare.
pub const PROMOTION_METRIC: &str = "roc_auc";

/// Where a trained model came from.
#[derive(Debug, Clone)]
pub struct TrainingInfo {
    pub data_path: String,
    pub data_sha256: String,
    pub train_rows: usize,
    pub holdout_rows: usize,
    pub split_seed: u64,
    pub code_version: String,
}

fn metrics_json(prefix: &str, m: &Metrics) -> Vec<(String, f64)> {
    let mut out = vec![
        (format!("{prefix}accuracy"), m.accuracy),
        (format!("{prefix}precision"), m.precision),
        (format!("{prefix}recall"), m.recall),
        (format!("{prefix}f1"), m.f1),
        (format!("{prefix}log_loss"), m.log_loss),
        (format!("{prefix}brier"), m.brier),
    ];
    if let Some(auc) = m.roc_auc {
        out.push((format!("{prefix}roc_auc"), auc));
    }
    if let Some(pr) = m.pr_auc {
        out.push((format!("{prefix}pr_auc"), pr));
    }
    out
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
        let mut all = metrics_json("cv_", &model.training.cv_metrics);
        if let Some(m) = holdout {
            all.extend(metrics_json("test_", m));
        }
        let pairs: Vec<(&str, f64)> = all.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        registry.log_metrics(run_id, 0, &pairs).await?;
        let mut metrics: serde_json::Map<String, Value> =
            all.into_iter().map(|(k, v)| (k, json!(v))).collect();
        metrics.insert("threshold".to_owned(), json!(model.threshold));
        metrics.insert("feature_importance".to_owned(), json!(model.importance));
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
                metrics: Value::Object(metrics),
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

/// Champion/challenger: the candidate becomes champion only if its ROC AUC on `holdout` beats the
/// current champion's on the same rows by more than `margin` (or there is no champion). Otherwise it
/// becomes the challenger. Every decision is stored with its evidence. Decisions about the model are
/// serialized on its lock, so concurrent promotions leave exactly one champion: the best one.
pub async fn promote_if_better(
    registry: &Registry,
    candidate: &ModelVersion,
    candidate_model: &LoadedModel,
    holdout: &[Customer],
    margin: f64,
) -> Result<Decision, Error> {
    let lock = registry.lock_model(MODEL_NAME).await?;
    let candidate_metrics = candidate_model.evaluate(holdout)?;
    let champion = registry.by_alias(MODEL_NAME, CHAMPION).await?;
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
        Some(c) => {
            let reference = ModelRef::Registry {
                name: MODEL_NAME.to_owned(),
                selector: churn_registry::Selector::Version(c.version),
            };
            match load(registry, &reference).await {
                Ok((champion_model, _)) => {
                    let champion_metrics = champion_model.evaluate(holdout)?;
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
                // A champion that cannot be loaded (missing or tampered artifact) cannot be served either.
                Err(e) => (
                    Some(c.version),
                    None,
                    true,
                    format!("the champion's artifact could not be loaded ({e})"),
                ),
            }
        }
    };
    let decision = Decision {
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
    };
    if champion
        .as_ref()
        .is_none_or(|c| c.version != candidate.version)
    {
        registry.record_decision(&decision, CHAMPION).await?;
        if !promoted {
            registry
                .set_alias(MODEL_NAME, CHALLENGER, candidate.version)
                .await?;
        }
    }
    lock.release().await?;
    Ok(decision)
}
