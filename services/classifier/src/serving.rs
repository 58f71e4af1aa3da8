//! The model being served and how it is replaced: the registry's champion held behind an atomic
//! pointer, reloaded on `NOTIFY registry_events` with a polling fallback, never dropped on a failed reload.

use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use chrono::{DateTime, Utc};
use churn_automl::LoadedModel;
use churn_models::classifier;
use churn_registry::{ALIAS_CHANNEL, AliasEvent, ModelRef, Registry, Selector};
use sqlx::postgres::PgListener;

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
        if self.current().is_some_and(|s| s.version == target.version) {
            return Ok(Refresh::Unchanged);
        }
        let exact = ModelRef::Registry {
            name: name.clone(),
            selector: Selector::Version(target.version),
        };
        let (model, _) = classifier::load(&self.registry, &exact)
            .await
            .map_err(|source| RefreshError::Load {
                version: target.version,
                source,
            })?;
        self.swap(Served {
            model,
            name: name.clone(),
            version: target.version,
            sha256: Some(target.artifact_sha256.clone()),
            loaded_at: Utc::now(),
        });
        Ok(Refresh::Loaded {
            version: target.version,
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

    /// Keeps the model current until the process ends: reloads as soon as a NOTIFY announces a move of
    /// the watched alias, and polls every `poll` in case notifications are lost (dropped connection,
    /// a database that does not deliver them). LISTEN uses a connection of its own, outside the pool
    /// that serves requests, and after an outage it reconnects with a short back-off.
    pub fn watch(
        self: Arc<Self>,
        database_url: String,
        poll: Duration,
    ) -> tokio::task::JoinHandle<()> {
        const FIRST_RETRY: Duration = Duration::from_millis(250);
        const LAST_RETRY: Duration = Duration::from_secs(5);
        tokio::spawn(async move {
            if matches!(self.reference, ModelRef::Path(_)) {
                return;
            }
            let mut retry = FIRST_RETRY;
            loop {
                let mut listener = match PgListener::connect(&database_url).await {
                    Ok(mut l) => match l.listen(ALIAS_CHANNEL).await {
                        Ok(()) => Some(l),
                        Err(e) => {
                            tracing::warn!(error = %e, "LISTEN failed; polling until it works");
                            None
                        }
                    },
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot open a LISTEN connection; polling until it works");
                        None
                    }
                };
                // A refresh right after (re)connecting catches moves made while disconnected.
                let _ = self.refresh().await;
                let Some(listener) = listener.as_mut() else {
                    // No LISTEN: poll, and try LISTEN again with a growing back-off.
                    tokio::time::sleep(retry.min(poll)).await;
                    retry = (retry * 2).min(LAST_RETRY);
                    continue;
                };
                retry = FIRST_RETRY;
                loop {
                    let notified = tokio::select! {
                        note = listener.recv() => Some(note),
                        () = tokio::time::sleep(poll) => None,
                    };
                    match notified {
                        Some(Ok(note)) => {
                            let relevant = serde_json::from_str::<AliasEvent>(note.payload())
                                .map_or(true, |e| self.watches(&e));
                            if relevant {
                                let _ = self.refresh().await;
                            }
                        }
                        // The LISTEN connection broke: reconnect after a short pause.
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, "the LISTEN connection failed; reconnecting");
                            tokio::time::sleep(retry).await;
                            break;
                        }
                        None => {
                            let _ = self.refresh().await;
                        }
                    }
                }
            }
        })
    }

    fn watches(&self, event: &AliasEvent) -> bool {
        match &self.reference {
            ModelRef::Registry {
                name,
                selector: Selector::Alias(alias),
            } => &event.model == name && &event.alias == alias,
            _ => false,
        }
    }
}
