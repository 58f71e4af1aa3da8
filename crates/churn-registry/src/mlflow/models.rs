//! Registered models, their versions and aliases in MLflow's shapes: search, get, and moving aliases by hand.

use chrono::{DateTime, Utc};
use churn_core::{RunId, VersionNumber};
use sqlx::types::Json;

use super::filter::{self, SearchRequest};
use super::shapes::{ModelVersion, RegisteredModel, RegisteredModelAlias};
use super::{Page, download_uri, millis, parse_version, search, storable, tag};
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
    async fn mlflow_models(&self, name: Option<&str>) -> Result<Vec<ModelRow>, Error> {
        Ok(sqlx::query_as!(
            ModelRow,
            "select name, description, created_at, updated_at from registry.registered_models
             where $1::text is null or name = $1 order by name",
            name,
        )
        .fetch_all(self.pool())
        .await?)
    }

    async fn mlflow_versions(&self, name: Option<&str>) -> Result<Vec<crate::ModelVersion>, Error> {
        Ok(sqlx::query_as!(
            crate::ModelVersion,
            r#"select model_name, version as "version: VersionNumber", run_id as "run_id: RunId", artifact_key, artifact_sha256, artifact_size, flavor,
                      description, metrics as "metrics: Json<serde_json::Value>",
                      lineage as "lineage: Json<serde_json::Value>",
                      parent_version as "parent_version: VersionNumber", created_at,
                      profile_key, profile_sha256
               from registry.model_versions where $1::text is null or model_name = $1
               order by model_name, version desc"#,
            name,
        )
        .fetch_all(self.pool())
        .await?)
    }

    async fn mlflow_aliases(&self, name: Option<&str>) -> Result<Vec<AliasRow>, Error> {
        Ok(sqlx::query_as!(
            AliasRow,
            r#"select model_name, alias, version as "version: VersionNumber", updated_at
               from registry.aliases
               where $1::text is null or model_name = $1 order by model_name, alias"#,
            name,
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

/// `registered-models/search` (default order: name).
pub async fn search_registered_models(
    registry: &Registry,
    request: &SearchRequest,
) -> Result<Page<RegisteredModel>, Error> {
    let (models, versions, aliases) = (
        registry.mlflow_models(None).await?,
        registry.mlflow_versions(None).await?,
        registry.mlflow_aliases(None).await?,
    );
    let all = models
        .iter()
        .map(|m| registered_model(m, &versions, &aliases))
        .collect();
    search(
        all,
        request,
        (
            filter::REGISTERED_MODEL_FILTER,
            filter::REGISTERED_MODEL_ORDER,
        ),
        |a, b| a.name.cmp(&b.name),
        (100, 1000),
    )
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
    let models = registry.mlflow_models(Some(name)).await?;
    let model = models.first().ok_or_else(|| Error::ModelNotFound {
        name: name.to_owned(),
    })?;
    let versions = registry.mlflow_versions(Some(name)).await?;
    let aliases = registry.mlflow_aliases(Some(name)).await?;
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
    let aliases = registry.mlflow_aliases(Some(name)).await?;
    Ok(model_version(&v, &aliases))
}

/// `model-versions/search` (default order: name, then newest version first).
pub async fn search_model_versions(
    registry: &Registry,
    request: &SearchRequest,
) -> Result<Page<ModelVersion>, Error> {
    let (versions, aliases) = (
        registry.mlflow_versions(None).await?,
        registry.mlflow_aliases(None).await?,
    );
    let all = versions
        .iter()
        .map(|v| model_version(v, &aliases))
        .collect();
    search(
        all,
        request,
        (filter::MODEL_VERSION_FILTER, filter::MODEL_VERSION_ORDER),
        |a, b| {
            a.name.cmp(&b.name).then_with(|| {
                let (x, y): (i64, i64) = (
                    a.version.parse().unwrap_or(0),
                    b.version.parse().unwrap_or(0),
                );
                y.cmp(&x)
            })
        },
        (10_000, 200_000),
    )
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
    let aliases = registry.mlflow_aliases(Some(name)).await?;
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
/// model. Returns the version the alias pointed at before.
pub async fn set_alias(
    registry: &Registry,
    name: &str,
    alias: &str,
    version: &str,
    actor: &str,
) -> Result<Option<VersionNumber>, Error> {
    if !storable(name) {
        return Err(Error::ModelNotFound {
            name: name.to_owned(),
        });
    }
    registry
        .mlflow_models(Some(name))
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
            serde_json::json!({ "via": "mlflow", "actor": actor }),
        )
        .await
}

/// `registered-models/alias` (DELETE). [`Alias::CHAMPION`] cannot be deleted (the classifier serves
/// it; move it instead).
pub async fn delete_alias(registry: &Registry, name: &str, alias: &str) -> Result<(), Error> {
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
        .mlflow_models(Some(name))
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
    if registry.delete_alias(name, alias).await? {
        Ok(())
    } else {
        Err(Error::AliasNotFound {
            name: name.to_owned(),
            alias: alias.to_owned(),
        })
    }
}
