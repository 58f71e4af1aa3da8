//! `churnctl bench synth`: the synthesizer's fit time, sampling rate, end-to-end CSV writing, peak memory
//! and fidelity in-process, and optionally a running synthesizer service's latency.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::Context;
use churn_core::Customer;
use churn_synth::{FitOptions, Sampler, SynthModel, report};

use super::{median, service_peak_memory_mib};

pub(super) fn bench_synth(
    data: &Path,
    runs: usize,
    scratch: Option<PathBuf>,
) -> anyhow::Result<()> {
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
        "| sample 10,000 rows in-process ({threads} threads) | {rate_10k:.0} rows/s | SDV ~4,800 rows/s |"
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

/// Latency of `GET /synthesize?n=10000` and a 1M-row NDJSON stream against a running service.
pub(super) async fn bench_synth_service(url: &str, runs: usize) -> anyhow::Result<()> {
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

    let before = service_peak_memory_mib(&client, url).await?;
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
    let after = service_peak_memory_mib(&client, url).await?;
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
