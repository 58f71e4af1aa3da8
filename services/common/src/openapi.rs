//! What every service's OpenAPI document must say beyond its handlers' own annotations: the answers the
//! shared middleware can give to any request (408 past the deadline, 503 when saturated, 400/413/415 for
//! an unreadable body), so the document lists every status a client can see.

use serde_json::{Value, json};

use crate::limits::UNLIMITED_ROUTES;

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    })
}

/// Adds the shared responses to every operation that does not document them, and the `ErrorBody`
/// schema they refer to.
pub fn document_shared_responses(document: &mut Value) {
    let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let limited = !UNLIMITED_ROUTES.contains(&path.as_str());
        for method in METHODS {
            let Some(operation) = item.get_mut(method) else {
                continue;
            };
            let has_body = operation.get("requestBody").is_some();
            let Some(responses) = operation
                .get_mut("responses")
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            let mut add = |code: &str, description: &str| {
                responses
                    .entry(code.to_owned())
                    .or_insert_with(|| error_response(description));
            };
            add(
                "408",
                "The request took longer than REQUEST_TIMEOUT_SECS and was abandoned",
            );
            if limited {
                add(
                    "503",
                    "The service is at its concurrency limit (MAX_CONCURRENT_REQUESTS); retry after \
                     the Retry-After header's seconds",
                );
            }
            if has_body {
                add("400", "The body is not valid JSON");
                add("413", "The body is larger than MAX_BODY_BYTES");
                add(
                    "415",
                    "The body is not JSON (Content-Type must be application/json)",
                );
            }
        }
    }
    let schemas = document
        .as_object_mut()
        .map(|d| {
            d.entry("components")
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .map(|c| c.entry("schemas").or_insert_with(|| json!({})))
        })
        .and_then(|s| s.and_then(Value::as_object_mut));
    if let Some(schemas) = schemas {
        schemas.entry("ErrorBody").or_insert_with(|| {
            serde_json::to_value(<churn_api::ErrorBody as utoipa::PartialSchema>::schema())
                .unwrap_or_default()
        });
    }
}
