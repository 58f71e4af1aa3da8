//! `churnctl bench metrics`: the metrics job over many labelled predictions of one version, against
//! reading the same rows alone (the ceiling); with `--logged`, its cohort metrics over many logged
//! predictions, half of them with an outcome.

use std::time::Instant;

use churn_synth::{FitOptions, Sampler, SynthModel};

use super::{median, synthetic_customers};
use crate::progress::Progress;

/// Fills the warehouse with `rows` labelled predictions of `churn-classifier` v1 (unless already there)
/// and times the metrics job over them.
pub(super) async fn bench_metrics(
    database_url: Option<String>,
    rows: usize,
    runs: usize,
) -> anyhow::Result<()> {
    use churn_jobs::metrics::{MetricsJob, MetricsParams};
    use churn_store::monitoring::{Window, labelled_predictions};
    use churn_store::warehouse::{Classification, Synthesis, write_generated};
    use std::time::Duration;

    let (env, pool) = super::migrated_pool(database_url, 4).await?;
    let name = churn_models::classifier::MODEL_NAME;
    churn_store::admin::register_placeholder_version(
        &pool,
        name,
        1,
        "bench/metrics/model.json",
        "churn-automl",
    )
    .await?;
    let have = churn_store::admin::classified_count(&pool, name, 1).await?;
    if (have as usize) < rows {
        let seed = churn_core::read_customers(&churn_config::seed_data_path(&env))?;
        let sampler = Sampler::new(SynthModel::fit(&seed, FitOptions::default())?)?;
        let synthesis = Synthesis {
            synthesizer_name: "bench".to_owned(),
            synthesizer_version: 1,
            seed: Some(0),
        };
        let mut bar = Progress::rows("writing predictions", (rows - have as usize) as u64);
        let mut ulids = ulid::Generator::new();
        let mut left = rows - have as usize;
        let mut batch_no = 0u64;
        while left > 0 {
            let n = left.min(20_000);
            let customers = synthetic_customers(&sampler, &mut ulids, n, 1_000 + batch_no);
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
        churn_store::admin::analyze_warehouse(&pool).await?;
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
    let first_version = churn_core::VersionNumber::new(1)?;
    let (mut read, mut single, mut default) = (Vec::new(), Vec::new(), Vec::new());
    let mut n = 0;
    // One untimed pass warms the caches, as a job running every five minutes finds them.
    one.compute(None).await?;
    for _ in 0..runs {
        let started = Instant::now();
        n = labelled_predictions(&pool, name, first_version, &window())
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

/// Fills `serving.inference_log` with `rows` `api` predictions of `churn-classifier` v1 spread over the
/// last 14 days (every cohort provisional: each run reads them all), outcomes by customer id for half,
/// and times the metrics job's cohort step and the whole job.
pub(super) async fn bench_cohorts(
    database_url: Option<String>,
    rows: usize,
    runs: usize,
) -> anyhow::Result<()> {
    use churn_jobs::metrics::{MetricsJob, MetricsParams};
    use churn_store::monitoring::{
        LoggedPrediction, NewOutcome, insert_inference_log, insert_outcomes,
    };

    let (_env, pool) = super::migrated_pool(database_url, 4).await?;
    let name = churn_models::classifier::MODEL_NAME;
    churn_store::admin::register_placeholder_version(
        &pool,
        name,
        1,
        "bench/metrics/model.json",
        "churn-automl",
    )
    .await?;
    let contracts = ["Month-to-month", "One year", "Two year"];
    let internet = ["DSL", "Fiber optic", "No"];
    // What the classifier logs for a customer: its features (about 600 bytes of JSON).
    let features = serde_json::json!({
        "gender": "Female", "senior_citizen": "No", "partner": "Yes", "dependents": "No",
        "tenure_months": 12, "phone_service": "Yes", "multiple_lines": "No",
        "internet_service": "DSL", "online_security": "No", "online_backup": "Yes",
        "device_protection": "No", "tech_support": "No", "streaming_tv": "No",
        "streaming_movies": "No", "contract": "Month-to-month", "paperless_billing": "Yes",
        "payment_method": "Electronic check", "monthly_charges": 29.85, "total_charges": 358.2,
        "country": "United States", "state": "California", "city": "Los Angeles",
        "zip_code": "90001", "latitude": 33.97, "longitude": -118.25
    });
    let end = chrono::Utc::now();
    let span_us = 14 * 86_400_000_000i64;
    let mut bar = Progress::rows("writing logged predictions", rows as u64);
    let mut conn = pool.acquire().await?;
    let mut done = 0;
    while done < rows {
        let n = (rows - done).min(50_000);
        let mut log = Vec::with_capacity(n);
        let mut outcomes = Vec::with_capacity(n / 2);
        for i in done..done + n {
            let h = (i as u64).wrapping_mul(2_654_435_761);
            let noise = (h % 1000) as f64 / 1000.0;
            let churned = (h >> 20).is_multiple_of(4);
            let p = ((0.6 * noise + if churned { 0.35 } else { 0.05 }) * 100.0).round() / 100.0;
            let at =
                end - chrono::Duration::microseconds(span_us / rows as i64 * (rows - i) as i64);
            let customer = format!("cust-{i:08}");
            if i % 2 == 0 {
                outcomes.push(NewOutcome {
                    request_id: None,
                    item: None,
                    customer_id: Some(customer.clone()),
                    churned,
                    observed_at: at + chrono::Duration::days(1),
                    source: "api",
                    caller: "bench".to_owned(),
                });
            }
            log.push(LoggedPrediction {
                request_id: uuid::Uuid::from_u128(i as u128 + 1),
                item: 0,
                predicted_at: at,
                endpoint: "predict",
                source: "api",
                caller: "bench".to_owned(),
                customer_id: Some(customer),
                features: features.clone(),
                contract: contracts[i % 3].to_owned(),
                internet_service: internet[(i / 3) % 3].to_owned(),
                senior_citizen: i % 7 == 0,
                model_name: name.to_owned(),
                model_version: 1,
                arm: "champion",
                probability: p.min(1.0),
                label: p >= 0.5,
                threshold: 0.5,
                latency_us: 900,
            });
        }
        insert_inference_log(&mut conn, &log).await?;
        insert_outcomes(&mut conn, &outcomes).await?;
        done += n;
        bar.set(done as u64);
    }
    bar.finish();
    drop(conn);
    churn_store::admin::vacuum_serving(&pool).await?;
    let scratch = tempfile::tempdir()?;
    let objects = churn_config::ObjectStoreConfig::from_env(&churn_config::Env::process_with([(
        "OBJECT_STORE_URL",
        format!("file://{}", scratch.path().display()),
    )]))?;
    let objects = churn_store::ObjectStoreHandle::open(&objects.url, &objects.s3)?;
    let registry = churn_registry::Registry::new(pool.clone(), objects);
    let job = MetricsJob::new(
        MetricsParams::default().check()?,
        pool.clone(),
        registry,
        None,
    );
    // One untimed pass warms the caches, as a job running every five minutes finds them.
    let report = job.compute_cohorts(None).await?;
    let (mut cohorts, mut whole) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let started = Instant::now();
        job.compute_cohorts(None).await?;
        cohorts.push(started.elapsed().as_secs_f64());
        let started = Instant::now();
        job.compute(None).await?;
        job.compute_cohorts(None).await?;
        whole.push(started.elapsed().as_secs_f64());
    }
    println!(
        "| measure ({} logged predictions, {} cohort rows, median of {runs}) | seconds |",
        report.predictions, report.computed
    );
    println!("|---|---|");
    println!(
        "| cohort metrics (read with outcomes matched, day and week × 9 slices, upsert) | {:.3} |",
        median(cohorts)
    );
    println!(
        "| the metrics job (windows over the empty warehouse + cohort metrics) | {:.3} |",
        median(whole)
    );
    Ok(())
}
