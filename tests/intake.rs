//! Intake over HTTP: what is stored, what is refused, and how often.

mod support;

use serde_json::Value;
use sqlx::Connection;
use support::*;

async fn a_signed_event_is_stored_byte_for_byte_and_readable(db: Db) {
    let app = spawn_app(db).await;
    let body = r#"{"type": 1, "tts_notification_id": "7400000000000000001", "shop_id": "7495000000000000001", "timestamp": TS, "data": {"order_status": "UNPAID", "order_id": "578000000000000001", "update_time": 1700000000}}"#
        .replace("TS", &now().to_string());

    let response = app.send(&body).await;
    assert_eq!(response.status(), 200);
    let ack: Value = response.json().await.unwrap();
    assert_eq!(ack["event_id"], "7400000000000000001");
    assert_eq!(ack["order_id"], "578000000000000001");
    assert!(ack.get("duplicate").is_none());

    let (status, event) = app.get("/api/events/7400000000000000001").await;
    assert_eq!(status, 200);
    assert_eq!(event["data"]["raw_body"], body.as_str());
    assert_eq!(event["data"]["deliveries"], 1);
    let (status, order) = app.get("/api/orders/578000000000000001").await;
    assert_eq!(status, 200);
    assert_eq!(order["data"]["order_status"], "UNPAID");
    app.stop().await;
}

async fn twenty_concurrent_copies_store_one_row_with_twenty_deliveries(db: Db) {
    let app = spawn_app(db).await;
    let body = status_event("7400000000000000020", "578000000000000020", "UNPAID", now());

    let sends = (0..20).map(|_| app.send(&body));
    let responses = futures::future::join_all(sends).await;

    let mut fresh = 0;
    for response in responses {
        assert_eq!(response.status(), 200);
        let ack: Value = response.json().await.unwrap();
        if ack.get("duplicate") != Some(&Value::Bool(true)) {
            fresh += 1;
        }
    }
    assert_eq!(fresh, 1, "exactly one copy is the new event");
    let (_, event) = app.get("/api/events/7400000000000000020").await;
    assert_eq!(event["data"]["deliveries"], 20);
    let (_, events) = app.get("/api/events?shop_id=7495000000000000001").await;
    assert_eq!(events["data"].as_array().unwrap().len(), 1);
    let (_, history) = app.get("/api/orders/578000000000000020/history").await;
    assert_eq!(
        history["data"].as_array().unwrap().len(),
        1,
        "one history line"
    );
    app.stop().await;
}

async fn a_stale_event_is_refused_and_not_stored(db: Db) {
    let app = spawn_app_with(db, &[("WEBHOOK_MAX_AGE", "1h")]).await;
    let body = r#"{"type":1,"tts_notification_id":"7400000000000000030","shop_id":"1","timestamp":TS,"data":{"order_id":"578000000000000030","order_status":"UNPAID","update_time":1}}"#
        .replace("TS", &(now() - 3700).to_string());

    let response = app.send(&body).await;
    assert_eq!(response.status(), 401);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "stale_event");
    assert_eq!(app.get("/api/events/7400000000000000030").await.0, 404);
    app.stop().await;
}

/// Extra request headers: name and value.
type Headers = Vec<(&'static str, String)>;

async fn refusals_carry_distinct_codes_and_store_nothing(db: Db) {
    let app = spawn_app(db).await;
    let body = status_event("7400000000000000040", "578000000000000040", "UNPAID", now());
    let url = format!("{}/webhook/tiktok", app.address);
    let cases: Vec<(Headers, u16, &str)> = vec![
        (vec![], 401, "missing_signature"),
        (
            vec![("authorization", "00".repeat(32))],
            401,
            "bad_signature",
        ),
        (
            vec![("authorization", "not hex".into())],
            401,
            "bad_signature",
        ),
        (
            vec![
                ("content-encoding", "br".into()),
                ("authorization", "00".into()),
            ],
            415,
            "unsupported_encoding",
        ),
    ];
    for (headers, status, code) in cases {
        let mut request = app.client.post(&url).body(body.clone());
        for (name, value) in &headers {
            request = request.header(*name, value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), status, "{headers:?}");
        let request_id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["success"], false);
        assert_eq!(error["error"]["code"], code);
        assert_eq!(error["error"]["request_id"], request_id.as_str());
    }
    assert_eq!(app.get("/api/events/7400000000000000040").await.0, 404);
    app.stop().await;
}

#[tokio::test]
async fn a_locked_database_answers_503_never_200() {
    let app = spawn_app_with(Db::Sqlite, &[("INTAKE_TIMEOUT", "300ms")]).await;
    // Another process holding the write lock is what a stuck or failing disk
    // looks like from here: intake cannot commit in time.
    let db = app.dir.path().join("db.sqlite");
    let mut lock = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut lock)
        .await
        .unwrap();

    let body = status_event("7400000000000000050", "578000000000000050", "UNPAID", now());
    let response = app.send(&body).await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "store_unavailable");

    sqlx::query("COMMIT").execute(&mut lock).await.unwrap();
    // TikTok's retry then succeeds (as new, or as a duplicate of a commit
    // that finished after the 503): either way the event is kept.
    let retry = app.send(&body).await;
    assert_eq!(retry.status(), 200);
    assert_eq!(app.get("/api/events/7400000000000000050").await.0, 200);
    app.stop().await;
}

async fn event_lists_leave_bodies_out_and_check_their_cursor(db: Db) {
    let app = spawn_app(db).await;
    let body = status_event("7400000000000000060", "578000000000000060", "UNPAID", now());
    assert_eq!(app.send(&body).await.status(), 200);
    let (_, list) = app.get("/api/events").await;
    assert_eq!(list["data"][0]["event_id"], "7400000000000000060");
    assert!(list["data"][0].get("raw_body").is_none());
    assert_eq!(app.get("/api/events?before=no-such-event").await.0, 400);
    let lowercase = app
        .client
        .get(format!("{}/api/events", app.address))
        .header("authorization", format!("bearer {API_TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        lowercase.status(),
        200,
        "the scheme name is case-insensitive"
    );
    app.stop().await;
}

on_both_databases!(
    a_signed_event_is_stored_byte_for_byte_and_readable,
    twenty_concurrent_copies_store_one_row_with_twenty_deliveries,
    a_stale_event_is_refused_and_not_stored,
    refusals_carry_distinct_codes_and_store_nothing,
    event_lists_leave_bodies_out_and_check_their_cursor,
);
