//! `churnctl monitor metrics|drift`: the monitoring jobs' latest figures, and Evidently-style drift between two files.

use std::path::PathBuf;

use anyhow::Context;
use churn_config::{DatabaseConfig, Env};
use churn_monitor::{DatasetDrift, DriftOptions, ReferenceProfile};
use churn_store::monitoring::DriftSource;
use clap::Subcommand;
use sqlx::PgPool;

#[derive(Debug, Subcommand)]
pub enum MonitorCommand {
    /// Training, test and live metrics of a model's newest versions (live: the newest row per window).
    Metrics {
        #[arg(long, default_value = churn_models::classifier::MODEL_NAME)]
        model: String,
        /// How many of the newest versions to show.
        #[arg(long, default_value_t = 3)]
        versions: i64,
        /// PostgreSQL URL [default: $DATABASE_URL].
        #[arg(long)]
        database_url: Option<String>,
    },
    /// The newest drift run per column; with --reference and --current, the drift between two CSV files
    /// computed here with the same tests (no database needed).
    Drift {
        #[arg(long, default_value = churn_models::classifier::MODEL_NAME)]
        model: String,
        /// A CSV of customers to compare against (e.g. the training data).
        #[arg(long, requires = "current")]
        reference: Option<PathBuf>,
        /// A CSV of customers to judge.
        #[arg(long, requires = "reference")]
        current: Option<PathBuf>,
        /// Share of drifted columns that makes dataset drift (Evidently's drift_share).
        #[arg(long, default_value_t = 0.5)]
        drift_share: f64,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// The stored runs of which current data: the warehouse's customers, or the classifier's logged
        /// traffic (api).
        #[arg(long, default_value = "warehouse", value_parser = ["warehouse", "api"])]
        source: String,
        /// PostgreSQL URL [default: $DATABASE_URL].
        #[arg(long)]
        database_url: Option<String>,
    },
}

pub async fn run(command: MonitorCommand) -> anyhow::Result<std::process::ExitCode> {
    match command {
        MonitorCommand::Metrics {
            model,
            versions,
            database_url,
        } => {
            anyhow::ensure!(versions >= 1, "--versions {versions}: must be at least 1");
            let pool = connect(database_url).await?;
            metrics(&pool, &model, versions).await?;
        }
        MonitorCommand::Drift {
            model,
            reference: Some(reference),
            current: Some(current),
            drift_share,
            json,
            ..
        } => {
            let _ = model;
            let options = DriftOptions::new()
                .drift_share(drift_share)
                .check()
                .context("--drift-share")?;
            let drift = tokio::task::spawn_blocking(move || {
                let read = |path: &PathBuf| {
                    churn_models::data::read_customers_hashed(path)
                        .map(|(rows, _)| rows)
                        .with_context(|| format!("reading {}", path.display()))
                };
                let reference_rows = read(&reference)?;
                let current_rows = read(&current)?;
                let profile = ReferenceProfile::from_customers(&reference_rows)
                    .with_context(|| format!("profiling {}", reference.display()))?;
                churn_monitor::data_drift(&profile, &current_rows, &options)
                    .with_context(|| format!("measuring drift of {}", current.display()))
            })
            .await??;
            print_file_drift(&drift, json)?;
            // Like a test runner: dataset drift is a non-zero exit, so scripts can gate on it.
            if drift.dataset_drift {
                return Ok(std::process::ExitCode::from(3));
            }
        }
        MonitorCommand::Drift {
            model,
            json,
            source,
            database_url,
            ..
        } => {
            let pool = connect(database_url).await?;
            let source = match source.as_str() {
                "api" => DriftSource::Api,
                _ => DriftSource::Warehouse,
            };
            stored_drift(&pool, &model, source, json).await?;
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

async fn connect(database_url: Option<String>) -> anyhow::Result<PgPool> {
    let env = Env::process_with(database_url.map(|url| ("DATABASE_URL", url)));
    let database = DatabaseConfig::from_env(&env)?;
    churn_store::connect(database.url.expose(), 2)
        .await
        .with_context(|| format!("DATABASE_URL {}", database.url))
}

fn figure(value: Option<f64>) -> String {
    value.map_or("-".to_owned(), |v| format!("{v:.4}"))
}

async fn metrics(pool: &PgPool, model: &str, versions: i64) -> anyhow::Result<()> {
    let rows = churn_store::monitoring::metric_summaries(pool, model, versions).await?;
    if rows.is_empty() {
        println!(
            "no metrics for {model} yet (training writes them; the metrics job adds live rows)"
        );
        return Ok(());
    }
    let mut table = crate::table::new(
        &[
            "version", "kind", "window", "n", "churned", "ROC AUC", "PR AUC", "F1", "accuracy",
            "log loss", "Brier", "ECE", "computed",
        ],
        &[0, 3, 4, 5, 6, 7, 8, 9, 10, 11],
    );
    for r in rows {
        table.add_row(vec![
            r.model_version.to_string(),
            r.metric_type.label().to_owned(),
            r.window_name.unwrap_or_else(|| "-".to_owned()),
            r.n_samples.to_string(),
            r.n_positive.to_string(),
            figure(r.roc_auc),
            figure(r.pr_auc),
            figure(r.f1),
            figure(r.accuracy),
            figure(r.log_loss),
            figure(r.brier),
            figure(r.ece),
            r.computed_at.format("%Y-%m-%d %H:%M:%S").to_string(),
        ]);
    }
    println!("{table}");
    Ok(())
}

async fn stored_drift(
    pool: &PgPool,
    model: &str,
    source: DriftSource,
    json: bool,
) -> anyhow::Result<()> {
    let Some((run, columns)) =
        churn_store::monitoring::newest_drift_run(pool, model, source).await?
    else {
        println!(
            "no {source} drift run for {model} yet (the drift job writes one every DRIFT_SCHEDULE \
             when the window holds DRIFT_MIN_ROWS rows)"
        );
        return Ok(());
    };
    if json {
        let columns: Vec<_> = columns
            .iter()
            .map(|c| {
                serde_json::json!({
                    "column": c.feature, "column_type": c.column_type, "stattest": c.statistic,
                    "score": c.value, "threshold": c.threshold, "drifted": c.drifted,
                    "psi": if c.psi.is_finite() { Some(c.psi) } else { None },
                    "n_reference": c.n_reference, "n_current": c.n_current,
                })
            })
            .collect();
        let body = serde_json::json!({
            "run_id": run.run_id, "model_name": run.model_name, "model_version": run.model_version,
            "source": run.source.as_str(),
            "window_start": run.window.start, "window_end": run.window.end,
            "n_reference": run.n_reference, "n_current": run.n_current,
            "n_columns": run.n_columns, "n_drifted": run.n_drifted, "share_drifted": run.share_drifted,
            "drift_share": run.drift_share, "dataset_drift": run.dataset_drift,
            "prediction": run.prediction.as_ref().map(|(s, v, d)| serde_json::json!({
                "stattest": s, "score": v, "drifted": d})),
            "columns": columns,
        });
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(());
    }
    println!(
        "{} v{} ({} traffic): {} of {} columns drifted ({:.0}%; dataset drift at {:.0}%): {}",
        run.model_name,
        run.model_version,
        run.source,
        run.n_drifted,
        run.n_columns,
        run.share_drifted * 100.0,
        run.drift_share * 100.0,
        if run.dataset_drift {
            "DATASET DRIFT"
        } else {
            "no dataset drift"
        },
    );
    println!(
        "window {} → {}, {} current rows against {} reference rows",
        run.window.start.format("%Y-%m-%d %H:%M:%S"),
        run.window.end.format("%Y-%m-%d %H:%M:%S"),
        run.n_current,
        run.n_reference
    );
    if let Some((statistic, score, drifted)) = &run.prediction {
        println!(
            "churn probability: {statistic} {score:.4} ({})",
            if *drifted { "drifted" } else { "stable" }
        );
    }
    let rows = columns.iter().map(|c| {
        (
            c.feature.as_str(),
            c.column_type.as_str(),
            c.statistic.as_str(),
            c.value,
            c.threshold,
            c.drifted,
            c.psi,
        )
    });
    println!("{}", column_table(rows));
    Ok(())
}

type ColumnRow<'a> = (&'a str, &'a str, &'a str, f64, f64, bool, f64);

fn column_table<'a>(rows: impl Iterator<Item = ColumnRow<'a>>) -> comfy_table::Table {
    let mut table = crate::table::new(
        &[
            "column",
            "type",
            "test",
            "score",
            "threshold",
            "drift",
            "PSI",
        ],
        &[3, 4, 6],
    );
    for (column, kind, test, score, threshold, drifted, psi) in rows {
        table.add_row(vec![
            column.to_owned(),
            kind.to_owned(),
            test.to_owned(),
            format!("{score:.4}"),
            format!("{threshold}"),
            if drifted { "DRIFT" } else { "-" }.to_owned(),
            if psi.is_finite() {
                format!("{psi:.4}")
            } else {
                "-".to_owned()
            },
        ]);
    }
    table
}

fn print_file_drift(drift: &DatasetDrift, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(drift)?);
        return Ok(());
    }
    println!(
        "{} of {} columns drifted ({:.0}%; dataset drift at {:.0}%): {}",
        drift.n_drifted,
        drift.n_columns,
        drift.share_drifted * 100.0,
        drift.drift_share_threshold * 100.0,
        if drift.dataset_drift {
            "DATASET DRIFT"
        } else {
            "no dataset drift"
        }
    );
    let names: Vec<(String, String)> = drift
        .columns
        .iter()
        .map(|c| (c.column_type.to_string(), c.stattest.name().to_owned()))
        .collect();
    let rows = drift.columns.iter().zip(&names).map(|(c, (kind, test))| {
        (
            c.column.as_str(),
            kind.as_str(),
            test.as_str(),
            c.score,
            c.threshold,
            c.drifted,
            c.psi,
        )
    });
    println!("{}", column_table(rows));
    Ok(())
}
