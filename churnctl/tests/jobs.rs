//! `churnctl jobs` against a running scheduler (in this process, on a real database).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

use churn_service::testing::{RunningApp, TEST_ADMIN_TOKEN, service_env};
use churn_testkit::{TestDb, TestS3};

fn churnctl(args: &[&str], url: &str, token: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_churnctl"));
    command
        .args(args)
        .env("SCHEDULER_URL", url)
        .env_remove("ADMIN_TOKEN");
    if let Some(token) = token {
        command.env("ADMIN_TOKEN", token);
    }
    command.output().unwrap()
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn jobs_list_run_runs_pause_and_resume_go_through_the_scheduler_api() {
    let db = TestDb::new().await;
    let s3 = TestS3::start().await;
    // No synthesizer or classifier: a generate run fails fast, which is all this test needs.
    let env = service_env(
        &db,
        &s3,
        scheduler::PORT_VAR,
        &[
            ("ADMIN_TOKEN", TEST_ADMIN_TOKEN),
            ("BOOTSTRAP_TRAIN_BUDGET_SECS", "0"),
            ("GENERATE_SCHEDULE", "manual"),
            ("DBT_ENABLED", "false"),
            ("METRICS_ENABLED", "false"),
            ("DRIFT_ENABLED", "false"),
            ("RETRAIN_ENABLED", "false"),
            ("INGEST_ENABLED", "false"),
            ("SCORE_ENABLED", "false"),
            ("GENERATE_TIMEOUT_SECS", "2"),
            ("SYNTHESIZER_URL", "http://127.0.0.1:9"),
        ],
    );
    let app = RunningApp::start(
        scheduler::build(scheduler::config_from_env(&env).unwrap())
            .await
            .unwrap(),
    );
    let url = app.address.clone();
    let jobs = tokio::task::spawn_blocking({
        let url = url.clone();
        move || {
            let list = stdout(&churnctl(&["jobs", "list"], &url, None));
            assert!(
                list.contains("generate") && list.contains("manual"),
                "{list}"
            );
            // Mutations need the admin token.
            let refused = churnctl(&["jobs", "run", "generate"], &url, None);
            assert!(!refused.status.success());
            assert!(String::from_utf8_lossy(&refused.stderr).contains("401"));
            // The run fails (nothing to generate from): `--wait` shows it and exits non-zero.
            let ran = churnctl(
                &["jobs", "run", "generate", "--wait"],
                &url,
                Some(TEST_ADMIN_TOKEN),
            );
            assert!(!ran.status.success());
            let out = String::from_utf8_lossy(&ran.stdout).into_owned();
            assert!(out.contains("started generate run"), "{out}");
            assert!(out.contains("failed"), "{out}");
            assert!(String::from_utf8_lossy(&ran.stderr).contains("the run failed"));
        }
    })
    .await;
    jobs.unwrap();
    let runs = tokio::task::spawn_blocking({
        let url = url.clone();
        move || {
            let runs = stdout(&churnctl(&["jobs", "runs", "generate"], &url, None));
            let paused = stdout(&churnctl(
                &["jobs", "pause", "generate"],
                &url,
                Some(TEST_ADMIN_TOKEN),
            ));
            let list = stdout(&churnctl(&["jobs", "list"], &url, None));
            let resumed = stdout(&churnctl(
                &["jobs", "resume", "generate"],
                &url,
                Some(TEST_ADMIN_TOKEN),
            ));
            (runs, paused, list, resumed)
        }
    })
    .await
    .unwrap();
    assert!(
        runs.0.contains("manual") && runs.0.contains("failed"),
        "{}",
        runs.0
    );
    assert!(runs.1.contains("generate paused"));
    // The generate row now says enabled: true, paused: true.
    let row = runs
        .2
        .lines()
        .find(|l| l.contains("generate"))
        .expect("a generate row");
    assert_eq!(row.matches("true").count(), 2, "{row}");
    assert!(runs.3.contains("generate resumed"));
    app.stop().await;
}
