//! The MLflow-compatible API: MLflow's own Python client (mlflow-skinny, pinned in the test venv) reads
//! the registry, moves the champion with the admin token (the classifier then serves it) and downloads
//! `models:/churn-classifier@champion` byte for byte; without the token alias changes are refused, and
//! errors are MLflow's JSON.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use churn_config::Env;
use churn_registry::Registry;
use churn_service::testing::{
    RunningApp, TEST_ADMIN_TOKEN, champion_model, champion_profile, register_champion, service_env,
};
use churn_testkit::{TestDb, TestS3};
use object_store::ObjectStoreExt;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::stack::wait_until;

const MODEL: &str = "churn-classifier";

/// Registers a second classifier version (another threshold, so other bytes) without an alias.
pub(crate) async fn register_second_version(
    db: &TestDb,
    s3: &TestS3,
) -> churn_registry::ModelVersion {
    let registry = Registry::new(db.pool.clone(), s3.open());
    let mut model = champion_model();
    model.threshold = (model.threshold + 0.05).min(0.95);
    let info = churn_models::classifier::TrainingInfo {
        data_path: "seed.csv".into(),
        data_sha256: "d".repeat(64),
        train_rows: 3500,
        holdout_rows: 0,
        split_seed: 4,
        code_version: "test".into(),
        profile: Some(champion_profile()),
    };
    churn_models::classifier::register(&registry, &model, None, &info)
        .await
        .expect("register a second version")
}

/// A scheduler on `db` and `s3` with the admin token and no jobs running by themselves.
async fn scheduler(db: &TestDb, s3: &TestS3) -> RunningApp {
    let env: Env = service_env(
        db,
        s3,
        scheduler::PORT_VAR,
        &[
            ("ADMIN_TOKEN", TEST_ADMIN_TOKEN),
            ("BOOTSTRAP_TRAIN_BUDGET_SECS", "0"),
            ("GENERATE_ENABLED", "false"),
            ("DBT_ENABLED", "false"),
            ("METRICS_ENABLED", "false"),
            ("DRIFT_ENABLED", "false"),
            ("RETRAIN_ENABLED", "false"),
            ("INGEST_ENABLED", "false"),
            ("SCORE_ENABLED", "false"),
        ],
    );
    let config = scheduler::config_from_env(&env).unwrap();
    RunningApp::start(scheduler::build(config).await.unwrap())
}

/// A classifier on `db` and `s3` serving the champion (polling every second, NOTIFY at once).
async fn classifier(db: &TestDb, s3: &TestS3) -> RunningApp {
    let env = service_env(db, s3, classifier::PORT_VAR, &[("MODEL_POLL_SECS", "1")]);
    RunningApp::start(
        classifier::build(classifier::config_from_env(&env).unwrap())
            .await
            .unwrap(),
    )
}

async fn served_version(client: &reqwest::Client, classifier: &RunningApp) -> Value {
    match client.get(classifier.url("/model")).send().await {
        Ok(r) => r.json::<Value>().await.unwrap_or_default()["model_version"].clone(),
        Err(_) => Value::Null,
    }
}

/// Runs tests/mlflow_client.py with the venv's Python against the scheduler; returns what it printed.
async fn run_mlflow_client(
    scheduler: &RunningApp,
    promote: i32,
    download: &std::path::Path,
) -> Value {
    let python = std::env::var("CHURN_PYTHON").expect(
        "CHURN_PYTHON is not set: this test runs MLflow's client (mlflow-skinny, pinned in \
         scripts/requirements-test.txt) from the project's venv. Run scripts/test, or set \
         CHURN_PYTHON=$(scripts/venv)/bin/python",
    );
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mlflow_client.py");
    let mut command = Command::new(python);
    command
        .arg(&script)
        .arg(promote.to_string())
        .arg(download)
        .env("MLFLOW_TRACKING_URI", &scheduler.address)
        .env("MLFLOW_TRACKING_TOKEN", TEST_ADMIN_TOKEN)
        // A failing call should fail the test at once, not after the client's retries with back-off.
        .env("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        .env("MLFLOW_HTTP_REQUEST_TIMEOUT", "60");
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("the venv's python runs");
    assert!(
        output.status.success(),
        "mlflow_client.py failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "mlflow_client.py printed no JSON ({e}):\n{}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn mlflow_s_own_client_reads_the_registry_moves_the_champion_and_downloads_it() {
    let db = TestDb::new().await;
    let s3 = TestS3::start().await;
    let v1 = register_champion(&db, &s3).await;
    let v2 = register_second_version(&db, &s3).await;
    let http = reqwest::Client::new();
    let classifier = classifier(&db, &s3).await;
    wait_until(Duration::from_secs(30), || async {
        served_version(&http, &classifier).await == json!(v1.version)
    })
    .await;
    let scheduler = scheduler(&db, &s3).await;
    let download = tempfile::tempdir().unwrap();

    let seen = run_mlflow_client(&scheduler, v2.version.get(), download.path()).await;

    // search_registered_models: the model with its champion alias and its latest version.
    let models = seen["registered_models"].as_array().unwrap();
    assert_eq!(models.len(), 1, "{seen}");
    assert_eq!(models[0]["name"], MODEL);
    assert_eq!(
        models[0]["aliases"],
        json!({ "champion": v1.version.to_string() })
    );
    assert_eq!(
        models[0]["latest_versions"],
        json!([v2.version.to_string()])
    );
    assert_eq!(seen["filtered_models"], json!([MODEL]));

    // get_model_version_by_alias: the champion as the registry has it.
    let champion = &seen["champion"];
    let run_id = v1.run_id.expect("the champion has a run");
    assert_eq!(champion["version"], v1.version.to_string());
    assert_eq!(champion["run_id"], run_id.to_string());
    assert_eq!(champion["status"], "READY");
    assert_eq!(champion["aliases"], json!(["champion"]));
    assert_eq!(
        champion["source"],
        format!("mlflow-artifacts:/models/{MODEL}/{}", v1.version)
    );
    assert_eq!(
        champion["tags"]["churn.artifact_sha256"],
        v1.artifact_sha256
    );

    // get_run: params and metrics equal ours (each metric's value at its largest step).
    let params: Vec<(String, String)> =
        sqlx::query_as("select key, value from registry.run_params where run_id = $1")
            .bind(run_id)
            .fetch_all(&db.pool)
            .await
            .unwrap();
    let params: BTreeMap<String, String> = params.into_iter().collect();
    assert!(!params.is_empty());
    assert_eq!(seen["run"]["params"], json!(params));
    let metrics: Vec<(String, f64)> = sqlx::query_as(
        "select distinct on (key) key, value from registry.run_metrics where run_id = $1
         order by key, step desc",
    )
    .bind(run_id)
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let metrics: BTreeMap<String, f64> = metrics.into_iter().collect();
    assert!(metrics.contains_key("cv_roc_auc"), "{metrics:?}");
    assert_eq!(seen["run"]["metrics"], json!(metrics));
    let status: String = sqlx::query_scalar("select status from registry.runs where run_id = $1")
        .bind(run_id)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(seen["run"]["status"], status.to_uppercase());
    assert_eq!(
        seen["run"]["experiment_id"],
        seen["experiment"]["experiment_id"]
    );
    assert_eq!(seen["experiment"]["name"], MODEL);
    assert_eq!(seen["unknown_experiment_is_none"], true);
    let runs: Vec<String> = serde_json::from_value(seen["runs"].clone()).unwrap();
    let both = [Some(run_id), v2.run_id].map(|r| r.unwrap().to_string());
    assert!(both.iter().all(|r| runs.contains(r)), "{runs:?}");
    let history: Vec<(i64, f64)> = sqlx::query_as(
        "select step, value from registry.run_metrics where run_id = $1 and key = 'trial_cv_roc_auc'
         order by step",
    )
    .bind(run_id)
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert!(!history.is_empty());
    assert_eq!(seen["trial_history"], json!(history));

    // search_model_versions: both versions.
    assert_eq!(
        seen["versions"],
        json!([v1.version.to_string(), v2.version.to_string()])
    );

    // set_registered_model_alias with the token: the registry's champion moved, as a manual decision.
    assert_eq!(seen["champion_after_move"], v2.version.to_string());
    let registry = Registry::new(db.pool.clone(), s3.open());
    let now = registry.by_alias(MODEL, "champion").await.unwrap().unwrap();
    assert_eq!(now.version, v2.version);
    let decision = registry.decisions(MODEL).await.unwrap().remove(0);
    assert_eq!(
        (
            decision.candidate_version,
            decision.champion_version,
            decision.metric.as_str(),
            decision.promoted
        ),
        (v2.version, Some(v1.version), "manual", true)
    );
    assert_eq!(decision.evidence["via"], "mlflow");

    // ... and the classifier serves it (NOTIFY, or its next poll).
    wait_until(Duration::from_secs(15), || async {
        served_version(&http, &classifier).await == json!(v2.version)
    })
    .await;

    // download_artifacts("models:/churn-classifier@champion"): the new champion's bytes, exactly.
    let sums = &seen["download"]["sha256"];
    assert_eq!(sums["model.json"], v2.artifact_sha256, "{seen}");
    assert_eq!(sums["profile.json"], json!(v2.profile_sha256), "{seen}");
    let folder = std::path::PathBuf::from(seen["download"]["path"].as_str().unwrap());
    let downloaded = std::fs::read(folder.join("model.json")).unwrap();
    assert_eq!(downloaded, registry.load_artifact(&v2).await.unwrap());
    assert_eq!(churn_registry::sha256_hex(&downloaded), v2.artifact_sha256);
    assert_eq!(
        seen["download_by_version"], v1.artifact_sha256,
        "models:/NAME/VERSION"
    );

    assert_eq!(seen["missing_model_error"], "RESOURCE_DOES_NOT_EXIST");
    assert_eq!(seen["missing_alias_error"], "RESOURCE_DOES_NOT_EXIST");

    scheduler.stop().await;
    classifier.stop().await;
}

async fn mlflow_call(
    client: &reqwest::Client,
    app: &RunningApp,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = client.request(method, app.url(&format!("/api/2.0/mlflow{path}")));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_token_alias_changes_answer_401_and_errors_are_mlflow_s_json() {
    let db = TestDb::new().await;
    let s3 = TestS3::start().await;
    let v1 = register_champion(&db, &s3).await;
    let v2 = register_second_version(&db, &s3).await;
    let app = scheduler(&db, &s3).await;
    let client = reqwest::Client::new();
    let post = reqwest::Method::POST;
    let delete = reqwest::Method::DELETE;
    let move_body =
        json!({ "name": MODEL, "alias": "champion", "version": v2.version.to_string() });
    let delete_body = json!({ "name": MODEL, "alias": "champion" });

    for (method, body) in [(&post, &move_body), (&delete, &delete_body)] {
        let (status, error) = mlflow_call(
            &client,
            &app,
            method.clone(),
            "/registered-models/alias",
            None,
            Some(body.clone()),
        )
        .await;
        assert_eq!(
            (status, error["error_code"].as_str()),
            (401, Some("UNAUTHENTICATED")),
            "{method} {error}"
        );
        assert!(
            error["message"].as_str().unwrap().contains("Bearer"),
            "{error}"
        );
        let (status, error) = mlflow_call(
            &client,
            &app,
            method.clone(),
            "/registered-models/alias",
            Some("not-the-admin-token-at-all"),
            Some(body.clone()),
        )
        .await;
        assert_eq!(
            (status, error["error_code"].as_str()),
            (403, Some("PERMISSION_DENIED")),
            "{error}"
        );
    }
    let registry = Registry::new(db.pool.clone(), s3.open());
    let champion = registry.by_alias(MODEL, "champion").await.unwrap().unwrap();
    assert_eq!(
        champion.version, v1.version,
        "refused calls changed nothing"
    );
    assert!(registry.decisions(MODEL).await.unwrap().is_empty());

    // A missing model, version, alias, run or artifact: MLflow's 404.
    for path in [
        "/registered-models/get?name=no-such-model".to_owned(),
        format!("/model-versions/get?name={MODEL}&version=99"),
        format!("/registered-models/alias?name={MODEL}&alias=no-such-alias"),
        format!("/runs/get?run_id={}", Uuid::new_v4()),
        "/experiments/get-by-name?experiment_name=nothing".to_owned(),
    ] {
        let (status, error) =
            mlflow_call(&client, &app, reqwest::Method::GET, &path, None, None).await;
        assert_eq!(status, 404, "{path}: {error}");
        assert_eq!(error["error_code"], "RESOURCE_DOES_NOT_EXIST", "{path}");
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{error}"
        );
    }
    let (status, error) = mlflow_call(
        &client,
        &app,
        reqwest::Method::POST,
        "/runs/create",
        None,
        None,
    )
    .await;
    assert_eq!(
        (status, error["error_code"].as_str()),
        (404, Some("ENDPOINT_NOT_FOUND")),
        "{error}"
    );
    let missing = client
        .get(app.url(&format!(
            "/api/2.0/mlflow-artifacts/artifacts/models/{MODEL}/99/model.json"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    // Parameters the server does not accept: 400 INVALID_PARAMETER_VALUE, naming what was wrong.
    for path in [
        format!("/model-versions/get?name={MODEL}&version=abc"),
        "/registered-models/search?filter=name%20IS%20'x'".to_owned(),
        "/registered-models/search?max_results=0".to_owned(),
        "/registered-models/get".to_owned(),
    ] {
        let (status, error) =
            mlflow_call(&client, &app, reqwest::Method::GET, &path, None, None).await;
        assert_eq!(
            (status, error["error_code"].as_str()),
            (400, Some("INVALID_PARAMETER_VALUE")),
            "{path}: {error}"
        );
    }

    // The champion can be moved, not deleted; another alias can be set and deleted.
    let token = Some(TEST_ADMIN_TOKEN);
    let (status, error) = mlflow_call(
        &client,
        &app,
        delete.clone(),
        "/registered-models/alias",
        token,
        Some(delete_body),
    )
    .await;
    assert_eq!(
        (status, error["error_code"].as_str()),
        (409, Some("RESOURCE_CONFLICT")),
        "{error}"
    );
    let staging = json!({ "name": MODEL, "alias": "staging", "version": v2.version.to_string() });
    let (status, _) = mlflow_call(
        &client,
        &app,
        post,
        "/registered-models/alias",
        token,
        Some(staging),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        registry
            .by_alias(MODEL, "staging")
            .await
            .unwrap()
            .unwrap()
            .version,
        v2.version
    );
    assert!(
        registry.decisions(MODEL).await.unwrap().is_empty(),
        "only champion moves are decisions"
    );
    let (status, _) = mlflow_call(
        &client,
        &app,
        delete,
        "/registered-models/alias",
        token,
        Some(json!({ "name": MODEL, "alias": "staging" })),
    )
    .await;
    assert_eq!(status, 200);
    assert!(registry.by_alias(MODEL, "staging").await.unwrap().is_none());

    // A tampered artifact is never sent: the checksum fails, the answer is an opaque 500.
    let key = object_store::path::Path::from(v1.artifact_key.as_str());
    s3.open()
        .store
        .put(&key, b"{\"tampered\": true}".to_vec().into())
        .await
        .unwrap();
    let tampered = client
        .get(app.url(&format!(
            "/api/2.0/mlflow-artifacts/artifacts/models/{MODEL}/{}/model.json",
            v1.version
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(tampered.status(), 500);
    let body: Value = tampered.json().await.unwrap();
    assert_eq!(body["error_code"], "DATA_LOSS");
    let message = body["message"].as_str().unwrap();
    assert!(
        !message.contains(&v1.artifact_sha256) && !message.contains("models/"),
        "{message}"
    );

    // The document states the search language the server checks, from the same patterns.
    let spec: Value = client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let parameters =
        &spec["paths"]["/api/2.0/mlflow/registered-models/search"]["get"]["parameters"];
    let filter = parameters
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "filter")
        .unwrap();
    assert_eq!(
        filter["schema"]["pattern"],
        churn_registry::mlflow::filter::REGISTERED_MODEL_FILTER
    );
    assert_eq!(
        spec["components"]["schemas"]["MlflowSearchRuns"]["properties"]["filter"]["pattern"],
        churn_registry::mlflow::filter::RUN_FILTER
    );

    app.stop().await;
}

#[tokio::test]
async fn the_mlflow_routes_match_their_openapi_document_on_a_populated_registry() {
    let app = crate::spawn_app(&[
        ("ADMIN_TOKEN", TEST_ADMIN_TOKEN),
        ("BOOTSTRAP_TRAIN_BUDGET_SECS", "0"),
        ("GENERATE_ENABLED", "false"),
    ])
    .await;
    let v1 = register_champion(&app.db, &app.s3).await;
    let v2 = register_second_version(&app.db, &app.s3).await;
    let run_id = v1.run_id.unwrap();
    // Existing names, so that requests reach the answers with bodies (the empty-registry run in
    // health.rs covers the 404s).
    let config = format!(
        r#"[parameters]
"query.name" = "{MODEL}"
"query.alias" = "champion"
"query.version" = "{v2}"
"query.run_id" = "{run_id}"
"query.metric_key" = "trial_cv_roc_auc"
"query.experiment_name" = "{MODEL}"
"query.experiment_id" = "{experiment}"
"query.path" = "models/{MODEL}/{v1}"
"path.path" = "models/{MODEL}/{v1}/model.json"
"#,
        v1 = v1.version,
        v2 = v2.version,
        experiment = churn_registry::mlflow::experiment_id(MODEL),
    );
    churn_service::testing::schemathesis_with_config(
        &app,
        &["--include-tag", "mlflow"],
        Some(&config),
    )
    .await;
}

/// The searches over HTTP (filtered, ordered and paged in SQL): one result a page, then the next page.
#[tokio::test(flavor = "multi_thread")]
async fn searches_answer_filtered_ordered_pages() {
    let db = TestDb::new().await;
    let s3 = TestS3::start().await;
    let v1 = register_champion(&db, &s3).await;
    let v2 = register_second_version(&db, &s3).await;
    let app = scheduler(&db, &s3).await;
    let client = reqwest::Client::new();
    let (run1, run2) = (v1.run_id.unwrap(), v2.run_id.unwrap());
    let mut seen = Vec::new();
    let mut token = Value::Null;
    for _ in 0..3 {
        let body = json!({
            "experiment_ids": [churn_registry::mlflow::experiment_id(MODEL)],
            "filter": "attributes.status = 'FINISHED' and tags.`churn.code_version` = 'test'",
            "order_by": ["attributes.start_time ASC"],
            "max_results": 1,
            "page_token": token,
        });
        let post = reqwest::Method::POST;
        let (status, page) =
            mlflow_call(&client, &app, post, "/runs/search", None, Some(body)).await;
        assert_eq!(status, 200, "{page}");
        for run in page["runs"].as_array().unwrap() {
            seen.push(run["info"]["run_id"].clone());
        }
        token = page["next_page_token"].clone();
        if token.is_null() {
            break;
        }
    }
    assert_eq!(seen, [json!(run1.to_string()), json!(run2.to_string())]);

    let encode =
        |text: &str| url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
    let filter = encode(&format!(
        "run_id IN ('{run2}', 'other') and name = '{MODEL}'"
    ));
    let path = format!("/model-versions/search?filter={filter}");
    let (status, page) = mlflow_call(&client, &app, reqwest::Method::GET, &path, None, None).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["model_versions"].as_array().map(Vec::len), Some(1));
    assert_eq!(page["model_versions"][0]["version"], v2.version.to_string());

    let path = format!(
        "/registered-models/search?filter={}&max_results=1",
        encode("name LIKE 'churn%'")
    );
    let (status, page) = mlflow_call(&client, &app, reqwest::Method::GET, &path, None, None).await;
    assert_eq!(
        (status, &page["registered_models"][0]["name"]),
        (200, &json!(MODEL))
    );
    assert!(page["next_page_token"].is_null(), "{page}");
    app.stop().await;
}
