//! `churnctl jobs list|runs|show|run|pause|resume`: the scheduler's jobs API from the command line.

use std::time::Duration;

use anyhow::Context;
use churn_api::{JobRunBody, SchedulerClient};
use churn_config::{CommonConfig, Env};
use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub struct JobsArgs {
    /// The scheduler [default: $SCHEDULER_URL, else http://127.0.0.1:8002].
    #[arg(long)]
    pub url: Option<String>,
    #[command(subcommand)]
    pub command: JobsCommand,
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Every job: schedule, switches, last run, next tick.
    List,
    /// A job's runs, newest first.
    Runs {
        job: String,
        /// Only runs with this status (running, succeeded, failed, skipped).
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: i64,
        #[arg(long, default_value_t = 0)]
        offset: i64,
    },
    /// One run, with its details.
    Show { run_id: uuid::Uuid },
    /// Start a run now (needs $ADMIN_TOKEN).
    Run {
        job: String,
        /// Wait for the run to finish and print it.
        #[arg(long)]
        wait: bool,
    },
    /// Stop a job's ticks on every replica (needs $ADMIN_TOKEN).
    Pause { job: String },
    /// Start a paused job's ticks again (needs $ADMIN_TOKEN).
    Resume { job: String },
}

fn client(url: Option<String>) -> anyhow::Result<SchedulerClient> {
    let env = Env::process_with(url.map(|u| ("SCHEDULER_URL", u)));
    let config = CommonConfig::from_env(&env)?;
    Ok(SchedulerClient::new(
        config.scheduler_url.0.clone(),
        config.admin_token.map(|t| t.expose().to_owned()),
        Duration::from_secs(30),
    )
    .with_read_token(config.read_token.map(|t| t.expose().to_owned())))
}

fn when(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map_or("-".to_owned(), |t| {
        t.format("%Y-%m-%d %H:%M:%S").to_string()
    })
}

fn runs_table(runs: &[JobRunBody]) -> comfy_table::Table {
    let mut table = crate::table::new(
        &[
            "run", "trigger", "status", "attempt", "started", "seconds", "rows", "error",
        ],
        &[3, 5, 6],
    );
    for r in runs {
        table.add_row(vec![
            r.job_run_id.to_string(),
            r.trigger.clone(),
            r.status.clone(),
            r.attempt.to_string(),
            when(Some(r.started_at)),
            r.duration_seconds
                .map_or("-".to_owned(), |s| format!("{s:.1}")),
            r.rows_affected.map_or("-".to_owned(), |n| n.to_string()),
            r.error.clone().unwrap_or_default(),
        ]);
    }
    table
}

pub async fn run(args: JobsArgs) -> anyhow::Result<()> {
    let scheduler = client(args.url)?;
    match args.command {
        JobsCommand::List => {
            let jobs = scheduler.jobs().await?;
            let mut table = crate::table::new(
                &[
                    "job", "schedule", "enabled", "paused", "last run", "status", "next run",
                ],
                &[],
            );
            for j in jobs {
                table.add_row(vec![
                    j.name,
                    j.schedule,
                    j.enabled.to_string(),
                    j.paused.to_string(),
                    when(j.last_run.as_ref().map(|r| r.started_at)),
                    j.last_run.map_or("-".to_owned(), |r| r.status),
                    when(j.next_run),
                ]);
            }
            println!("{table}");
        }
        JobsCommand::Runs {
            job,
            status,
            limit,
            offset,
        } => {
            let page = scheduler
                .runs(&job, status.as_deref(), limit, offset)
                .await?;
            println!("{}", runs_table(&page.runs));
            if let Some(next) = page.next_offset {
                println!("more: --offset {next}");
            }
        }
        JobsCommand::Show { run_id } => {
            let run = scheduler.run(run_id).await?;
            println!("{}", serde_json::to_string_pretty(&run)?);
        }
        JobsCommand::Run { job, wait } => {
            let started = scheduler
                .trigger(&job)
                .await
                .context("set ADMIN_TOKEN to the scheduler's admin token")?;
            println!("started {} run {}", started.job_name, started.job_run_id);
            if wait {
                loop {
                    let run = scheduler.run(started.job_run_id).await?;
                    if run.status != "running" {
                        println!("{}", runs_table(std::slice::from_ref(&run)));
                        anyhow::ensure!(run.status != "failed", "the run failed");
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        JobsCommand::Pause { job } => {
            scheduler.set_paused(&job, true).await?;
            println!("{job} paused");
        }
        JobsCommand::Resume { job } => {
            scheduler.set_paused(&job, false).await?;
            println!("{job} resumed");
        }
    }
    Ok(())
}
