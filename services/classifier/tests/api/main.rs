//! The classifier service over HTTP, started on port 0 against a real PostgreSQL and S3 server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod edges;
mod feedback;
mod health;
mod inference_log;
mod malformed;
mod predict;
mod roles;
mod shadow;
mod swap;

use std::path::PathBuf;
use std::time::Duration;

use churn_automl::{ChurnModel, LoadedModel, TrainOptions};
use churn_core::Customer;
use churn_models::classifier;
use churn_registry::{ModelVersion, Registry};
use churn_service::testing::TestService;
use serde_json::Value;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// Starts the service (no model registered yet) with an admin token and `extra` variables.
pub async fn spawn_app(extra: &[(&str, &str)]) -> TestService {
    let mut env: Vec<(&str, &str)> = vec![("ADMIN_TOKEN", ADMIN_TOKEN), ("MODEL_POLL_SECS", "1")];
    env.extend_from_slice(extra);
    TestService::spawn(::classifier::PORT_VAR, &env, |env| async move {
        ::classifier::build(::classifier::config_from_env(&env)?).await
    })
    .await
}

pub fn seed() -> Vec<Customer> {
    churn_core::read_customers(&churn_testkit::seed_data_path()).unwrap()
}

/// A small model, trained once per machine and cached beside the build (training is deterministic, so
/// test processes racing to write it write the same bytes).
pub fn model() -> ChurnModel {
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("classifier-test-model-v1.json");
    if let Ok(bytes) = std::fs::read(&cache)
        && let Ok(model) = ChurnModel::from_bytes(&bytes)
    {
        return model;
    }
    let params = churn_automl::split::SplitParams {
        test_fraction: 0.5,
        seed: 3,
    }
    .check()
    .unwrap();
    let (train, _) = churn_automl::split::split_customers(seed(), &params).unwrap();
    let options = TrainOptions {
        time_budget: Duration::from_secs(2),
        ..TrainOptions::default()
    };
    let model = churn_automl::train(&train, None, options, |_| {}).unwrap();
    let tmp = cache.with_extension(format!("{}.tmp", std::process::id()));
    std::fs::write(&tmp, model.to_bytes().unwrap()).unwrap();
    std::fs::rename(&tmp, &cache).unwrap();
    model
}

pub fn registry(app: &TestService) -> Registry {
    Registry::new(app.db.pool.clone(), app.s3.open())
}

/// Registers `model` as a new version and makes it champion (as promotion would).
pub async fn register_champion(app: &TestService, model: &ChurnModel) -> ModelVersion {
    let registry = registry(app);
    let info = classifier::TrainingInfo {
        data_path: "seed.csv".into(),
        data_sha256: "c".repeat(64),
        train_rows: 3500,
        holdout_rows: 0,
        split_seed: 3,
        code_version: "test".into(),
        profile: None,
    };
    let version = classifier::register(&registry, model, None, &info)
        .await
        .unwrap();
    registry
        .set_alias(
            classifier::MODEL_NAME,
            &churn_registry::Alias::CHAMPION,
            version.version,
        )
        .await
        .unwrap();
    version
}

/// Waits (up to `limit`) until `/model` reports `version`.
pub async fn wait_for_version(app: &TestService, version: i32, limit: Duration) {
    wait_for_version_with(app, version, limit, None).await;
}

/// [`wait_for_version`] for a service that needs an API key.
pub async fn wait_for_version_with(
    app: &TestService,
    version: i32,
    limit: Duration,
    key: Option<&str>,
) {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let mut request = app.client.get(app.url("/model"));
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        let body: Value = match request.send().await {
            Ok(response) => response.json().await.unwrap_or_default(),
            Err(_) => Value::Null,
        };
        if body["model_version"] == version {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "version {version} not served within {limit:?}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The service with the test model as champion, being served.
pub async fn spawn_with_champion(extra: &[(&str, &str)]) -> TestService {
    let app = spawn_app(extra).await;
    let version = register_champion(&app, &model()).await;
    let key = extra
        .iter()
        .find(|(k, _)| *k == "PREDICT_API_KEY")
        .map(|(_, v)| *v);
    wait_for_version_with(&app, version.version.get(), Duration::from_secs(5), key).await;
    app
}

/// A valid customer as the API takes it.
pub fn customer_json(c: &Customer) -> Value {
    serde_json::to_value(c).unwrap()
}

pub async fn post(app: &TestService, path: &str, body: &Value) -> (u16, Value) {
    let response = app
        .client
        .post(app.url(path))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

pub fn loaded() -> LoadedModel {
    LoadedModel::new(model()).unwrap()
}
