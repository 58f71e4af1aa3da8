//! The retrain-ready library call on the seed data, registering into a fresh database and a real S3
//! server (no churnctl): the stored decision, the run, the lineage and the progress it reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use churn_automl::TrainOptions;
use churn_core::VersionNumber;
use churn_models::classifier::MODEL_NAME;
use churn_models::{Holdout, TrainEvent, TrainRequest, TrainingData, train_and_register};
use churn_registry::Alias;
use churn_registry::Registry;
use churn_testkit::{TestDb, TestS3, seed_data_path};

fn request(margin: f64) -> TrainRequest {
    TrainRequest {
        data: TrainingData::File(seed_data_path()),
        holdout: Holdout::Split {
            fraction: 0.2,
            seed: 0,
        },
        options: TrainOptions {
            time_budget: Duration::from_secs(2),
            ..TrainOptions::default()
        },
        promotion_margin: margin,
        hold_for_live: false,
        code_version: "test".to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn train_and_register_trains_registers_and_stores_its_decision_without_the_cli() {
    let db = TestDb::new().await;
    let s3 = TestS3::start().await;
    let registry = Registry::new(db.pool.clone(), s3.open());
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let outcome = train_and_register(&registry, request(0.0), move |e| {
        seen.lock().unwrap().push(e);
    })
    .await
    .unwrap();

    // The split, the held-out evaluation and the lineage.
    assert_eq!(outcome.train_rows + outcome.holdout_rows, 7043);
    assert_eq!(outcome.holdout_rows, 1409);
    assert_eq!(
        outcome.data_sha256,
        churn_store::seed::sha256_file(&seed_data_path()).unwrap()
    );
    let test = outcome.test_metrics.expect("test metrics");
    assert!(test.roc_auc.unwrap() > 0.8, "{test:?}");
    let (version, decision) = outcome.registered.as_ref().expect("registered");
    assert_eq!(version.version, 1);
    assert_eq!(
        version.lineage.0["training_data_sha256"],
        outcome.data_sha256.as_str()
    );
    // The drift reference is stored with the version: the training rows' profile with the model's
    // probabilities on the held-out rows.
    let profile = registry
        .load_profile(version)
        .await
        .unwrap()
        .expect("a profile");
    let profile = churn_monitor::ReferenceProfile::from_json(&profile).unwrap();
    assert_eq!(profile.n_rows, outcome.train_rows as u64);
    assert_eq!(
        profile.prediction.as_ref().map(|p| p.summary.n()),
        Some(1409)
    );
    // The decision was taken on the evaluation computed once, and stored with it.
    assert!(decision.promoted, "{decision:?}");
    assert_eq!(decision.candidate_score, test.roc_auc);
    let stored = registry.decisions(MODEL_NAME).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].candidate_version, 1);
    assert_eq!(stored[0].evidence["holdout_rows"], 1409);
    assert_eq!(
        stored[0].evidence["candidate"]["roc_auc"],
        test.roc_auc.unwrap()
    );
    assert_eq!(
        registry
            .by_alias(MODEL_NAME, &Alias::CHAMPION)
            .await
            .unwrap()
            .unwrap()
            .version,
        1
    );
    let run = registry.get_run(version.run_id.unwrap()).await.unwrap();
    assert_eq!(run.status, churn_registry::RunStatus::Finished);

    // Progress came in order: loaded, trials, refit, evaluated, registered, decided.
    let events: Vec<TrainEvent> = events.lock().unwrap().clone();
    assert!(matches!(
        events.first(),
        Some(TrainEvent::Loaded {
            train_rows: 5634,
            ..
        })
    ));
    assert!(events.iter().any(|e| matches!(e, TrainEvent::Trial { .. })));
    let tail: Vec<&str> = events
        .iter()
        .rev()
        .take(4)
        .map(|e| match e {
            TrainEvent::Refit { .. } => "refit",
            TrainEvent::Evaluated { .. } => "evaluated",
            TrainEvent::Registered { .. } => "registered",
            TrainEvent::Decided { .. } => "decided",
            _ => "other",
        })
        .collect();
    assert_eq!(tail, ["decided", "registered", "evaluated", "refit"]);

    // The same request again gives the same model, which does not beat the champion by the margin.
    let again = train_and_register(&registry, request(0.01), |_| {})
        .await
        .unwrap();
    let (second, decision) = again.registered.unwrap();
    assert_eq!(second.version, 2);
    assert!(!decision.promoted, "{decision:?}");
    assert_eq!(decision.champion_version, Some(v(1)));
    assert_eq!(
        registry
            .by_alias(MODEL_NAME, &Alias::CHALLENGER)
            .await
            .unwrap()
            .unwrap()
            .version,
        2
    );
}

#[tokio::test]
async fn bad_parameters_are_refused_before_any_work_naming_the_parameter() {
    let db = TestDb::new().await;
    let s3 = TestS3::start().await;
    let registry = Registry::new(db.pool.clone(), s3.open());
    type Change = fn(&mut TrainRequest);
    let cases: [(Change, &str); 5] = [
        (|r| r.options.folds = 0, "folds"),
        (|r| r.options.threads = 0, "threads"),
        (|r| r.options.time_budget = Duration::ZERO, "time_budget"),
        (|r| r.promotion_margin = -0.5, "promotion_margin"),
        (
            |r| {
                r.holdout = Holdout::Split {
                    fraction: 7.0,
                    seed: 0,
                }
            },
            "test_fraction",
        ),
    ];
    for (change, name) in cases {
        let mut bad = request(0.0);
        // A missing file would fail too: the check must come first.
        bad.data = TrainingData::File("/nonexistent/data.csv".into());
        change(&mut bad);
        let err = train_and_register(&registry, bad, |_| {})
            .await
            .unwrap_err()
            .to_string();
        assert!(err.starts_with(name), "{name}: {err}");
    }
    let mut none = request(0.0);
    none.holdout = Holdout::None;
    let err = train_and_register(&registry, none, |_| {})
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("held-out rows"), "{err}");
    assert!(registry.list_models().await.unwrap().is_empty());
}

/// A version number in a test (panics on 0: the tests name real versions).
fn v(n: i32) -> VersionNumber {
    VersionNumber::new(n).expect("versions count from 1")
}
