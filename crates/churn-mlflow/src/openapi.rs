//! The OpenAPI document's search patterns, taken from the library that checks them, so the document
//! and the parser cannot disagree.

use churn_registry::mlflow::filter;
use serde_json::json;

/// The documented patterns of each route's search parameters, from the library that checks them.
pub fn document_patterns(document: &mut serde_json::Value) {
    const BASE: &str = "/api/2.0/mlflow";
    for (path, filter, order) in [
        (
            "/registered-models/search",
            filter::REGISTERED_MODEL_FILTER,
            filter::REGISTERED_MODEL_ORDER,
        ),
        (
            "/model-versions/search",
            filter::MODEL_VERSION_FILTER,
            filter::MODEL_VERSION_ORDER,
        ),
    ] {
        let Some(parameters) = document
            .pointer_mut(&format!(
                "/paths/{}/get/parameters",
                pointer(&format!("{BASE}{path}"))
            ))
            .and_then(serde_json::Value::as_array_mut)
        else {
            continue;
        };
        for parameter in parameters {
            let schema = match parameter["name"].as_str() {
                Some("filter") => Some((&mut parameter["schema"], filter)),
                Some("order_by") => Some((&mut parameter["schema"]["items"], order)),
                Some("page_token") => Some((&mut parameter["schema"], filter::PAGE_TOKEN)),
                _ => None,
            };
            if let Some((schema, pattern)) = schema {
                schema["pattern"] = json!(pattern);
            }
        }
    }
    if let Some(maximum) = document.pointer_mut(&format!(
        "/paths/{}/get/parameters",
        pointer(&format!("{BASE}/model-versions/search"))
    )) && let Some(parameters) = maximum.as_array_mut()
    {
        for parameter in parameters {
            if parameter["name"] == "max_results" {
                parameter["schema"]["maximum"] = json!(200_000);
            }
        }
    }
    for (schema, filter, order) in [
        (
            "MlflowSearchExperiments",
            filter::EXPERIMENT_FILTER,
            filter::EXPERIMENT_ORDER,
        ),
        ("MlflowSearchRuns", filter::RUN_FILTER, filter::RUN_ORDER),
    ] {
        if let Some(properties) =
            document.pointer_mut(&format!("/components/schemas/{schema}/properties"))
        {
            properties["filter"]["pattern"] = json!(filter);
            properties["order_by"]["items"]["pattern"] = json!(order);
            properties["page_token"]["pattern"] = json!(filter::PAGE_TOKEN);
        }
    }
}

/// A JSON pointer segment for an OpenAPI path.
fn pointer(path: &str) -> String {
    path.replace('~', "~0").replace('/', "~1")
}
