//! `churnctl bench …`: the benchmark harness behind BENCHMARKS.md. Build with `--release`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::Context;
use churn_core::Customer;
use churn_synth::{FitOptions, Sampler, SynthModel, report};
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Ingestion: a 1,000,000-row landed file end to end against a bare COPY of the same rows, peak
    /// resident memory, and upload-to-visible latency of a 10,000-row file. Prints a Markdown table.
    Ingest(crate::bench_ingest::IngestBenchArgs),
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
        registry: crate::registry_args::RegistryArgs,
    },
}

pub async fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Ingest(args) => crate::bench_ingest::run(args).await,
        BenchCommand::Copy {
            database_url,
            batch_size,
            batches,
        } => copy_ceiling(database_url, batch_size.max(1), batches.max(1)).await,
        BenchCommand::Metrics {
            database_url,
            rows,
            runs,
        } => bench_metrics(database_url, rows.max(1), runs.max(1)).await,
        BenchCommand::Overload {
            url,
            path,
            body,
            concurrency,
            secs,
        } => overload(&url, &path, &body, concurrency.max(1), secs).await,
        BenchCommand::Synth {
            data,
            runs,
            scratch,
            service_url,
        } => {
            let data = crate::registry_args::seed_or(data);
            tokio::task::spawn_blocking(move || bench_synth(&data, runs.max(1), scratch)).await??;
            if let Some(url) = service_url {
                bench_synth_service(&url, runs.max(1)).await?;
            }
            Ok(())
        }
        BenchCommand::Predict {
            model,
            data,
            registry,
        } => {
            let model = crate::train::load(&model, &registry).await?;
            let data = crate::registry_args::seed_or(data);
            tokio::task::spawn_blocking(move || bench_predict(&model, &data)).await?
        }
        BenchCommand::Train {
            data,
            time_budget_secs,
            split_seeds,
            flaml_python,
        } => {
            let data = crate::registry_args::seed_or(data);
            tokio::task::spawn_blocking(move || {
                bench_train(
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

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Peak resident memory of this process in MiB (Linux), from /proc/self/status.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn bench_synth(data: &Path, runs: usize, scratch: Option<PathBuf>) -> anyhow::Result<()> {
    let customers: Vec<Customer> = churn_core::read_customers(data)?;
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);

    let fit_secs = median(
        (0..runs)
            .map(|_| {
                let started = Instant::now();
                let model = SynthModel::fit(&customers, FitOptions::default());
                let secs = started.elapsed().as_secs_f64();
                drop(model);
                secs
            })
            .collect(),
    );
    let model = SynthModel::fit(&customers, FitOptions::default())?;
    let sampler = Sampler::new(model.clone())?;

    let rate = |n: u64| -> f64 {
        let secs = median(
            (0..runs)
                .map(|i| {
                    let started = Instant::now();
                    let rows = sampler.sample(n, i as u64, threads);
                    let secs = started.elapsed().as_secs_f64();
                    drop(rows);
                    secs
                })
                .collect(),
        );
        n as f64 / secs
    };
    let rate_10k = rate(10_000);
    let rate_1m = rate(1_000_000);

    // End to end: the real CLI in a child process, from start-up to the CSV on disk.
    let dir = scratch.unwrap_or_else(std::env::temp_dir);
    let model_path = dir.join("churn-bench-synth.json");
    std::fs::write(&model_path, model.to_bytes()?)?;
    let csv_path = dir.join("churn-bench-synth.csv");
    let exe = std::env::current_exe()?;
    let mut e2e = Vec::new();
    let mut child_peak = String::new();
    for i in 0..runs {
        let started = Instant::now();
        let out = Command::new(&exe)
            .args(["synth", "sample", "--model"])
            .arg(&model_path)
            .args(["-n", "1000000", "--seed", &i.to_string(), "--out"])
            .arg(&csv_path)
            .output()
            .context("running churnctl synth sample")?;
        e2e.push(started.elapsed().as_secs_f64());
        anyhow::ensure!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        child_peak = String::from_utf8_lossy(&out.stdout)
            .split("peak memory ")
            .nth(1)
            .map(|s| s.trim().trim_end_matches(')').to_owned())
            .unwrap_or_default();
    }
    let csv_bytes = std::fs::metadata(&csv_path).map(|m| m.len()).unwrap_or(0);
    let _ = std::fs::remove_file(&csv_path);
    let _ = std::fs::remove_file(&model_path);
    let e2e_secs = median(e2e);

    let synthetic: Vec<Customer> = sampler
        .sample(10_000, 42, threads)
        .iter()
        .map(|r| sampler.to_customer(r))
        .collect();
    let quality = report::quality(&customers, &synthetic);
    let bootstrap = report::quality(&customers, &report::bootstrap(&customers, 10_000, 42));
    let independent = report::quality(
        &customers,
        &report::independent_columns(&customers, 10_000, 42),
    );

    println!("| measure | result | target / reference |");
    println!("|---|---|---|");
    println!(
        "| fit on {} rows (median of {runs}) | {:.3} s | ≤ 0.25 s (SDV 4.9 s) → {:.0}× faster than SDV |",
        customers.len(),
        fit_secs,
        4.9 / fit_secs
    );
    println!(
        "| sample 10,000 rows in-process ({threads} threads) | {:.0} rows/s | SDV ~4,800 rows/s |",
        rate_10k
    );
    println!(
        "| sample 1,000,000 rows in-process ({threads} threads) | {:.0} rows/s | {:.0}× SDV |",
        rate_1m,
        rate_1m / 4800.0
    );
    println!(
        "| `churnctl synth sample -n 1000000 --out FILE` end to end | {:.3} s = {:.0} rows/s ({:.0} MB CSV) | ≥ 480,000 rows/s → {:.0}× SDV |",
        e2e_secs,
        1e6 / e2e_secs,
        csv_bytes as f64 / 1e6,
        1e6 / e2e_secs / 4800.0
    );
    println!(
        "| peak memory of that command | {child_peak} | flat in n (rows are streamed to disk) |"
    );
    println!(
        "| quality on 10,000 rows: overall / shapes / pair trends | {:.4} / {:.4} / {:.4} | ≥ 0.90 / ≥ 0.95 / — |",
        quality.overall_score, quality.column_shapes_score, quality.column_pair_trends_score
    );
    println!(
        "| same metric, bootstrap of the real rows (ceiling) | {:.4} / {:.4} / {:.4} | |",
        bootstrap.overall_score, bootstrap.column_shapes_score, bootstrap.column_pair_trends_score
    );
    println!(
        "| same metric, independent columns (floor) | {:.4} / {:.4} / {:.4} | |",
        independent.overall_score,
        independent.column_shapes_score,
        independent.column_pair_trends_score
    );
    println!(
        "| rows passing all four rules (model / independent columns) | {:.2}% / {:.2}% | 100% (SDV 0%) |",
        100.0 * quality.validity.all_rules,
        100.0 * independent.validity.all_rules
    );
    Ok(())
}

async fn peak_memory_mib(client: &reqwest::Client, url: &str) -> anyhow::Result<f64> {
    let text = client
        .get(format!("{url}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    text.lines()
        .find_map(|l| l.strip_prefix("process_resident_memory_peak_bytes "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|b| b / (1024.0 * 1024.0))
        .context("the service's /metrics has no process_resident_memory_peak_bytes")
}

/// Times `batches` transactions of `batch_size` customers written as the generate job writes them.
async fn copy_ceiling(
    database_url: Option<String>,
    batch_size: usize,
    batches: usize,
) -> anyhow::Result<()> {
    use churn_store::warehouse::{Classification, Synthesis, write_generated};
    let env = churn_config::Env::process_with(database_url.map(|u| ("DATABASE_URL", u)));
    let database = churn_config::DatabaseConfig::from_env(&env)?;
    churn_store::migrate(database.url.expose()).await?;
    let pool = churn_store::connect(database.url.expose(), 2).await?;
    let seed = churn_core::read_customers(&churn_config::seed_data_path(&env))?;
    let model = SynthModel::fit(&seed, FitOptions::default())?;
    let sampler = Sampler::new(model)?;
    let mut ulids = ulid::Generator::new();
    let synthesis = Synthesis {
        synthesizer_name: "bench".to_owned(),
        synthesizer_version: 1,
        seed: Some(0),
    };
    // The foreign keys of the monitoring tables are not involved; the registry needs no version here.
    let mut seconds = Vec::with_capacity(batches);
    for b in 0..batches {
        let rows = sampler.sample(batch_size as u64, b as u64, 2);
        let customers: Vec<(uuid::Uuid, Customer)> = rows
            .iter()
            .map(|r| {
                (
                    churn_store::warehouse::next_customer_id(&mut ulids),
                    sampler.to_customer(r),
                )
            })
            .collect();
        let classifications: Vec<Classification> = customers
            .iter()
            .enumerate()
            .map(|(i, (id, _))| {
                let p = (i % 100) as f64 / 100.0;
                Classification {
                    customer_id: *id,
                    model_name: "bench".to_owned(),
                    model_version: 1,
                    churn_probability: p,
                    predicted_churn_label: p >= 0.5,
                    threshold: 0.5,
                }
            })
            .collect();
        let started = Instant::now();
        write_generated(&pool, &customers, &synthesis, &classifications).await?;
        seconds.push(started.elapsed().as_secs_f64());
    }
    let total: f64 = seconds.iter().sum();
    println!(
        "| COPY ceiling: {batches} transactions of {batch_size} customers × 3 tables | {:.0} customers/s | median {:.1} ms per transaction |",
        (batches * batch_size) as f64 / total,
        median(seconds) * 1000.0
    );
    Ok(())
}

/// Drives `concurrency` requests at once for `secs` seconds and prints latency by outcome.
async fn overload(
    url: &str,
    path: &str,
    body: &Path,
    concurrency: usize,
    secs: u64,
) -> anyhow::Result<()> {
    let body = bytes::Bytes::from(std::fs::read(body).with_context(|| body.display().to_string())?);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let base = url.trim_end_matches('/').to_owned();
    let target = format!("{base}{path}");
    let before = peak_memory_mib(&client, &base).await.ok();
    let resident = |text: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix("process_resident_memory_bytes "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map(|b| b / (1024.0 * 1024.0))
    };
    let rss_before = resident(
        &client
            .get(format!("{base}/metrics"))
            .send()
            .await?
            .text()
            .await?,
    );
    let deadline = Instant::now() + std::time::Duration::from_secs(secs);
    // Resident memory sampled every second while the load runs: flat means no growth under overload.
    let sampler = {
        let (client, base) = (client.clone(), base.clone());
        tokio::spawn(async move {
            let mut samples = Vec::new();
            while Instant::now() < deadline {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                if let Ok(r) = client.get(format!("{base}/metrics")).send().await
                    && let Ok(text) = r.text().await
                    && let Some(mib) = text
                        .lines()
                        .find_map(|l| l.strip_prefix("process_resident_memory_bytes "))
                        .and_then(|v| v.trim().parse::<f64>().ok())
                {
                    samples.push(mib / (1024.0 * 1024.0));
                }
            }
            samples
        })
    };
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (client, target, body) = (client.clone(), target.clone(), body.clone());
        tasks.spawn(async move {
            let mut seen: Vec<(u16, f64)> = Vec::new();
            while Instant::now() < deadline {
                let started = Instant::now();
                let status = match client
                    .post(&target)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let _ = response.bytes().await;
                        status
                    }
                    Err(_) => 0,
                };
                seen.push((status, started.elapsed().as_secs_f64() * 1000.0));
            }
            seen
        });
    }
    let mut all = Vec::new();
    while let Some(part) = tasks.join_next().await {
        all.extend(part?);
    }
    let rss_after = resident(
        &client
            .get(format!("{base}/metrics"))
            .send()
            .await?
            .text()
            .await?,
    );
    let after = peak_memory_mib(&client, &base).await.ok();
    let samples = sampler.await.unwrap_or_default();
    let quantiles = |status: u16| {
        let mut ms: Vec<f64> = all
            .iter()
            .filter(|(s, _)| *s == status)
            .map(|(_, l)| *l)
            .collect();
        ms.sort_by(f64::total_cmp);
        let q = |p: f64| {
            ms.get(((ms.len() as f64 * p) as usize).min(ms.len().saturating_sub(1)))
                .copied()
        };
        (ms.len(), q(0.5), q(0.99))
    };
    let fmt = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.2} ms"));
    let (ok, ok50, ok99) = quantiles(200);
    let (shed, shed50, shed99) = quantiles(503);
    let other = all.len() - ok - shed;
    println!("| outcome | requests | per second | p50 | p99 |");
    println!("|---|---|---|---|---|");
    println!(
        "| admitted (200) | {ok} | {:.0} | {} | {} |",
        ok as f64 / secs as f64,
        fmt(ok50),
        fmt(ok99)
    );
    println!(
        "| shed (503) | {shed} | {:.0} | {} | {} |",
        shed as f64 / secs as f64,
        fmt(shed50),
        fmt(shed99)
    );
    let mut others: std::collections::BTreeMap<u16, usize> = std::collections::BTreeMap::new();
    for (status, _) in all.iter().filter(|(s, _)| *s != 200 && *s != 503) {
        *others.entry(*status).or_default() += 1;
    }
    let breakdown: Vec<String> = others
        .iter()
        .map(|(s, n)| {
            if *s == 0 {
                format!("{n} connection errors")
            } else {
                format!("{n} × {s}")
            }
        })
        .collect();
    println!(
        "| any other status or error | {other} {} | | | |",
        if breakdown.is_empty() {
            String::new()
        } else {
            format!("({})", breakdown.join(", "))
        }
    );
    let half = &samples[samples.len() / 2..];
    let (low, high) = half
        .iter()
        .fold((f64::MAX, 0.0f64), |(lo, hi), m| (lo.min(*m), hi.max(*m)));
    if !half.is_empty() {
        println!(
            "| service resident memory over the second half of the run ({} samples) | {low:.1} – {high:.1} MiB | | | |",
            half.len()
        );
    }
    println!(
        "| service resident memory before → after | {} → {} MiB (peak {} → {} MiB) | | | |",
        rss_before.map_or("?".into(), |m| format!("{m:.1}")),
        rss_after.map_or("?".into(), |m| format!("{m:.1}")),
        before.map_or("?".into(), |m| format!("{m:.1}")),
        after.map_or("?".into(), |m| format!("{m:.1}")),
    );
    Ok(())
}

/// Latency of `GET /synthesize?n=10000` and a 1M-row NDJSON stream against a running service.
async fn bench_synth_service(url: &str, runs: usize) -> anyhow::Result<()> {
    // The typed client first: the service answers with valid customers and its model version.
    let typed = churn_api::SynthesizerClient::new(
        url.parse().context("--service-url")?,
        std::time::Duration::from_secs(60),
    );
    let sample = typed.synthesize(1_000, Some(0)).await?;
    anyhow::ensure!(
        sample.customers.len() == 1_000,
        "the service returned {} customers for n=1000",
        sample.customers.len()
    );
    let client = reqwest::Client::new();
    let url = url.trim_end_matches('/');
    let get = |n: u64, seed: usize| client.get(format!("{url}/synthesize?n={n}&seed={seed}"));
    get(10_000, 0)
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    let mut latencies = Vec::new();
    for i in 0..(runs * 4).max(20) {
        let started = Instant::now();
        let body = get(10_000, i)
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(body.len() > 1_000_000, "short body");
    }
    latencies.sort_by(f64::total_cmp);
    let p50 = latencies[latencies.len() / 2];
    let p95 = latencies[latencies.len() * 95 / 100];

    let before = peak_memory_mib(&client, url).await?;
    let started = Instant::now();
    let mut response = get(1_000_000, 1)
        .header("accept", "application/x-ndjson")
        .send()
        .await?
        .error_for_status()?;
    let (mut bytes, mut lines) = (0u64, 0u64);
    while let Some(chunk) = response.chunk().await? {
        bytes += chunk.len() as u64;
        lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
    }
    let stream_secs = started.elapsed().as_secs_f64();
    let after = peak_memory_mib(&client, url).await?;
    anyhow::ensure!(
        lines == 1_000_000,
        "expected 1,000,000 NDJSON lines, got {lines}"
    );

    println!(
        "| `GET /synthesize?n=10000` (JSON array, {} requests) | p50 {p50:.1} ms, p95 {p95:.1} ms | < 100 ms |",
        latencies.len()
    );
    println!(
        "| `GET /synthesize?n=1000000` as NDJSON | {stream_secs:.2} s, {:.0} rows/s, {:.0} MB | streamed |",
        1e6 / stream_secs,
        bytes as f64 / 1e6
    );
    println!(
        "| service peak memory before → after the 1M stream | {before:.1} → {after:.1} MiB | flat |"
    );
    Ok(())
}

/// Splits `customers` into the stratified (train, test) pair `churnctl train` would use.
fn split(customers: &[Customer], seed: u64) -> anyhow::Result<(Vec<Customer>, Vec<Customer>)> {
    let params = churn_automl::split::SplitParams {
        test_fraction: 0.2,
        seed,
    }
    .check()?;
    Ok(churn_automl::split::split_customers(
        customers.to_vec(),
        &params,
    )?)
}

/// Rows per second of `LoadedModel::predict` on `rows` (median of `runs`), and one-row latency in µs.
fn prediction_speed(
    model: &churn_automl::LoadedModel,
    rows: &[Customer],
    runs: usize,
) -> (f64, f64) {
    let batch = median(
        (0..runs)
            .map(|_| {
                let started = Instant::now();
                let p = model.predict(rows);
                let secs = started.elapsed().as_secs_f64();
                drop(p);
                secs
            })
            .collect(),
    );
    let one = median(
        (0..1000)
            .map(|i| {
                let row = std::slice::from_ref(&rows[i % rows.len()]);
                let started = Instant::now();
                let p = model.predict(row);
                let secs = started.elapsed().as_secs_f64();
                drop(p);
                secs
            })
            .collect(),
    );
    (rows.len() as f64 / batch, one * 1e6)
}

pub fn bench_train(
    data: &Path,
    budget: u64,
    seeds: &[u64],
    flaml_python: Option<&Path>,
) -> anyhow::Result<()> {
    use churn_automl::estimators::{self, Estimator, GbdtParams, Params};
    let customers = churn_core::read_customers(data)?;
    let options = churn_automl::TrainOptions {
        time_budget: std::time::Duration::from_secs(budget),
        seed: 0,
        ..churn_automl::TrainOptions::default()
    };
    println!(
        "| split seed | our test ROC AUC | our model | training time | FLAML test ROC AUC | FLAML model | FLAML fit time |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut last_model = None;
    for seed in seeds {
        let (train, test) = split(&customers, *seed)?;
        let model = churn_automl::train(&train, Some(&test), options, |_| {})?;
        let loaded = churn_automl::LoadedModel::new(model.clone())?;
        let ours = loaded.evaluate(&test)?;
        let again = churn_automl::train(&train, Some(&test), options, |_| {})?;
        let deterministic =
            again.estimator == model.estimator && again.threshold == model.threshold;
        let flaml = match flaml_python {
            Some(python) => run_flaml(python, &train, &test, budget, *seed)?,
            None => ("not run".to_owned(), String::new(), String::new()),
        };
        println!(
            "| {seed} | {:.4} | {} | {:.1} s (deterministic: {}) | {} | {} | {} |",
            ours.roc_auc.unwrap_or(f64::NAN),
            model.family,
            model.training.seconds,
            if deterministic { "yes" } else { "NO" },
            flaml.0,
            flaml.1,
            flaml.2
        );
        last_model = Some(model);
    }
    let Some(model) = last_model else {
        return Ok(());
    };

    // Prediction speed of each family on 100,000 rows (the seed data repeated).
    let rows: Vec<Customer> = customers.iter().cycle().take(100_000).cloned().collect();
    let cols = churn_automl::features::feature_count();
    let mut x = churn_automl::features::encode_all(&customers);
    model.standardizer.apply(&mut x);
    let labels = churn_automl::split::labels(&customers)?;
    let with = |estimator: Estimator| -> anyhow::Result<churn_automl::LoadedModel> {
        let mut m = model.clone();
        m.estimator = estimator;
        Ok(churn_automl::LoadedModel::new(m)?)
    };
    let linear = with(estimators::fit(
        &Params::LinfaLogistic { alpha: 1.0 },
        &x,
        cols,
        &labels,
        0,
    )?)?;
    let gbdt = with(estimators::fit(
        &Params::Gbdt(GbdtParams::default()),
        &x,
        cols,
        &labels,
        0,
    )?)?;
    let chosen = churn_automl::LoadedModel::new(model.clone())?;
    println!();
    println!("| in-process batch prediction (100,000 rows) | rows/s | one row |");
    println!("|---|---|---|");
    for (name, m) in [
        ("logistic regression".to_owned(), &linear),
        ("GBDT, 300 trees of depth 3".to_owned(), &gbdt),
        (format!("the chosen {}", model.family), &chosen),
    ] {
        let (rate, one_us) = prediction_speed(m, &rows, 5);
        println!("| {name} | {rate:.0} | {one_us:.1} µs |");
    }
    Ok(())
}

/// Runs the FLAML baseline (bench/flaml/run_flaml.py) on the same split; returns (AUC, model, fit time).
fn run_flaml(
    python: &Path,
    train: &[Customer],
    test: &[Customer],
    budget: u64,
    seed: u64,
) -> anyhow::Result<(String, String, String)> {
    let dir = tempfile::tempdir()?;
    let write = |name: &str, rows: &[Customer]| -> anyhow::Result<PathBuf> {
        let path = dir.path().join(name);
        let mut w = churn_core::CustomerWriter::new(
            std::fs::File::create(&path)?,
            churn_core::HeaderStyle::Dataset,
            true,
        )?;
        for c in rows {
            w.write(c)?;
        }
        w.finish()?;
        Ok(path)
    };
    let (train_path, test_path) = (write("train.csv", train)?, write("test.csv", test)?);
    let json = dir.path().join("flaml.json");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/flaml/run_flaml.py");
    let out = Command::new(python)
        .arg(&script)
        .args(["--train"])
        .arg(&train_path)
        .arg("--test")
        .arg(&test_path)
        .args([
            "--time-budget",
            &budget.to_string(),
            "--seed",
            &seed.to_string(),
            "--json",
        ])
        .arg(&json)
        .output()
        .context("running the FLAML baseline")?;
    anyhow::ensure!(
        out.status.success(),
        "FLAML failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json)?)?;
    Ok((
        format!("{:.4}", v["test_roc_auc"].as_f64().unwrap_or(f64::NAN)),
        v["best_estimator"].as_str().unwrap_or("?").to_owned(),
        format!("{:.1} s", v["fit_wall_s"].as_f64().unwrap_or(f64::NAN)),
    ))
}

/// Per-request costs of the classifier's work, in-process: parsing and validating a customer, one-row
/// prediction, an explanation, and a 1,000-customer batch.
pub fn bench_predict(model: &churn_automl::LoadedModel, data: &Path) -> anyhow::Result<()> {
    let customers = churn_core::read_customers(data)?;
    let bodies: Vec<serde_json::Value> = customers
        .iter()
        .take(1000)
        .map(serde_json::to_value)
        .collect::<Result<_, _>>()?;
    let per = |n: usize, mut f: Box<dyn FnMut(usize) + '_>| {
        let started = Instant::now();
        for i in 0..n {
            f(i);
        }
        started.elapsed().as_secs_f64() * 1e6 / n as f64
    };
    let parse = per(
        20_000,
        Box::new(|i| {
            let c = Customer::from_json(&bodies[i % bodies.len()]);
            std::hint::black_box(c.is_ok());
        }),
    );
    let one = per(
        20_000,
        Box::new(|i| {
            let p = model.predict(std::slice::from_ref(&customers[i % customers.len()]));
            std::hint::black_box(p);
        }),
    );
    let explain = per(
        2_000,
        Box::new(|i| {
            let e = model.explain(&customers[i % customers.len()], 5);
            std::hint::black_box(e);
        }),
    );
    let batch = per(
        200,
        Box::new(|i| {
            let start = (i * 1000) % (customers.len() - 1000);
            let p = model.predict(&customers[start..start + 1000]);
            std::hint::black_box(p);
        }),
    );
    println!("| classifier work, in-process ({}) | µs |", model.family());
    println!("|---|---|");
    println!("| parse and validate one customer (JSON value → record) | {parse:.2} |");
    println!("| predict one customer | {one:.2} |");
    println!("| explain one customer (top 5 fields) | {explain:.1} |");
    println!("| predict a batch of 1,000 customers | {batch:.0} |");
    Ok(())
}

/// Fills the warehouse with `rows` labelled predictions of `churn-classifier` v1 (unless already there)
/// and times the metrics job over them.
async fn bench_metrics(
    database_url: Option<String>,
    rows: usize,
    runs: usize,
) -> anyhow::Result<()> {
    use churn_jobs::metrics::{MetricsJob, MetricsParams};
    use churn_store::monitoring::{Window, labelled_predictions};
    use churn_store::warehouse::{Classification, Synthesis, write_generated};
    use std::time::Duration;

    let env = churn_config::Env::process_with(database_url.map(|u| ("DATABASE_URL", u)));
    let database = churn_config::DatabaseConfig::from_env(&env)?;
    churn_store::migrate(database.url.expose()).await?;
    let pool = churn_store::connect(database.url.expose(), 4).await?;
    let name = churn_models::classifier::MODEL_NAME;
    sqlx::query(
        "insert into registry.registered_models (name) values ($1) on conflict do nothing;",
    )
    .bind(name)
    .execute(&pool)
    .await?;
    sqlx::query(
        "insert into registry.model_versions (model_name, version, artifact_key, artifact_sha256,
             artifact_size, flavor)
         values ($1, 1, 'bench/metrics/model.json', repeat('0', 64), 0, 'churn-automl')
         on conflict do nothing",
    )
    .bind(name)
    .execute(&pool)
    .await?;
    let have: i64 = sqlx::query_scalar(
        "select count(*) from churn.classified where model_name = $1 and model_version = 1",
    )
    .bind(name)
    .fetch_one(&pool)
    .await?;
    if (have as usize) < rows {
        let seed = churn_core::read_customers(&churn_config::seed_data_path(&env))?;
        let sampler = Sampler::new(SynthModel::fit(&seed, FitOptions::default())?)?;
        let synthesis = Synthesis {
            synthesizer_name: "bench".to_owned(),
            synthesizer_version: 1,
            seed: Some(0),
        };
        let mut bar =
            crate::progress::Progress::rows("writing predictions", (rows - have as usize) as u64);
        let mut ulids = ulid::Generator::new();
        let mut left = rows - have as usize;
        let mut batch_no = 0u64;
        while left > 0 {
            let n = left.min(20_000);
            let customers: Vec<(uuid::Uuid, Customer)> = sampler
                .sample(n as u64, 1_000 + batch_no, 2)
                .iter()
                .map(|r| {
                    (
                        churn_store::warehouse::next_customer_id(&mut ulids),
                        sampler.to_customer(r),
                    )
                })
                .collect();
            // A model with some skill: churners score higher on average, with noise.
            let classifications: Vec<Classification> = customers
                .iter()
                .enumerate()
                .map(|(i, (id, c))| {
                    let churned = matches!(c.churn_label, Some(churn_core::YesNo::Yes));
                    let noise = ((i as u64).wrapping_mul(2_654_435_761) % 1000) as f64 / 1000.0;
                    let p = (0.6 * noise + if churned { 0.35 } else { 0.05 }).min(0.999);
                    Classification {
                        customer_id: *id,
                        model_name: name.to_owned(),
                        model_version: 1,
                        churn_probability: p,
                        predicted_churn_label: p >= 0.5,
                        threshold: 0.5,
                    }
                })
                .collect();
            write_generated(&pool, &customers, &synthesis, &classifications).await?;
            bar.set((rows - have as usize - left + n) as u64);
            left -= n;
            batch_no += 1;
        }
        bar.finish();
        sqlx::query("analyze churn.customers, churn.classified")
            .execute(&pool)
            .await?;
    }
    let scratch = tempfile::tempdir()?;
    let objects = churn_config::ObjectStoreConfig::from_env(&churn_config::Env::process_with([(
        "OBJECT_STORE_URL",
        format!("file://{}", scratch.path().display()),
    )]))?;
    let objects = churn_store::ObjectStoreHandle::open(&objects.url, &objects.s3)?;
    let registry = churn_registry::Registry::new(pool.clone(), objects);
    let job = |windows: Vec<(String, Duration)>| -> anyhow::Result<MetricsJob> {
        let params = MetricsParams {
            windows,
            ..MetricsParams::default()
        }
        .check()?;
        Ok(MetricsJob::new(
            params,
            pool.clone(),
            registry.clone(),
            None,
        ))
    };
    let one = job(vec![("1h".to_owned(), Duration::from_secs(3600))])?;
    let two = job(MetricsParams::default().windows)?;
    let window = || {
        let end = chrono::Utc::now();
        Window {
            name: "1h".to_owned(),
            start: end - chrono::Duration::hours(1),
            end,
        }
    };
    let (mut read, mut single, mut default) = (Vec::new(), Vec::new(), Vec::new());
    let mut n = 0;
    // One untimed pass warms the caches, as a job running every five minutes finds them.
    one.compute(None).await?;
    for _ in 0..runs {
        let started = Instant::now();
        n = labelled_predictions(&pool, name, 1, &window())
            .await?
            .labels
            .len();
        read.push(started.elapsed().as_secs_f64());
        let started = Instant::now();
        one.compute(None).await?;
        single.push(started.elapsed().as_secs_f64());
        let started = Instant::now();
        two.compute(None).await?;
        default.push(started.elapsed().as_secs_f64());
    }
    let (read, single, default) = (median(read), median(single), median(default));
    println!("| measure ({n} labelled predictions, median of {runs}) | seconds |");
    println!("|---|---|");
    println!("| reading the rows alone (the ceiling: the job's query, no metric) | {read:.3} |");
    println!("| the metrics job, one window (all metrics, calibration, stored) | {single:.3} |");
    println!("| → job / read ceiling | {:.2} |", single / read);
    println!(
        "| the metrics job, default windows 1h and 1d (each holds every row) | {default:.3} |"
    );
    Ok(())
}
