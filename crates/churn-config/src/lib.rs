//! Typed configuration from environment variables, shared by the services, `churnctl` and the tests.
//!
//! Every variable is documented in `sample.env` and the README. A bad value is an error naming the
//! variable, its value and the rule; secrets ([`Secret`], [`DatabaseUrl`]) never print. Code reads through
//! an [`Env`], so tests pass a map instead of mutating the process environment. Library crates never read
//! the environment themselves: they take these types.

pub mod common;
pub mod env;
pub mod monitoring;
pub mod objects;
pub mod secret;
pub mod seed;
pub mod services;
pub mod serving;

pub use common::{
    CLASSIFIER_PORT, CommonConfig, DATABASE_ROLES, DEFAULT_DATABASE_URL, DatabaseConfig,
    DatabaseRole, Limits, LogFormat, MIN_DB_PASSWORD_LEN, MIN_TOKEN_LEN, ObjectStoreConfig,
    RolePassword, SCHEDULER_PORT, SYNTHESIZER_PORT, ServiceConfig, ServiceUrl,
};
pub use env::{ConfigError, Env};
pub use monitoring::{
    DriftSettings, MetricsSettings, RetrainSettings, TrainingSource, WindowSetting, parse_duration,
};
pub use objects::{ObjectStoreUrl, S3Options};
pub use secret::{DatabaseUrl, Secret};
pub use seed::{SEED_DATA_ENV, seed_data_path};
pub use services::{
    ClassifierConfig, DEFAULT_GENERATE_BATCH_SIZE, DEFAULT_GENERATE_RATE,
    DEFAULT_PREDICT_MAX_BATCH, DbtSettings, GenerateSettings, IngestSettings, JobSchedule,
    JobSettings, SchedulerConfig, SynthesizerConfig,
};
pub use serving::{
    DEFAULT_KEY_NAME, InferenceLogConfig, InferenceLogMode, NamedKey, prediction_keys,
};

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn sample_env() -> Env {
        Env::from_pairs(
            include_str!("../../../sample.env")
                .lines()
                .filter(|line| !line.trim_start().starts_with('#'))
                .filter_map(|line| line.split_once('=')),
        )
    }

    #[test]
    fn defaults_suit_a_local_run() {
        let config = CommonConfig::from_env(&Env::from_pairs::<&str, &str>([])).expect("defaults");
        assert_eq!(config.bind_address.to_string(), "127.0.0.1");
        assert_eq!(config.classifier_url.to_string(), "http://127.0.0.1:8000");
        assert_eq!(config.database.url.expose(), DEFAULT_DATABASE_URL);
        assert!(matches!(config.objects.url, ObjectStoreUrl::File { .. }));
        assert_eq!(config.admin_token, None);
    }

    #[test]
    fn sample_env_as_written_is_a_valid_configuration_for_every_service() {
        let env = sample_env();
        let config = CommonConfig::from_env(&env).expect("sample.env parses");
        // Empty means the default: one worker per core.
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        assert_eq!(config.worker_threads, cores);
        assert_eq!(config.limits, Limits::default());
        ClassifierConfig::from_env(&env).expect("classifier");
        SynthesizerConfig::from_env(&env).expect("synthesizer");
        SchedulerConfig::from_env(&env).expect("scheduler");
    }

    #[test]
    fn an_invalid_variable_is_named_in_the_error() {
        for (name, value) in [
            ("DATABASE_URL", "mysql://root@db/churn"),
            ("OBJECT_STORE_URL", "ftp://x"),
            ("BIND_ADDRESS", "localhost:80"),
            ("LOG_FORMAT", "xml"),
            ("CLASSIFIER_URL", "classifier"),
            ("ADMIN_TOKEN", "short"),
            ("AWS_ALLOW_HTTP", "maybe"),
            ("DATABASE_MAX_CONNECTIONS", "-3"),
            ("DATABASE_MAX_CONNECTIONS", "0"),
            ("DATABASE_WAIT_SECS", "99999999999999999999999"),
            ("MAX_BODY_BYTES", "10"),
            ("REQUEST_TIMEOUT_SECS", "0"),
            ("HEADER_READ_TIMEOUT_SECS", "0"),
            ("KEEPALIVE_IDLE_SECS", "never"),
            ("MAX_CONNECTIONS", "0"),
            ("MAX_CONCURRENT_REQUESTS", "-1"),
            ("SHUTDOWN_GRACE_SECS", "0"),
            ("TOKIO_WORKER_THREADS", "0"),
            ("TOKIO_WORKER_THREADS", "many"),
        ] {
            let err = CommonConfig::from_env(&Env::from_pairs([(name, value)]))
                .expect_err(name)
                .to_string();
            assert!(err.starts_with(name), "{err}");
        }
        for (name, value) in [
            ("PREDICT_MAX_BATCH", "0"),
            ("PREDICT_API_KEY", "short"),
            ("MODEL_POLL_SECS", "0"),
        ] {
            let err = ClassifierConfig::from_env(&Env::from_pairs([(name, value)]))
                .expect_err(name)
                .to_string();
            assert!(err.starts_with(name), "{err}");
        }
        for (name, value) in [
            ("GENERATE_SCHEDULE", "*/5 * * * *"),
            ("GENERATE_BATCH_SIZE", "0"),
            ("GENERATE_RATE", "-1"),
            ("GENERATE_ENABLED", "sometimes"),
            ("GENERATE_TIMEOUT_SECS", "0"),
            ("GENERATE_RETRIES", "1000"),
            ("BOOTSTRAP_TRAIN_BUDGET_SECS", "x"),
        ] {
            let err = SchedulerConfig::from_env(&Env::from_pairs([(name, value)]))
                .expect_err(name)
                .to_string();
            assert!(err.starts_with(name), "{err}");
        }
        let err = SynthesizerConfig::from_env(&Env::from_pairs([("SYNTHESIZE_MAX_ROWS", "0")]))
            .expect_err("0 rows")
            .to_string();
        assert!(err.starts_with("SYNTHESIZE_MAX_ROWS"), "{err}");
    }

    #[test]
    fn a_generate_batch_larger_than_the_classifiers_batch_limit_is_refused_naming_both() {
        let err = SchedulerConfig::from_env(&Env::from_pairs([
            ("GENERATE_BATCH_SIZE", "500"),
            ("PREDICT_MAX_BATCH", "200"),
        ]))
        .expect_err("500 > 200")
        .to_string();
        assert!(err.starts_with("GENERATE_BATCH_SIZE"), "{err}");
        assert!(err.contains("PREDICT_MAX_BATCH (200)"), "{err}");
        let env = Env::from_pairs([("GENERATE_BATCH_SIZE", "200"), ("PREDICT_MAX_BATCH", "200")]);
        assert_eq!(
            SchedulerConfig::from_env(&env)
                .expect("equal fits")
                .generate
                .batch_size,
            200
        );
        let defaults =
            SchedulerConfig::from_env(&Env::from_pairs::<&str, &str>([])).expect("defaults");
        assert_eq!(defaults.generate.rate, DEFAULT_GENERATE_RATE);
    }

    #[test]
    fn a_secret_never_appears_in_an_error() {
        for name in ["ADMIN_TOKEN", "PREDICT_API_KEY"] {
            let err = ClassifierConfig::from_env(&Env::from_pairs([(name, "tooshort")]))
                .expect_err(name)
                .to_string();
            assert!(!err.contains("tooshort"), "{err}");
        }
        let err = CommonConfig::from_env(&Env::from_pairs([(
            "DATABASE_URL",
            "mysql://root:pa55word@db/churn",
        )]))
        .expect_err("wrong scheme")
        .to_string();
        assert!(!err.contains("pa55word"), "{err}");
    }

    #[test]
    fn no_config_struct_prints_a_secret_in_its_debug_output() {
        const SECRETS: [&str; 6] = [
            "admin-token-0123456789abcdef",
            "predict-key-0123456789abcdef",
            "db-password-0123456789",
            "s3-secret-key-0123456789",
            "read-token-0123456789abcdef",
            "registry-token-0123456789abcdef",
        ];
        let env = Env::from_pairs([
            ("ADMIN_TOKEN", SECRETS[0]),
            ("READ_TOKEN", SECRETS[4]),
            ("REGISTRY_TOKEN", SECRETS[5]),
            ("PREDICT_API_KEY", SECRETS[1]),
            (
                "DATABASE_URL",
                "postgres://churn:db-password-0123456789@db:5432/churn",
            ),
            ("OBJECT_STORE_URL", "s3://churn"),
            ("AWS_ACCESS_KEY_ID", "churn"),
            ("AWS_SECRET_ACCESS_KEY", SECRETS[3]),
        ]);
        let classifier = ClassifierConfig::from_env(&env).unwrap();
        let printed = [
            format!("{classifier:?}"),
            format!("{:?}", SynthesizerConfig::from_env(&env).unwrap()),
            format!("{:?}", SchedulerConfig::from_env(&env).unwrap()),
            format!("{:?}", CommonConfig::from_env(&env).unwrap()),
            format!("{:?}", DatabaseConfig::from_env(&env).unwrap()),
            format!("{:?}", ObjectStoreConfig::from_env(&env).unwrap()),
            format!("{:?}", S3Options::from_env(&env).unwrap()),
            format!("{:#?}", classifier.service),
        ];
        for text in &printed {
            for secret in SECRETS {
                assert!(!text.contains(secret), "{secret} printed in {text}");
            }
            assert!(text.contains("[redacted]"), "{text}");
        }
        // The secrets are still there for the code that needs them.
        assert_eq!(
            classifier.service.common.admin_token.unwrap().expose(),
            SECRETS[0]
        );
        assert_eq!(classifier.api_key.unwrap().expose(), SECRETS[1]);
    }

    #[test]
    fn scoped_tokens_need_the_admin_tokens_length_and_a_value_of_their_own() {
        let admin = "admin-token-0123456789abcdef";
        for name in ["READ_TOKEN", "REGISTRY_TOKEN"] {
            let err = CommonConfig::from_env(&Env::from_pairs([(name, "short")]))
                .expect_err("a short token")
                .to_string();
            assert!(err.contains(name) && err.contains("at least 16"), "{err}");
            assert!(!err.contains("short"), "{err}");
            let err =
                CommonConfig::from_env(&Env::from_pairs([("ADMIN_TOKEN", admin), (name, admin)]))
                    .expect_err("a token equal to ADMIN_TOKEN")
                    .to_string();
            assert!(
                err.contains(name) && err.contains("must differ from ADMIN_TOKEN"),
                "{err}"
            );
            assert!(!err.contains(admin), "{err}");
        }
        let config = CommonConfig::from_env(&Env::from_pairs([
            ("ADMIN_TOKEN", admin),
            ("READ_TOKEN", "read-token-0123456789abcdef"),
        ]))
        .expect("distinct tokens");
        assert_eq!(
            config.read_token.map(|t| t.expose().to_owned()).as_deref(),
            Some("read-token-0123456789abcdef")
        );
        assert_eq!(config.registry_token, None);
    }

    #[test]
    fn s3_settings_come_from_the_standard_aws_variables() {
        let env = Env::from_pairs([
            ("OBJECT_STORE_URL", "s3://models/prod"),
            ("AWS_ENDPOINT_URL", "http://minio:9000"),
            ("AWS_ACCESS_KEY_ID", "key"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_ALLOW_HTTP", "true"),
        ]);
        let config = CommonConfig::from_env(&env).expect("valid");
        assert_eq!(
            config.objects.s3.endpoint.as_deref(),
            Some("http://minio:9000")
        );
        assert!(config.objects.s3.allow_http);
        assert_eq!(config.objects.url.to_string(), "s3://models/prod");
    }

    #[test]
    fn the_seed_path_comes_from_the_variable_or_an_ancestors_shared_folder() {
        let set = seed_data_path(&Env::from_pairs([(SEED_DATA_ENV, "/data/telco.csv")]));
        assert_eq!(set, std::path::PathBuf::from("/data/telco.csv"));
        let found = seed_data_path(&Env::from_pairs::<&str, &str>([]));
        assert!(
            found.ends_with("shared/data/telco_customer_churn.csv"),
            "{}",
            found.display()
        );
    }
}
