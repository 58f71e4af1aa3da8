//! Each service's own settings on top of the shared ones.

use std::path::PathBuf;
use std::time::Duration;

use crate::common::{CLASSIFIER_PORT, MIN_TOKEN_LEN, SCHEDULER_PORT, SYNTHESIZER_PORT};
use crate::{ConfigError, DatabaseUrl, Env, Secret, ServiceConfig};

/// PREDICT_MAX_BATCH's default: the most customers in one `POST /predict/batch`.
pub const DEFAULT_PREDICT_MAX_BATCH: usize = 1000;
/// GENERATE_BATCH_SIZE's default: customers per generate batch.
pub const DEFAULT_GENERATE_BATCH_SIZE: usize = 1000;
/// GENERATE_RATE's default: customers per second in continuous mode (the one default; the generate job's
/// own `Default` uses it too).
pub const DEFAULT_GENERATE_RATE: f64 = 100.0;

/// PREDICT_MAX_BATCH, read the same way by the classifier (which enforces it) and the scheduler (whose
/// generate batches must fit in it).
fn predict_max_batch(env: &Env) -> Result<usize, ConfigError> {
    env.number_in("PREDICT_MAX_BATCH", DEFAULT_PREDICT_MAX_BATCH, 1..=100_000)
}

/// The classifier's settings.
#[derive(Debug, Clone)]
pub struct ClassifierConfig {
    pub service: ServiceConfig,
    /// What to serve (CLASSIFIER_MODEL): a registry reference or a model file; `None` means the
    /// registry's champion. The service parses it and names the variable when it does not parse.
    pub model: Option<String>,
    /// Largest number of customers in one `POST /predict/batch` (PREDICT_MAX_BATCH, default 1000).
    pub max_batch: usize,
    /// When set, `/predict` routes need this key in `X-API-Key` (PREDICT_API_KEY).
    pub api_key: Option<Secret>,
    /// Every key the prediction routes take, each with the name its calls are logged under:
    /// PREDICT_API_KEY as `default`, then PREDICT_API_KEYS (`name:key,…`). Empty: no key needed.
    pub api_keys: Vec<crate::NamedKey>,
    /// What the inference log keeps and how its writer batches (INFERENCE_LOG*).
    pub inference_log: crate::InferenceLogConfig,
    /// Most outcomes in one `POST /feedback` (FEEDBACK_MAX_BATCH, default 1000).
    pub feedback_max_batch: usize,
    /// How often the champion is polled in case a NOTIFY was missed (MODEL_POLL_SECS, default 5).
    pub poll: Duration,
    /// The shadow model scored beside the champion on `POST /predict/batch?shadow=true`
    /// (CLASSIFIER_SHADOW_MODEL): a registry reference; `None` means the registry's challenger, and
    /// `off` turns shadow scoring off. The service parses it and names the variable when it does not.
    pub shadow_model: Option<String>,
}

impl ClassifierConfig {
    pub const PORT_VAR: &'static str = "CLASSIFIER_PORT";

    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            service: ServiceConfig::from_env(env, Self::PORT_VAR, CLASSIFIER_PORT)?,
            model: env.get("CLASSIFIER_MODEL").map(|m| m.trim().to_owned()),
            max_batch: predict_max_batch(env)?,
            api_key: env.secret("PREDICT_API_KEY", MIN_TOKEN_LEN)?,
            api_keys: crate::prediction_keys(env)?,
            inference_log: crate::InferenceLogConfig::from_env(env)?,
            feedback_max_batch: env.number_in("FEEDBACK_MAX_BATCH", 1000, 1..=100_000)?,
            poll: Duration::from_secs(env.number_in("MODEL_POLL_SECS", 5u64, 1..=3600)?),
            shadow_model: env
                .get("CLASSIFIER_SHADOW_MODEL")
                .map(|m| m.trim().to_owned()),
        })
    }
}

/// The synthesizer's settings.
#[derive(Debug, Clone)]
pub struct SynthesizerConfig {
    pub service: ServiceConfig,
    /// Largest `n` one request may ask for (SYNTHESIZE_MAX_ROWS, default 1,000,000).
    pub max_rows: u64,
    /// The seed data used when the registry has no synthesizer yet (CHURN_SEED_DATA).
    pub seed_data: PathBuf,
    /// Most streamed (large-`n`) answers at once; more get 503 (SYNTHESIZE_MAX_STREAMS, default 2).
    pub max_streams: usize,
    /// Longest a streamed answer may take in all (SYNTHESIZE_STREAM_TIMEOUT_SECS, default 300).
    pub stream_timeout: Duration,
    /// Longest one chunk of a stream may wait for the client to read (SYNTHESIZE_SEND_TIMEOUT_SECS,
    /// default 10): a client that stops reading is cut off.
    pub send_timeout: Duration,
}

impl SynthesizerConfig {
    pub const PORT_VAR: &'static str = "SYNTHESIZER_PORT";

    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            service: ServiceConfig::from_env(env, Self::PORT_VAR, SYNTHESIZER_PORT)?,
            max_rows: env.number_in("SYNTHESIZE_MAX_ROWS", 1_000_000u64, 1..=100_000_000)?,
            seed_data: crate::seed::seed_data_path(env),
            max_streams: env.number_in("SYNTHESIZE_MAX_STREAMS", 2usize, 1..=1024)?,
            stream_timeout: Duration::from_secs(env.number_in(
                "SYNTHESIZE_STREAM_TIMEOUT_SECS",
                300u64,
                1..=86_400,
            )?),
            send_timeout: Duration::from_secs(env.number_in(
                "SYNTHESIZE_SEND_TIMEOUT_SECS",
                10u64,
                1..=3600,
            )?),
        })
    }
}

/// When a job runs on its own, as written in `<JOB>_SCHEDULE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobSchedule {
    /// A cron expression with seconds: `sec min hour day-of-month month day-of-week` (UTC).
    Cron(String),
    /// `continuous`: run after run.
    Continuous,
    /// `manual`: only when triggered.
    Manual,
}

/// One job's runner settings: `<JOB>_SCHEDULE`, `<JOB>_ENABLED`, `<JOB>_TIMEOUT_SECS`, `<JOB>_RETRIES`,
/// `<JOB>_RETRY_DELAY_SECS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSettings {
    pub schedule: JobSchedule,
    pub enabled: bool,
    pub timeout: Duration,
    pub retries: u32,
    pub retry_delay: Duration,
}

impl JobSettings {
    /// Reads a job's settings under `prefix` (e.g. `GENERATE`), with the job's own defaults.
    pub fn from_env(env: &Env, prefix: &str, defaults: JobSettings) -> Result<Self, ConfigError> {
        let var = |suffix: &str| format!("{prefix}_{suffix}");
        let schedule = match env.get(&var("SCHEDULE")) {
            None => defaults.schedule,
            Some(raw) => parse_schedule(&var("SCHEDULE"), &raw)?,
        };
        Ok(Self {
            schedule,
            enabled: env.flag(&var("ENABLED"), defaults.enabled)?,
            timeout: Duration::from_secs(env.number_in(
                &var("TIMEOUT_SECS"),
                defaults.timeout.as_secs(),
                1..=7 * 86_400,
            )?),
            retries: env.number_in(&var("RETRIES"), defaults.retries, 0..=100)?,
            retry_delay: Duration::from_secs(env.number_in(
                &var("RETRY_DELAY_SECS"),
                defaults.retry_delay.as_secs(),
                0..=86_400,
            )?),
        })
    }
}

/// `continuous`, `manual`, or a 6-field cron expression (seconds first).
fn parse_schedule(name: &str, raw: &str) -> Result<JobSchedule, ConfigError> {
    let raw = raw.trim();
    match raw.to_ascii_lowercase().as_str() {
        "continuous" => return Ok(JobSchedule::Continuous),
        "manual" => return Ok(JobSchedule::Manual),
        _ => {}
    }
    let fields = raw.split_whitespace().count();
    if fields != 6 {
        return Err(ConfigError::invalid(
            name,
            raw,
            format!(
                "expected `continuous`, `manual` or a cron expression with 6 fields (seconds first, \
                 e.g. \"0 */5 * * * *\" for every five minutes); this one has {fields}"
            ),
        ));
    }
    Ok(JobSchedule::Cron(raw.to_owned()))
}

/// The generate job's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateSettings {
    pub job: JobSettings,
    /// Customers per batch (GENERATE_BATCH_SIZE, default 1000).
    pub batch_size: usize,
    /// Continuous mode: customers per second, 0 = as fast as the pipeline goes (GENERATE_RATE, default 100).
    pub rate: f64,
    /// Cron mode: customers per run (GENERATE_CUSTOMERS_PER_RUN, default 1000).
    pub customers_per_run: u64,
    /// Continuous mode: length of one run record (GENERATE_RUN_SECS, default 60).
    pub run_length: Duration,
    /// Batches scored ahead of the writer (GENERATE_IN_FLIGHT, default 2).
    pub in_flight: usize,
    /// Store the challenger's shadow predictions beside the champion's (GENERATE_SHADOW, default true).
    pub shadow: bool,
}

impl GenerateSettings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            job: JobSettings::from_env(
                env,
                "GENERATE",
                JobSettings {
                    schedule: JobSchedule::Continuous,
                    enabled: true,
                    timeout: Duration::from_secs(600),
                    retries: 0,
                    retry_delay: Duration::from_secs(5),
                },
            )?,
            batch_size: env.number_in(
                "GENERATE_BATCH_SIZE",
                DEFAULT_GENERATE_BATCH_SIZE,
                1..=10_000,
            )?,
            rate: env.number_in("GENERATE_RATE", DEFAULT_GENERATE_RATE, 0.0..=1_000_000.0)?,
            customers_per_run: env.number_in(
                "GENERATE_CUSTOMERS_PER_RUN",
                1000u64,
                1..=100_000_000,
            )?,
            run_length: Duration::from_secs(env.number_in(
                "GENERATE_RUN_SECS",
                60u64,
                1..=86_400,
            )?),
            in_flight: env.number_in("GENERATE_IN_FLIGHT", 2usize, 1..=16)?,
            shadow: env.flag("GENERATE_SHADOW", true)?,
        })
    }
}

/// The dbt job's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct DbtSettings {
    pub job: JobSettings,
    /// The dbt project (DBT_PROJECT_DIR, default `dbt`, relative to the working directory).
    pub project_dir: PathBuf,
    /// Where profiles.yml is (DBT_PROFILES_DIR, default the project).
    pub profiles_dir: Option<PathBuf>,
    /// The dbt executable (DBT_EXECUTABLE, default `dbt` on PATH; `scripts/venv --dbt` builds one).
    pub executable: PathBuf,
    /// Where dbt writes its artifacts and the docs site (DBT_TARGET_DIR, default `var/dbt-target`).
    pub target_dir: PathBuf,
    /// dbt's threads (DBT_THREADS, default 2).
    pub threads: u32,
    /// Whether each run also generates the docs site served at `/dbt/docs/` (DBT_DOCS, default true).
    pub docs: bool,
    /// The connection dbt builds over, as its own role churn_dbt, owner of the marts
    /// (DBT_DATABASE_URL; default the scheduler's DATABASE_URL, for a local run with one identity).
    pub database_url: Option<DatabaseUrl>,
}

impl DbtSettings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            job: JobSettings::from_env(
                env,
                "DBT",
                JobSettings {
                    schedule: JobSchedule::Cron("0 */10 * * * *".to_owned()),
                    enabled: true,
                    timeout: Duration::from_secs(1800),
                    retries: 1,
                    retry_delay: Duration::from_secs(60),
                },
            )?,
            project_dir: env
                .get("DBT_PROJECT_DIR")
                .map_or_else(|| PathBuf::from("dbt"), PathBuf::from),
            profiles_dir: env.get("DBT_PROFILES_DIR").map(PathBuf::from),
            executable: env
                .get("DBT_EXECUTABLE")
                .map_or_else(|| PathBuf::from("dbt"), PathBuf::from),
            target_dir: env
                .get("DBT_TARGET_DIR")
                .map_or_else(|| PathBuf::from("var/dbt-target"), PathBuf::from),
            threads: env.number_in("DBT_THREADS", 2u32, 1..=64)?,
            docs: env.flag("DBT_DOCS", true)?,
            database_url: env
                .get("DBT_DATABASE_URL")
                .map(|raw| {
                    DatabaseUrl::parse(&raw)
                        .map_err(|e| ConfigError::invalid("DBT_DATABASE_URL", "<hidden>", e))
                })
                .transpose()?,
        })
    }
}

/// The ingestion of landed files (issue 16): the `ingest` polling job, the bucket-notification webhook,
/// and the `score` job.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestSettings {
    /// The `ingest` job lists `landing/` and ingests what it finds, for stores without notifications
    /// (INGEST_SCHEDULE, default every minute; INGEST_ENABLED, …).
    pub job: JobSettings,
    /// Rows per statement batch, a savepoint in the file's one transaction (INGEST_BATCH_ROWS, default
    /// 10000).
    pub batch_rows: usize,
    /// The longest line and record a file may have, in bytes (INGEST_MAX_LINE_BYTES,
    /// INGEST_MAX_RECORD_BYTES, default 1 MiB each).
    pub max_line_bytes: u64,
    pub max_record_bytes: u64,
    /// What a gzip file may inflate to, in bytes and per compressed byte (INGEST_MAX_INFLATED_BYTES,
    /// default 16 GiB; INGEST_MAX_INFLATION_RATIO, default 100).
    pub max_inflated_bytes: u64,
    pub max_inflation_ratio: u64,
    /// The most columns a header may have (INGEST_MAX_COLUMNS, default 1000).
    pub max_columns: usize,
    /// Files read at once by the webhook, `POST /ingest` and the ingest and score jobs together
    /// (INGEST_WORKERS, default 2), each on one connection of the pool.
    pub workers: usize,
    /// Files the webhook queues for the workers (INGEST_QUEUE, default 64); the rest of a storm of
    /// events is left in place for the polling jobs.
    pub queue: usize,
    /// The shared secret MinIO's webhook sends in `Authorization` to `POST /events/s3`
    /// (S3_EVENT_SECRET, at least 16 characters; the route refuses every call when unset).
    pub event_secret: Option<Secret>,
    /// `POST /ingest` of a file larger than this answers 202 at once and ingests it in the background
    /// (INGEST_ASYNC_BYTES, default 8 MiB; 0: always in the background).
    pub async_bytes: u64,
    /// The `score` job scores files under `score/` through the classifier (SCORE_SCHEDULE, default every
    /// minute; SCORE_ENABLED, …).
    pub score_job: JobSettings,
}

impl IngestSettings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let every_minute = |timeout: u64| JobSettings {
            schedule: JobSchedule::Cron("0 * * * * *".to_owned()),
            enabled: true,
            timeout: Duration::from_secs(timeout),
            retries: 1,
            retry_delay: Duration::from_secs(10),
        };
        Ok(Self {
            job: JobSettings::from_env(env, "INGEST", every_minute(3600))?,
            batch_rows: env.number_in("INGEST_BATCH_ROWS", 10_000usize, 1..=1_000_000)?,
            max_line_bytes: env.number_in("INGEST_MAX_LINE_BYTES", 1u64 << 20, 1024..=(1 << 30))?,
            max_record_bytes: env.number_in(
                "INGEST_MAX_RECORD_BYTES",
                1u64 << 20,
                1024..=(1 << 30),
            )?,
            max_inflated_bytes: env.number_in(
                "INGEST_MAX_INFLATED_BYTES",
                16u64 << 30,
                1 << 20..=(1 << 50),
            )?,
            max_inflation_ratio: env.number_in(
                "INGEST_MAX_INFLATION_RATIO",
                100u64,
                2..=100_000,
            )?,
            max_columns: env.number_in("INGEST_MAX_COLUMNS", 1_000usize, 33..=100_000)?,
            workers: env.number_in("INGEST_WORKERS", 2usize, 1..=64)?,
            queue: env.number_in("INGEST_QUEUE", 64usize, 0..=100_000)?,
            event_secret: env.secret("S3_EVENT_SECRET", MIN_TOKEN_LEN)?,
            async_bytes: env.number_in("INGEST_ASYNC_BYTES", 8u64 << 20, 0..=(1 << 40))?,
            score_job: JobSettings::from_env(env, "SCORE", every_minute(3600))?,
        })
    }
}

/// The scheduler's settings.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    pub service: ServiceConfig,
    /// The seed data the first champion is trained on when there is none (CHURN_SEED_DATA).
    pub seed_data: PathBuf,
    /// The search budget of that first training (BOOTSTRAP_TRAIN_BUDGET_SECS, default 30; 0 = do not
    /// train a first champion).
    pub bootstrap_budget: Duration,
    /// The key the classifier needs, when it has one (PREDICT_API_KEY).
    pub predict_api_key: Option<Secret>,
    pub generate: GenerateSettings,
    pub dbt: DbtSettings,
    pub metrics: crate::MetricsSettings,
    pub drift: crate::DriftSettings,
    pub retrain: crate::RetrainSettings,
    pub ingest: IngestSettings,
    /// This replica's name in run records (HOSTNAME, which compose and Kubernetes set; default
    /// `scheduler-<pid>`).
    pub replica: String,
}

impl SchedulerConfig {
    pub const PORT_VAR: &'static str = "SCHEDULER_PORT";

    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let generate = GenerateSettings::from_env(env)?;
        // A generate batch is one POST /predict/batch: a larger one would fail every time, at run time.
        let max_batch = predict_max_batch(env)?;
        if generate.batch_size > max_batch {
            return Err(ConfigError::invalid(
                "GENERATE_BATCH_SIZE",
                &generate.batch_size.to_string(),
                format!(
                    "it must be at most PREDICT_MAX_BATCH ({max_batch}): each batch is one \
                     POST /predict/batch; lower GENERATE_BATCH_SIZE or raise PREDICT_MAX_BATCH"
                ),
            ));
        }
        let service = ServiceConfig::from_env(env, Self::PORT_VAR, SCHEDULER_PORT)?;
        let ingest = IngestSettings::from_env(env)?;
        // Each file worker holds a pooled connection while it reads: the jobs and the API need the rest.
        let pool = service.common.database.max_connections as usize;
        if ingest.workers >= pool {
            return Err(ConfigError::invalid(
                "INGEST_WORKERS",
                &ingest.workers.to_string(),
                format!(
                    "it must be below DATABASE_MAX_CONNECTIONS ({pool}): each worker holds one pooled \
                     connection while it reads a file; lower INGEST_WORKERS or raise \
                     DATABASE_MAX_CONNECTIONS"
                ),
            ));
        }
        Ok(Self {
            service,
            seed_data: crate::seed::seed_data_path(env),
            bootstrap_budget: Duration::from_secs(env.number_in(
                "BOOTSTRAP_TRAIN_BUDGET_SECS",
                30u64,
                0..=86_400,
            )?),
            predict_api_key: env.secret("PREDICT_API_KEY", MIN_TOKEN_LEN)?,
            generate,
            dbt: DbtSettings::from_env(env)?,
            metrics: crate::MetricsSettings::from_env(env)?,
            drift: crate::DriftSettings::from_env(env)?,
            retrain: crate::RetrainSettings::from_env(env)?,
            ingest,
            replica: env
                .get("HOSTNAME")
                .unwrap_or_else(|| format!("scheduler-{}", std::process::id())),
        })
    }
}
