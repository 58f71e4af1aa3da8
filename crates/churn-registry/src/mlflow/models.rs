//! Registered models, their versions and aliases in MLflow's shapes: search, get, and moving aliases by hand.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use churn_core::{RunId, VersionNumber};
use sqlx::types::Json;

use super::filter::{self, SearchRequest};
use super::shapes::{ModelVersion, RegisteredModel, RegisteredModelAlias};
use super::{Page, Search, download_uri, millis, parse_version, sql, storable, tag};
use churn_store::audit::Actor;

use crate::{Alias, Error, Registry};

struct ModelRow {
    name: String,
    description: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

struct AliasRow {
    model_name: String,
    alias: String,
    version: VersionNumber,
    updated_at: DateTime<Utc>,
}

impl Registry {
    async fn mlflow_models(&self, names: &[String]) -> Result<Vec<ModelRow>, Error> {
        Ok(sqlx::query_as!(
            ModelRow,
            "select name, description, created_at, updated_at from registry.registered_models
             where name = any($1) order by name",
            names,
        )
        .fetch_all(self.pool())
        .await?)
    }

    /// The newest version of each of the named models (that has one).
    async fn latest_versions(&self, names: &[String]) -> Result<Vec<crate::ModelVersion>, Error> {
        Ok(sqlx::query_as!(
            crate::ModelVersion,
            r#"select distinct on (model_name)
                      model_name, version as "version: VersionNumber", run_id as "run_id: RunId",
                      artifact_key, artifact_sha256, artifact_size, flavor,
                      description, metrics as "metrics: Json<serde_json::Value>",
                      lineage as "lineage: Json<serde_json::Value>",
                      parent_version as "parent_version: VersionNumber", created_at,
                      profile_key, profile_sha256
               from registry.model_versions where model_name = any($1)
               order by model_name, version desc"#,
            names,
        )
        .fetch_all(self.pool())
        .await?)
    }

    /// The versions of the given (`names[i]`, `versions[i]`) keys, in no particular order.
    async fn versions_keyed(
        &self,
        names: &[String],
        versions: &[i32],
    ) -> Result<Vec<crate::ModelVersion>, Error> {
        Ok(sqlx::query_as!(
            crate::ModelVersion,
            r#"select model_name, version as "version: VersionNumber", run_id as "run_id: RunId",
                      artifact_key, artifact_sha256, artifact_size, flavor,
                      description, metrics as "metrics: Json<serde_json::Value>",
                      lineage as "lineage: Json<serde_json::Value>",
                      parent_version as "parent_version: VersionNumber", created_at,
                      profile_key, profile_sha256
               from registry.model_versions
               where (model_name, version) in (select * from unnest($1::text[], $2::int[]))"#,
            names,
            versions,
        )
        .fetch_all(self.pool())
        .await?)
    }

    async fn mlflow_aliases(&self, names: &[String]) -> Result<Vec<AliasRow>, Error> {
        Ok(sqlx::query_as!(
            AliasRow,
            r#"select model_name, alias, version as "version: VersionNumber", updated_at
               from registry.aliases
               where model_name = any($1) order by model_name, alias"#,
            names,
        )
        .fetch_all(self.pool())
        .await?)
    }
}

fn model_version(v: &crate::ModelVersion, aliases: &[AliasRow]) -> ModelVersion {
    let mine: Vec<&AliasRow> = aliases
        .iter()
        .filter(|a| a.model_name == v.model_name && a.version == v.version)
        .collect();
    let updated = mine
        .iter()
        .map(|a| a.updated_at)
        .chain([v.created_at])
        .max()
        .unwrap_or(v.created_at);
    let mut tags = vec![
        tag("churn.flavor", v.flavor.clone()),
        tag("churn.artifact_sha256", v.artifact_sha256.clone()),
        tag("churn.artifact_size", v.artifact_size.to_string()),
    ];
    if let Some(parent) = v.parent_version {
        tags.push(tag("churn.parent_version", parent.to_string()));
    }
    ModelVersion {
        name: v.model_name.clone(),
        version: v.version.to_string(),
        creation_timestamp: millis(v.created_at),
        last_updated_timestamp: millis(updated),
        current_stage: "None".to_owned(),
        description: v.description.clone(),
        source: download_uri(&v.model_name, v.version),
        run_id: v.run_id.map(|id| id.to_string()),
        status: "READY".to_owned(),
        tags,
        run_link: String::new(),
        aliases: mine.iter().map(|a| a.alias.clone()).collect(),
    }
}

fn registered_model(
    m: &ModelRow,
    versions: &[crate::ModelVersion],
    aliases: &[AliasRow],
) -> RegisteredModel {
    let mine: Vec<&AliasRow> = aliases.iter().filter(|a| a.model_name == m.name).collect();
    let updated = mine
        .iter()
        .map(|a| a.updated_at)
        .chain([m.updated_at])
        .max()
        .unwrap_or(m.updated_at);
    RegisteredModel {
        name: m.name.clone(),
        creation_timestamp: millis(m.created_at),
        last_updated_timestamp: millis(updated),
        description: m.description.clone(),
        latest_versions: versions
            .iter()
            .filter(|v| v.model_name == m.name)
            .max_by_key(|v| v.version)
            .map(|v| model_version(v, aliases))
            .into_iter()
            .collect(),
        tags: Vec::new(),
        aliases: mine
            .iter()
            .map(|a| RegisteredModelAlias {
                alias: a.alias.clone(),
                version: a.version.to_string(),
            })
            .collect(),
    }
}

/// `registered-models/search` (default order: name), filtered, ordered and paged in SQL; only the
/// page's models are loaded.
pub async fn search_registered_models(
    registry: &Registry,
    request: &SearchRequest,
) -> Result<Page<RegisteredModel>, Error> {
    let search = Search::parse(
        request,
        (
            filter::REGISTERED_MODEL_FILTER,
            filter::REGISTERED_MODEL_ORDER,
        ),
        (100, 1000),
    )?;
    let (names, next_page_token) = sql::model_page(registry.pool(), &search).await?;
    let (models, versions, aliases) = (
        registry.mlflow_models(&names).await?,
        registry.latest_versions(&names).await?,
        registry.mlflow_aliases(&names).await?,
    );
    let mut models: HashMap<&str, &ModelRow> =
        models.iter().map(|m| (m.name.as_str(), m)).collect();
    let items = names
        .iter()
        .filter_map(|name| models.remove(name.as_str()))
        .map(|m| registered_model(m, &versions, &aliases))
        .collect();
    Ok(Page {
        items,
        next_page_token,
    })
}

/// `registered-models/get`.
pub async fn get_registered_model(
    registry: &Registry,
    name: &str,
) -> Result<RegisteredModel, Error> {
    if !storable(name) {
        return Err(Error::ModelNotFound {
            name: name.to_owned(),
        });
    }
    let names = [name.to_owned()];
    let models = registry.mlflow_models(&names).await?;
    let model = models.first().ok_or_else(|| Error::ModelNotFound {
        name: name.to_owned(),
    })?;
    let versions = registry.latest_versions(&names).await?;
    let aliases = registry.mlflow_aliases(&names).await?;
    Ok(registered_model(model, &versions, &aliases))
}

/// `model-versions/get`.
pub async fn get_model_version(
    registry: &Registry,
    name: &str,
    version: &str,
) -> Result<ModelVersion, Error> {
    let number = parse_version(name, version)?;
    if !storable(name) {
        return Err(Error::VersionNotFound {
            name: name.to_owned(),
            version: number.get(),
        });
    }
    let v = registry.get(name, number).await?;
    let aliases = registry.mlflow_aliases(&[name.to_owned()]).await?;
    Ok(model_version(&v, &aliases))
}

/// `model-versions/search` (default order: name, then newest version first), filtered, ordered and
/// paged in SQL; only the page's versions and their models' aliases are loaded.
pub async fn search_model_versions(
    registry: &Registry,
    request: &SearchRequest,
) -> Result<Page<ModelVersion>, Error> {
    let search = Search::parse(
        request,
        (filter::MODEL_VERSION_FILTER, filter::MODEL_VERSION_ORDER),
        (10_000, 200_000),
    )?;
    let (keys, next_page_token) = sql::version_page(registry.pool(), &search).await?;
    let (names, numbers): (Vec<String>, Vec<i32>) = keys.iter().cloned().unzip();
    let versions = registry.versions_keyed(&names, &numbers).await?;
    let mut models = names;
    models.sort_unstable();
    models.dedup();
    let aliases = registry.mlflow_aliases(&models).await?;
    let mut versions: HashMap<(&str, i32), &crate::ModelVersion> = versions
        .iter()
        .map(|v| ((v.model_name.as_str(), v.version.get()), v))
        .collect();
    let items = keys
        .iter()
        .filter_map(|(name, number)| versions.remove(&(name.as_str(), *number)))
        .map(|v| model_version(v, &aliases))
        .collect();
    Ok(Page {
        items,
        next_page_token,
    })
}

/// `registered-models/alias` (GET).
pub async fn model_version_by_alias(
    registry: &Registry,
    name: &str,
    alias: &str,
) -> Result<ModelVersion, Error> {
    if !storable(name) || !storable(alias) {
        return Err(Error::AliasNotFound {
            name: name.to_owned(),
            alias: alias.to_owned(),
        });
    }
    let v = registry
        .by_alias(name, alias)
        .await?
        .ok_or_else(|| Error::AliasNotFound {
            name: name.to_owned(),
            alias: alias.to_owned(),
        })?;
    let aliases = registry.mlflow_aliases(&[name.to_owned()]).await?;
    Ok(model_version(&v, &aliases))
}

/// `model-versions/get-download-uri`.
pub async fn model_version_download_uri(
    registry: &Registry,
    name: &str,
    version: &str,
) -> Result<String, Error> {
    let v = get_model_version(registry, name, version).await?;
    Ok(v.source)
}

/// `registered-models/alias` (POST): points `alias` at `version`. Moving [`Alias::CHAMPION`] is a
/// promotion by hand: it is recorded as a decision (metric `manual`, with `actor` as evidence) in the
/// same transaction, compare-and-set against the champion it replaces, and NOTIFY swaps the classifier's
/// model. Every move is in the audit log with its `actor`. Returns the version the alias pointed at
/// before.
pub async fn set_alias(
    registry: &Registry,
    name: &str,
    alias: &str,
    version: &str,
    actor: &Actor,
) -> Result<Option<VersionNumber>, Error> {
    if !storable(name) {
        return Err(Error::ModelNotFound {
            name: name.to_owned(),
        });
    }
    registry
        .mlflow_models(&[name.to_owned()])
        .await?
        .first()
        .ok_or_else(|| Error::ModelNotFound {
            name: name.to_owned(),
        })?;
    let number = parse_version(name, version)?;
    registry
        .point_alias_by_hand(
            name,
            alias,
            number,
            "promoted by hand through the MLflow API (set_registered_model_alias)",
            serde_json::json!({ "via": "mlflow", "actor": actor.name, "scope": actor.scope }),
            actor,
        )
        .await
}

/// `registered-models/alias` (DELETE), recorded in the audit log with its `actor`.
/// [`Alias::CHAMPION`] cannot be deleted (the classifier serves it; move it instead).
pub async fn delete_alias(
    registry: &Registry,
    name: &str,
    alias: &str,
    actor: &Actor,
) -> Result<(), Error> {
    if !storable(name) {
        return Err(Error::ModelNotFound {
            name: name.to_owned(),
        });
    }
    if !storable(alias) {
        return Err(Error::AliasNotFound {
            name: name.to_owned(),
            alias: alias.to_owned(),
        });
    }
    registry
        .mlflow_models(&[name.to_owned()])
        .await?
        .first()
        .ok_or_else(|| Error::ModelNotFound {
            name: name.to_owned(),
        })?;
    if Alias::CHAMPION == alias && registry.by_alias(name, alias).await?.is_some() {
        return Err(Error::ProtectedAlias {
            name: name.to_owned(),
            alias: alias.to_owned(),
        });
    }
    if registry.delete_alias_by_hand(name, alias, actor).await? {
        Ok(())
    } else {
        Err(Error::AliasNotFound {
            name: name.to_owned(),
            alias: alias.to_owned(),
        })
    }
}
