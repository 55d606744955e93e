//! Several instances on one PostgreSQL database: two real server processes
//! receive every delivery of every event at once, and the database alone
//! decides which copy is new, which state is newest, and which instance's
//! queue worker forwards each event.

mod support;

use std::{collections::HashMap, time::Duration};

use futures::future::join_all;
use rand::{rngs::StdRng, seq::SliceRandom, SeedableRng};
use serde_json::Value;
use support::{
    postgres::TestDatabase,
    process::Server,
    receiver::{Answer, Receiver},
    *,
};
use tiktok_webhook::tiktok::signature::sign;

const ORDERS: usize = 10;
const STATUSES: [&str; 5] = [
    "UNPAID",
    "ON_HOLD",
    "AWAITING_SHIPMENT",
    "IN_TRANSIT",
    "DELIVERED",
];
const DELIVERIES: usize = 4;

#[tokio::test]
async fn two_instances_store_each_of_fifty_events_once_and_keep_the_newest_state() {
    if !postgres::available(
        "two_instances_store_each_of_fifty_events_once_and_keep_the_newest_state",
    ) {
        return;
    }
    let database = TestDatabase::create().await;
    let receiver = Receiver::start(|_| Answer::Status(200)).await;
    let dir = tempfile::tempdir().unwrap();
    let servers = start_two(&database, &receiver, dir.path(), &[]).await;

    // 10 orders, 5 status changes each (50 events), every event 4 times,
    // shuffled and dealt alternately to the two servers.
    let base = now() - 3600;
    let mut deliveries = Vec::new();
    for order in 0..ORDERS {
        for (step, status) in STATUSES.iter().enumerate() {
            let event_id = format!("7400000000090{order:02}{step}");
            let order_id = format!("5780000000090{order:02}");
            let update_time = base + 60 * step as i64;
            let body = status_event(&event_id, &order_id, status, update_time);
            deliveries.extend(std::iter::repeat(body).take(DELIVERIES));
        }
    }
    deliveries.shuffle(&mut StdRng::seed_from_u64(7));
    let client = reqwest::Client::new();
    let sends = deliveries.iter().enumerate().map(|(i, body)| {
        let request = client
            .post(servers[i % 2].url("/webhook/tiktok"))
            .header("authorization", sign(APP_KEY, APP_SECRET, body.as_bytes()))
            .body(body.clone());
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()
        }
    });
    let acks = join_all(sends).await;

    let fresh = acks.iter().filter(|a| a.get("duplicate").is_none()).count();
    assert_eq!(fresh, ORDERS * STATUSES.len(), "one new copy per event");
    let events = get(&servers[0], "/api/events?limit=1000").await;
    let events = events.as_array().unwrap();
    assert_eq!(events.len(), ORDERS * STATUSES.len(), "one row per event");
    let deliveries: i64 = events
        .iter()
        .map(|e| e["deliveries"].as_i64().unwrap())
        .sum();
    assert_eq!(deliveries, (ORDERS * STATUSES.len() * DELIVERIES) as i64);

    let mut states = HashMap::new();
    for order in 0..ORDERS {
        let order_id = format!("5780000000090{order:02}");
        // Read through the other server too: both see the same database.
        let detail = get(&servers[order % 2], &format!("/api/orders/{order_id}")).await;
        states.insert(order_id.clone(), detail["order_status"].clone());
        let history = get(&servers[1], &format!("/api/orders/{order_id}/history")).await;
        assert_eq!(history.as_array().unwrap().len(), STATUSES.len());
    }
    assert!(
        states.values().all(|s| s == "DELIVERED"),
        "every order in its newest state: {states:?}"
    );

    // Both instances' workers claim from one jobs table: each event is
    // forwarded once, by one of them.
    let calls = receiver
        .wait_for_calls(ORDERS * STATUSES.len(), Duration::from_secs(30))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(calls.len(), ORDERS * STATUSES.len());
    assert_eq!(
        receiver.calls().len(),
        ORDERS * STATUSES.len(),
        "no job ran twice"
    );
}

/// Two production servers on one database, forwarding to `receiver`.
/// Started together: both migrate the same empty database at once.
async fn start_two(
    database: &TestDatabase,
    receiver: &Receiver,
    dir: &std::path::Path,
    extra: &[(&str, &str)],
) -> [Server; 2] {
    let mut vars = vec![
        ("APP_ENV", "production"),
        ("DATABASE_URL", database.url.as_str()),
        ("TIKTOK_APP_KEY", APP_KEY),
        ("TIKTOK_APP_SECRET", APP_SECRET),
        ("API_TOKENS", API_TOKEN),
        ("FORWARD_URL", receiver.url.as_str()),
        ("WEBHOOK_SECRET", "forward-secret-0123456789"),
        ("QUEUE_POLL_INTERVAL", "50ms"),
    ];
    vars.extend_from_slice(extra);
    let servers = [Server::start(dir, &vars), Server::start(dir, &vars)];
    for server in &servers {
        server.wait_healthy().await;
    }
    servers
}

/// GET with the API token; the `data` of a 200.
async fn get(server: &Server, path: &str) -> Value {
    let response = reqwest::Client::new()
        .get(server.url(path))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.json::<Value>().await.unwrap()["data"].take()
}

/// Issue-level promise of the queue with several instances: 200 events
/// stored through two servers are forwarded exactly once each, whichever
/// instance's worker claims them.
#[tokio::test]
async fn two_instances_forward_two_hundred_events_each_exactly_once() {
    if !postgres::available("two_instances_forward_two_hundred_events_each_exactly_once") {
        return;
    }
    let database = TestDatabase::create().await;
    let receiver = Receiver::start(|_| Answer::Status(200)).await;
    let dir = tempfile::tempdir().unwrap();
    let servers = start_two(&database, &receiver, dir.path(), &[("QUEUE_BATCH", "4")]).await;

    let client = reqwest::Client::new();
    let ids: Vec<String> = (0..200).map(|i| format!("74000000000920{i:03}")).collect();
    let sends = ids.iter().enumerate().map(|(i, id)| {
        let body = status_event(id, &format!("57800000000920{i:03}"), "UNPAID", now());
        let request = client
            .post(servers[i % 2].url("/webhook/tiktok"))
            .header("authorization", sign(APP_KEY, APP_SECRET, body.as_bytes()))
            .body(body);
        async move { request.send().await.unwrap().status() }
    });
    assert!(join_all(sends).await.iter().all(|s| *s == 200));

    receiver.wait_for_calls(200, Duration::from_secs(60)).await;
    // Long enough for a second claim of any job to show up.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut per_event: HashMap<String, usize> = HashMap::new();
    for call in receiver.calls() {
        let id = call.headers["webhook-id"].to_str().unwrap().to_owned();
        *per_event.entry(id).or_default() += 1;
    }
    assert_eq!(per_event.len(), 200, "every event delivered");
    assert!(
        per_event.values().all(|n| *n == 1),
        "each exactly once: {:?}",
        per_event
            .iter()
            .filter(|(_, n)| **n > 1)
            .collect::<Vec<_>>()
    );
    let done = get(&servers[1], "/api/events?status=done&limit=1000").await;
    assert_eq!(done.as_array().unwrap().len(), 200);
}
