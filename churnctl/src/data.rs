//! `churnctl data check|fetch`: validate a customer CSV row by row; download the pinned seed file.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use churn_core::{CustomerReader, Error as DataError};
use churn_store::seed;
use clap::Subcommand;

use crate::progress::Progress;

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Validate every row of a customer CSV; exits 0 only when all rows are valid.
    Check {
        /// The CSV file (the IBM Telco layout; header spellings may vary).
        file: PathBuf,
        /// Stop listing invalid rows after this many (they are still counted).
        #[arg(long, default_value_t = u64::MAX, hide_default_value = true)]
        max_errors: u64,
    },
    /// Split a labelled CSV into stratified train and test files (the split `churnctl train` makes).
    Split {
        #[arg(long)]
        data: PathBuf,
        /// Share of rows in the test file.
        #[arg(long, default_value_t = 0.2)]
        test_fraction: f64,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long)]
        train_out: PathBuf,
        #[arg(long)]
        test_out: PathBuf,
    },
    /// Download the seed dataset from its pinned URL and verify its SHA-256.
    Fetch {
        /// Where to save it [default: $CHURN_SEED_DATA, else ../shared/data/telco_customer_churn.csv].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Source URL (defaults to the pinned public copy).
        #[arg(long, default_value = seed::SEED_URL)]
        url: String,
        /// Expected SHA-256 of the file.
        #[arg(long, default_value = seed::SEED_SHA256)]
        sha256: String,
    },
}

pub async fn run(command: DataCommand) -> anyhow::Result<ExitCode> {
    match command {
        DataCommand::Check { file, max_errors } => check(&file, max_errors),
        DataCommand::Split {
            data,
            test_fraction,
            seed,
            train_out,
            test_out,
        } => {
            let params = churn_automl::split::SplitParams {
                test_fraction,
                seed,
            }
            .check()
            .context("--test-fraction")?;
            let customers = churn_core::read_customers(&data)?;
            let (train, test) = churn_automl::split::split_customers(customers, &params)
                .with_context(|| format!("splitting {}", data.display()))?;
            for (rows, path) in [(&train, &train_out), (&test, &test_out)] {
                let file = std::io::BufWriter::new(std::fs::File::create(path)?);
                let mut writer =
                    churn_core::CustomerWriter::new(file, churn_core::HeaderStyle::Dataset, true)?;
                for customer in rows {
                    writer.write(customer)?;
                }
                writer.finish()?.flush()?;
            }
            println!(
                "{} train rows → {}, {} test rows → {}",
                train.len(),
                train_out.display(),
                test.len(),
                test_out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        DataCommand::Fetch { out, url, sha256 } => {
            let out = out.unwrap_or_else(|| {
                churn_config::Env::Process
                    .get(churn_config::SEED_DATA_ENV)
                    .map_or_else(
                        || std::path::PathBuf::from("../shared/data/telco_customer_churn.csv"),
                        std::path::PathBuf::from,
                    )
            });
            let mut progress = Progress::bytes("downloading", None);
            seed::download_verified(&url, &sha256, &out, |done, total| {
                if let Some(total) = total {
                    progress.set_total(total);
                }
                progress.set(done);
            })
            .await?;
            progress.finish();
            println!("saved {} (SHA-256 {} verified)", out.display(), sha256);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Streams the file once, printing each invalid row with every error it has, then a summary.
fn check(file: &std::path::Path, max_errors: u64) -> anyhow::Result<ExitCode> {
    let reader = CustomerReader::open(file)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if !reader.unknown_columns().is_empty() {
        writeln!(
            out,
            "note: ignored unknown columns: {}",
            reader.unknown_columns().join(", ")
        )?;
    }
    let (mut valid, mut invalid) = (0u64, 0u64);
    for row in reader {
        match row {
            Ok(_) => valid += 1,
            Err(e) => {
                invalid += 1;
                if invalid <= max_errors {
                    report(&mut out, &e)?;
                }
                if matches!(e, DataError::Csv { .. }) {
                    // The reader cannot continue past an I/O or CSV-structure failure.
                    break;
                }
            }
        }
    }
    if valid + invalid == 0 {
        return Err(DataError::NoRows.into());
    }
    if invalid > max_errors {
        writeln!(
            out,
            "… {} more invalid rows not listed",
            invalid - max_errors
        )?;
    }
    writeln!(out, "{valid} valid rows, {invalid} invalid rows")?;
    out.flush()?;
    Ok(if invalid == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn report(out: &mut impl Write, error: &DataError) -> std::io::Result<()> {
    match error {
        DataError::InvalidRow {
            line,
            customer_id,
            errors,
        } => {
            let id = customer_id
                .as_deref()
                .map(|i| format!(" ({i})"))
                .unwrap_or_default();
            writeln!(out, "line {line}{id}: {} error(s)", errors.len())?;
            for e in errors.iter() {
                writeln!(out, "  - {e}")?;
            }
            Ok(())
        }
        other => writeln!(out, "{other}"),
    }
}
