//! The registry as the services' own roles (migration V11): the synthesizer registers its model and sets
//! its first alias but cannot move one; the classifier loads what an alias names but cannot register.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use churn_core::VersionNumber;
use churn_registry::{Error, Lineage, ModelRef, NewVersion, Registry, Selector};
use churn_testkit::{TestDb, TestS3};
use serde_json::json;

fn new_version(name: &str, artifact: &[u8]) -> NewVersion {
    NewVersion {
        model_name: name.to_owned(),
        flavor: "test/bytes".to_owned(),
        artifact: artifact.to_vec(),
        description: "a test version".to_owned(),
        metrics: json!({}),
        lineage: Lineage {
            training_rows: Some(7043),
            training_data_sha256: Some("a".repeat(64)),
            code_version: "test".to_owned(),
            parent_version: None,
            extra: Default::default(),
        },
        run_id: None,
        profile: None,
    }
}

fn v(n: i32) -> VersionNumber {
    VersionNumber::new(n).unwrap()
}

/// Whether `e` is PostgreSQL's refusal for want of a privilege (42501).
fn is_denied(e: &Error) -> bool {
    match e {
        Error::Database(db) => db
            .as_database_error()
            .and_then(|d| d.code())
            .is_some_and(|c| c == "42501"),
        _ => false,
    }
}

#[tokio::test]
async fn the_synthesizer_registers_its_versions_and_first_alias_but_cannot_move_an_alias() {
    let db = TestDb::new().await;
    let s3 = TestS3::start().await;
    let synthesizer = Registry::new(db.pool_as("churn_synthesizer").await, s3.open());
    synthesizer
        .register(new_version("synthesizer", b"v1"))
        .await
        .unwrap();
    synthesizer
        .register(new_version("synthesizer", b"v2"))
        .await
        .unwrap();
    assert!(
        synthesizer
            .set_alias_if_absent("synthesizer", "champion", v(1))
            .await
            .unwrap()
    );
    let lock = synthesizer.lock_model("synthesizer").await.unwrap();
    lock.release().await.unwrap();
    let current = ModelRef::Registry {
        name: "synthesizer".to_owned(),
        selector: Selector::Alias("champion".to_owned()),
    };
    let (bytes, _) = synthesizer.load(&current).await.unwrap();
    assert_eq!(bytes, b"v1");

    let moved = synthesizer
        .set_alias("synthesizer", "champion", v(2))
        .await
        .unwrap_err();
    assert!(
        is_denied(&moved),
        "moving an alias must be refused: {moved}"
    );
    let after = synthesizer
        .by_alias("synthesizer", "champion")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.version, v(1));
}

#[tokio::test]
async fn the_classifier_loads_the_champion_but_cannot_register_or_move_an_alias() {
    let db = TestDb::new().await;
    let s3 = TestS3::start().await;
    let owner = Registry::new(db.pool.clone(), s3.open());
    owner
        .register(new_version("churn-classifier", b"model"))
        .await
        .unwrap();
    owner
        .set_alias("churn-classifier", "champion", v(1))
        .await
        .unwrap();

    let classifier = Registry::new(db.pool_as("churn_classifier").await, s3.open());
    let champion = ModelRef::Registry {
        name: "churn-classifier".to_owned(),
        selector: Selector::Alias("champion".to_owned()),
    };
    let (bytes, version) = classifier.load(&champion).await.unwrap();
    assert_eq!(bytes, b"model");
    assert_eq!(version.unwrap().version, v(1));

    let registered = classifier
        .register(new_version("churn-classifier", b"mine"))
        .await
        .unwrap_err();
    assert!(
        is_denied(&registered),
        "registering must be refused: {registered}"
    );
    let moved = classifier
        .set_alias("churn-classifier", "challenger", v(1))
        .await
        .unwrap_err();
    assert!(
        is_denied(&moved),
        "setting an alias must be refused: {moved}"
    );
}
