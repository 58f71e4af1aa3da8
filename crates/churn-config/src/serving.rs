//! The classifier's inference log (INFERENCE_LOG*) and its named prediction keys (PREDICT_API_KEYS).

use std::time::Duration;

use crate::{ConfigError, Env, MIN_TOKEN_LEN, Secret};

/// Which predictions are logged (INFERENCE_LOG).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum InferenceLogMode {
    /// Every prediction (the default).
    All,
    /// Each request with this probability, in (0, 1]: a request is logged whole or not at all.
    Sample(f64),
    /// Nothing.
    Off,
}

impl InferenceLogMode {
    const RULE: &'static str =
        "must be `all`, `off` or `sample:<p>` with p in (0, 1], e.g. sample:0.1";

    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        match raw.to_ascii_lowercase().as_str() {
            "all" => return Ok(Self::All),
            "off" => return Ok(Self::Off),
            _ => {}
        }
        let p = raw
            .strip_prefix("sample:")
            .and_then(|p| p.trim().parse::<f64>().ok())
            .ok_or_else(|| Self::RULE.to_owned())?;
        if p > 0.0 && p <= 1.0 {
            Ok(Self::Sample(p))
        } else {
            Err(Self::RULE.to_owned())
        }
    }
}

/// INFERENCE_LOG and how its writer batches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InferenceLogConfig {
    pub mode: InferenceLogMode,
    /// Rows waiting for the writer at most (INFERENCE_LOG_QUEUE, default 10,000); more are dropped and
    /// counted, never waited for.
    pub queue: usize,
    /// Rows per COPY at most (INFERENCE_LOG_BATCH, default 1,000).
    pub batch: usize,
    /// Longest a row waits for its batch to fill (INFERENCE_LOG_FLUSH_MS, default 200).
    pub flush: Duration,
}

impl InferenceLogConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let mode = match env.get("INFERENCE_LOG") {
            None => InferenceLogMode::All,
            Some(raw) => InferenceLogMode::parse(&raw)
                .map_err(|rule| ConfigError::invalid("INFERENCE_LOG", &raw, rule))?,
        };
        Ok(Self {
            mode,
            queue: env.number_in("INFERENCE_LOG_QUEUE", 10_000, 1..=10_000_000)?,
            batch: env.number_in("INFERENCE_LOG_BATCH", 1_000, 1..=100_000)?,
            flush: Duration::from_millis(env.number_in(
                "INFERENCE_LOG_FLUSH_MS",
                200u64,
                1..=60_000,
            )?),
        })
    }
}

/// A prediction key and the name its calls are logged under.
#[derive(Debug, Clone)]
pub struct NamedKey {
    pub name: String,
    pub key: Secret,
}

/// The name PREDICT_API_KEY's calls are logged under.
pub const DEFAULT_KEY_NAME: &str = "default";

const KEY_NAME_RULE: &str =
    "each entry must be name:key, the name 1 to 100 letters, digits, '-', '_' or '.'";

/// PREDICT_API_KEY (named `default`) and PREDICT_API_KEYS (`name:key,name:key`): every key the
/// prediction routes take. Names and keys must be distinct.
pub fn prediction_keys(env: &Env) -> Result<Vec<NamedKey>, ConfigError> {
    const VAR: &str = "PREDICT_API_KEYS";
    let mut keys = Vec::new();
    if let Some(key) = env.secret("PREDICT_API_KEY", MIN_TOKEN_LEN)? {
        keys.push(NamedKey {
            name: DEFAULT_KEY_NAME.to_owned(),
            key,
        });
    }
    let Some(raw) = env.get(VAR) else {
        return Ok(keys);
    };
    for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let Some((name, key)) = entry.split_once(':') else {
            return Err(ConfigError::invalid(VAR, "<hidden>", KEY_NAME_RULE));
        };
        let name = name.trim();
        let valid_name = (1..=100).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid_name {
            return Err(ConfigError::invalid(
                VAR,
                &format!("{name}:<hidden>"),
                KEY_NAME_RULE,
            ));
        }
        if key.trim().len() < MIN_TOKEN_LEN {
            return Err(ConfigError::invalid(
                VAR,
                &format!("{name}:<hidden>"),
                format!("each key must be at least {MIN_TOKEN_LEN} characters"),
            ));
        }
        if keys.iter().any(|k| k.name == name) {
            return Err(ConfigError::invalid(
                VAR,
                &format!("{name}:<hidden>"),
                "the name is used twice (`default` is PREDICT_API_KEY's)",
            ));
        }
        if keys.iter().any(|k| k.key.expose() == key.trim()) {
            return Err(ConfigError::invalid(
                VAR,
                &format!("{name}:<hidden>"),
                "the key is used twice: each caller needs its own",
            ));
        }
        keys.push(NamedKey {
            name: name.to_owned(),
            key: Secret::new(key.trim()),
        });
    }
    Ok(keys)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn the_log_mode_is_all_by_default_and_reads_sample_and_off() {
        let config = InferenceLogConfig::from_env(&env(&[])).unwrap();
        assert_eq!(config.mode, InferenceLogMode::All);
        assert_eq!(config.queue, 10_000);
        for (raw, mode) in [
            ("off", InferenceLogMode::Off),
            ("ALL", InferenceLogMode::All),
            ("sample:0.25", InferenceLogMode::Sample(0.25)),
            ("sample:1", InferenceLogMode::Sample(1.0)),
        ] {
            let config = InferenceLogConfig::from_env(&env(&[("INFERENCE_LOG", raw)])).unwrap();
            assert_eq!(config.mode, mode, "{raw}");
        }
    }

    #[test]
    fn a_bad_log_mode_names_the_variable_the_value_and_the_rule() {
        for raw in ["sample:0", "sample:1.5", "sample:x", "some", "sample:-1"] {
            let e = InferenceLogConfig::from_env(&env(&[("INFERENCE_LOG", raw)]))
                .unwrap_err()
                .to_string();
            assert!(e.contains("INFERENCE_LOG") && e.contains(raw), "{e}");
            assert!(e.contains("sample:<p>"), "{e}");
        }
        let e = InferenceLogConfig::from_env(&env(&[("INFERENCE_LOG_QUEUE", "0")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("INFERENCE_LOG_QUEUE"), "{e}");
    }

    #[test]
    fn named_keys_join_the_default_key_and_must_be_distinct() {
        let keys = prediction_keys(&env(&[
            ("PREDICT_API_KEY", "default-key-0123456789"),
            (
                "PREDICT_API_KEYS",
                "crm:crm-key-0123456789abc, billing:billing-key-0123456789",
            ),
        ]))
        .unwrap();
        let names: Vec<&str> = keys.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(names, ["default", "crm", "billing"]);
        assert_eq!(keys[1].key.expose(), "crm-key-0123456789abc");
        for bad in [
            "crm",
            "bad name:crm-key-0123456789abc",
            "crm:short",
            "crm:crm-key-0123456789abc,crm:other-key-0123456789",
            "a:same-key-0123456789,b:same-key-0123456789",
        ] {
            let e = prediction_keys(&env(&[("PREDICT_API_KEYS", bad)]))
                .unwrap_err()
                .to_string();
            assert!(e.contains("PREDICT_API_KEYS"), "{e}");
            assert!(!e.contains("0123456789"), "a key never prints: {e}");
        }
    }
}
