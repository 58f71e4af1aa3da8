//! The audit log (`ops.audit_log`): every manual action with who did it, written beside the action in
//! its transaction, and read back newest first for the console and `GET /audit`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};

use crate::Error;

/// Longest actor name kept (the table's check says the same).
pub const MAX_ACTOR_LEN: usize = 64;

/// The rule an actor name follows, as error messages state it.
pub const ACTOR_RULE: &str =
    "1 to 64 characters: letters, digits and . _ @ + - (starting with a letter or digit)";

/// Which credential authorized an action: the token presented to a service, or the command line (which
/// reaches the database directly).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum Scope {
    Admin,
    Registry,
    Read,
    Cli,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Admin => "admin",
            Scope::Registry => "registry",
            Scope::Read => "read",
            Scope::Cli => "cli",
        }
    }
}

/// Who did something: the credential's scope and a name (the one the caller gave, else the scope's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor {
    pub scope: Scope,
    pub name: String,
}

impl Actor {
    /// The actor named `name` (checked against [`ACTOR_RULE`]), or named after the scope when `None`.
    pub fn new(scope: Scope, name: Option<&str>) -> Result<Self, Error> {
        let name = match name {
            None => scope.as_str().to_owned(),
            Some(raw) if valid_name(raw) => raw.to_owned(),
            Some(raw) => {
                return Err(Error::InvalidActor {
                    value: raw.chars().take(80).collect(),
                });
            }
        };
        Ok(Self { scope, name })
    }

    /// The actor of a scope, named after it (always valid).
    pub fn of(scope: Scope) -> Self {
        Self {
            scope,
            name: scope.as_str().to_owned(),
        }
    }
}

fn valid_name(raw: &str) -> bool {
    let mut chars = raw.chars();
    raw.len() <= MAX_ACTOR_LEN
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '+' | '-'))
}

/// A manual action the log records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::Type)]
#[sqlx(type_name = "text")]
pub enum Action {
    #[serde(rename = "job.trigger")]
    #[sqlx(rename = "job.trigger")]
    JobTrigger,
    #[serde(rename = "job.pause")]
    #[sqlx(rename = "job.pause")]
    JobPause,
    #[serde(rename = "job.resume")]
    #[sqlx(rename = "job.resume")]
    JobResume,
    #[serde(rename = "alias.set")]
    #[sqlx(rename = "alias.set")]
    AliasSet,
    #[serde(rename = "alias.delete")]
    #[sqlx(rename = "alias.delete")]
    AliasDelete,
    /// Moving the champion alias by hand.
    #[serde(rename = "model.promote")]
    #[sqlx(rename = "model.promote")]
    ModelPromote,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::JobTrigger => "job.trigger",
            Action::JobPause => "job.pause",
            Action::JobResume => "job.resume",
            Action::AliasSet => "alias.set",
            Action::AliasDelete => "alias.delete",
            Action::ModelPromote => "model.promote",
        }
    }
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    pub audit_id: i64,
    pub at: DateTime<Utc>,
    pub token_scope: Scope,
    pub actor: String,
    pub action: Action,
    /// What was acted on: a job's name, `MODEL@ALIAS`.
    pub target: String,
    pub details: Json<Value>,
}

/// Records `action` on `target` by `actor`, on the caller's connection (inside its transaction, so the
/// line commits or rolls back with the action).
pub async fn record(
    conn: &mut PgConnection,
    actor: &Actor,
    action: Action,
    target: &str,
    details: &Value,
) -> Result<i64, Error> {
    Ok(sqlx::query_scalar!(
        "insert into ops.audit_log (token_scope, actor, action, target, details)
         values ($1, $2, $3, $4, $5) returning audit_id",
        actor.scope as _,
        actor.name,
        action as _,
        target,
        Json(details) as _,
    )
    .fetch_one(conn)
    .await?)
}

/// The newest `limit` lines, newest first.
pub async fn recent(pool: &PgPool, limit: i64) -> Result<Vec<AuditEntry>, Error> {
    Ok(sqlx::query_as!(
        AuditEntry,
        r#"select audit_id, at, token_scope as "token_scope: Scope", actor, action as "action: Action",
                  target, details as "details: Json<Value>"
           from ops.audit_log order by at desc, audit_id desc limit $1"#,
        limit,
    )
    .fetch_all(pool)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_actor_without_a_name_is_named_after_its_scope() {
        let actor = Actor::new(Scope::Registry, None).unwrap_or_else(|_| Actor::of(Scope::Read));
        assert_eq!(actor.name, "registry");
        assert_eq!(actor.scope, Scope::Registry);
    }

    #[test]
    fn names_outside_the_rule_are_refused() {
        for bad in [
            "",
            " alice",
            "-alice",
            "alice bob",
            "alice\n",
            "<script>",
            "élodie",
            &"a".repeat(65),
        ] {
            assert!(
                matches!(
                    Actor::new(Scope::Admin, Some(bad)),
                    Err(Error::InvalidActor { .. })
                ),
                "{bad:?} was accepted"
            );
        }
        for good in [
            "alice",
            "alice@example.com",
            "ci-bot_2",
            "a",
            &"a".repeat(64),
        ] {
            assert_eq!(
                Actor::new(Scope::Admin, Some(good))
                    .map(|a| a.name)
                    .ok()
                    .as_deref(),
                Some(good)
            );
        }
    }
}
