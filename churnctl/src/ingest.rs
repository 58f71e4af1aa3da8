//! `churnctl ingest FILE|s3://bucket/key`: the scheduler's ingestion code path from the command line. A
//! local file is uploaded to `landing/` first, so both go through the same steps (and the same
//! exactly-once keys) as a file a business drops in the bucket.

use std::path::PathBuf;

use anyhow::Context;
use churn_config::ObjectStoreUrl;
use churn_ingest::{IngestOptions, Ingestor, Outcome, Summary};
use churn_store::ObjectStoreHandle;
use clap::Args;
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjectPath;
use tokio::io::AsyncWriteExt;

use crate::registry_args::RegistryArgs;

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// A local CSV (plain or .gz), uploaded to landing/<its name>; or s3://BUCKET/landing/NAME, a file
    /// already in the configured bucket.
    pub file: String,
    /// Rows per transaction and checkpoint.
    #[arg(long, default_value_t = IngestOptions::default().batch_rows)]
    pub batch_rows: usize,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: RegistryArgs,
}

/// The key under the configured store that `s3://bucket/key` names.
fn key_in_store(url: &str, store: &ObjectStoreUrl) -> anyhow::Result<String> {
    let rest = url
        .strip_prefix("s3://")
        .context("expected s3://BUCKET/KEY")?;
    let (bucket, key) = rest
        .split_once('/')
        .with_context(|| format!("{url}: expected s3://BUCKET/KEY"))?;
    match store {
        ObjectStoreUrl::S3 {
            bucket: configured,
            prefix,
        } if configured == bucket => churn_ingest::event::relative_key(key, prefix)
            .map(str::to_owned)
            .with_context(|| {
                format!("{url} lies outside the configured store s3://{configured}/{prefix}")
            }),
        other => anyhow::bail!(
            "{url} is not in the configured object store {other} (set OBJECT_STORE_URL or --object-store-url)"
        ),
    }
}

/// Streams a local file to `landing/<name>` (multipart, so a big file never sits in memory).
async fn upload(objects: &ObjectStoreHandle, file: &PathBuf) -> anyhow::Result<String> {
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{} has no usable file name", file.display()))?;
    let key = format!("{}{name}", churn_ingest::LANDING);
    let mut source = tokio::fs::File::open(file)
        .await
        .with_context(|| format!("cannot open {}", file.display()))?;
    let mut upload = object_store::buffered::BufWriter::new(
        objects.store.clone(),
        ObjectPath::from(key.as_str()),
    );
    tokio::io::copy(&mut source, &mut upload)
        .await
        .with_context(|| format!("uploading {} to {key}", file.display()))?;
    upload
        .shutdown()
        .await
        .with_context(|| format!("uploading to {key}"))?;
    Ok(key)
}

pub async fn run(args: IngestArgs) -> anyhow::Result<std::process::ExitCode> {
    let (pool, handle, objects) = args.store.connect().await?;
    let key = if args.file.starts_with("s3://") {
        key_in_store(&args.file, &objects.url)?
    } else {
        let path = PathBuf::from(&args.file);
        // Uploading again after a crash is harmless: progress is keyed by the bytes, and the same
        // bytes resume after their checkpoint.
        upload(&handle, &path).await?
    };
    // Make sure the object is there before the work starts, for a clear error.
    if let Err(object_store::Error::NotFound { .. }) =
        handle.store.head(&ObjectPath::from(key.as_str())).await
    {
        anyhow::bail!("{key} is not in the object store {}", objects.url);
    }
    let ingestor = Ingestor::new(
        pool,
        handle.store.clone(),
        IngestOptions {
            batch_rows: args.batch_rows,
            ..IngestOptions::default()
        },
    );
    let summary = ingestor.ingest(&key).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_summary(&summary);
    }
    Ok(match summary.outcome {
        Outcome::Failed { .. } => std::process::ExitCode::FAILURE,
        _ => std::process::ExitCode::SUCCESS,
    })
}

fn print_summary(s: &Summary) {
    let outcome = match &s.outcome {
        Outcome::Processed => "processed".to_owned(),
        Outcome::AlreadyProcessed => "already processed: nothing changed".to_owned(),
        Outcome::Duplicate { of } => format!("duplicate of {of}: nothing changed"),
        Outcome::Failed { reason } => format!("failed: {reason}"),
    };
    let mut table = crate::table::new(&["", ""], &[]);
    for (k, v) in [
        ("file", s.object_key.clone()),
        ("sha256", s.sha256.clone()),
        ("outcome", outcome),
        ("moved to", s.moved_to.clone().unwrap_or_else(|| "-".into())),
        ("rows in", s.rows_in.to_string()),
        ("accepted", s.rows_accepted.to_string()),
        ("inserted", s.rows_inserted.to_string()),
        ("updated", s.rows_updated.to_string()),
        ("rejected", s.rows_rejected.to_string()),
        (
            "quarantine",
            s.quarantine_key.clone().unwrap_or_else(|| "-".into()),
        ),
    ] {
        table.add_row(vec![k.to_owned(), v]);
    }
    println!("{table}");
    if !s.rejected_by_reason.is_empty() {
        let mut reasons = crate::table::new(&["rejected rows", "reason"], &[0]);
        for (reason, n) in &s.rejected_by_reason {
            reasons.add_row(vec![n.to_string(), reason.clone()]);
        }
        println!("{reasons}");
    }
}
