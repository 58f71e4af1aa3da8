//! The serialized churn model: what training chose and recorded, and how it is written and read back.

use serde::{Deserialize, Serialize};

use super::SCHEMA_VERSION;
use crate::Error;
use crate::calibration::Platt;
use crate::estimators::Estimator;
use crate::features::{self, Standardizer};
use crate::importance::Importance;
use crate::search::Trial;
use churn_core::metrics::Metrics;

/// What training did, stored with the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingRecord {
    pub rows: usize,
    pub positives: usize,
    pub seed: u64,
    pub time_budget_secs: f64,
    pub folds: usize,
    pub seconds: f64,
    pub stopped_by_clock: bool,
    /// Out-of-fold metrics of the chosen model, calibrated, at the chosen threshold.
    pub cv_metrics: Metrics,
    pub trials: Vec<Trial>,
}

/// The serialized model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChurnModel {
    pub schema_version: u32,
    pub generator: String,
    /// The chosen candidate, e.g. "gbdt" or "ensemble(gbdt+gbdt+linfa_logistic)".
    pub family: String,
    pub params: serde_json::Value,
    pub features: Vec<String>,
    pub standardizer: Standardizer,
    pub estimator: Estimator,
    pub calibration: Platt,
    /// Predicted churn when P(churn) ≥ threshold (chosen for F1 on out-of-fold predictions).
    pub threshold: f64,
    pub importance: Vec<Importance>,
    pub training: TrainingRecord,
}

impl ChurnModel {
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        serde_json::to_vec(self).map_err(|e| Error::Artifact(e.to_string()))
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<ChurnModel, Error> {
        let model: ChurnModel = churn_core::artifact::from_json(bytes, SCHEMA_VERSION)?;
        let expected: Vec<String> = features::feature_infos()
            .into_iter()
            .map(|f| f.name)
            .collect();
        if model.features != expected {
            return Err(Error::Artifact(
                "the model was trained on a different feature layout; retrain it with this version"
                    .into(),
            ));
        }
        Ok(model)
    }
}
