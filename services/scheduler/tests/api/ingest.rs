//! Ingestion and batch scoring through the scheduler: MinIO's webhook (and its secret), the polling
//! jobs, `POST /ingest`, and `score/` files scored as `POST /predict` scores them.

use std::time::Duration;

use churn_service::testing::{TEST_ADMIN_TOKEN, post_head_only};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde_json::json;

use crate::stack::{Stack, wait_until};

const EVENT_SECRET: &str = "minio-webhook-secret-0123456789";

/// Waits until at least `n` landed files are processed.
async fn wait_for_processed(stack: &Stack, n: i64, limit: Duration) {
    wait_until(limit, || async {
        stack
            .count("select count(*) from ops.ingested_files where status = 'processed'")
            .await
            >= n
    })
    .await;
}

/// The seed file's header and rows `from..to`, as CSV text.
fn seed_csv(from: usize, to: usize) -> String {
    let seed = std::fs::read_to_string(churn_testkit::seed_data_path()).unwrap();
    let mut lines = seed.lines();
    let mut out = format!("{}\n", lines.next().unwrap());
    for line in lines.skip(from).take(to - from) {
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// A bucket notification exactly as MinIO posts it for a PUT of `key`.
fn minio_event(bucket: &str, key: &str) -> serde_json::Value {
    let encoded = key.replace('/', "%2F").replace(' ', "+");
    json!({
        "EventName": "s3:ObjectCreated:Put",
        "Key": format!("{bucket}/{key}"),
        "Records": [{
            "eventVersion": "2.0",
            "eventSource": "minio:s3",
            "awsRegion": "",
            "eventTime": "2026-11-26T03:00:00.000Z",
            "eventName": "s3:ObjectCreated:Put",
            "userIdentity": {"principalId": "minioadmin"},
            "requestParameters": {"principalId": "minioadmin", "region": "", "sourceIPAddress": "127.0.0.1"},
            "responseElements": {"x-amz-id-2": "dd9025bab4ad464b", "x-amz-request-id": "1729E6A6F4B9E4C6",
                "x-minio-deployment-id": "9f1c", "x-minio-origin-endpoint": "http://127.0.0.1:9000"},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "Config",
                "bucket": {"name": bucket, "ownerIdentity": {"principalId": "minioadmin"}, "arn": format!("arn:aws:s3:::{bucket}")},
                "object": {"key": encoded, "size": 1024, "eTag": "a4c3b2", "contentType": "text/csv",
                    "userMetadata": {"content-type": "text/csv"}, "sequencer": "1729E6A6F4D5C3A0"}
            },
            "source": {"host": "127.0.0.1", "port": "", "userAgent": "MinIO (linux; amd64) minio-go/v7.0.70"}
        }]
    })
}

async fn put(store: &dyn ObjectStore, key: &str, body: String) {
    store
        .put(&Path::from(key), PutPayload::from(body.into_bytes()))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_webhook_and_the_polling_job_ingest_landed_files_once() {
    let stack = Stack::start().await;
    let app = stack
        .scheduler(&[
            ("S3_EVENT_SECRET", EVENT_SECRET),
            ("INGEST_SCHEDULE", "manual"),
            ("SCORE_SCHEDULE", "manual"),
            ("GENERATE_ENABLED", "false"),
        ])
        .await;
    let store = stack.s3.open().store;
    put(store.as_ref(), "landing/hooked file.csv", seed_csv(0, 40)).await;
    let event = minio_event(&stack.s3.bucket, "landing/hooked file.csv");
    let post_event = |secret: Option<&'static str>| {
        let mut request = stack.client.post(app.url("/events/s3")).json(&event);
        if let Some(secret) = secret {
            request = request.header("authorization", secret);
        }
        request.send()
    };

    assert_eq!(post_event(None).await.unwrap().status(), 401);
    // Refused before the body is read: a caller without the secret cannot make the scheduler hold one.
    for header in ["", "authorization: not-the-secret-at-all\r\n"] {
        let (status, took) = post_head_only(&app.address, "/events/s3", header).await;
        assert!(status.contains("401"), "{header:?}: {status}");
        assert!(took < Duration::from_secs(2), "{took:?}");
    }
    assert_eq!(
        post_event(Some("not-the-secret-at-all"))
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        stack
            .count("select count(*) from churn.customers where source = 'ingested'")
            .await,
        0
    );
    let accepted = post_event(Some(EVENT_SECRET)).await.unwrap();
    assert_eq!(accepted.status(), 202);
    let body: serde_json::Value = accepted.json().await.unwrap();
    assert_eq!(body["accepted"], json!(["landing/hooked file.csv"]));
    wait_for_processed(&stack, 1, Duration::from_secs(10)).await;
    assert_eq!(
        stack
            .count("select count(*) from churn.customers where source = 'ingested'")
            .await,
        40
    );

    // MinIO redelivers: nothing changes.
    assert_eq!(post_event(Some(EVENT_SECRET)).await.unwrap().status(), 202);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        stack
            .count("select count(*) from churn.customers where source = 'ingested'")
            .await,
        40
    );
    assert_eq!(
        stack.count("select count(*) from ops.ingested_files").await,
        1
    );

    // A file no event announced is found by the polling job.
    put(store.as_ref(), "landing/quiet.csv", seed_csv(40, 70)).await;
    let run = stack.run_job(&app, "ingest").await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["rows_affected"], 30);
    assert_eq!(
        stack
            .count("select count(*) from churn.customers where source = 'ingested'")
            .await,
        70
    );

    // POST /ingest: the same path, answering with the summary.
    put(store.as_ref(), "landing/direct.csv", seed_csv(70, 75)).await;
    let refused = stack
        .client
        .post(app.url("/ingest"))
        .json(&json!({"key": "landing/direct.csv"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let summary: serde_json::Value = stack
        .client
        .post(app.url("/ingest"))
        .bearer_auth(TEST_ADMIN_TOKEN)
        .json(&json!({"key": format!("s3://{}/landing/direct.csv", stack.s3.bucket)}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(summary["outcome"], "processed", "{summary}");
    assert_eq!(summary["rows_inserted"], 5);
    // A key of another bucket: refused naming the key, never the store's own location.
    let elsewhere = stack
        .client
        .post(app.url("/ingest"))
        .bearer_auth(TEST_ADMIN_TOKEN)
        .json(&json!({"key": "s3://another-bucket/landing/direct.csv"}))
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), 400);
    let body = elsewhere.text().await.unwrap();
    assert!(body.contains("another-bucket"), "{body}");
    assert!(!body.contains(&stack.s3.bucket), "{body}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_under_score_is_scored_as_predict_scores_it_and_only_once() {
    let stack = Stack::start().await;
    let app = stack
        .scheduler(&[
            ("S3_EVENT_SECRET", EVENT_SECRET),
            ("INGEST_SCHEDULE", "manual"),
            ("SCORE_SCHEDULE", "manual"),
            ("GENERATE_ENABLED", "false"),
        ])
        .await;
    let store = stack.s3.open().store;
    let mut csv = seed_csv(0, 30);
    // One invalid row (line 4): it is quarantined, not scored.
    let broken: Vec<String> = csv
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 3 {
                l.replace(",Month-to-month,", ",Forever,")
            } else {
                l.to_owned()
            }
        })
        .collect();
    csv = broken.join("\n");
    put(store.as_ref(), "score/batch.csv", csv).await;
    let accepted = stack
        .client
        .post(app.url("/events/s3"))
        .header("authorization", format!("Bearer {EVENT_SECRET}"))
        .json(&minio_event(&stack.s3.bucket, "score/batch.csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 202);
    wait_until(Duration::from_secs(20), || async {
        stack.count("select count(*) from ops.scored_files").await == 1
    })
    .await;

    let scored = store
        .get(&Path::from("scored/batch.csv"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let mut reader = csv::Reader::from_reader(scored.as_ref());
    let header = reader.headers().unwrap().clone();
    let p_col = header
        .iter()
        .position(|h| h == "churn_probability")
        .unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let customers: Vec<churn_core::Customer> = churn_core::CustomerReader::new(scored.as_ref())
        .unwrap()
        .map(|r| r.unwrap().customer)
        .collect();
    assert_eq!(rows.len(), 29);
    let classifier = churn_api::ClassifierClient::new(
        format!("http://127.0.0.1:{}", stack.classifier_port)
            .parse()
            .unwrap(),
        None,
        Duration::from_secs(10),
    );
    for (row, customer) in rows.iter().zip(&customers) {
        let predicted = classifier.predict(customer, false).await.unwrap();
        let written: f64 = row[p_col].parse().unwrap();
        assert_eq!(written, predicted.churn_probability);
    }
    let quarantine = store
        .get(&Path::from("quarantine/score/batch.csv.errors.csv"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let quarantine = String::from_utf8(quarantine.to_vec()).unwrap();
    assert!(
        quarantine.contains("contract = \"\"Forever\"\""),
        "{quarantine}"
    );

    // Dropped again (the polling job finds it): not scored twice by the same version.
    let run = stack.run_job(&app, "score").await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["rows_affected"], 0);
    assert_eq!(
        run["details"]["files"][0]["outcome"], "already_scored",
        "{run}"
    );
    assert_eq!(
        stack.count("select count(*) from ops.scored_files").await,
        1
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_events_at_once_stay_within_the_pool_and_ingest_every_file_exactly_once() {
    let stack = Stack::start().await;
    // The scheduler's connections carry a name of their own, so they can be counted apart from the
    // test's.
    let url = format!("{}?application_name=scheduler-under-test", stack.db.url);
    let app = stack
        .scheduler(&[
            ("S3_EVENT_SECRET", EVENT_SECRET),
            ("INGEST_SCHEDULE", "manual"),
            ("SCORE_SCHEDULE", "manual"),
            ("GENERATE_ENABLED", "false"),
            ("DATABASE_URL", &url),
            ("DATABASE_MAX_CONNECTIONS", "4"),
            ("INGEST_QUEUE", "50"),
        ])
        .await;
    let store = stack.s3.open().store;
    let keys: Vec<String> = (0..200)
        .map(|i| format!("landing/storm-{i:03}.csv"))
        .collect();
    for (i, key) in keys.iter().enumerate() {
        put(store.as_ref(), key, seed_csv(i * 5, i * 5 + 5)).await;
    }

    let most = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (pool, most, done) = (stack.db.pool.clone(), most.clone(), done.clone());
        tokio::spawn(async move {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let n: i64 = sqlx::query_scalar(
                    "select count(*) from pg_stat_activity where application_name = 'scheduler-under-test'",
                )
                .fetch_one(&pool)
                .await
                .unwrap();
                most.fetch_max(n, std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let mut requests = tokio::task::JoinSet::new();
    for key in &keys {
        let request = stack
            .client
            .post(app.url("/events/s3"))
            .header("authorization", EVENT_SECRET)
            .json(&minio_event(&stack.s3.bucket, key));
        requests.spawn(request.send());
    }
    let answers = requests.join_all().await;
    let (mut accepted, mut deferred) = (0, 0);
    for answer in answers {
        let answer = answer.unwrap();
        assert_eq!(answer.status(), 202);
        let body: serde_json::Value = answer.json().await.unwrap();
        accepted += body["accepted"].as_array().unwrap().len();
        deferred += body["deferred"].as_array().unwrap().len();
    }
    assert_eq!(accepted + deferred, 200);
    assert!(deferred > 0, "a queue of 50 took all 200 events");
    wait_for_processed(&stack, accepted as i64, Duration::from_secs(60)).await;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    sampler.await.unwrap();
    let most = most.load(std::sync::atomic::Ordering::Relaxed);
    assert!(most <= 4, "{most} connections with a pool of 4");
    assert!(
        most >= 1,
        "the sampler never saw the scheduler's connections"
    );

    // What the webhook deferred is still in landing/, for the polling job. (A job run also holds its
    // lock on a connection of its own, outside the pool: that is why the storm is measured before it.)
    let run = stack.run_job(&app, "ingest").await;
    assert_eq!(run["status"], "succeeded", "{run}");
    wait_for_processed(&stack, 200, Duration::from_secs(60)).await;
    assert_eq!(
        stack.count("select count(*) from ops.ingested_files").await,
        200
    );
    // Every row once: inserted or rejected, and each inserted row is one customer.
    assert_eq!(
        stack
            .count("select sum(rows_total)::int8 from ops.ingested_files")
            .await,
        1000
    );
    assert_eq!(
        stack
            .count("select count(*) from churn.customers where source = 'ingested'")
            .await,
        stack
            .count("select sum(rows_inserted)::int8 from ops.ingested_files")
            .await
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_above_the_async_threshold_answers_202_with_an_id_that_later_reports_processed() {
    let stack = Stack::start().await;
    let app = stack
        .scheduler(&[
            ("INGEST_ASYNC_BYTES", "4096"),
            ("GENERATE_ENABLED", "false"),
        ])
        .await;
    let store = stack.s3.open().store;
    let large = seed_csv(0, 200);
    assert!(large.len() > 4096);
    put(store.as_ref(), "landing/large.csv", large).await;
    put(store.as_ref(), "landing/small.csv", seed_csv(300, 305)).await;

    let accepted = stack
        .client
        .post(app.url("/ingest"))
        .bearer_auth(TEST_ADMIN_TOKEN)
        .json(&json!({"key": "landing/large.csv"}))
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 202);
    let location = accepted.headers()["location"].to_str().unwrap().to_owned();
    let body: serde_json::Value = accepted.json().await.unwrap();
    let file_id = body["file_id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/ingest/files/{file_id}"));
    assert_eq!(body["location"], location.as_str());
    assert_eq!(body["object_key"], "landing/large.csv");

    let status = || async {
        stack
            .client
            .get(app.url(&location))
            .send()
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .unwrap()
    };
    wait_until(Duration::from_secs(60), || async {
        status().await["status"] != "processing"
    })
    .await;
    let done = status().await;
    assert_eq!(done["status"], "processed", "{done}");
    assert_eq!(done["file_id"], file_id.as_str());
    assert_eq!(done["rows_inserted"], 200, "{done}");
    assert_eq!(done["final_key"], "processed/large.csv", "{done}");

    // A file under the threshold still answers with its summary at once.
    let small = stack
        .client
        .post(app.url("/ingest"))
        .bearer_auth(TEST_ADMIN_TOKEN)
        .json(&json!({"key": "landing/small.csv"}))
        .send()
        .await
        .unwrap();
    assert_eq!(small.status(), 200);
    let summary: serde_json::Value = small.json().await.unwrap();
    assert_eq!(summary["outcome"], "processed", "{summary}");
    let missing = stack
        .client
        .get(app.url(&format!("/ingest/files/{}", uuid::Uuid::new_v4())))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    app.stop().await;
}
