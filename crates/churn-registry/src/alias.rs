//! Aliases: the [`Alias`] names the platform gives meaning to, and the [`AliasWatcher`] that follows one
//! alias's moves (LISTEN/NOTIFY on [`ALIAS_CHANNEL`], with a polling fallback).

use std::borrow::Cow;
use std::future::Future;
use std::time::Duration;

use churn_core::Backoff;
use sqlx::postgres::PgListener;

use crate::{ALIAS_CHANNEL, AliasEvent, ModelRef, Selector};

/// An alias name (`champion`, `challenger`, or any other an operator points).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Alias(Cow<'static, str>);

impl Alias {
    /// The version that answers requests (the classifier serves it, the synthesizer samples from it).
    /// Moving it is a promotion: it is recorded as a decision, and it cannot be deleted, only moved.
    pub const CHAMPION: Alias = Alias(Cow::Borrowed("champion"));
    /// A candidate that lost its promotion decision: scored in the champion's shadow, never acted on.
    pub const CHALLENGER: Alias = Alias(Cow::Borrowed("challenger"));

    /// An alias by name, checked against the registry's rule (1-64 lower-case letters, digits, `_` or
    /// `-`, starting with a letter).
    pub fn parse(name: &str) -> Result<Alias, crate::Error> {
        crate::registry::check_alias(name)?;
        Ok(Alias(Cow::Owned(name.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is [`Alias::CHAMPION`], whose moves are promotions.
    pub fn is_champion(&self) -> bool {
        *self == Alias::CHAMPION
    }
}

impl std::ops::Deref for Alias {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Alias {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Alias {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for Alias {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Alias {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// Follows what a registry reference names: calls back at once, on every NOTIFY that may concern it,
/// and every `poll` in case notifications are lost (a dropped connection, a database that does not
/// deliver them). LISTEN uses a connection of its own, outside any pool that serves requests, and after
/// an outage it reconnects with a short back-off.
#[derive(Debug, Clone)]
pub struct AliasWatcher {
    database_url: String,
    model: String,
    /// `None` for a reference by version: no move concerns it, only the poll re-checks it.
    alias: Option<String>,
    poll: Duration,
}

impl AliasWatcher {
    const FIRST_RETRY: Duration = Duration::from_millis(250);
    const LAST_RETRY: Duration = Duration::from_secs(5);

    /// A watcher of a registry reference; `None` for a file path (nothing to watch).
    pub fn for_reference(
        database_url: impl Into<String>,
        reference: &ModelRef,
        poll: Duration,
    ) -> Option<AliasWatcher> {
        let ModelRef::Registry { name, selector } = reference else {
            return None;
        };
        Some(AliasWatcher {
            database_url: database_url.into(),
            model: name.clone(),
            alias: match selector {
                Selector::Alias(alias) => Some(alias.clone()),
                Selector::Version(_) => None,
            },
            poll,
        })
    }

    /// Whether an event may move what this watcher follows.
    pub fn concerns(&self, event: &AliasEvent) -> bool {
        self.alias
            .as_ref()
            .is_some_and(|alias| event.model == self.model && &event.alias == alias)
    }

    /// Runs `on_change` until the task is aborted: right after every (re)connection (catching moves made
    /// while disconnected), on each NOTIFY that [concerns](Self::concerns) it (or cannot be read), and
    /// after every `poll` without one.
    pub fn spawn<F, Fut>(self, on_change: F) -> tokio::task::JoinHandle<()>
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        tokio::spawn(async move {
            let mut backoff = Backoff::new(Self::FIRST_RETRY, Self::LAST_RETRY);
            loop {
                let mut listener = self.listen().await;
                on_change().await;
                let Some(listener) = listener.as_mut() else {
                    // No LISTEN: poll, and try LISTEN again with a growing back-off.
                    tokio::time::sleep(backoff.next_delay().min(self.poll)).await;
                    continue;
                };
                backoff.reset();
                loop {
                    let notified = tokio::select! {
                        note = listener.recv() => Some(note),
                        () = tokio::time::sleep(self.poll) => None,
                    };
                    match notified {
                        Some(Ok(note)) => {
                            let relevant = serde_json::from_str::<AliasEvent>(note.payload())
                                .map_or(true, |e| self.concerns(&e));
                            if relevant {
                                on_change().await;
                            }
                        }
                        // The LISTEN connection broke: reconnect after a short pause.
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, "the LISTEN connection failed; reconnecting");
                            tokio::time::sleep(backoff.next_delay()).await;
                            break;
                        }
                        None => on_change().await,
                    }
                }
            }
        })
    }

    async fn listen(&self) -> Option<PgListener> {
        match PgListener::connect(&self.database_url).await {
            Ok(mut l) => match l.listen(ALIAS_CHANNEL).await {
                Ok(()) => Some(l),
                Err(e) => {
                    tracing::warn!(error = %e, "LISTEN failed; polling until it works");
                    None
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "cannot open a LISTEN connection; polling until it works");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_named_aliases_pass_the_registry_rule() {
        for alias in [Alias::CHAMPION, Alias::CHALLENGER] {
            assert_eq!(Alias::parse(&alias).ok(), Some(alias.clone()));
        }
        assert!(Alias::parse("Champion").is_err());
        assert!(Alias::CHAMPION.is_champion() && !Alias::CHALLENGER.is_champion());
    }

    #[test]
    fn a_watcher_follows_only_its_own_alias() {
        let reference: ModelRef = "registry:churn-classifier@champion"
            .parse()
            .expect("a valid reference");
        let watcher =
            AliasWatcher::for_reference("postgres://", &reference, Duration::from_secs(1))
                .expect("a registry reference");
        let event = |model: &str, alias: &str| AliasEvent {
            model: model.to_owned(),
            alias: alias.to_owned(),
            version: Some(churn_core::VersionNumber::new(2).expect("2 is a version")),
        };
        assert!(watcher.concerns(&event("churn-classifier", "champion")));
        assert!(!watcher.concerns(&event("churn-classifier", "challenger")));
        assert!(!watcher.concerns(&event("churn-synthesizer", "champion")));
        let by_version: ModelRef = "registry:churn-classifier/3".parse().expect("valid");
        let watcher =
            AliasWatcher::for_reference("postgres://", &by_version, Duration::from_secs(1))
                .expect("a registry reference");
        assert!(!watcher.concerns(&event("churn-classifier", "champion")));
        let path: ModelRef = "./model.json".parse().expect("valid");
        assert!(
            AliasWatcher::for_reference("postgres://", &path, Duration::from_secs(1)).is_none()
        );
    }
}
