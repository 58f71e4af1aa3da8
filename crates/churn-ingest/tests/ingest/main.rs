//! Ingestion against a real PostgreSQL and the S3 test server: clean and dirty files, updates of known
//! customers, duplicates, interrupted runs, truncated and unusable files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod limits;

use std::io::Write;
use std::sync::Arc;

use churn_ingest::{IngestOptions, Ingestor, Outcome};
use churn_store::warehouse::Source;
use churn_testkit::{TestDb, TestS3};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

/// The seed file's header and its first `n` rows, as fields.
fn seed_rows(n: usize) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_path(churn_testkit::seed_data_path()).unwrap();
    let header = reader
        .headers()
        .unwrap()
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_owned())
        .collect();
    let rows = reader
        .records()
        .take(n)
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    (header, rows)
}

fn column(header: &[String], name: &str) -> usize {
    header.iter().position(|h| h == name).unwrap()
}

fn to_csv(header: &[String], rows: &[Vec<String>]) -> Vec<u8> {
    let mut writer = csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(Vec::new());
    writer.write_record(header).unwrap();
    for row in rows {
        writer.write_record(row).unwrap();
    }
    writer.into_inner().unwrap()
}

struct Fixture {
    db: TestDb,
    _s3: TestS3,
    store: Arc<dyn ObjectStore>,
    ingestor: Ingestor,
}

impl Fixture {
    async fn new() -> Fixture {
        Self::with_batch(IngestOptions::default().batch_rows).await
    }

    async fn with_batch(batch_rows: usize) -> Fixture {
        let db = TestDb::new().await;
        let s3 = TestS3::start().await;
        let store = s3.open().store;
        let ingestor = Ingestor::new(
            db.pool.clone(),
            store.clone(),
            IngestOptions {
                batch_rows,
                ..IngestOptions::default()
            },
        );
        Fixture {
            db,
            _s3: s3,
            store,
            ingestor,
        }
    }

    async fn put(&self, key: &str, bytes: Vec<u8>) {
        self.store
            .put(&Path::from(key), PutPayload::from(bytes))
            .await
            .unwrap();
    }

    async fn exists(&self, key: &str) -> bool {
        self.store.head(&Path::from(key)).await.is_ok()
    }

    async fn text(&self, key: &str) -> String {
        let bytes = self
            .store
            .get(&Path::from(key))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    async fn customers(&self) -> i64 {
        sqlx::query_scalar("select count(*) from churn.customers")
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn a_clean_file_lands_every_row_and_moves_to_processed() {
    let f = Fixture::new().await;
    let (header, rows) = seed_rows(300);
    f.put("landing/clean.csv", to_csv(&header, &rows)).await;

    let summary = f.ingestor.ingest("landing/clean.csv").await.unwrap();
    assert_eq!(summary.outcome, Outcome::Processed);
    assert_eq!(
        (
            summary.rows_in,
            summary.rows_accepted,
            summary.rows_inserted
        ),
        (300, 300, 300)
    );
    assert_eq!((summary.rows_updated, summary.rows_rejected), (0, 0));
    assert_eq!(summary.moved_to.as_deref(), Some("processed/clean.csv"));
    assert!(f.exists("processed/clean.csv").await);
    assert!(!f.exists("landing/clean.csv").await);
    assert!(summary.quarantine_key.is_none());

    let (ingested, with_ids): (i64, i64) = sqlx::query_as(
        "select count(*) filter (where source = 'ingested'), count(distinct external_id)
         from churn.customers",
    )
    .fetch_one(&f.db.pool)
    .await
    .unwrap();
    assert_eq!((ingested, with_ids), (300, 300));
    let status: (String, i64) = sqlx::query_as(
        "select status, rows_total from ops.ingested_files where object_key = 'landing/clean.csv'",
    )
    .fetch_one(&f.db.pool)
    .await
    .unwrap();
    assert_eq!(status, ("processed".to_owned(), 300));
}

#[tokio::test]
async fn a_file_with_ten_percent_bad_rows_quarantines_exactly_those_with_their_reasons() {
    let f = Fixture::new().await;
    let (header, mut rows) = seed_rows(100);
    let (tenure, gender, zip) = (
        column(&header, "Tenure Months"),
        column(&header, "Gender"),
        column(&header, "Zip Code"),
    );
    // Lines are 1-based with the header on line 1: row i is on line i + 2.
    for i in [3, 13, 23, 33] {
        rows[i][tenure] = "-3".into();
    }
    for i in [43, 53, 63] {
        rows[i][gender] = "Robot".into();
    }
    for i in [73, 83] {
        rows[i][zip] = "ABCDE".into();
    }
    rows[93].truncate(10);
    f.put("landing/dirty.csv", to_csv(&header, &rows)).await;

    let summary = f.ingestor.ingest("landing/dirty.csv").await.unwrap();
    assert_eq!(summary.outcome, Outcome::Processed);
    assert_eq!(
        (
            summary.rows_in,
            summary.rows_accepted,
            summary.rows_rejected
        ),
        (100, 90, 10)
    );
    assert_eq!(f.customers().await, 90);
    let by_field = |field: &str| -> i64 {
        summary
            .rejected_by_reason
            .iter()
            .filter(|(reason, _)| reason.starts_with(&format!("{field}:")))
            .map(|(_, n)| n)
            .sum()
    };
    assert_eq!(
        by_field("tenure_months"),
        4,
        "{:?}",
        summary.rejected_by_reason
    );
    assert_eq!(by_field("gender"), 3);
    assert_eq!(by_field("zip_code"), 2);
    assert_eq!(by_field("row"), 1);

    let lines: Vec<i64> = sqlx::query_scalar(
        "select line_number from ops.rejected_records where source = 'ingest' order by 1",
    )
    .fetch_all(&f.db.pool)
    .await
    .unwrap();
    assert_eq!(lines, vec![5, 15, 25, 35, 45, 55, 65, 75, 85, 95]);

    let quarantine = f.text("quarantine/dirty.csv.errors.csv").await;
    let mut reader = csv::Reader::from_reader(quarantine.as_bytes());
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 10);
    assert_eq!(&records[0][0], "5");
    assert!(
        records[0][1].starts_with("tenure_months = \"-3\""),
        "{}",
        &records[0][1]
    );
    assert!(
        records[4][1].contains("gender = \"Robot\""),
        "{}",
        &records[4][1]
    );
    assert!(
        records[9][1].contains("must have 33 fields"),
        "{}",
        &records[9][1]
    );
    // The quarantined record is the row as it was in the file.
    assert!(records[0][3].starts_with(&rows[3][0]), "{}", &records[0][3]);
}

#[tokio::test]
async fn a_second_file_changing_fifty_known_customers_updates_them_and_adds_none() {
    let f = Fixture::new().await;
    let (header, rows) = seed_rows(200);
    f.put("landing/first.csv", to_csv(&header, &rows)).await;
    f.ingestor.ingest("landing/first.csv").await.unwrap();
    let before = chrono::Utc::now();
    let labelled_before =
        churn_store::monitoring::labelled_since(&f.db.pool, Source::Ingested, before)
            .await
            .unwrap();
    assert_eq!(labelled_before, 0);

    let (contract, label, tenure) = (
        column(&header, "Contract"),
        column(&header, "Churn Label"),
        column(&header, "Tenure Months"),
    );
    let mut changed: Vec<Vec<String>> = rows[..50].to_vec();
    for row in &mut changed {
        row[contract] = "Two year".into();
        let churned = row[label] == "Yes";
        row[label] = if churned { "No" } else { "Yes" }.into();
        row[tenure] = "72".into();
    }
    f.put("landing/changes.csv", to_csv(&header, &changed))
        .await;
    let summary = f.ingestor.ingest("landing/changes.csv").await.unwrap();
    assert_eq!(
        (summary.rows_in, summary.rows_updated, summary.rows_inserted),
        (50, 50, 0)
    );
    assert_eq!(f.customers().await, 200);

    let ids: Vec<String> = changed.iter().map(|r| r[0].clone()).collect();
    let (two_year, tenure_72): (i64, i64) = sqlx::query_as(
        "select count(*) filter (where contract = 'Two year'), count(*) filter (where tenure_months = 72)
         from churn.customers where external_id = any($1)",
    )
    .bind(&ids)
    .fetch_one(&f.db.pool)
    .await
    .unwrap();
    assert_eq!((two_year, tenure_72), (50, 50));
    // Every changed outcome is a new label: it counts toward the retrain trigger.
    let labelled = churn_store::monitoring::labelled_since(&f.db.pool, Source::Ingested, before)
        .await
        .unwrap();
    assert_eq!(labelled, 50);
}

#[tokio::test]
async fn a_repeated_event_and_a_reupload_under_another_name_change_nothing() {
    let f = Fixture::new().await;
    let (header, rows) = seed_rows(120);
    let bytes = to_csv(&header, &rows);
    f.put("landing/a.csv", bytes.clone()).await;
    f.ingestor.ingest("landing/a.csv").await.unwrap();

    let again = f.ingestor.ingest("landing/a.csv").await.unwrap();
    assert_eq!(again.outcome, Outcome::AlreadyProcessed);
    assert_eq!(again.rows_inserted, 120);

    f.put("landing/copy-of-a.csv", bytes).await;
    let copy = f.ingestor.ingest("landing/copy-of-a.csv").await.unwrap();
    assert_eq!(
        copy.outcome,
        Outcome::Duplicate {
            of: "landing/a.csv".into()
        }
    );
    assert!(f.exists("processed/copy-of-a.csv").await);
    assert_eq!(f.customers().await, 120);
    let files: i64 = sqlx::query_scalar("select count(*) from ops.ingested_files")
        .fetch_one(&f.db.pool)
        .await
        .unwrap();
    assert_eq!(files, 1);
}

/// Waits until another backend of this database waits on a lock.
async fn wait_for_a_blocked_backend(pool: &sqlx::PgPool) {
    for _ in 0..2500 {
        let blocked: i64 = sqlx::query_scalar(
            "select count(*) from pg_stat_activity
             where datname = current_database() and wait_event_type = 'Lock'",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        if blocked > 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(4)).await;
    }
    panic!("no backend came to wait on the held row lock");
}

#[tokio::test]
async fn an_interrupted_run_leaves_no_rows_and_the_next_writes_every_row_once() {
    let f = Fixture::with_batch(100).await;
    let (header, rows) = seed_rows(3000);
    // Line 1,501's customer is known already; holding its row stops the file's run half way, after 15
    // batches, deterministically.
    f.put("landing/known.csv", to_csv(&header, &rows[1499..1500]))
        .await;
    f.ingestor.ingest("landing/known.csv").await.unwrap();
    f.put("landing/long.csv", to_csv(&header, &rows)).await;
    let id = &rows[1499][column(&header, "CustomerID")];
    let mut holder = f.db.pool.begin().await.unwrap();
    sqlx::query("select 1 from churn.customers where external_id = $1 for update")
        .bind(id)
        .execute(&mut *holder)
        .await
        .unwrap();

    let first = tokio::spawn({
        let ingestor = f.ingestor.clone();
        async move { ingestor.ingest("landing/long.csv").await }
    });
    wait_for_a_blocked_backend(&f.db.pool).await;
    first.abort();
    let _ = first.await;
    holder.rollback().await.unwrap();
    // The cut-off run's backend goes on once the row is free, finds its client gone and rolls back.
    for _ in 0..2500 {
        let others: i64 = sqlx::query_scalar(
            "select count(*) from pg_stat_activity
             where datname = current_database() and state <> 'idle' and pid <> pg_backend_pid()",
        )
        .fetch_one(&f.db.pool)
        .await
        .unwrap();
        if others == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(4)).await;
    }
    assert_eq!(f.customers().await, 1, "the cut-off run left rows behind");
    let (status, accepted): (String, i64) = sqlx::query_as(
        "select status, rows_accepted from ops.ingested_files where object_key = 'landing/long.csv'",
    )
    .fetch_one(&f.db.pool)
    .await
    .unwrap();
    assert_eq!((status.as_str(), accepted), ("processing", 0));

    let summary = f.ingestor.ingest("landing/long.csv").await.unwrap();
    assert_eq!(summary.outcome, Outcome::Processed);
    assert_eq!(
        (summary.rows_in, summary.rows_inserted, summary.rows_updated),
        (3000, 2999, 1)
    );
    assert_eq!(f.customers().await, 3000);
}

#[tokio::test]
async fn a_file_truncated_mid_way_writes_nothing_and_its_fixed_copy_writes_each_row_once() {
    let f = Fixture::with_batch(500).await;
    let (header, rows) = seed_rows(5000);
    // Without the file's own ids every row is a new customer, so rows a failed file kept would come
    // back as duplicates with its fixed copy.
    let id = column(&header, "CustomerID");
    let strip = |fields: &[String]| -> Vec<String> {
        let mut fields = fields.to_vec();
        fields.remove(id);
        fields
    };
    let header = strip(&header);
    let rows: Vec<Vec<String>> = rows.iter().map(|r| strip(r)).collect();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&to_csv(&header, &rows)).unwrap();
    let whole = gz.finish().unwrap();
    f.put(
        "landing/upload.csv.gz",
        whole[..whole.len() * 6 / 10].to_vec(),
    )
    .await;

    let summary = f.ingestor.ingest("landing/upload.csv.gz").await.unwrap();
    let Outcome::Failed { reason } = &summary.outcome else {
        panic!("{:?}", summary.outcome);
    };
    assert!(reason.contains("unreadable at line"), "{reason}");
    assert!(f.exists("failed/upload.csv.gz").await);
    assert_eq!(f.customers().await, 0, "the failed file kept rows");
    assert_eq!((summary.rows_accepted, summary.rows_inserted), (0, 0));
    let rejected: i64 = sqlx::query_scalar("select count(*) from ops.rejected_records")
        .fetch_one(&f.db.pool)
        .await
        .unwrap();
    assert_eq!(rejected, 0);

    f.put("landing/upload-fixed.csv.gz", whole).await;
    let summary = f
        .ingestor
        .ingest("landing/upload-fixed.csv.gz")
        .await
        .unwrap();
    assert_eq!(summary.outcome, Outcome::Processed);
    assert_eq!(summary.rows_inserted, 5000);
    assert_eq!(f.customers().await, 5000);
}

#[tokio::test]
async fn a_labelled_file_records_each_outcome_in_its_transaction_and_a_broken_one_records_none() {
    let f = Fixture::with_batch(100).await;
    let (header, rows) = seed_rows(400);
    // Both outcomes: the seed file's first rows and its last.
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .step_by(2)
        .chain(seed_rows(7043).1.into_iter().skip(6843))
        .collect();
    let (id, label) = (
        column(&header, "CustomerID"),
        column(&header, "Churn Label"),
    );
    let started = chrono::Utc::now();
    // A broken copy first: its 300 readable rows were written batch by batch, then rolled back.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&to_csv(&header, &rows)).unwrap();
    let whole = gz.finish().unwrap();
    f.put(
        "landing/broken.csv.gz",
        whole[..whole.len() * 8 / 10].to_vec(),
    )
    .await;
    let summary = f.ingestor.ingest("landing/broken.csv.gz").await.unwrap();
    assert!(
        matches!(summary.outcome, Outcome::Failed { .. }),
        "{summary:?}"
    );
    let outcomes = |pool: sqlx::PgPool| async move {
        sqlx::query_as::<_, (String, bool, String, String, bool)>(
            "select o.customer_id, o.churned, o.source, o.caller,
                    o.observed_at between $1 and f.ingested_at
             from serving.outcomes o, ops.ingested_files f
             where f.object_key = 'landing/labels.csv' order by o.outcome_id",
        )
        .bind(started)
        .fetch_all(&pool)
        .await
        .unwrap()
    };
    assert!(
        outcomes(f.db.pool.clone()).await.is_empty(),
        "the broken file kept outcomes"
    );

    f.put("landing/labels.csv", to_csv(&header, &rows)).await;
    let summary = f.ingestor.ingest("landing/labels.csv").await.unwrap();
    assert_eq!(summary.outcome, Outcome::Processed);
    let stored = outcomes(f.db.pool.clone()).await;
    assert!(
        rows.iter().any(|r| r[label] == "No"),
        "the rows hold both outcomes"
    );
    let expected: Vec<(String, bool, String, String, bool)> = rows
        .iter()
        .map(|r| {
            (
                r[id].clone(),
                r[label] == "Yes",
                "ingested".to_owned(),
                "labels.csv".to_owned(),
                true,
            )
        })
        .collect();
    assert_eq!(stored, expected);
}

#[tokio::test]
async fn two_workers_on_the_same_file_write_each_row_once() {
    let f = Fixture::with_batch(200).await;
    let (header, rows) = seed_rows(2000);
    f.put("landing/race.csv", to_csv(&header, &rows)).await;
    let (a, b) = tokio::join!(
        f.ingestor.ingest("landing/race.csv"),
        f.ingestor.ingest("landing/race.csv")
    );
    assert!(a.is_ok() || b.is_ok(), "{a:?} {b:?}");
    // Whoever stopped leaves the file to the other (or to the next delivery).
    let _ = f.ingestor.ingest("landing/race.csv").await;
    assert_eq!(f.customers().await, 2000);
}

#[tokio::test]
async fn gzip_files_with_snake_case_headers_are_read() {
    let f = Fixture::new().await;
    let (header, rows) = seed_rows(50);
    let snake: Vec<String> = header
        .iter()
        .map(|h| h.to_lowercase().replace(' ', "_"))
        .collect();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&to_csv(&snake, &rows)).unwrap();
    f.put("landing/snake.csv.gz", gz.finish().unwrap()).await;
    let summary = f.ingestor.ingest("landing/snake.csv.gz").await.unwrap();
    assert_eq!(summary.outcome, Outcome::Processed);
    assert_eq!(summary.rows_inserted, 50);
}

#[tokio::test]
async fn empty_binary_header_only_and_wrong_header_files_fail_with_a_reason_and_write_nothing() {
    let f = Fixture::new().await;
    let (header, _) = seed_rows(0);
    let mut binary = vec![0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];
    binary.extend((0..2048u32).map(|i| (i * 7919 % 251) as u8));
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty.csv", Vec::new(), "empty"),
        ("picture.csv", binary, "binary"),
        ("header-only.csv", to_csv(&header, &[]), "no data rows"),
        (
            "wrong.csv",
            b"name,amount\nalice,3\nbob,4\n".to_vec(),
            "lacks required columns",
        ),
    ];
    for (name, bytes, expected) in cases {
        let key = format!("landing/{name}");
        f.put(&key, bytes).await;
        let summary = f.ingestor.ingest(&key).await.unwrap();
        let Outcome::Failed { reason } = &summary.outcome else {
            panic!("{name}: {:?}", summary.outcome);
        };
        assert!(reason.contains(expected), "{name}: {reason}");
        assert!(f.exists(&format!("failed/{name}")).await, "{name}");
        assert!(!f.exists(&key).await, "{name}");
        let written = f.text(&format!("failed/{name}.reason.txt")).await;
        assert_eq!(written.trim(), reason);
    }
    assert_eq!(f.customers().await, 0);
    let rejected: i64 = sqlx::query_scalar("select count(*) from ops.rejected_records")
        .fetch_one(&f.db.pool)
        .await
        .unwrap();
    assert_eq!(rejected, 0);
}

#[tokio::test]
async fn polling_ingests_every_landed_file() {
    let f = Fixture::new().await;
    let (header, rows) = seed_rows(60);
    f.put("landing/one.csv", to_csv(&header, &rows[..30])).await;
    f.put("landing/two.csv", to_csv(&header, &rows[30..])).await;
    let results = f.ingestor.poll().await.unwrap();
    assert_eq!(results.len(), 2);
    assert!(
        results
            .iter()
            .all(|(_, r)| matches!(r.as_ref().map(|s| &s.outcome), Ok(Outcome::Processed)))
    );
    assert_eq!(f.customers().await, 60);
    assert!(f.ingestor.poll().await.unwrap().is_empty());
}
