//! `churnctl bench overload`: a running service driven well beyond its concurrency limit, the latency of
//! admitted and shed requests, other errors, and the service's memory over the run.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;

use super::{service_memory_mib, service_peak_memory_mib};

/// Drives `concurrency` requests at once for `secs` seconds and prints latency by outcome.
pub(super) async fn overload(
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
    let before = service_peak_memory_mib(&client, &base).await.ok();
    let rss_before = service_memory_mib(&client, &base, "process_resident_memory_bytes").await?;
    let deadline = Instant::now() + std::time::Duration::from_secs(secs);
    // Resident memory sampled every second while the load runs: flat means no growth under overload.
    let sampler = {
        let (client, base) = (client.clone(), base.clone());
        tokio::spawn(async move {
            let mut samples = Vec::new();
            while Instant::now() < deadline {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                if let Ok(Some(mib)) =
                    service_memory_mib(&client, &base, "process_resident_memory_bytes").await
                {
                    samples.push(mib);
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
    let rss_after = service_memory_mib(&client, &base, "process_resident_memory_bytes").await?;
    let after = service_peak_memory_mib(&client, &base).await.ok();
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
