//! Scoped tokens: with READ_TOKEN set every read (console, jobs, runs, audit, MLflow, artifacts) needs a
//! token while the operational routes stay open; READ_TOKEN and REGISTRY_TOKEN do only their own
//! writes; every manual action lands once in the audit log with its actor, and the console shows it.

use std::time::Duration;

use churn_service::testing::TEST_ADMIN_TOKEN;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};

use crate::mlflow::register_second_version;
use crate::stack::{Stack, wait_until};

const READ_TOKEN: &str = "test-read-token-0123456789";
const REGISTRY_TOKEN: &str = "test-registry-token-0123456789";
const MODEL: &str = "churn-classifier";

/// How a request authenticates.
#[derive(Debug, Clone, Copy)]
enum As {
    Nobody,
    Bearer(&'static str),
    /// HTTP Basic: (user, token as password).
    Basic(&'static str, &'static str),
}

fn with(request: RequestBuilder, who: As) -> RequestBuilder {
    match who {
        As::Nobody => request,
        As::Bearer(token) => request.bearer_auth(token),
        As::Basic(user, token) => request.basic_auth(user, Some(token)),
    }
}

async fn call(
    stack: &Stack,
    method: Method,
    url: String,
    who: As,
    body: Option<Value>,
) -> (StatusCode, String) {
    let mut request = with(stack.client.request(method, url), who);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.text().await.unwrap())
}

async fn scoped_scheduler(stack: &Stack, read_token: bool) -> churn_service::testing::RunningApp {
    let mut extra = vec![
        ("REGISTRY_TOKEN", REGISTRY_TOKEN),
        ("GENERATE_ENABLED", "false"),
    ];
    if read_token {
        extra.push(("READ_TOKEN", READ_TOKEN));
    }
    stack.scheduler(&extra).await
}

/// Runs the `ingest` job (an empty landing/ makes it quick) and returns its run's id.
async fn one_run(stack: &Stack, app: &churn_service::testing::RunningApp) -> String {
    let (status, body) = call(
        stack,
        Method::POST,
        app.url("/jobs/ingest/run"),
        As::Bearer(TEST_ADMIN_TOKEN),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let run: Value = serde_json::from_str(&body).unwrap();
    run["job_run_id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_read_token_every_guarded_read_needs_it_or_a_stronger_token_and_operations_stay_open()
 {
    let stack = Stack::start().await;
    let app = scoped_scheduler(&stack, true).await;
    let run_id = one_run(&stack, &app).await;
    let reads = [
        "/".to_owned(),
        "/ui/jobs".to_owned(),
        "/ui/audit".to_owned(),
        "/jobs".to_owned(),
        "/jobs/ingest/runs".to_owned(),
        format!("/runs/{run_id}"),
        "/audit".to_owned(),
    ];
    for path in &reads {
        let (status, body) = call(&stack, Method::GET, app.url(path), As::Nobody, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {body}");
        let refused = stack
            .client
            .get(app.url(path))
            .bearer_auth("not-a-token-at-all-0000")
            .send()
            .await
            .unwrap();
        assert_eq!(
            refused.status(),
            StatusCode::UNAUTHORIZED,
            "{path} with a wrong token"
        );
        assert!(
            refused.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Basic "),
            "{path}: a browser is asked for the token"
        );
        for who in [
            As::Bearer(READ_TOKEN),
            As::Bearer(TEST_ADMIN_TOKEN),
            As::Basic("alice", READ_TOKEN),
        ] {
            let (status, body) = call(&stack, Method::GET, app.url(path), who, None).await;
            assert_eq!(status, StatusCode::OK, "{path} as {who:?}: {body}");
        }
        // REGISTRY_TOKEN is for the MLflow routes only.
        let (status, _) = call(
            &stack,
            Method::GET,
            app.url(path),
            As::Bearer(REGISTRY_TOKEN),
            None,
        )
        .await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "{path} with the registry token"
        );
    }

    let mlflow_reads = [
        "/api/2.0/mlflow/registered-models/search".to_owned(),
        format!("/api/2.0/mlflow/registered-models/get?name={MODEL}"),
        format!("/api/2.0/mlflow/registered-models/alias?name={MODEL}&alias=champion"),
        "/api/2.0/mlflow/model-versions/search".to_owned(),
        format!("/api/2.0/mlflow-artifacts/artifacts/models/{MODEL}/1/model.json"),
    ];
    for path in &mlflow_reads {
        let (status, body) = call(&stack, Method::GET, app.url(path), As::Nobody, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {body}");
        assert!(
            body.contains("UNAUTHENTICATED"),
            "{path}: MLflow's error shape: {body}"
        );
        for who in [
            As::Bearer(READ_TOKEN),
            As::Bearer(REGISTRY_TOKEN),
            As::Bearer(TEST_ADMIN_TOKEN),
            As::Basic("mlflow-user", READ_TOKEN),
        ] {
            let (status, body) = call(&stack, Method::GET, app.url(path), who, None).await;
            assert_eq!(status, StatusCode::OK, "{path} as {who:?}: {body}");
        }
    }

    for path in ["/health", "/ready", "/metrics", "/openapi.json"] {
        let (status, body) = call(&stack, Method::GET, app.url(path), As::Nobody, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    let document: Value = stack
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let schemes = &document["components"]["securitySchemes"];
    for name in ["admin_token", "registry_token", "read_token", "read_basic"] {
        assert!(schemes.get(name).is_some(), "{name} is declared: {schemes}");
    }
    assert_eq!(
        document["paths"]["/jobs"]["get"]["security"][0],
        json!({"read_token": []})
    );
    assert!(
        document["paths"]["/health"]["get"]
            .get("security")
            .is_none()
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn scoped_tokens_do_only_their_own_writes_and_each_manual_action_is_audited_with_its_actor() {
    let stack = Stack::start().await;
    let v2 = register_second_version(&stack.db, &stack.s3).await;
    let app = scoped_scheduler(&stack, true).await;
    let alias_url = app.url("/api/2.0/mlflow/registered-models/alias");
    let challenger =
        json!({"name": MODEL, "alias": "challenger", "version": v2.version.to_string()});

    // Refused writes: nothing happens, nothing is recorded.
    for who in [
        As::Nobody,
        As::Bearer(READ_TOKEN),
        As::Bearer(REGISTRY_TOKEN),
    ] {
        let (status, body) =
            call(&stack, Method::POST, app.url("/jobs/ingest/run"), who, None).await;
        assert!(
            matches!(status.as_u16(), 401 | 403),
            "trigger as {who:?}: {status} {body}"
        );
        let (status, body) = call(
            &stack,
            Method::POST,
            app.url("/jobs/ingest/pause"),
            who,
            None,
        )
        .await;
        assert!(
            matches!(status.as_u16(), 401 | 403),
            "pause as {who:?}: {status} {body}"
        );
    }
    for who in [As::Nobody, As::Bearer(READ_TOKEN)] {
        let (status, body) = call(
            &stack,
            Method::POST,
            alias_url.clone(),
            who,
            Some(challenger.clone()),
        )
        .await;
        assert!(
            matches!(status.as_u16(), 401 | 403),
            "alias as {who:?}: {status} {body}"
        );
    }
    let bad_actor = stack
        .client
        .post(app.url("/jobs/ingest/pause"))
        .bearer_auth(TEST_ADMIN_TOKEN)
        .header("x-actor", "<script>")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_actor.status(), StatusCode::BAD_REQUEST);
    assert_eq!(stack.count("select count(*) from ops.audit_log").await, 0);
    assert_eq!(stack.count("select count(*) from ops.job_runs").await, 0);
    assert_eq!(
        stack
            .count("select count(*) from ops.job_state where paused")
            .await,
        0
    );

    // Allowed writes, each by someone.
    let admin = |request: RequestBuilder| {
        request
            .bearer_auth(TEST_ADMIN_TOKEN)
            .header("x-actor", "ci-bot")
    };
    for (path, expected) in [
        ("/jobs/ingest/run", 202),
        ("/jobs/ingest/pause", 200),
        ("/jobs/ingest/resume", 200),
    ] {
        let response = admin(stack.client.post(app.url(path)))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), expected, "{path}");
    }
    let moved = stack
        .client
        .post(&alias_url)
        .bearer_auth(REGISTRY_TOKEN)
        .header("x-actor", "alice")
        .json(&challenger)
        .send()
        .await
        .unwrap();
    assert_eq!(
        moved.status(),
        StatusCode::OK,
        "{}",
        moved.text().await.unwrap()
    );
    let (status, body) = call(
        &stack,
        Method::DELETE,
        alias_url.clone(),
        As::Basic("bob", REGISTRY_TOKEN),
        Some(json!({"name": MODEL, "alias": "challenger"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let champion = json!({"name": MODEL, "alias": "champion", "version": v2.version.to_string()});
    let (status, body) = call(
        &stack,
        Method::POST,
        alias_url,
        As::Bearer(TEST_ADMIN_TOKEN),
        Some(champion),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let rows: Vec<(String, String, String, String)> = sqlx::query_as(
        "select token_scope, actor, action, target from ops.audit_log order by audit_id",
    )
    .fetch_all(&stack.db.pool)
    .await
    .unwrap();
    let target = |alias: &str| format!("{MODEL}@{alias}");
    let expected = vec![
        ("admin", "ci-bot", "job.trigger", "ingest".to_owned()),
        ("admin", "ci-bot", "job.pause", "ingest".to_owned()),
        ("admin", "ci-bot", "job.resume", "ingest".to_owned()),
        ("registry", "alice", "alias.set", target("challenger")),
        ("registry", "bob", "alias.delete", target("challenger")),
        ("admin", "admin", "model.promote", target("champion")),
    ];
    let expected: Vec<(String, String, String, String)> = expected
        .into_iter()
        .map(|(s, a, k, t)| (s.to_owned(), a.to_owned(), k.to_owned(), t))
        .collect();
    assert_eq!(rows, expected);
    // The trigger's line names the run it started, which exists.
    assert_eq!(
        stack
            .count(
                "select count(*) from ops.audit_log a join ops.job_runs r
                   on r.job_run_id = (a.details->>'job_run_id')::uuid
                 where a.action = 'job.trigger' and r.trigger = 'manual'"
            )
            .await,
        1
    );

    let audit: Vec<Value> = stack
        .client
        .get(app.url("/audit?limit=2"))
        .bearer_auth(READ_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(audit.len(), 2);
    assert_eq!(audit[0]["action"], "model.promote");
    assert_eq!(audit[1]["actor"], "bob");
    let (status, page) = call(
        &stack,
        Method::GET,
        app.url("/ui/audit"),
        As::Basic("carol", READ_TOKEN),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for shown in [
        "ci-bot",
        "alice",
        "bob",
        "job.pause",
        "alias.delete",
        "model.promote",
        "churn-classifier@champion",
    ] {
        assert!(
            page.contains(shown),
            "the console's audit page shows {shown}"
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_read_token_reads_stay_open_and_writes_still_need_their_tokens() {
    let stack = Stack::start().await;
    let app = scoped_scheduler(&stack, false).await;
    for path in [
        "/",
        "/ui/audit",
        "/jobs",
        "/audit",
        "/api/2.0/mlflow/registered-models/search",
    ] {
        let (status, body) = call(&stack, Method::GET, app.url(path), As::Nobody, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    let document: Value = stack
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(document["paths"]["/jobs"]["get"].get("security").is_none());
    let (status, _) = call(
        &stack,
        Method::POST,
        app.url("/jobs/ingest/run"),
        As::Nobody,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = call(
        &stack,
        Method::POST,
        app.url("/jobs/ingest/run"),
        As::Bearer(REGISTRY_TOKEN),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The run a trigger started ends, and its record is readable without a token.
    let run_id = one_run(&stack, &app).await;
    wait_until(Duration::from_secs(30), || async {
        let run: Value = stack
            .client
            .get(app.url(&format!("/runs/{run_id}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        run["status"] != "running"
    })
    .await;
    app.stop().await;
}
