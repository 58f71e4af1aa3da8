//! Experiment tracking (MLflow's runs): params, step-wise metrics, tags and lineage per run, and the
//! record of every promotion decision with its evidence.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use churn_core::{RunId, VersionNumber};
use churn_store::audit::{self, Action, Actor};

use crate::{Error, Registry};

/// Where a run stands (`registry.runs.status`): `running` until it ends as one of the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Finished,
    Failed,
    Killed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Finished => "finished",
            RunStatus::Failed => "failed",
            RunStatus::Killed => "killed",
        }
    }
}

/// What a new run records up front.
#[derive(Debug, Clone, Default)]
pub struct NewRun {
    pub experiment: String,
    pub code_version: String,
    pub training_rows: Option<u64>,
    pub training_data_sha256: Option<String>,
    pub parent_run_id: Option<RunId>,
    pub params: Vec<(String, String)>,
    pub tags: Vec<(String, String)>,
}

/// A run as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Run {
    pub run_id: RunId,
    pub experiment: String,
    pub status: RunStatus,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub training_rows: Option<i64>,
    pub training_data_sha256: Option<String>,
    pub code_version: String,
}

/// A champion/challenger decision and the evidence behind it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub model_name: String,
    pub candidate_version: VersionNumber,
    pub champion_version: Option<VersionNumber>,
    pub metric: String,
    pub candidate_score: Option<f64>,
    pub champion_score: Option<f64>,
    pub margin: f64,
    pub promoted: bool,
    pub reason: String,
    pub evidence: Value,
}

impl Registry {
    /// Starts a run with its params, tags and lineage, all in one transaction.
    pub async fn start_run(&self, run: &NewRun) -> Result<RunId, Error> {
        let run_id = RunId::from(Uuid::new_v4());
        let mut tx = self.pool().begin().await?;
        sqlx::query!(
            "insert into registry.runs (run_id, experiment, parent_run_id, training_rows,
                 training_data_sha256, code_version) values ($1, $2, $3, $4, $5, $6)",
            run_id.as_uuid(),
            run.experiment,
            run.parent_run_id.map(|id| id.as_uuid()),
            run.training_rows.map(|r| r as i64),
            run.training_data_sha256,
            run.code_version,
        )
        .execute(&mut *tx)
        .await?;
        let (keys, values) = unzip(&run.params);
        sqlx::query!(
            "insert into registry.run_params (run_id, key, value)
             select $1, key, value from unnest($2::text[], $3::text[]) as p (key, value)",
            run_id.as_uuid(),
            &keys as &[&str],
            &values as &[&str],
        )
        .execute(&mut *tx)
        .await?;
        let (keys, values) = unzip(&run.tags);
        sqlx::query!(
            "insert into registry.run_tags (run_id, key, value)
             select $1, key, value from unnest($2::text[], $3::text[]) as t (key, value)",
            run_id.as_uuid(),
            &keys as &[&str],
            &values as &[&str],
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(run_id)
    }

    /// Logs metrics at a step (MLflow's `log_metric`); a key logged twice at one step keeps the last value.
    pub async fn log_metrics(
        &self,
        run_id: RunId,
        step: i64,
        metrics: &[(&str, f64)],
    ) -> Result<(), Error> {
        let mut tx = self.pool().begin().await?;
        for (key, value) in metrics {
            if !value.is_finite() {
                continue;
            }
            sqlx::query!(
                "insert into registry.run_metrics (run_id, key, step, value) values ($1, $2, $3, $4)
                 on conflict (run_id, key, step) do update set value = excluded.value, logged_at = now()",
                run_id.as_uuid(),
                key,
                step,
                value,
            )
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Ends a run.
    pub async fn end_run(&self, run_id: RunId, status: RunStatus) -> Result<(), Error> {
        sqlx::query!(
            "update registry.runs set status = $2, ended_at = now() where run_id = $1 and status = $3",
            run_id.as_uuid(),
            status as _,
            RunStatus::Running as _,
        )
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn get_run(&self, run_id: RunId) -> Result<Run, Error> {
        sqlx::query_as!(
            Run,
            r#"select run_id as "run_id: RunId", experiment, status as "status: RunStatus", started_at, ended_at,
                      training_rows, training_data_sha256, code_version
               from registry.runs where run_id = $1"#,
            run_id.as_uuid(),
        )
        .fetch_optional(self.pool())
        .await?
        .ok_or(Error::RunNotFound { run_id })
    }

    /// A run's latest value of each metric.
    pub async fn run_metrics(&self, run_id: RunId) -> Result<Vec<(String, f64)>, Error> {
        Ok(sqlx::query!(
            "select distinct on (key) key, value from registry.run_metrics where run_id = $1
             order by key, step desc",
            run_id.as_uuid(),
        )
        .fetch_all(self.pool())
        .await?
        .into_iter()
        .map(|row| (row.key, row.value))
        .collect())
    }

    /// Records a decision and moves the aliases it implies in one transaction, compare-and-set: the
    /// transaction takes the model's advisory lock on its own connection, checks that `alias` still
    /// points at the champion the decision was judged against (`decision.champion_version`), then stores
    /// the decision, points `alias` at the candidate when it was promoted (or `otherwise`, e.g.
    /// `challenger`, when it was not; a promotion removes an `otherwise` alias pointing at the candidate or
    /// an older version) and sends the NOTIFYs, all committed together. When the champion
    /// moved since the judgement, nothing is written and [`Error::AliasMoved`] tells the caller to
    /// judge again.
    pub async fn record_decision(
        &self,
        decision: &Decision,
        alias: &str,
        otherwise: Option<&str>,
    ) -> Result<(), Error> {
        self.record_decision_by(decision, alias, otherwise, None)
            .await
    }

    /// [`Registry::record_decision`], made by `actor` by hand: a promotion is written to the audit log
    /// in the same transaction.
    pub async fn record_decision_by(
        &self,
        decision: &Decision,
        alias: &str,
        otherwise: Option<&str>,
        actor: Option<&Actor>,
    ) -> Result<(), Error> {
        let mut tx: Transaction<'static, Postgres> = self.pool().begin().await?;
        crate::registry::lock_in(&mut tx, &decision.model_name).await?;
        let current = sqlx::query_scalar!(
            r#"select version as "version: VersionNumber" from registry.aliases
               where model_name = $1 and alias = $2 for update"#,
            decision.model_name,
            alias,
        )
        .fetch_optional(&mut *tx)
        .await?;
        if current != decision.champion_version {
            return Err(Error::AliasMoved {
                name: decision.model_name.clone(),
                alias: alias.to_owned(),
                judged: decision.champion_version,
                now: current,
            });
        }
        sqlx::query!(
            "insert into registry.promotion_decisions (model_name, candidate_version, champion_version,
                 metric, candidate_score, champion_score, margin, promoted, reason, evidence)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            decision.model_name,
            decision.candidate_version.get(),
            decision.champion_version.map(VersionNumber::get),
            decision.metric,
            decision.candidate_score,
            decision.champion_score,
            decision.margin,
            decision.promoted,
            decision.reason,
            Json(&decision.evidence) as _,
        )
        .execute(&mut *tx)
        .await?;
        let target = if decision.promoted {
            Some(alias)
        } else {
            otherwise
        };
        if let Some(target) = target {
            self.set_alias_in(
                &mut tx,
                &decision.model_name,
                target,
                decision.candidate_version,
            )
            .await?;
        }
        if decision.promoted
            && let Some(otherwise) = otherwise
        {
            // A challenger the new champion supersedes (itself, or an older version) is no longer worth
            // shadow-scoring: the alias goes with the promotion.
            let stale = sqlx::query_scalar!(
                r#"select version as "version: VersionNumber" from registry.aliases
                   where model_name = $1 and alias = $2"#,
                decision.model_name,
                otherwise,
            )
            .fetch_optional(&mut *tx)
            .await?;
            if stale.is_some_and(|v| v <= decision.candidate_version) {
                self.delete_alias_in(&mut tx, &decision.model_name, otherwise)
                    .await?;
            }
        }
        if let Some(actor) = actor {
            let action = if decision.promoted {
                Action::ModelPromote
            } else {
                Action::AliasSet
            };
            audit::record(
                &mut tx,
                actor,
                action,
                &format!("{}@{alias}", decision.model_name),
                &serde_json::json!({
                    "version": decision.candidate_version.get(),
                    "previous": decision.champion_version.map(VersionNumber::get),
                    "reason": decision.reason,
                }),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Points `alias` at `version` by hand (`churnctl models promote`, the MLflow alias API) and returns
    /// the version it pointed at before; `actor` and the move go to the audit log in the move's
    /// transaction. Moving `champion` is a promotion: it is recorded as a manual decision with `reason`
    /// and `evidence` (compare-and-set, like every decision), so the history shows who moved it; any
    /// other alias just moves.
    pub async fn point_alias_by_hand(
        &self,
        name: &str,
        alias: &str,
        version: VersionNumber,
        reason: &str,
        evidence: Value,
        actor: &Actor,
    ) -> Result<Option<VersionNumber>, Error> {
        self.get(name, version).await?;
        crate::registry::check_alias(alias)?;
        let previous = self.by_alias(name, alias).await?.map(|v| v.version);
        if crate::Alias::CHAMPION != alias {
            let mut tx = self.pool().begin().await?;
            self.set_alias_in(&mut tx, name, alias, version).await?;
            audit::record(
                &mut tx,
                actor,
                Action::AliasSet,
                &format!("{name}@{alias}"),
                &serde_json::json!({
                    "version": version.get(),
                    "previous": previous.map(VersionNumber::get),
                }),
            )
            .await?;
            tx.commit().await?;
            return Ok(previous);
        }
        let decision = Decision {
            model_name: name.to_owned(),
            candidate_version: version,
            champion_version: previous,
            metric: "manual".to_owned(),
            candidate_score: None,
            champion_score: None,
            margin: 0.0,
            promoted: true,
            reason: reason.to_owned(),
            evidence,
        };
        self.record_decision_by(&decision, alias, None, Some(actor))
            .await?;
        Ok(previous)
    }

    /// Removes an alias by hand, and records `actor` in the audit log in the same transaction; returns
    /// whether it existed (nothing is recorded when it did not).
    pub async fn delete_alias_by_hand(
        &self,
        name: &str,
        alias: &str,
        actor: &Actor,
    ) -> Result<bool, Error> {
        let mut tx = self.pool().begin().await?;
        let deleted = self.delete_alias_in(&mut tx, name, alias).await?;
        if deleted {
            audit::record(
                &mut tx,
                actor,
                Action::AliasDelete,
                &format!("{name}@{alias}"),
                &serde_json::json!({}),
            )
            .await?;
            tx.commit().await?;
        }
        Ok(deleted)
    }

    /// The decisions about a model, newest first.
    pub async fn decisions(&self, model_name: &str) -> Result<Vec<Decision>, Error> {
        Ok(decision_lines(self.pool(), model_name, None)
            .await?
            .into_iter()
            .map(|line| line.decision)
            .collect())
    }
}

/// A champion/challenger decision with its evidence, as stored, and when it was made.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionLine {
    pub decision: Decision,
    pub decided_at: DateTime<Utc>,
}

/// The newest `limit` decisions about `model_name` (all of them without a limit), newest first.
pub async fn decision_lines(
    pool: &PgPool,
    model_name: &str,
    limit: Option<i64>,
) -> Result<Vec<DecisionLine>, Error> {
    let rows = sqlx::query_as!(
        DecisionRow,
        r#"select model_name, candidate_version as "candidate_version: VersionNumber",
                  champion_version as "champion_version: VersionNumber", metric, candidate_score,
                  champion_score, margin, promoted, reason, evidence as "evidence: Json<Value>",
                  decided_at
           from registry.promotion_decisions where model_name = $1
           order by decided_at desc, decision_id desc limit $2"#,
        model_name,
        limit,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(DecisionLine::from).collect())
}

/// Splits key/value pairs into the two arrays an `unnest` insert binds.
fn unzip(pairs: &[(String, String)]) -> (Vec<&str>, Vec<&str>) {
    pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).unzip()
}

struct DecisionRow {
    model_name: String,
    candidate_version: VersionNumber,
    champion_version: Option<VersionNumber>,
    metric: String,
    candidate_score: Option<f64>,
    champion_score: Option<f64>,
    margin: f64,
    promoted: bool,
    reason: String,
    evidence: Json<Value>,
    decided_at: DateTime<Utc>,
}

impl From<DecisionRow> for DecisionLine {
    fn from(r: DecisionRow) -> Self {
        DecisionLine {
            decision: Decision {
                model_name: r.model_name,
                candidate_version: r.candidate_version,
                champion_version: r.champion_version,
                metric: r.metric,
                candidate_score: r.candidate_score,
                champion_score: r.champion_score,
                margin: r.margin,
                promoted: r.promoted,
                reason: r.reason,
                evidence: r.evidence.0,
            },
            decided_at: r.decided_at,
        }
    }
}
