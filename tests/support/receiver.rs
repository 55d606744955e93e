//! A local receiving server for forwarded events: records every call and
//! answers as the test script says.
#![allow(dead_code)]

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::IntoResponse,
    routing::post,
    Router,
};

/// What the receiver answers to call number `n` (0-based).
pub type Script = Arc<dyn Fn(usize) -> Answer + Send + Sync>;

#[derive(Clone, Copy, Debug)]
pub enum Answer {
    Status(u16),
    /// 429 with this Retry-After (seconds).
    RetryAfter(u64),
    /// Never answers (the caller times out or dies first).
    Hang,
}

#[derive(Clone, Debug)]
pub struct Call {
    pub at: Instant,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub answered: u16,
}

#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    calls: Arc<Mutex<Vec<Call>>>,
    script: Arc<Mutex<Script>>,
}

impl Receiver {
    pub async fn start(script: impl Fn(usize) -> Answer + Send + Sync + 'static) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let receiver = Receiver {
            url,
            calls: Arc::default(),
            script: Arc::new(Mutex::new(Arc::new(script))),
        };
        let app = Router::new()
            .route("/hook", post(handle))
            .with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        receiver
    }

    /// Changes how later calls are answered.
    pub fn set_script(&self, script: impl Fn(usize) -> Answer + Send + Sync + 'static) {
        *self.script.lock().unwrap() = Arc::new(script);
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// Calls answered 2xx.
    pub fn delivered(&self) -> usize {
        self.calls()
            .iter()
            .filter(|c| (200..300).contains(&c.answered))
            .count()
    }

    pub async fn wait_for_calls(&self, n: usize, within: Duration) -> Vec<Call> {
        let deadline = Instant::now() + within;
        loop {
            let calls = self.calls();
            if calls.len() >= n || Instant::now() > deadline {
                return calls;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn handle(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    let n = r.calls.lock().unwrap().len();
    let answer = (r.script.lock().unwrap())(n);
    let status = match answer {
        Answer::Status(s) => s,
        Answer::RetryAfter(_) => 429,
        Answer::Hang => 0,
    };
    r.calls.lock().unwrap().push(Call {
        at: Instant::now(),
        headers,
        body,
        answered: status,
    });
    match answer {
        Answer::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::OK.into_response()
        }
        Answer::RetryAfter(secs) => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", secs.to_string())],
        )
            .into_response(),
        Answer::Status(s) => StatusCode::from_u16(s).unwrap().into_response(),
    }
}

/// Verifies a Standard Webhooks signature the way a receiver would,
/// independently of the server's own signing code.
pub fn verify_standard_webhook(secret: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    use base64::{engine::general_purpose::STANDARD, Engine};
    use hmac::{Hmac, Mac};
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let key = match secret.strip_prefix("whsec_") {
        Some(b64) => STANDARD.decode(b64).unwrap(),
        None => secret.as_bytes().to_vec(),
    };
    let signed = format!("{}.{}.", header("webhook-id"), header("webhook-timestamp"));
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(signed.as_bytes());
    mac.update(body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    header("webhook-signature")
        .split(' ')
        .any(|candidate| candidate == expected)
}
