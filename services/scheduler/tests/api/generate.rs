//! The generate loop with the real synthesizer, classifier, PostgreSQL and S3 test server: exact counts,
//! id order, faults (killed connections, a stopped classifier), replicas, the jobs API.

use std::time::Duration;

use churn_service::testing::TEST_ADMIN_TOKEN;
use serde_json::Value;
use uuid::Uuid;

use crate::stack::{Stack, wait_until};

#[tokio::test(flavor = "multi_thread")]
async fn n_runs_write_exactly_n_batches_each_customer_with_one_synthesis_and_one_prediction_in_id_order()
 {
    let stack = Stack::start().await;
    let scheduler = stack
        .scheduler(&[
            ("GENERATE_SCHEDULE", "manual"),
            ("GENERATE_CUSTOMERS_PER_RUN", "1500"),
            ("GENERATE_BATCH_SIZE", "500"),
        ])
        .await;
    for _ in 0..3 {
        let started = stack
            .post(&scheduler, "/jobs/generate/run", Some(TEST_ADMIN_TOKEN))
            .await;
        assert_eq!(started.status(), 202);
        let id: Value = started.json().await.unwrap();
        let run = scheduler.url(&format!("/runs/{}", id["job_run_id"].as_str().unwrap()));
        wait_until(Duration::from_secs(60), || async {
            let body: Value = stack
                .client
                .get(&run)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body["status"] == "succeeded"
        })
        .await;
    }
    assert_eq!(stack.check_books().await, 4500);
    // Ids increase in insertion order: the predictions' identity column numbers rows as they are
    // inserted (a heap's physical order is not insertion order: free space is reused).
    let ids: Vec<Uuid> =
        sqlx::query_scalar("select customer_id from churn.classified order by classification_id")
            .fetch_all(&stack.db.pool)
            .await
            .unwrap();
    let disorder: Vec<(usize, Uuid, Uuid)> = ids
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w[0] >= w[1])
        .map(|(i, w)| (i, w[0], w[1]))
        .take(5)
        .collect();
    assert!(
        disorder.is_empty(),
        "ids not strictly increasing: {disorder:?}"
    );
    assert_eq!(ids.len(), 4500);
    let runs: Vec<(i64, String)> = sqlx::query_as(
        "select rows_affected, trigger from ops.job_runs where job_name = 'generate' order by started_at",
    )
    .fetch_all(&stack.db.pool)
    .await
    .unwrap();
    assert_eq!(runs, vec![(1500, "manual".to_owned()); 3]);
    let metrics = stack
        .client
        .get(scheduler.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for series in [
        "job_runs_total{job=\"generate\",status=\"succeeded\"}",
        "job_run_duration_seconds_bucket{job=\"generate\"",
        "job_last_success_timestamp_seconds{job=\"generate\"}",
        "customers_written_total",
        "generate_stage_seconds_bucket{stage=\"synthesize\"",
        "generate_stage_seconds_bucket{stage=\"classify\"",
        "generate_stage_seconds_bucket{stage=\"write\"",
    ] {
        assert!(metrics.contains(series), "{series} missing from /metrics");
    }
    scheduler.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_database_connections_mid_loop_lose_and_duplicate_nothing_and_the_loop_resumes() {
    let stack = Stack::start().await;
    let scheduler = stack
        .scheduler(&[
            ("GENERATE_SCHEDULE", "continuous"),
            ("GENERATE_RATE", "0"),
            ("GENERATE_BATCH_SIZE", "500"),
            ("GENERATE_RUN_SECS", "3"),
        ])
        .await;
    wait_until(Duration::from_secs(30), || async {
        stack.count("select count(*) from churn.customers").await >= 2000
    })
    .await;
    for _ in 0..3 {
        assert!(stack.kill_connections().await > 0);
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    let after_kills = stack.count("select count(*) from churn.customers").await;
    wait_until(Duration::from_secs(30), || async {
        stack.count("select count(*) from churn.customers").await >= after_kills + 3000
    })
    .await;
    stack.pause_and_settle(&scheduler, "generate").await;
    let customers = stack.check_books().await;
    assert_eq!(customers % 500, 0, "only whole batches are written");
    scheduler.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_loop_waits_while_the_classifier_is_down_and_no_customer_lacks_a_prediction() {
    let mut stack = Stack::start().await;
    let scheduler = stack
        .scheduler(&[
            ("GENERATE_SCHEDULE", "continuous"),
            ("GENERATE_RATE", "2000"),
            ("GENERATE_BATCH_SIZE", "200"),
            ("GENERATE_RUN_SECS", "2"),
        ])
        .await;
    wait_until(Duration::from_secs(30), || async {
        stack.count("select count(*) from churn.customers").await >= 1000
    })
    .await;
    stack.stop_classifier().await;
    // Batches already scored when it stopped are still written; then writing stops.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let at_stop = stack.count("select count(*) from churn.customers").await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    let while_down = stack.count("select count(*) from churn.customers").await;
    assert_eq!(
        while_down, at_stop,
        "customers were written while the classifier was down"
    );
    stack.start_classifier().await;
    wait_until(Duration::from_secs(30), || async {
        stack.count("select count(*) from churn.customers").await >= while_down + 1000
    })
    .await;
    stack.pause_and_settle(&scheduler, "generate").await;
    stack.check_books().await;
    let failed: i64 = stack
        .count(
            "select count(*) from ops.job_runs where job_name = 'generate' and status = 'failed'",
        )
        .await;
    assert!(
        failed >= 1,
        "the runs with nothing written while the classifier was down failed"
    );
    scheduler.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_schedulers_on_one_database_never_run_a_job_twice_at_once() {
    let stack = Stack::start().await;
    let extra = |host| {
        [
            ("GENERATE_SCHEDULE", "* * * * * *"),
            ("GENERATE_CUSTOMERS_PER_RUN", "1500"),
            ("GENERATE_BATCH_SIZE", "500"),
            ("HOSTNAME", host),
        ]
    };
    let a = stack.scheduler(&extra("replica-a")).await;
    let b = stack.scheduler(&extra("replica-b")).await;
    tokio::time::sleep(Duration::from_secs(20)).await;
    // One replica goes away: the other carries on (within a minute even on a loaded machine; a fixed
    // wait here failed when two cores were busy with builds).
    let b_runs =
        "select count(*) from ops.job_runs where host = 'replica-b' and status = 'succeeded'";
    a.stop().await;
    let before = stack.count(b_runs).await;
    wait_until(Duration::from_secs(60), || async {
        stack.count(b_runs).await > before
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    stack.pause_and_settle(&b, "generate").await;
    let overlaps = stack
        .count(
            "select count(*) from ops.job_runs x join ops.job_runs y
               on x.job_name = y.job_name and x.job_run_id < y.job_run_id
              and x.started_at < y.finished_at and y.started_at < x.finished_at",
        )
        .await;
    assert_eq!(overlaps, 0, "two runs of one job overlapped");
    let runs = stack.count("select count(*) from ops.job_runs").await;
    assert!(runs >= 10, "{runs} runs in 30 s");
    let hosts = stack
        .count("select count(distinct host) from ops.job_runs")
        .await;
    assert_eq!(hosts, 2, "the second replica took over");
    stack.check_books().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_jobs_api_triggers_refuses_a_second_run_and_pauses_and_resumes_ticks() {
    let stack = Stack::start().await;
    let scheduler = stack
        .scheduler(&[
            ("GENERATE_SCHEDULE", "*/2 * * * * *"),
            ("GENERATE_CUSTOMERS_PER_RUN", "30000"),
            ("GENERATE_BATCH_SIZE", "500"),
        ])
        .await;
    stack.pause_and_settle(&scheduler, "generate").await;
    // Authentication: none → 401, wrong → 403; unknown job → 404.
    assert_eq!(
        stack
            .post(&scheduler, "/jobs/generate/run", None)
            .await
            .status(),
        401
    );
    let wrong = stack
        .post(
            &scheduler,
            "/jobs/generate/run",
            Some("wrong-token-0123456789"),
        )
        .await;
    assert_eq!(wrong.status(), 403);
    let unknown = stack
        .post(&scheduler, "/jobs/nope/run", Some(TEST_ADMIN_TOKEN))
        .await;
    assert_eq!(unknown.status(), 404);
    // A manual run while one runs → 409.
    let first = stack
        .post(&scheduler, "/jobs/generate/run", Some(TEST_ADMIN_TOKEN))
        .await;
    assert_eq!(first.status(), 202);
    let second = stack
        .post(&scheduler, "/jobs/generate/run", Some(TEST_ADMIN_TOKEN))
        .await;
    assert_eq!(second.status(), 409);
    let body: Value = second.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("running"),
        "{body}"
    );
    wait_until(Duration::from_secs(60), || async {
        stack
            .count("select count(*) from ops.job_runs where status = 'running'")
            .await
            == 0
    })
    .await;
    // Paused: no tick starts a run.
    let generate_runs = "select count(*) from ops.job_runs where job_name = 'generate'";
    let before = stack.count(generate_runs).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(stack.count(generate_runs).await, before);
    // GET /jobs shows it paused, with its last run and no next tick.
    let jobs: Value = stack
        .client
        .get(scheduler.url("/jobs"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let job = named(&jobs, "generate");
    assert_eq!(job["paused"], true);
    assert_eq!(job["last_run"]["trigger"], "manual");
    assert!(job["next_run"].is_null());
    // Resumed: ticks start runs again.
    let resumed = stack
        .post(&scheduler, "/jobs/generate/resume", Some(TEST_ADMIN_TOKEN))
        .await;
    assert_eq!(resumed.status(), 200);
    wait_until(Duration::from_secs(10), || async {
        stack
            .count(
                "select count(*) from ops.job_runs where job_name = 'generate' and trigger = 'schedule'",
            )
            .await
            > 0
    })
    .await;
    let jobs: Value = stack
        .client
        .get(scheduler.url("/jobs"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(named(&jobs, "generate")["next_run"].is_string(), "{jobs}");
    let page: Value = stack
        .client
        .get(scheduler.url("/jobs/generate/runs?status=succeeded&limit=1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["runs"].as_array().unwrap().len(), 1);
    assert_eq!(page["next_offset"], 1);
    stack.pause_and_settle(&scheduler, "generate").await;
    scheduler.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ready_reports_the_synthesizer_and_the_classifier_and_degrades_without_them() {
    let mut stack = Stack::start().await;
    let scheduler = stack.scheduler(&[("GENERATE_SCHEDULE", "manual")]).await;
    let ready: Value = stack
        .client
        .get(scheduler.url("/ready"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["checks"]["synthesizer"]["status"], "ok");
    assert_eq!(ready["checks"]["classifier"]["status"], "ok");
    stack.stop_synthesizer().await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let response = stack
        .client
        .get(scheduler.url("/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let ready: Value = response.json().await.unwrap();
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert_eq!(ready["checks"]["synthesizer"]["status"], "down");
    scheduler.stop().await;
}

/// The job named `name` in a `GET /jobs` answer.
fn named<'a>(jobs: &'a Value, name: &str) -> &'a Value {
    jobs.as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == name)
        .unwrap_or_else(|| panic!("no job {name} in {jobs}"))
}
