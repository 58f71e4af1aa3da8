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

/// The security schemes an operation may name, declared under `components.securitySchemes` when some
/// operation of the document uses them.
fn security_scheme(name: &str) -> Option<Value> {
    let bearer =
        |description: &str| json!({"type": "http", "scheme": "bearer", "description": description});
    Some(match name {
        "admin_token" => bearer("ADMIN_TOKEN: jobs, ingestion, every admin route; reads as well"),
        "registry_token" => bearer(
            "REGISTRY_TOKEN: MLflow alias moves and deletes (ADMIN_TOKEN accepted too); MLflow reads",
        ),
        "read_token" => bearer("READ_TOKEN: reads (console, jobs, runs, audit, MLflow, artifacts)"),
        "read_basic" => json!({
            "type": "http",
            "scheme": "basic",
            "description": "HTTP Basic: any user name (recorded as the actor), a token as the password; \
                what a browser prompts for"
        }),
        "api_key" => json!({"type": "apiKey", "in": "header", "name": "X-API-Key",
            "description": "PREDICT_API_KEY"}),
        _ => return None,
    })
}

/// Declares every security scheme the document's operations name.
pub fn document_security_schemes(document: &mut Value) {
    let mut used = std::collections::BTreeSet::new();
    if let Some(paths) = document.get("paths").and_then(Value::as_object) {
        for item in paths.values() {
            for method in METHODS {
                let requirements = item
                    .get(method)
                    .and_then(|op| op.get("security"))
                    .and_then(Value::as_array);
                for requirement in requirements.into_iter().flatten() {
                    if let Some(names) = requirement.as_object() {
                        used.extend(names.keys().cloned());
                    }
                }
            }
        }
    }
    let schemes: serde_json::Map<String, Value> = used
        .into_iter()
        .filter_map(|name| security_scheme(&name).map(|scheme| (name, scheme)))
        .collect();
    if schemes.is_empty() {
        return;
    }
    if let Some(components) = document.as_object_mut().and_then(|d| {
        d.entry("components")
            .or_insert_with(|| json!({}))
            .as_object_mut()
    }) {
        let declared = components
            .entry("securitySchemes")
            .or_insert_with(|| json!({}));
        if let Some(declared) = declared.as_object_mut() {
            for (name, scheme) in schemes {
                declared.entry(name).or_insert(scheme);
            }
        }
    }
}

/// Adds `requirements` (alternatives: any one passes) to every operation of `method` under a path that
/// `guarded` accepts and that names no security of its own.
pub fn require_security(
    document: &mut Value,
    method: &str,
    guarded: impl Fn(&str) -> bool,
    requirements: &[&str],
) {
    let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    let alternatives: Vec<Value> = requirements
        .iter()
        .map(|name| json!({ *name: [] }))
        .collect();
    for (path, item) in paths.iter_mut() {
        if !guarded(path) {
            continue;
        }
        if let Some(operation) = item.get_mut(method).and_then(Value::as_object_mut) {
            operation
                .entry("security")
                .or_insert_with(|| Value::Array(alternatives.clone()));
        }
    }
}
