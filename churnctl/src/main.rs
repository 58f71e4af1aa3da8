//! `churnctl`: the platform's admin CLI over the same library crates the services use.

mod bench;
mod data;
mod ingest;
mod jobs;
mod metabase;
mod models;
mod monitor;
mod progress;
mod registry_args;
mod synth;
mod table;
mod train;
mod up;
mod util;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "churnctl",
    version,
    about = "Admin CLI of the churn MLOps platform"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply pending database migrations (safe to run while services start).
    Migrate {
        /// PostgreSQL URL [default: $DATABASE_URL, else postgres://postgres@127.0.0.1:5432/churn].
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Check and download customer data files.
    Data {
        #[command(subcommand)]
        command: data::DataCommand,
    },
    /// Benchmarks behind BENCHMARKS.md (build with --release).
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
    /// Train a churn classifier with AutoML (leaderboard, holdout metrics, optional registration).
    Train(Box<train::TrainArgs>),
    /// Add churn_probability and predicted_churn_label to every row of a CSV.
    Predict {
        /// registry:churn-classifier@champion, registry:churn-classifier/3, a model.json path, or the
        /// directory `churnctl train --out DIR` wrote.
        #[arg(long)]
        model: String,
        #[arg(long)]
        data: std::path::PathBuf,
        #[arg(long)]
        out: std::path::PathBuf,
        #[command(flatten)]
        registry: registry_args::RegistryArgs,
    },
    /// Print every metric of a model on labelled data.
    Evaluate {
        /// registry:churn-classifier@champion, registry:churn-classifier/3, a model.json path, or the
        /// directory `churnctl train --out DIR` wrote.
        #[arg(long)]
        model: String,
        #[arg(long)]
        data: std::path::PathBuf,
        #[command(flatten)]
        registry: registry_args::RegistryArgs,
    },
    /// List, inspect and promote registered models.
    Models {
        #[command(subcommand)]
        command: models::ModelsCommand,
    },
    /// The scheduler's jobs: list, runs, run now, pause, resume.
    Jobs(jobs::JobsArgs),
    /// Live metrics and drift: the monitoring jobs' latest figures, or drift between two files.
    Monitor {
        #[command(subcommand)]
        command: monitor::MonitorCommand,
    },
    /// Metabase as code: the warehouse connection, questions and the "Churn analytics" dashboard.
    Metabase {
        #[command(subcommand)]
        command: metabase::MetabaseCommand,
    },
    /// Ingest a labelled customer file (local, uploaded to landing/, or s3://…) and print its summary.
    Ingest(Box<ingest::IngestArgs>),
    /// Fit, sample and score the Gaussian-copula synthesizer.
    Synth {
        #[command(subcommand)]
        command: synth::SynthCommand,
    },
    /// Run the whole platform here without Docker: the database (DATABASE_URL, or an embedded
    /// PostgreSQL in ./.churn), models, and the three services with their logs, until Ctrl-C.
    Up(up::UpArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // Sized explicitly: left to itself, tokio reads TOKIO_WORKER_THREADS (a service setting in
    // sample.env, often sourced empty into a shell) and panics when it is empty.
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build();
    let result = match runtime {
        Ok(runtime) => {
            let result = runtime.block_on(run(cli));
            // Work cut short by Ctrl-C (a training thread) must not hold the exit.
            runtime.shutdown_timeout(std::time::Duration::from_secs(2));
            result
        }
        Err(e) => Err(anyhow::Error::new(e).context("starting the async runtime")),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Migrate { database_url } => {
            let env =
                churn_config::Env::process_with(database_url.map(|url| ("DATABASE_URL", url)));
            let database = churn_config::DatabaseConfig::from_env(&env)?;
            let applied = churn_store::migrate(database.url.expose()).await?;
            churn_store::set_role_passwords(database.url.expose(), &database.role_passwords)
                .await?;
            for set in &database.role_passwords {
                println!(
                    "set the password of {} (from {})",
                    set.role.name, set.role.password_var
                );
            }
            if applied.is_empty() {
                println!(
                    "schema is up to date ({} migrations)",
                    churn_store::embedded_migrations().len()
                );
            } else {
                println!("applied migrations: {applied:?}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Data { command } => data::run(command).await,
        Command::Train(args) => train::train(*args).await.map(|_| ExitCode::SUCCESS),
        Command::Predict {
            model,
            data,
            out,
            registry,
        } => {
            let model = util::load_classifier(&model, &registry).await?;
            let rows = tokio::task::spawn_blocking(move || {
                train::predict_csv(&model, &data, &out).map(|n| (n, out))
            })
            .await??;
            println!(
                "wrote {} rows with predictions to {}",
                rows.0,
                rows.1.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Evaluate {
            model,
            data,
            registry,
        } => {
            let model = util::load_classifier(&model, &registry).await?;
            tokio::task::spawn_blocking(move || train::evaluate(&model, &data)).await??;
            Ok(ExitCode::SUCCESS)
        }
        Command::Models { command } => models::run(command).await.map(|()| ExitCode::SUCCESS),
        Command::Bench { command } => bench::run(command).await.map(|()| ExitCode::SUCCESS),
        Command::Synth { command } => synth::run(command).await.map(|()| ExitCode::SUCCESS),
        Command::Ingest(args) => ingest::run(*args).await,
        Command::Jobs(args) => jobs::run(args).await.map(|()| ExitCode::SUCCESS),
        Command::Monitor { command } => monitor::run(command).await,
        Command::Metabase { command } => metabase::run(command).await.map(|()| ExitCode::SUCCESS),
        Command::Up(args) => up::run(args).await,
    }
}
