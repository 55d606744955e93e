//! Projections: every topic's state keeps the newest value by its ordering
//! field, whatever order the events arrive in.

mod support;

use serde_json::Value;
use support::*;

fn body(kind: i64, event_id: &str, timestamp: i64, data: &str) -> String {
    format!(
        r#"{{"type":{kind},"tts_notification_id":"{event_id}","shop_id":"7495000000000000009","timestamp":{timestamp},"data":{data}}}"#
    )
}

async fn send_ok(app: &TestApp, body: &str) {
    let response = app.send(body).await;
    assert_eq!(response.status(), 200, "{body}");
}

async fn three_status_changes_end_newest_whatever_the_order_of_arrival(db: Db) {
    let app = spawn_app(db).await;
    let base = now() - 600;
    let states = [
        ("UNPAID", 0),
        ("AWAITING_SHIPMENT", 100),
        ("IN_TRANSIT", 200),
    ];
    let orders: [[usize; 3]; 6] = [
        [0, 1, 2],
        [2, 1, 0],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
    ];
    for (n, arrival) in orders.iter().enumerate() {
        let order_id = format!("5780000000000003{n:02}");
        for &i in arrival {
            let (status, offset) = states[i];
            let event_id = format!("74000000000003{n:02}{i}");
            send_ok(
                &app,
                &status_event(&event_id, &order_id, status, base + offset),
            )
            .await;
        }
        let (_, order) = app.get(&format!("/api/orders/{order_id}")).await;
        assert_eq!(
            order["data"]["order_status"], "IN_TRANSIT",
            "arrival {arrival:?}"
        );
        let (_, history) = app.get(&format!("/api/orders/{order_id}/history")).await;
        let statuses: Vec<&str> = history["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["order_status"].as_str().unwrap())
            .collect();
        assert_eq!(
            statuses,
            ["UNPAID", "AWAITING_SHIPMENT", "IN_TRANSIT"],
            "arrival {arrival:?}"
        );
    }
    app.stop().await;
}

async fn cancel_and_cancelled_are_stored_as_one_state(db: Db) {
    let app = spawn_app(db).await;
    send_ok(
        &app,
        &status_event("7400000000000000401", "578000000000000401", "CANCEL", now()),
    )
    .await;
    let (_, order) = app.get("/api/orders/578000000000000401").await;
    assert_eq!(order["data"]["order_status"], "CANCELLED");
    app.stop().await;
}

async fn a_newer_package_update_replaces_the_orders_an_older_one_does_not(db: Db) {
    let app = spawn_app(db).await;
    let t = now() - 100;
    let package = |id: &str, kind: &str, orders: &str, time: i64| {
        body(
            4,
            id,
            time,
            &format!(
                r#"{{"sc_type":"{kind}","role_type":"ROLE_SELLER","package_list":[{{"package_id":"1154000000000000001","order_id_list":[{orders}]}}],"update_time":{time}}}"#
            ),
        )
    };
    send_ok(
        &app,
        &package(
            "7400000000000000411",
            "COMBINE",
            r#""578000000000000411","578000000000000412""#,
            t + 50,
        ),
    )
    .await;
    // An older split of the same package arrives late: it must not win.
    send_ok(
        &app,
        &package("7400000000000000410", "SPLIT", r#""578000000000000411""#, t),
    )
    .await;

    let (_, order) = app.get("/api/orders/578000000000000412").await;
    let packages = order["data"]["packages"].as_array().unwrap();
    assert_eq!(packages.len(), 1);
    assert_eq!(packages[0]["sc_type"], "COMBINE");
    assert_eq!(
        packages[0]["order_ids"],
        serde_json::json!(["578000000000000411", "578000000000000412"])
    );
    app.stop().await;
}

async fn returns_cancellations_and_refunds_keep_their_newest_state(db: Db) {
    let app = spawn_app(db).await;
    let t = now() - 100;
    let ret = |id: &str, status: &str, time: i64| {
        body(
            12,
            id,
            t,
            &format!(
                r#"{{"order_id":"578000000000000421","return_role":"BUYER","return_type":"REFUND","return_status":"{status}","return_id":"4036000000000000421","create_time":{t},"update_time":{time}}}"#
            ),
        )
    };
    send_ok(
        &app,
        &ret(
            "7400000000000000422",
            "RETURN_OR_REFUND_REQUEST_COMPLETE",
            t + 20,
        ),
    )
    .await;
    send_ok(
        &app,
        &ret("7400000000000000421", "RETURN_OR_REFUND_REQUEST_PENDING", t),
    )
    .await;
    send_ok(&app, &body(11, "7400000000000000423", t, r#"{"order_id":"578000000000000421","cancellations_role":"BUYER","cancel_status":"CANCELLATION_REQUEST_PENDING","cancel_id":"4035000000000000421","create_time":1}"#)).await;
    send_ok(&app, &body(67, "7400000000000000424", t, r#"{"aftersales_request_id":"5761000000000000421","rma_id":"1","line_items":[{"main_order_id":"578000000000000421"}],"refund_currency":"EUR","refund_status":"REFUND_SUCCESS","refund_timestamp":1800000000,"refund_total":"10000000000000000.05"}"#)).await;

    let (_, order) = app.get("/api/orders/578000000000000421").await;
    let data = &order["data"];
    assert_eq!(
        data["returns"][0]["status"],
        "RETURN_OR_REFUND_REQUEST_COMPLETE"
    );
    assert_eq!(
        data["cancellations"][0]["status"],
        "CANCELLATION_REQUEST_PENDING"
    );
    assert_eq!(data["refunds"][0]["amount"], "10000000000000000.05");
    assert_eq!(data["refunds"][0]["currency"], "EUR");
    app.stop().await;
}

async fn product_aspects_are_ordered_each_by_their_own_time(db: Db) {
    let app = spawn_app(db).await;
    let t = now() - 100;
    // Numeric product ids beyond 2^53 keep their digits.
    let status = |id: &str, s: &str, time: i64| {
        body(
            5,
            id,
            t,
            &format!(r#"{{"product_id":1731000000000000431,"status":"{s}","update_time":{time}}}"#),
        )
    };
    send_ok(
        &app,
        &status("7400000000000000432", "PRODUCT_ACTIVATE", t + 30),
    )
    .await;
    send_ok(
        &app,
        &status("7400000000000000431", "PRODUCT_AUDIT_FAILURE", t + 10),
    )
    .await;
    send_ok(&app, &body(37, "7400000000000000433", t, &format!(r#"{{"product_id":"1731000000000000431","audit":{{"status":"APPROVED"}},"update_time":{}}}"#, t + 5))).await;

    let (status_code, product) = app.get("/api/products/1731000000000000431").await;
    assert_eq!(status_code, 200);
    let data = &product["data"];
    assert_eq!(data["status"], "PRODUCT_ACTIVATE");
    assert_eq!(data["audit_status"], "APPROVED");
    assert_eq!(data["last_change"], "product_status_change");
    assert_eq!(app.get("/api/products/1").await.0, 404);
    app.stop().await;
}

async fn a_shop_is_deauthorized_until_a_newer_event_arrives(db: Db) {
    let app = spawn_app(db).await;
    let t = now() - 100;
    let shop = "/api/shops/7495000000000000009";
    send_ok(
        &app,
        &body(
            7,
            "7400000000000000441",
            t,
            r#"{"message":"soon","expiration_time":"1900000000"}"#,
        ),
    )
    .await;
    let (_, s) = app.get(shop).await;
    assert_eq!(s["data"]["authorized"], true);
    assert_eq!(
        s["data"]["authorization_expires_at"],
        "2030-03-17T17:46:40Z"
    );

    send_ok(
        &app,
        &body(6, "7400000000000000442", t + 10, r#"{"message":"gone"}"#),
    )
    .await;
    // A late event from before the deauthorization changes nothing.
    send_ok(
        &app,
        &body(
            3,
            "7400000000000000443",
            t + 5,
            r#"{"order_id":"578000000000000441","update_time":1}"#,
        ),
    )
    .await;
    let (_, s) = app.get(shop).await;
    assert_eq!(s["data"]["authorized"], false);
    assert_eq!(s["data"]["events"], 3);

    send_ok(
        &app,
        &body(
            3,
            "7400000000000000444",
            t + 20,
            r#"{"order_id":"578000000000000441","update_time":2}"#,
        ),
    )
    .await;
    let (_, s) = app.get(shop).await;
    assert_eq!(s["data"]["authorized"], true);
    assert_eq!(app.get("/api/shops/1").await.0, 404);
    app.stop().await;
}

async fn every_fixture_is_stored_under_its_topic(db: Db) {
    let app = spawn_app(db).await;
    let mut names: Vec<_> = std::fs::read_dir(data_path("events"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    for name in &names {
        let response = app.send_bytes(&fresh_fixture(name)).await;
        assert_eq!(response.status(), 200, "{name}");
    }
    let (_, stats) = app.get("/api/orders/stats/webhooks").await;
    let types: Vec<&str> = stats["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(types.len(), names.len(), "one topic per fixture: {types:?}");
    assert!(stats["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s: &Value| s["failed"] == 0));
    app.stop().await;
}

on_both_databases!(
    three_status_changes_end_newest_whatever_the_order_of_arrival,
    cancel_and_cancelled_are_stored_as_one_state,
    a_newer_package_update_replaces_the_orders_an_older_one_does_not,
    returns_cancellations_and_refunds_keep_their_newest_state,
    product_aspects_are_ordered_each_by_their_own_time,
    a_shop_is_deauthorized_until_a_newer_event_arrives,
    every_fixture_is_stored_under_its_topic,
);
