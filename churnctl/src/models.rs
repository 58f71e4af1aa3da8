//! `churnctl models list|show|promote`: the registry from the command line.

use anyhow::Context;
use churn_registry::Registry;
use clap::Subcommand;

use crate::registry_args::RegistryArgs;

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Every registered model with its latest version and aliases.
    List {
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// A model's versions (metrics, lineage, checksum), aliases and promotion decisions.
    Show {
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Delete stored artifacts no version refers to (left by failed registrations).
    Gc {
        /// Only artifacts older than this are considered (younger ones may be in flight).
        #[arg(long, default_value_t = 3600)]
        min_age_secs: u64,
        /// List what would be deleted, delete nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Point an alias at a version by hand (records a manual decision for the champion alias).
    Promote {
        name: String,
        version: churn_core::VersionNumber,
        #[arg(long, default_value_t = churn_registry::Alias::CHAMPION.to_string())]
        alias: String,
        #[command(flatten)]
        registry: RegistryArgs,
    },
}

pub async fn run(command: ModelsCommand) -> anyhow::Result<()> {
    match command {
        ModelsCommand::List { registry } => {
            let registry = registry.open_read_only().await?;
            let models = registry.list_models().await?;
            if models.is_empty() {
                println!("no registered models");
                return Ok(());
            }
            let mut table = crate::table::new(&["name", "latest", "aliases", "updated"], &[1]);
            for m in models {
                let aliases: Vec<String> = m
                    .aliases
                    .0
                    .iter()
                    .map(|(a, v)| format!("{a}={v}"))
                    .collect();
                table.add_row(vec![
                    m.name,
                    m.latest_version.map_or("-".to_owned(), |v| v.to_string()),
                    aliases.join(", "),
                    m.updated_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                ]);
            }
            println!("{table}");
            Ok(())
        }
        ModelsCommand::Show {
            name,
            json,
            registry,
        } => show(&registry.open_read_only().await?, &name, json).await,
        ModelsCommand::Gc {
            min_age_secs,
            dry_run,
            registry,
        } => {
            let registry = registry.open().await?;
            let report = registry
                .collect_garbage(std::time::Duration::from_secs(min_age_secs), dry_run)
                .await?;
            for key in &report.orphans {
                println!("{} {key}", if dry_run { "would delete" } else { "deleted" });
            }
            println!(
                "{} artifacts scanned: {} referenced, {} unreferenced but younger than {min_age_secs} s, {} {}",
                report.scanned,
                report.referenced,
                report.too_young,
                report.orphans.len(),
                if dry_run { "to delete" } else { "deleted" }
            );
            Ok(())
        }
        ModelsCommand::Promote {
            name,
            version,
            alias,
            registry,
        } => {
            let registry = registry.open().await?;
            // Moving the champion is recorded as a manual decision, compare-and-set: if the champion
            // moves between reading it and recording this, the decision is refused rather than
            // overwriting a move made meanwhile.
            let previous = registry
                .point_alias_by_hand(
                    &name,
                    &alias,
                    version,
                    "promoted by hand with churnctl models promote",
                    serde_json::json!({ "user": std::env::var("USER").unwrap_or_default() }),
                    &cli_actor(),
                )
                .await
                .context("the version to promote")?;
            println!(
                "{name}@{alias} -> version {version} (was {})",
                previous.map_or("unset".to_owned(), |v| v.to_string())
            );
            Ok(())
        }
    }
}

/// The audit log's actor for a command run here: the login name when it follows the actor rule, else
/// just `cli`.
fn cli_actor() -> churn_store::audit::Actor {
    use churn_store::audit::{Actor, Scope};
    let user = std::env::var("USER").ok();
    Actor::new(Scope::Cli, user.as_deref()).unwrap_or_else(|_| Actor::of(Scope::Cli))
}

async fn show(registry: &Registry, name: &str, json: bool) -> anyhow::Result<()> {
    let versions = registry.list_versions(name).await?;
    let aliases = registry.aliases(name).await?;
    let decisions = registry.decisions(name).await?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "name": name, "aliases": aliases, "versions": versions, "decisions": decisions,
            }))?
        );
        return Ok(());
    }
    println!("{name}");
    for (alias, version) in &aliases {
        println!("  @{alias} -> {version}");
    }
    let mut table = crate::table::new(
        &[
            "version",
            "created",
            "flavor",
            "test roc_auc",
            "sha256",
            "rows",
        ],
        &[0, 3, 5],
    );
    for v in &versions {
        let auc = churn_core::VersionMetrics::from_json(&v.metrics.0).test_roc_auc;
        table.add_row(vec![
            format!("v{}", v.version),
            v.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            v.flavor.clone(),
            auc.map_or("n/a".to_owned(), |a| format!("{a:.4}")),
            format!("{}…", &v.artifact_sha256[..12]),
            v.lineage
                .0
                .get("training_rows")
                .map_or("?".to_owned(), ToString::to_string),
        ]);
    }
    println!("{table}");
    if !decisions.is_empty() {
        println!("  decisions:");
        for d in decisions.iter().take(10) {
            println!(
                "    v{} vs {}: {} ({})",
                d.candidate_version,
                d.champion_version
                    .map_or("none".to_owned(), |v| format!("v{v}")),
                if d.promoted {
                    "promoted"
                } else {
                    "not promoted"
                },
                d.reason
            );
        }
    }
    Ok(())
}
