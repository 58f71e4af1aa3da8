//! `churnctl bench …`: the benchmark harness behind BENCHMARKS.md, one module per benchmark. Build with
//! `--release`.

mod copy;
mod ingest;
mod metrics;
mod overload;
mod predict;
mod synth;
mod train;

use std::path::PathBuf;

use anyhow::Context;
use churn_core::Customer;
use churn_synth::Sampler;
use clap::Subcommand;

use crate::registry_args::{RegistryArgs, seed_or};

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Ingestion: a 1,000,000-row landed file end to end against a bare COPY of the same rows, peak
    /// resident memory, and upload-to-visible latency of a 10,000-row file. Prints a Markdown table.
    Ingest(ingest::IngestBenchArgs),
    /// Synthesizer: fit time, sampling rows/s (10k and 1M rows), end-to-end CSV writing, peak memory,
    /// fidelity. Prints a Markdown table.
    Synth {
        /// [default: $CHURN_SEED_DATA, else shared/data/telco_customer_churn.csv in an ancestor folder]
        #[arg(long)]
        data: Option<PathBuf>,
        /// Repetitions of each timing (the median is reported).
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Directory for the end-to-end CSV (default: the system temp dir).
        #[arg(long)]
        scratch: Option<PathBuf>,
        /// Also measure a running synthesizer service at this URL (e.g. http://127.0.0.1:8001).
        #[arg(long)]
        service_url: Option<String>,
    },
    /// AutoML: test ROC AUC and training time on stratified 80/20 splits (each trained twice to check
    /// determinism), optionally against FLAML on the same splits; prediction speed per family.
    Train {
        /// [default: $CHURN_SEED_DATA, else shared/data/telco_customer_churn.csv in an ancestor folder]
        #[arg(long)]
        data: Option<PathBuf>,
        #[arg(long, default_value_t = 60)]
        time_budget_secs: u64,
        /// Split seeds to evaluate.
        #[arg(long, value_delimiter = ',', default_value = "0,1")]
        split_seeds: Vec<u64>,
        /// Python of the FLAML venv (see bench/flaml/README.md) to run the baseline on the same splits.
        #[arg(long)]
        flaml_python: Option<PathBuf>,
    },
    /// Load against a running service well beyond its concurrency limit: latency of admitted requests and
    /// of shed ones (503), any other error, and the service's memory before and after.
    Overload {
        /// The service, e.g. http://127.0.0.1:8000.
        #[arg(long)]
        url: String,
        /// Route to POST to.
        #[arg(long, default_value = "/predict/batch")]
        path: String,
        /// A file holding the JSON body to send.
        #[arg(long)]
        body: PathBuf,
        /// Requests in flight at once.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        #[arg(long, default_value_t = 15)]
        secs: u64,
    },
    /// The warehouse write ceiling: transactions of three COPYs (customers, synthesized, classified, with
    /// their foreign keys) of synthetic customers, timed without HTTP or models in the way.
    Copy {
        /// PostgreSQL, migrated [default: $DATABASE_URL].
        #[arg(long)]
        database_url: Option<String>,
        /// Customers per transaction.
        #[arg(long, default_value_t = 10_000)]
        batch_size: usize,
        /// Transactions to time.
        #[arg(long, default_value_t = 20)]
        batches: usize,
    },
    /// The metrics job over ROWS labelled predictions of one version in one window, the same rows read
    /// without computing anything (the ceiling), and the default two windows. Fills a migrated,
    /// preferably empty database (scripts/bench-metrics makes a scratch one).
    Metrics {
        /// PostgreSQL [default: $DATABASE_URL].
        #[arg(long)]
        database_url: Option<String>,
        #[arg(long, default_value_t = 1_000_000)]
        rows: usize,
        /// Repetitions of each timing (the median is reported).
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Time the cohort metrics over `rows` logged predictions (serving.inference_log) with
        /// outcomes for half the customers, instead of the windows over the warehouse's.
        #[arg(long)]
        logged: bool,
    },
    /// The classifier's per-request work in-process: parse, predict one, explain, batch of 1,000.
    Predict {
        /// registry:churn-classifier@champion, or a model.json path.
        #[arg(long)]
        model: String,
        /// [default: $CHURN_SEED_DATA, else shared/data/telco_customer_churn.csv in an ancestor folder]
        #[arg(long)]
        data: Option<PathBuf>,
        #[command(flatten)]
        registry: RegistryArgs,
    },
}

pub async fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Ingest(args) => ingest::run(args).await,
        BenchCommand::Copy {
            database_url,
            batch_size,
            batches,
        } => copy::copy_ceiling(database_url, batch_size.max(1), batches.max(1)).await,
        BenchCommand::Metrics {
            database_url,
            rows,
            runs,
            logged: false,
        } => metrics::bench_metrics(database_url, rows.max(1), runs.max(1)).await,
        BenchCommand::Metrics {
            database_url,
            rows,
            runs,
            logged: true,
        } => metrics::bench_cohorts(database_url, rows.max(1), runs.max(1)).await,
        BenchCommand::Overload {
            url,
            path,
            body,
            concurrency,
            secs,
        } => overload::overload(&url, &path, &body, concurrency.max(1), secs).await,
        BenchCommand::Synth {
            data,
            runs,
            scratch,
            service_url,
        } => {
            let data = seed_or(data);
            tokio::task::spawn_blocking(move || synth::bench_synth(&data, runs.max(1), scratch))
                .await??;
            if let Some(url) = service_url {
                synth::bench_synth_service(&url, runs.max(1)).await?;
            }
            Ok(())
        }
        BenchCommand::Predict {
            model,
            data,
            registry,
        } => {
            let model = crate::util::load_classifier(&model, &registry).await?;
            let data = seed_or(data);
            tokio::task::spawn_blocking(move || predict::bench_predict(&model, &data)).await?
        }
        BenchCommand::Train {
            data,
            time_budget_secs,
            split_seeds,
            flaml_python,
        } => {
            let data = seed_or(data);
            tokio::task::spawn_blocking(move || {
                train::bench_train(
                    &data,
                    time_budget_secs,
                    &split_seeds,
                    flaml_python.as_deref(),
                )
            })
            .await?
        }
    }
}

/// The middle value of `values` (the upper one of an even count).
pub(super) fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The peak resident memory a running service reports on its /metrics, in MiB.
pub(super) async fn service_peak_memory_mib(
    client: &reqwest::Client,
    url: &str,
) -> anyhow::Result<f64> {
    service_memory_mib(client, url, "process_resident_memory_peak_bytes")
        .await?
        .context("the service's /metrics has no process_resident_memory_peak_bytes")
}

/// A byte gauge of a running service's /metrics (`metric`), in MiB; `None` when it reports none.
pub(super) async fn service_memory_mib(
    client: &reqwest::Client,
    url: &str,
    metric: &str,
) -> anyhow::Result<Option<f64>> {
    let text = client
        .get(format!("{url}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix(metric)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|b| b / (1024.0 * 1024.0)))
}

/// The database `--database-url` (or DATABASE_URL) names, migrated, with a pool of `connections`, and the
/// environment the URL was read from.
pub(super) async fn migrated_pool(
    database_url: Option<String>,
    connections: u32,
) -> anyhow::Result<(churn_config::Env, sqlx::PgPool)> {
    let env = churn_config::Env::process_with(database_url.map(|u| ("DATABASE_URL", u)));
    let database = churn_config::DatabaseConfig::from_env(&env)?;
    churn_store::migrate(database.url.expose()).await?;
    let pool = churn_store::connect(database.url.expose(), connections).await?;
    Ok((env, pool))
}

/// `n` customers sampled with `seed` (on 2 threads), each with a new time-ordered id, as the generate job
/// writes them.
pub(super) fn synthetic_customers(
    sampler: &Sampler,
    ulids: &mut ulid::Generator,
    n: usize,
    seed: u64,
) -> Vec<(churn_core::CustomerId, Customer)> {
    sampler
        .sample(n as u64, seed, 2)
        .iter()
        .map(|r| {
            (
                churn_store::warehouse::next_customer_id(ulids),
                sampler.to_customer(r),
            )
        })
        .collect()
}
