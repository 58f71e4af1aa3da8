//! Hot swap: a new champion is served within a second with no failed request; an object-store outage
//! leaves the served model in place.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use churn_core::VersionNumber;
use churn_models::classifier;
use serde_json::Value;

use crate::{customer_json, model, register_champion, seed, spawn_with_champion, wait_for_version};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn promoting_while_requests_are_in_flight_fails_none_and_switches_within_a_second() {
    let app = spawn_with_champion(&[("MODEL_POLL_SECS", "60")]).await;
    let body = customer_json(&seed()[5]);
    let stop = Arc::new(AtomicBool::new(false));
    // Eight clients hammer /predict and record (when, status, version) of every answer.
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let (client, url, body, stop) = (
                app.client.clone(),
                app.url("/predict"),
                body.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                let mut seen = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let response = client.post(&url).json(&body).send().await;
                    let at = Instant::now();
                    match response {
                        Ok(r) => {
                            let status = r.status().as_u16();
                            let json: Value = r.json().await.unwrap_or_default();
                            seen.push((at, status, json["model_version"].as_i64().unwrap_or(-1)));
                        }
                        Err(e) => panic!("a request failed: {e}"),
                    }
                }
                seen
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Polling is set to a minute, so the switch below can only come from LISTEN/NOTIFY.
    let moved_at = Instant::now();
    let v2 = register_champion(&app, &model()).await;
    let registered_at = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut answers = Vec::new();
    for c in clients {
        answers.extend(c.await.unwrap());
    }
    assert!(answers.len() > 50, "only {} answers", answers.len());
    assert!(
        answers.iter().all(|(_, status, _)| *status == 200),
        "every request succeeds"
    );
    assert!(answers.iter().any(|(at, _, v)| *at < moved_at && *v == 1));
    // Within a second of the alias move every answer comes from the new version.
    let late: Vec<_> = answers
        .iter()
        .filter(|(at, _, _)| *at > registered_at + Duration::from_secs(1))
        .collect();
    assert!(!late.is_empty());
    assert!(
        late.iter().all(|(_, _, v)| *v == i64::from(v2.version)),
        "{late:?}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn with_the_object_store_down_predictions_continue_and_ready_is_degraded() {
    let mut app = spawn_with_champion(&[]).await;
    app.s3.stop().await;
    let (status, body) = crate::post(&app, "/predict", &customer_json(&seed()[1])).await;
    assert_eq!(status, 200, "{body}");
    let ready = app.get("/ready").await;
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "degraded", "{body}");

    // A new champion cannot be fetched while the store is down: the old one keeps serving, and the
    // failure shows on /ready until the store is back.
    let registry = crate::registry(&app);
    let v1 = registry
        .get(classifier::MODEL_NAME, VersionNumber::new(1).unwrap())
        .await
        .unwrap();
    let artifact_key = v1.artifact_key.clone();
    sqlx::query("insert into registry.model_versions (model_name, version, artifact_key, artifact_sha256, artifact_size, flavor)
                 select model_name, 2, artifact_key || '-copy', artifact_sha256, artifact_size, flavor
                 from registry.model_versions where version = 1")
        .execute(&app.db.pool)
        .await
        .unwrap();
    registry
        .set_alias(
            classifier::MODEL_NAME,
            &churn_registry::Alias::CHAMPION,
            VersionNumber::new(2).unwrap(),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, body) = crate::post(&app, "/predict", &customer_json(&seed()[1])).await;
    assert_eq!(status, 200);
    assert_eq!(body["model_version"], 1);
    let body: Value = app.get("/ready").await.json().await.unwrap();
    assert_eq!(body["checks"]["model_refresh"]["ok"], false, "{body}");

    // Back up, with the copy in place: the next poll loads version 2.
    app.s3.restart().await;
    let dir = app.s3.bucket_dir();
    std::fs::copy(
        dir.join(&artifact_key),
        dir.join(format!("{artifact_key}-copy")),
    )
    .unwrap();
    wait_for_version(&app, 2, Duration::from_secs(5)).await;
    app.shutdown().await;
}

#[tokio::test]
async fn a_tampered_champion_is_refused_and_the_served_model_stays() {
    let app = spawn_with_champion(&[]).await;
    let v2 = register_champion_without_reload(&app).await;
    std::fs::write(app.s3.bucket_dir().join(&v2.artifact_key), b"{}").unwrap();
    crate::registry(&app)
        .set_alias(
            classifier::MODEL_NAME,
            &churn_registry::Alias::CHAMPION,
            v2.version,
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let body: Value = app.get("/model").await.json().await.unwrap();
    assert_eq!(body["model_version"], 1);
    let ready: Value = app.get("/ready").await.json().await.unwrap();
    // The failed refresh shows as degraded; its cause (a checksum mismatch) goes to the log only.
    assert_eq!(
        ready["checks"]["model_refresh"]["status"], "degraded",
        "{ready}"
    );
    assert!(!ready.to_string().contains("checksum"), "{ready}");
    app.shutdown().await;
}

/// Registers a second version without moving the champion alias.
async fn register_champion_without_reload(
    app: &churn_service::testing::TestService,
) -> churn_registry::ModelVersion {
    let info = classifier::TrainingInfo {
        data_path: "seed.csv".into(),
        data_sha256: "d".repeat(64),
        train_rows: 3500,
        holdout_rows: 0,
        split_seed: 3,
        code_version: "test".into(),
        profile: None,
    };
    classifier::register(&crate::registry(app), &model(), None, &info)
        .await
        .unwrap()
}
