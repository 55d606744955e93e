//! Forgeries are throttled per address; real TikTok traffic never is.

use serde_json::Value;

use crate::support::*;

// The other tests here check the HTTP layer, which is the same on either
// database; they run on SQLite.

/// A body that verifies with the test secret, different every time.
fn genuine(n: usize) -> String {
    status_event(
        &format!("74009{n:014}"),
        &format!("57809{n:013}"),
        "UNPAID",
        now(),
    )
}

async fn forged(app: &TestApp, n: usize) -> reqwest::Response {
    app.client
        .post(format!("{}/webhook/tiktok", app.address))
        .header("authorization", "0".repeat(64))
        .body(genuine(100_000 + n))
        .send()
        .await
        .unwrap()
}

// Acceptance 4 stores 200 events, so it runs on both databases.
on_both_databases!(forged_webhooks_are_throttled_while_signed_ones_from_the_same_address_all_pass);

async fn forged_webhooks_are_throttled_while_signed_ones_from_the_same_address_all_pass(db: Db) {
    // The contract's defaults: 100 per 15 minutes.
    let app = spawn_app_with(
        db,
        &[("RATE_LIMIT_MAX", "100"), ("RATE_LIMIT_WINDOW", "15m")],
    )
    .await;
    let (mut unauthorized, mut limited, mut processed) = (0, 0, 0);
    for n in 0..200 {
        let response = forged(&app, n).await;
        match response.status().as_u16() {
            401 => unauthorized += 1,
            429 => {
                assert!(response.headers().contains_key("retry-after"));
                let body: Value = response.json().await.unwrap();
                assert_eq!(body["error"]["code"], "rate_limited");
                limited += 1;
            }
            other => panic!("a forgery got {other}"),
        }
        // A signed webhook from the same address, interleaved.
        let response = app.send(&genuine(n)).await;
        assert_eq!(
            response.status(),
            200,
            "signed webhook {n} after {limited} 429s"
        );
        processed += 1;
    }
    assert_eq!((unauthorized, limited, processed), (100, 100, 200));
    let (_, events) = app.get("/api/events?limit=1000").await;
    assert_eq!(events["data"].as_array().unwrap().len(), 200);
    app.stop().await;
}

#[tokio::test]
async fn stale_and_unsigned_requests_spend_the_same_failure_budget() {
    let app = spawn_app_with(
        Db::Sqlite,
        &[("RATE_LIMIT_MAX", "2"), ("WEBHOOK_MAX_AGE", "1h")],
    )
    .await;
    let stale = r#"{"type":1,"tts_notification_id":"7400900000000000001","shop_id":"1","timestamp":1000,"data":{"order_id":"578090000000000001","order_status":"UNPAID","update_time":1}}"#;
    assert_eq!(app.send(stale).await.status(), 401);
    let unsigned = app
        .client
        .post(format!("{}/webhook/tiktok", app.address))
        .body(genuine(1))
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
    assert_eq!(app.send(stale).await.status(), 429);
    app.stop().await;
}

#[tokio::test]
async fn the_api_is_limited_per_address_for_good_and_bad_tokens_alike() {
    let app = spawn_app_with(Db::Sqlite, &[("RATE_LIMIT_MAX", "3")]).await;
    let url = format!("{}/api/orders/stats/orders", app.address);
    assert_eq!(app.get("/api/orders/stats/orders").await.0, 200);
    let wrong = app
        .client
        .get(&url)
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(app.get("/api/orders/stats/orders").await.0, 200);
    let response = app
        .client
        .get(&url)
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=300).contains(&retry), "one request per 5 min: {retry}");
    // Webhooks and health are outside the API budget.
    assert_eq!(app.send(&genuine(7)).await.status(), 200);
    let health = app
        .client
        .get(format!("{}/health", app.address))
        .send()
        .await;
    assert_eq!(health.unwrap().status(), 200);
    app.stop().await;
}

async fn api_from(app: &TestApp, forwarded_for: &str) -> u16 {
    app.client
        .get(format!("{}/api/orders/stats/orders", app.address))
        .bearer_auth(API_TOKEN)
        .header("x-forwarded-for", forwarded_for)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn forwarded_for_is_believed_only_when_a_proxy_is_trusted() {
    let direct = spawn_app_with(Db::Sqlite, &[("RATE_LIMIT_MAX", "1")]).await;
    assert_eq!(api_from(&direct, "203.0.113.1").await, 200);
    // A client cannot buy a fresh budget by writing the header itself.
    assert_eq!(api_from(&direct, "203.0.113.2").await, 429);
    direct.stop().await;

    let proxied = spawn_app_with(
        Db::Sqlite,
        &[("RATE_LIMIT_MAX", "1"), ("TRUST_PROXY", "true")],
    )
    .await;
    assert_eq!(api_from(&proxied, "203.0.113.1").await, 200);
    assert_eq!(api_from(&proxied, "203.0.113.2").await, 200);
    assert_eq!(api_from(&proxied, "203.0.113.1").await, 429);
    // Only the entry the proxy appended counts, not what the client wrote.
    assert_eq!(api_from(&proxied, "198.51.100.9, 203.0.113.1").await, 429);
    proxied.stop().await;
}
