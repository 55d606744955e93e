//! `GET /metrics`: what an operator needs, in Prometheus text.

use crate::support::*;

on_both_databases!(metrics_count_events_refusals_duplicates_latency_and_pool_use);

async fn metrics_count_events_refusals_duplicates_latency_and_pool_use(db: Db) {
    let app = spawn_app_with(
        db,
        &[("RATE_LIMIT_MAX", "3"), ("WEBHOOK_BODY_LIMIT", "2000")],
    )
    .await;
    let url = format!("{}/webhook/tiktok", app.address);
    let body = status_event("7400700000000000001", "578070000000000001", "UNPAID", now());
    assert_eq!(app.send(&body).await.status(), 200);
    assert_eq!(app.send(&body).await.status(), 200);
    let refusals: [(&str, Option<&str>, String); 4] = [
        ("missing", None, body.clone()),
        ("bad", Some("00"), body.clone()),
        ("large", Some("00"), "x".repeat(3000)),
        ("limited", Some("00"), body.clone()),
    ];
    for (what, signature, payload) in refusals {
        let mut request = app.client.post(&url).body(payload);
        if let Some(signature) = signature {
            request = request.header("authorization", signature);
        }
        assert!(
            request.send().await.unwrap().status().is_client_error(),
            "{what}"
        );
    }
    let stale = r#"{"type":1,"timestamp":1000,"data":{"order_id":"1","order_status":"UNPAID","update_time":1}}"#;
    assert_eq!(
        app.send(stale).await.status(),
        429,
        "the budget of 3 is spent"
    );

    let text = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for expected in [
        r#"webhook_events_total{topic="order_status_change",outcome="stored"}"#,
        r#"webhook_events_total{topic="order_status_change",outcome="duplicate"}"#,
        r#"webhook_refused_total{reason="missing_signature"}"#,
        r#"webhook_refused_total{reason="bad_signature"}"#,
        r#"webhook_refused_total{reason="payload_too_large"}"#,
        r#"webhook_refused_total{reason="rate_limited"}"#,
        r#"rate_limited_total{scope="webhook"}"#,
        "webhook_intake_seconds_bucket",
        r#"db_pool_connections{pool="writer",state="open"}"#,
        r#"db_pool_connections{pool="writer",state="max"}"#,
        r#"http_requests_total{method="POST",route="/webhook/tiktok",status="200"}"#,
    ] {
        assert!(
            text.contains(expected),
            "{expected} is missing from:\n{text}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn stale_events_are_counted_as_such() {
    let app = spawn_app_with(Db::Sqlite, &[("WEBHOOK_MAX_AGE", "1h")]).await;
    let stale = r#"{"type":1,"timestamp":1000,"data":{"order_id":"1","order_status":"UNPAID","update_time":1}}"#;
    assert_eq!(app.send(stale).await.status(), 401);
    let text = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains(r#"webhook_refused_total{reason="stale_event"}"#));
    app.stop().await;
}
