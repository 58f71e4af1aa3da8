//! The service's edges: streams that nobody reads are cut and release their slot, large answers are
//! shed when every stream slot is taken, the OpenAPI document is exact (schemathesis), Swagger UI.

use std::time::{Duration, Instant};

use churn_service::testing::{check_swagger_ui, schemathesis};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::spawn_app;

#[tokio::test]
async fn a_stream_nobody_reads_is_cut_after_its_send_timeout_and_frees_its_slot() {
    let app = spawn_app(&[
        ("SYNTHESIZE_MAX_STREAMS", "1"),
        ("SYNTHESIZE_SEND_TIMEOUT_SECS", "1"),
    ])
    .await;
    // Ask for a million rows and never read them: the socket buffers fill and the producer waits.
    let address = app.address.trim_start_matches("http://");
    let mut lazy = TcpStream::connect(address).await.unwrap();
    lazy.write_all(b"GET /synthesize?n=1000000&format=ndjson HTTP/1.1\r\nhost: test\r\n\r\n")
        .await
        .unwrap();
    // While it holds the only slot, another large request is shed with 503 and Retry-After.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let shed = app.get("/synthesize?n=100000").await;
    assert_eq!(shed.status(), 503);
    assert_eq!(shed.headers()["retry-after"], "5");
    // Small answers need no slot.
    assert_eq!(app.get("/synthesize?n=10").await.status(), 200);
    // After the send timeout the producer gives up and frees the slot.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = app.get("/synthesize?n=20000").await.status();
        if status == 200 {
            break;
        }
        assert_eq!(status, 503);
        assert!(
            Instant::now() < deadline,
            "the stream slot was never released"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("synthesize_streams_cut_total{reason=\"send_timeout\"}"),
        "{metrics}"
    );
    // The lazy client's answer ends early (it is cut, not completed).
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0usize;
    while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(5), lazy.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        total += n;
    }
    assert!(total < 500_000_000, "{total}");
}

#[tokio::test]
async fn a_stream_is_cut_at_its_total_deadline() {
    let app = spawn_app(&[("SYNTHESIZE_STREAM_TIMEOUT_SECS", "1")]).await;
    // A client that reads slowly keeps each send within its timeout but not the whole answer.
    let address = app.address.trim_start_matches("http://");
    let mut slow = TcpStream::connect(address).await.unwrap();
    slow.write_all(b"GET /synthesize?n=1000000&format=ndjson HTTP/1.1\r\nhost: test\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut buf = vec![0u8; 8192];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), slow.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(_)) => tokio::time::sleep(Duration::from_millis(5)).await,
            Err(_) => panic!("the stream neither ended nor sent anything for 10 s"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the stream was never cut"
        );
    }
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("synthesize_streams_cut_total{reason=\"deadline\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn the_openapi_document_matches_what_the_service_does() {
    let app = spawn_app(&[("SYNTHESIZE_MAX_ROWS", "10000")]).await;
    check_swagger_ui(&app).await;
    schemathesis(&app, &[]).await;
}
