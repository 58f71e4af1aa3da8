//! The loaded model: a prepared estimator that predicts, labels, explains and evaluates.

use churn_core::Customer;
use churn_core::metrics::{self, Metrics};
use serde::Serialize;

use super::{ChurnModel, TrainingRecord};
use crate::Error;
use crate::estimators::{Estimator, Prepared};
use crate::features;
use crate::importance::Importance;

/// One field's share of a single prediction, in log-odds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Contribution {
    pub field: String,
    pub contribution: f64,
}

/// A model ready to predict.
#[derive(Debug)]
pub struct LoadedModel {
    /// The model's metadata. Its estimator has been moved into the prepared form (a served model
    /// would otherwise hold its boosters twice, once as JSON text), so this copy is not an artifact
    /// and stays private: callers read it through the accessors below.
    model: ChurnModel,
    prepared: Prepared,
    sources: Vec<&'static str>,
}

impl LoadedModel {
    pub fn new(mut model: ChurnModel) -> Result<Self, Error> {
        let prepared = model.estimator.prepare()?;
        model.estimator = Estimator::Blend {
            members: Vec::new(),
        };
        let sources = features::feature_infos()
            .into_iter()
            .map(|f| f.source)
            .collect();
        Ok(Self {
            model,
            prepared,
            sources,
        })
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        Self::new(ChurnModel::from_bytes(bytes)?)
    }

    /// The chosen candidate, e.g. "gbdt" or "ensemble(gbdt+gbdt+linfa_logistic)".
    pub fn family(&self) -> &str {
        &self.model.family
    }

    /// Predicted churn when P(churn) ≥ this.
    pub fn threshold(&self) -> f64 {
        self.model.threshold
    }

    /// Permutation importance by customer field, as measured at training.
    pub fn importance(&self) -> &[Importance] {
        &self.model.importance
    }

    /// What training did: rows, seed, budget, out-of-fold metrics, trials.
    pub fn training(&self) -> &TrainingRecord {
        &self.model.training
    }

    /// Standardized features of many customers, row-major.
    fn matrix(&self, customers: &[Customer]) -> Vec<f64> {
        let mut x = features::encode_all(customers);
        self.model.standardizer.apply(&mut x);
        x
    }

    /// P(churn) for each customer. Large batches are split over the machine's cores.
    pub fn predict(&self, customers: &[Customer]) -> Vec<f64> {
        const PARALLEL_ROWS: usize = 512;
        // Asking for the core count reads cgroup files: only worth it for a large batch.
        if customers.len() < PARALLEL_ROWS {
            return self.predict_chunk(customers);
        }
        let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        if threads == 1 {
            return self.predict_chunk(customers);
        }
        let chunk = customers.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let parts: Vec<_> = customers
                .chunks(chunk)
                .map(|part| scope.spawn(move || self.predict_chunk(part)))
                .collect();
            parts
                .into_iter()
                .flat_map(|p| {
                    p.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        })
    }

    fn predict_chunk(&self, customers: &[Customer]) -> Vec<f64> {
        let x = self.matrix(customers);
        self.prepared
            .scores(&x, features::feature_count())
            .into_iter()
            .map(|s| self.model.calibration.probability(s))
            .collect()
    }

    /// Whether a probability means churn under the model's threshold.
    pub fn label(&self, probability: f64) -> bool {
        probability >= self.model.threshold
    }

    /// The `top` fields that moved this customer's score most, largest magnitude first.
    pub fn explain(&self, customer: &Customer, top: usize) -> Vec<Contribution> {
        self.predict_explained(customer, top).1
    }

    /// P(churn) of one customer and the `top` fields that moved it most, from one encoding of the row.
    pub fn predict_explained(&self, customer: &Customer, top: usize) -> (f64, Vec<Contribution>) {
        let x = self.matrix(std::slice::from_ref(customer));
        let score = self
            .prepared
            .scores(&x, features::feature_count())
            .first()
            .copied()
            .unwrap_or(f64::NAN);
        let probability = self.model.calibration.probability(score);
        let per_feature = self.prepared.contributions(&x);
        let mut by_field: Vec<Contribution> = Vec::new();
        for (source, value) in self.sources.iter().zip(per_feature) {
            match by_field.iter_mut().find(|c| c.field == *source) {
                Some(c) => c.contribution += value,
                None => by_field.push(Contribution {
                    field: (*source).to_owned(),
                    contribution: value,
                }),
            }
        }
        // Calibration scales log-odds by `a`, so contributions are reported on the calibrated scale.
        by_field
            .iter_mut()
            .for_each(|c| c.contribution *= self.model.calibration.a);
        by_field.sort_by(|a, b| b.contribution.abs().total_cmp(&a.contribution.abs()));
        by_field.truncate(top);
        (probability, by_field)
    }

    /// Every metric on labelled customers.
    pub fn evaluate(&self, customers: &[Customer]) -> Result<Metrics, Error> {
        let y = crate::split::labels(customers)?;
        let p = self.predict(customers);
        metrics::evaluate(&y, &p, self.model.threshold).map_err(|e| Error::Model(e.to_string()))
    }
}
