//! Registry operations: register versions with checksummed artifacts, resolve references, move aliases.

use chrono::{DateTime, Utc};
use churn_store::ObjectStoreHandle;
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjectPath;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use sqlx::types::Json;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::{Error, ModelRef, Selector};

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
    pub parent_version: Option<i32>,
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
    pub run_id: Option<Uuid>,
    /// The training data's profile (the drift reference), stored beside the artifact and checksummed.
    pub profile: Option<Vec<u8>>,
}

/// A registered version.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelVersion {
    pub model_name: String,
    pub version: i32,
    pub run_id: Option<Uuid>,
    pub artifact_key: String,
    pub artifact_sha256: String,
    pub artifact_size: i64,
    pub flavor: String,
    pub description: String,
    pub metrics: Json<Value>,
    pub lineage: Json<Value>,
    pub parent_version: Option<i32>,
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
    pub latest_version: Option<i32>,
    pub aliases: Json<Map<String, Value>>,
    pub updated_at: DateTime<Utc>,
}

/// The payload of a NOTIFY on [`ALIAS_CHANNEL`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AliasEvent {
    pub model: String,
    pub alias: String,
    /// The version the alias now points at; `None` when it was removed.
    pub version: Option<i32>,
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

/// What a registration stored in the object store before its row is written.
struct StoredObjects<'a> {
    key: &'a str,
    sha: &'a str,
    size: i64,
    /// The profile's key and SHA-256.
    profile: Option<&'a (String, String)>,
}

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

    /// Registers a new version. The artifact is uploaded first, under a key of its own, and only then is
    /// its metadata (with the SHA-256) committed, so a committed version always has its artifact.
    /// Version numbers per model are assigned under a row lock, so concurrent registrations get
    /// distinct, increasing numbers. When the transaction fails, the artifact is deleted only once a
    /// re-read proves no version refers to it (a COMMIT whose answer was lost may have landed);
    /// anything left behind is removed by [`Registry::collect_garbage`].
    pub async fn register(&self, mut new: NewVersion) -> Result<ModelVersion, Error> {
        check_model_name(&new.model_name)?;
        if !new.metrics.is_object() {
            return Err(Error::InvalidJson(format!("metrics is {}", new.metrics)));
        }
        let lineage =
            serde_json::to_value(&new.lineage).map_err(|e| Error::InvalidJson(e.to_string()))?;
        let sha = sha256_hex(&new.artifact);
        let size = new.artifact.len() as i64;
        let key = format!(
            "{ARTIFACT_PREFIX}{}/{}-{}",
            new.model_name,
            ulid::Ulid::generate(),
            &sha[..16]
        );
        let path = ObjectPath::from(key.as_str());
        let artifact = std::mem::take(&mut new.artifact);
        self.objects.store.put(&path, artifact.into()).await?;
        let profile = match new.profile.take() {
            Some(bytes) => {
                let profile_key = format!("{key}{PROFILE_SUFFIX}");
                let profile_sha = sha256_hex(&bytes);
                let stored = self
                    .objects
                    .store
                    .put(&ObjectPath::from(profile_key.as_str()), bytes.into())
                    .await;
                if let Err(e) = stored {
                    let _ = self.objects.store.delete(&path).await;
                    return Err(e.into());
                }
                Some((profile_key, profile_sha))
            }
            None => None,
        };

        let stored = StoredObjects {
            key: &key,
            sha: &sha,
            size,
            profile: profile.as_ref(),
        };
        let committed = self.insert_version(&new, &stored, &lineage).await;
        match committed {
            Ok(row) => {
                tracing::info!(model = %row.model_name, version = row.version, sha256 = %sha, "registered model version");
                Ok(row)
            }
            Err(e) => {
                // Delete the artifact only when no version refers to it; if that cannot be known, keep it
                // (garbage collection removes it later if it really is an orphan).
                match self.artifact_referenced(&key).await {
                    Ok(false) => {
                        let _ = self.objects.store.delete(&path).await;
                        if let Some((profile_key, _)) = &profile {
                            let _ = self
                                .objects
                                .store
                                .delete(&ObjectPath::from(profile_key.as_str()))
                                .await;
                        }
                    }
                    Ok(true) => {
                        tracing::warn!(key = %key, "the registration reported an error but committed");
                        return self.by_artifact_key(&key).await;
                    }
                    Err(check) => {
                        tracing::warn!(key = %key, error = %check, "kept an artifact whose registration is uncertain");
                    }
                }
                Err(e)
            }
        }
    }

    async fn insert_version(
        &self,
        new: &NewVersion,
        stored: &StoredObjects<'_>,
        lineage: &Value,
    ) -> Result<ModelVersion, Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query!(
            "insert into registry.registered_models (name) values ($1) on conflict (name) do nothing",
            new.model_name,
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!(
            "select name from registry.registered_models where name = $1 for update",
            new.model_name,
        )
        .fetch_one(&mut *tx)
        .await?;
        let version = sqlx::query_scalar!(
            r#"select coalesce(max(version), 0) + 1 as "version!"
               from registry.model_versions where model_name = $1"#,
            new.model_name,
        )
        .fetch_one(&mut *tx)
        .await?;
        let row = sqlx::query_as!(
            ModelVersion,
            r#"insert into registry.model_versions (model_name, version, run_id, artifact_key,
                   artifact_sha256, artifact_size, flavor, description, metrics, lineage, parent_version,
                   profile_key, profile_sha256)
               values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
               returning model_name, version, run_id, artifact_key, artifact_sha256, artifact_size, flavor,
                    description, metrics as "metrics: Json<Value>", lineage as "lineage: Json<Value>",
                    parent_version, created_at, profile_key, profile_sha256"#,
            new.model_name,
            version,
            new.run_id,
            stored.key,
            stored.sha,
            stored.size,
            new.flavor,
            new.description,
            Json(&new.metrics) as _,
            Json(lineage) as _,
            new.lineage.parent_version,
            stored.profile.map(|(k, _)| k.as_str()),
            stored.profile.map(|(_, s)| s.as_str()),
        )
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query!(
            "update registry.registered_models set updated_at = now() where name = $1",
            new.model_name,
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Whether a committed version refers to the artifact `key`.
    async fn artifact_referenced(&self, key: &str) -> Result<bool, Error> {
        Ok(sqlx::query_scalar!(
            r#"select exists (select 1 from registry.model_versions where artifact_key = $1) as "exists!""#,
            key,
        )
        .fetch_one(&self.pool)
        .await?)
    }

    async fn by_artifact_key(&self, key: &str) -> Result<ModelVersion, Error> {
        Ok(sqlx::query_as!(
            ModelVersion,
            r#"select model_name, version, run_id, artifact_key, artifact_sha256, artifact_size, flavor,
                    description, metrics as "metrics: Json<Value>", lineage as "lineage: Json<Value>",
                    parent_version, created_at, profile_key, profile_sha256
               from registry.model_versions where artifact_key = $1"#,
            key,
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// Deletes stored artifacts that no version refers to and that are older than `min_age` (younger ones
    /// may belong to a registration still in flight). With `dry_run`, only lists them.
    pub async fn collect_garbage(
        &self,
        min_age: std::time::Duration,
        dry_run: bool,
    ) -> Result<GarbageReport, Error> {
        use futures::TryStreamExt;
        let referenced: std::collections::HashSet<String> = sqlx::query_scalar!(
            r#"select artifact_key as "key!" from registry.model_versions
               union all select profile_key from registry.model_versions where profile_key is not null"#,
        )
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .collect();
        let cutoff = Utc::now()
            - chrono::Duration::from_std(min_age).unwrap_or_else(|_| chrono::Duration::zero());
        let prefix = ObjectPath::from(ARTIFACT_PREFIX);
        let objects: Vec<object_store::ObjectMeta> =
            self.objects.store.list(Some(&prefix)).try_collect().await?;
        let mut report = GarbageReport {
            scanned: objects.len(),
            ..GarbageReport::default()
        };
        for object in objects {
            let key = object.location.to_string();
            if referenced.contains(&key) {
                report.referenced += 1;
            } else if object.last_modified > cutoff {
                report.too_young += 1;
            } else {
                if !dry_run {
                    self.objects.store.delete(&object.location).await?;
                }
                report.orphans.push(key);
            }
        }
        Ok(report)
    }

    pub async fn get(&self, name: &str, version: i32) -> Result<ModelVersion, Error> {
        sqlx::query_as!(
            ModelVersion,
            r#"select model_name, version, run_id, artifact_key, artifact_sha256, artifact_size, flavor,
                    description, metrics as "metrics: Json<Value>", lineage as "lineage: Json<Value>",
                    parent_version, created_at, profile_key, profile_sha256
               from registry.model_versions where model_name = $1 and version = $2"#,
            name,
            version,
        )
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| Error::VersionNotFound {
            name: name.to_owned(),
            version,
        })
    }

    /// The version an alias points at, if the alias exists.
    pub async fn by_alias(&self, name: &str, alias: &str) -> Result<Option<ModelVersion>, Error> {
        Ok(sqlx::query_as!(
            ModelVersion,
            r#"select v.model_name, v.version, v.run_id, v.artifact_key, v.artifact_sha256, v.artifact_size,
                    v.flavor, v.description, v.metrics as "metrics: Json<Value>",
                    v.lineage as "lineage: Json<Value>", v.parent_version, v.created_at, v.profile_key,
                    v.profile_sha256
               from registry.model_versions v
               join registry.aliases a on a.model_name = v.model_name and a.version = v.version
               where a.model_name = $1 and a.alias = $2"#,
            name,
            alias,
        )
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The highest version of a model, if it has any.
    pub async fn latest(&self, name: &str) -> Result<Option<ModelVersion>, Error> {
        Ok(sqlx::query_as!(
            ModelVersion,
            r#"select model_name, version, run_id, artifact_key, artifact_sha256, artifact_size, flavor,
                    description, metrics as "metrics: Json<Value>", lineage as "lineage: Json<Value>",
                    parent_version, created_at, profile_key, profile_sha256
               from registry.model_versions where model_name = $1 order by version desc limit 1"#,
            name,
        )
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The version a registry reference names.
    pub async fn resolve(&self, name: &str, selector: &Selector) -> Result<ModelVersion, Error> {
        match selector {
            Selector::Version(v) => self.get(name, *v).await,
            Selector::Alias(a) => {
                self.by_alias(name, a)
                    .await?
                    .ok_or_else(|| Error::AliasNotFound {
                        name: name.to_owned(),
                        alias: a.clone(),
                    })
            }
        }
    }

    /// Loads an artifact by reference: registry versions are read from the object store and verified;
    /// a path is read from disk. Returns the bytes and the version (for registry references).
    pub async fn load(
        &self,
        reference: &ModelRef,
    ) -> Result<(Vec<u8>, Option<ModelVersion>), Error> {
        match reference {
            ModelRef::Path(p) => {
                let bytes = tokio::fs::read(p).await.map_err(|source| Error::Io {
                    path: p.display().to_string(),
                    source,
                })?;
                Ok((bytes, None))
            }
            ModelRef::Registry { name, selector } => {
                let version = self.resolve(name, selector).await?;
                let bytes = self.load_artifact(&version).await?;
                Ok((bytes, Some(version)))
            }
        }
    }

    /// Reads a version's artifact and checks it against the recorded SHA-256.
    pub async fn load_artifact(&self, version: &ModelVersion) -> Result<Vec<u8>, Error> {
        let bytes = self
            .objects
            .store
            .get(&ObjectPath::from(version.artifact_key.as_str()))
            .await?
            .bytes()
            .await?;
        let actual = sha256_hex(&bytes);
        if actual != version.artifact_sha256 {
            return Err(Error::ChecksumMismatch {
                key: version.artifact_key.clone(),
                expected: version.artifact_sha256.clone(),
                actual,
            });
        }
        Ok(bytes.to_vec())
    }

    /// Reads a version's training-data profile, checked against its recorded SHA-256; `None` when the
    /// version was registered without one.
    pub async fn load_profile(&self, version: &ModelVersion) -> Result<Option<Vec<u8>>, Error> {
        let (Some(key), Some(expected)) = (&version.profile_key, &version.profile_sha256) else {
            return Ok(None);
        };
        let bytes = self
            .objects
            .store
            .get(&ObjectPath::from(key.as_str()))
            .await?
            .bytes()
            .await?;
        let actual = sha256_hex(&bytes);
        if &actual != expected {
            return Err(Error::ChecksumMismatch {
                key: key.clone(),
                expected: expected.clone(),
                actual,
            });
        }
        Ok(Some(bytes.to_vec()))
    }

    /// Points `alias` at `version` and announces it, in one transaction.
    pub async fn set_alias(&self, name: &str, alias: &str, version: i32) -> Result<(), Error> {
        let mut tx = self.pool.begin().await?;
        self.set_alias_in(&mut tx, name, alias, version).await?;
        tx.commit().await?;
        Ok(())
    }

    /// [`Registry::set_alias`] inside a caller's transaction (e.g. with a promotion decision).
    pub async fn set_alias_in(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        name: &str,
        alias: &str,
        version: i32,
    ) -> Result<(), Error> {
        check_alias(alias)?;
        let exists = sqlx::query_scalar!(
            r#"select exists (select 1 from registry.model_versions where model_name = $1 and version = $2)
                   as "exists!""#,
            name,
            version,
        )
        .fetch_one(&mut **tx)
        .await?;
        if !exists {
            return Err(Error::VersionNotFound {
                name: name.to_owned(),
                version,
            });
        }
        sqlx::query!(
            "insert into registry.aliases (model_name, alias, version) values ($1, $2, $3)
             on conflict (model_name, alias) do update set version = excluded.version, updated_at = now()",
            name,
            alias,
            version,
        )
        .execute(&mut **tx)
        .await?;
        notify(tx, name, alias, Some(version)).await
    }

    /// Points `alias` at `version` only when the model has no such alias yet; returns whether it did.
    pub async fn set_alias_if_absent(
        &self,
        name: &str,
        alias: &str,
        version: i32,
    ) -> Result<bool, Error> {
        check_alias(alias)?;
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query!(
            "insert into registry.aliases (model_name, alias, version) values ($1, $2, $3)
             on conflict (model_name, alias) do nothing",
            name,
            alias,
            version,
        )
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if inserted {
            notify(&mut tx, name, alias, Some(version)).await?;
        }
        tx.commit().await?;
        Ok(inserted)
    }

    /// Removes an alias; returns whether it existed.
    pub async fn delete_alias(&self, name: &str, alias: &str) -> Result<bool, Error> {
        let mut tx = self.pool.begin().await?;
        let deleted = self.delete_alias_in(&mut tx, name, alias).await?;
        tx.commit().await?;
        Ok(deleted)
    }

    /// [`Registry::delete_alias`] inside a caller's transaction.
    pub async fn delete_alias_in(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        name: &str,
        alias: &str,
    ) -> Result<bool, Error> {
        let deleted = sqlx::query!(
            "delete from registry.aliases where model_name = $1 and alias = $2",
            name,
            alias,
        )
        .execute(&mut **tx)
        .await?
        .rows_affected()
            == 1;
        if deleted {
            notify(tx, name, alias, None).await?;
        }
        Ok(deleted)
    }

    /// Every registered model with its latest version and aliases.
    pub async fn list_models(&self) -> Result<Vec<ModelSummary>, Error> {
        Ok(sqlx::query_as!(
            ModelSummary,
            r#"select m.name, m.description, m.updated_at,
                    (select max(version) from registry.model_versions v where v.model_name = m.name)
                        as latest_version,
                    coalesce((select jsonb_object_agg(a.alias, a.version) from registry.aliases a
                              where a.model_name = m.name), '{}'::jsonb)
                        as "aliases!: Json<Map<String, Value>>"
             from registry.registered_models m order by m.name"#,
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// A model's versions, newest first.
    pub async fn list_versions(&self, name: &str) -> Result<Vec<ModelVersion>, Error> {
        let versions = sqlx::query_as!(
            ModelVersion,
            r#"select model_name, version, run_id, artifact_key, artifact_sha256, artifact_size, flavor,
                    description, metrics as "metrics: Json<Value>", lineage as "lineage: Json<Value>",
                    parent_version, created_at, profile_key, profile_sha256
               from registry.model_versions where model_name = $1 order by version desc"#,
            name,
        )
        .fetch_all(&self.pool)
        .await?;
        if versions.is_empty() {
            let known = sqlx::query_scalar!(
                r#"select exists (select 1 from registry.registered_models where name = $1) as "exists!""#,
                name,
            )
            .fetch_one(&self.pool)
            .await?;
            if !known {
                return Err(Error::ModelNotFound {
                    name: name.to_owned(),
                });
            }
        }
        Ok(versions)
    }

    /// A model's aliases as (alias, version).
    pub async fn aliases(&self, name: &str) -> Result<Vec<(String, i32)>, Error> {
        Ok(sqlx::query!(
            "select alias, version from registry.aliases where model_name = $1 order by alias",
            name,
        )
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|row| (row.alias, row.version))
        .collect())
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

async fn notify(
    tx: &mut Transaction<'static, Postgres>,
    model: &str,
    alias: &str,
    version: Option<i32>,
) -> Result<(), Error> {
    let payload = serde_json::to_string(&AliasEvent {
        model: model.to_owned(),
        alias: alias.to_owned(),
        version,
    })
    .map_err(|e| Error::InvalidJson(e.to_string()))?;
    // Delivered when the transaction commits, and never if it rolls back.
    sqlx::query!("select pg_notify($1, $2)", ALIAS_CHANNEL, payload)
        .fetch_one(&mut **tx)
        .await?;
    Ok(())
}
