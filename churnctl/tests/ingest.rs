//! `churnctl ingest` as a child process against a real PostgreSQL and the S3 test server, including a
//! process killed mid-file and started again.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use churn_testkit::{TestDb, TestS3};

fn churnctl(db: &TestDb, s3: &TestS3, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_churnctl"));
    command
        .args(args)
        .env("DATABASE_URL", &db.url)
        .envs(s3.env())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// The seed file `copies` times over, each copy's CustomerIDs made distinct, as a temporary CSV.
fn big_file(copies: usize) -> (tempfile::TempDir, std::path::PathBuf, usize) {
    let seed = std::fs::read_to_string(churn_testkit::seed_data_path()).unwrap();
    let mut lines = seed.lines();
    let header = lines.next().unwrap();
    let rows: Vec<&str> = lines.filter(|l| !l.trim().is_empty()).collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("customers-big.csv");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    writeln!(out, "{header}").unwrap();
    for copy in 0..copies {
        for row in &rows {
            // CustomerID is the first column: make it unique per copy.
            let (id, rest) = row.split_once(',').unwrap();
            writeln!(out, "{id}-{copy},{rest}").unwrap();
        }
    }
    out.flush().unwrap();
    (dir, path, rows.len() * copies)
}

/// Other transactions holding a write lock on churn.customers: an ingestion that has written rows and not
/// yet ended.
const WRITING_CUSTOMERS: &str =
    "select count(*) from pg_locks l join pg_class c on c.oid = l.relation
    where c.relname = 'customers' and l.mode = 'RowExclusiveLock' and l.pid <> pg_backend_pid()
      and l.database = (select oid from pg_database where datname = current_database())";

async fn scalar(db: &TestDb, sql: &str) -> Option<i64> {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_optional(&db.pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_process_killed_mid_file_leaves_no_rows_and_started_again_writes_every_row_exactly_once()
{
    let db = TestDb::new().await;
    let s3 = TestS3::start().await;
    let (_dir, path, rows) = big_file(8);
    let path = path.to_str().unwrap().to_owned();

    let mut child = churnctl(&db, &s3, &["ingest", &path, "--batch-rows", "500"])
        .spawn()
        .unwrap();
    // Killed once its file's transaction has written rows into churn.customers, long before 56,000
    // rows are in: nothing of it may stay.
    let started = Instant::now();
    loop {
        let writing = scalar(&db, WRITING_CUSTOMERS).await.unwrap_or(0);
        if writing > 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "churnctl never started writing"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "churnctl ended before it could be killed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.kill().unwrap(); // SIGKILL: no clean-up of any kind
    child.wait().unwrap();
    // The server notices the dead client and rolls its transaction back.
    let started = Instant::now();
    while scalar(&db, WRITING_CUSTOMERS).await.unwrap_or(0) > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the killed transaction lingers"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let status: String = sqlx::query_scalar("select status from ops.ingested_files")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(status, "processing", "killed mid-file");
    let written = scalar(&db, "select count(*) from churn.customers")
        .await
        .unwrap();
    assert_eq!(written, 0, "the killed run left rows behind");

    let out = churnctl(&db, &s3, &["ingest", &path, "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["outcome"], "processed");
    assert_eq!(summary["rows_in"], rows as i64);
    assert_eq!(summary["rows_inserted"], rows as i64);
    let customers = scalar(&db, "select count(*) from churn.customers")
        .await
        .unwrap();
    let distinct = scalar(
        &db,
        "select count(distinct external_id) from churn.customers",
    )
    .await
    .unwrap();
    assert_eq!((customers, distinct), (rows as i64, rows as i64));
}

#[tokio::test(flavor = "multi_thread")]
async fn churnctl_ingest_prints_the_summary_with_rejections_by_reason_and_fails_on_a_bad_file() {
    let db = TestDb::new().await;
    let s3 = TestS3::start().await;
    let seed = std::fs::read_to_string(churn_testkit::seed_data_path()).unwrap();
    let mut lines: Vec<String> = seed.lines().take(21).map(str::to_owned).collect();
    lines[5] = lines[5]
        .replace(",Male,", ",Robot,")
        .replace(",Female,", ",Robot,");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("twenty.csv");
    std::fs::write(&path, lines.join("\n")).unwrap();

    let out = churnctl(&db, &s3, &["ingest", path.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("processed/twenty.csv"), "{stdout}");
    assert!(
        stdout.contains("quarantine/twenty.csv.errors.csv"),
        "{stdout}"
    );
    assert!(stdout.contains("gender: must be"), "{stdout}");

    // An object already in the bucket, named by its s3:// URL; a wrong header fails with the reason.
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "a,b\n1,2\n").unwrap();
    let store = s3.open().store;
    object_store::ObjectStoreExt::put(
        store.as_ref(),
        &object_store::path::Path::from("landing/bad.csv"),
        std::fs::read(&bad).unwrap().into(),
    )
    .await
    .unwrap();
    let url = format!("s3://{}/landing/bad.csv", s3.bucket);
    let out = churnctl(&db, &s3, &["ingest", &url]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(stdout.contains("failed: wrong header"), "{stdout}");
    assert!(stdout.contains("failed/bad.csv"), "{stdout}");
}
