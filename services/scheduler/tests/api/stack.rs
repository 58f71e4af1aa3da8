//! The platform in one test process: PostgreSQL, the S3 test server, the real synthesizer and classifier
//! (with a registered champion), and schedulers wired to them exactly as compose wires them.

use std::time::{Duration, Instant};

use churn_config::Env;
use churn_service::testing::{RunningApp, TEST_ADMIN_TOKEN, register_champion, service_env};
use churn_testkit::{TestDb, TestS3};

pub struct Stack {
    pub db: TestDb,
    pub s3: TestS3,
    pub synthesizer: Option<RunningApp>,
    pub classifier: Option<RunningApp>,
    pub classifier_port: u16,
    pub synthesizer_port: u16,
    pub client: reqwest::Client,
}

impl Stack {
    /// Starts the synthesizer and the classifier (serving a freshly registered champion).
    pub async fn start() -> Stack {
        let db = TestDb::new().await;
        let s3 = TestS3::start().await;
        register_champion(&db, &s3).await;
        let mut stack = Stack {
            synthesizer_port: 0,
            synthesizer: None,
            classifier: None,
            classifier_port: 0,
            db,
            s3,
            client: reqwest::Client::new(),
        };
        stack.start_synthesizer().await;
        stack.start_classifier().await;
        stack
    }

    /// Starts the synthesizer (again, on the same port after the first time), serving the registry's
    /// current synthesizer.
    pub async fn start_synthesizer(&mut self) {
        let seed = churn_testkit::seed_data_path();
        let port = self.synthesizer_port.to_string();
        let synthesizer = synthesizer::build(
            synthesizer::config_from_env(&service_env(
                &self.db,
                &self.s3,
                synthesizer::PORT_VAR,
                &[
                    ("CHURN_SEED_DATA", seed.to_str().unwrap()),
                    ("SYNTHESIZER_PORT", port.as_str()),
                ],
            ))
            .unwrap(),
        )
        .await
        .unwrap();
        let synthesizer = RunningApp::start(synthesizer);
        self.synthesizer_port = synthesizer.port;
        self.synthesizer = Some(synthesizer);
    }

    /// Starts the classifier (again, on the same port after the first time) and waits until it serves.
    pub async fn start_classifier(&mut self) {
        let port = self.classifier_port.to_string();
        let env = service_env(
            &self.db,
            &self.s3,
            classifier::PORT_VAR,
            &[("CLASSIFIER_PORT", port.as_str()), ("MODEL_POLL_SECS", "1")],
        );
        let app = classifier::build(classifier::config_from_env(&env).unwrap())
            .await
            .unwrap();
        let app = RunningApp::start(app);
        self.classifier_port = app.port;
        let ready = app.url("/ready");
        self.classifier = Some(app);
        wait_until(Duration::from_secs(15), || async {
            self.client
                .get(&ready)
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await;
    }

    pub async fn stop_synthesizer(&mut self) {
        if let Some(app) = self.synthesizer.take() {
            app.stop().await;
        }
    }

    pub async fn stop_classifier(&mut self) {
        if let Some(app) = self.classifier.take() {
            app.stop().await;
        }
    }

    /// The environment of a scheduler on this stack (port 0, no first-champion training), plus `extra`.
    pub fn scheduler_env(&self, extra: &[(&str, &str)]) -> Env {
        let synthesizer = format!("http://127.0.0.1:{}", self.synthesizer_port);
        let classifier = format!("http://127.0.0.1:{}", self.classifier_port);
        let mut pairs: Vec<(&str, &str)> = vec![
            ("SYNTHESIZER_URL", &synthesizer),
            ("CLASSIFIER_URL", &classifier),
            ("ADMIN_TOKEN", TEST_ADMIN_TOKEN),
            ("BOOTSTRAP_TRAIN_BUDGET_SECS", "0"),
            ("SHUTDOWN_GRACE_SECS", "10"),
            // Off unless a test turns them on: their crons would otherwise tick into tests that count
            // runs (they can still be run through the API).
            ("DBT_ENABLED", "false"),
            ("METRICS_ENABLED", "false"),
            ("DRIFT_ENABLED", "false"),
            ("RETRAIN_ENABLED", "false"),
            ("INGEST_ENABLED", "false"),
            ("SCORE_ENABLED", "false"),
        ];
        pairs.extend_from_slice(extra);
        service_env(&self.db, &self.s3, scheduler::PORT_VAR, &pairs)
    }

    /// Starts a scheduler on this stack.
    pub async fn scheduler(&self, extra: &[(&str, &str)]) -> RunningApp {
        let config = scheduler::config_from_env(&self.scheduler_env(extra)).unwrap();
        RunningApp::start(scheduler::build(config).await.unwrap())
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }

    /// Kills every connection to the test database but this call's own.
    pub async fn kill_connections(&self) -> i64 {
        let admin = sqlx::PgPool::connect(&churn_testkit::admin_database_url())
            .await
            .unwrap();
        let killed: i64 = sqlx::query_scalar(
            "select count(*) from (select pg_terminate_backend(pid) from pg_stat_activity
             where datname = $1 and pid <> pg_backend_pid()) k",
        )
        .bind(&self.db.name)
        .fetch_one(&admin)
        .await
        .unwrap();
        admin.close().await;
        killed
    }

    pub async fn post(
        &self,
        app: &RunningApp,
        path: &str,
        token: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self.client.post(app.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    /// Runs `job` now through the API and waits for its run to end; returns the run.
    pub async fn run_job(&self, app: &RunningApp, job: &str) -> serde_json::Value {
        let started = self
            .post(app, &format!("/jobs/{job}/run"), Some(TEST_ADMIN_TOKEN))
            .await;
        assert_eq!(started.status(), 202, "{job}");
        let body: serde_json::Value = started.json().await.unwrap();
        let run_id = body["job_run_id"].as_str().unwrap().to_owned();
        self.wait_for_run(app, &run_id).await
    }

    /// Waits for the run `run_id` to end; returns it.
    pub async fn wait_for_run(&self, app: &RunningApp, run_id: &str) -> serde_json::Value {
        let url = app.url(&format!("/runs/{run_id}"));
        let get = || async {
            self.client
                .get(&url)
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        };
        wait_until(Duration::from_secs(300), || async {
            get().await["status"] != "running"
        })
        .await;
        get().await
    }

    /// Pauses `job` and waits until none of its runs is running.
    pub async fn pause_and_settle(&self, app: &RunningApp, job: &str) {
        let paused = self
            .post(app, &format!("/jobs/{job}/pause"), Some(TEST_ADMIN_TOKEN))
            .await;
        assert_eq!(paused.status(), 200);
        wait_until(Duration::from_secs(30), || async {
            self.count(&format!(
                "select count(*) from ops.job_runs where job_name = '{job}' and status = 'running'"
            ))
            .await
                == 0
        })
        .await;
    }

    /// Every customer has exactly one synthesis row and one prediction, and the succeeded runs account
    /// for every customer: nothing lost, nothing duplicated.
    pub async fn check_books(&self) -> i64 {
        let customers = self.count("select count(*) from churn.customers").await;
        let synthesized = self.count("select count(*) from churn.synthesized").await;
        let predicted = self
            .count("select count(distinct customer_id) from churn.classified")
            .await;
        let predictions = self.count("select count(*) from churn.classified").await;
        let acknowledged = self
            .count(
                "select coalesce(sum(rows_affected), 0)::bigint from ops.job_runs
                 where job_name = 'generate' and status in ('succeeded', 'failed', 'interrupted')",
            )
            .await;
        assert_eq!(synthesized, customers);
        assert_eq!(predicted, customers, "a customer lacks a prediction");
        assert_eq!(predictions, customers, "one prediction per customer");
        assert_eq!(
            acknowledged, customers,
            "rows recorded by runs (failed and interrupted ones count what they committed) vs customers"
        );
        customers
    }
}

/// Waits until `condition` holds, failing the test after `limit`.
pub async fn wait_until<F, Fut>(limit: Duration, condition: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !condition().await {
        assert!(
            Instant::now() < deadline,
            "condition not met within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
