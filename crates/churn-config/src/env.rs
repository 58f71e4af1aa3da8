//! Where configuration values come from, and the error that names a missing or invalid variable.

use std::collections::{BTreeSet, HashMap};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use crate::Secret;

/// A configuration variable that is missing or does not parse.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name} is not set: {hint}")]
    Missing { name: String, hint: String },
    #[error("{name}={value:?} is invalid: {reason}")]
    Invalid {
        name: String,
        value: String,
        reason: String,
    },
}

impl ConfigError {
    /// An invalid value; pass `"<hidden>"` as the value of a secret.
    pub fn invalid(name: &str, value: &str, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            name: name.to_owned(),
            value: value.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Where configuration values come from.
#[derive(Debug, Clone, Default)]
pub enum Env {
    /// The process environment.
    #[default]
    Process,
    /// A fixed map (tests, or values layered over the process environment).
    Map(HashMap<String, String>),
    /// Nothing is set, and every name asked for is written down: running a configuration's `from_env`
    /// on it lists the variables that configuration reads (the deployment test checks each one is
    /// documented in sample.env and passed by docker-compose.yml).
    Recording(Arc<Mutex<BTreeSet<String>>>),
}

impl Env {
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Env::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    /// The process environment with `overrides` on top (e.g. a CLI's flags over its variables).
    pub fn process_with<K: Into<String>, V: Into<String>>(
        overrides: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let mut map: HashMap<String, String> = std::env::vars().collect();
        map.extend(overrides.into_iter().map(|(k, v)| (k.into(), v.into())));
        Env::Map(map)
    }

    /// An [`Env::Recording`] with nothing recorded yet.
    pub fn recording() -> Self {
        Env::Recording(Arc::default())
    }

    /// The names asked for so far, sorted; empty unless this is an [`Env::Recording`].
    pub fn names_read(&self) -> Vec<String> {
        match self {
            Env::Recording(seen) => seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
                .cloned()
                .collect(),
            Env::Process | Env::Map(_) => Vec::new(),
        }
    }

    /// The variable's value; empty strings count as unset so `VAR=` in an env file means "default".
    pub fn get(&self, name: &str) -> Option<String> {
        let value = match self {
            Env::Process => std::env::var(name).ok(),
            Env::Map(map) => map.get(name).cloned(),
            Env::Recording(seen) => {
                // A poisoned lock only means another reader panicked; the set is still usable.
                let mut names = seen
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                names.insert(name.to_owned());
                None
            }
        };
        value.filter(|v| !v.trim().is_empty())
    }

    /// Parses the variable, or returns `default` when it is unset.
    pub fn parse_or<T>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => parse_value(name, &raw),
        }
    }

    /// Parses the variable when it is set.
    pub fn parse_opt<T>(&self, name: &str) -> Result<Option<T>, ConfigError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        self.get(name)
            .map(|raw| parse_value(name, &raw))
            .transpose()
    }

    /// A whole number within `range`, or `default` when unset; out of range is an error naming the
    /// variable and the range.
    pub fn number_in<T>(
        &self,
        name: &str,
        default: T,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + std::fmt::Display + Copy,
        T::Err: std::fmt::Display,
    {
        let value = self.parse_or(name, default)?;
        if range.contains(&value) {
            Ok(value)
        } else {
            Err(ConfigError::invalid(
                name,
                &value.to_string(),
                format!("must be between {} and {}", range.start(), range.end()),
            ))
        }
    }

    /// A boolean: true/false, 1/0, yes/no, on/off.
    pub fn flag(&self, name: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => match raw.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => Err(ConfigError::invalid(name, &raw, "expected true or false")),
            },
        }
    }

    /// A secret of at least `min_len` characters (surrounding blanks trimmed), when set. The value never
    /// appears in the error.
    pub fn secret(&self, name: &str, min_len: usize) -> Result<Option<Secret>, ConfigError> {
        match self.get(name) {
            None => Ok(None),
            Some(raw) if raw.trim().len() < min_len => Err(ConfigError::invalid(
                name,
                "<hidden>",
                format!("must be at least {min_len} characters (try: openssl rand -hex 32)"),
            )),
            Some(raw) => Ok(Some(Secret::new(raw.trim()))),
        }
    }
}

fn parse_value<T>(name: &str, raw: &str) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    raw.trim()
        .parse()
        .map_err(|e: T::Err| ConfigError::invalid(name, raw, e.to_string()))
}
