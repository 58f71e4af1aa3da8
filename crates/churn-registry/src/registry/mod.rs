//! The registry handle and its vocabulary (versions, aliases, events, locks); methods by topic below.

mod aliases;
mod artifacts;
mod register;
mod versions;

use chrono::{DateTime, Utc};
use churn_core::{RunId, VersionNumber};
use churn_store::ObjectStoreHandle;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use sqlx::types::Json;
use sqlx::{PgPool, Postgres, Transaction};

use crate::Error;

/// The Postgres channel alias moves are announced on; the payload is an [`AliasEvent`] as JSON.
pub const ALIAS_CHANNEL: &str = "registry_events";

/// Hex SHA-256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

pub(crate) fn check_model_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidName {
            what: "model name",
            value: name.to_owned(),
            rule: "1-128 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit",
        })
    }
}

pub(crate) fn check_alias(alias: &str) -> Result<(), Error> {
    let ok = (1..=64).contains(&alias.len())
        && alias.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && alias
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidName {
            what: "alias",
            value: alias.to_owned(),
            rule: "1-64 lower-case letters, digits, '_' or '-', starting with a letter",
        })
    }
}

/// Where a version came from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Lineage {
    pub training_rows: Option<u64>,
    pub training_data_sha256: Option<String>,
    pub code_version: String,
    pub parent_version: Option<VersionNumber>,
    /// Anything else worth recording (seed, data path, …).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A version to register.
#[derive(Debug, Clone)]
pub struct NewVersion {
    pub model_name: String,
    /// What reads the artifact, e.g. `churn-synth/gaussian-copula`.
    pub flavor: String,
    pub artifact: Vec<u8>,
    pub description: String,
    /// A JSON object of metric name → value.
    pub metrics: Value,
    pub lineage: Lineage,
    pub run_id: Option<RunId>,
    /// The training data's profile (the drift reference), stored beside the artifact and checksummed.
    pub profile: Option<Vec<u8>>,
}

/// A registered version.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelVersion {
    pub model_name: String,
    pub version: VersionNumber,
    pub run_id: Option<RunId>,
    pub artifact_key: String,
    pub artifact_sha256: String,
    pub artifact_size: i64,
    pub flavor: String,
    pub description: String,
    pub metrics: Json<Value>,
    pub lineage: Json<Value>,
    pub parent_version: Option<VersionNumber>,
    pub created_at: DateTime<Utc>,
    /// Where the training data's profile is stored, when the version has one.
    pub profile_key: Option<String>,
    pub profile_sha256: Option<String>,
}

/// A registered model with its aliases.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelSummary {
    pub name: String,
    pub description: String,
    pub latest_version: Option<VersionNumber>,
    pub aliases: Json<Map<String, Value>>,
    pub updated_at: DateTime<Utc>,
}

/// The payload of a NOTIFY on [`ALIAS_CHANNEL`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AliasEvent {
    pub model: String,
    pub alias: String,
    /// The version the alias now points at; `None` when it was removed.
    pub version: Option<VersionNumber>,
}

/// Holds a per-model transaction-level advisory lock until committed or dropped, so that two processes
/// doing "check, then create" for the same model (e.g. bootstrapping a first version) take turns.
#[derive(Debug)]
pub struct ModelLock {
    tx: Transaction<'static, Postgres>,
}

impl ModelLock {
    pub async fn release(self) -> Result<(), Error> {
        self.tx.commit().await?;
        Ok(())
    }
}

/// Where artifacts are stored: `models/<model>/<ulid>-<sha256 prefix>`.
pub const ARTIFACT_PREFIX: &str = "models/";
/// A version's training-data profile is stored at its artifact's key plus this.
pub const PROFILE_SUFFIX: &str = ".profile.json";

/// What [`Registry::collect_garbage`] found.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GarbageReport {
    pub scanned: usize,
    pub referenced: usize,
    /// Unreferenced but younger than the minimum age: left alone.
    pub too_young: usize,
    /// Unreferenced artifacts deleted (or, in a dry run, that would be).
    pub orphans: Vec<String>,
}

/// The registry: metadata in Postgres, artifacts in the object store.
#[derive(Debug, Clone)]
pub struct Registry {
    pool: PgPool,
    objects: ObjectStoreHandle,
}

impl Registry {
    pub fn new(pool: PgPool, objects: ObjectStoreHandle) -> Self {
        Self { pool, objects }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Takes the per-model advisory lock (waiting for it); it is held until the returned lock is
    /// released or dropped.
    pub async fn lock_model(&self, name: &str) -> Result<ModelLock, Error> {
        let mut tx = self.pool.begin().await?;
        lock_in(&mut tx, name).await?;
        Ok(ModelLock { tx })
    }
}

/// Takes the per-model advisory lock inside `tx` (released when it ends), so that work done in `tx` is
/// serialized with every other holder of the lock on this model.
pub(crate) async fn lock_in(
    tx: &mut Transaction<'static, Postgres>,
    name: &str,
) -> Result<(), Error> {
    sqlx::query!(
        "select pg_advisory_xact_lock(hashtextextended('registry:' || $1, 0))",
        name,
    )
    .fetch_one(&mut **tx)
    .await?;
    Ok(())
}
