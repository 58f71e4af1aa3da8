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
    /// Point an alias at a version by hand (records a manual decision for the champion alias).
    Promote {
        name: String,
        version: i32,
        #[arg(long, default_value = "champion")]
        alias: String,
        #[command(flatten)]
        registry: RegistryArgs,
    },
}

pub async fn run(command: ModelsCommand) -> anyhow::Result<()> {
    match command {
        ModelsCommand::List { registry } => {
            let registry = registry.open().await?;
            let models = registry.list_models().await?;
            if models.is_empty() {
                println!("no registered models");
            }
            println!("{:<24} {:>7}  {:<30} updated", "name", "latest", "aliases");
            for m in models {
                let aliases: Vec<String> = m
                    .aliases
                    .0
                    .iter()
                    .map(|(a, v)| format!("{a}={v}"))
                    .collect();
                println!(
                    "{:<24} {:>7}  {:<30} {}",
                    m.name,
                    m.latest_version.map_or("-".to_owned(), |v| v.to_string()),
                    aliases.join(", "),
                    m.updated_at.format("%Y-%m-%d %H:%M:%S")
                );
            }
            Ok(())
        }
        ModelsCommand::Show {
            name,
            json,
            registry,
        } => show(&registry.open().await?, &name, json).await,
        ModelsCommand::Promote {
            name,
            version,
            alias,
            registry,
        } => {
            let registry = registry.open().await?;
            let lock = registry.lock_model(&name).await?;
            let previous = registry.by_alias(&name, &alias).await?.map(|v| v.version);
            registry
                .get(&name, version)
                .await
                .context("the version to promote")?;
            if alias == "champion" {
                registry
                    .record_decision(
                        &churn_registry::Decision {
                            model_name: name.clone(),
                            candidate_version: version,
                            champion_version: previous,
                            metric: "manual".to_owned(),
                            candidate_score: None,
                            champion_score: None,
                            margin: 0.0,
                            promoted: true,
                            reason: "promoted by hand with churnctl models promote".to_owned(),
                            evidence: serde_json::json!({ "user": std::env::var("USER").unwrap_or_default() }),
                        },
                        &alias,
                    )
                    .await?;
            } else {
                registry.set_alias(&name, &alias, version).await?;
            }
            lock.release().await?;
            println!(
                "{name}@{alias} -> version {version} (was {})",
                previous.map_or("unset".to_owned(), |v| v.to_string())
            );
            Ok(())
        }
    }
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
    for v in &versions {
        let auc = v
            .metrics
            .0
            .get("test_roc_auc")
            .and_then(serde_json::Value::as_f64);
        println!(
            "  v{:<4} {}  {:<32} test roc_auc {}  sha256 {}…  rows {}",
            v.version,
            v.created_at.format("%Y-%m-%d %H:%M:%S"),
            v.flavor,
            auc.map_or("n/a".to_owned(), |a| format!("{a:.4}")),
            &v.artifact_sha256[..12],
            v.lineage
                .0
                .get("training_rows")
                .map_or("?".to_owned(), ToString::to_string)
        );
    }
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
