//! The monitoring loop: the metrics job against hand-computed answers and scikit-learn, the drift job
//! against churn-monitor (itself checked against Evidently) with its retrain trigger and cooldown, and the
//! whole loop through real services: a shifted stream triggers a retrain whose winner the classifier
//! serves within a second with no failed request, and whose loser is shadow-scored as challenger.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use churn_core::{Category, Contract, Customer, PaymentMethod, YesNo};
use churn_jobs::drift::{DriftJob, DriftParams};
use churn_jobs::metrics::{MetricsJob, MetricsParams};
use churn_jobs::retrain::{RetrainWatch, TriggerPolicy};
use churn_registry::Registry;
use churn_service::testing::{champion_model, register_champion};
use churn_store::monitoring::TriggerOutcome;
use churn_store::warehouse::{self, Classification, Synthesis};
use churn_testkit::{TestDb, TestS3};
use serde_json::Value;
use sqlx::Row;
use uuid::Uuid;

use crate::stack::{Stack, wait_until};

const MODEL: &str = "churn-classifier";

fn seed() -> Vec<Customer> {
    churn_core::read_customers(&churn_testkit::seed_data_path()).unwrap()
}

/// Writes `customers` as generated rows, each scored by every `(version, probability)` given for it,
/// `age` ago.
async fn insert_scored(
    db: &TestDb,
    rows: &[(Customer, Vec<(i32, f64)>)],
    threshold: f64,
    age: Duration,
) -> Vec<Uuid> {
    let mut customers = Vec::new();
    let mut classifications = Vec::new();
    for (customer, scores) in rows {
        let id =
            churn_core::CustomerId::from_uuid(Uuid::from_bytes(ulid::Ulid::generate().to_bytes()));
        for &(version, p) in scores {
            classifications.push(Classification {
                customer_id: id,
                model_name: MODEL.to_owned(),
                model_version: version,
                churn_probability: p,
                predicted_churn_label: p >= threshold,
                threshold,
            });
        }
        customers.push((id, customer.clone()));
    }
    let synthesis = Synthesis {
        synthesizer_name: "synthesizer".into(),
        synthesizer_version: 1,
        seed: None,
    };
    for chunk in customers.chunks(5000) {
        let ids: std::collections::HashSet<churn_core::CustomerId> =
            chunk.iter().map(|(id, _)| *id).collect();
        let mine: Vec<Classification> = classifications
            .iter()
            .filter(|k| ids.contains(&k.customer_id))
            .cloned()
            .collect();
        warehouse::write_generated(&db.pool, chunk, &synthesis, &mine)
            .await
            .unwrap();
    }
    if !age.is_zero() {
        let ids: Vec<Uuid> = customers.iter().map(|(id, _)| id.as_uuid()).collect();
        let age = age.as_secs_f64();
        for table in [
            "churn.customers set inserted_at",
            "churn.classified set classified_at",
        ] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "update {table} = now() - make_interval(secs => $1) where customer_id = any($2)"
            )))
            .bind(age)
            .bind(&ids)
            .execute(&db.pool)
            .await
            .unwrap();
        }
    }
    customers.into_iter().map(|(id, _)| id.as_uuid()).collect()
}

/// Registers another version of the champion's model (no alias): the shadow the tests score beside it.
async fn register_second_version(registry: &Registry) {
    let info = churn_models::classifier::TrainingInfo {
        data_path: "seed.csv".into(),
        data_sha256: "d".repeat(64),
        train_rows: 10,
        holdout_rows: 0,
        split_seed: 0,
        code_version: "test".into(),
        profile: None,
    };
    churn_models::classifier::register(registry, &champion_model(), None, &info)
        .await
        .unwrap();
}

fn labelled(mut c: Customer, churned: Option<bool>) -> Customer {
    c.churn_label = churned.map(YesNo::from_bool);
    c
}

async fn metrics_row(db: &TestDb, version: i32, window: &str) -> sqlx::postgres::PgRow {
    sqlx::query(
        "select * from monitoring.model_metrics
         where model_version = $1 and window_name = $2 and metric_type = 'scheduled'",
    )
    .bind(version)
    .bind(window)
    .fetch_one(&db.pool)
    .await
    .unwrap()
}

fn close(what: &str, ours: f64, expected: f64, tolerance: f64) {
    assert!(
        (ours - expected).abs() <= tolerance,
        "{what}: stored {ours}, expected {expected}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_metrics_job_stores_the_hand_computed_answers_per_version_and_window() {
    let db = TestDb::new().await;
    let s3 = TestS3::start().await;
    let v1 = register_champion(&db, &s3).await.version.get();
    let registry = Registry::new(db.pool.clone(), s3.open());
    let seed = seed();
    // Six labelled customers scored by v1 (and, as a shadow, by v2 with other probabilities):
    // churners at 0.9, 0.8, 0.3; stayers at 0.6, 0.2, 0.1.
    let probabilities = [0.9, 0.8, 0.3, 0.6, 0.2, 0.1];
    let labels = [true, true, true, false, false, false];
    let rows: Vec<(Customer, Vec<(i32, f64)>)> = probabilities
        .iter()
        .zip(labels)
        .enumerate()
        .map(|(i, (&p, l))| {
            (
                labelled(seed[i].clone(), Some(l)),
                vec![(v1, p), (v1 + 1, 1.0 - p)],
            )
        })
        .collect();
    register_second_version(&registry).await;
    insert_scored(&db, &rows, 0.5, Duration::ZERO).await;
    // Left out of the last hour: a customer without a label, and one scored two days ago.
    insert_scored(
        &db,
        &[(labelled(seed[6].clone(), None), vec![(v1, 0.99)])],
        0.5,
        Duration::ZERO,
    )
    .await;
    insert_scored(
        &db,
        &[(labelled(seed[7].clone(), Some(false)), vec![(v1, 0.99)])],
        0.5,
        Duration::from_secs(2 * 86_400),
    )
    .await;

    let job = MetricsJob::new(
        MetricsParams {
            windows: vec![("1h".into(), Duration::from_secs(3600))],
            min_samples: 6,
            ..MetricsParams::default()
        }
        .check()
        .unwrap(),
        db.pool.clone(),
        registry,
        None,
    );
    let (stored, skipped) = job.compute(None).await.unwrap();
    assert_eq!(stored.len(), 2, "v1 and its shadow v2");
    assert!(skipped.is_empty(), "{skipped:?}");

    let row = metrics_row(&db, v1, "1h").await;
    assert_eq!(row.get::<i32, _>("n_samples"), 6);
    assert_eq!(row.get::<i32, _>("n_positive"), 3);
    let tol = 1e-12;
    // At 0.5: TP 2 (0.9, 0.8), FP 1 (0.6), FN 1 (0.3), TN 2.
    close("accuracy", row.get("accuracy"), 4.0 / 6.0, tol);
    close("precision", row.get("precision"), 2.0 / 3.0, tol);
    close("recall", row.get("recall"), 2.0 / 3.0, tol);
    close("f1", row.get("f1"), 2.0 / 3.0, tol);
    // 8 of the 9 churner/stayer pairs are ordered right (0.3 < 0.6).
    close("roc_auc", row.get("roc_auc"), 8.0 / 9.0, tol);
    // Average precision: precision 1, 1 and 3/4 at the three churners.
    close("pr_auc", row.get("pr_auc"), 11.0 / 12.0, tol);
    close("brier", row.get("brier"), 0.95 / 6.0, tol);
    let log_loss = -[0.9f64, 0.8, 0.3, 0.4, 0.8, 0.9]
        .iter()
        .map(|p| p.ln())
        .sum::<f64>()
        / 6.0;
    close("log_loss", row.get("log_loss"), log_loss, tol);
    // Each prediction alone in its bin: ECE is the mean of |p - label|.
    close("ece", row.get("ece"), 1.9 / 6.0, tol);
    close("threshold", row.get("threshold"), 0.5, 0.0);
    let metric_id: i64 = row.get("metric_id");
    let bins: Vec<(i32, i32, i32)> = sqlx::query_as(
        "select bin, n_samples, n_positive from monitoring.calibration where metric_id = $1 order by bin",
    )
    .bind(metric_id)
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(bins.len(), 10);
    assert_eq!(bins.iter().map(|b| b.1).sum::<i32>(), 6);
    assert_eq!(bins.iter().map(|b| b.2).sum::<i32>(), 3);
    // The shadow's probabilities are the mirror image: every pair ordered wrong but 0.3/0.6.
    let shadow = metrics_row(&db, v1 + 1, "1h").await;
    close("shadow roc_auc", shadow.get("roc_auc"), 1.0 / 9.0, tol);
}

/// The ingestion issue's late outcomes: a label that reaches a customer after the prediction was made
/// counts from the next run, whichever writer made the prediction; and each window sees only its rows.
#[tokio::test(flavor = "multi_thread")]
async fn a_label_arriving_after_the_prediction_counts_and_each_window_sees_only_its_rows() {
    let db = TestDb::new().await;
    let s3 = TestS3::start().await;
    let v1 = register_champion(&db, &s3).await.version.get();
    let registry = Registry::new(db.pool.clone(), s3.open());
    register_second_version(&registry).await;
    let seed = seed();
    let now: Vec<(Customer, Vec<(i32, f64)>)> =
        [(0.9, true), (0.8, false), (0.3, true), (0.1, false)]
            .iter()
            .enumerate()
            .map(|(i, &(p, l))| (labelled(seed[i].clone(), Some(l)), vec![(v1, p)]))
            .collect();
    insert_scored(&db, &now, 0.5, Duration::ZERO).await;
    let late = insert_scored(
        &db,
        &[(labelled(seed[4].clone(), None), vec![(v1, 0.7)])],
        0.5,
        Duration::ZERO,
    )
    .await;
    insert_scored(
        &db,
        &[(labelled(seed[5].clone(), Some(true)), vec![(v1, 0.6)])],
        0.5,
        Duration::from_secs(3 * 3600),
    )
    .await;
    // The outcome arrives (as an ingested file sets it), and a prediction written without the label
    // (by any other writer) takes the customer's.
    sqlx::query("update churn.customers set churn_label = true where customer_id = $1")
        .bind(late[0])
        .execute(&db.pool)
        .await
        .unwrap();
    sqlx::query(
        "insert into churn.classified (customer_id, model_name, model_version, churn_probability,
             predicted_churn_label, threshold)
         values ($1, $2, $3, 0.4, false, 0.5)",
    )
    .bind(late[0])
    .bind(MODEL)
    .bind(v1 + 1)
    .execute(&db.pool)
    .await
    .unwrap();
    let labels: Vec<Option<bool>> = sqlx::query_scalar(
        "select actual_churn_label from churn.classified where customer_id = $1 order by model_version",
    )
    .bind(late[0])
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(labels, [Some(true), Some(true)]);

    let job = MetricsJob::new(
        MetricsParams {
            windows: vec![
                ("1h".into(), Duration::from_secs(3600)),
                ("1d".into(), Duration::from_secs(86_400)),
            ],
            min_samples: 1,
            ..MetricsParams::default()
        }
        .check()
        .unwrap(),
        db.pool.clone(),
        registry,
        None,
    );
    let (stored, skipped) = job.compute(None).await.unwrap();
    assert!(skipped.is_empty(), "{skipped:?}");
    assert_eq!(stored.len(), 4, "v1 and v2 in both windows");
    let hour = metrics_row(&db, v1, "1h").await;
    assert_eq!(hour.get::<i32, _>("n_samples"), 5);
    assert_eq!(hour.get::<i32, _>("n_positive"), 3);
    // Churners 0.9, 0.7, 0.3 against stayers 0.8, 0.1: 4 of 6 pairs ordered right.
    close("1h roc_auc", hour.get("roc_auc"), 4.0 / 6.0, 1e-12);
    let day = metrics_row(&db, v1, "1d").await;
    assert_eq!(day.get::<i32, _>("n_samples"), 6);
    assert_eq!(day.get::<i32, _>("n_positive"), 4);
    // Adding the churner at 0.6, ahead of one stayer of two: 5 of 8 pairs.
    close("1d roc_auc", day.get("roc_auc"), 5.0 / 8.0, 1e-12);
    assert_eq!(
        metrics_row(&db, v1 + 1, "1h")
            .await
            .get::<i32, _>("n_samples"),
        1
    );
}

#[derive(serde::Deserialize)]
struct SklearnFixture {
    threshold: f64,
    labels: Vec<u8>,
    probabilities: Vec<f64>,
    metrics: std::collections::BTreeMap<String, f64>,
    calibration: Vec<SklearnCurve>,
}

#[derive(serde::Deserialize)]
struct SklearnCurve {
    n_bins: usize,
    counts: Vec<u64>,
    ece: f64,
}

#[tokio::test(flavor = "multi_thread")]
async fn the_metrics_job_stores_what_scikit_learn_computes_on_a_seed_derived_set() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../crates/churn-monitor/tests/fixtures/sklearn_metrics.json"
    );
    let fixture: SklearnFixture = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let db = TestDb::new().await;
    let s3 = TestS3::start().await;
    let v1 = register_champion(&db, &s3).await.version.get();
    let rows: Vec<(Customer, Vec<(i32, f64)>)> = seed()
        .into_iter()
        .zip(fixture.labels.iter().zip(&fixture.probabilities))
        .map(|(c, (&l, &p))| (labelled(c, Some(l == 1)), vec![(v1, p)]))
        .collect();
    assert_eq!(rows.len(), 7043);
    insert_scored(&db, &rows, fixture.threshold, Duration::ZERO).await;
    let job = MetricsJob::new(
        MetricsParams {
            windows: vec![("1d".into(), Duration::from_secs(86_400))],
            calibration_bins: 10,
            ..MetricsParams::default()
        }
        .check()
        .unwrap(),
        db.pool.clone(),
        Registry::new(db.pool.clone(), s3.open()),
        None,
    );
    job.compute(None).await.unwrap();
    let row = metrics_row(&db, v1, "1d").await;
    let tol = 1e-9;
    for (ours, theirs) in [
        ("accuracy", "accuracy"),
        ("precision", "precision"),
        ("recall", "recall"),
        ("f1", "f1"),
        ("log_loss", "log_loss"),
        ("brier", "brier"),
        ("roc_auc", "roc_auc"),
        ("pr_auc", "average_precision"),
    ] {
        close(ours, row.get(ours), fixture.metrics[theirs], tol);
    }
    let curve = fixture
        .calibration
        .iter()
        .find(|c| c.n_bins == 10)
        .expect("a 10-bin curve in the fixture");
    close("ece", row.get("ece"), curve.ece, tol);
    let counts: Vec<i32> = sqlx::query_scalar(
        "select n_samples from monitoring.calibration where metric_id = $1 and n_samples > 0 order by bin",
    )
    .bind(row.get::<i64, _>("metric_id"))
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        counts.iter().map(|&c| c as u64).collect::<Vec<_>>(),
        curve.counts
    );
}

/// Seed customers with charges 50% higher, a longer tenure, and everyone on a two-year contract paying
/// by mailed check: five of the 25 columns shift.
fn shifted(customers: &[Customer]) -> Vec<Customer> {
    customers
        .iter()
        .map(|c| {
            let mut c = c.clone();
            c.monthly_charges = (c.monthly_charges * 1.5 * 100.0).round() / 100.0;
            c.total_charges = (c.total_charges * 1.5 * 100.0).round() / 100.0;
            c.tenure_months = (c.tenure_months + 24).min(72);
            c.contract = Contract::ALL[2];
            c.payment_method = PaymentMethod::ALL[3];
            c
        })
        .collect()
}

mod cohorts;
mod drift;
mod live_loop;
