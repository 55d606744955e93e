//! The real binary, killed with SIGKILL: what was acknowledged is there
//! after a restart. And a fresh start with no configuration works end to end.

mod support;

use std::{
    net::TcpListener,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use support::*;

const BIN: &str = env!("CARGO_BIN_EXE_tiktok-webhook");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `serve` in `dir` with only the given variables set.
fn start(dir: &Path, port: u16, vars: &[(&str, &str)]) -> Child {
    let mut command = Command::new(BIN);
    command
        .arg("serve")
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PORT", port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in vars {
        command.env(k, v);
    }
    command.spawn().expect("the binary starts")
}

async fn wait_healthy(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let url = format!("http://127.0.0.1:{port}/health");
    while Instant::now() < deadline {
        if let Ok(r) = reqwest::get(&url).await {
            if r.status() == 200 {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the server did not become healthy within 30 s");
}

fn production_vars(dir: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("APP_ENV", "production".into()),
        (
            "DATABASE_URL",
            format!("sqlite://{}/db.sqlite", dir.display()),
        ),
        ("TIKTOK_APP_KEY", APP_KEY.into()),
        ("TIKTOK_APP_SECRET", APP_SECRET.into()),
        ("API_TOKENS", API_TOKEN.into()),
    ]
}

#[tokio::test]
async fn an_acknowledged_event_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let vars = production_vars(dir.path());
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let port = free_port();
    let mut server = start(dir.path(), port, &vars);
    wait_healthy(port).await;

    let client = reqwest::Client::new();
    let mut acknowledged = Vec::new();
    for i in 0..25 {
        let event_id = format!("74000000000001{i:05}");
        let body = status_event(&event_id, &format!("57800000000001{i:05}"), "UNPAID", now());
        let response = client
            .post(format!("http://127.0.0.1:{port}/webhook/tiktok"))
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
    server.kill().unwrap();
    server.wait().unwrap();

    let port = free_port();
    let mut server = start(dir.path(), port, &vars);
    wait_healthy(port).await;
    for event_id in &acknowledged {
        let response = client
            .get(format!("http://127.0.0.1:{port}/api/events/{event_id}"))
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
    server.kill().unwrap();
    server.wait().unwrap();
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
    let port = free_port();
    let mut server = start(dir.path(), port, &[]);
    wait_healthy(port).await;

    // The help text is printed before serving; read it from stdout.
    let mut stdout = server.stdout.take().unwrap();
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
        .env("PORT", port.to_string())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&send.stdout);
    assert!(send.status.success(), "send failed: {out}");
    assert!(out.starts_with("200"), "{out}");

    let order = reqwest::Client::new()
        .get(format!(
            "http://127.0.0.1:{port}/api/orders/578112345609871201"
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(order.status(), 200);
    server.kill().unwrap();
    server.wait().unwrap();
}
