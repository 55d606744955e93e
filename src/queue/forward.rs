//! The built-in forwarder: POSTs the original event to `FORWARD_URL`, signed
//! the Standard Webhooks way (`webhook-id`, `webhook-timestamp`,
//! `webhook-signature: v1,<base64 HMAC-SHA256(key, id.timestamp.body)>`).

use std::time::Duration;

use async_trait::async_trait;
use base64::{engine::general_purpose::STANDARD, Engine};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretBox, SecretString};
use sha2::Sha256;

use super::handler::{EventHandler, HandlerError};
use crate::tiktok::Event;

pub struct Forwarder {
    client: reqwest::Client,
    url: String,
    key: SecretBox<Vec<u8>>,
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder").field("url", &self.url).finish()
    }
}

impl Forwarder {
    pub fn new(url: &str, secret: &SecretString, timeout: Duration) -> anyhow::Result<Self> {
        // A redirect is not a delivery: following it would turn the POST
        // into a GET without the body and count that as success.
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tiktok-webhook/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            url: url.to_owned(),
            key: SecretBox::new(Box::new(secret_key(secret.expose_secret()))),
        })
    }
}

/// The signing key: a `whsec_`-prefixed secret is base64 (the Standard
/// Webhooks convention); any other text is used as its bytes.
pub fn secret_key(secret: &str) -> Vec<u8> {
    secret
        .strip_prefix("whsec_")
        .and_then(|b64| STANDARD.decode(b64).ok())
        .unwrap_or_else(|| secret.as_bytes().to_vec())
}

/// `v1,` + base64 of HMAC-SHA256 over `id.timestamp.body`.
pub fn signature(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[async_trait]
impl EventHandler for Forwarder {
    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        let id = event.id.as_str();
        let timestamp = chrono::Utc::now().timestamp();
        let sig = signature(self.key.expose_secret(), id, timestamp, event.raw());
        let response = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", sig)
            .body(event.raw().to_vec())
            .send()
            .await
            .map_err(|e| HandlerError::retry(describe(&e)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        Err(HandlerError {
            status: Some(status.as_u16()),
            retry_after,
            ..HandlerError::retry(format!("the receiver answered {status}"))
        })
    }
}

/// The kind of failure, without the URL's query (it may hold a token).
fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "the receiver did not answer in time".into()
    } else if error.is_connect() {
        "the receiver could not be reached".into()
    } else {
        "the request to the receiver failed".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_like_the_standard_webhooks_reference() {
        // The example of the Standard Webhooks specification.
        let key = secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            signature(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn a_plain_secret_is_used_as_its_bytes() {
        assert_eq!(secret_key("plain"), b"plain");
    }
}
