//! The transport limits every service runs with, on a real listener: header-read timeout, idle
//! keep-alive timeout, connection cap, load shedding, and the shutdown deadline.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::{get, post};
use churn_config::Limits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, oneshot};
use utoipa_axum::router::OpenApiRouter;

/// A running server with a `/slow` route that waits until the test releases it, and `/echo`, which
/// reads its whole body.
struct Server {
    address: String,
    release: Arc<Notify>,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start(limits: Limits) -> Server {
    let release = Arc::new(Notify::new());
    let waiting = release.clone();
    let api = OpenApiRouter::new()
        .route(
            "/slow",
            get(move || {
                let waiting = waiting.clone();
                async move {
                    waiting.notified().await;
                    "released"
                }
            }),
        )
        .route("/echo", post(|body: axum::body::Bytes| async move { body }))
        .route("/fast", get(|| async { "ok" }));
    let (router, _) = churn_service::finish_router(api, (), limits);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let (stop, stopped) = oneshot::channel::<()>();
    let done = tokio::spawn(churn_service::serve_until(
        listener,
        router,
        limits,
        async move {
            let _ = stopped.await;
        },
    ));
    Server {
        address,
        release,
        stop: Some(stop),
        done,
    }
}

fn limits() -> Limits {
    Limits {
        header_read_timeout: Duration::from_secs(30),
        keep_alive_idle: Duration::from_secs(30),
        ..Limits::default()
    }
}

/// Reads until the peer closes the connection (or `limit` passes); returns what was read and whether it
/// closed.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return (out, true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (out, false),
        }
    }
}

async fn get_on(stream: &mut TcpStream, path: &str) -> String {
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nhost: test\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn a_client_that_sends_half_a_header_is_cut_off_within_the_header_timeout() {
    let server = start(Limits {
        header_read_timeout: Duration::from_secs(1),
        ..limits()
    })
    .await;
    let mut slow = TcpStream::connect(&server.address).await.unwrap();
    let started = Instant::now();
    slow.write_all(b"GET /fast HTTP/1.1\r\nhost: te")
        .await
        .unwrap();
    let (_, closed) = read_until_closed(&mut slow, Duration::from_secs(5)).await;
    let took = started.elapsed();
    assert!(closed, "the connection stayed open");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "{took:?}"
    );
    // A client that sends its header in time is served.
    let mut quick = TcpStream::connect(&server.address).await.unwrap();
    assert!(
        get_on(&mut quick, "/fast")
            .await
            .starts_with("HTTP/1.1 200")
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let server = start(Limits {
        keep_alive_idle: Duration::from_secs(1),
        ..limits()
    })
    .await;
    let mut stream = TcpStream::connect(&server.address).await.unwrap();
    assert!(
        get_on(&mut stream, "/fast")
            .await
            .starts_with("HTTP/1.1 200")
    );
    let started = Instant::now();
    let (_, closed) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(closed, "the idle connection stayed open");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn connections_above_the_cap_are_refused_and_the_others_keep_working() {
    let server = start(Limits {
        max_connections: 2,
        ..limits()
    })
    .await;
    let mut first = TcpStream::connect(&server.address).await.unwrap();
    let mut second = TcpStream::connect(&server.address).await.unwrap();
    assert!(
        get_on(&mut first, "/fast")
            .await
            .starts_with("HTTP/1.1 200")
    );
    assert!(
        get_on(&mut second, "/fast")
            .await
            .starts_with("HTTP/1.1 200")
    );
    let mut third = TcpStream::connect(&server.address).await.unwrap();
    let _ = third
        .write_all(b"GET /fast HTTP/1.1\r\nhost: test\r\n\r\n")
        .await;
    let (answer, closed) = read_until_closed(&mut third, Duration::from_secs(3)).await;
    assert!(
        closed && answer.is_empty(),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    // Once one closes, a new connection is accepted.
    drop(first);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut fourth = TcpStream::connect(&server.address).await.unwrap();
    assert!(
        get_on(&mut fourth, "/fast")
            .await
            .starts_with("HTTP/1.1 200")
    );
    assert!(
        get_on(&mut second, "/fast")
            .await
            .starts_with("HTTP/1.1 200")
    );
}

#[tokio::test]
async fn a_saturated_service_sheds_with_503_and_retry_after_then_recovers() {
    let server = start(Limits {
        max_concurrent_requests: 1,
        ..limits()
    })
    .await;
    let client = reqwest::Client::new();
    let url = |path: &str| format!("http://{}{path}", server.address);
    let busy = tokio::spawn(client.get(url("/slow")).send());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let shed = client.get(url("/fast")).send().await.unwrap();
    assert_eq!(shed.status(), 503);
    assert!(started.elapsed() < Duration::from_millis(500));
    assert_eq!(shed.headers()["retry-after"], "1");
    let body: serde_json::Value = shed.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("MAX_CONCURRENT_REQUESTS"),
        "{body}"
    );
    // Probes are never shed.
    assert_eq!(
        client.get(url("/health")).send().await.unwrap().status(),
        200
    );
    server.release.notify_one();
    assert_eq!(busy.await.unwrap().unwrap().status(), 200);
    assert_eq!(client.get(url("/fast")).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn shutdown_with_a_stuck_client_ends_within_the_grace_period() {
    let mut server = start(Limits {
        shutdown_grace: Duration::from_secs(1),
        ..limits()
    })
    .await;
    // A client that announces a body and never finishes sending it.
    let mut stuck = TcpStream::connect(&server.address).await.unwrap();
    stuck
        .write_all(b"POST /echo HTTP/1.1\r\nhost: test\r\ncontent-length: 100000\r\n\r\npartial")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let _ = server.stop.take().unwrap().send(());
    tokio::time::timeout(Duration::from_secs(5), &mut server.done)
        .await
        .expect("the server stops within the grace period")
        .unwrap()
        .unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "{took:?}");
    let (_, closed) = read_until_closed(&mut stuck, Duration::from_secs(2)).await;
    assert!(closed);
}
