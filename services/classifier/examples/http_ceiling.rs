//! The HTTP ceiling for the load benchmark: a bare axum endpoint that parses the same JSON body as
//! `POST /predict` and answers a small JSON object, with no model, validation or middleware. The
//! classifier's throughput is quoted as a share of this one's, measured in the same run.
//!
//! Run: `cargo run --release -p classifier --example http_ceiling -- 18099`

use axum::Json;
use axum::routing::post;
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(18099);
    let app = axum::Router::new().route(
        "/predict",
        post(|Json(body): Json<Value>| async move {
            Json(json!({ "fields": body.as_object().map_or(0, serde_json::Map::len), "ok": true }))
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
