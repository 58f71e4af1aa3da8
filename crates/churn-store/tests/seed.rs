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

#[tokio::test]
async fn a_download_announcing_more_than_the_cap_is_refused_at_once() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = [0u8; 1024];
            let _ = socket.read(&mut buf).await;
            // Announce 1 GB and send a few bytes; the client must not wait for the rest.
            let _ = socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000000000\r\n\r\nCustomerID,")
                .await;
            tokio::time::sleep(std::time::Duration::from_secs(30)).await;
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let err = download_verified(
        &format!("http://{addr}/big.csv"),
        SEED_SHA256,
        &dir.path().join("x.csv"),
        |_, _| {},
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("at most"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(!dir.path().join("x.csv").exists());
}
