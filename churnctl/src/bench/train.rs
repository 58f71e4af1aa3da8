//! `churnctl bench train`: AutoML's test ROC AUC and training time on stratified splits (each trained
//! twice to check determinism), optionally against FLAML on the same splits, and prediction speed per
//! family.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::Context;
use churn_core::Customer;

use super::median;

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

pub(super) fn bench_train(
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
