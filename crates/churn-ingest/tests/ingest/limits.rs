//! Files built to exhaust a reader: a gzip bomb, a 100 MB line, 10,000 columns. Each must fail with the
//! bound it broke named, leave the warehouse untouched, cost little memory, and never be read again.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use churn_ingest::Outcome;
use object_store::path::Path;
use object_store::{ObjectStoreExt, WriteMultipart};

use crate::{Fixture, seed_rows, to_csv};

/// Resident memory of this process, in bytes (each test is its own process under nextest, so the
/// ingestion's growth shows; a plain `cargo test` shares it between threads and only loosens the bound).
fn resident() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Ingests `key`, sampling resident memory meanwhile; returns the failure reason and the peak growth.
async fn ingest_measured(f: &Fixture, key: &str) -> (String, u64) {
    let before = resident();
    let peak = Arc::new(AtomicU64::new(before));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (Arc::clone(&peak), Arc::clone(&done));
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(resident(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let summary = f.ingestor.ingest(key).await.unwrap();
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let Outcome::Failed { reason } = summary.outcome else {
        panic!("{key}: {:?}", summary.outcome);
    };
    (reason, peak.load(Ordering::Relaxed).saturating_sub(before))
}

/// What every refused file must leave behind: the file and its reason under `failed/`, nothing in the
/// warehouse, and nothing for the next poll; the same bytes landing again fail without being read.
async fn assert_refused_for_good(f: &Fixture, name: &str, bytes_again: Option<Vec<u8>>) {
    let key = format!("landing/{name}");
    assert!(f.exists(&format!("failed/{name}")).await, "{name}");
    assert!(!f.exists(&key).await, "{name}");
    assert_eq!(f.customers().await, 0, "{name}");
    assert!(f.ingestor.poll().await.unwrap().is_empty(), "{name}");
    if let Some(bytes) = bytes_again {
        f.put(&key, bytes).await;
        let again = f.ingestor.ingest(&key).await.unwrap();
        assert!(
            matches!(again.outcome, Outcome::Failed { .. }),
            "{name}: {again:?}"
        );
        assert!(!f.exists(&key).await, "{name}");
    }
}

/// Memory a refused file may add to the process: the limits are 1 MiB each, the rest is buffers.
const MAX_GROWTH: u64 = 64 << 20;

#[tokio::test]
async fn a_gzip_bomb_of_a_gib_fails_at_the_inflation_ratio_within_a_few_mib() {
    let f = Fixture::new().await;
    let (header, _) = seed_rows(0);
    // A valid header, then blank lines: 8 MiB compresses to about 8 KB, and 128 gzip members of it (a
    // reader must read them all) inflate to 1 GiB from about 1 MiB.
    let mut member = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    member.write_all(&vec![b'\n'; 8 << 20]).unwrap();
    let member = member.finish().unwrap();
    let mut bomb = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    bomb.write_all(&to_csv(&header, &[])).unwrap();
    let mut bomb = bomb.finish().unwrap();
    for _ in 0..128 {
        bomb.extend_from_slice(&member);
    }
    assert!(bomb.len() < 2 << 20, "{} bytes", bomb.len());
    f.put("landing/bomb.csv.gz", bomb.clone()).await;

    let (reason, growth) = ingest_measured(&f, "landing/bomb.csv.gz").await;
    assert!(reason.contains("INGEST_MAX_INFLATION_RATIO"), "{reason}");
    assert!(reason.contains("100 times"), "{reason}");
    assert!(growth < MAX_GROWTH, "grew by {growth} bytes");
    assert_refused_for_good(&f, "bomb.csv.gz", Some(bomb)).await;
}

#[tokio::test]
async fn a_single_line_of_100_mb_fails_at_the_line_limit_without_being_held() {
    let f = Fixture::new().await;
    let (header, _) = seed_rows(0);
    // Uploaded in parts, so the test itself never holds the 100 MB either.
    let upload = f
        .store
        .put_multipart(&Path::from("landing/long-line.csv"))
        .await
        .unwrap();
    let mut writer = WriteMultipart::new_with_chunk_size(upload, 5 << 20);
    writer.write(&to_csv(&header, &[]));
    let chunk = vec![b'a'; 1 << 20];
    for _ in 0..100 {
        writer.write(&chunk);
    }
    writer.finish().await.unwrap();

    let (reason, growth) = ingest_measured(&f, "landing/long-line.csv").await;
    assert!(reason.contains("stopped at line 2"), "{reason}");
    assert!(reason.contains("INGEST_MAX_LINE_BYTES"), "{reason}");
    assert!(growth < MAX_GROWTH, "grew by {growth} bytes");
    assert_refused_for_good(&f, "long-line.csv", None).await;
}

#[tokio::test]
async fn a_record_spanning_many_lines_fails_at_the_record_limit() {
    let f = Fixture::new().await;
    let (header, rows) = seed_rows(1);
    // An opened quote that never closes: every following line belongs to one field of one record.
    let mut bytes = to_csv(&header, &rows);
    bytes.extend_from_slice(b"\"");
    bytes.extend(std::iter::repeat_n(b"0123456789\n".as_slice(), 300_000).flatten());
    f.put("landing/open-quote.csv", bytes).await;

    let (reason, _) = ingest_measured(&f, "landing/open-quote.csv").await;
    assert!(reason.contains("INGEST_MAX_RECORD_BYTES"), "{reason}");
    assert!(f.exists("failed/open-quote.csv").await);
}

#[tokio::test]
async fn a_header_of_10000_columns_fails_naming_the_column_limit() {
    let f = Fixture::new().await;
    let (mut header, rows) = seed_rows(2);
    let real = header.len();
    header.extend((real..10_000).map(|i| format!("extra_{i}")));
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|mut row| {
            row.resize(10_000, String::new());
            row
        })
        .collect();
    let bytes = to_csv(&header, &rows);
    f.put("landing/wide.csv", bytes.clone()).await;

    let (reason, growth) = ingest_measured(&f, "landing/wide.csv").await;
    assert!(
        reason.contains("10000 columns, more than the limit of 1000"),
        "{reason}"
    );
    assert!(growth < MAX_GROWTH, "grew by {growth} bytes");
    assert_refused_for_good(&f, "wide.csv", Some(bytes)).await;
}
