//! The synthesizer in the registry: register a fitted copula, load the current one, or bootstrap the
//! first version from the seed data.

use std::path::Path;

use churn_core::VersionMetrics;
use churn_registry::{Alias, Lineage, ModelRef, ModelVersion, NewVersion, Registry, Selector};
use churn_synth::{FitOptions, Sampler, SynthModel};

use crate::{Error, TrainingInfo};

/// The synthesizer's registered model name.
pub const MODEL_NAME: &str = "synthesizer";
/// What reads a synthesizer artifact.
pub const FLAVOR: &str = "churn-synth/gaussian-copula";

/// A fitted synthesizer with what its version records of the fit, beside the data lineage.
#[derive(Debug, Clone)]
pub struct Fitted {
    pub model: SynthModel,
    /// The seed of the fit's rank tie-breaking.
    pub seed: u64,
    pub fit_seconds: f64,
}

/// Registers a fitted model as a new version; it becomes the current one when there is none yet.
/// Returns the version and whether it became current.
pub async fn register(
    registry: &Registry,
    fitted: &Fitted,
    info: &TrainingInfo,
) -> Result<(ModelVersion, bool), Error> {
    let lock = registry.lock_model(MODEL_NAME).await?;
    let registered = register_locked(registry, fitted, info).await?;
    lock.release().await?;
    Ok(registered)
}

/// [`register`] for a caller that already holds the model's lock.
async fn register_locked(
    registry: &Registry,
    fitted: &Fitted,
    info: &TrainingInfo,
) -> Result<(ModelVersion, bool), Error> {
    let version = registry
        .register(NewVersion {
            model_name: MODEL_NAME.to_owned(),
            flavor: FLAVOR.to_owned(),
            artifact: fitted.model.to_bytes()?,
            description: format!("Gaussian copula fitted on {}", info.data_path),
            metrics: VersionMetrics::synthesizer(fitted.fit_seconds).to_json(),
            lineage: Lineage {
                training_rows: Some(info.train_rows as u64),
                training_data_sha256: Some(info.data_sha256.clone()),
                code_version: info.code_version.clone(),
                parent_version: None,
                extra: serde_json::Map::from_iter([("seed".to_owned(), fitted.seed.into())]),
            },
            run_id: None,
            profile: None,
        })
        .await?;
    let current = registry
        .set_alias_if_absent(MODEL_NAME, &Alias::CHAMPION, version.version)
        .await?;
    Ok((version, current))
}

/// Reads and checks a synthesizer artifact from the registry (checksum verified) or a file.
pub async fn load(
    registry: &Registry,
    reference: &ModelRef,
) -> Result<(Sampler, Option<ModelVersion>), Error> {
    crate::load_artifact(registry, reference, FLAVOR, |bytes| {
        Ok(Sampler::new(SynthModel::from_bytes(bytes)?)?)
    })
    .await
}

/// Loads the current synthesizer; when the registry has none, fits one on the seed data at `seed_path`
/// (downloading the pinned file if it is missing) and registers it. Replicas starting together take
/// turns on the model's advisory lock, so only one of them fits.
pub async fn load_or_bootstrap(
    registry: &Registry,
    seed_path: &Path,
    code_version: &str,
) -> Result<(Sampler, ModelVersion), Error> {
    if registry
        .by_alias(MODEL_NAME, &Alias::CHAMPION)
        .await?
        .is_none()
    {
        let lock = registry.lock_model(MODEL_NAME).await?;
        // Another replica may have bootstrapped while this one waited for the lock.
        if registry
            .by_alias(MODEL_NAME, &Alias::CHAMPION)
            .await?
            .is_none()
        {
            match registry.latest(MODEL_NAME).await? {
                Some(latest) => {
                    registry
                        .set_alias_if_absent(MODEL_NAME, &Alias::CHAMPION, latest.version)
                        .await?;
                }
                None => {
                    tracing::info!(path = %seed_path.display(), "no synthesizer registered; fitting one on the seed data");
                    churn_store::seed::ensure_seed(seed_path).await?;
                    let path = seed_path.to_path_buf();
                    let (fitted, info) =
                        tokio::task::spawn_blocking(move || fit_file(&path, FitOptions::default()))
                            .await
                            .map_err(|e| Error::Task(e.to_string()))??;
                    let info = TrainingInfo {
                        code_version: code_version.to_owned(),
                        ..info
                    };
                    let (version, _) = register_locked(registry, &fitted, &info).await?;
                    tracing::info!(
                        version = %version.version,
                        "registered the first synthesizer"
                    );
                }
            }
        }
        lock.release().await?;
    }
    let current = ModelRef::Registry {
        name: MODEL_NAME.to_owned(),
        selector: Selector::Alias(Alias::CHAMPION.to_string()),
    };
    match load(registry, &current).await? {
        (sampler, Some(version)) => Ok((sampler, version)),
        // A registry reference always resolves to a version.
        (_, None) => Err(Error::Registry(churn_registry::Error::AliasNotFound {
            name: MODEL_NAME.to_owned(),
            alias: Alias::CHAMPION.to_string(),
        })),
    }
}

/// Reads a CSV (hashing it on the way) and fits a model on it, timing the fit. The lineage's
/// `code_version` is left for the caller to fill in.
pub fn fit_file(path: &Path, options: FitOptions) -> Result<(Fitted, TrainingInfo), Error> {
    let (customers, data_sha256) = crate::data::read_customers_hashed(path)?;
    let started = std::time::Instant::now();
    let model = SynthModel::fit(&customers, options)?;
    let fit_seconds = started.elapsed().as_secs_f64();
    Ok((
        Fitted {
            model,
            seed: options.seed,
            fit_seconds,
        },
        TrainingInfo {
            data_path: path.display().to_string(),
            data_sha256,
            train_rows: customers.len(),
            ..TrainingInfo::default()
        },
    ))
}
