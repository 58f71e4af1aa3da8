//! End to end with real processes (issue 17): the three service binaries run as separate processes against
//! PostgreSQL and the S3 test server, wired with the variables compose passes them, and then things break.
//! Checked in one bounded run: customers flow at the configured rate; the dbt job runs and records its
//! results; metrics and drift rows appear; killed database connections, a killed classifier and a killed
//! synthesizer lose and duplicate nothing (every acknowledged customer has one synthesis row and one
//! prediction); the scheduler's /ready names the dead synthesizer and recovers; a forced retrain registers
//! version 2 and, once promoted, the running classifier serves it without a restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use churn_service::testing::{TEST_ADMIN_TOKEN, register_champion};
use churn_testkit::{TestDb, TestS3, free_port};
use serde_json::{Value, json};

/// Customers per second the generate job is configured to write.
const RATE: i64 = 200;

/// A service binary beside this test's scheduler binary (`cargo nextest run --workspace`, as scripts/test
/// runs it, builds all three).
fn binary(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_scheduler")).with_file_name(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace's binaries first (cargo build --workspace)",
        path.display()
    );
    path
}

/// One service process, killed when dropped.
struct Service {
    name: &'static str,
    port: u16,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
}

impl Service {
    fn start(name: &'static str, port: u16, env: Vec<(String, String)>, logs: &Path) -> Service {
        let mut service = Service {
            name,
            port,
            env,
            log: logs.join(format!("{name}.log")),
            child: None,
        };
        service.spawn();
        service
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(binary(self.name))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "warn")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// SIGKILL: no shutdown, as a crash or the OOM killer would.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
    }
}

struct Platform {
    db: TestDb,
    _s3: TestS3,
    synthesizer: Service,
    classifier: Service,
    scheduler: Service,
    client: reqwest::Client,
    _logs: tempfile::TempDir,
}

impl Platform {
    async fn start() -> Platform {
        let db = TestDb::new().await;
        let s3 = TestS3::start().await;
        register_champion(&db, &s3).await;
        let logs = tempfile::tempdir().unwrap();
        let seed = churn_testkit::seed_data_path();
        let dbt = std::env::var("CHURN_DBT").expect(
            "CHURN_DBT must name dbt in the test venv (scripts/test sets it; scripts/venv builds it)",
        );
        let project = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dbt");
        let dbt_target = logs.path().join("dbt-target");
        let (synthesizer_port, classifier_port, scheduler_port) =
            (free_port(), free_port(), free_port());
        // What every service gets from compose's shared environment.
        let mut common: Vec<(String, String)> = s3
            .env()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        common.extend([
            ("DATABASE_URL".to_owned(), db.url.clone()),
            ("DATABASE_MAX_CONNECTIONS".to_owned(), "4".to_owned()),
            ("ADMIN_TOKEN".to_owned(), TEST_ADMIN_TOKEN.to_owned()),
            ("CHURN_SEED_DATA".to_owned(), seed.display().to_string()),
        ]);
        let with = |extra: &[(&str, String)]| {
            let mut env = common.clone();
            env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
            env
        };
        let synthesizer = Service::start(
            "synthesizer",
            synthesizer_port,
            with(&[("SYNTHESIZER_PORT", synthesizer_port.to_string())]),
            logs.path(),
        );
        let classifier = Service::start(
            "classifier",
            classifier_port,
            with(&[
                ("CLASSIFIER_PORT", classifier_port.to_string()),
                ("MODEL_POLL_SECS", "1".to_owned()),
            ]),
            logs.path(),
        );
        let scheduler = Service::start(
            "scheduler",
            scheduler_port,
            with(&[
                ("SCHEDULER_PORT", scheduler_port.to_string()),
                (
                    "SYNTHESIZER_URL",
                    format!("http://127.0.0.1:{synthesizer_port}"),
                ),
                (
                    "CLASSIFIER_URL",
                    format!("http://127.0.0.1:{classifier_port}"),
                ),
                ("BOOTSTRAP_TRAIN_BUDGET_SECS", "0".to_owned()),
                ("GENERATE_SCHEDULE", "continuous".to_owned()),
                ("GENERATE_RATE", RATE.to_string()),
                ("GENERATE_BATCH_SIZE", "100".to_owned()),
                ("GENERATE_RUN_SECS", "3".to_owned()),
                // The retrained version may wait as challenger before it is promoted: without shadow
                // scores every customer has exactly one prediction, which the books below count.
                // (Shadow scoring has its own test in tests/api/monitoring.rs.)
                ("GENERATE_SHADOW", "false".to_owned()),
                ("DBT_SCHEDULE", "manual".to_owned()),
                ("DBT_EXECUTABLE", dbt),
                ("DBT_PROJECT_DIR", project.display().to_string()),
                ("DBT_TARGET_DIR", dbt_target.display().to_string()),
                ("METRICS_SCHEDULE", "manual".to_owned()),
                ("DRIFT_SCHEDULE", "manual".to_owned()),
                ("RETRAIN_SCHEDULE", "manual".to_owned()),
                ("RETRAIN_SOURCES", "seed".to_owned()),
                ("RETRAIN_BUDGET_SECS", "5".to_owned()),
                ("RETRAIN_ON_DRIFT", "false".to_owned()),
                ("RETRAIN_NEW_LABELS", "0".to_owned()),
                ("INGEST_ENABLED", "false".to_owned()),
                ("SCORE_ENABLED", "false".to_owned()),
                ("SHUTDOWN_GRACE_SECS", "10".to_owned()),
            ]),
            logs.path(),
        );
        let platform = Platform {
            db,
            _s3: s3,
            synthesizer,
            classifier,
            scheduler,
            client: reqwest::Client::new(),
            _logs: logs,
        };
        for service in [
            &platform.synthesizer,
            &platform.classifier,
            &platform.scheduler,
        ] {
            platform.wait_ready(service, Duration::from_secs(120)).await;
        }
        platform
    }

    async fn wait_ready(&self, service: &Service, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let answer = self.client.get(service.url("/ready")).send().await;
            if answer.is_ok_and(|r| r.status() == 200) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} was not ready within {limit:?}; its log ends:\n{}",
                service.name,
                service.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }

    async fn customers(&self) -> i64 {
        self.count("select count(*) from churn.customers").await
    }

    /// Waits until the customers table grows by `more` rows.
    async fn grows_by(&self, more: i64, limit: Duration, after: &str) {
        let from = self.customers().await;
        let deadline = Instant::now() + limit;
        while self.customers().await < from + more {
            assert!(
                Instant::now() < deadline,
                "customers did not grow by {more} within {limit:?} after {after}; scheduler log:\n{}",
                self.scheduler.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn post(&self, path: &str, body: Option<Value>) -> reqwest::Response {
        let mut request = self
            .client
            .post(self.scheduler.url(path))
            .bearer_auth(TEST_ADMIN_TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }

    /// Runs `job` through the API and waits for the run to end; returns it.
    async fn run_job(&self, job: &str, limit: Duration) -> Value {
        let started = self.post(&format!("/jobs/{job}/run"), None).await;
        assert_eq!(started.status(), 202, "{job}");
        let id = started.json::<Value>().await.unwrap()["job_run_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let deadline = Instant::now() + limit;
        loop {
            let run: Value = self
                .client
                .get(self.scheduler.url(&format!("/runs/{id}")))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if run["status"] != "running" {
                return run;
            }
            assert!(
                Instant::now() < deadline,
                "{job} still running after {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn synthesizer_check(&self) -> Value {
        let ready: Value = self
            .client
            .get(self.scheduler.url("/ready"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ready["checks"]["synthesizer"].clone()
    }

    async fn served_version(&self) -> Option<i64> {
        let answer = self
            .client
            .get(self.classifier.url("/model"))
            .send()
            .await
            .ok()?;
        answer.json::<Value>().await.ok()?["model_version"].as_i64()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_platform_as_processes_survives_killed_connections_and_services_and_serves_a_retrained_champion()
 {
    let mut p = Platform::start().await;

    // Customers flow at the configured rate (measured after the first batches, over ten seconds).
    p.grows_by(RATE, Duration::from_secs(60), "start-up").await;
    let (from, started) = (p.customers().await, Instant::now());
    tokio::time::sleep(Duration::from_secs(10)).await;
    let rate = (p.customers().await - from) as f64 / started.elapsed().as_secs_f64();
    assert!(
        (0.6 * RATE as f64..=1.3 * RATE as f64).contains(&rate),
        "customers/s {rate:.0}, configured {RATE}"
    );

    // The dbt job runs against the live warehouse and records its results.
    let dbt = p.run_job("dbt", Duration::from_secs(600)).await;
    assert_eq!(dbt["status"], "succeeded", "{dbt}");
    assert!(p.count("select count(*) from ops.dbt_invocations").await >= 1);
    assert!(
        p.count("select count(*) from marts.fct_churn_prediction")
            .await
            > 0
    );

    // Metrics and drift rows appear.
    for job in ["metrics", "drift"] {
        let run = p.run_job(job, Duration::from_secs(120)).await;
        assert_eq!(run["status"], "succeeded", "{job}: {run}");
    }
    assert!(
        p.count("select count(*) from monitoring.model_metrics where metric_type = 'scheduled'")
            .await
            > 0
    );
    assert!(p.count("select count(*) from monitoring.drift_runs").await > 0);

    // Every connection to the database is killed, three times: the loop resumes.
    let admin = sqlx::PgPool::connect(&churn_testkit::admin_database_url())
        .await
        .unwrap();
    for _ in 0..3 {
        let killed: i64 = sqlx::query_scalar(
            "select count(*) from (select pg_terminate_backend(pid) from pg_stat_activity
             where datname = $1 and pid <> pg_backend_pid()) k",
        )
        .bind(&p.db.name)
        .fetch_one(&admin)
        .await
        .unwrap();
        assert!(killed > 0);
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    admin.close().await;
    p.grows_by(
        3 * RATE,
        Duration::from_secs(60),
        "killing the database connections",
    )
    .await;

    // The classifier is killed: batches wait and retry; restarted, the loop goes on.
    p.classifier.kill();
    tokio::time::sleep(Duration::from_secs(3)).await;
    p.classifier.spawn();
    p.wait_ready(&p.classifier, Duration::from_secs(60)).await;
    p.grows_by(
        3 * RATE,
        Duration::from_secs(60),
        "restarting the classifier",
    )
    .await;

    // The synthesizer is killed: the scheduler's /ready says so, and recovers once it is back.
    p.synthesizer.kill();
    let deadline = Instant::now() + Duration::from_secs(30);
    while p.synthesizer_check().await["ok"] != false {
        assert!(
            Instant::now() < deadline,
            "/ready never named the dead synthesizer"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    p.synthesizer.spawn();
    p.wait_ready(&p.synthesizer, Duration::from_secs(120)).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while p.synthesizer_check().await["ok"] != true {
        assert!(
            Instant::now() < deadline,
            "/ready never saw the synthesizer back"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    p.grows_by(
        3 * RATE,
        Duration::from_secs(60),
        "restarting the synthesizer",
    )
    .await;

    // A forced retrain registers version 2; promoted, the running classifier serves it.
    let retrain = p.run_job("retrain", Duration::from_secs(300)).await;
    assert_eq!(retrain["status"], "succeeded", "{retrain}");
    assert_eq!(
        p.count("select max(version)::bigint from registry.model_versions where model_name = 'churn-classifier'")
            .await,
        2
    );
    let promoted = p
        .post(
            "/api/2.0/mlflow/registered-models/alias",
            Some(json!({ "name": "churn-classifier", "alias": "champion", "version": "2" })),
        )
        .await;
    assert_eq!(promoted.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(30);
    while p.served_version().await != Some(2) {
        assert!(
            Instant::now() < deadline,
            "the classifier still serves {:?}",
            p.served_version().await
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Batches classified before the swap may still be in flight: give it a few batches.
    p.grows_by(5 * RATE, Duration::from_secs(60), "the promotion")
        .await;
    assert!(
        p.count("select count(*) from churn.classified where model_version = 2")
            .await
            > 0,
        "no customer was scored by version 2"
    );

    // The books: generation paused and settled, every customer has one synthesis row and one
    // prediction, and the runs acknowledged exactly the customers written.
    assert_eq!(p.post("/jobs/generate/pause", None).await.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(60);
    while p
        .count(
            "select count(*) from ops.job_runs where job_name = 'generate' and status = 'running'",
        )
        .await
        > 0
    {
        assert!(Instant::now() < deadline, "generate did not settle");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let customers = p.customers().await;
    assert_eq!(
        p.count("select count(*) from churn.synthesized").await,
        customers
    );
    assert_eq!(
        p.count("select count(*) from churn.classified").await,
        customers
    );
    assert_eq!(
        p.count("select count(distinct customer_id) from churn.classified")
            .await,
        customers,
        "a customer lacks a prediction"
    );
    assert_eq!(
        p.count(
            "select coalesce(sum(rows_affected), 0)::bigint from ops.job_runs
             where job_name = 'generate' and status in ('succeeded', 'failed', 'interrupted')"
        )
        .await,
        customers,
        "rows acknowledged by runs vs customers written"
    );
}
