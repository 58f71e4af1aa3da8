//! The models a fresh platform needs before its services start: a synthesizer fitted on the seed data and a
//! first champion, each only when the registry has none.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use churn_models::{classifier, synthesizer};
use churn_registry::Registry;

use super::note;
use crate::progress::Progress;

/// Fits and registers a synthesizer, and trains and registers a first champion, when there are none.
pub(super) async fn ensure_models(
    registry: &Registry,
    seed: &Path,
    budget: Duration,
) -> anyhow::Result<()> {
    let code_version = format!("churnctl {}", env!("CARGO_PKG_VERSION"));
    if registry
        .by_alias(synthesizer::MODEL_NAME, &churn_registry::Alias::CHAMPION)
        .await?
        .is_none()
    {
        let mut bar = Progress::steps("synthesizer");
        bar.message("fitting the Gaussian copula on the seed data".to_owned());
        let path = seed.to_path_buf();
        let (fitted, mut info) = tokio::task::spawn_blocking(move || {
            synthesizer::fit_file(&path, churn_synth::FitOptions::default())
        })
        .await?
        .with_context(|| format!("fitting the synthesizer on {}", seed.display()))?;
        info.code_version.clone_from(&code_version);
        bar.message("registering".to_owned());
        let (version, _) = synthesizer::register(registry, &fitted, &info).await?;
        bar.println(&format!(
            "registered {} version {} (fitted on {} rows)",
            synthesizer::MODEL_NAME,
            version.version,
            info.train_rows
        ));
        bar.finish();
    }
    if registry
        .by_alias(classifier::MODEL_NAME, &churn_registry::Alias::CHAMPION)
        .await?
        .is_none()
    {
        note(&format!(
            "no champion yet: training one on the seed data ({} s search; --train-budget-secs)",
            budget.as_secs()
        ));
        let bar = Arc::new(Mutex::new(Progress::steps("training")));
        let shown = bar.clone();
        // The scheduler's own bootstrap (one lock, one recipe); here with the training shown as it runs.
        let outcome = classifier::bootstrap_champion_with_progress(
            registry,
            seed,
            budget,
            &code_version,
            move |event| {
                if let Ok(mut bar) = shown.lock() {
                    crate::util::report_progress(&mut bar, event);
                }
            },
        )
        .await
        .context("training the first champion")?;
        if let Ok(bar) = Arc::try_unwrap(bar).map(Mutex::into_inner) {
            bar.map(Progress::finish).ok();
        }
        if let Some(outcome) = &outcome
            && let Some((version, decision)) = &outcome.registered
        {
            note(&format!(
                "registered {} version {} ({}, test roc_auc {}): {}",
                classifier::MODEL_NAME,
                version.version,
                outcome.model.family,
                outcome
                    .test_metrics
                    .as_ref()
                    .and_then(|m| m.roc_auc)
                    .map_or_else(|| "n/a".to_owned(), |auc| format!("{auc:.4}")),
                decision.reason
            ));
        }
    }
    Ok(())
}
