//! A warehouse to run dbt against: a fresh database with seed customers, their predictions, a registry,
//! monitoring rows and a scheduler job run, and a runner writing into a temporary target directory.

use std::path::PathBuf;

use churn_core::{Category, Customer};
use churn_dbt::{Dbt, DbtParams};
use churn_testkit::TestDb;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The dbt executable: `CHURN_DBT`. The tests need a real dbt and fail loudly without one.
pub fn dbt_executable() -> PathBuf {
    match std::env::var_os("CHURN_DBT") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => panic!(
            "CHURN_DBT is not set: these tests run the real dbt. Point it at the dbt executable, e.g. \
             CHURN_DBT=$(scripts/venv --dbt)/bin/dbt cargo test -p churn-dbt (scripts/test sets it)"
        ),
    }
}

/// The repository's dbt project.
pub fn project_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../dbt")
}

/// The model version whose predictions fill the warehouse, with its registered threshold.
pub const CHAMPION: i32 = 2;
pub const CHAMPION_THRESHOLD: f64 = 0.4;
/// The previous champion: it predicted for the first customers only.
pub const FORMER: i32 = 1;
pub const FORMER_THRESHOLD: f64 = 0.45;
pub const FORMER_PREDICTIONS: usize = 500;
/// How many of a new warehouse's customers come from the seed file (the rest are synthetic).
pub const SEEDED: usize = 100;

/// A migrated database with data, and a dbt runner for it.
pub struct Warehouse {
    pub db: TestDb,
    pub dbt: Dbt,
    pub job_run_id: Uuid,
    pub cancel: CancellationToken,
    seed: Vec<Customer>,
    next_seed_row: usize,
    _target: tempfile::TempDir,
}

impl std::fmt::Debug for Warehouse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Warehouse")
            .field("db", &self.db.name)
            .finish()
    }
}

impl Warehouse {
    /// `customers` customers (the seed file's rows: 100 as seed customers, the rest as synthetic ones),
    /// each predicted by the champion (500 by the former champion too), a registry with both versions
    /// and a synthesizer, and monitoring rows.
    pub async fn new(customers: usize, params: impl FnOnce(DbtParams) -> DbtParams) -> Warehouse {
        let db = TestDb::new().await;
        let target = tempfile::tempdir().expect("target directory");
        let params = params(
            DbtParams::new(project_dir())
                .executable(dbt_executable())
                .target_dir(target.path())
                .threads(4)
                .generate_docs(false),
        )
        .check()
        .expect("valid dbt params");
        let dbt = Dbt::new(params, &db.url).expect("database URL");
        let seed = churn_core::read_customers(&churn_testkit::seed_data_path())
            .expect("seed data readable (CHURN_SEED_DATA)");
        let mut warehouse = Warehouse {
            db,
            dbt,
            job_run_id: Uuid::new_v4(),
            cancel: CancellationToken::new(),
            seed,
            next_seed_row: 0,
            _target: target,
        };
        warehouse.load_registry().await;
        // a few customers from the seed file itself, the rest synthetic, as a running platform has them
        let seeded = customers.min(SEEDED);
        let mut ids = warehouse.add_customers(seeded, "seed").await;
        ids.extend(
            warehouse
                .add_customers(customers - seeded, "synthetic")
                .await,
        );
        warehouse.classify(&ids, CHAMPION, CHAMPION_THRESHOLD).await;
        let former: Vec<Uuid> = ids.iter().copied().take(FORMER_PREDICTIONS).collect();
        warehouse.classify(&former, FORMER, FORMER_THRESHOLD).await;
        warehouse
    }

    pub fn pool(&self) -> &PgPool {
        &self.db.pool
    }

    /// Registry, monitoring and ops rows: churn-classifier v1 (champion, then beaten) and v2 (champion),
    /// a synthesizer v1, metrics and drift for v2, and the scheduler's dbt job run.
    async fn load_registry(&self) {
        sqlx::raw_sql(
            "insert into registry.registered_models (name) values ('churn-classifier'), ('synthesizer');
             insert into registry.runs (run_id, experiment, status, ended_at, code_version)
             values ('00000000-0000-0000-0000-000000000001', 'churn-classifier', 'finished', now(), 'test'),
                    ('00000000-0000-0000-0000-000000000002', 'churn-classifier', 'finished', now(), 'test');
             insert into registry.run_params (run_id, key, value)
             values ('00000000-0000-0000-0000-000000000001', 'family', 'logistic_regression'),
                    ('00000000-0000-0000-0000-000000000002', 'family', 'gbdt');
             insert into registry.model_versions (model_name, version, run_id, artifact_key, artifact_sha256,
                                                  artifact_size, flavor, metrics, parent_version, created_at)
             values ('churn-classifier', 1, '00000000-0000-0000-0000-000000000001', 'models/churn-classifier/1/a',
                     repeat('a', 64), 10, 'churn-automl/model', '{\"threshold\": 0.45, \"test_roc_auc\": 0.83}',
                     null, now() - interval '30 days'),
                    ('churn-classifier', 2, '00000000-0000-0000-0000-000000000002', 'models/churn-classifier/2/b',
                     repeat('b', 64), 10, 'churn-automl/model', '{\"threshold\": 0.4, \"test_roc_auc\": 0.86}',
                     1, now() - interval '10 days'),
                    ('synthesizer', 1, null, 'models/synthesizer/1/c', repeat('c', 64), 10,
                     'churn-synth/gaussian-copula', '{}', null, now() - interval '40 days');
             insert into registry.promotion_decisions (model_name, candidate_version, champion_version, metric,
                 candidate_score, champion_score, margin, promoted, reason, decided_at)
             values ('churn-classifier', 1, null, 'roc_auc', 0.83, null, 0.005, true, 'there was no champion',
                     now() - interval '30 days'),
                    ('churn-classifier', 2, 1, 'roc_auc', 0.86, 0.83, 0.005, true, 'better by 0.03',
                     now() - interval '10 days');
             insert into registry.aliases (model_name, alias, version, updated_at)
             values ('churn-classifier', 'champion', 2, now() - interval '10 days'),
                    ('synthesizer', 'champion', 1, now() - interval '40 days');
             insert into monitoring.model_metrics (model_name, model_version, metric_type, window_start, window_end,
                                                   n_samples, n_positive, accuracy, f1, roc_auc, computed_at)
             values ('churn-classifier', 2, 'test', null, null, 1409, 374, 0.80, 0.62, 0.86, now() - interval '10 days'),
                    ('churn-classifier', 2, 'scheduled', now() - interval '1 day', now(), 800, 210, 0.79, 0.60, 0.84, now());
             insert into monitoring.drift (model_name, model_version, feature, statistic, value, threshold, drifted,
                                           window_start, window_end, n_samples)
             values ('churn-classifier', 2, 'tenure_months', 'ks', 0.3, 0.05, false, now() - interval '1 day', now(), 800),
                    ('churn-classifier', 2, 'contract', 'jensen_shannon', 0.12, 0.1, true, now() - interval '1 day', now(), 800);",
        )
        .execute(self.pool())
        .await
        .expect("registry, monitoring and ops fixtures");
        sqlx::query(
            "insert into ops.job_runs (job_run_id, job_name, trigger) values ($1, 'dbt', 'manual')",
        )
        .bind(self.job_run_id)
        .execute(self.pool())
        .await
        .expect("the dbt job run");
    }

    /// Inserts the next `n` seed rows as new customers (new ULIDs) from `source`; synthetic ones also
    /// get their synthesized row.
    pub async fn add_customers(&mut self, n: usize, source: &str) -> Vec<Uuid> {
        let rows: Vec<Customer> = (0..n)
            .map(|i| self.seed[(self.next_seed_row + i) % self.seed.len()].clone())
            .collect();
        self.next_seed_row += n;
        let ids = insert_customers(self.pool(), &rows, source).await;
        if source == "synthetic" {
            sqlx::query(
                "insert into churn.synthesized (customer_id, synthesizer_name, synthesizer_version, seed)
                 select id, 'synthesizer', 1, 7 from unnest($1::uuid[]) as id",
            )
            .bind(&ids)
            .execute(self.pool())
            .await
            .expect("synthesized rows");
        }
        ids
    }

    /// Predictions by `version` for `ids`: a probability from the customer's contract, internet service
    /// and tenure, the label from the threshold (as the classifier does).
    pub async fn classify(&self, ids: &[Uuid], version: i32, threshold: f64) {
        let features: Vec<(String, String, i32)> = sqlx::query_as(
            "select contract, internet_service, tenure_months::int from churn.customers
                            where customer_id = any($1) order by customer_id",
        )
        .bind(ids)
        .fetch_all(self.pool())
        .await
        .expect("customers to classify");
        let mut ordered = ids.to_vec();
        ordered.sort();
        let probabilities: Vec<f64> = features
            .iter()
            .zip(&ordered)
            .map(|((contract, internet, tenure), id)| {
                let noise = f64::from(id.as_bytes()[15]) / 255.0 - 0.5;
                let z =
                    -1.0 + if contract == "Month-to-month" {
                        1.5
                    } else {
                        0.0
                    } + if internet == "Fiber optic" { 0.8 } else { 0.0 }
                        - 0.04 * f64::from(*tenure)
                        + noise;
                1.0 / (1.0 + (-z).exp())
            })
            .collect();
        let labels: Vec<bool> = probabilities.iter().map(|p| *p >= threshold).collect();
        sqlx::query(
            "insert into churn.classified (customer_id, model_name, model_version, churn_probability,
                                           predicted_churn_label, threshold)
             select id, 'churn-classifier', $2, p, label, $3
             from unnest($1::uuid[], $4::float8[], $5::bool[]) as u (id, p, label)",
        )
        .bind(&ordered)
        .bind(version)
        .bind(threshold)
        .bind(&probabilities)
        .bind(&labels)
        .execute(self.pool())
        .await
        .expect("predictions");
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(self.pool())
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

/// Inserts customers with fresh ULIDs in one UNNEST statement.
pub async fn insert_customers(pool: &PgPool, rows: &[Customer], source: &str) -> Vec<Uuid> {
    let ids: Vec<Uuid> = rows
        .iter()
        .map(|_| Uuid::from(ulid::Ulid::generate()))
        .collect();
    let text = |f: fn(&Customer) -> String| rows.iter().map(f).collect::<Vec<String>>();
    let flag = |f: fn(&Customer) -> bool| rows.iter().map(f).collect::<Vec<bool>>();
    sqlx::query(
        "insert into churn.customers (customer_id, source, country, state, city, zip_code, latitude, longitude,
             gender, senior_citizen, partner, dependents, tenure_months, phone_service, multiple_lines,
             internet_service, online_security, online_backup, device_protection, tech_support, streaming_tv,
             streaming_movies, contract, paperless_billing, payment_method, monthly_charges, total_charges,
             churn_label)
         select id, $2, country, state, city, zip, lat, lon, gender, senior, partner, dependents, tenure::smallint,
                phone, lines, internet, security, backup, protection, support, tv, movies, contract, paperless,
                payment, monthly::numeric(10, 2), total::numeric(12, 2), churn
         from unnest($1::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::float8[], $8::float8[],
                     $9::text[], $10::bool[], $11::bool[], $12::bool[], $13::int[], $14::bool[], $15::text[],
                     $16::text[], $17::text[], $18::text[], $19::text[], $20::text[], $21::text[], $22::text[],
                     $23::text[], $24::bool[], $25::text[], $26::float8[], $27::float8[], $28::bool[])
             as u (id, country, state, city, zip, lat, lon, gender, senior, partner, dependents, tenure, phone,
                   lines, internet, security, backup, protection, support, tv, movies, contract, paperless,
                   payment, monthly, total, churn)",
    )
    .bind(&ids)
    .bind(source)
    .bind(text(|c| c.country.clone()))
    .bind(text(|c| c.state.clone()))
    .bind(text(|c| c.city.clone()))
    .bind(text(|c| c.zip_code.clone()))
    .bind(rows.iter().map(|c| c.latitude).collect::<Vec<_>>())
    .bind(rows.iter().map(|c| c.longitude).collect::<Vec<_>>())
    .bind(text(|c| c.gender.label().to_owned()))
    .bind(flag(|c| c.senior_citizen.is_yes()))
    .bind(flag(|c| c.partner.is_yes()))
    .bind(flag(|c| c.dependents.is_yes()))
    .bind(rows.iter().map(|c| c.tenure_months as i32).collect::<Vec<_>>())
    .bind(flag(|c| c.phone_service.is_yes()))
    .bind(text(|c| c.multiple_lines.label().to_owned()))
    .bind(text(|c| c.internet_service.label().to_owned()))
    .bind(text(|c| c.online_security.label().to_owned()))
    .bind(text(|c| c.online_backup.label().to_owned()))
    .bind(text(|c| c.device_protection.label().to_owned()))
    .bind(text(|c| c.tech_support.label().to_owned()))
    .bind(text(|c| c.streaming_tv.label().to_owned()))
    .bind(text(|c| c.streaming_movies.label().to_owned()))
    .bind(text(|c| c.contract.label().to_owned()))
    .bind(flag(|c| c.paperless_billing.is_yes()))
    .bind(text(|c| c.payment_method.label().to_owned()))
    .bind(rows.iter().map(|c| c.monthly_charges).collect::<Vec<_>>())
    .bind(rows.iter().map(|c| c.total_charges).collect::<Vec<_>>())
    .bind(rows.iter().map(|c| c.churn_label.map(|l| l.is_yes())).collect::<Vec<_>>())
    .execute(pool)
    .await
    .expect("customers inserted");
    ids
}
