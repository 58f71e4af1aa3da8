//! The model being served and how it is replaced: the registry's champion held behind an atomic
//! pointer, reloaded when the registry's alias watcher sees it move, never dropped on a failed reload.

use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use chrono::{DateTime, Utc};
use churn_automl::LoadedModel;
use churn_models::classifier;
use churn_registry::{AliasWatcher, ModelRef, Registry, Selector};

/// A loaded model and where it came from.
#[derive(Debug)]
pub struct Served {
    pub model: LoadedModel,
    pub name: String,
    /// 0 for a model loaded from a file.
    pub version: i32,
    pub sha256: Option<String>,
    pub loaded_at: DateTime<Utc>,
}

/// Why a refresh failed; the served model stays.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error("the registry could not be read: {0}")]
    Registry(#[source] churn_registry::Error),
    #[error("version {version} could not be loaded: {source}")]
    Load {
        /// 0 for a model file.
        version: i32,
        #[source]
        source: churn_models::Error,
    },
}

/// What a refresh did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refresh {
    Unchanged,
    Loaded { version: i32 },
    NoChampion,
}

/// What a holder's model is for: it labels the holder's metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Answers requests.
    Champion,
    /// Scored beside the champion on request, never acted on.
    Shadow,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Champion => "champion",
            Role::Shadow => "shadow",
        }
    }
}

/// Holds the served model; requests take a snapshot (`current()`), so a swap never disturbs them.
#[derive(Debug)]
pub struct ModelHolder {
    current: ArcSwapOption<Served>,
    registry: Registry,
    reference: ModelRef,
    role: Role,
    /// The last refresh's error, reported by `/ready` until a refresh succeeds.
    last_error: Mutex<Option<Arc<RefreshError>>>,
    /// Refreshes run one at a time, each resolving the reference afresh, so a slow refresh of an older
    /// version can never be swapped in after a newer one.
    refreshing: tokio::sync::Mutex<()>,
}

impl ModelHolder {
    pub fn new(registry: Registry, reference: ModelRef, role: Role) -> Self {
        Self {
            current: ArcSwapOption::empty(),
            registry,
            reference,
            role,
            last_error: Mutex::new(None),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    pub fn current(&self) -> Option<Arc<Served>> {
        self.current.load_full()
    }

    pub fn last_error(&self) -> Option<Arc<RefreshError>> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }

    fn set_error(&self, error: Option<Arc<RefreshError>>) {
        if let Ok(mut slot) = self.last_error.lock() {
            *slot = error;
        }
    }

    /// Checks which version the reference names now and loads it if it is not the one served. On any
    /// failure the served model stays, the error is kept for `/ready` and counted.
    pub async fn refresh(&self) -> Result<Refresh, Arc<RefreshError>> {
        let _one_at_a_time = self.refreshing.lock().await;
        match self.try_refresh().await {
            Ok(outcome) => {
                match outcome {
                    Refresh::Loaded { version } => {
                        metrics::counter!("model_reloads_total", "role" => self.role.as_str())
                            .increment(1);
                        tracing::info!(
                            version,
                            role = self.role.as_str(),
                            "now serving model version"
                        );
                    }
                    // The alias went away (e.g. the challenger was promoted): stop scoring with it.
                    Refresh::NoChampion if self.role == Role::Shadow => self.clear(),
                    _ => {}
                }
                self.set_error(None);
                Ok(outcome)
            }
            Err(e) => {
                metrics::counter!("model_reload_failures_total", "role" => self.role.as_str())
                    .increment(1);
                tracing::warn!(error = %e, "model refresh failed; keeping the served model");
                let e = Arc::new(e);
                self.set_error(Some(e.clone()));
                Err(e)
            }
        }
    }

    async fn try_refresh(&self) -> Result<Refresh, RefreshError> {
        let (name, selector) = match &self.reference {
            ModelRef::Path(path) => {
                if self.current().is_some() {
                    return Ok(Refresh::Unchanged);
                }
                let (model, _) = classifier::load(&self.registry, &self.reference)
                    .await
                    .map_err(|source| RefreshError::Load { version: 0, source })?;
                self.swap(Served {
                    model,
                    name: path.display().to_string(),
                    version: 0,
                    sha256: None,
                    loaded_at: Utc::now(),
                });
                return Ok(Refresh::Loaded { version: 0 });
            }
            ModelRef::Registry { name, selector } => (name, selector),
        };
        let target = match self.registry.resolve(name, selector).await {
            Ok(v) => v,
            Err(
                churn_registry::Error::AliasNotFound { .. }
                | churn_registry::Error::VersionNotFound { .. },
            ) => {
                return Ok(Refresh::NoChampion);
            }
            Err(e) => return Err(RefreshError::Registry(e)),
        };
        if self
            .current()
            .is_some_and(|s| s.version == target.version.get())
        {
            return Ok(Refresh::Unchanged);
        }
        let exact = ModelRef::Registry {
            name: name.clone(),
            selector: Selector::Version(target.version),
        };
        let (model, _) = classifier::load(&self.registry, &exact)
            .await
            .map_err(|source| RefreshError::Load {
                version: target.version.get(),
                source,
            })?;
        self.swap(Served {
            model,
            name: name.clone(),
            version: target.version.get(),
            sha256: Some(target.artifact_sha256.clone()),
            loaded_at: Utc::now(),
        });
        Ok(Refresh::Loaded {
            version: target.version.get(),
        })
    }

    fn swap(&self, served: Served) {
        self.clear_gauge();
        metrics::gauge!("model_version_info", "model" => served.name.clone(),
            "version" => served.version.to_string(), "role" => self.role.as_str())
        .set(1.0);
        self.current.store(Some(Arc::new(served)));
    }

    fn clear_gauge(&self) {
        if let Some(old) = self.current() {
            metrics::gauge!("model_version_info", "model" => old.name.clone(),
                "version" => old.version.to_string(), "role" => self.role.as_str())
            .set(0.0);
        }
    }

    /// Drops the held model (a shadow whose alias was removed).
    fn clear(&self) {
        if self.current().is_some() {
            self.clear_gauge();
            tracing::info!(
                role = self.role.as_str(),
                "the model's alias is gone; no longer held"
            );
            self.current.store(None);
        }
    }

    /// What this holder is for.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Keeps the model current until the process ends: the registry's [`AliasWatcher`] refreshes it as
    /// soon as a NOTIFY announces a move of the watched alias, and every `poll` in case notifications
    /// are lost. A model file is never watched (`None`).
    pub fn watch(
        self: Arc<Self>,
        database_url: String,
        poll: Duration,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let watcher = AliasWatcher::for_reference(database_url, &self.reference, poll)?;
        Some(watcher.spawn(move || {
            let holder = self.clone();
            async move {
                // A failed refresh is logged, counted and kept for `/ready` by `refresh` itself.
                let _ = holder.refresh().await;
            }
        }))
    }
}
