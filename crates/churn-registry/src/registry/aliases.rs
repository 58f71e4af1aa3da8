//! Moving and removing aliases, each move announced by a NOTIFY in its own transaction.

use sqlx::{Postgres, Transaction};

use churn_core::VersionNumber;

use super::{ALIAS_CHANNEL, AliasEvent, Registry, check_alias};
use crate::Error;

impl Registry {
    /// Points `alias` at `version` and announces it, in one transaction.
    pub async fn set_alias(
        &self,
        name: &str,
        alias: &str,
        version: VersionNumber,
    ) -> Result<(), Error> {
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
        version: VersionNumber,
    ) -> Result<(), Error> {
        check_alias(alias)?;
        let exists = sqlx::query_scalar!(
            r#"select exists (select 1 from registry.model_versions where model_name = $1 and version = $2)
                   as "exists!""#,
            name,
            version.get(),
        )
        .fetch_one(&mut **tx)
        .await?;
        if !exists {
            return Err(Error::VersionNotFound {
                name: name.to_owned(),
                version: version.get(),
            });
        }
        sqlx::query!(
            "insert into registry.aliases (model_name, alias, version) values ($1, $2, $3)
             on conflict (model_name, alias) do update set version = excluded.version, updated_at = now()",
            name,
            alias,
            version.get(),
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
        version: VersionNumber,
    ) -> Result<bool, Error> {
        check_alias(alias)?;
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query!(
            "insert into registry.aliases (model_name, alias, version) values ($1, $2, $3)
             on conflict (model_name, alias) do nothing",
            name,
            alias,
            version.get(),
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
}

async fn notify(
    tx: &mut Transaction<'static, Postgres>,
    model: &str,
    alias: &str,
    version: Option<VersionNumber>,
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
