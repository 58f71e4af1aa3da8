//! Monitoring reads and writes: labelled predictions per model version and window, the customers of a
//! window and of the classifier's logged traffic, logged predictions with the outcomes that judge them and
//! the cohort metrics, live metrics with their calibration bins, drift runs, and the retrain triggers with
//! their cooldown. The metrics and drift themselves are computed elsewhere; this module only moves rows.

mod cohorts;
mod copy;
mod customers;
mod drift;
mod logged;
mod metrics;
mod predictions;
mod retrain;
mod traffic;

use chrono::{DateTime, Utc};

pub use cohorts::{
    CohortAuc, CohortMetric, PredictionSource, SLICE_COLUMNS, ScoredBySource, ScoredRows,
    classified_predictions, cohort_aucs, final_frontier, logged_predictions, upsert_cohort_metrics,
};
pub use customers::{customers_in, labelled_customers, labelled_since};
pub use drift::{
    DriftColumn, DriftRun, DriftSource, insert_drift_run, latest_drift, latest_drift_of,
    newest_drift_run,
};
pub use logged::{LoggedPrediction, NewOutcome, insert_inference_log, insert_outcomes};
pub use metrics::{
    CalibrationBin, LiveMetrics, MetricSummary, MetricType, insert_live_metrics, metric_summaries,
};
pub use predictions::{
    LabelledPredictions, PairedPredictions, labelled_predictions, paired_predictions,
    probabilities, versions_scored,
};
pub use retrain::{
    EVIDENCE_REASONS, RetrainReason, RetrainTrigger, TriggerOutcome, claim_retrain_triggers,
    last_training, release_retrain_triggers, request_retrain,
};
pub use traffic::logged_traffic_in;

/// A named time window `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// e.g. `1h`, `1d`.
    pub name: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}
