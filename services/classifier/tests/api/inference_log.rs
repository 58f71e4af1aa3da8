//! The inference log: every prediction served is a row with the answer's request id, probability and
//! version; a full queue still answers and counts its losses; sampling and `off`; SIGTERM flushes.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use churn_service::testing::TestService;
use futures::StreamExt;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::{customer_json, seed, spawn_with_champion};

/// A logged row as the tests compare it with an answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub item: i32,
    pub endpoint: String,
    pub source: String,
    pub caller: String,
    pub customer_id: Option<String>,
    pub model_version: i32,
    pub arm: String,
    pub probability: f64,
}

type LogRow = (
    uuid::Uuid,
    i32,
    String,
    String,
    String,
    Option<String>,
    i32,
    String,
    f64,
);

/// Every logged row by (request id as a ULID, item, arm).
pub async fn rows(pool: &PgPool) -> HashMap<(String, i32, String), Row> {
    let rows: Vec<LogRow> = sqlx::query_as(
        "select request_id, item, endpoint, source, caller, customer_id, model_version, arm, \
             probability from serving.inference_log",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    rows.into_iter()
        .map(
            |(id, item, endpoint, source, caller, customer_id, model_version, arm, probability)| {
                let key = (ulid::Ulid::from(id).to_string(), item, arm.clone());
                let row = Row {
                    item,
                    endpoint,
                    source,
                    caller,
                    customer_id,
                    model_version,
                    arm,
                    probability,
                };
                (key, row)
            },
        )
        .collect()
}

pub async fn count(pool: &PgPool) -> i64 {
    sqlx::query_scalar("select count(*) from serving.inference_log")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Waits until the log holds `expected` rows (the writer flushes every INFERENCE_LOG_FLUSH_MS), then
/// one more flush so that a surplus would show.
pub async fn wait_for_rows(pool: &PgPool, expected: i64) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(pool).await < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    count(pool).await
}

/// A counter's value in /metrics (0 when absent).
pub async fn metric(app: &TestService, line_start: &str) -> f64 {
    let text = app.get("/metrics").await.text().await.unwrap();
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn ten_thousand_predictions_and_ten_batches_are_logged_exactly_each_as_answered() {
    let app = spawn_with_champion(&[("INFERENCE_LOG_FLUSH_MS", "20")]).await;
    let customers = Arc::new(seed());
    let calls = futures::stream::iter(0..10_000usize)
        .map(|i| {
            let client = app.client.clone();
            let url = app.url(if i % 10 == 0 {
                "/predict?explain=true"
            } else {
                "/predict"
            });
            let mut body = customer_json(&customers[i % customers.len()]);
            if i % 3 == 0 {
                body["CustomerID"] = json!(format!("c-{i}"));
            }
            async move {
                let response = client.post(url).json(&body).send().await.unwrap();
                assert_eq!(response.status(), 200);
                let header = response.headers()["x-request-id"]
                    .to_str()
                    .unwrap()
                    .to_owned();
                let body: Value = response.json().await.unwrap();
                assert_eq!(body["request_id"], header.as_str());
                (i, body)
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    let mut batch_items = 0;
    let mut batches = Vec::new();
    for b in 0..10usize {
        let size = 10 + b * 7;
        let mut items: Vec<Value> = customers
            .iter()
            .skip(b * 100)
            .take(size)
            .map(customer_json)
            .collect();
        items[0]["contract"] = json!("Forever"); // invalid: answered, never logged
        let (status, body) = crate::post(&app, "/predict/batch", &Value::Array(items)).await;
        assert_eq!(status, 200, "{body}");
        batch_items += size - 1;
        batches.push(body);
    }
    let expected = (calls.len() + batch_items) as i64;
    assert_eq!(wait_for_rows(&app.db.pool, expected).await, expected);
    let logged = rows(&app.db.pool).await;
    for (i, body) in &calls {
        let id = body["request_id"].as_str().unwrap().to_owned();
        let row = &logged[&(id, 0, "champion".to_owned())];
        assert_eq!(row.probability, body["churn_probability"].as_f64().unwrap());
        assert_eq!(
            i64::from(row.model_version),
            body["model_version"].as_i64().unwrap()
        );
        assert_eq!(
            row.endpoint,
            if i % 10 == 0 { "explain" } else { "predict" }
        );
        assert_eq!(row.source, "api");
        assert_eq!(row.caller, "anonymous");
        let customer_id = (i % 3 == 0).then(|| format!("c-{i}"));
        assert_eq!(row.customer_id, customer_id);
    }
    for body in &batches {
        let id = body["request_id"].as_str().unwrap().to_owned();
        for result in body["results"].as_array().unwrap() {
            let item = result["index"].as_i64().unwrap() as i32;
            let row = logged.get(&(id.clone(), item, "champion".to_owned()));
            match result["churn_probability"].as_f64() {
                Some(p) => {
                    let row = row.unwrap();
                    assert_eq!(row.probability, p);
                    assert_eq!(row.source, "batch");
                    assert_eq!(row.endpoint, "batch");
                }
                None => assert!(row.is_none(), "an invalid item is not logged"),
            }
        }
    }
    assert_eq!(
        metric(&app, "inference_log_written_total").await,
        expected as f64
    );
}

#[tokio::test]
async fn the_request_id_is_a_fresh_ulid_and_a_callers_own_id_is_echoed_beside_it() {
    let app = spawn_with_champion(&[]).await;
    let response = app
        .client
        .post(app.url("/predict"))
        .header("x-request-id", "my-own-id")
        .json(&customer_json(&seed()[0]))
        .send()
        .await
        .unwrap();
    let header = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(response.headers()["x-client-request-id"], "my-own-id");
    assert!(header.parse::<ulid::Ulid>().is_ok(), "{header}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["request_id"], header.as_str());
    // Every route gets one.
    let health = app.get("/health").await;
    assert!(
        health.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .parse::<ulid::Ulid>()
            .is_ok()
    );
}

#[tokio::test]
async fn an_invalid_customer_id_is_a_422_naming_the_field_value_and_rule() {
    let app = spawn_with_champion(&[]).await;
    let mut body = customer_json(&seed()[0]);
    body["customer_id"] = json!("x".repeat(129));
    let (status, answer) = crate::post(&app, "/predict", &body).await;
    assert_eq!(status, 422, "{answer}");
    let error = &answer["details"]["errors"][0];
    assert_eq!(error["field"], "customer_id");
    assert!(
        error["rule"].as_str().unwrap().contains("1 to 128"),
        "{error}"
    );
}

#[tokio::test]
async fn the_platforms_own_batches_are_logged_with_the_source_they_declare() {
    let app = spawn_with_champion(&[("INFERENCE_LOG_FLUSH_MS", "20")]).await;
    let items: Vec<Value> = seed().iter().take(3).map(customer_json).collect();
    let mut ids = HashMap::new();
    for source in ["synthetic", "ingested"] {
        let (status, body) = crate::post(
            &app,
            &format!("/predict/batch?source={source}"),
            &Value::Array(items.clone()),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        ids.insert(body["request_id"].as_str().unwrap().to_owned(), source);
    }
    let (status, body) = crate::post(&app, "/predict/batch", &Value::Array(items.clone())).await;
    assert_eq!(status, 200, "{body}");
    ids.insert(body["request_id"].as_str().unwrap().to_owned(), "batch");
    // A caller cannot pass its traffic off as anything else.
    let (status, body) = crate::post(
        &app,
        "/predict/batch?source=api",
        &Value::Array(items.clone()),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("synthetic or ingested"), "{body}");

    assert_eq!(wait_for_rows(&app.db.pool, 9).await, 9);
    for ((id, _, _), row) in rows(&app.db.pool).await {
        assert_eq!(row.source, ids[&id], "request {id}");
        assert_eq!(row.endpoint, "batch");
    }
}

#[tokio::test]
async fn shadow_scores_of_a_batch_are_logged_as_the_shadow_arm() {
    let app = spawn_with_champion(&[("INFERENCE_LOG_FLUSH_MS", "20")]).await;
    crate::shadow::register_challenger(&app).await;
    let items: Vec<Value> = seed().iter().take(5).map(customer_json).collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        let (status, body) = crate::post(
            &app,
            "/predict/batch?shadow=true",
            &Value::Array(items.clone()),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        if body.get("shadow").is_some() {
            break body;
        }
        assert!(Instant::now() < deadline, "the shadow never loaded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let id = body["request_id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(10);
    let logged = loop {
        let logged = rows(&app.db.pool).await;
        if logged.keys().filter(|k| k.0 == id).count() == 10 || Instant::now() > deadline {
            break logged;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for item in 0..5 {
        let shadow = &logged[&(id.clone(), item, "shadow".to_owned())];
        assert_eq!(
            shadow.probability,
            body["shadow"]["churn_probabilities"][item as usize]
                .as_f64()
                .unwrap()
        );
        assert_eq!(shadow.model_version, 2);
        assert!(logged.contains_key(&(id.clone(), item, "champion".to_owned())));
    }
}

#[tokio::test]
async fn a_full_queue_still_answers_and_counts_what_it_could_not_log() {
    let app = spawn_with_champion(&[
        ("INFERENCE_LOG_QUEUE", "1"),
        ("INFERENCE_LOG_BATCH", "1"),
        ("INFERENCE_LOG_FLUSH_MS", "1"),
    ])
    .await;
    // The log's table locked: the writer's COPY waits, the queue of one fills.
    let mut lock = app.db.pool.begin().await.unwrap();
    sqlx::query("lock table serving.inference_log in access exclusive mode")
        .execute(&mut *lock)
        .await
        .unwrap();
    for c in seed().iter().take(50) {
        let (status, body) = crate::post(&app, "/predict", &customer_json(c)).await;
        assert_eq!(status, 200, "{body}");
    }
    let dropped = metric(&app, "inference_log_dropped_total{reason=\"queue_full\"}").await;
    assert!(dropped >= 1.0, "{dropped}");
    lock.rollback().await.unwrap();
    let expected = 50 - dropped as i64;
    assert_eq!(wait_for_rows(&app.db.pool, expected).await, expected);
}

#[tokio::test]
async fn sampling_keeps_some_requests_whole_and_off_keeps_none() {
    let app = spawn_with_champion(&[
        ("INFERENCE_LOG", "sample:0.5"),
        ("INFERENCE_LOG_FLUSH_MS", "20"),
    ])
    .await;
    let customers = seed();
    let mut ids = Vec::new();
    for c in customers.iter().take(200) {
        let (status, body) = crate::post(&app, "/predict", &customer_json(c)).await;
        assert_eq!(status, 200);
        ids.push(body["request_id"].as_str().unwrap().to_owned());
    }
    let sampled_out = metric(&app, "inference_log_sampled_out_total").await as i64;
    let kept = wait_for_rows(&app.db.pool, 200 - sampled_out).await;
    assert_eq!(kept, 200 - sampled_out);
    assert!(kept > 0 && kept < 200, "{kept} of 200 kept at p = 0.5");
    let logged = rows(&app.db.pool).await;
    assert!(logged.keys().all(|k| ids.contains(&k.0)));

    let off = spawn_with_champion(&[("INFERENCE_LOG", "off")]).await;
    for c in customers.iter().take(20) {
        let (status, _) = crate::post(&off, "/predict", &customer_json(c)).await;
        assert_eq!(status, 200);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(count(&off.db.pool).await, 0);
}

#[tokio::test]
async fn after_sigterm_under_load_every_answered_prediction_has_its_row() {
    // The database and object store with a champion, served by the real binary.
    let app = spawn_with_champion(&[]).await;
    let port = churn_testkit::free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_classifier"))
        .env_clear()
        .envs(app.s3.env())
        .env("DATABASE_URL", &app.db.url)
        .env("CLASSIFIER_PORT", port.to_string())
        .env("INFERENCE_LOG_FLUSH_MS", "500")
        .env("SHUTDOWN_GRACE_SECS", "5")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let address = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = client.get(format!("{address}/ready")).send().await;
        if ready.is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the classifier never became ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let customers = Arc::new(seed());
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let (client, address, customers, stop) = (
                client.clone(),
                address.clone(),
                customers.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                let mut answered = Vec::new();
                let mut i = w;
                while !stop.load(Ordering::Relaxed) {
                    let body = customer_json(&customers[i % customers.len()]);
                    i += 8;
                    let Ok(response) = client
                        .post(format!("{address}/predict"))
                        .json(&body)
                        .send()
                        .await
                    else {
                        break;
                    };
                    if response.status() == 200 {
                        let Ok(body) = response.json::<Value>().await else {
                            continue;
                        };
                        answered.push(body["request_id"].as_str().unwrap().to_owned());
                    }
                }
                answered
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "still running after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    stop.store(true, Ordering::Relaxed);
    assert!(status.success(), "{status}");
    let mut answered = Vec::new();
    for worker in workers {
        answered.extend(worker.await.unwrap());
    }
    assert!(!answered.is_empty());
    let logged = rows(&app.db.pool).await;
    let missing: Vec<&String> = answered
        .iter()
        .filter(|id| !logged.contains_key(&((*id).clone(), 0, "champion".to_owned())))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} answered requests have no row",
        missing.len(),
        answered.len()
    );
}
