//! The real binary, killed with SIGKILL: what was acknowledged is there
//! after a restart. And a fresh start with no configuration works end to end.

mod support;

use std::process::Command;

use support::{process::*, *};

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

on_both_databases!(an_acknowledged_event_survives_sigkill);

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
    let mut server = Server::start(dir.path(), &[]);
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
