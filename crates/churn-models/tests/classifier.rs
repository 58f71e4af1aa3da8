//! Champion/challenger against a real registry (PostgreSQL + the S3 test server).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::OnceLock;
use std::time::Duration;

use churn_automl::estimators::Estimator;
use churn_automl::{ChurnModel, LoadedModel, TrainOptions};
use churn_core::metrics::Metrics;
use churn_core::{Customer, VersionNumber};
use churn_models::classifier::{self, MODEL_NAME, TrainingInfo};
use churn_registry::Alias;
use churn_registry::{ALIAS_CHANNEL, ModelVersion, Registry};
use churn_testkit::{TestDb, TestS3};

fn data() -> &'static [Customer] {
    static DATA: OnceLock<Vec<Customer>> = OnceLock::new();
    DATA.get_or_init(|| churn_core::read_customers(&churn_testkit::seed_data_path()).unwrap())
}

/// A quickly trained model (small budget, part of the data) and the rows held out from it.
fn good_model() -> &'static (ChurnModel, Vec<Customer>) {
    static MODEL: OnceLock<(ChurnModel, Vec<Customer>)> = OnceLock::new();
    MODEL.get_or_init(|| {
        // The seed file lists churners first, so split by label rather than by position.
        let params = churn_automl::split::SplitParams {
            test_fraction: 0.2,
            seed: 0,
        }
        .check()
        .unwrap();
        let (mut train, mut holdout) =
            churn_automl::split::split_customers(data().to_vec(), &params).unwrap();
        train.truncate(3000);
        holdout.truncate(1000);
        let options = TrainOptions {
            time_budget: Duration::from_secs(2),
            ..TrainOptions::default()
        };
        let model = churn_automl::train(&train, None, options, |_| {}).unwrap();
        (model, holdout)
    })
}

/// The good model with its estimator replaced by one that only looks at longitude: near-random.
fn weak_model() -> ChurnModel {
    let mut model = good_model().0.clone();
    let cols = churn_automl::features::feature_count();
    let mut weights = vec![0.0; cols];
    let longitude = churn_automl::features::feature_infos()
        .iter()
        .position(|f| f.name == "longitude")
        .unwrap();
    weights[longitude] = 0.1;
    model.estimator = Estimator::Linear {
        weights,
        intercept: -1.0,
    };
    model
}

fn info() -> TrainingInfo {
    TrainingInfo {
        data_path: "seed.csv".into(),
        data_sha256: "b".repeat(64),
        train_rows: 3000,
        holdout_rows: 1000,
        split_seed: 0,
        code_version: "test".into(),
        profile: None,
    }
}

async fn setup() -> (Registry, TestDb, TestS3) {
    let db = TestDb::new().await;
    let s3 = TestS3::start().await;
    (Registry::new(db.pool.clone(), s3.open()), db, s3)
}

/// Registers `model` with its metrics on the held-out rows, which promotion reuses.
async fn register(registry: &Registry, model: &ChurnModel) -> (ModelVersion, Metrics) {
    let holdout = LoadedModel::new(model.clone())
        .unwrap()
        .evaluate(&good_model().1)
        .unwrap();
    let version = classifier::register(registry, model, Some(&holdout), &info())
        .await
        .unwrap();
    (version, holdout)
}

/// The version the champion alias points at.
async fn champion_version(registry: &Registry) -> VersionNumber {
    registry
        .by_alias(MODEL_NAME, &Alias::CHAMPION)
        .await
        .unwrap()
        .expect("a champion")
        .version
}

#[tokio::test]
async fn the_first_model_becomes_champion_with_its_run_recorded() {
    let (registry, _db, _s3) = setup().await;
    let (version, loaded) = register(&registry, &good_model().0).await;
    assert_eq!(version.version, 1);
    assert_eq!(version.flavor, churn_automl::FLAVOR);
    let stored = churn_core::VersionMetrics::from_json(&version.metrics.0);
    assert!(stored.test_roc_auc.unwrap() > 0.8);
    assert!(stored.feature_importance.is_some());
    let run = registry.get_run(version.run_id.unwrap()).await.unwrap();
    assert_eq!(run.status, churn_registry::RunStatus::Finished);
    assert_eq!(run.training_rows, Some(3000));
    let metrics = registry.run_metrics(run.run_id).await.unwrap();
    assert!(metrics.iter().any(|(k, _)| k == "cv_roc_auc"));
    assert!(metrics.iter().any(|(k, _)| k == "trial_cv_roc_auc"));

    let decision =
        classifier::promote_if_better(&registry, &version, &loaded, &good_model().1, 0.0, false)
            .await
            .unwrap();
    assert!(decision.promoted);
    assert_eq!(decision.reason, "there was no champion");
    assert_eq!(champion_version(&registry).await, 1);
}

#[tokio::test]
async fn a_worse_candidate_stays_challenger_and_the_decision_keeps_its_evidence() {
    let (registry, _db, _s3) = setup().await;
    let (good, good_loaded) = register(&registry, &good_model().0).await;
    classifier::promote_if_better(&registry, &good, &good_loaded, &good_model().1, 0.0, false)
        .await
        .unwrap();
    let (weak, weak_loaded) = register(&registry, &weak_model()).await;
    let decision =
        classifier::promote_if_better(&registry, &weak, &weak_loaded, &good_model().1, 0.0, false)
            .await
            .unwrap();
    assert!(!decision.promoted, "{decision:?}");
    assert_eq!(decision.champion_version, Some(v(1)));
    assert!(decision.candidate_score.unwrap() < decision.champion_score.unwrap());
    assert_eq!(decision.evidence["holdout_rows"], 1000);
    assert!(decision.evidence["champion"]["roc_auc"].is_number());
    assert_eq!(champion_version(&registry).await, 1);
    assert_eq!(
        registry
            .by_alias(MODEL_NAME, &Alias::CHALLENGER)
            .await
            .unwrap()
            .unwrap()
            .version,
        2
    );
    let stored = registry.decisions(MODEL_NAME).await.unwrap();
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0].candidate_version, 2);
}

#[tokio::test]
async fn a_better_candidate_held_for_live_evidence_waits_as_challenger_until_it_wins_live() {
    let (registry, _db, _s3) = setup().await;
    let (weak, weak_loaded) = register(&registry, &weak_model()).await;
    classifier::promote_if_better(&registry, &weak, &weak_loaded, &good_model().1, 0.0, false)
        .await
        .unwrap();
    let (good, good_loaded) = register(&registry, &good_model().0).await;
    let decision =
        classifier::promote_if_better(&registry, &good, &good_loaded, &good_model().1, 0.0, true)
            .await
            .unwrap();
    assert!(!decision.promoted, "{decision:?}");
    assert!(decision.candidate_score.unwrap() > decision.champion_score.unwrap());
    assert!(
        decision.reason.contains("held as challenger"),
        "{}",
        decision.reason
    );
    assert_eq!(decision.evidence["held_for_live"], true);
    assert_eq!(champion_version(&registry).await, 1);

    // Live: the two versions' metrics on the same customers. A loss keeps everything as it is…
    let live = |champion: &Metrics, challenger: &Metrics| classifier::LiveComparison {
        champion_version: v(1),
        challenger_version: v(2),
        champion: *champion,
        challenger: *challenger,
        window: "1d".into(),
    };
    let (w, g) = (weak_loaded, good_loaded);
    let lost = classifier::decide_on_live(&registry, &live(&g, &w), 0.0)
        .await
        .unwrap()
        .unwrap();
    assert!(!lost.promoted);
    assert_eq!(champion_version(&registry).await, 1);
    // …a win promotes it, takes its challenger alias away, and is stored with its evidence.
    let won = classifier::decide_on_live(&registry, &live(&w, &g), 0.0)
        .await
        .unwrap()
        .unwrap();
    assert!(won.promoted, "{won:?}");
    assert_eq!(champion_version(&registry).await, 2);
    assert_eq!(
        registry
            .by_alias(MODEL_NAME, &Alias::CHALLENGER)
            .await
            .unwrap(),
        None
    );
    let stored = registry.decisions(MODEL_NAME).await.unwrap();
    assert_eq!(stored[0].evidence["live"], true);
    assert!(
        stored[0].reason.starts_with("live (1d window"),
        "{}",
        stored[0].reason
    );
    // A comparison made against a champion that has since moved decides nothing.
    assert_eq!(
        classifier::decide_on_live(&registry, &live(&w, &g), 0.0)
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn a_margin_keeps_an_equal_candidate_out() {
    let (registry, _db, _s3) = setup().await;
    let (first, loaded) = register(&registry, &good_model().0).await;
    classifier::promote_if_better(&registry, &first, &loaded, &good_model().1, 0.0, false)
        .await
        .unwrap();
    let (same, same_loaded) = register(&registry, &good_model().0).await;
    let decision =
        classifier::promote_if_better(&registry, &same, &same_loaded, &good_model().1, 0.01, false)
            .await
            .unwrap();
    assert!(!decision.promoted);
    assert!(
        decision.reason.contains("does not beat"),
        "{}",
        decision.reason
    );
}

#[tokio::test]
async fn concurrent_promotions_leave_exactly_one_champion_the_better_one() {
    let (registry, db, _s3) = setup().await;
    let (weak, weak_loaded) = register(&registry, &weak_model()).await;
    let (good, good_loaded) = register(&registry, &good_model().0).await;
    let mut listener = sqlx::postgres::PgListener::connect_with(&db.pool)
        .await
        .unwrap();
    listener.listen(ALIAS_CHANNEL).await.unwrap();

    let holdout = &good_model().1;
    let (a, b) = tokio::join!(
        classifier::promote_if_better(&registry, &weak, &weak_loaded, holdout, 0.0, false),
        classifier::promote_if_better(&registry, &good, &good_loaded, holdout, 0.0, false),
    );
    a.unwrap();
    b.unwrap();
    let champions: Vec<i32> = sqlx::query_scalar(
        "select version from registry.aliases where model_name = $1 and alias = 'champion'",
    )
    .bind(MODEL_NAME)
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(champions, vec![good.version.get()]);
    let decisions = registry.decisions(MODEL_NAME).await.unwrap();
    assert_eq!(decisions.len(), 2);
    // One consistent history: the later decision was judged against the champion the earlier one left.
    let (later, earlier) = (&decisions[0], &decisions[1]);
    assert_eq!(earlier.champion_version, None);
    assert!(earlier.promoted);
    assert_eq!(later.champion_version, Some(earlier.candidate_version));
    // At least one champion move was announced.
    let note = tokio::time::timeout(Duration::from_secs(5), listener.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(note.payload().contains("champion"));
}

#[tokio::test]
async fn an_unreachable_store_fails_the_decision_and_leaves_the_champion_alone() {
    let (registry, _db, mut s3) = setup().await;
    let (first, metrics) = register(&registry, &good_model().0).await;
    classifier::promote_if_better(&registry, &first, &metrics, &good_model().1, 0.0, false)
        .await
        .unwrap();
    let (candidate, candidate_metrics) = register(&registry, &weak_model()).await;
    // A transient outage of the object store is not proof that the champion is gone.
    s3.stop().await;
    let err = classifier::promote_if_better(
        &registry,
        &candidate,
        &candidate_metrics,
        &good_model().1,
        0.0,
        false,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("object store"), "{err}");
    assert_eq!(champion_version(&registry).await, 1);
    assert!(
        registry
            .by_alias(MODEL_NAME, &Alias::CHALLENGER)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(registry.decisions(MODEL_NAME).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_champion_whose_artifact_is_proven_missing_is_replaced_and_the_reason_recorded() {
    let (registry, _db, s3) = setup().await;
    let (first, metrics) = register(&registry, &good_model().0).await;
    classifier::promote_if_better(&registry, &first, &metrics, &good_model().1, 0.0, false)
        .await
        .unwrap();
    let (candidate, candidate_metrics) = register(&registry, &weak_model()).await;
    std::fs::remove_file(s3.bucket_dir().join(&first.artifact_key)).unwrap();
    let decision = classifier::promote_if_better(
        &registry,
        &candidate,
        &candidate_metrics,
        &good_model().1,
        0.0,
        false,
    )
    .await
    .unwrap();
    assert!(decision.promoted, "{decision:?}");
    assert!(decision.reason.contains("missing"), "{}", decision.reason);
    assert!(decision.evidence["champion_unusable"].is_string());
    assert_eq!(champion_version(&registry).await, candidate.version);
}

/// A version number in a test (panics on 0: the tests name real versions).
fn v(n: i32) -> VersionNumber {
    VersionNumber::new(n).expect("versions count from 1")
}
