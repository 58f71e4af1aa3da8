//! Stored artifacts: loading them checked against their SHA-256, and collecting the orphans.

use chrono::Utc;
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjectPath;

use super::{ARTIFACT_PREFIX, GarbageReport, ModelVersion, Registry, sha256_hex};
use crate::{Error, ModelRef};

impl Registry {
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
}
