//! The real binary, killed with SIGKILL: what was acknowledged is there
//! after a restart. And a fresh start with no configuration works end to end.

mod support;

use std::{
    process::Command,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use support::{process::*, receiver::*, *};

fn production_vars(database_url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("APP_ENV", "production".into()),
        ("DATABASE_URL", database_url.into()),
        ("TIKTOK_APP_KEY", APP_KEY.into()),
        ("TIKTOK_APP_SECRET", APP_SECRET.into()),
        ("API_TOKENS", API_TOKEN.into()),
    ]
}

fn as_refs<'a>(vars: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    vars.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

async fn an_acknowledged_event_survives_sigkill(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let (url, _database) = fresh_database(db, dir.path()).await;
    let vars = production_vars(&url);
    let mut server = Server::start(dir.path(), &as_refs(&vars));
    server.wait_healthy().await;

    let client = reqwest::Client::new();
    let mut acknowledged = Vec::new();
    for i in 0..25 {
        let event_id = format!("74000000000001{i:05}");
        let body = status_event(&event_id, &format!("57800000000001{i:05}"), "UNPAID", now());
        let response = client
            .post(server.url("/webhook/tiktok"))
            .header(
                "authorization",
                tiktok_webhook::tiktok::signature::sign(APP_KEY, APP_SECRET, body.as_bytes()),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        acknowledged.push(event_id);
    }
    // No pause, no graceful stop: the process dies right after the last 200.
    server.kill();

    let server = Server::start(dir.path(), &as_refs(&vars));
    server.wait_healthy().await;
    for event_id in &acknowledged {
        let response = client
            .get(server.url(&format!("/api/events/{event_id}")))
            .bearer_auth(API_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            200,
            "event {event_id} was acknowledged and must be stored"
        );
    }
}

/// SIGKILL in the middle of a concurrent load: batches are being committed
/// while more requests wait, and some are in flight when the process dies.
/// Every event that was answered 200 must be there after the restart; the
/// ones cut off were never acknowledged, and TikTok would send them again.
async fn every_acknowledged_event_survives_sigkill_under_load(db: Db) {
    const SENDERS: usize = 32;
    const KILL_AFTER: usize = 400;
    let dir = tempfile::tempdir().unwrap();
    let (url, _database) = fresh_database(db, dir.path()).await;
    let vars = production_vars(&url);
    let mut server = Server::start(dir.path(), &as_refs(&vars));
    server.wait_healthy().await;

    let endpoint = server.url("/webhook/tiktok");
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let mut senders = tokio::task::JoinSet::new();
    for sender in 0..SENDERS {
        let (endpoint, acknowledged) = (endpoint.clone(), acknowledged.clone());
        senders.spawn(async move {
            let client = reqwest::Client::new();
            for i in 0.. {
                let event_id = format!("7410{sender:03}{i:012}");
                let body = status_event(&event_id, &format!("5781{sender:03}{i:012}"), "UNPAID", now());
                let signature = tiktok_webhook::tiktok::signature::sign(APP_KEY, APP_SECRET, body.as_bytes());
                let sent = client
                    .post(&endpoint)
                    .header("authorization", signature)
                    .body(body)
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == 200 => acknowledged.lock().unwrap().push(event_id),
                    Ok(r) => panic!("{event_id}: {} before the kill", r.status()),
                    // The server is gone: this one was not acknowledged.
                    Err(_) => return,
                }
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while acknowledged.lock().unwrap().len() < KILL_AFTER {
        assert!(Instant::now() < deadline, "the load did not get going");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill();
    while let Some(done) = senders.join_next().await {
        done.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= KILL_AFTER);

    let server = Server::start(dir.path(), &as_refs(&vars));
    server.wait_healthy().await;
    let client = reqwest::Client::new();
    let mut missing = Vec::new();
    for event_id in &acknowledged {
        let response = client
            .get(server.url(&format!("/api/events/{event_id}")))
            .bearer_auth(API_TOKEN)
            .send()
            .await
            .unwrap();
        if response.status() != 200 {
            missing.push(event_id.clone());
        }
    }
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged events missing after SIGKILL: {:?}",
        missing.len(),
        acknowledged.len(),
        &missing[..missing.len().min(10)]
    );
}

#[tokio::test]
async fn a_fresh_start_prints_a_send_command_and_token_that_work() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("tests/data/events")).unwrap();
    std::fs::copy(
        data_path("events/01-order-status-change.json"),
        dir.path()
            .join("tests/data/events/01-order-status-change.json"),
    )
    .unwrap();
    let mut server = Server::start_piped(dir.path(), &[]);
    server.wait_healthy().await;

    // The help text is printed before serving; read it from stdout.
    let mut stdout = server.child.stdout.take().unwrap();
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    use std::io::Read;
    let complete = |t: &str| {
        t.split_once("Authorization: Bearer ")
            .is_some_and(|(_, rest)| rest.contains('\n'))
    };
    while !complete(&text) {
        let n = stdout.read(&mut buf).unwrap();
        assert!(n > 0, "stdout closed early: {text}");
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let send_line = text
        .lines()
        .find(|l| l.contains(" send "))
        .expect("a send command");
    let file = send_line.split_whitespace().last().unwrap();
    let token = text
        .split("Authorization: Bearer ")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .unwrap()
        .to_owned();

    let send = Command::new(BIN)
        .args(["send", file])
        .current_dir(dir.path())
        .env_clear()
        .env("PORT", server.port.to_string())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&send.stdout);
    assert!(send.status.success(), "send failed: {out}");
    assert!(out.starts_with("200"), "{out}");

    let order = reqwest::Client::new()
        .get(server.url("/api/orders/578112345609871201"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(order.status(), 200);
}

fn forwarding_vars(
    database_url: &str,
    receiver: &Receiver,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = production_vars(database_url)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    vars.push(("FORWARD_URL".into(), receiver.url.clone()));
    vars.push(("WEBHOOK_SECRET".into(), "forward-secret-0123456789".into()));
    vars.push(("QUEUE_POLL_INTERVAL".into(), "100ms".into()));
    vars.push(("FORWARD_TIMEOUT".into(), "60s".into()));
    for (k, v) in extra {
        vars.push((k.to_string(), v.to_string()));
    }
    vars
}

fn string_refs(vars: &[(String, String)]) -> Vec<(&str, &str)> {
    vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

async fn send_signed(port: u16, body: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/webhook/tiktok"))
        .header(
            "authorization",
            tiktok_webhook::tiktok::signature::sign(APP_KEY, APP_SECRET, body.as_bytes()),
        )
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn event_json(port: u16, event_id: &str, path: &str) -> serde_json::Value {
    reqwest::Client::new()
        .get(format!(
            "http://127.0.0.1:{port}/api/events/{event_id}{path}"
        ))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn wait_status(port: u16, event_id: &str, status: &str, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if event_json(port, event_id, "").await["data"]["status"] == status {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

async fn a_job_killed_mid_flight_completes_after_its_lease_exactly_once(db: Db) {
    let receiver = Receiver::start(|n| {
        if n == 0 {
            Answer::Hang
        } else {
            Answer::Status(200)
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (url, _database) = fresh_database(db, dir.path()).await;
    let vars = forwarding_vars(&url, &receiver, &[("JOB_LEASE", "2s")]);
    let mut server = Server::start(dir.path(), &string_refs(&vars));
    server.wait_healthy().await;
    let port = server.port;

    let body = status_event("7400000000000000701", "578000000000000701", "UNPAID", now());
    assert_eq!(send_signed(port, &body).await, 200);
    assert_eq!(
        receiver
            .wait_for_calls(1, Duration::from_secs(20))
            .await
            .len(),
        1
    );
    // The worker is inside the forward call: kill it there.
    server.kill();
    let killed_at = Instant::now();

    let server = Server::start(dir.path(), &string_refs(&vars));
    server.wait_healthy().await;
    let port = server.port;
    assert!(wait_status(port, "7400000000000000701", "done", Duration::from_secs(30)).await);
    let calls = receiver.calls();
    assert_eq!(calls.len(), 2, "tried again once, after the lease ran out");
    assert!(calls[1].at - killed_at >= Duration::from_millis(500));
    assert_eq!(receiver.delivered(), 1, "delivered exactly once");
    let attempts = event_json(port, "7400000000000000701", "/attempts").await;
    let outcomes: Vec<&str> = attempts["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["success"]);
}

async fn sigterm_stops_within_the_bound_and_gives_the_lease_back(db: Db) {
    let receiver = Receiver::start(|_| Answer::Hang).await;
    let dir = tempfile::tempdir().unwrap();
    let (url, _database) = fresh_database(db, dir.path()).await;
    let vars = forwarding_vars(
        &url,
        &receiver,
        &[("JOB_LEASE", "10m"), ("SHUTDOWN_TIMEOUT", "1s")],
    );
    let mut server = Server::start(dir.path(), &string_refs(&vars));
    server.wait_healthy().await;
    let port = server.port;
    let body = status_event("7400000000000000702", "578000000000000702", "UNPAID", now());
    assert_eq!(send_signed(port, &body).await, 200);
    assert_eq!(
        receiver
            .wait_for_calls(1, Duration::from_secs(20))
            .await
            .len(),
        1
    );

    let asked = Instant::now();
    let pid = server.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = server.child.wait().unwrap();
    assert!(status.success(), "a graceful stop exits 0");
    assert!(
        asked.elapsed() < Duration::from_secs(8),
        "stopped in {:?}",
        asked.elapsed()
    );

    // The ten-minute lease was given back: a new instance takes the job at once.
    receiver.set_script(|_| Answer::Status(200));
    let server = Server::start(dir.path(), &string_refs(&vars));
    server.wait_healthy().await;
    assert!(
        wait_status(
            server.port,
            "7400000000000000702",
            "done",
            Duration::from_secs(20)
        )
        .await
    );
}

on_both_databases!(
    an_acknowledged_event_survives_sigkill,
    every_acknowledged_event_survives_sigkill_under_load,
    a_job_killed_mid_flight_completes_after_its_lease_exactly_once,
    sigterm_stops_within_the_bound_and_gives_the_lease_back,
);
