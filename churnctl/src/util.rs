//! Helpers more than one command uses: loading a classifier, showing a training run's progress, and the
//! process's peak memory.

use anyhow::Context;
use churn_automl::LoadedModel;
use churn_models::{TrainEvent, classifier};
use churn_registry::ModelRef;

use crate::progress::Progress;
use crate::registry_args::RegistryArgs;

/// Shows a training run's progress: a spinner with the best trial so far, one line per trial above it.
pub fn report_progress(bar: &mut Progress, event: TrainEvent) {
    match event {
        TrainEvent::Loaded {
            train_rows,
            holdout_rows,
            ..
        } => bar.println(&format!(
            "training on {train_rows} rows, {holdout_rows} held out"
        )),
        TrainEvent::Trial { trial, leader } => {
            bar.println(&format!(
                "trial {:>3}  {:<20} cv roc_auc {:.4}  {:>6.2} s",
                trial.number, trial.family, trial.cv_roc_auc, trial.seconds
            ));
            bar.message(format!(
                "{} trials; best {} {:.4}",
                trial.number + 1,
                leader.family,
                leader.cv_roc_auc
            ));
        }
        TrainEvent::Refit { family, cv_roc_auc } => bar.message(format!(
            "refitting {family} (cv roc_auc {cv_roc_auc:.4}) on all training rows"
        )),
        TrainEvent::Evaluated { .. } => bar.message("evaluated on the held-out rows".to_owned()),
        TrainEvent::Registered { version } => bar.message(format!("registered version {version}")),
        TrainEvent::Decided { .. } => {}
    }
}

/// Loads a classifier from a file, the directory `churnctl train --out DIR` wrote, or a registry
/// reference.
pub async fn load_classifier(
    reference: &str,
    registry: &RegistryArgs,
) -> anyhow::Result<LoadedModel> {
    let reference: ModelRef = reference.parse()?;
    match &reference {
        ModelRef::Path(path) => {
            let path = if path.is_dir() {
                path.join("model.json")
            } else {
                path.clone()
            };
            let bytes =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            Ok(LoadedModel::from_bytes(&bytes)?)
        }
        ModelRef::Registry { .. } => Ok(classifier::load(
            &registry.open_read_only().await?,
            &reference,
        )
        .await?
        .0),
    }
}

/// Peak resident memory of this process in MiB (Linux), from /proc/self/status.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
