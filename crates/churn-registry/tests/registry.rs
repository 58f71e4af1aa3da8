//! The registry against a real PostgreSQL and a real S3 server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use churn_core::VersionNumber;
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
        profile: None,
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
async fn a_profile_registered_with_a_version_loads_back_verified_and_survives_garbage_collection() {
    let (registry, _db, s3) = registry().await;
    let bare = registry
        .register(new_version("churn-classifier", b"no profile"))
        .await
        .unwrap();
    assert_eq!(registry.load_profile(&bare).await.unwrap(), None);
    let mut new = new_version("churn-classifier", b"with profile");
    new.profile = Some(b"{\"schema_version\":1}".to_vec());
    let v = registry.register(new).await.unwrap();
    let key = v.profile_key.clone().expect("a profile key");
    assert_eq!(key, format!("{}.profile.json", v.artifact_key));
    assert_eq!(
        registry.load_profile(&v).await.unwrap().as_deref(),
        Some(&b"{\"schema_version\":1}"[..])
    );
    let report = registry
        .collect_garbage(std::time::Duration::ZERO, false)
        .await
        .unwrap();
    assert!(report.orphans.is_empty(), "{report:?}");
    assert_eq!(report.referenced, 3, "two artifacts and one profile");
    std::fs::write(s3.bucket_dir().join(&key), b"tampered").unwrap();
    let err = registry.load_profile(&v).await.unwrap_err();
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
    let listed: Vec<VersionNumber> = registry
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
        .set_alias("churn-classifier", "champion", v(2))
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
            version: Some(v(2))
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
        .map(|n| {
            let registry = registry.clone();
            tokio::spawn(async move {
                registry
                    .set_alias("churn-classifier", "champion", v(n))
                    .await
            })
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
        .set_alias("churn-classifier", "champion", v(1))
        .await
        .unwrap();
    let err = registry
        .set_alias("churn-classifier", "champion", v(9))
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
            .set_alias_if_absent("synthesizer", "champion", v(1))
            .await
            .unwrap()
    );
    assert!(
        !registry
            .set_alias_if_absent("synthesizer", "champion", v(2))
            .await
            .unwrap()
    );
    let models = registry.list_models().await.unwrap();
    assert_eq!(models[0].latest_version, Some(v(2)));
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

fn decision(
    candidate: i32,
    judged_against: Option<i32>,
    promoted: bool,
) -> churn_registry::Decision {
    churn_registry::Decision {
        model_name: "churn-classifier".to_owned(),
        candidate_version: v(candidate),
        champion_version: judged_against.map(v),
        metric: "roc_auc".to_owned(),
        candidate_score: Some(0.9),
        champion_score: None,
        margin: 0.0,
        promoted,
        reason: "test".to_owned(),
        evidence: json!({}),
    }
}

#[tokio::test]
async fn a_decision_judged_against_a_champion_that_moved_is_refused_and_writes_nothing() {
    let (registry, _db, _s3) = registry().await;
    for bytes in [b"v1", b"v2", b"v3"] {
        registry
            .register(new_version("churn-classifier", bytes))
            .await
            .unwrap();
    }
    // v2 is judged against "no champion", then v3 becomes champion first.
    registry
        .record_decision(&decision(3, None, true), "champion", Some("challenger"))
        .await
        .unwrap();
    let err = registry
        .record_decision(&decision(2, None, true), "champion", Some("challenger"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::AliasMoved {
                judged: None,
                now: Some(now),
                ..
            } if now == 3
        ),
        "{err}"
    );
    assert_eq!(
        registry.aliases("churn-classifier").await.unwrap(),
        vec![("champion".into(), 3)]
    );
    assert_eq!(
        registry.decisions("churn-classifier").await.unwrap().len(),
        1
    );
    // Judged against the right champion, a losing candidate becomes challenger in the same transaction.
    registry
        .record_decision(&decision(2, Some(3), false), "champion", Some("challenger"))
        .await
        .unwrap();
    assert_eq!(
        registry.aliases("churn-classifier").await.unwrap(),
        vec![("challenger".into(), 2), ("champion".into(), 3)]
    );
    // Promoting the challenger takes its alias away with it: it is no longer a challenger.
    registry
        .record_decision(&decision(2, Some(3), true), "champion", Some("challenger"))
        .await
        .unwrap();
    assert_eq!(
        registry.aliases("churn-classifier").await.unwrap(),
        vec![("champion".into(), 2)]
    );
}

#[tokio::test]
async fn a_failed_registration_leaves_no_artifact_and_gc_removes_orphans() {
    let (registry, _db, s3) = registry().await;
    registry
        .register(new_version("churn-classifier", b"kept"))
        .await
        .unwrap();
    // A run that does not exist: the row is refused by its foreign key after the upload.
    let mut bad = new_version("churn-classifier", b"refused");
    bad.run_id = Some(uuid::Uuid::new_v4().into());
    assert!(registry.register(bad).await.is_err());
    let stored =
        |dir: &std::path::Path| -> usize { walk(dir).iter().filter(|p| p.is_file()).count() };
    let models_dir = s3.bucket_dir().join("models");
    assert_eq!(stored(&models_dir), 1, "the refused artifact was removed");
    // An orphan left by a crash between upload and commit is collected, referenced ones are kept.
    let orphan = models_dir.join("churn-classifier/orphan-0000");
    std::fs::write(&orphan, b"left behind").unwrap();
    let dry = registry
        .collect_garbage(std::time::Duration::ZERO, true)
        .await
        .unwrap();
    assert_eq!(
        dry.orphans,
        vec!["models/churn-classifier/orphan-0000".to_owned()]
    );
    assert!(orphan.exists());
    let young = registry
        .collect_garbage(std::time::Duration::from_secs(3600), false)
        .await
        .unwrap();
    assert_eq!((young.orphans.len(), young.too_young), (0, 1));
    let report = registry
        .collect_garbage(std::time::Duration::ZERO, false)
        .await
        .unwrap();
    assert_eq!((report.scanned, report.referenced), (2, 1));
    assert!(!orphan.exists());
    assert_eq!(stored(&models_dir), 1);
    let (bytes, _) = registry
        .load(&"registry:churn-classifier/1".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(bytes, b"kept");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// A version number in a test (panics on 0: the tests name real versions).
fn v(n: i32) -> VersionNumber {
    VersionNumber::new(n).expect("versions count from 1")
}
