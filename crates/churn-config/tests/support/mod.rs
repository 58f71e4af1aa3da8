//! What the deployment tests share: the repository's files, docker-compose.yml with its merge keys
//! applied, and its services' settings.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_yaml::{Mapping, Value};

/// Services that keep data: never published beyond 127.0.0.1.
pub const DATA_STORES: [&str; 2] = ["postgres", "minio"];

pub fn repo_file(path: &str) -> String {
    let full = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// docker-compose.yml with YAML merge keys (`<<: *anchor`) applied, as compose applies them.
pub fn compose() -> Mapping {
    let mut value: Value = serde_yaml::from_str(&repo_file("docker-compose.yml")).unwrap();
    value.apply_merge().unwrap();
    // apply_merge resolves the top level's merges; services merge anchors one level deeper too.
    let mut services = value["services"].as_mapping().unwrap().clone();
    for (_, service) in services.iter_mut() {
        service.apply_merge().unwrap();
        for key in ["environment", "depends_on", "healthcheck"] {
            if let Some(inner) = service.get_mut(key) {
                inner.apply_merge().unwrap();
            }
        }
    }
    services
}

pub fn service<'a>(services: &'a Mapping, name: &str) -> &'a Mapping {
    services
        .get(name)
        .and_then(Value::as_mapping)
        .unwrap_or_else(|| panic!("docker-compose.yml has no service {name}"))
}

pub fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => panic!("expected a scalar, found {other:?}"),
    }
}

pub fn environment(service: &Mapping) -> BTreeMap<String, String> {
    service
        .get("environment")
        .and_then(Value::as_mapping)
        .map(|env| env.iter().map(|(k, v)| (text(k), text(v))).collect())
        .unwrap_or_default()
}
