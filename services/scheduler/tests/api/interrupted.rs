//! SIGTERM to the real binary in the middle of a run: a retrain, a dbt build and a generate run are each
//! recorded `interrupted` within the shutdown grace, the job-failure alert's query (as Grafana's
//! provisioning holds it) has no row for them, and the trigger a retrain claimed is waiting again.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use churn_service::testing::TEST_ADMIN_TOKEN;
use churn_testkit::free_port;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::stack::{Stack, wait_until};

/// The scheduler's SHUTDOWN_GRACE_SECS in these tests.
const GRACE: Duration = Duration::from_secs(5);

/// The scheduler binary, started as compose starts it, on this stack.
struct Scheduler {
    child: Child,
    port: u16,
    client: reqwest::Client,
}

impl Scheduler {
    async fn start(stack: &Stack, extra: &[(&str, &str)]) -> Scheduler {
        let grace = GRACE.as_secs().to_string();
        let seed = churn_testkit::seed_data_path();
        let mut pairs = extra.to_vec();
        pairs.push(("SHUTDOWN_GRACE_SECS", &grace));
        pairs.push(("CHURN_SEED_DATA", seed.to_str().unwrap()));
        let churn_config::Env::Map(env) = stack.scheduler_env(&pairs) else {
            unreachable!("a test environment is a map")
        };
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_scheduler"))
            .env_clear()
            .envs(env)
            .env("SCHEDULER_PORT", port.to_string())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let scheduler = Scheduler {
            child,
            port,
            client: reqwest::Client::new(),
        };
        let health = scheduler.url("/health");
        wait_until(Duration::from_secs(60), || async {
            scheduler
                .client
                .get(&health)
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await;
        scheduler
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Starts a run of `job` through the API; returns its id.
    async fn trigger(&self, job: &str) -> Uuid {
        let response = self
            .client
            .post(self.url(&format!("/jobs/{job}/run")))
            .bearer_auth(TEST_ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202, "{job}");
        let body: Value = response.json().await.unwrap();
        body["job_run_id"].as_str().unwrap().parse().unwrap()
    }

    /// Sends SIGTERM; returns when it was sent.
    fn sigterm(&self) -> Instant {
        let sent = Instant::now();
        assert!(
            Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status()
                .unwrap()
                .success()
        );
        sent
    }

    /// Waits for the process to exit and checks it exited cleanly.
    async fn exits_cleanly(mut self) {
        let deadline = Instant::now() + GRACE * 3;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "still running after SIGTERM");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(status.success(), "exit status after SIGTERM: {status}");
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        // A failed assertion must not leave the binary running.
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

async fn run_status(pool: &PgPool, run_id: Uuid) -> (String, Value, Option<String>, Option<i64>) {
    sqlx::query_as(
        "select status, details, error, rows_affected from ops.job_runs where job_run_id = $1",
    )
    .bind(run_id)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Waits for the run to leave `running` after SIGTERM was sent at `sent`; checks it is `interrupted`
/// within the grace, says why, and carries no error. Returns its details and rows.
async fn interrupted_within_the_grace(
    pool: &PgPool,
    run_id: Uuid,
    sent: Instant,
) -> (Value, Option<i64>) {
    let (status, details, error, rows) = loop {
        let row = run_status(pool, run_id).await;
        if row.0 != "running" {
            break row;
        }
        assert!(
            sent.elapsed() < GRACE * 3,
            "the run is still running {:?} after SIGTERM",
            sent.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let closed_after = sent.elapsed();
    assert_eq!(status, "interrupted", "{details}");
    assert!(
        closed_after < GRACE,
        "recorded {closed_after:?} after SIGTERM, beyond the {GRACE:?} grace"
    );
    assert_eq!(
        error, None,
        "an interrupted run carries no error: {details}"
    );
    assert!(
        details["interrupted"]
            .as_str()
            .is_some_and(|why| why.starts_with("the scheduler is shutting down")),
        "{details}"
    );
    (details, rows)
}

/// The jobs the job-failure alert would fire for now: its SQL as Grafana's provisioning holds it.
async fn failure_alert_jobs(pool: &PgPool) -> Vec<(String, i64)> {
    let sql = crate::observability::job_failure_alert_sql();
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(pool)
        .await
        .unwrap()
}

/// Whether a process whose command line holds every one of `words` is running (dbt's, found by its
/// arguments).
fn process_running(words: &[&str]) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            return false;
        };
        let args: Vec<String> = raw
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        words.iter().all(|w| args.iter().any(|a| a == w))
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_a_retrain_records_it_interrupted_registers_nothing_and_its_trigger_waits_again()
 {
    let stack = Stack::start().await;
    let pool = &stack.db.pool;
    let trigger_id: i64 = sqlx::query_scalar(
        "insert into ops.retrain_triggers (reason, evidence)
         values ('new_labels', '{\"labelled_since_training\": 5000}') returning trigger_id",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    let versions = || async {
        stack
            .count("select count(*) from registry.model_versions")
            .await
    };
    let versions_before = versions().await;
    let scheduler = Scheduler::start(
        &stack,
        &[
            ("RETRAIN_ENABLED", "true"),
            ("RETRAIN_SCHEDULE", "manual"),
            ("RETRAIN_ON_DRIFT", "false"),
            ("RETRAIN_AUC_DROP", "0"),
            ("RETRAIN_NEW_LABELS", "0"),
            ("RETRAIN_SOURCES", "seed"),
            // A search planned for minutes of CPU: only cancellation ends it within the grace.
            ("RETRAIN_BUDGET_SECS", "600"),
        ],
    )
    .await;
    let run_id = scheduler.trigger("retrain").await;
    let claimed_by = || async {
        sqlx::query_scalar::<_, Option<Uuid>>(
            "select job_run_id from ops.retrain_triggers where trigger_id = $1",
        )
        .bind(trigger_id)
        .fetch_one(pool)
        .await
        .unwrap()
    };
    wait_until(Duration::from_secs(30), || async {
        claimed_by().await == Some(run_id)
    })
    .await;
    // Reading and splitting the seed takes well under a second: by now the search is fitting models.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(run_status(pool, run_id).await.0, "running");

    let sent = scheduler.sigterm();
    let (details, _) = interrupted_within_the_grace(pool, run_id, sent).await;
    assert!(
        details["stopped"]
            .as_str()
            .is_some_and(|s| s.contains("training was cancelled before anything was registered")),
        "{details}"
    );
    scheduler.exits_cleanly().await;

    assert_eq!(
        claimed_by().await,
        None,
        "the trigger waits for a run again"
    );
    let waiting = churn_store::monitoring::request_retrain(
        pool,
        churn_store::monitoring::RetrainReason::DatasetDrift,
        &serde_json::json!({}),
        Duration::from_secs(86_400),
    )
    .await
    .unwrap();
    assert_eq!(
        waiting,
        churn_store::monitoring::TriggerOutcome::Pending {
            trigger_id,
            reason: churn_store::monitoring::RetrainReason::NewLabels,
        },
        "the next check finds it waiting"
    );
    assert_eq!(versions().await, versions_before, "nothing was registered");
    let alerting = failure_alert_jobs(pool).await;
    assert!(
        !alerting.iter().any(|(job, _)| job == "retrain"),
        "{alerting:?}"
    );
    // The same query does find a failed retrain: the check above can fail.
    sqlx::query(
        "insert into ops.job_runs (job_run_id, job_name, status, finished_at, error)
         values ($1, 'retrain', 'failed', now(), 'boom')",
    )
    .bind(Uuid::new_v4())
    .execute(pool)
    .await
    .unwrap();
    assert_eq!(failure_alert_jobs(pool).await, [("retrain".to_owned(), 1)]);
}

fn dbt_executable() -> String {
    std::env::var("CHURN_DBT").unwrap_or_else(|_| {
        panic!(
            "CHURN_DBT is not set: run scripts/test, or set CHURN_DBT=$(scripts/venv --dbt)/bin/dbt"
        )
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_a_dbt_build_stops_dbt_and_records_the_run_interrupted() {
    let stack = Stack::start().await;
    let pool = &stack.db.pool;
    let target = tempfile::tempdir().unwrap();
    let target_path = target.path().to_str().unwrap().to_owned();
    let project: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dbt");
    let dbt = dbt_executable();
    let scheduler = Scheduler::start(
        &stack,
        &[
            ("DBT_ENABLED", "true"),
            ("DBT_SCHEDULE", "manual"),
            ("DBT_RETRIES", "0"),
            ("DBT_EXECUTABLE", &dbt),
            ("DBT_PROJECT_DIR", project.to_str().unwrap()),
            ("DBT_TARGET_DIR", &target_path),
        ],
    )
    .await;
    let run_id = scheduler.trigger("dbt").await;
    // `dbt source freshness` first, then `dbt build`: stop it once the build is running.
    let build = ["build", "--target-path", target_path.as_str()];
    wait_until(Duration::from_secs(120), || async {
        process_running(&build)
    })
    .await;
    assert_eq!(run_status(pool, run_id).await.0, "running");

    let sent = scheduler.sigterm();
    let (details, _) = interrupted_within_the_grace(pool, run_id, sent).await;
    assert!(
        details["stopped"]
            .as_str()
            .is_some_and(|e| e.contains("dbt build was cancelled")),
        "{details}"
    );
    scheduler.exits_cleanly().await;
    assert!(
        !process_running(&build),
        "dbt was stopped with the scheduler"
    );
    let alerting = failure_alert_jobs(pool).await;
    assert!(
        !alerting.iter().any(|(job, _)| job == "dbt"),
        "{alerting:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_a_continuous_generate_run_records_it_interrupted_with_whole_batches_counted()
 {
    let stack = Stack::start().await;
    let pool = &stack.db.pool;
    let scheduler = Scheduler::start(
        &stack,
        &[
            ("GENERATE_SCHEDULE", "continuous"),
            ("GENERATE_RATE", "0"),
            ("GENERATE_BATCH_SIZE", "500"),
            ("GENERATE_RUN_SECS", "60"),
        ],
    )
    .await;
    wait_until(Duration::from_secs(60), || async {
        stack.count("select count(*) from churn.customers").await >= 3000
    })
    .await;
    let run_id: Uuid = sqlx::query_scalar(
        "select job_run_id from ops.job_runs where job_name = 'generate' and status = 'running'",
    )
    .fetch_one(pool)
    .await
    .unwrap();

    let sent = scheduler.sigterm();
    let (details, rows) = interrupted_within_the_grace(pool, run_id, sent).await;
    assert!(
        details["stopped"]
            .as_str()
            .is_some_and(|s| s.contains("customers written")),
        "{details}"
    );
    scheduler.exits_cleanly().await;
    let customers = stack.check_books().await;
    assert_eq!(customers % 500, 0, "no half batch");
    assert!(rows.is_some_and(|r| r > 0 && r <= customers), "{rows:?}");
    let alerting = failure_alert_jobs(pool).await;
    assert!(
        !alerting.iter().any(|(job, _)| job == "generate"),
        "{alerting:?}"
    );
}
