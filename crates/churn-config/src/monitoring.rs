//! Settings of the monitoring jobs: live metrics (`METRICS_*`), drift (`DRIFT_*`) and retraining with its
//! triggers and promotion rules (`RETRAIN_*`).

use std::time::Duration;

use crate::env::{ConfigError, Env};
use crate::services::{JobSchedule, JobSettings};

/// A duration written as a number and a unit: `90s`, `15m`, `1h`, `7d`.
pub fn parse_duration(name: &str, raw: &str) -> Result<Duration, ConfigError> {
    let raw = raw.trim();
    let bad = || {
        ConfigError::invalid(
            name,
            raw,
            "expected a whole number and a unit: s, m, h or d (e.g. 15m, 1h, 7d), at least 1s",
        )
    };
    let split = raw.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = raw.split_at(split);
    let number: u64 = number.parse().map_err(|_| bad())?;
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    let secs = number
        .checked_mul(unit)
        .filter(|s| *s > 0)
        .ok_or_else(bad)?;
    Ok(Duration::from_secs(secs))
}

fn duration_or(env: &Env, name: &str, default: Duration) -> Result<Duration, ConfigError> {
    env.get(name)
        .map_or(Ok(default), |raw| parse_duration(name, &raw))
}

/// A window the metrics job computes over, named as written (`1h`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowSetting {
    pub name: String,
    pub length: Duration,
}

/// The metrics job's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsSettings {
    pub job: JobSettings,
    /// Windows ending at each run (METRICS_WINDOWS, default `1h,1d`).
    pub windows: Vec<WindowSetting>,
    /// Fewest labelled predictions a window needs for a row (METRICS_MIN_SAMPLES, default 50).
    pub min_samples: usize,
    /// Probability bins of the calibration table (METRICS_CALIBRATION_BINS, default 10).
    pub calibration_bins: usize,
    /// Days after a cohort's end until its labels count as matured and its figures final
    /// (LABEL_MATURITY_DAYS, default 30; 0 to 3650).
    pub label_maturity_days: u32,
}

impl MetricsSettings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let windows = match env.get("METRICS_WINDOWS") {
            None => vec![
                WindowSetting {
                    name: "1h".into(),
                    length: Duration::from_secs(3600),
                },
                WindowSetting {
                    name: "1d".into(),
                    length: Duration::from_secs(86_400),
                },
            ],
            Some(raw) => {
                let mut windows = Vec::new();
                for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    let length = parse_duration("METRICS_WINDOWS", part)?;
                    if windows.iter().any(|w: &WindowSetting| w.name == part) {
                        return Err(ConfigError::invalid(
                            "METRICS_WINDOWS",
                            &raw,
                            format!("{part} is listed twice"),
                        ));
                    }
                    windows.push(WindowSetting {
                        name: part.to_owned(),
                        length,
                    });
                }
                if windows.is_empty() || windows.len() > 8 {
                    return Err(ConfigError::invalid(
                        "METRICS_WINDOWS",
                        &raw,
                        "expected 1 to 8 comma-separated windows, e.g. 1h,1d",
                    ));
                }
                windows
            }
        };
        Ok(Self {
            job: JobSettings::from_env(
                env,
                "METRICS",
                JobSettings {
                    schedule: JobSchedule::Cron("0 */5 * * * *".to_owned()),
                    enabled: true,
                    timeout: Duration::from_secs(600),
                    retries: 1,
                    retry_delay: Duration::from_secs(30),
                },
            )?,
            windows,
            min_samples: env.number_in("METRICS_MIN_SAMPLES", 50usize, 1..=100_000_000)?,
            calibration_bins: env.number_in("METRICS_CALIBRATION_BINS", 10usize, 2..=100)?,
            label_maturity_days: env.number_in("LABEL_MATURITY_DAYS", 30u32, 0..=3650)?,
        })
    }
}

/// The drift job's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftSettings {
    pub job: JobSettings,
    /// The current data: customers written in this window before each run (DRIFT_WINDOW, default 1h).
    pub window: Duration,
    /// Fewest current rows worth a verdict; with fewer the run records nothing (DRIFT_MIN_ROWS,
    /// default 200).
    pub min_rows: usize,
    /// Most current rows compared, the newest (DRIFT_MAX_ROWS, default 100000).
    pub max_rows: usize,
    /// Share of drifted columns that means dataset drift (DRIFT_SHARE, default 0.5, Evidently's).
    pub drift_share: f64,
}

impl DriftSettings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let min_rows = env.number_in("DRIFT_MIN_ROWS", 200usize, 1..=10_000_000)?;
        let max_rows = env.number_in("DRIFT_MAX_ROWS", 100_000usize, 1..=10_000_000)?;
        if max_rows < min_rows {
            return Err(ConfigError::invalid(
                "DRIFT_MAX_ROWS",
                &max_rows.to_string(),
                format!("must be at least DRIFT_MIN_ROWS ({min_rows})"),
            ));
        }
        Ok(Self {
            job: JobSettings::from_env(
                env,
                "DRIFT",
                JobSettings {
                    schedule: JobSchedule::Cron("30 */10 * * * *".to_owned()),
                    enabled: true,
                    timeout: Duration::from_secs(600),
                    retries: 1,
                    retry_delay: Duration::from_secs(30),
                },
            )?,
            window: duration_or(env, "DRIFT_WINDOW", Duration::from_secs(3600))?,
            min_rows,
            max_rows,
            drift_share: {
                let share = env.number_in("DRIFT_SHARE", 0.5f64, 0.0..=1.0)?;
                if share <= 0.0 {
                    return Err(ConfigError::invalid(
                        "DRIFT_SHARE",
                        "0",
                        "must be above 0 and at most 1",
                    ));
                }
                share
            },
        })
    }
}

/// Where the retrain job's training rows come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrainingSource {
    /// The seed file (CHURN_SEED_DATA).
    Seed,
    /// Real labelled customers ingested from files.
    Ingested,
    /// Synthetic customers from the generate loop (their labels come from the synthesizer).
    Synthetic,
}

/// The retrain job's settings: schedule, training, promotion and triggers.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrainSettings {
    pub job: JobSettings,
    /// Training rows (RETRAIN_SOURCES, default `seed,ingested`; also `synthetic`).
    pub sources: Vec<TrainingSource>,
    /// Most rows taken from each warehouse source, the newest (RETRAIN_MAX_ROWS, default 200000).
    pub max_rows: usize,
    /// The search budget (RETRAIN_BUDGET_SECS, default 120).
    pub budget: Duration,
    /// Share of rows held out to judge candidate and champion on (RETRAIN_HOLDOUT_FRACTION, default 0.2).
    pub holdout_fraction: f64,
    /// ROC AUC the candidate must gain over the champion (RETRAIN_PROMOTION_MARGIN, default 0.005).
    pub promotion_margin: f64,
    /// A candidate that wins on held-out rows becomes challenger until it also wins on live labelled
    /// rows (RETRAIN_REQUIRE_LIVE_WIN, default false).
    pub require_live_win: bool,
    /// Live labelled rows both must have scored before that comparison (RETRAIN_LIVE_MIN_ROWS,
    /// default 1000).
    pub live_min_rows: usize,
    /// Trigger on dataset drift (RETRAIN_ON_DRIFT, default true).
    pub on_drift: bool,
    /// Trigger when a source's newest cohort ROC AUC of the champion is this far below that source's
    /// baseline, its first cohort with enough labels (RETRAIN_AUC_DROP, default 0.05; 0: off).
    pub auc_drop: f64,
    /// The cohorts that trigger compares, `day` or `week` (RETRAIN_AUC_COHORT, default `day`).
    pub auc_cohort: String,
    /// Synthetic traffic's cohorts may trigger a retrain too (RETRAIN_SYNTHETIC_TRIGGERS, default
    /// false: the generate loop measures the platform, not the business).
    pub synthetic_triggers: bool,
    /// Labelled predictions a cohort needs before it counts (RETRAIN_AUC_MIN_ROWS, default 500).
    pub auc_min_rows: usize,
    /// Trigger after this many newly labelled ingested rows (RETRAIN_NEW_LABELS, default 1000; 0: off).
    pub new_labels: u64,
    /// At most one triggered retrain per this period (RETRAIN_COOLDOWN, default 1d).
    pub cooldown: Duration,
}

impl RetrainSettings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let sources = match env.get("RETRAIN_SOURCES") {
            None => vec![TrainingSource::Seed, TrainingSource::Ingested],
            Some(raw) => {
                let mut sources = Vec::new();
                for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    let source = match part {
                        "seed" => TrainingSource::Seed,
                        "ingested" => TrainingSource::Ingested,
                        "synthetic" => TrainingSource::Synthetic,
                        _ => {
                            return Err(ConfigError::invalid(
                                "RETRAIN_SOURCES",
                                &raw,
                                format!(
                                    "{part:?} is not a source; use a comma-separated list of seed, ingested, synthetic"
                                ),
                            ));
                        }
                    };
                    if !sources.contains(&source) {
                        sources.push(source);
                    }
                }
                if sources.is_empty() {
                    return Err(ConfigError::invalid(
                        "RETRAIN_SOURCES",
                        &raw,
                        "name at least one of seed, ingested, synthetic",
                    ));
                }
                sources
            }
        };
        let holdout_fraction = env.number_in("RETRAIN_HOLDOUT_FRACTION", 0.2f64, 0.05..=0.5)?;
        Ok(Self {
            job: JobSettings::from_env(
                env,
                "RETRAIN",
                JobSettings {
                    schedule: JobSchedule::Cron("0 0 3 1 * *".to_owned()),
                    enabled: true,
                    timeout: Duration::from_secs(3600),
                    retries: 0,
                    retry_delay: Duration::from_secs(300),
                },
            )?,
            sources,
            max_rows: env.number_in("RETRAIN_MAX_ROWS", 200_000usize, 100..=10_000_000)?,
            budget: Duration::from_secs(env.number_in(
                "RETRAIN_BUDGET_SECS",
                120u64,
                1..=86_400,
            )?),
            holdout_fraction,
            promotion_margin: env.number_in("RETRAIN_PROMOTION_MARGIN", 0.005f64, 0.0..=1.0)?,
            require_live_win: env.flag("RETRAIN_REQUIRE_LIVE_WIN", false)?,
            live_min_rows: env.number_in("RETRAIN_LIVE_MIN_ROWS", 1000usize, 1..=100_000_000)?,
            on_drift: env.flag("RETRAIN_ON_DRIFT", true)?,
            auc_drop: env.number_in("RETRAIN_AUC_DROP", 0.05f64, 0.0..=1.0)?,
            auc_cohort: match env.get("RETRAIN_AUC_COHORT") {
                None => "day".to_owned(),
                Some(raw) => match raw.trim() {
                    c @ ("day" | "week") => c.to_owned(),
                    _ => {
                        return Err(ConfigError::invalid(
                            "RETRAIN_AUC_COHORT",
                            &raw,
                            "expected day or week",
                        ));
                    }
                },
            },
            synthetic_triggers: env.flag("RETRAIN_SYNTHETIC_TRIGGERS", false)?,
            auc_min_rows: env.number_in("RETRAIN_AUC_MIN_ROWS", 500usize, 1..=100_000_000)?,
            new_labels: env.number_in("RETRAIN_NEW_LABELS", 1000u64, 0..=1_000_000_000)?,
            cooldown: duration_or(env, "RETRAIN_COOLDOWN", Duration::from_secs(86_400))?,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn durations_take_a_number_and_a_unit() {
        assert_eq!(parse_duration("X", "90s").unwrap(), Duration::from_secs(90));
        assert_eq!(
            parse_duration("X", "15m").unwrap(),
            Duration::from_secs(900)
        );
        assert_eq!(
            parse_duration("X", "7d").unwrap(),
            Duration::from_secs(604_800)
        );
        for bad in ["", "h", "1", "1w", "0s", "-1h", "1.5h"] {
            let err = parse_duration("DRIFT_WINDOW", bad).unwrap_err().to_string();
            assert!(err.contains("DRIFT_WINDOW"), "{bad}: {err}");
        }
    }

    #[test]
    fn defaults_are_hourly_and_daily_metrics_hourly_drift_and_monthly_retraining() {
        let e = env(&[]);
        let metrics = MetricsSettings::from_env(&e).unwrap();
        assert_eq!(
            metrics
                .windows
                .iter()
                .map(|w| w.name.as_str())
                .collect::<Vec<_>>(),
            ["1h", "1d"]
        );
        assert_eq!(
            DriftSettings::from_env(&e).unwrap().window,
            Duration::from_secs(3600)
        );
        let retrain = RetrainSettings::from_env(&e).unwrap();
        assert_eq!(
            retrain.job.schedule,
            JobSchedule::Cron("0 0 3 1 * *".into())
        );
        assert_eq!(
            retrain.sources,
            [TrainingSource::Seed, TrainingSource::Ingested]
        );
    }

    #[test]
    fn invalid_settings_name_their_variable() {
        let cases: [(&str, &str); 9] = [
            ("LABEL_MATURITY_DAYS", "-1"),
            ("LABEL_MATURITY_DAYS", "3651"),
            ("RETRAIN_AUC_COHORT", "month"),
            ("METRICS_WINDOWS", "1h,1h"),
            ("METRICS_WINDOWS", "hourly"),
            ("DRIFT_SHARE", "0"),
            ("DRIFT_MAX_ROWS", "10"),
            ("RETRAIN_SOURCES", "seed,crm"),
            ("RETRAIN_COOLDOWN", "soon"),
        ];
        for (name, value) in cases {
            let e = env(&[(name, value)]);
            let err = MetricsSettings::from_env(&e)
                .err()
                .or_else(|| DriftSettings::from_env(&e).err())
                .or_else(|| RetrainSettings::from_env(&e).err())
                .unwrap_or_else(|| panic!("{name}={value} was accepted"));
            assert!(err.to_string().contains(name), "{err}");
        }
    }
}
