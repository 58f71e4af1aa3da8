//! The verified seed download against a local HTTP server serving the real file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use churn_store::seed::{SEED_SHA256, download_verified, sha256_file};

#[tokio::test]
async fn the_download_is_saved_when_its_checksum_matches() {
    let url = churn_testkit::serve_seed_file().await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("nested/telco.csv");
    let mut last = 0;
    download_verified(&url, SEED_SHA256, &dest, |done, _| last = done)
        .await
        .unwrap();
    assert_eq!(sha256_file(&dest).unwrap(), SEED_SHA256);
    assert_eq!(last, std::fs::metadata(&dest).unwrap().len());
}

#[tokio::test]
async fn a_checksum_mismatch_saves_nothing() {
    let url = churn_testkit::serve_seed_file().await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("telco.csv");
    let wrong = "0".repeat(64);
    let err = download_verified(&url, &wrong, &dest, |_, _| {})
        .await
        .unwrap_err();
    assert!(
        matches!(err, churn_store::Error::ChecksumMismatch { .. }),
        "{err}"
    );
    assert!(!dest.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no temporary file left"
    );
}

#[tokio::test]
async fn a_missing_file_on_the_server_is_a_download_error() {
    let url = churn_testkit::serve_seed_file()
        .await
        .replace("telco.csv", "nope.csv");
    let dir = tempfile::tempdir().unwrap();
    let err = download_verified(&url, SEED_SHA256, &dir.path().join("x.csv"), |_, _| {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");
}
