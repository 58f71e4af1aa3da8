//! The real binary as compose runs it: every variable of sample.env passed through, empty ones included.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use churn_testkit::{TestDb, free_port};

/// sample.env's assignments, as docker compose's `env_file` passes them (empty values stay empty).
fn sample_env() -> Vec<(String, String)> {
    include_str!("../../../../sample.env")
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

#[tokio::test]
async fn the_binary_starts_with_sample_env_and_stops_cleanly_on_sigterm() {
    let env = sample_env();
    assert!(
        env.iter()
            .any(|(k, v)| k == "TOKIO_WORKER_THREADS" && v.is_empty()),
        "sample.env leaves TOKIO_WORKER_THREADS empty, the case this test guards"
    );
    let db = TestDb::new().await;
    let objects = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_scheduler"))
        .env_clear()
        .envs(env)
        .env("DATABASE_URL", &db.url)
        .env(
            "OBJECT_STORE_URL",
            format!("file://{}", objects.path().display()),
        )
        .env("SCHEDULER_PORT", port.to_string())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "the scheduler exited with {status} at start-up:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let health = client
            .get(format!("http://127.0.0.1:{port}/health"))
            .send()
            .await;
        if health.is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(Instant::now() < deadline, "no /health answer within 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "still running 15 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit status after SIGTERM: {status}");
}
