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

/// One dependency's state.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Check {
    pub ok: bool,
    /// Whether the service can still do its job without this dependency (it is then "degraded").
    pub critical: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Check {
    pub fn pass(detail: Option<String>) -> Self {
        Self {
            ok: true,
            critical: true,
            detail,
        }
    }

    pub fn fail(critical: bool, detail: impl Into<String>) -> Self {
        Self {
            ok: false,
            critical,
            detail: Some(detail.into()),
        }
    }

    fn from_result<E: std::fmt::Display>(
        result: Result<Result<(), E>, tokio::time::error::Elapsed>,
        critical: bool,
    ) -> Self {
        match result {
            Ok(Ok(())) => Self {
                ok: true,
                critical,
                detail: None,
            },
            Ok(Err(e)) => Self::fail(critical, e.to_string()),
            Err(_) => Self::fail(critical, "timed out"),
        }
    }
}

/// Body of `/ready`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
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
            Check::from_result(db, critical.database),
        ),
        (
            "object_store".to_owned(),
            Check::from_result(objects, critical.object_store),
        ),
    ])
}
