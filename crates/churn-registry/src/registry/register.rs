//! Registering a version: upload its checksummed artifact first, then commit its numbered row.

use churn_core::{RunId, VersionNumber};
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjectPath;
use serde_json::Value;
use sqlx::types::Json;

use super::{
    ARTIFACT_PREFIX, ModelVersion, NewVersion, PROFILE_SUFFIX, Registry, check_model_name,
    sha256_hex,
};
use crate::Error;

/// What a registration stored in the object store before its row is written.
struct StoredObjects<'a> {
    key: &'a str,
    sha: &'a str,
    size: i64,
    /// The profile's key and SHA-256.
    profile: Option<&'a (String, String)>,
}

impl Registry {
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
                tracing::info!(model = %row.model_name, version = %row.version, sha256 = %sha, "registered model version");
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
               returning model_name, version as "version: VersionNumber", run_id as "run_id: RunId", artifact_key, artifact_sha256, artifact_size, flavor,
                    description, metrics as "metrics: Json<Value>", lineage as "lineage: Json<Value>",
                    parent_version as "parent_version: VersionNumber", created_at, profile_key, profile_sha256"#,
            new.model_name,
            version,
            new.run_id.map(|id| id.as_uuid()),
            stored.key,
            stored.sha,
            stored.size,
            new.flavor,
            new.description,
            Json(&new.metrics) as _,
            Json(lineage) as _,
            new.lineage.parent_version.map(VersionNumber::get),
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
            r#"select model_name, version as "version: VersionNumber", run_id as "run_id: RunId", artifact_key, artifact_sha256, artifact_size, flavor,
                    description, metrics as "metrics: Json<Value>", lineage as "lineage: Json<Value>",
                    parent_version as "parent_version: VersionNumber", created_at, profile_key, profile_sha256
               from registry.model_versions where artifact_key = $1"#,
            key,
        )
        .fetch_one(&self.pool)
        .await?)
    }
}
