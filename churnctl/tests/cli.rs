//! The churnctl binary end to end: data check, data fetch against a local server, and migrate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

use churn_testkit::{TestDb, seed_data_path};

fn churnctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_churnctl"))
        .args(args)
        .output()
        .expect("churnctl runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn data_check_reports_7043_valid_rows_in_the_seed_file() {
    let out = churnctl(&["data", "check", seed_data_path().to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout(&out).contains("7043 valid rows, 0 invalid rows"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn data_check_lists_each_invalid_row_with_every_error_and_fails() {
    let seed = std::fs::read_to_string(seed_data_path()).unwrap();
    let mut lines: Vec<String> = seed.lines().take(4).map(str::to_owned).collect();
    lines[2] =
        lines[2]
            .replacen(",Female,", ",Robot,", 1)
            .replacen(",Month-to-month,", ",Ten year,", 1);
    lines[3] = lines[3].split(',').take(5).collect::<Vec<_>>().join(",");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.csv");
    std::fs::write(&file, lines.join("\n")).unwrap();

    let out = churnctl(&["data", "check", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("line 3"), "{text}");
    assert!(text.contains("gender = \"Robot\""), "{text}");
    assert!(text.contains("contract = \"Ten year\""), "{text}");
    assert!(
        text.contains("line 4: the row has 5 fields but the header has 33"),
        "{text}"
    );
    assert!(text.contains("1 valid rows, 2 invalid rows"), "{text}");
}

#[test]
fn data_check_of_an_empty_file_fails_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("empty.csv");
    std::fs::write(&file, "").unwrap();
    let out = churnctl(&["data", "check", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the file is empty"));
}

#[test]
fn data_check_of_a_missing_file_names_it() {
    let out = churnctl(&["data", "check", "/nonexistent/telco.csv"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/telco.csv"));
}

/// Runs `churnctl data fetch` against the local server with `extra` arguments; returns its output and
/// the destination path.
async fn fetch(extra: &[&str]) -> (Output, tempfile::TempDir, std::path::PathBuf) {
    let url = churn_testkit::serve_seed_file().await;
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("telco.csv");
    let mut args: Vec<String> = [
        "data",
        "fetch",
        "--url",
        &url,
        "--out",
        out_path.to_str().unwrap(),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    // The server runs on this runtime: run the blocking child process elsewhere.
    let out = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        churnctl(&args)
    })
    .await
    .unwrap();
    (out, dir, out_path)
}

#[tokio::test(flavor = "multi_thread")]
async fn data_fetch_downloads_and_verifies_the_pinned_file() {
    let (out, _dir, out_path) = fetch(&[]).await;
    assert!(out.status.success(), "{out:?}");
    assert!(stdout(&out).contains("verified"));
    assert_eq!(
        std::fs::read(&out_path).unwrap(),
        std::fs::read(seed_data_path()).unwrap()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn data_fetch_refuses_a_file_with_the_wrong_checksum() {
    let wrong = "ab".repeat(32);
    let (out, _dir, out_path) = fetch(&["--sha256", &wrong]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("checksum mismatch"));
    assert!(!out_path.exists());
}

#[tokio::test]
async fn migrate_from_two_processes_at_once_leaves_one_schema() {
    let db = TestDb::empty().await;
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_churnctl"))
            .args(["migrate", "--database-url", &db.url])
            .spawn()
            .unwrap()
    };
    let (mut a, mut b) = (spawn(), spawn());
    assert!(a.wait().unwrap().success());
    assert!(b.wait().unwrap().success());
    assert_eq!(
        churn_testkit::applied_migrations(&db.pool).await,
        churn_testkit::migration_versions()
    );
    // A third run finds nothing to do.
    let out = churnctl(&["migrate", "--database-url", &db.url]);
    assert!(stdout(&out).contains("up to date"), "{out:?}");
}

#[tokio::test]
async fn migrate_sets_the_configured_role_passwords_as_scram_verifiers_and_never_prints_them() {
    let db = TestDb::empty().await;
    let password = "scheduler role password 0123";
    let out = Command::new(env!("CARGO_BIN_EXE_churnctl"))
        .args(["migrate", "--database-url", &db.url])
        .env("SCHEDULER_DB_PASSWORD", password)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let printed = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    assert!(
        printed.contains("set the password of churn_scheduler (from SCHEDULER_DB_PASSWORD)"),
        "{printed}"
    );
    assert!(!printed.contains(password), "{printed}");
    let stored: String = sqlx::query_scalar("select rolpassword from pg_authid where rolname = $1")
        .bind("churn_scheduler")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    let (iterations, rest) = stored
        .strip_prefix("SCRAM-SHA-256$")
        .and_then(|r| r.split_once(':'))
        .unwrap();
    let salt = rest.split_once('$').unwrap().0;
    let salt = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, salt).unwrap();
    assert_eq!(
        churn_store::roles::scram_verifier(password, &salt, iterations.parse().unwrap()),
        stored
    );
}

#[test]
fn help_never_prints_the_values_of_environment_variables() {
    for args in [
        vec!["--help"],
        vec!["migrate", "--help"],
        vec!["train", "--help"],
        vec!["models", "list", "--help"],
        vec!["data", "fetch", "--help"],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_churnctl"))
            .args(&args)
            .env(
                "DATABASE_URL",
                "postgres://churn:hunter2-password@db:5432/churn",
            )
            .env("OBJECT_STORE_URL", "s3://private-bucket-name")
            .env("AWS_SECRET_ACCESS_KEY", "aws-secret-0123456789")
            .env("CHURN_SEED_DATA", "/secret/path/telco.csv")
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        for secret in [
            "hunter2-password",
            "private-bucket-name",
            "aws-secret-0123456789",
            "/secret/path",
        ] {
            assert!(!text.contains(secret), "{args:?} printed {secret}:\n{text}");
        }
    }
}
