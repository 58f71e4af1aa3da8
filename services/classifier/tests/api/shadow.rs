//! Shadow scoring: the registry's challenger scores batches beside the champion, never instead of it.

use std::time::Duration;

use churn_automl::LoadedModel;
use churn_models::classifier;
use serde_json::{Value, json};

use crate::{customer_json, loaded, post, registry, seed, spawn_app, spawn_with_champion};

/// A second model, different from the champion: trained on another half of the seed, cached like
/// [`crate::model`].
fn challenger_model() -> churn_automl::ChurnModel {
    let cache = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("classifier-test-challenger.json");
    if let Ok(bytes) = std::fs::read(&cache)
        && let Ok(model) = churn_automl::ChurnModel::from_bytes(&bytes)
    {
        return model;
    }
    let params = churn_automl::split::SplitParams {
        test_fraction: 0.5,
        seed: 11,
    }
    .check()
    .unwrap();
    let (train, _) = churn_automl::split::split_customers(seed(), &params).unwrap();
    let options = churn_automl::TrainOptions {
        time_budget: Duration::from_secs(1),
        seed: 11,
        ..churn_automl::TrainOptions::default()
    };
    let model = churn_automl::train(&train, None, options, |_| {}).unwrap();
    let tmp = cache.with_extension(format!("{}.tmp", std::process::id()));
    std::fs::write(&tmp, model.to_bytes().unwrap()).unwrap();
    std::fs::rename(&tmp, &cache).unwrap();
    model
}

/// Registers [`challenger_model`] as version 2 and names it challenger.
pub(crate) async fn register_challenger(app: &churn_service::testing::TestService) {
    let registry = registry(app);
    let info = classifier::TrainingInfo {
        data_path: "seed.csv".into(),
        data_sha256: "d".repeat(64),
        train_rows: 3500,
        holdout_rows: 0,
        split_seed: 0,
        code_version: "test".into(),
        profile: None,
    };
    let model = challenger_model();
    let version = classifier::register(&registry, &model, None, &info)
        .await
        .unwrap();
    assert_eq!(version.version, 2);
    registry
        .set_alias(
            classifier::MODEL_NAME,
            &churn_registry::Alias::CHALLENGER,
            version.version,
        )
        .await
        .unwrap();
}

fn batch() -> Value {
    Value::Array(seed().iter().step_by(500).map(customer_json).collect())
}

/// Posts the batch with `?shadow=true` until `done` holds for the answer (the shadow loads in the
/// background), up to 5 s.
async fn shadow_batch_until(
    app: &churn_service::testing::TestService,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (status, body) = post(app, "/predict/batch?shadow=true", &batch()).await;
        assert_eq!(status, 200, "{body}");
        if done(&body) {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the shadow never reached the expected state: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_batch_asking_for_shadow_scores_gets_the_challengers_beside_the_champions() {
    let app = spawn_with_champion(&[]).await;
    // No challenger yet: the batch is answered without shadow scores.
    let (status, body) = post(&app, "/predict/batch?shadow=true", &batch()).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("shadow").is_none(), "{body}");

    register_challenger(&app).await;
    let body = shadow_batch_until(&app, |b| b.get("shadow").is_some()).await;
    let customers: Vec<_> = seed().into_iter().step_by(500).collect();
    let champion = loaded().predict(&customers);
    let challenger = LoadedModel::new(challenger_model())
        .unwrap()
        .predict(&customers);
    assert_eq!(body["model_version"], 1, "the champion still decides");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), customers.len());
    for (item, p) in results.iter().zip(&champion) {
        assert!((item["churn_probability"].as_f64().unwrap() - p).abs() < 1e-12);
    }
    let shadow = &body["shadow"];
    assert_eq!(shadow["model_name"], classifier::MODEL_NAME);
    assert_eq!(shadow["model_version"], 2);
    assert!(shadow["threshold"].is_number());
    let scores = shadow["churn_probabilities"].as_array().unwrap();
    assert_eq!(scores.len(), customers.len());
    for (score, p) in scores.iter().zip(&challenger) {
        assert!((score.as_f64().unwrap() - p).abs() < 1e-12);
    }
    assert_ne!(
        challenger, champion,
        "two different models, or the test proves nothing"
    );

    // Without the flag nothing changes for existing callers.
    let (_, plain) = post(&app, "/predict/batch", &batch()).await;
    assert!(plain.get("shadow").is_none(), "{plain}");
    let ready: Value = app.get("/ready").await.json().await.unwrap();
    let check = &ready["checks"]["shadow_model"];
    assert_eq!(check["status"], "ok", "{ready}");
    assert_eq!(check["critical"], false, "{ready}");
    assert_eq!(check["detail"], "version 2", "{ready}");

    // The challenger alias removed: the shadow goes too.
    registry(&app)
        .delete_alias(classifier::MODEL_NAME, &churn_registry::Alias::CHALLENGER)
        .await
        .unwrap();
    shadow_batch_until(&app, |b| b.get("shadow").is_none()).await;
    app.shutdown().await;
}

#[tokio::test]
async fn an_invalid_customer_has_no_shadow_score_and_the_others_keep_theirs() {
    let app = spawn_with_champion(&[]).await;
    register_challenger(&app).await;
    let mut customers = batch();
    customers[1]["tenure_months"] = json!(-4);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let body = loop {
        let (status, body) = post(&app, "/predict/batch?shadow=true", &customers).await;
        assert_eq!(status, 200, "{body}");
        if body.get("shadow").is_some() {
            break body;
        }
        assert!(tokio::time::Instant::now() < deadline, "no shadow: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let scores = body["shadow"]["churn_probabilities"].as_array().unwrap();
    assert_eq!(scores.len(), customers.as_array().unwrap().len());
    assert!(scores[1].is_null(), "{body}");
    assert!(scores[0].is_number() && scores[2].is_number());
    app.shutdown().await;
}

#[tokio::test]
async fn shadow_scoring_switched_off_ignores_the_challenger() {
    let app = spawn_app(&[("CLASSIFIER_SHADOW_MODEL", "off")]).await;
    let version = crate::register_champion(&app, &crate::model()).await;
    crate::wait_for_version(&app, version.version.get(), Duration::from_secs(5)).await;
    register_challenger(&app).await;
    // Give a (wrongly) enabled shadow time to load before concluding it never does.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, body) = post(&app, "/predict/batch?shadow=true", &batch()).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("shadow").is_none(), "{body}");
    let ready: Value = app.get("/ready").await.json().await.unwrap();
    assert!(ready["checks"].get("shadow_model").is_none(), "{ready}");
    app.shutdown().await;
}
