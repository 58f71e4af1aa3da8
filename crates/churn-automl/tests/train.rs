//! Training on the real seed data: test ROC AUC on a stratified 80/20 split, determinism for a seed,
//! the holdout never influencing the model, calibration, explanations and the artifact.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::OnceLock;
use std::time::Duration;

use churn_automl::split::{SplitParams, split_customers};
use churn_automl::{ChurnModel, LoadedModel, TrainOptions, train};
use churn_core::{Customer, YesNo};

fn seed_data() -> &'static [Customer] {
    static DATA: OnceLock<Vec<Customer>> = OnceLock::new();
    DATA.get_or_init(|| {
        churn_core::read_customers(&churn_config::seed_data_path(&churn_config::Env::Process))
            .unwrap()
    })
}

/// The stratified 80/20 split `churnctl train` makes with split seed 0.
fn split() -> (Vec<Customer>, Vec<Customer>) {
    let params = SplitParams {
        test_fraction: 0.2,
        seed: 0,
    }
    .check()
    .unwrap();
    split_customers(seed_data().to_vec(), &params).unwrap()
}

fn options(budget_secs: u64) -> TrainOptions {
    TrainOptions {
        time_budget: Duration::from_secs(budget_secs),
        seed: 7,
        // Tests run in parallel on a loaded machine; determinism must not hang on the clock.
        clock_guard: false,
        ..TrainOptions::default()
    }
}

/// Training with the default budget takes most of a minute, so one test trains once and checks
/// everything that model should satisfy.
#[test]
fn a_model_trained_with_the_default_budget_is_accurate_calibrated_explained_and_serializable() {
    let (train_rows, test_rows) = split();
    let model = train(
        &train_rows,
        Some(&test_rows),
        TrainOptions::default(),
        |_| {},
    )
    .unwrap();
    reaches_a_test_roc_auc_of_at_least_0_85(&model, &test_rows);
    has_calibrated_probabilities_and_a_stored_threshold(&model, &test_rows);
    names_customer_fields_in_importance_and_explanations(&model, &test_rows);
    round_trips_through_its_artifact(&model, &test_rows);
}

fn reaches_a_test_roc_auc_of_at_least_0_85(model: &ChurnModel, test_rows: &[Customer]) {
    let loaded = LoadedModel::new(model.clone()).unwrap();
    let metrics = loaded.evaluate(test_rows).unwrap();
    assert!(metrics.roc_auc.unwrap() >= 0.85, "{metrics:?}");
    // Training time is a benchmark (BENCHMARKS.md), not a timed test; the clock must not have decided.
    assert!(!model.training.stopped_by_clock);
    // Every family took part in the search.
    for family in ["linfa_logistic", "smartcore_logistic", "gbdt"] {
        assert!(
            model.training.trials.iter().any(|t| t.family == family),
            "{family}"
        );
    }
}

fn has_calibrated_probabilities_and_a_stored_threshold(model: &ChurnModel, test_rows: &[Customer]) {
    let loaded = LoadedModel::new(model.clone()).unwrap();
    let p = loaded.predict(test_rows);
    let mean = p.iter().sum::<f64>() / p.len() as f64;
    let rate = test_rows
        .iter()
        .filter(|c| c.churn_label == Some(YesNo::Yes))
        .count() as f64
        / test_rows.len() as f64;
    assert!(
        (mean - rate).abs() < 0.03,
        "mean P(churn) {mean} vs churn rate {rate}"
    );
    assert!(p.iter().all(|v| (0.0..=1.0).contains(v)));
    assert!(
        model.threshold > 0.05 && model.threshold < 0.95,
        "{}",
        model.threshold
    );
    assert_eq!(model.training.cv_metrics.threshold, model.threshold);
}

fn names_customer_fields_in_importance_and_explanations(
    model: &ChurnModel,
    test_rows: &[Customer],
) {
    assert!(!model.importance.is_empty());
    let top: Vec<&str> = model
        .importance
        .iter()
        .take(3)
        .map(|i| i.field.as_str())
        .collect();
    assert!(
        top.contains(&"contract") || top.contains(&"tenure_months"),
        "contract or tenure should matter most: {:?}",
        model.importance
    );
    let loaded = LoadedModel::new(model.clone()).unwrap();
    let explanation = loaded.explain(&test_rows[0], 5);
    assert_eq!(explanation.len(), 5);
    assert!(
        explanation
            .windows(2)
            .all(|w| w[0].contribution.abs() >= w[1].contribution.abs())
    );
    let fields: Vec<&str> = churn_core::Field::ALL.iter().map(|f| f.name()).collect();
    assert!(
        explanation
            .iter()
            .all(|c| fields.contains(&c.field.as_str()))
    );
}

fn round_trips_through_its_artifact(model: &ChurnModel, test_rows: &[Customer]) {
    let bytes = model.to_bytes().unwrap();
    let back = LoadedModel::from_bytes(&bytes).unwrap();
    let original = LoadedModel::new(model.clone()).unwrap();
    assert_eq!(back.predict(test_rows), original.predict(test_rows));
    // The loaded form answers for the artifact it was read from.
    assert_eq!(back.family(), model.family);
    assert_eq!(back.threshold(), model.threshold);
    assert_eq!(back.importance(), model.importance.as_slice());
    assert_eq!(back.training(), &model.training);

    let mut value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    value["schema_version"] = 2.into();
    let err = LoadedModel::from_bytes(&serde_json::to_vec(&value).unwrap()).unwrap_err();
    assert!(err.to_string().contains("schema version 2"), "{err}");
    value["schema_version"] = 1.into();
    value["features"][0] = "something_else".into();
    let err = LoadedModel::from_bytes(&serde_json::to_vec(&value).unwrap()).unwrap_err();
    assert!(
        err.to_string().contains("different feature layout"),
        "{err}"
    );
}

/// Everything of a model but its timings.
fn without_timings(mut model: ChurnModel) -> ChurnModel {
    model.training.seconds = 0.0;
    model
        .training
        .trials
        .iter_mut()
        .for_each(|t| t.seconds = 0.0);
    model
}

#[test]
fn the_same_seed_gives_the_same_model_and_the_holdout_never_shapes_it() {
    let (train_rows, test_rows) = split();
    let a = train(&train_rows, Some(&test_rows), options(8), |_| {}).unwrap();
    // The held-out rows, with every label flipped: if the search or the fit read them, the model
    // would change; only the importance (measured on them) may.
    let mut flipped = test_rows.clone();
    for c in &mut flipped {
        c.churn_label = c.churn_label.map(|l| YesNo::from_bool(!l.is_yes()));
    }
    let b = train(&train_rows, Some(&flipped), options(8), |_| {}).unwrap();
    let (mut a, mut b) = (without_timings(a), without_timings(b));
    assert_ne!(a.importance, b.importance);
    a.importance.clear();
    b.importance.clear();
    assert_eq!(a, b);
}

#[test]
fn unlabelled_or_tiny_training_sets_are_refused() {
    let mut rows = seed_data()[..200].to_vec();
    rows[3].churn_label = None;
    let err = train(&rows, None, options(1), |_| {}).unwrap_err();
    assert!(
        err.to_string().contains("row 3 has no churn label"),
        "{err}"
    );
    let few: Vec<Customer> = seed_data()
        .iter()
        .filter(|c| c.churn_label == Some(YesNo::No))
        .take(50)
        .cloned()
        .chain(
            seed_data()
                .iter()
                .filter(|c| c.churn_label == Some(YesNo::Yes))
                .take(2)
                .cloned(),
        )
        .collect();
    let err = train(&few, None, options(1), |_| {}).unwrap_err();
    assert!(err.to_string().contains("too few"), "{err}");
}

#[test]
fn an_explained_prediction_scores_exactly_as_a_plain_one() {
    let (train_rows, test_rows) = split();
    let model = LoadedModel::new(train(&train_rows, None, options(2), |_| {}).unwrap()).unwrap();
    for customer in test_rows.iter().take(50) {
        let plain = model.predict(std::slice::from_ref(customer))[0];
        let (explained, contributions) = model.predict_explained(customer, 5);
        assert_eq!(plain.to_bits(), explained.to_bits());
        assert_eq!(contributions, model.explain(customer, 5));
        assert_eq!(contributions.len(), 5);
    }
}

#[test]
fn training_options_out_of_range_are_refused_naming_the_parameter() {
    let rows = &seed_data()[..500];
    let cases: [(TrainOptions, &str); 4] = [
        (
            TrainOptions {
                folds: 0,
                ..options(1)
            },
            "folds",
        ),
        (
            TrainOptions {
                folds: 21,
                ..options(1)
            },
            "folds",
        ),
        (
            TrainOptions {
                threads: 0,
                ..options(1)
            },
            "threads",
        ),
        (
            TrainOptions {
                time_budget: Duration::from_millis(10),
                ..options(1)
            },
            "time_budget",
        ),
    ];
    for (bad, name) in cases {
        let err = train(rows, None, bad, |_| {}).unwrap_err().to_string();
        assert!(err.starts_with(name), "{err}");
    }
}

#[test]
fn raising_the_stop_flag_ends_a_long_search_within_a_fit_and_returns_no_model() {
    let (train_rows, _) = split();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let trials = std::sync::atomic::AtomicUsize::new(0);
    let started = std::time::Instant::now();
    let raised = std::sync::OnceLock::new();
    let result = std::thread::scope(|scope| {
        scope.spawn(|| {
            // Stop once the search is under way (its first trials scored), as a shutdown would.
            while trials.load(std::sync::atomic::Ordering::Relaxed) < 2 {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = raised.set(std::time::Instant::now());
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        churn_automl::train_until(&train_rows, None, options(600), &stop, |_| {
            trials.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        })
    });
    let err = result.expect_err("a stopped search returns no model");
    assert!(
        matches!(err, churn_automl::Error::Cancelled { .. }),
        "{err}"
    );
    let after_stop = raised.get().unwrap().elapsed();
    // A 600 s budget plans minutes of work; stopping waits for the folds in progress only.
    assert!(
        after_stop < Duration::from_secs(5),
        "stopped {after_stop:?} after the flag"
    );
    assert!(started.elapsed() < Duration::from_secs(60));
}
