//! Security headers, CORS for the one frontend, deadlines and body limits.

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::support::*;

const FRONTEND: &str = "https://shop.example.com";

#[tokio::test]
async fn every_answer_carries_the_security_headers_and_hsts_in_production() {
    let app = spawn_app(Db::Sqlite).await;
    for path in [
        "/health",
        "/api/events",
        "/no/such/route",
        "/api/openapi.json",
    ] {
        let response = app
            .client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}");
        assert!(headers["strict-transport-security"]
            .to_str()
            .unwrap()
            .starts_with("max-age="));
    }
    app.stop().await;
}

#[tokio::test]
async fn development_over_plain_http_sends_no_hsts() {
    let app = spawn_app_with(Db::Sqlite, &[("APP_ENV", "development")]).await;
    let response = app
        .client
        .get(format!("{}/health", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-frame-options"], "DENY");
    assert!(!response.headers().contains_key("strict-transport-security"));
    app.stop().await;
}

#[tokio::test]
async fn api_answers_are_never_cached() {
    let app = spawn_app(Db::Sqlite).await;
    let url = format!("{}/api/orders/stats/orders", app.address);
    let response = app
        .client
        .get(url)
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["cache-control"], "no-store");
    app.stop().await;
}

async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.client
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/api/events", app.address),
        )
        .header("origin", origin)
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn cors_allows_the_frontend_origin_and_no_other() {
    let app = spawn_app_with(Db::Sqlite, &[("FRONTEND_URL", FRONTEND)]).await;
    let allowed = preflight(&app, FRONTEND).await;
    assert!(allowed.status().is_success());
    assert_eq!(allowed.headers()["access-control-allow-origin"], FRONTEND);
    let methods = allowed.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap();
    assert!(methods.contains("GET"));
    let headers = allowed.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap();
    assert!(headers.contains("authorization"));

    let other = preflight(&app, "https://evil.example.net").await;
    assert!(!other.headers().contains_key("access-control-allow-origin"));

    let read = app
        .client
        .get(format!("{}/api/events", app.address))
        .header("origin", FRONTEND)
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    assert_eq!(read.headers()["access-control-allow-origin"], FRONTEND);
    let exposed = read.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap();
    assert!(exposed.contains("x-request-id"));
    app.stop().await;
}

#[tokio::test]
async fn without_frontend_url_no_origin_is_allowed() {
    let app = spawn_app(Db::Sqlite).await;
    let response = preflight(&app, FRONTEND).await;
    assert!(!response
        .headers()
        .contains_key("access-control-allow-origin"));
    app.stop().await;
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.address.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Everything the server sends until it closes, or until `limit`.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, Duration) {
    let started = Instant::now();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(limit, stream.read_to_end(&mut answer)).await;
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn a_client_that_stops_sending_its_body_gets_408_at_the_deadline() {
    let app = spawn_app_with(
        Db::Sqlite,
        &[("REQUEST_TIMEOUT", "1s"), ("INTAKE_TIMEOUT", "500ms")],
    )
    .await;
    let mut stream = connect(&app).await;
    let head = "POST /webhook/tiktok HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\nconnection: close\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(b"{\"type\":1,").await.unwrap();

    let (answer, waited) = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"timeout\""), "{answer}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    app.stop().await;
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let app = spawn_app_with(
        Db::Sqlite,
        &[("REQUEST_TIMEOUT", "1s"), ("INTAKE_TIMEOUT", "500ms")],
    )
    .await;
    let mut stream = connect(&app).await;
    stream
        .write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let (_, waited) = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    assert!(waited < Duration::from_secs(3), "held for {waited:?}");

    // An idle keep-alive connection is closed too.
    let mut idle = connect(&app).await;
    let (_, waited) = read_until_closed(&mut idle, Duration::from_secs(10)).await;
    assert!(waited < Duration::from_secs(3), "idle for {waited:?}");
    app.stop().await;
}

#[tokio::test]
async fn the_api_refuses_request_bodies() {
    let app = spawn_app(Db::Sqlite).await;
    let response = app
        .client
        .get(format!("{}/api/events", app.address))
        .bearer_auth(API_TOKEN)
        .body(vec![b'x'; 4096])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "payload_too_large");
    app.stop().await;
}

#[tokio::test]
async fn with_default_deadlines_a_stuck_store_still_answers_within_tiktoks_three_seconds() {
    use sqlx::Connection;

    let app = spawn_app(Db::Sqlite).await;
    let db = app.dir.path().join("db.sqlite");
    let mut lock = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut lock)
        .await
        .unwrap();

    let started = Instant::now();
    let body = status_event("7400600000000000001", "578060000000000001", "UNPAID", now());
    let response = app.send(&body).await;
    let waited = started.elapsed();
    assert_eq!(response.status(), 503);
    assert!(waited < Duration::from_secs(3), "answered after {waited:?}");

    sqlx::query("COMMIT").execute(&mut lock).await.unwrap();
    app.stop().await;
}
