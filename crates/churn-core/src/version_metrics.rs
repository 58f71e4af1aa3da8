//! The metrics a registered model version is stored with (`registry.model_versions.metrics`), typed.
//!
//! The stored JSON is a flat object: the out-of-fold scores as `cv_<metric>`, the held-out scores as
//! `test_<metric>`, the decision `threshold` and the `feature_importance` of a classifier, the
//! `fit_seconds` of a synthesizer. Readers outside Rust depend on that shape (the read-only views, dbt's
//! staging model, Grafana), so [`VersionMetrics`] serializes to exactly those keys, leaves absent ones
//! out, and keeps any key it does not know in [`VersionMetrics::other`].

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::metrics::Metrics;

/// How much one customer field matters to a model: the drop in ROC AUC when its values are shuffled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Importance {
    pub field: String,
    /// Drop in ROC AUC when the field's values are shuffled across rows.
    pub importance: f64,
}

/// A model version's stored metrics. Every field is optional: a synthesizer has none of the scores, a
/// classifier registered without held-out rows has no `test_` ones. A stored value that is not a number
/// (e.g. `null` for a NaN score) reads as `None`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VersionMetrics {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "number"
    )]
    pub cv_accuracy: Option<f64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "number"
    )]
    pub cv_precision: Option<f64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "number"
    )]
    pub cv_recall: Option<f64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "number"
    )]
    pub cv_f1: Option<f64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "number"
    )]
    pub cv_log_loss: Option<f64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "number"
    )]
    pub cv_brier: Option<f64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "number"
    )]
    pub cv_roc_auc: Option<f64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "number"
    )]
    pub cv_pr_auc: Option<f64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "number"
    )]
    pub test_accuracy: Option<f64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "number"
    )]
    pub test_precision: Option<f64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "number"
    )]
    pub test_recall: Option<f64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "number"
    )]
    pub test_f1: Option<f64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "number"
    )]
    pub test_log_loss: Option<f64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "number"
    )]
    pub test_brier: Option<f64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "number"
    )]
    pub test_roc_auc: Option<f64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "number"
    )]
    pub test_pr_auc: Option<f64>,
    /// A classifier predicts churn when P(churn) ≥ this.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "number"
    )]
    pub threshold: Option<f64>,
    /// A classifier's permutation importance by customer field, as measured at training.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "importance"
    )]
    pub feature_importance: Option<Vec<Importance>>,
    /// How long a synthesizer's fit took.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "number"
    )]
    pub fit_seconds: Option<f64>,
    /// Keys this type does not name, kept so that reading and writing back loses nothing.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// The named scores of one evaluation, in the order they are logged to a run.
fn scores(m: &Metrics) -> [(&'static str, Option<f64>); 8] {
    [
        ("accuracy", Some(m.accuracy)),
        ("precision", Some(m.precision)),
        ("recall", Some(m.recall)),
        ("f1", Some(m.f1)),
        ("log_loss", Some(m.log_loss)),
        ("brier", Some(m.brier)),
        ("roc_auc", m.roc_auc),
        ("pr_auc", m.pr_auc),
    ]
}

impl VersionMetrics {
    /// A classifier's metrics: the out-of-fold scores, the held-out ones when there were held-out rows,
    /// the threshold and the importance.
    pub fn classifier(
        cv: &Metrics,
        test: Option<&Metrics>,
        threshold: f64,
        importance: Vec<Importance>,
    ) -> Self {
        let mut out = Self {
            threshold: Some(threshold),
            feature_importance: Some(importance),
            ..Self::default()
        };
        out.set_scores(Prefix::Cv, cv);
        if let Some(test) = test {
            out.set_scores(Prefix::Test, test);
        }
        out
    }

    /// A synthesizer's metrics: how long its fit took.
    pub fn synthesizer(fit_seconds: f64) -> Self {
        Self {
            fit_seconds: Some(fit_seconds),
            ..Self::default()
        }
    }

    /// Reads stored metrics. An object that does not fit (which the registry's check constraint rules
    /// out) reads as no metrics rather than failing the reader.
    pub fn from_json(value: &Value) -> Self {
        Self::deserialize(value).unwrap_or_default()
    }

    /// The stored (JSON object) form.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|_| Value::Object(Map::new()))
    }

    /// The scores under their stored names (`cv_accuracy`, …, `test_pr_auc`), cross-validated first,
    /// leaving out absent ones: what a training run logs.
    pub fn scores(&self) -> Vec<(&'static str, f64)> {
        [
            ("cv_accuracy", self.cv_accuracy),
            ("cv_precision", self.cv_precision),
            ("cv_recall", self.cv_recall),
            ("cv_f1", self.cv_f1),
            ("cv_log_loss", self.cv_log_loss),
            ("cv_brier", self.cv_brier),
            ("cv_roc_auc", self.cv_roc_auc),
            ("cv_pr_auc", self.cv_pr_auc),
            ("test_accuracy", self.test_accuracy),
            ("test_precision", self.test_precision),
            ("test_recall", self.test_recall),
            ("test_f1", self.test_f1),
            ("test_log_loss", self.test_log_loss),
            ("test_brier", self.test_brier),
            ("test_roc_auc", self.test_roc_auc),
            ("test_pr_auc", self.test_pr_auc),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect()
    }

    fn set_scores(&mut self, prefix: Prefix, m: &Metrics) {
        let [
            accuracy,
            precision,
            recall,
            f1,
            log_loss,
            brier,
            roc_auc,
            pr_auc,
        ] = scores(m).map(|(_, v)| v);
        let slots = match prefix {
            Prefix::Cv => [
                &mut self.cv_accuracy,
                &mut self.cv_precision,
                &mut self.cv_recall,
                &mut self.cv_f1,
                &mut self.cv_log_loss,
                &mut self.cv_brier,
                &mut self.cv_roc_auc,
                &mut self.cv_pr_auc,
            ],
            Prefix::Test => [
                &mut self.test_accuracy,
                &mut self.test_precision,
                &mut self.test_recall,
                &mut self.test_f1,
                &mut self.test_log_loss,
                &mut self.test_brier,
                &mut self.test_roc_auc,
                &mut self.test_pr_auc,
            ],
        };
        let values = [
            accuracy, precision, recall, f1, log_loss, brier, roc_auc, pr_auc,
        ];
        for (slot, value) in slots.into_iter().zip(values) {
            *slot = value;
        }
    }
}

/// Which evaluation a group of scores comes from.
#[derive(Debug, Clone, Copy)]
enum Prefix {
    Cv,
    Test,
}

/// A number, or `None` for anything else (`null` is how JSON stores a NaN score).
fn number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    Ok(Option::<Value>::deserialize(deserializer)?.and_then(|v| v.as_f64()))
}

/// A list of importances, or `None` for anything else.
fn importance<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<Importance>>, D::Error> {
    Ok(Option::<Value>::deserialize(deserializer)?.and_then(|v| serde_json::from_value(v).ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(roc_auc: Option<f64>) -> Metrics {
        Metrics {
            n: 10,
            positives: 4,
            threshold: 0.4,
            accuracy: 0.8,
            precision: 0.75,
            recall: 0.5,
            f1: f64::NAN,
            log_loss: 0.45,
            roc_auc,
            pr_auc: None,
            brier: 0.15,
        }
    }

    /// The object the classifier's registration built by hand before this type existed.
    fn stored_by_hand(cv: &Metrics, test: &Metrics) -> Value {
        let mut object = Map::new();
        for (prefix, m) in [("cv_", cv), ("test_", test)] {
            for (name, value) in scores(m) {
                if let Some(v) = value {
                    object.insert(format!("{prefix}{name}"), serde_json::json!(v));
                }
            }
        }
        object.insert("threshold".into(), serde_json::json!(0.4));
        object.insert(
            "feature_importance".into(),
            serde_json::json!([{"field": "contract", "importance": 0.1}]),
        );
        Value::Object(object)
    }

    #[test]
    fn a_classifier_serializes_to_the_object_stored_before() {
        let (cv, test) = (metrics(Some(0.84)), metrics(None));
        let typed = VersionMetrics::classifier(
            &cv,
            Some(&test),
            0.4,
            vec![Importance {
                field: "contract".into(),
                importance: 0.1,
            }],
        );
        assert_eq!(typed.to_json(), stored_by_hand(&cv, &test));
        assert_eq!(typed.test_roc_auc, None);
        assert_eq!(typed.cv_roc_auc, Some(0.84));
    }

    #[test]
    fn reading_and_writing_back_keeps_unknown_keys_and_reads_nulls_as_absent() {
        let stored = serde_json::json!({
            "test_roc_auc": 0.83, "cv_f1": null, "threshold": 0.45, "note": "hand-made", "n": 3
        });
        let typed = VersionMetrics::from_json(&stored);
        assert_eq!(typed.test_roc_auc, Some(0.83));
        assert_eq!(typed.cv_f1, None);
        assert_eq!(typed.threshold, Some(0.45));
        assert_eq!(typed.other["note"], "hand-made");
        let back = typed.to_json();
        assert_eq!(back["note"], "hand-made");
        assert_eq!(back["n"], 3);
        assert!(back.get("cv_f1").is_none());
    }

    #[test]
    fn a_synthesizer_stores_only_its_fit_time() {
        assert_eq!(
            VersionMetrics::synthesizer(1.5).to_json(),
            serde_json::json!({"fit_seconds": 1.5})
        );
        assert!(VersionMetrics::synthesizer(1.5).scores().is_empty());
    }

    #[test]
    fn scores_are_listed_under_their_stored_names_cross_validated_first() {
        let typed = VersionMetrics::classifier(&metrics(Some(0.8)), None, 0.4, Vec::new());
        let names: Vec<&str> = typed.scores().iter().map(|(k, _)| *k).collect();
        assert_eq!(
            names,
            [
                "cv_accuracy",
                "cv_precision",
                "cv_recall",
                "cv_f1",
                "cv_log_loss",
                "cv_brier",
                "cv_roc_auc"
            ]
        );
    }
}
