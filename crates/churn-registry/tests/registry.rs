//! The registry against a real PostgreSQL and a real S3 server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use churn_registry::{
    ALIAS_CHANNEL, AliasEvent, Error, Lineage, ModelRef, NewVersion, Registry, Selector,
};
use churn_testkit::{TestDb, TestS3};
use serde_json::json;

fn new_version(name: &str, artifact: &[u8]) -> NewVersion {
    NewVersion {
        model_name: name.to_owned(),
        flavor: "test/bytes".to_owned(),
        artifact: artifact.to_vec(),
        description: "a test version".to_owned(),
        metrics: json!({"roc_auc": 0.85}),
        lineage: Lineage {
            training_rows: Some(7043),
            training_data_sha256: Some("a".repeat(64)),
            code_version: "test".to_owned(),
            parent_version: None,
            extra: Default::default(),
        },
        run_id: None,
    }
}

async fn registry() -> (Registry, TestDb, TestS3) {
    let db = TestDb::new().await;
    let s3 = TestS3::start().await;
    (Registry::new(db.pool.clone(), s3.open()), db, s3)
}

#[tokio::test]
async fn a_registered_artifact_loads_back_with_its_checksum_verified() {
    let (registry, _db, s3) = registry().await;
    let v = registry
        .register(new_version("churn-classifier", b"model bytes"))
        .await
        .unwrap();
    assert_eq!(v.version, 1);
    assert_eq!(
        v.artifact_sha256,
        churn_registry::sha256_hex(b"model bytes")
    );
    assert!(s3.bucket_dir().join(&v.artifact_key).exists());
    let reference: ModelRef = "registry:churn-classifier/1".parse().unwrap();
    let (bytes, loaded) = registry.load(&reference).await.unwrap();
    assert_eq!(bytes, b"model bytes");
    assert_eq!(loaded.unwrap(), v);
}

#[tokio::test]
async fn a_tampered_artifact_is_refused() {
    let (registry, _db, s3) = registry().await;
    let v = registry
        .register(new_version("churn-classifier", b"honest"))
        .await
        .unwrap();
    std::fs::write(s3.bucket_dir().join(&v.artifact_key), b"tampered").unwrap();
    let err = registry.load_artifact(&v).await.unwrap_err();
    assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err}");
}

#[tokio::test]
async fn concurrent_registrations_get_distinct_increasing_versions() {
    let (registry, _db, _s3) = registry().await;
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let registry = registry.clone();
            tokio::spawn(async move {
                registry
                    .register(new_version(
                        "churn-classifier",
                        format!("artifact {i}").as_bytes(),
                    ))
                    .await
            })
        })
        .collect();
    let mut versions = Vec::new();
    for t in tasks {
        versions.push(t.await.unwrap().unwrap().version);
    }
    versions.sort_unstable();
    assert_eq!(versions, vec![1, 2, 3, 4, 5, 6]);
    let listed: Vec<i32> = registry
        .list_versions("churn-classifier")
        .await
        .unwrap()
        .iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(listed, vec![6, 5, 4, 3, 2, 1]);
}

#[tokio::test]
async fn moving_an_alias_notifies_listeners() {
    let (registry, db, _s3) = registry().await;
    registry
        .register(new_version("churn-classifier", b"v1"))
        .await
        .unwrap();
    registry
        .register(new_version("churn-classifier", b"v2"))
        .await
        .unwrap();
    let mut listener = sqlx::postgres::PgListener::connect_with(&db.pool)
        .await
        .unwrap();
    listener.listen(ALIAS_CHANNEL).await.unwrap();

    registry
        .set_alias("churn-classifier", "champion", 2)
        .await
        .unwrap();
    let note = tokio::time::timeout(std::time::Duration::from_secs(5), listener.recv())
        .await
        .expect("a notification within 5 s")
        .unwrap();
    let event: AliasEvent = serde_json::from_str(note.payload()).unwrap();
    assert_eq!(
        event,
        AliasEvent {
            model: "churn-classifier".into(),
            alias: "champion".into(),
            version: Some(2)
        }
    );
    let champion = registry
        .resolve("churn-classifier", &Selector::Alias("champion".into()))
        .await
        .unwrap();
    assert_eq!(champion.version, 2);
}

#[tokio::test]
async fn concurrent_alias_moves_leave_exactly_one_champion() {
    let (registry, db, _s3) = registry().await;
    for i in 0..5 {
        registry
            .register(new_version("churn-classifier", format!("v{i}").as_bytes()))
            .await
            .unwrap();
    }
    let tasks: Vec<_> = (1..=5)
        .map(|v| {
            let registry = registry.clone();
            tokio::spawn(async move { registry.set_alias("churn-classifier", "champion", v).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let rows: Vec<(String, i32)> = sqlx::query_as(
        "select alias, version from registry.aliases where model_name = 'churn-classifier'",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 1);
    assert!((1..=5).contains(&rows[0].1));
}

#[tokio::test]
async fn an_alias_to_a_missing_version_is_refused_and_nothing_changes() {
    let (registry, _db, _s3) = registry().await;
    registry
        .register(new_version("churn-classifier", b"v1"))
        .await
        .unwrap();
    registry
        .set_alias("churn-classifier", "champion", 1)
        .await
        .unwrap();
    let err = registry
        .set_alias("churn-classifier", "champion", 9)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::VersionNotFound { version: 9, .. }),
        "{err}"
    );
    assert_eq!(
        registry.aliases("churn-classifier").await.unwrap(),
        vec![("champion".into(), 1)]
    );
}

#[tokio::test]
async fn set_alias_if_absent_only_sets_the_first_time() {
    let (registry, _db, _s3) = registry().await;
    registry
        .register(new_version("synthesizer", b"v1"))
        .await
        .unwrap();
    registry
        .register(new_version("synthesizer", b"v2"))
        .await
        .unwrap();
    assert!(
        registry
            .set_alias_if_absent("synthesizer", "champion", 1)
            .await
            .unwrap()
    );
    assert!(
        !registry
            .set_alias_if_absent("synthesizer", "champion", 2)
            .await
            .unwrap()
    );
    let models = registry.list_models().await.unwrap();
    assert_eq!(models[0].latest_version, Some(2));
    assert_eq!(models[0].aliases.0["champion"], json!(1));
}

#[tokio::test]
async fn bad_names_and_missing_models_get_specific_errors() {
    let (registry, _db, _s3) = registry().await;
    let err = registry
        .register(new_version("Bad Name", b"x"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidName {
                what: "model name",
                ..
            }
        ),
        "{err}"
    );
    let err = registry.list_versions("nope").await.unwrap_err();
    assert!(matches!(err, Error::ModelNotFound { .. }), "{err}");
    let err = registry
        .resolve("nope", &Selector::Alias("champion".into()))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AliasNotFound { .. }), "{err}");
}
