//! Where the model registry lives: flags over the same environment variables the services read.

use anyhow::Context;
use churn_config::{DatabaseConfig, Env, ObjectStoreConfig};
use churn_registry::Registry;
use churn_store::ObjectStoreHandle;
use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct RegistryArgs {
    /// PostgreSQL holding the registry's metadata [default: $DATABASE_URL, else
    /// postgres://postgres@127.0.0.1:5432/churn].
    #[arg(long)]
    pub database_url: Option<String>,
    /// Object store holding artifacts: s3://bucket[/prefix] or file:///dir (AWS_* variables configure S3)
    /// [default: $OBJECT_STORE_URL, else file://./var/objects].
    #[arg(long)]
    pub object_store_url: Option<String>,
}

impl RegistryArgs {
    /// The process environment with these flags on top.
    pub fn env(&self) -> Env {
        let mut overrides = Vec::new();
        if let Some(url) = &self.database_url {
            overrides.push(("DATABASE_URL", url.clone()));
        }
        if let Some(url) = &self.object_store_url {
            overrides.push(("OBJECT_STORE_URL", url.clone()));
        }
        Env::process_with(overrides)
    }

    /// Connects, applies pending migrations and opens the object store: for commands that write.
    pub async fn open(&self) -> anyhow::Result<Registry> {
        let (pool, objects, _) = self.connect().await?;
        Ok(Registry::new(pool, objects))
    }

    /// Connects and opens the object store without migrating: a read must not change the schema (nor
    /// need the rights to), so a database that was never migrated fails the read instead.
    pub async fn open_read_only(&self) -> anyhow::Result<Registry> {
        let env = self.env();
        let database = DatabaseConfig::from_env(&env)?;
        let pool = pool(&database).await?;
        let (objects, _) = objects(&env)?;
        Ok(Registry::new(pool, objects))
    }

    /// The database (migrated) and the object store these flags name, with the store's configuration.
    pub async fn connect(
        &self,
    ) -> anyhow::Result<(sqlx::PgPool, ObjectStoreHandle, ObjectStoreConfig)> {
        let env = self.env();
        let database = DatabaseConfig::from_env(&env)?;
        churn_store::migrate(database.url.expose())
            .await
            .with_context(|| format!("DATABASE_URL {}", database.url))?;
        let pool = pool(&database).await?;
        let (objects, config) = objects(&env)?;
        Ok((pool, objects, config))
    }
}

async fn pool(database: &DatabaseConfig) -> anyhow::Result<sqlx::PgPool> {
    churn_store::connect(database.url.expose(), 4)
        .await
        .with_context(|| format!("DATABASE_URL {}", database.url))
}

fn objects(env: &Env) -> anyhow::Result<(ObjectStoreHandle, ObjectStoreConfig)> {
    let config = ObjectStoreConfig::from_env(env)?;
    let objects = ObjectStoreHandle::open(&config.url, &config.s3).context("OBJECT_STORE_URL")?;
    Ok((objects, config))
}

/// The seed data: `path` when given, else where every process finds it ([`churn_config::seed_data_path`]).
pub fn seed_or(path: Option<std::path::PathBuf>) -> std::path::PathBuf {
    path.unwrap_or_else(|| churn_config::seed_data_path(&Env::Process))
}
