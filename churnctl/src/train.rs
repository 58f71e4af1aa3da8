//! `churnctl train|predict|evaluate`: AutoML training with a leaderboard, batch prediction to CSV, and
//! every metric of a model on labelled data.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use churn_automl::{ChurnModel, LoadedModel, TrainOptions};
use churn_core::metrics::Metrics;
use churn_core::{Customer, CustomerReader};
use churn_models::classifier;
use churn_models::{Holdout, TrainEvent, TrainRequest, TrainingData};
use churn_registry::ModelRef;
use clap::Args;

use crate::progress::Progress;
use crate::registry_args::{RegistryArgs, seed_or};

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Labelled training data (the IBM Telco layout)
    /// [default: $CHURN_SEED_DATA, else shared/data/telco_customer_churn.csv in an ancestor folder].
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Search budget in seconds.
    #[arg(long, default_value_t = 60)]
    pub time_budget_secs: u64,
    /// Seed of the search; the same data, seed and budget give the same model.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Share of the data held out (stratified) for testing and promotion; the search never reads it.
    /// 0 holds nothing out (no test metrics, no registration).
    #[arg(long, default_value_t = 0.2)]
    pub holdout: f64,
    /// Seed of the holdout split.
    #[arg(long, default_value_t = 0)]
    pub split_seed: u64,
    /// Use this labelled file as the held-out test set instead of splitting `--data`.
    #[arg(long)]
    pub test_data: Option<PathBuf>,
    /// Write model.json, metrics.json and leaderboard.json here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Register the model as a new version of churn-classifier and run champion/challenger.
    #[arg(long)]
    pub register: bool,
    /// Promotion needs the candidate's test ROC AUC to beat the champion's by more than this.
    #[arg(long, default_value_t = 0.0)]
    pub promotion_margin: f64,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

fn read(path: &Path) -> anyhow::Result<Vec<Customer>> {
    churn_core::read_customers(path).with_context(|| format!("reading {}", path.display()))
}

fn print_metrics(label: &str, m: &Metrics) {
    let opt = |v: Option<f64>| v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.4}"));
    println!(
        "{label:<10} roc_auc {}  pr_auc {}  log_loss {:.4}  brier {:.4}  accuracy {:.4}  precision {:.4}  recall {:.4}  f1 {:.4}  (n={}, positives={}, threshold={:.3})",
        opt(m.roc_auc),
        opt(m.pr_auc),
        m.log_loss,
        m.brier,
        m.accuracy,
        m.precision,
        m.recall,
        m.f1,
        m.n,
        m.positives,
        m.threshold
    );
}

/// Shows a training run's progress: a spinner with the best trial so far, one line per trial above it.
pub(crate) fn report_progress(bar: &mut Progress, event: TrainEvent) {
    match event {
        TrainEvent::Loaded {
            train_rows,
            holdout_rows,
            ..
        } => bar.println(&format!(
            "training on {train_rows} rows, {holdout_rows} held out"
        )),
        TrainEvent::Trial { trial, leader } => {
            bar.println(&format!(
                "trial {:>3}  {:<20} cv roc_auc {:.4}  {:>6.2} s",
                trial.number, trial.family, trial.cv_roc_auc, trial.seconds
            ));
            bar.message(format!(
                "{} trials; best {} {:.4}",
                trial.number + 1,
                leader.family,
                leader.cv_roc_auc
            ));
        }
        TrainEvent::Refit { family, cv_roc_auc } => bar.message(format!(
            "refitting {family} (cv roc_auc {cv_roc_auc:.4}) on all training rows"
        )),
        TrainEvent::Evaluated { .. } => bar.message("evaluated on the held-out rows".to_owned()),
        TrainEvent::Registered { version } => bar.message(format!("registered version {version}")),
        TrainEvent::Decided { .. } => {}
    }
}

/// Trains (and with `--register` registers and judges) through the library call, then reports.
pub async fn train(args: TrainArgs) -> anyhow::Result<(ChurnModel, Option<Metrics>)> {
    let data = seed_or(args.data.clone());
    let holdout = match (&args.test_data, args.holdout) {
        (Some(path), _) => Holdout::File(path.clone()),
        (None, 0.0) => Holdout::None,
        (None, share) => Holdout::Split {
            fraction: share,
            seed: args.split_seed,
        },
    };
    let request = TrainRequest {
        data: TrainingData::File(data.clone()),
        holdout,
        options: TrainOptions {
            time_budget: Duration::from_secs(args.time_budget_secs),
            seed: args.seed,
            threads: args.threads.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
            }),
            ..TrainOptions::default()
        },
        promotion_margin: args.promotion_margin,
        hold_for_live: false,
        code_version: format!("churnctl {}", env!("CARGO_PKG_VERSION")),
    };
    println!(
        "training on {}; budget {} s, seed {}",
        data.display(),
        args.time_budget_secs,
        args.seed
    );
    let bar = std::sync::Arc::new(std::sync::Mutex::new(Progress::steps("training")));
    let shown = bar.clone();
    let progress = move |event| {
        if let Ok(mut bar) = shown.lock() {
            report_progress(&mut bar, event);
        }
    };
    let outcome = if args.register {
        let registry = args.registry.open().await?;
        churn_models::train_and_register(&registry, request, progress).await?
    } else {
        churn_models::train_model(request, progress).await?
    };
    if let Ok(bar) = std::sync::Arc::try_unwrap(bar).map(|m| m.into_inner()) {
        bar.map(Progress::finish).ok();
    }

    let model = &outcome.model;
    let board = outcome.leaderboard();
    println!("\nleaderboard (top 10 of {} trials)", board.len());
    let mut table = crate::table::new(
        &["trial", "family", "cv roc_auc", "seconds", "params"],
        &[0, 2, 3],
    );
    for t in board.iter().take(10) {
        table.add_row(vec![
            t.number.to_string(),
            t.family.clone(),
            format!("{:.4}", t.cv_roc_auc),
            format!("{:.2}", t.seconds),
            t.params.to_string(),
        ]);
    }
    println!("{table}");
    println!(
        "\nchosen: {} (threshold {:.3}, trained in {:.1} s{})",
        model.family,
        model.threshold,
        model.training.seconds,
        if model.training.stopped_by_clock {
            "; the wall clock cut the search short"
        } else {
            ""
        }
    );
    print_metrics("cv", &model.training.cv_metrics);
    if let Some(m) = &outcome.test_metrics {
        print_metrics("test", m);
    }
    println!("feature importance (ROC AUC drop when shuffled):");
    for i in model.importance.iter().take(8) {
        println!("  {:<20} {:+.4}", i.field, i.importance);
    }

    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("model.json"), model.to_bytes()?)?;
        std::fs::write(
            dir.join("metrics.json"),
            serde_json::to_vec_pretty(&serde_json::json!({
                "cv": model.training.cv_metrics,
                "test": outcome.test_metrics,
                "feature_importance": model.importance,
            }))?,
        )?;
        std::fs::write(
            dir.join("leaderboard.json"),
            serde_json::to_vec_pretty(&board)?,
        )?;
        println!(
            "wrote model.json, metrics.json and leaderboard.json to {}",
            dir.display()
        );
    }

    if let Some((version, decision)) = &outcome.registered {
        println!(
            "registered {} version {}",
            classifier::MODEL_NAME,
            version.version
        );
        println!(
            "{}: {}",
            if decision.promoted {
                "promoted to champion"
            } else {
                "kept as challenger"
            },
            decision.reason
        );
    }
    Ok((outcome.model, outcome.test_metrics))
}

/// Loads a classifier from a file, the directory `churnctl train --out DIR` wrote, or a registry
/// reference.
pub async fn load(reference: &str, registry: &RegistryArgs) -> anyhow::Result<LoadedModel> {
    let reference: ModelRef = reference.parse()?;
    match &reference {
        ModelRef::Path(path) => {
            let path = if path.is_dir() {
                path.join("model.json")
            } else {
                path.clone()
            };
            let bytes =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            Ok(LoadedModel::from_bytes(&bytes)?)
        }
        ModelRef::Registry { .. } => Ok(classifier::load(&registry.open().await?, &reference)
            .await?
            .0),
    }
}

/// Writes the input rows in order with `churn_probability` and `predicted_churn_label` appended.
/// Every row must be valid; the first invalid one stops the run naming its line and errors.
pub fn predict_csv(model: &LoadedModel, data: &Path, out: &Path) -> anyhow::Result<usize> {
    let customers: Vec<Customer> = CustomerReader::open(data)?
        .map(|row| row.map(|r| r.customer))
        .collect::<Result<_, _>>()
        .with_context(|| format!("reading {}", data.display()))?;
    let probabilities = model.predict(&customers);

    // Copy the input records as they are, so columns the model ignores survive.
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(data)
        .with_context(|| format!("reading {}", data.display()))?;
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir)?;
    let mut writer = csv::Writer::from_writer(std::io::BufWriter::new(tmp));
    let mut header = reader.byte_headers()?.clone();
    if let Some(first) = header.get(0) {
        // Drop a UTF-8 byte-order mark so the output header is clean.
        let cleaned = first
            .strip_prefix(b"\xef\xbb\xbf")
            .unwrap_or(first)
            .to_vec();
        let rest: Vec<Vec<u8>> = header.iter().skip(1).map(<[u8]>::to_vec).collect();
        header = csv::ByteRecord::from(std::iter::once(cleaned).chain(rest).collect::<Vec<_>>());
    }
    header.push_field(b"churn_probability");
    header.push_field(b"predicted_churn_label");
    writer.write_byte_record(&header)?;
    let mut rows = 0;
    for (record, p) in reader.byte_records().zip(&probabilities) {
        let mut record = record?;
        record.push_field(format!("{p:.6}").as_bytes());
        record.push_field(if model.label(*p) { b"Yes" } else { b"No" });
        writer.write_byte_record(&record)?;
        rows += 1;
    }
    anyhow::ensure!(
        rows == probabilities.len(),
        "{} has {rows} CSV records but {} customers were read; check for blank or malformed lines",
        data.display(),
        probabilities.len()
    );
    let inner = writer
        .into_inner()
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", out.display()))?;
    let tmp = inner.into_inner().map_err(|e| e.into_error())?;
    tmp.as_file().sync_all()?;
    tmp.persist(out)
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(rows)
}

/// Every metric of `model` on labelled data, printed.
pub fn evaluate(model: &LoadedModel, data: &Path) -> anyhow::Result<Metrics> {
    let customers = read(data)?;
    let metrics = model.evaluate(&customers)?;
    println!(
        "model: {} (threshold {:.3})",
        model.family(),
        model.threshold()
    );
    print_metrics("metrics", &metrics);
    Ok(metrics)
}
