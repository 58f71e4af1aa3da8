//! `GET /ready`: the scheduler's own stores (critical) and the services its jobs call (degraded).

use axum::extract::State;
use churn_service::health::{Check, Critical, Readiness, infra_checks};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(ready))
}

/// Probes another service's `/ready`: ok when it answers 200.
async fn probe(state: &AppState, name: &str, base: &churn_config::ServiceUrl) -> Check {
    match state.http.get(format!("{base}/ready")).send().await {
        Ok(r) if r.status().is_success() => Check {
            critical: false,
            ..Check::pass(None)
        },
        Ok(r) => Check::down(name, false, format!("answered {}", r.status())),
        Err(e) => Check::down(name, false, e),
    }
}

/// `GET /ready`: the database and object store answer (critical); the synthesizer and the classifier
/// answer (the jobs that need them back off meanwhile: degraded).
#[utoipa::path(get, path = "/ready", tag = "operations", responses(
    (status = 200, description = "Ready (or degraded but serving)", body = Readiness),
    (status = 503, description = "Not ready", body = Readiness)))]
async fn ready(State(state): State<AppState>) -> Readiness {
    let compute = async {
        let (mut checks, synthesizer, classifier) = tokio::join!(
            infra_checks(
                &state.infra,
                Critical {
                    database: true,
                    object_store: true,
                },
            ),
            probe(&state, "synthesizer", &state.synthesizer),
            probe(&state, "classifier", &state.classifier),
        );
        checks.insert("synthesizer".to_owned(), synthesizer);
        checks.insert("classifier".to_owned(), classifier);
        Readiness::from_checks(checks)
    };
    state.ready.get(compute).await
}
