//! Secret rotation and the legacy header scheme, end to end.

use serde_json::Value;
use tiktok_webhook::tiktok::signature::{sign, sign_legacy};

use crate::support::*;

const PREVIOUS: &str = "previous-secret-0123456789abcdef";

async fn post(app: &TestApp, body: &str, headers: &[(&str, String)]) -> (u16, Value) {
    let mut request = app
        .client
        .post(format!("{}/webhook/tiktok", app.address))
        .body(body.to_owned());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn event(n: u32) -> String {
    status_event(
        &format!("74008000000000000{n:02}"),
        &format!("5780800000000000{n:02}"),
        "UNPAID",
        now(),
    )
}

#[tokio::test]
async fn during_a_rotation_both_secrets_are_accepted() {
    let app = spawn_app_with(Db::Sqlite, &[("TIKTOK_APP_SECRET_PREVIOUS", PREVIOUS)]).await;
    let old = event(1);
    let signed_old = sign(APP_KEY, PREVIOUS, old.as_bytes());
    assert_eq!(
        post(&app, &old, &[("authorization", signed_old)]).await.0,
        200
    );
    let new = event(2);
    let signed_new = sign(APP_KEY, APP_SECRET, new.as_bytes());
    assert_eq!(
        post(&app, &new, &[("authorization", signed_new)]).await.0,
        200
    );
    app.stop().await;
}

#[tokio::test]
async fn after_the_rotation_the_previous_secret_is_refused() {
    let app = spawn_app(Db::Sqlite).await;
    let body = event(3);
    let signed_old = sign(APP_KEY, PREVIOUS, body.as_bytes());
    let (status, error) = post(&app, &body, &[("authorization", signed_old)]).await;
    assert_eq!(status, 401);
    assert_eq!(error["error"]["code"], "bad_signature");
    app.stop().await;
}

fn legacy(body: &str, age_secs: i64) -> Vec<(&'static str, String)> {
    let stamp = (now() - age_secs).to_string();
    vec![
        (
            "x-tiktok-shop-signature",
            sign_legacy(APP_SECRET, &stamp, body.as_bytes()),
        ),
        ("x-tiktok-shop-timestamp", stamp),
    ]
}

#[tokio::test]
async fn the_legacy_scheme_is_accepted_when_turned_on() {
    let app = spawn_app_with(Db::Sqlite, &[("LEGACY_SIGNATURE_HEADERS", "true")]).await;
    let body = event(4);
    let (status, ack) = post(&app, &body, &legacy(&body, 0)).await;
    assert_eq!(status, 200, "{ack}");
    assert_eq!(ack["event_id"], "7400800000000000004");
    app.stop().await;
}

#[tokio::test]
async fn the_legacy_scheme_is_refused_when_off() {
    let app = spawn_app(Db::Sqlite).await;
    let body = event(5);
    let (status, error) = post(&app, &body, &legacy(&body, 0)).await;
    assert_eq!(status, 401);
    assert_eq!(error["error"]["code"], "missing_signature");
    app.stop().await;
}

#[tokio::test]
async fn a_legacy_signature_outside_its_five_minute_window_is_stale() {
    let app = spawn_app_with(Db::Sqlite, &[("LEGACY_SIGNATURE_HEADERS", "true")]).await;
    let body = event(6);
    let (status, error) = post(&app, &body, &legacy(&body, 600)).await;
    assert_eq!(status, 401);
    assert_eq!(error["error"]["code"], "stale_event");
    // Just inside the window still passes.
    let (status, _) = post(&app, &body, &legacy(&body, 240)).await;
    assert_eq!(status, 200);
    app.stop().await;
}
