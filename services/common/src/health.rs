//! `/health` (the process is alive) and the pieces of `/ready` (its dependencies answer).

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::Infra;

/// Body of `/health`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always "ok" when the process answers.
    pub status: &'static str,
    /// The service's version.
    pub version: &'static str,
}

/// `GET /health`: liveness only; it never touches dependencies.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "The process is alive", body = Health)))]
pub async fn health() -> Json<Health> {
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// A dependency's state, as published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Ok,
    /// Answering, but something is off (e.g. the last model refresh failed).
    Degraded,
    Down,
}

/// One dependency's state. Public bodies never carry error text, keys, hashes or paths: the cause of a
/// failed check goes to the log.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Check {
    pub status: CheckStatus,
    /// `status == ok`.
    pub ok: bool,
    /// Whether the service cannot do its job without this dependency (it is then "not_ready"; a failed
    /// non-critical one only makes it "degraded").
    pub critical: bool,
    /// A fact safe to publish, e.g. the served model's version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Check {
    pub fn pass(detail: Option<String>) -> Self {
        Self {
            status: CheckStatus::Ok,
            ok: true,
            critical: true,
            detail,
        }
    }

    /// A dependency that does not answer; `cause` is logged, not published.
    pub fn down(name: &str, critical: bool, cause: impl std::fmt::Display) -> Self {
        tracing::warn!(check = name, %cause, "readiness check failed");
        Self {
            status: CheckStatus::Down,
            ok: false,
            critical,
            detail: None,
        }
    }

    /// A dependency that answers but not as it should; `cause` is logged, not published.
    pub fn degraded(name: &str, cause: impl std::fmt::Display) -> Self {
        tracing::warn!(check = name, %cause, "readiness check degraded");
        Self {
            status: CheckStatus::Degraded,
            ok: false,
            critical: false,
            detail: None,
        }
    }

    fn from_result<E: std::fmt::Display>(
        name: &str,
        result: Result<Result<(), E>, tokio::time::error::Elapsed>,
        critical: bool,
    ) -> Self {
        match result {
            Ok(Ok(())) => Self {
                status: CheckStatus::Ok,
                ok: true,
                critical,
                detail: None,
            },
            Ok(Err(e)) => Self::down(name, critical, e),
            Err(_) => Self::down(name, critical, "timed out"),
        }
    }
}

/// Body of `/ready`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// "ready", "degraded" (a non-critical dependency is down; still serving) or "not_ready".
    pub status: &'static str,
    pub checks: BTreeMap<String, Check>,
}

impl Readiness {
    pub fn from_checks(checks: BTreeMap<String, Check>) -> Self {
        let status = if checks.values().any(|c| !c.ok && c.critical) {
            "not_ready"
        } else if checks.values().any(|c| !c.ok) {
            "degraded"
        } else {
            "ready"
        };
        Self { status, checks }
    }
}

impl IntoResponse for Readiness {
    fn into_response(self) -> Response {
        let code = if self.status == "not_ready" {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::OK
        };
        (code, Json(self)).into_response()
    }
}

/// Which dependencies a service cannot work without: a failed critical check makes it not ready, a
/// failed other one only degraded.
#[derive(Debug, Clone, Copy)]
pub struct Critical {
    pub database: bool,
    pub object_store: bool,
}

/// Probes the database and the object store concurrently, each bounded by a short timeout.
pub async fn infra_checks(infra: &Infra, critical: Critical) -> BTreeMap<String, Check> {
    let limit = Duration::from_secs(2);
    let (db, objects) = tokio::join!(
        tokio::time::timeout(limit, churn_store::ping(&infra.pool)),
        tokio::time::timeout(limit, infra.objects.ping()),
    );
    BTreeMap::from([
        (
            "database".to_owned(),
            Check::from_result("database", db, critical.database),
        ),
        (
            "object_store".to_owned(),
            Check::from_result("object_store", objects, critical.object_store),
        ),
    ])
}

/// How long a computed readiness answer is reused: probes from several orchestrators (or an attacker
/// hammering `/ready`) cost at most one round of dependency checks per second.
pub const READY_CACHE: Duration = Duration::from_secs(1);

/// The last readiness answer, reused for [`READY_CACHE`]; concurrent probes wait for one computation.
#[derive(Debug, Default)]
pub struct ReadyCache {
    last: tokio::sync::Mutex<Option<(std::time::Instant, Readiness)>>,
}

impl ReadyCache {
    /// The cached answer when it is fresh, otherwise `compute`'s (which is then cached).
    pub async fn get(&self, compute: impl std::future::Future<Output = Readiness>) -> Readiness {
        let mut last = self.last.lock().await;
        if let Some((at, readiness)) = last.as_ref()
            && at.elapsed() < READY_CACHE
        {
            return readiness.clone();
        }
        let readiness = compute.await;
        *last = Some((std::time::Instant::now(), readiness.clone()));
        readiness
    }
}
