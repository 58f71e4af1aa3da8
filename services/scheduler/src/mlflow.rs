//! The mount of the MLflow-compatible API (`churn-mlflow`): its routes over this scheduler's registry and
//! tokens, and its search patterns in the served document.

use churn_registry::Registry;
use utoipa_axum::router::OpenApiRouter;

use crate::AppState;

pub use churn_mlflow::document_patterns;

/// The MLflow routes, carrying their own state.
pub fn routes(state: &AppState) -> OpenApiRouter<AppState> {
    churn_mlflow::routes(churn_mlflow::MlflowState {
        registry: Registry::new(state.infra.pool.clone(), state.infra.objects.clone()),
        tokens: state.tokens.clone(),
    })
}
