//! `GET /audit`: the newest manual actions (job triggers, pauses, alias moves and deletes, promotions)
//! with who did them, as the console's audit page shows them.

use axum::extract::State;
use churn_api::AuditEntryBody;
use churn_service::{ApiJson, ApiQuery, QueryError, QueryParams};
use churn_store::audit::AuditEntry;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Error;
use crate::AppState;

/// `GET /audit` (guarded by the caller's read layer).
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_audit))
}

const MAX_LIMIT: i64 = 1000;

/// Query of `GET /audit`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct AuditQuery {
    /// Entries to return, newest first, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

impl QueryParams for AuditQuery {
    const RULES: &'static [(&'static str, &'static str)] =
        &[("limit", "must be between 1 and 1000")];

    fn check(&self) -> Result<(), QueryError> {
        match self.limit {
            Some(limit) if !(1..=MAX_LIMIT).contains(&limit) => Err(QueryError::new(
                "limit",
                limit.to_string(),
                format!("must be between 1 and {MAX_LIMIT}"),
            )),
            _ => Ok(()),
        }
    }
}

/// An audit line as the API shows it.
pub(super) fn entry_body(entry: AuditEntry) -> AuditEntryBody {
    AuditEntryBody {
        audit_id: entry.audit_id,
        at: entry.at,
        token_scope: entry.token_scope.as_str().to_owned(),
        actor: entry.actor,
        action: entry.action.as_str().to_owned(),
        target: entry.target,
        details: entry.details.0,
    }
}

/// `GET /audit`: the newest manual actions with their actors, newest first.
#[utoipa::path(get, path = "/audit", tag = "operations", params(AuditQuery),
    responses(
        (status = 200, description = "The newest manual actions", body = Vec<AuditEntryBody>),
        (status = 400, description = "A bad limit", body = churn_service::ErrorBody),
        (status = 401, description = "READ_TOKEN is set and no (or a wrong) token was sent", body = churn_service::ErrorBody)))]
async fn list_audit(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<ApiJson<Vec<AuditEntryBody>>, Error> {
    let entries =
        churn_store::audit::recent(state.runner.pool(), query.limit.unwrap_or(100)).await?;
    Ok(ApiJson(entries.into_iter().map(entry_body).collect()))
}
