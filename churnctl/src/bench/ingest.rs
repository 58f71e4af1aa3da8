//! `churnctl bench ingest`: a 1,000,000-row landed file ingested end to end, against a bare COPY of the
//! same rows in the same run, the process's peak resident memory, and upload-to-visible latency of a
//! 10,000-row file. Each measurement gets a fresh database on the given server.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use churn_ingest::{IngestOptions, Ingestor, Outcome};
use churn_store::ObjectStoreHandle;
use clap::Args;
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjectPath;
use sqlx::Connection;
use tokio::io::AsyncWriteExt;

#[derive(Debug, Args)]
pub struct IngestBenchArgs {
    /// Rows of the big file.
    #[arg(long, default_value_t = 1_000_000)]
    rows: usize,
    /// Rows of the latency file.
    #[arg(long, default_value_t = 10_000)]
    latency_rows: usize,
    /// Rows per statement batch (a savepoint in the file's one transaction).
    #[arg(long, default_value_t = IngestOptions::default().batch_rows)]
    batch_rows: usize,
    /// The PostgreSQL server; fresh databases are created on it and dropped [default: $DATABASE_URL].
    #[arg(long)]
    database_url: Option<String>,
    /// Where the files are generated and the object store lives unless OBJECT_STORE_URL says otherwise
    /// [default: the system temp dir].
    #[arg(long)]
    scratch: Option<PathBuf>,
}

/// A migrated database of its own, dropped at the end.
struct BenchDb {
    admin_url: String,
    name: String,
    url: String,
}

impl BenchDb {
    async fn create(server: &str) -> anyhow::Result<BenchDb> {
        let mut url = url::Url::parse(server).context("DATABASE_URL")?;
        url.set_path("/postgres");
        let admin_url = url.to_string();
        let name = format!("churn_bench_ingest_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&admin_url).await?;
        churn_store::admin::create_database(&mut admin, &name).await?;
        url.set_path(&format!("/{name}"));
        let db = BenchDb {
            admin_url,
            name,
            url: url.to_string(),
        };
        churn_store::migrate(&db.url).await?;
        Ok(db)
    }

    /// A pool on this database and an ingestor writing through it.
    async fn ingestor(
        &self,
        store: &ObjectStoreHandle,
        batch_rows: usize,
    ) -> anyhow::Result<(sqlx::PgPool, Ingestor)> {
        let pool = churn_store::connect(&self.url, 4).await?;
        let ingestor = Ingestor::new(
            pool.clone(),
            store.store.clone(),
            IngestOptions {
                batch_rows,
                ..IngestOptions::default()
            },
        );
        Ok((pool, ingestor))
    }

    async fn drop(self) -> anyhow::Result<()> {
        let mut admin = sqlx::PgConnection::connect(&self.admin_url).await?;
        churn_store::admin::drop_database(&mut admin, &self.name).await?;
        Ok(())
    }
}

/// The seed file's rows repeated to `rows`, CustomerIDs made unique, in the dataset's layout.
fn write_file(seed: &Path, path: &Path, rows: usize) -> anyhow::Result<u64> {
    let text = std::fs::read_to_string(seed).with_context(|| seed.display().to_string())?;
    let mut lines = text.lines();
    let header = lines.next().context("the seed file is empty")?;
    let body: Vec<&str> = lines.filter(|l| !l.trim().is_empty()).collect();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    writeln!(out, "{header}")?;
    for i in 0..rows {
        let row = body[i % body.len()];
        let (id, rest) = row.split_once(',').context("a seed row without fields")?;
        writeln!(out, "{id}-{},{rest}", i / body.len())?;
    }
    out.flush()?;
    Ok(std::fs::metadata(path)?.len())
}

async fn upload(store: &ObjectStoreHandle, file: &Path, key: &str) -> anyhow::Result<()> {
    let mut source = tokio::fs::File::open(file).await?;
    let mut upload =
        object_store::buffered::BufWriter::new(store.store.clone(), ObjectPath::from(key));
    tokio::io::copy(&mut source, &mut upload).await?;
    upload.shutdown().await?;
    Ok(())
}

/// The same rows as COPY payload (the warehouse's column layout), written to `out`; not timed.
fn copy_payload(file: &Path, out: &Path) -> anyhow::Result<()> {
    let reader = churn_core::CustomerReader::open(file)?;
    let mut writer = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(out)?);
    let mut ids = ulid::Generator::new();
    let mut chunk: Vec<(churn_core::CsvRow, churn_core::CustomerId)> = Vec::with_capacity(10_000);
    let mut flush =
        |chunk: &mut Vec<(churn_core::CsvRow, churn_core::CustomerId)>| -> anyhow::Result<()> {
            let rows: Vec<(churn_core::CustomerId, &churn_core::Customer, Option<&str>)> = chunk
                .iter()
                .map(|(r, id)| (*id, &r.customer, r.customer_id.as_deref()))
                .collect();
            writer.write_all(&churn_store::warehouse::customer_rows(
                churn_store::warehouse::Source::Ingested,
                &rows,
            ))?;
            chunk.clear();
            Ok(())
        };
    for row in reader {
        chunk.push((row?, churn_store::warehouse::next_customer_id(&mut ids)));
        if chunk.len() == 10_000 {
            flush(&mut chunk)?;
        }
    }
    flush(&mut chunk)?;
    writer.flush()?;
    Ok(())
}

/// COPYs the payload file into `churn.customers` in one statement, timed from the first byte sent.
async fn bare_copy(url: &str, payload: &Path) -> anyhow::Result<(u64, Duration)> {
    let mut conn = sqlx::PgConnection::connect(url).await?;
    let started = Instant::now();
    let rows = churn_store::admin::copy_customers_file(&mut conn, payload).await?;
    Ok((rows, started.elapsed()))
}

fn rss_now_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

pub(super) async fn run(args: IngestBenchArgs) -> anyhow::Result<()> {
    let env =
        churn_config::Env::process_with(args.database_url.clone().map(|u| ("DATABASE_URL", u)));
    let server = churn_config::DatabaseConfig::from_env(&env)?;
    let scratch = tempfile::tempdir_in(args.scratch.unwrap_or_else(std::env::temp_dir))?;
    let objects = match env.get("OBJECT_STORE_URL") {
        Some(_) => churn_config::ObjectStoreConfig::from_env(&env)?,
        None => churn_config::ObjectStoreConfig {
            url: churn_config::ObjectStoreUrl::File {
                dir: scratch.path().join("objects"),
            },
            s3: churn_config::S3Options::default(),
        },
    };
    let store = ObjectStoreHandle::open(&objects.url, &objects.s3)?;
    let seed = churn_config::seed_data_path(&env);

    // The 1M-row file, generated and uploaded (not timed).
    let big = scratch.path().join("customers-1m.csv");
    let bytes = write_file(&seed, &big, args.rows)?;
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let key = format!("landing/bench-{run_id}.csv");
    upload(&store, &big, &key).await?;
    let rss_before = rss_now_mib();

    // Ingestion, end to end (hash pass, parse, validate, upsert batches, checkpoint, move).
    let db = BenchDb::create(server.url.expose()).await?;
    let (pool, ingestor) = db.ingestor(&store, args.batch_rows).await?;
    let started = Instant::now();
    let summary = ingestor.ingest(&key).await?;
    let ingest_secs = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        summary.outcome == Outcome::Processed && summary.rows_inserted as usize == args.rows,
        "the bench file was not ingested whole: {summary:?}"
    );
    let peak = crate::util::peak_rss_mib();
    pool.close().await;
    db.drop().await?;

    // The bare COPY of the same rows (payload prepared beforehand, not timed) on a fresh database.
    let payload = scratch.path().join("copy-payload.csv");
    {
        let (big, payload) = (big.clone(), payload.clone());
        tokio::task::spawn_blocking(move || copy_payload(&big, &payload)).await??;
    }
    let db = BenchDb::create(server.url.expose()).await?;
    let (copied, copy_time) = bare_copy(&db.url, &payload).await?;
    db.drop().await?;
    anyhow::ensure!(copied as usize == args.rows, "COPY wrote {copied} rows");
    let copy_secs = copy_time.as_secs_f64();

    // Upload-to-visible latency of a small file, as the webhook path runs it.
    let db = BenchDb::create(server.url.expose()).await?;
    let (pool, ingestor) = db.ingestor(&store, args.batch_rows).await?;
    let small = scratch.path().join("customers-10k.csv");
    write_file(&seed, &small, args.latency_rows)?;
    let small_bytes = tokio::fs::read(&small).await?;
    let small_key = format!("landing/latency-{run_id}.csv");
    let started = Instant::now();
    store
        .store
        .put(&ObjectPath::from(small_key.as_str()), small_bytes.into())
        .await?;
    ingestor.ingest(&small_key).await?;
    loop {
        let visible = churn_store::admin::customer_count(&pool).await?;
        if visible as usize >= args.latency_rows {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let latency = started.elapsed().as_secs_f64();
    pool.close().await;
    db.drop().await?;

    let ingest_rate = args.rows as f64 / ingest_secs;
    let copy_rate = args.rows as f64 / copy_secs;
    println!("| measurement | value |");
    println!("|---|---|");
    println!(
        "| file | {} rows, {:.1} MB, CSV in the dataset's layout |",
        args.rows,
        bytes as f64 / 1e6
    );
    println!(
        "| ingestion, end to end ({} rows per batch, one transaction per file) | {ingest_secs:.1} s, {ingest_rate:.0} rows/s |",
        args.batch_rows
    );
    println!("| bare COPY of the same rows | {copy_secs:.1} s, {copy_rate:.0} rows/s |");
    println!("| ingestion / bare COPY | {:.2} |", ingest_rate / copy_rate);
    println!(
        "| resident memory: before ingesting, peak of the run | {} MiB, {} MiB |",
        rss_before.map_or("?".into(), |m| format!("{m:.0}")),
        peak.map_or("?".into(), |m| format!("{m:.0}"))
    );
    println!(
        "| upload to visible in churn.customers, {} rows | {latency:.2} s |",
        args.latency_rows
    );
    Ok(())
}
