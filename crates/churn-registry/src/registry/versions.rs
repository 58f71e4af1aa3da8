//! Reading versions and models: by number, alias, latest or reference, and the listings.

use churn_core::{RunId, VersionNumber};
use serde_json::{Map, Value};
use sqlx::types::Json;

use super::{ModelSummary, ModelVersion, Registry};
use crate::{Error, Selector};

impl Registry {
    pub async fn get(&self, name: &str, version: VersionNumber) -> Result<ModelVersion, Error> {
        sqlx::query_as!(
            ModelVersion,
            r#"select model_name, version as "version: VersionNumber", run_id as "run_id: RunId", artifact_key, artifact_sha256, artifact_size, flavor,
                    description, metrics as "metrics: Json<Value>", lineage as "lineage: Json<Value>",
                    parent_version as "parent_version: VersionNumber", created_at, profile_key, profile_sha256
               from registry.model_versions where model_name = $1 and version = $2"#,
            name,
            version.get(),
        )
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| Error::VersionNotFound {
            name: name.to_owned(),
            version: version.get(),
        })
    }

    /// The version an alias points at, if the alias exists.
    pub async fn by_alias(&self, name: &str, alias: &str) -> Result<Option<ModelVersion>, Error> {
        Ok(sqlx::query_as!(
            ModelVersion,
            r#"select v.model_name, v.version as "version: VersionNumber", v.run_id as "run_id: RunId", v.artifact_key, v.artifact_sha256, v.artifact_size,
                    v.flavor, v.description, v.metrics as "metrics: Json<Value>",
                    v.lineage as "lineage: Json<Value>", v.parent_version as "parent_version: VersionNumber", v.created_at, v.profile_key,
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
            r#"select model_name, version as "version: VersionNumber", run_id as "run_id: RunId", artifact_key, artifact_sha256, artifact_size, flavor,
                    description, metrics as "metrics: Json<Value>", lineage as "lineage: Json<Value>",
                    parent_version as "parent_version: VersionNumber", created_at, profile_key, profile_sha256
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

    /// Every registered model with its latest version and aliases.
    pub async fn list_models(&self) -> Result<Vec<ModelSummary>, Error> {
        Ok(sqlx::query_as!(
            ModelSummary,
            r#"select m.name, m.description, m.updated_at,
                    (select max(version) from registry.model_versions v where v.model_name = m.name)
                        as "latest_version: VersionNumber",
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
            r#"select model_name, version as "version: VersionNumber", run_id as "run_id: RunId", artifact_key, artifact_sha256, artifact_size, flavor,
                    description, metrics as "metrics: Json<Value>", lineage as "lineage: Json<Value>",
                    parent_version as "parent_version: VersionNumber", created_at, profile_key, profile_sha256
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
}
