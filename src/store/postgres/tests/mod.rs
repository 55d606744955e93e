//! The batch write against a live server: one batch must leave the database
//! exactly as committing its events one at a time with the former per-row
//! statements ([`reference`]) would, however many of them write the same
//! rows, in whatever order.
//!
//! Needs `TEST_POSTGRES_URL` (an admin URL, as for `tests/`); without it the
//! tests say loudly on stderr that they did not run, and fail instead when
//! `REQUIRE_POSTGRES=1`.

use std::io::Write as _;

use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use rand::{rngs::StdRng, seq::SliceRandom, Rng, SeedableRng};
use secrecy::SecretString;
use serde_json::Value;
use sqlx::{Connection, PgConnection};

mod reference;

use super::{write, PgStore};
use crate::{
    config::PoolSettings,
    store::{projection::processing_outcome, Attempt, Committed, JobOutcome},
    tiktok::{Event, Topic, VerifiedBody},
};

/// The admin URL, or `None` after saying why the test cannot run.
fn admin_url(test: &str) -> Option<String> {
    let url = std::env::var("TEST_POSTGRES_URL")
        .ok()
        .filter(|url| !url.trim().is_empty());
    if url.is_none() {
        let required = std::env::var("REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "REQUIRE_POSTGRES=1 but TEST_POSTGRES_URL is not set: {test} cannot run"
        );
        // Past the harness's capture, so that a green run cannot hide it.
        let _ = writeln!(
            std::io::stderr(),
            "\n!!! NOT RUN on PostgreSQL: {test}\n!!! TEST_POSTGRES_URL is not set. Start a \
             throwaway server with `bash .ci/postgres.sh start` and export the URL it prints\n"
        );
    }
    url
}

/// A fresh database, dropped (with its connections) when the test ends.
struct Database {
    admin: String,
    name: String,
    url: String,
    store: PgStore,
}

impl Database {
    async fn create(admin: &str) -> Database {
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        let mut connection = PgConnection::connect(admin).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut connection)
            .await
            .unwrap();
        let _ = connection.close().await;
        let url = match admin.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => unreachable!("an admin URL names its database"),
        };
        let pool = PoolSettings {
            size: 2,
            acquire_timeout: std::time::Duration::from_secs(10),
        };
        let store = PgStore::open(&SecretString::from(url.clone()), pool)
            .await
            .unwrap();
        store.migrate().await.unwrap();
        Database {
            admin: admin.to_owned(),
            name,
            url,
            store,
        }
    }

    /// Stores `events` as intake does (one statement, or one transaction of
    /// the general path), at the fixed time `now`.
    async fn commit(&self, events: &[Event], now: DateTime<Utc>) -> Vec<Committed> {
        let mut conn = self.store.writer.acquire().await.unwrap();
        write::commit(&mut conn, events, now, None).await.unwrap()
    }

    /// Stores `events` one at a time, each in its own transaction, with the
    /// former per-row statements.
    async fn commit_one_by_one(&self, events: &[Event], now: DateTime<Utc>) -> Vec<Committed> {
        let mut outcomes = Vec::new();
        for event in events {
            let mut tx = self.store.writer.begin().await.unwrap();
            outcomes.push(reference::store_event(&mut tx, event, now).await.unwrap());
            tx.commit().await.unwrap();
        }
        outcomes
    }

    /// Every table the write path fills, row by row in key order, without
    /// the identity columns (they count insertions, which differ by design).
    async fn dump(&self) -> Vec<(&'static str, Value)> {
        let tables = [
            ("webhook_events", "event_id"),
            ("tiktok_orders", "order_id"),
            ("order_status_history", "order_id, event_id"),
            ("order_requests", "order_id, kind, request_id"),
            ("packages", "package_id"),
            ("package_orders", "package_id, order_id"),
            ("products", "product_id"),
            ("shops", "shop_id"),
            ("jobs", "event_id"),
        ];
        let mut out = Vec::new();
        for (table, key) in tables {
            let rows: Value = sqlx::query_scalar(&format!(
                "SELECT COALESCE(jsonb_agg(to_jsonb(t) - 'id' ORDER BY {key}), '[]'::jsonb)
                 FROM {table} t"
            ))
            .fetch_one(&self.store.pool)
            .await
            .unwrap();
            out.push((table, rows));
        }
        out
    }

    async fn drop(self) {
        self.store.close().await;
        let mut connection = PgConnection::connect(&self.admin).await.unwrap();
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&mut connection)
        .await
        .unwrap();
    }
}

/// A type `code` event with `data`, its id made unique by a counter.
fn generator_event(code: i64, data: &str) -> Event {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    event(&body(code, &format!("7499{n:04}"), None, Some(1), data))
}

fn event(body: &str) -> Event {
    Event::parse(VerifiedBody::from_storage(Bytes::from(body.to_owned()))).unwrap()
}

/// `"name":value,` or nothing, for an optional member.
fn member(name: &str, value: Option<impl std::fmt::Display>) -> String {
    value.map_or_else(String::new, |v| format!(r#""{name}":{v},"#))
}

fn body(kind: i64, id: &str, shop: Option<&str>, timestamp: Option<i64>, data: &str) -> String {
    format!(
        r#"{{"type":{kind},"tts_notification_id":"{id}",{}{}"data":{data}}}"#,
        member("shop_id", shop.map(|s| format!(r#""{s}""#))),
        member("timestamp", timestamp),
    )
}

/// Random events over a handful of orders, requests, packages, products and
/// shops, so that a batch writes most rows several times; times are often
/// equal or missing.
struct Generator {
    rng: StdRng,
    next_id: u64,
}

impl Generator {
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from.choose(&mut self.rng).unwrap()
    }

    fn time(&mut self) -> Option<i64> {
        self.rng
            .gen_bool(0.8)
            .then(|| 1_800_000_000 + self.rng.gen_range(0..4))
    }

    fn text(&mut self, from: &[&str]) -> String {
        match self.rng.gen_bool(0.15) {
            true => "null".to_owned(),
            false => format!(r#""{}""#, self.pick(from)),
        }
    }

    fn orders(&mut self) -> String {
        let count = self.rng.gen_range(0..3);
        let ids: Vec<String> = (0..count)
            .map(|_| format!(r#""{}""#, self.pick(&["5780001", "5780002", "5780003"])))
            .collect();
        format!("[{}]", ids.join(","))
    }

    /// An event with no projection but its shop's activity, or one that
    /// changes `order`: a status change, or with `touch` an address update
    /// or a status change with a null status (both only touch the order).
    fn flash_sale_event(&mut self, order: &str, touch: bool) -> String {
        self.next_id += 1;
        let id = format!("74{:06}", self.next_id);
        let shop = [Some("7495001"), Some("7495002"), None][self.rng.gen_range(0..3)];
        let timestamp = self.time();
        let update_time = member("update_time", self.time());
        let (code, data) = match (self.rng.gen_range(0..5), touch) {
            (0, _) => (99, r#"{"anything":1}"#.to_owned()),
            (1 | 2, true) => (3, format!(r#"{{{update_time}"order_id":"{order}"}}"#)),
            (_, touch) => {
                let status = match touch {
                    true => "null".to_owned(),
                    false => format!(
                        r#""{}""#,
                        self.pick(&["UNPAID", "AWAITING_SHIPMENT", "IN_TRANSIT"])
                    ),
                };
                let hold = member(
                    "is_on_hold_order",
                    [Some(true), Some(false), None][self.rng.gen_range(0..3)],
                );
                let data = format!(
                    r#"{{{hold}{update_time}"order_status":{status},"order_id":"{order}"}}"#
                );
                (1, data)
            }
        };
        body(code, &id, shop, timestamp, &data)
    }

    fn event(&mut self) -> String {
        self.next_id += 1;
        let id = format!("74{:06}", self.next_id);
        let shop = [Some("7495001"), Some("7495002"), None][self.rng.gen_range(0..3)];
        let timestamp = self.time();
        let order = self.pick(&["5780001", "5780002", "5780003"]);
        let update_time = member("update_time", self.time());
        let product = self.pick(&["1731001", "1731002"]);
        let kind = self.rng.gen_range(0..17);
        let (code, data) = match kind {
            0..=2 => {
                let status = self.text(&["UNPAID", "AWAITING_SHIPMENT", "IN_TRANSIT"]);
                let hold = member(
                    "is_on_hold_order",
                    [Some(true), Some(false), None][self.rng.gen_range(0..3)],
                );
                let data = format!(
                    r#"{{{hold}{update_time}"order_status":{status},"order_id":"{order}"}}"#
                );
                (1, data)
            }
            3 => (3, format!(r#"{{{update_time}"order_id":"{order}"}}"#)),
            // No reader accepts an object for a status: a malformed event
            // that still names its order.
            4 => (
                1,
                format!(r#"{{"order_status":{{"a":1}},"order_id":"{order}"}}"#),
            ),
            5 => {
                let status = self.text(&["CANCELLATION_REQUEST_PENDING", "CANCELLED"]);
                let cancel = self.pick(&["4035001", "4035002"]);
                let data = format!(
                    r#"{{"order_id":"{order}","cancel_id":"{cancel}","cancel_status":{status},"cancellations_role":"BUYER"}}"#
                );
                (11, data)
            }
            6 => {
                let status = self.text(&["RETURN_PENDING", "RETURN_COMPLETE"]);
                let role = self.text(&["BUYER", "SELLER"]);
                let data = format!(
                    r#"{{{update_time}"order_id":"{order}","return_id":"4036001","return_status":{status},"return_role":{role},"return_type":"REFUND"}}"#
                );
                (12, data)
            }
            7 => {
                let (a, b) = (
                    self.pick(&["5780001", "5780002"]),
                    self.pick(&["5780002", "5780003"]),
                );
                let amount = self.text(&["1.00", "2.50"]);
                let data = format!(
                    r#"{{{}"aftersales_request_id":"5761001","line_items":[{{"main_order_id":"{a}"}},{{"main_order_id":"{b}"}}],"refund_status":"REFUND_SUCCESS","refund_total":{amount},"refund_currency":"EUR"}}"#,
                    member("refund_timestamp", self.time())
                );
                (67, data)
            }
            8 | 9 => {
                let mut packages = Vec::new();
                for _ in 0..self.rng.gen_range(1..3) {
                    let package = self.pick(&["1154001", "1154002"]);
                    let orders = self.orders();
                    packages.push(format!(
                        r#"{{"package_id":"{package}","order_id_list":{orders}}}"#
                    ));
                }
                let sc = self.text(&["SPLIT", "COMBINE"]);
                let data = format!(
                    r#"{{{update_time}"sc_type":{sc},"role_type":"ROLE_SELLER","package_list":[{}]}}"#,
                    packages.join(",")
                );
                (4, data)
            }
            10 => {
                let package = self.pick(&["1154001", "1154002"]);
                let orders = self.orders();
                let status = self.text(&["SUCCESS", "FAILURE"]);
                let data = format!(
                    r#"{{"package_id":"{package}","order_ids":{orders},"invoice_status":{status},"invalid_reason":""}}"#
                );
                (36, data)
            }
            11 => {
                let status = self.text(&["PRODUCT_ACTIVATE", "PRODUCT_AUDIT_FAILURE"]);
                let data = format!(
                    r#"{{{update_time}"product_id":"{product}","status":{status},"suspended_reason":"r"}}"#
                );
                (5, data)
            }
            12 => {
                let fields = match self.rng.gen_range(0..3) {
                    0 => "[]",
                    1 => r#"["description","skus"]"#,
                    _ => r#"["a \"quoted\" ü","\\ back"]"#,
                };
                let data = format!(
                    r#"{{{update_time}"product_id":"{product}","change_source":"SELLER_CENTER","changed_fields":{fields}}}"#
                );
                (15, data)
            }
            13 => {
                let types = ["[]", r#"["GPR_PRODUCT"]"#, r#"["A","B"]"#][self.rng.gen_range(0..3)];
                let data =
                    format!(r#"{{{update_time}"product_id":"{product}","product_types":{types}}}"#);
                (16, data)
            }
            14 => {
                let (from, to) = (self.text(&["601", "602"]), self.text(&["603", "604"]));
                let data = format!(
                    r#"{{{update_time}"product_id":"{product}","previous_category_id":{from},"current_category_id":{to}}}"#
                );
                (18, data)
            }
            15 => match self.rng.gen_range(0..3) {
                0 => (6, r#"{"message":"gone"}"#.to_owned()),
                1 => {
                    let expires = member(
                        "expiration_time",
                        self.time().map(|t| format!(r#""{}""#, t + 1000)),
                    );
                    (7, format!(r#"{{{expires}"message":"soon"}}"#))
                }
                _ => {
                    let status = self.text(&["APPROVED", "FAILED"]);
                    let data = format!(
                        r#"{{{update_time}"product_id":"{product}","audit":{{"status":{status}}}}}"#
                    );
                    (37, data)
                }
            },
            _ => (99, r#"{"anything":1}"#.to_owned()),
        };
        let body = body(code, &id, shop, timestamp, &data);
        if kind == 4 {
            let parsed = event(&body);
            assert!(
                matches!(
                    parsed.topic,
                    Topic::Malformed {
                        order_id: Some(_),
                        ..
                    }
                ),
                "the malformed generator makes a malformed event: {body}"
            );
            assert!(!processing_outcome(&parsed).0);
        }
        body
    }
}

fn now() -> DateTime<Utc> {
    Utc.timestamp_opt(1_900_000_000, 0).unwrap()
}

/// Commits `stored` one by one on both databases (in one batch each on the
/// first), then `batch` as one batch on the first and one event at a time
/// with the former statements on the second; both must end equal.
async fn batch_equals_one_at_a_time(
    batched: &Database,
    single: &Database,
    stored: &[String],
    batch: &[String],
) {
    let now = now();
    for body in stored {
        let one = [event(body)];
        batched.commit(&one, now).await;
        single.commit_one_by_one(&one, now).await;
    }
    // The queue has been at work meanwhile: orders done, some with an error.
    for db in [batched, single] {
        sqlx::query(
            "UPDATE tiktok_orders SET processed = true, error_message = CASE
                 WHEN order_id LIKE '%2' THEN 'an earlier failure' ELSE error_message END",
        )
        .execute(&db.store.pool)
        .await
        .unwrap();
    }
    let events: Vec<Event> = batch.iter().map(|b| event(b)).collect();
    let together = batched.commit(&events, now).await;
    let apart = single.commit_one_by_one(&events, now).await;
    assert_eq!(together, apart, "outcomes of {batch:#?}");
    for ((table, a), (_, b)) in batched.dump().await.into_iter().zip(single.dump().await) {
        assert_eq!(
            a, b,
            "{table} differs after the batch (left) and one at a time (right); \
             stored before: {stored:#?}, batch: {batch:#?}"
        );
    }
}

async fn empty(databases: [&Database; 2]) {
    for db in databases {
        sqlx::query(
            "TRUNCATE webhook_events, tiktok_orders, order_status_history, order_requests,
                 packages, package_orders, products, shops, jobs",
        )
        .execute(&db.store.pool)
        .await
        .unwrap();
    }
}

/// Several writes to one order, request, package, product and shop in one
/// batch, out of order, and two copies of one event.
#[tokio::test]
async fn a_batch_with_repeated_rows_ends_as_its_events_one_at_a_time() {
    let test = "a_batch_with_repeated_rows_ends_as_its_events_one_at_a_time";
    let Some(admin) = admin_url(test) else {
        return;
    };
    let (a, b) = (
        Database::create(&admin).await,
        Database::create(&admin).await,
    );
    let shop = Some("7495009");
    let status = |id: &str, status: &str, time: i64| {
        body(
            1,
            id,
            shop,
            Some(time),
            &format!(r#"{{"order_id":"578009","order_status":"{status}","update_time":{time}}}"#),
        )
    };
    let package = |id: &str, kind: &str, orders: &str, time: i64| {
        body(
            4,
            id,
            shop,
            Some(time),
            &format!(
                r#"{{"sc_type":"{kind}","package_list":[{{"package_id":"1154009","order_id_list":[{orders}]}}],"update_time":{time}}}"#
            ),
        )
    };
    let ret = |id: &str, status: &str, time: i64| {
        body(
            12,
            id,
            shop,
            Some(time),
            &format!(
                r#"{{"order_id":"578009","return_id":"4036009","return_status":"{status}","update_time":{time}}}"#
            ),
        )
    };
    let product = |id: &str, status: &str, time: i64| {
        body(
            5,
            id,
            shop,
            Some(time),
            &format!(r#"{{"product_id":"1731009","status":"{status}","update_time":{time}}}"#),
        )
    };
    let stored = [
        status("7409000", "UNPAID", 1_800_000_000),
        body(
            1,
            "7409050",
            shop,
            Some(1_800_000_500),
            r#"{"order_id":"578019","order_status":"DELIVERED","update_time":1800000500}"#,
        ),
    ];
    let batch = [
        status("7409003", "IN_TRANSIT", 1_800_000_300),
        status("7409001", "AWAITING_SHIPMENT", 1_800_000_100),
        stored[0].clone(),
        status("7409002", "AWAITING_COLLECTION", 1_800_000_200),
        status("7409003", "IN_TRANSIT", 1_800_000_300),
        body(
            1,
            "7409004",
            shop,
            None,
            r#"{"order_id":"578009","order_status":"DELIVERED"}"#,
        ),
        body(
            3,
            "7409005",
            shop,
            Some(1_800_000_050),
            r#"{"order_id":"578009","update_time":1800000050}"#,
        ),
        package("7409011", "COMBINE", r#""578009","578010""#, 1_800_000_150),
        package("7409010", "SPLIT", r#""578013""#, 1_800_000_100),
        body(
            36,
            "7409012",
            shop,
            Some(1_800_000_160),
            r#"{"package_id":"1154009","order_ids":["578011"],"invoice_status":"SUCCESS"}"#,
        ),
        package("7409013", "SPLIT", r#""578012""#, 1_800_000_090),
        ret("7409021", "RETURN_COMPLETE", 1_800_000_120),
        ret("7409020", "RETURN_PENDING", 1_800_000_110),
        product("7409031", "PRODUCT_ACTIVATE", 1_800_000_130),
        product("7409030", "PRODUCT_AUDIT_FAILURE", 1_800_000_110),
        body(
            37,
            "7409032",
            shop,
            Some(1_800_000_100),
            r#"{"product_id":"1731009","audit":{"status":"APPROVED"},"update_time":1800000100}"#,
        ),
        body(
            6,
            "7409040",
            shop,
            Some(1_800_000_250),
            r#"{"message":"gone"}"#,
        ),
        body(
            7,
            "7409041",
            shop,
            Some(1_800_000_240),
            r#"{"message":"soon","expiration_time":"1900000000"}"#,
        ),
        body(
            1,
            "7409042",
            shop,
            Some(1_800_000_240),
            r#"{"order_id":"578009","order_status":{"a":1}}"#,
        ),
        // Older than the stored state: only the processing state changes.
        body(
            1,
            "7409051",
            shop,
            Some(1_800_000_400),
            r#"{"order_id":"578019","order_status":"IN_TRANSIT","update_time":1800000400}"#,
        ),
    ];
    batch_equals_one_at_a_time(&a, &b, &stored, &batch).await;

    // The batch really went in several rounds and kept the newest values.
    let order: (String, Option<i64>, bool, Option<String>) = sqlx::query_as(
        "SELECT order_status, update_time, processed, error_message
         FROM tiktok_orders WHERE order_id = '578009'",
    )
    .fetch_one(&a.store.pool)
    .await
    .unwrap();
    assert_eq!(
        order.0, "DELIVERED",
        "a status without a time always applies"
    );
    assert_eq!(order.1, Some(1_800_000_300));
    assert!(!order.2);
    assert!(order.3.is_some(), "the malformed event's reason shows");
    let late: (String, bool) = sqlx::query_as(
        "SELECT order_status, processed FROM tiktok_orders WHERE order_id = '578019'",
    )
    .fetch_one(&a.store.pool)
    .await
    .unwrap();
    assert_eq!(
        late,
        ("DELIVERED".to_owned(), false),
        "a late event waits in the queue"
    );
    let orders: Vec<String> = sqlx::query_scalar(
        "SELECT order_id FROM package_orders WHERE package_id = '1154009' ORDER BY order_id",
    )
    .fetch_all(&a.store.pool)
    .await
    .unwrap();
    assert_eq!(
        orders,
        ["578009", "578010", "578011"],
        "the newest package update set the list, the invoice added to it, older updates did not"
    );
    a.drop().await;
    b.drop().await;
}

/// Random batches over few rows, on top of random stored state.
#[tokio::test]
async fn random_batches_end_as_their_events_one_at_a_time() {
    let test = "random_batches_end_as_their_events_one_at_a_time";
    let Some(admin) = admin_url(test) else {
        return;
    };
    let (a, b) = (
        Database::create(&admin).await,
        Database::create(&admin).await,
    );
    for seed in 0..150 {
        let mut generator = Generator {
            rng: StdRng::seed_from_u64(seed),
            next_id: 0,
        };
        let stored: Vec<String> = (0..generator.rng.gen_range(0..8))
            .map(|_| generator.event())
            .collect();
        // Small batches too: in a large one, a later write of the same row
        // often hides what an earlier one did wrong.
        let size = match seed % 2 {
            0 => generator.rng.gen_range(1..6),
            _ => generator.rng.gen_range(6..40),
        };
        let mut batch: Vec<String> = (0..size).map(|_| generator.event()).collect();
        // Copies: of events in this batch and of events stored before.
        for _ in 0..generator.rng.gen_range(0..4) {
            let copy = match stored.choose(&mut generator.rng) {
                Some(old) if generator.rng.gen_bool(0.3) => old.clone(),
                _ => batch.choose(&mut generator.rng).unwrap().clone(),
            };
            let at = generator.rng.gen_range(0..=batch.len());
            batch.insert(at, copy);
        }
        batch_equals_one_at_a_time(&a, &b, &stored, &batch).await;
        empty([&a, &b]).await;
    }
    a.drop().await;
    b.drop().await;
}

/// Random batches of the shape a flash sale sends (status changes, address
/// updates and events that only show shop activity, each order once), which
/// go as one statement, on top of stored events of the same orders, with
/// copies of stored events and of each other.
#[tokio::test]
async fn one_statement_batches_end_as_their_events_one_at_a_time() {
    let test = "one_statement_batches_end_as_their_events_one_at_a_time";
    let Some(admin) = admin_url(test) else {
        return;
    };
    let (a, b) = (
        Database::create(&admin).await,
        Database::create(&admin).await,
    );
    let mut one_statement = 0;
    for seed in 0..120 {
        let mut generator = Generator {
            rng: StdRng::seed_from_u64(seed),
            next_id: 0,
        };
        let orders = [
            "5780001", "5780002", "5780003", "5780004", "5780005", "5780006",
        ];
        let stored: Vec<String> = (0..generator.rng.gen_range(0..8))
            .map(|_| {
                let order = generator.pick(&orders);
                let touch = generator.rng.gen_bool(0.3);
                generator.flash_sale_event(order, touch)
            })
            .collect();
        // A batch changes its orders' status, or only touches them.
        let touch = seed % 3 == 0;
        let mut picked = orders.to_vec();
        picked.shuffle(&mut generator.rng);
        picked.truncate(generator.rng.gen_range(1..=orders.len()));
        let mut batch: Vec<String> = picked
            .iter()
            .map(|order| generator.flash_sale_event(order, touch))
            .collect();
        for _ in 0..generator.rng.gen_range(0..4) {
            let copy = match stored.choose(&mut generator.rng) {
                Some(old) if generator.rng.gen_bool(0.4) => old.clone(),
                _ => batch.choose(&mut generator.rng).unwrap().clone(),
            };
            let at = generator.rng.gen_range(0..=batch.len());
            batch.insert(at, copy);
        }
        let events: Vec<Event> = batch.iter().map(|body| event(body)).collect();
        if super::one_statement::OneStatement::of(&events).is_some() {
            one_statement += 1;
        }
        batch_equals_one_at_a_time(&a, &b, &stored, &batch).await;
        empty([&a, &b]).await;
    }
    // Status changes and touches together would be two upserts of one
    // table, whose locks nothing keeps in key order.
    let mixed = vec![
        generator_event(1, r#"{"order_id":"5780001","order_status":"UNPAID"}"#),
        generator_event(3, r#"{"order_id":"5780002"}"#),
    ];
    assert!(super::one_statement::OneStatement::of(&mixed).is_none());
    // A stored copy naming an order that the batch names again, or of a
    // kind the batch does not have, sends it the general way; most go as
    // one statement.
    assert!(
        one_statement >= 60,
        "only {one_statement} of 120 batches went as one statement"
    );
    a.drop().await;
    b.drop().await;
}

/// Two instances sending one-statement batches over the same orders at once:
/// every batch goes in (a deadlock between two of them is run again), and
/// every event is stored once.
#[tokio::test]
async fn two_instances_with_overlapping_one_statement_batches_all_go_in() {
    let test = "two_instances_with_overlapping_one_statement_batches_all_go_in";
    let Some(admin) = admin_url(test) else {
        return;
    };
    let db = Database::create(&admin).await;
    let orders: Vec<String> = (0..40).map(|i| format!("57810{i:02}")).collect();
    let pool = PoolSettings {
        size: 2,
        acquire_timeout: std::time::Duration::from_secs(10),
    };
    let mut instances = tokio::task::JoinSet::new();
    for instance in 0..2u64 {
        let store = PgStore::open(&SecretString::from(db.url.clone()), pool)
            .await
            .unwrap();
        let orders = orders.clone();
        instances.spawn(async move {
            let mut generator = Generator {
                rng: StdRng::seed_from_u64(instance),
                next_id: instance * 1_000_000,
            };
            for round in 0..40 {
                let mut picked: Vec<&str> = orders.iter().map(String::as_str).collect();
                picked.shuffle(&mut generator.rng);
                let bodies: Vec<String> = picked[..16]
                    .iter()
                    .map(|order| generator.flash_sale_event(order, round % 3 == 0))
                    .collect();
                let events: Vec<Event> = bodies.iter().map(|b| event(b)).collect();
                assert!(super::one_statement::OneStatement::of(&events).is_some());
                if let Err(e) = store.commit(&events, None).await {
                    panic!("instance {instance}, batch {round}: {e}");
                }
            }
            store.close().await;
        });
    }
    while let Some(done) = instances.join_next().await {
        done.unwrap();
    }
    let (events, jobs): (i64, i64) =
        sqlx::query_as("SELECT (SELECT count(*) FROM webhook_events), (SELECT count(*) FROM jobs)")
            .fetch_one(&db.store.pool)
            .await
            .unwrap();
    assert_eq!((events, jobs), (2 * 40 * 16, 2 * 40 * 16));
    db.drop().await;
}

/// A batch that PostgreSQL ends to break a deadlock is run again, whole.
#[tokio::test]
async fn a_batch_chosen_to_break_a_deadlock_is_run_again() {
    let test = "a_batch_chosen_to_break_a_deadlock_is_run_again";
    let Some(admin) = admin_url(test) else {
        return;
    };
    let db = Database::create(&admin).await;
    let status = |id: &str, order: &str, time: i64| {
        event(&body(
            1,
            id,
            Some("7495009"),
            Some(time),
            &format!(
                r#"{{"order_id":"{order}","order_status":"IN_TRANSIT","update_time":{time}}}"#
            ),
        ))
    };
    db.store
        .commit(
            &[
                status("7409101", "578101", 1),
                status("7409102", "578102", 1),
            ],
            None,
        )
        .await
        .unwrap();

    // Another transaction takes the orders in the opposite order: 578102,
    // then (while the batch holds 578101 and waits for 578102) 578101. It
    // waits long before checking for a deadlock, so the batch's check, after
    // the default second, finds it and ends the batch.
    let mut other = db.store.pool.begin().await.unwrap();
    sqlx::query("SET LOCAL deadlock_timeout = '20s'")
        .execute(&mut *other)
        .await
        .unwrap();
    sqlx::query("SELECT FROM tiktok_orders WHERE order_id = '578102' FOR UPDATE")
        .execute(&mut *other)
        .await
        .unwrap();
    let store = db.store.clone();
    let batch = tokio::spawn(async move {
        store
            .commit(
                &[
                    status("7409111", "578101", 2),
                    status("7409112", "578102", 2),
                ],
                None,
            )
            .await
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    sqlx::query("SELECT FROM tiktok_orders WHERE order_id = '578101' FOR UPDATE")
        .execute(&mut *other)
        .await
        .unwrap();
    other.commit().await.unwrap();

    let outcomes = batch
        .await
        .unwrap()
        .expect("the batch went in on a later try");
    assert!(outcomes.iter().all(|c| !c.duplicate && c.deliveries == 1));
    let times: Vec<Option<i64>> =
        sqlx::query_scalar("SELECT update_time FROM tiktok_orders ORDER BY order_id")
            .fetch_all(&db.store.pool)
            .await
            .unwrap();
    assert_eq!(times, [Some(2), Some(2)]);
    db.drop().await;
}

/// Two instances committing overlapping batches at once, over rows that
/// exist already: every transaction takes its locks in the global order, so
/// they wait for each other and never deadlock. Each batch is tried once
/// (`commit_once`, not `commit`, which would hide a deadlock by trying
/// again). New rows of two kinds in one batch are the documented exception
/// (`project.rs`), left out here.
#[tokio::test]
async fn two_instances_with_overlapping_batches_wait_rather_than_deadlock() {
    let test = "two_instances_with_overlapping_batches_wait_rather_than_deadlock";
    let Some(admin) = admin_url(test) else {
        return;
    };
    let db = Database::create(&admin).await;
    // Every order, request, package, product and shop the generator names.
    let mut warm_up = Generator {
        rng: StdRng::seed_from_u64(1_000),
        next_id: 500_000,
    };
    let bodies: Vec<String> = (0..400).map(|_| warm_up.event()).collect();
    let events: Vec<Event> = bodies.iter().map(|b| event(b)).collect();
    db.store.commit(&events, None).await.unwrap();
    let rows: (i64, i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM tiktok_orders), (SELECT count(*) FROM order_requests),
             (SELECT count(*) FROM packages), (SELECT count(*) FROM products),
             (SELECT count(*) FROM shops)",
    )
    .fetch_one(&db.store.pool)
    .await
    .unwrap();
    assert_eq!(rows, (3, 12, 2, 2, 2), "the warm-up made every row");

    let pool = PoolSettings {
        size: 2,
        acquire_timeout: std::time::Duration::from_secs(10),
    };
    let mut instances = tokio::task::JoinSet::new();
    for instance in 0..2u64 {
        let store = PgStore::open(&SecretString::from(db.url.clone()), pool)
            .await
            .unwrap();
        instances.spawn(async move {
            let mut generator = Generator {
                rng: StdRng::seed_from_u64(instance),
                next_id: instance * 1_000_000,
            };
            for round in 0..30 {
                let bodies: Vec<String> = (0..24).map(|_| generator.event()).collect();
                let events: Vec<Event> = bodies.iter().map(|b| event(b)).collect();
                if let Err(e) = store.commit_once(&events, None).await {
                    panic!("instance {instance}, batch {round}: {e}");
                }
            }
            store.close().await;
        });
    }
    while let Some(done) = instances.join_next().await {
        done.unwrap();
    }
    db.drop().await;
}

/// A finishing batch is sent in rounds sorted by event id, but an order's
/// error is still that of its last attempt in the worker's order, as when
/// attempts were recorded one at a time (and as on SQLite).
#[tokio::test]
async fn an_orders_error_is_that_of_its_last_attempt_in_the_batch() {
    let test = "an_orders_error_is_that_of_its_last_attempt_in_the_batch";
    let Some(admin) = admin_url(test) else {
        return;
    };
    let db = Database::create(&admin).await;
    let data =
        r#"{"order_id":"576000000000000001","order_status":"UNPAID","update_time":1800000000}"#;
    // "…01" sorts first, "…02" last.
    let ids = ["7000000000000000001", "7000000000000000002"];
    let events: Vec<Event> = ids
        .iter()
        .map(|id| {
            event(&body(
                1,
                id,
                Some("7495000000000000001"),
                Some(1_800_000_000),
                data,
            ))
        })
        .collect();
    db.commit(&events, now()).await;
    let error = |order: &str| {
        let pool = db.store.pool.clone();
        let order = order.to_owned();
        async move {
            sqlx::query_scalar::<_, Option<String>>(
                "SELECT error_message FROM tiktok_orders WHERE order_id = $1",
            )
            .bind(order)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    let attempt = |event_id: &str, outcome: JobOutcome, error: Option<&str>| Attempt {
        event_id: event_id.to_owned(),
        owner: "worker".to_owned(),
        attempt: 1,
        started_at: now(),
        finished_at: now(),
        outcome,
        status_code: None,
        error: error.map(str::to_owned),
    };
    let retry = JobOutcome::Retry {
        at: now() + chrono::Duration::hours(1),
    };

    // The larger id fails first, the smaller succeeds last: no error.
    let claimed = db
        .store
        .claim_jobs(
            "worker",
            10,
            now() + chrono::Duration::minutes(5),
            now(),
            true,
        )
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    let held = db
        .store
        .finish_jobs(&[
            attempt(ids[1], retry.clone(), Some("boom")),
            attempt(ids[0], JobOutcome::Success, None),
        ])
        .await
        .unwrap();
    assert_eq!(held, [true, true]);
    assert_eq!(error("576000000000000001").await, None);

    // Only the failed one is due again; it fails once more, last: its error.
    let later = now() + chrono::Duration::hours(2);
    let claimed = db
        .store
        .claim_jobs(
            "worker",
            10,
            later + chrono::Duration::minutes(5),
            later,
            true,
        )
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let mut again = attempt(ids[1], retry, Some("boom again"));
    again.attempt = 2;
    assert_eq!(db.store.finish_jobs(&[again]).await.unwrap(), [true]);
    assert_eq!(
        error("576000000000000001").await.as_deref(),
        Some("boom again")
    );
    db.drop().await;
}

/// Health follows what intake meets: a database that still answers but
/// refuses writes (here: turned read-only) fails `ping` once a commit has
/// failed, and `ping`'s own test commit clears that as soon as writes work
/// again, with no intake traffic needed.
#[tokio::test]
async fn ping_reports_failing_writes_and_recovers_by_itself() {
    let test = "ping_reports_failing_writes_and_recovers_by_itself";
    let Some(admin) = admin_url(test) else {
        return;
    };
    let db = Database::create(&admin).await;
    let read_only = |on: bool| {
        let (admin, name) = (db.admin.clone(), db.name.clone());
        async move {
            let mut c = PgConnection::connect(&admin).await.unwrap();
            let value = if on { "on" } else { "off" };
            sqlx::query(&format!(
                "ALTER DATABASE {name} SET default_transaction_read_only = {value}"
            ))
            .execute(&mut c)
            .await
            .unwrap();
            // Sessions read the setting when they start: end the open ones.
            sqlx::query(&format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE datname = '{name}' AND pid <> pg_backend_pid()"
            ))
            .execute(&mut c)
            .await
            .unwrap();
        }
    };
    let order = |n: u64| {
        event(&body(
            1,
            &format!("71000000000000000{n:02}"),
            Some("7495000000000000001"),
            Some(1_800_000_000),
            &format!(
                r#"{{"order_id":"5770000000000000{n:02}","order_status":"UNPAID","update_time":1800000000}}"#
            ),
        ))
    };
    db.store.ping().await.unwrap();

    read_only(true).await;
    let mut refused = None;
    for n in 0..5 {
        match db.store.commit(&[order(n)], None).await {
            Err(e) if e.to_string().contains("read-only") => {
                refused = Some(e);
                break;
            }
            // A connection ended under it: also unavailable, try again.
            Err(e) => assert!(e.is_unavailable(), "{e}"),
            Ok(_) => panic!("a read-only database stored an event"),
        }
    }
    let refused = refused.expect("the read-only database refused the commit");
    assert!(refused.is_unavailable(), "{refused}");
    let e = db
        .store
        .ping()
        .await
        .expect_err("health must fail while writes do");
    assert!(e.is_unavailable(), "{e}");
    // Intake idle: the test commit runs, and fails as intake did.
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let e = db
        .store
        .ping()
        .await
        .expect_err("the test commit fails too");
    assert!(e.to_string().contains("test commit"), "{e}");

    read_only(false).await;
    let mut healthy = false;
    for _ in 0..10 {
        if db.store.ping().await.is_ok() {
            healthy = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(healthy, "ping's test commit cleared the failure");
    assert_eq!(db.store.commit(&[order(9)], None).await.unwrap().len(), 1);
    db.drop().await;
}
