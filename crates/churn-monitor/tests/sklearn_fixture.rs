//! churn-core's classification metrics and churn-monitor's calibration against numbers scikit-learn
//! 1.7.2 computed on the same seed-derived (label, probability) pairs: `tests/fixtures/sklearn_metrics.json`,
//! written by `tests/sklearn_fixture.py` (see it for how the probabilities were made).

use churn_core::metrics::evaluate;
use churn_monitor::{CalibrationOptions, calibration};
use serde::Deserialize;

const TOLERANCE: f64 = 1e-9;

#[derive(Deserialize)]
struct Fixture {
    threshold: f64,
    labels: Vec<u8>,
    probabilities: Vec<f64>,
    metrics: SklearnMetrics,
    calibration: Vec<SklearnCurve>,
}

#[derive(Deserialize)]
struct SklearnMetrics {
    accuracy: f64,
    precision: f64,
    recall: f64,
    f1: f64,
    log_loss: f64,
    brier: f64,
    roc_auc: f64,
    average_precision: f64,
}

#[derive(Deserialize)]
struct SklearnCurve {
    n_bins: usize,
    prob_true: Vec<f64>,
    prob_pred: Vec<f64>,
    counts: Vec<u64>,
    ece: f64,
}

fn fixture() -> Fixture {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/sklearn_metrics.json"
    );
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{path} is not a fixture: {e}"))
}

fn assert_close(what: &str, ours: f64, sklearn: f64) {
    assert!(
        (ours - sklearn).abs() <= TOLERANCE,
        "{what}: ours {ours}, scikit-learn {sklearn}"
    );
}

#[test]
fn classification_metrics_match_scikit_learn_on_seed_derived_predictions() {
    let f = fixture();
    let labels: Vec<bool> = f.labels.iter().map(|&l| l == 1).collect();
    let m = evaluate(&labels, &f.probabilities, f.threshold).expect("valid input");
    let s = &f.metrics;
    assert_eq!(m.n, 7043);
    assert_close("accuracy", m.accuracy, s.accuracy);
    assert_close("precision", m.precision, s.precision);
    assert_close("recall", m.recall, s.recall);
    assert_close("f1", m.f1, s.f1);
    assert_close("log loss", m.log_loss, s.log_loss);
    assert_close("brier", m.brier, s.brier);
    assert_close("roc auc", m.roc_auc.expect("both classes"), s.roc_auc);
    assert_close(
        "average precision",
        m.pr_auc.expect("positives"),
        s.average_precision,
    );
}

#[test]
fn calibration_bins_match_scikit_learns_calibration_curve() {
    let f = fixture();
    let labels: Vec<bool> = f.labels.iter().map(|&l| l == 1).collect();
    // The fixture holds probabilities lying exactly on tenths (0.1, 0.5, 0.6, 0.8), which only numpy's
    // own edges bin right (linspace's sixth edge is 0.6000000000000001, its eighth exactly 0.8).
    assert!(
        f.probabilities
            .iter()
            .any(|p| [0.1, 0.5, 0.6, 0.8].contains(p))
    );
    for curve in &f.calibration {
        let options = CalibrationOptions::new()
            .n_bins(curve.n_bins)
            .check()
            .expect("valid bins");
        let c = calibration(&labels, &f.probabilities, &options).expect("valid input");
        assert_eq!(c.bins.len(), curve.n_bins);
        // scikit-learn drops empty bins; compare the non-empty ones in order.
        let filled: Vec<_> = c.bins.iter().filter(|b| b.count > 0).collect();
        let counts: Vec<u64> = filled.iter().map(|b| b.count).collect();
        assert_eq!(counts, curve.counts, "{} bins: counts", curve.n_bins);
        for (i, bin) in filled.iter().enumerate() {
            let what = format!("{} bins, bin {i}", curve.n_bins);
            assert_close(
                &format!("{what} observed"),
                bin.observed_rate.expect("non-empty"),
                curve.prob_true[i],
            );
            assert_close(
                &format!("{what} predicted"),
                bin.mean_predicted.expect("non-empty"),
                curve.prob_pred[i],
            );
        }
        assert_close(&format!("{} bins: ECE", curve.n_bins), c.ece, curve.ece);
        assert_eq!(c.n, 7043);
    }
}
