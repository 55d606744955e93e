//! The processing queue: forwarding with retries and backoff, dead letters
//! and manual retry, the seller's own handler.

mod support;

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use async_trait::async_trait;
use serde_json::Value;
use support::{receiver::*, *};
use tiktok_webhook::{
    app::Application,
    clock::Clock,
    queue::{EventHandler, HandlerError},
    tiktok::Event,
};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn forwarding(
    receiver: &Receiver,
    extra: &[(&'static str, &'static str)],
) -> Vec<(String, String)> {
    let mut vars = vec![
        ("FORWARD_URL".to_string(), receiver.url.clone()),
        ("WEBHOOK_SECRET".into(), SECRET.into()),
        ("RETRY_BASE_DELAY".into(), "200ms".into()),
        ("RETRY_MAX_DELAY".into(), "5s".into()),
        ("QUEUE_POLL_INTERVAL".into(), "50ms".into()),
        ("FORWARD_TIMEOUT".into(), "2s".into()),
    ];
    for (k, v) in extra {
        vars.push((k.to_string(), v.to_string()));
    }
    vars
}

async fn spawn(db: Db, vars: &[(String, String)]) -> TestApp {
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    spawn_app_with(db, &vars).await
}

async fn wait_for_event(app: &TestApp, event_id: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..300 {
        let (_, event) = app.get(&format!("/api/events/{event_id}")).await;
        if done(&event["data"]) {
            return event["data"].clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("event {event_id} never reached the expected state");
}

async fn a_receiver_that_fails_three_times_gets_the_signed_event_on_the_fourth(db: Db) {
    let receiver = Receiver::start(|n| Answer::Status(if n < 3 { 503 } else { 200 })).await;
    let app = spawn(db, &forwarding(&receiver, &[])).await;
    let body = status_event("7400000000000000601", "578000000000000601", "UNPAID", now());
    assert_eq!(app.send(&body).await.status(), 200);

    let event = wait_for_event(&app, "7400000000000000601", |e| e["status"] == "done").await;
    assert_eq!(event["processed"], true);
    assert_eq!(event["success"], true);
    assert_eq!(event["attempts"], 4);

    let calls = receiver.calls();
    assert_eq!(calls.len(), 4);
    let gaps: Vec<Duration> = calls.windows(2).map(|w| w[1].at - w[0].at).collect();
    assert!(gaps[0] >= Duration::from_millis(100), "{gaps:?}");
    assert!(
        gaps[1] >= Duration::from_millis(200) && gaps[2] >= Duration::from_millis(400),
        "delays grow: {gaps:?}"
    );
    let last = calls.last().unwrap();
    assert_eq!(
        last.body,
        body.as_bytes(),
        "the stored raw body, byte for byte"
    );
    assert!(verify_standard_webhook(SECRET, &last.headers, &last.body));
    assert_eq!(last.headers["webhook-id"], "7400000000000000601");

    let (_, attempts) = app.get("/api/events/7400000000000000601/attempts").await;
    let outcomes: Vec<&str> = attempts["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["retry", "retry", "retry", "success"]);
    assert_eq!(attempts["data"][0]["status_code"], 503);
    let (_, order) = app.get("/api/orders/578000000000000601").await;
    assert_eq!(order["data"]["processed"], true);
    app.stop().await;
}

async fn an_always_failing_receiver_dead_letters_and_a_manual_retry_delivers(db: Db) {
    let receiver = Receiver::start(|_| Answer::Status(500)).await;
    let app = spawn(db, &forwarding(&receiver, &[("RETRY_MAX_ATTEMPTS", "3")])).await;
    let body = status_event("7400000000000000602", "578000000000000602", "UNPAID", now());
    assert_eq!(app.send(&body).await.status(), 200);

    let event = wait_for_event(&app, "7400000000000000602", |e| e["status"] == "dead").await;
    assert_eq!(event["processed"], true);
    assert_eq!(event["success"], false);
    assert!(event["error_message"].as_str().unwrap().contains("500"));
    assert_eq!(receiver.calls().len(), 3);
    let (_, dead) = app.get("/api/events?status=dead").await;
    assert_eq!(dead["data"][0]["event_id"], "7400000000000000602");
    let (_, queue) = app.get("/api/orders/queue/unprocessed").await;
    assert_eq!(queue["data"][0]["order_id"], "578000000000000602");

    receiver.set_script(|_| Answer::Status(204));
    let retry = app
        .client
        .post(format!(
            "{}/api/orders/578000000000000602/retry",
            app.address
        ))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(retry.status(), 200);
    let event = wait_for_event(&app, "7400000000000000602", |e| e["status"] == "done").await;
    assert_eq!(event["success"], true);
    assert_eq!(receiver.delivered(), 1);
    let (_, queue) = app.get("/api/orders/queue/unprocessed").await;
    assert_eq!(queue["data"], serde_json::json!([]));
    app.stop().await;
}

async fn retry_after_is_honoured(db: Db) {
    let receiver = Receiver::start(|n| {
        if n == 0 {
            Answer::RetryAfter(1)
        } else {
            Answer::Status(200)
        }
    })
    .await;
    let app = spawn(db, &forwarding(&receiver, &[])).await;
    let body = status_event("7400000000000000603", "578000000000000603", "UNPAID", now());
    assert_eq!(app.send(&body).await.status(), 200);
    wait_for_event(&app, "7400000000000000603", |e| e["status"] == "done").await;
    let calls = receiver.calls();
    assert!(calls[1].at - calls[0].at >= Duration::from_millis(950));
    app.stop().await;
}

async fn retrying_an_unknown_event_is_404(db: Db) {
    let app = spawn_app(db).await;
    let response = app
        .client
        .post(format!("{}/api/events/nope/retry", app.address))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    app.stop().await;
}

/// A seller's handler: counts calls, fails the first call of each event.
struct Flaky(AtomicUsize);

#[async_trait]
impl EventHandler for Flaky {
    async fn handle(&self, _event: &Event) -> Result<(), HandlerError> {
        if self.0.fetch_add(1, Ordering::SeqCst) == 0 {
            return Err(HandlerError::retry("the print provider is down"));
        }
        Ok(())
    }
}

async fn the_sellers_own_handler_runs_once_per_event_and_is_retried(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let (url, _database) = fresh_database(db, dir.path()).await;
    let settings = settings(
        &url,
        &[
            ("RETRY_BASE_DELAY", "100ms"),
            ("QUEUE_POLL_INTERVAL", "50ms"),
        ],
    );
    let handler = Arc::new(Flaky(AtomicUsize::new(0)));
    let app = Application::build_with(settings, Clock::system(), Some(handler.clone()))
        .await
        .unwrap();
    let address = format!("http://127.0.0.1:{}", app.port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));

    let body = status_event("7400000000000000604", "578000000000000604", "UNPAID", now());
    let client = reqwest::Client::new();
    for _ in 0..3 {
        let response = client
            .post(format!("{address}/webhook/tiktok"))
            .header(
                "authorization",
                tiktok_webhook::tiktok::signature::sign(APP_KEY, APP_SECRET, body.as_bytes()),
            )
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    for _ in 0..200 {
        if handler.0.load(Ordering::SeqCst) >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        handler.0.load(Ordering::SeqCst),
        2,
        "one failure, one success, duplicates not handled"
    );
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

async fn a_redirect_is_not_a_delivery(db: Db) {
    let receiver = Receiver::start(|n| Answer::Status(if n == 0 { 302 } else { 200 })).await;
    let app = spawn(db, &forwarding(&receiver, &[])).await;
    let body = status_event("7400000000000000605", "578000000000000605", "UNPAID", now());
    assert_eq!(app.send(&body).await.status(), 200);
    let event = wait_for_event(&app, "7400000000000000605", |e| e["status"] == "done").await;
    assert_eq!(
        event["attempts"], 2,
        "the 302 was retried, not counted as delivered"
    );
    let (_, attempts) = app.get("/api/events/7400000000000000605/attempts").await;
    assert_eq!(attempts["data"][0]["status_code"], 302);
    app.stop().await;
}

async fn an_unreadable_event_belongs_to_its_order_and_is_retried_with_it(db: Db) {
    let app = spawn_app(db).await;
    let body = format!(
        r#"{{"type":1,"tts_notification_id":"7400000000000000606","shop_id":"1","timestamp":{},"data":{{"order_id":"578000000000000606","order_status":"UNPAID","update_time":"soon"}}}}"#,
        now()
    );
    assert_eq!(app.send(&body).await.status(), 200);
    let (_, event) = app.get("/api/events/7400000000000000606").await;
    assert_eq!(event["data"]["success"], false);
    assert_eq!(event["data"]["order_id"], "578000000000000606");
    let (_, queue) = app.get("/api/orders/queue/unprocessed").await;
    assert_eq!(queue["data"][0]["order_id"], "578000000000000606");

    let retry: Value = app
        .client
        .post(format!(
            "{}/api/orders/578000000000000606/retry",
            app.address
        ))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        retry["data"]["event_ids"],
        serde_json::json!(["7400000000000000606"])
    );
    app.stop().await;
}

on_both_databases!(
    a_receiver_that_fails_three_times_gets_the_signed_event_on_the_fourth,
    an_always_failing_receiver_dead_letters_and_a_manual_retry_delivers,
    retry_after_is_honoured,
    retrying_an_unknown_event_is_404,
    the_sellers_own_handler_runs_once_per_event_and_is_retried,
    a_redirect_is_not_a_delivery,
    an_unreadable_event_belongs_to_its_order_and_is_retried_with_it,
);
