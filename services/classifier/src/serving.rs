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
use sqlx::PgPool;
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

/// What a refresh did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refresh {
    Unchanged,
    Loaded { version: i32 },
    NoChampion,
}

/// Holds the served model; requests take a snapshot (`current()`), so a swap never disturbs them.
#[derive(Debug)]
pub struct ModelHolder {
    current: ArcSwapOption<Served>,
    registry: Registry,
    reference: ModelRef,
    /// The last refresh's error, shown by `/ready` until a refresh succeeds.
    last_error: Mutex<Option<String>>,
}

impl ModelHolder {
    pub fn new(registry: Registry, reference: ModelRef) -> Self {
        Self {
            current: ArcSwapOption::empty(),
            registry,
            reference,
            last_error: Mutex::new(None),
        }
    }

    pub fn current(&self) -> Option<Arc<Served>> {
        self.current.load_full()
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }

    fn set_error(&self, error: Option<String>) {
        if let Ok(mut slot) = self.last_error.lock() {
            *slot = error;
        }
    }

    /// Checks which version the reference names now and loads it if it is not the one served. On any
    /// failure the served model stays, the error is kept for `/ready` and counted.
    pub async fn refresh(&self) -> Result<Refresh, String> {
        let result = self.try_refresh().await;
        match &result {
            Ok(Refresh::Loaded { version }) => {
                metrics::counter!("model_reloads_total").increment(1);
                tracing::info!(version, "now serving model version");
                self.set_error(None);
            }
            Ok(_) => self.set_error(None),
            Err(e) => {
                metrics::counter!("model_reload_failures_total").increment(1);
                tracing::warn!(error = %e, "model refresh failed; keeping the served model");
                self.set_error(Some(e.clone()));
            }
        }
        result
    }

    async fn try_refresh(&self) -> Result<Refresh, String> {
        let (name, selector) = match &self.reference {
            ModelRef::Path(path) => {
                if self.current().is_some() {
                    return Ok(Refresh::Unchanged);
                }
                let (model, _) = classifier::load(&self.registry, &self.reference)
                    .await
                    .map_err(|e| e.to_string())?;
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
            Err(e) => return Err(format!("the registry could not be read: {e}")),
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
            .map_err(|e| format!("version {} could not be loaded: {e}", target.version))?;
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
        if let Some(old) = self.current() {
            metrics::gauge!("model_version_info", "model" => old.name.clone(), "version" => old.version.to_string())
                .set(0.0);
        }
        metrics::gauge!("model_version_info", "model" => served.name.clone(), "version" => served.version.to_string())
            .set(1.0);
        self.current.store(Some(Arc::new(served)));
    }

    /// Keeps the model current until the process ends: reloads as soon as a NOTIFY announces a move of
    /// the watched alias, and polls every `poll` in case notifications are lost (dropped connection,
    /// a database that does not deliver them).
    pub fn watch(self: Arc<Self>, pool: PgPool, poll: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            if matches!(self.reference, ModelRef::Path(_)) {
                return;
            }
            loop {
                let mut listener = match PgListener::connect_with(&pool).await {
                    Ok(mut l) => match l.listen(ALIAS_CHANNEL).await {
                        Ok(()) => Some(l),
                        Err(e) => {
                            tracing::warn!(error = %e, "LISTEN failed; polling only");
                            None
                        }
                    },
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot open a LISTEN connection; polling only");
                        None
                    }
                };
                // A refresh right after (re)connecting catches moves made while disconnected.
                let _ = self.refresh().await;
                loop {
                    let notified = match listener.as_mut() {
                        Some(l) => tokio::select! {
                            note = l.recv() => Some(note),
                            () = tokio::time::sleep(poll) => None,
                        },
                        None => {
                            tokio::time::sleep(poll).await;
                            None
                        }
                    };
                    match notified {
                        Some(Ok(note)) => {
                            let relevant = serde_json::from_str::<AliasEvent>(note.payload())
                                .map_or(true, |e| self.watches(&e));
                            if relevant {
                                let _ = self.refresh().await;
                            }
                        }
                        // The LISTEN connection broke: reconnect.
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, "the LISTEN connection failed; reconnecting");
                            break;
                        }
                        None => {
                            // Without LISTEN, the reconnect attempt above refreshes on its way.
                            if listener.is_none() {
                                break;
                            }
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
