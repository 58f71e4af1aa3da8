//! Where the model registry lives, from flags or the same environment variables the services read.

use anyhow::Context;
use churn_registry::Registry;
use churn_store::objects::S3Options;
use churn_store::{ObjectStoreHandle, ObjectStoreUrl};
use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct RegistryArgs {
    /// PostgreSQL holding the registry's metadata.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/churn"
    )]
    pub database_url: String,
    /// Object store holding artifacts: s3://bucket[/prefix] or file:///dir (AWS_* variables configure S3).
    #[arg(long, env = "OBJECT_STORE_URL", default_value = "file://./var/objects")]
    pub object_store_url: String,
}

impl RegistryArgs {
    /// Connects, applies pending migrations and opens the object store.
    pub async fn open(&self) -> anyhow::Result<Registry> {
        churn_store::migrate(&self.database_url)
            .await
            .context("DATABASE_URL")?;
        let pool = churn_store::connect(&self.database_url, 4)
            .await
            .context("DATABASE_URL")?;
        let url = resolve_relative(&self.object_store_url)
            .parse::<ObjectStoreUrl>()
            .context("OBJECT_STORE_URL")?;
        let objects =
            ObjectStoreHandle::open(&url, &S3Options::from_env()).context("OBJECT_STORE_URL")?;
        Ok(Registry::new(pool, objects))
    }
}

/// `file://./dir` is not a valid file URL; treat it as relative to the working directory.
fn resolve_relative(url: &str) -> String {
    match url.strip_prefix("file://./") {
        Some(rest) => match std::env::current_dir() {
            Ok(cwd) => format!("file://{}/{rest}", cwd.display()),
            Err(_) => url.to_owned(),
        },
        None => url.to_owned(),
    }
}
