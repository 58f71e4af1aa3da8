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
    /// Synthesizer: fit time, sampling rows/s (10k and 1M rows), end-to-end CSV writing, peak memory,
    /// fidelity. Prints a Markdown table.
    Synth {
        #[arg(long, env = "CHURN_SEED_DATA")]
        data: PathBuf,
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
        #[arg(long, env = "CHURN_SEED_DATA")]
        data: PathBuf,
        #[arg(long, default_value_t = 60)]
        time_budget_secs: u64,
        /// Split seeds to evaluate.
        #[arg(long, value_delimiter = ',', default_value = "0,1")]
        split_seeds: Vec<u64>,
        /// Python of the FLAML venv (see bench/flaml/README.md) to run the baseline on the same splits.
        #[arg(long)]
        flaml_python: Option<PathBuf>,
    },
    /// The classifier's per-request work in-process: parse, predict one, explain, batch of 1,000.
    Predict {
        /// registry:churn-classifier@champion, or a model.json path.
        #[arg(long)]
        model: String,
        #[arg(long, env = "CHURN_SEED_DATA")]
        data: PathBuf,
        #[command(flatten)]
        registry: crate::registry_args::RegistryArgs,
    },
}

pub async fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Synth {
            data,
            runs,
            scratch,
            service_url,
        } => {
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
            tokio::task::spawn_blocking(move || bench_predict(&model, &data)).await?
        }
        BenchCommand::Train {
            data,
            time_budget_secs,
            split_seeds,
            flaml_python,
        } => {
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

/// Latency of `GET /synthesize?n=10000` and a 1M-row NDJSON stream against a running service.
async fn bench_synth_service(url: &str, runs: usize) -> anyhow::Result<()> {
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
fn split(customers: &[Customer], seed: u64) -> (Vec<Customer>, Vec<Customer>) {
    let labels: Vec<bool> = customers
        .iter()
        .map(|c| c.churn_label.is_some_and(|l| l.is_yes()))
        .collect();
    let (train, test) = churn_automl::split::stratified_split(&labels, 0.2, seed);
    (
        train.iter().map(|i| customers[*i].clone()).collect(),
        test.iter().map(|i| customers[*i].clone()).collect(),
    )
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
        let (train, test) = split(&customers, *seed);
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
    let labels: Vec<bool> = customers
        .iter()
        .map(|c| c.churn_label.is_some_and(|l| l.is_yes()))
        .collect();
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
    println!(
        "| classifier work, in-process ({}) | µs |",
        model.model.family
    );
    println!("|---|---|");
    println!("| parse and validate one customer (JSON value → record) | {parse:.2} |");
    println!("| predict one customer | {one:.2} |");
    println!("| explain one customer (top 5 fields) | {explain:.1} |");
    println!("| predict a batch of 1,000 customers | {batch:.0} |");
    Ok(())
}
