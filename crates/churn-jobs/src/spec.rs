//! How a job is run: its schedule, switch, timeout and retries, checked before the runner takes it.

use std::time::Duration;

use churn_core::Backoff;

use crate::runner::RunnerError;

/// When a job runs on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// On a cron expression with seconds (`sec min hour day month weekday`, UTC).
    Cron(String),
    /// Again and again: a run ends (e.g. after a minute) and the next starts at once.
    Continuous,
    /// Only when triggered (by the API or an event).
    OnDemand,
}

/// How a job is run: its schedule, switch, timeout and retries.
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub name: &'static str,
    pub schedule: Schedule,
    /// Disabled jobs are not scheduled (they can still be triggered by hand).
    pub enabled: bool,
    /// Longest one attempt may take.
    pub timeout: Duration,
    /// Further attempts after a failed one whose error may pass.
    pub retries: u32,
    /// The first back-off; each further retry doubles it (with jitter), up to `max_retry_delay`.
    pub retry_delay: Duration,
    pub max_retry_delay: Duration,
}

impl JobSpec {
    /// Refuses specs that cannot work, naming the setting.
    pub fn check(&self) -> Result<(), RunnerError> {
        let bad = |setting: &str, value: String, rule: &'static str| {
            Err(RunnerError::InvalidSpec {
                job: self.name.to_owned(),
                setting: setting.to_owned(),
                value,
                rule,
            })
        };
        let valid_name = !self.name.is_empty()
            && self.name.len() <= 64
            && self.name.starts_with(|c: char| c.is_ascii_lowercase())
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid_name {
            return bad(
                "name",
                self.name.to_owned(),
                "1-64 lower-case letters, digits or '_', starting with a letter",
            );
        }
        if self.timeout.is_zero() {
            return bad("timeout", "0".into(), "must be at least 1 s");
        }
        if self.retries > 100 {
            return bad("retries", self.retries.to_string(), "must be at most 100");
        }
        if self.retry_delay > self.max_retry_delay {
            return bad(
                "retry_delay",
                format!("{} s", self.retry_delay.as_secs_f64()),
                "must not exceed the largest retry delay",
            );
        }
        Ok(())
    }

    /// The wait before attempt `attempt + 1`: `retry_delay · 2^(attempt-1)` plus jitter of up to one
    /// `retry_delay` (so replicas retrying together spread out), capped at `max_retry_delay`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        Backoff::jittered(self.retry_delay, self.max_retry_delay).delay_before_retry(attempt)
    }
}
