//! Webhook signatures, spec section 1.
//!
//! TikTok Shop signs each push as `hex(HMAC-SHA256(key = app_secret, message = app_key
//! ++ raw_body))` and sends the hex digest, and nothing else, as the whole
//! `Authorization` value. The digest covers the bytes exactly as received, so the
//! verifier takes the body as [`Bytes`] and hands the same bytes on, untouched, inside
//! the [`VerifiedBody`] it returns.
//!
//! The older header scheme (`x-tiktok-shop-signature` over `timestamp ++ raw_body`) is
//! not what TikTok sends; it is kept for relays built to this service's first design,
//! and the server decides whether to accept it at all.

use std::fmt;

use bytes::Bytes;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::ids::normalise_time;

type HmacSha256 = Hmac<Sha256>;

/// A request body whose signature has been checked. Only this file can make one, so a
/// function that takes a `VerifiedBody` cannot be handed bytes nobody verified.
#[derive(Clone)]
pub struct VerifiedBody(Bytes);

impl VerifiedBody {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn bytes(&self) -> &Bytes {
        &self.0
    }

    /// A body read back from storage. Only verified bodies are ever stored,
    /// so what the store returns was verified when it arrived; this is the
    /// one other way in, and it is crate-private so that nothing outside the
    /// service can mint a "verified" body.
    pub(crate) fn from_storage(bytes: Bytes) -> Self {
        Self(bytes)
    }
}

/// Shows the length only: bodies hold buyers' names and addresses.
impl fmt::Debug for VerifiedBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedBody")
            .field("len", &self.0.len())
            .finish()
    }
}

/// Why a webhook's signature was refused. The messages are written for the sender and
/// say what to fix; none of them repeats a secret, the expected digest, or the value
/// that was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No signature header, or one whose value is empty or only whitespace.
    #[error("the request is not signed: send hex(HMAC-SHA256(app_secret, app_key + raw body)) as the Authorization header")]
    Missing,
    /// The value is not 64 hexadecimal characters (base64, a `Bearer` prefix, cut short).
    #[error("the signature is not a hex-encoded HMAC-SHA256 digest: send exactly 64 hexadecimal characters with no prefix")]
    Malformed,
    /// More than one signature header, even if one of them is right: which one counts
    /// would otherwise depend on the proxy in front of the service.
    #[error("the request carries more than one signature header: send exactly one")]
    Ambiguous,
    #[error("the signature does not match the body: sign the app key followed by the exact raw body bytes with the app secret")]
    Mismatch,
    /// The older scheme's timestamp header is outside the freshness window.
    #[error("the signature timestamp is too far from the current time: sign with the current Unix time in seconds")]
    Stale,
}

impl SignatureError {
    /// A stable snake-case code for error bodies and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            SignatureError::Missing => "missing_signature",
            SignatureError::Stale => "stale_event",
            _ => "bad_signature",
        }
    }
}

/// Checks webhook signatures with the app key and one or two app secrets.
///
/// A second (previous) secret lets the app secret be rotated without refusing the
/// pushes TikTok signed with the old one while the change propagates.
#[derive(Clone)]
pub struct WebhookVerifier {
    app_key: String,
    /// The current secret first, then the previous one if any.
    secrets: Vec<SecretString>,
}

/// Names the app key (it is sent in clear in every API call) but never a secret.
impl fmt::Debug for WebhookVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookVerifier")
            .field("app_key", &self.app_key)
            .field(
                "secrets",
                &format_args!("[{} redacted]", self.secrets.len()),
            )
            .finish()
    }
}

impl WebhookVerifier {
    pub fn new(
        app_key: impl Into<String>,
        secret: SecretString,
        previous: Option<SecretString>,
    ) -> Self {
        let secrets = std::iter::once(secret).chain(previous).collect();
        WebhookVerifier {
            app_key: app_key.into(),
            secrets,
        }
    }

    /// Verifies TikTok's scheme. `values` are all the `Authorization` header values of
    /// the request, so that a duplicated header is seen rather than silently picked.
    pub fn verify(&self, values: &[&[u8]], body: Bytes) -> Result<VerifiedBody, SignatureError> {
        let digest = single_digest(values)?;
        let key = self.app_key.as_bytes();
        self.check(&digest, &[key, &body])?;
        Ok(VerifiedBody(body))
    }

    /// Verifies the older scheme: `x-tiktok-shop-signature` holding
    /// `hex(HMAC-SHA256(app_secret, timestamp ++ raw_body))` and `x-tiktok-shop-timestamp`
    /// holding Unix seconds (13-digit milliseconds are accepted and normalised).
    ///
    /// The signature is checked before the age, so that only a holder of the secret can
    /// learn that a timestamp was the problem.
    pub fn verify_legacy(
        &self,
        signatures: &[&[u8]],
        timestamps: &[&[u8]],
        body: Bytes,
        now_unix: i64,
        tolerance_secs: i64,
    ) -> Result<VerifiedBody, SignatureError> {
        let digest = single_digest(signatures)?;
        let timestamp = single_value(timestamps)?;
        if timestamp.is_empty() || !timestamp.iter().all(u8::is_ascii_digit) {
            return Err(SignatureError::Malformed);
        }
        self.check(&digest, &[timestamp, &body])?;

        let seconds = std::str::from_utf8(timestamp)
            .ok()
            .and_then(|t| t.parse::<i64>().ok())
            .ok_or(SignatureError::Malformed)?;
        let age = now_unix.abs_diff(normalise_time(seconds));
        if age > tolerance_secs.max(0).unsigned_abs() {
            return Err(SignatureError::Stale);
        }
        Ok(VerifiedBody(body))
    }

    /// Compares `digest` with the HMAC of `parts` under every configured secret. Every
    /// secret is tried even after a match, so the time taken does not say which matched.
    fn check(&self, digest: &[u8; 32], parts: &[&[u8]]) -> Result<(), SignatureError> {
        let mut matched = subtle::Choice::from(0);
        for secret in &self.secrets {
            let expected = hmac_parts(secret.expose_secret().as_bytes(), parts);
            matched |= expected.as_slice().ct_eq(digest);
        }
        if bool::from(matched) {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }
}

/// TikTok's signature of `body`, in lowercase hex (what TikTok sends).
pub fn sign(app_key: &str, secret: &str, body: &[u8]) -> String {
    hex::encode(hmac_parts(secret.as_bytes(), &[app_key.as_bytes(), body]))
}

/// The older scheme's signature of `body` for the header timestamp `timestamp`.
pub fn sign_legacy(secret: &str, timestamp: &str, body: &[u8]) -> String {
    hex::encode(hmac_parts(secret.as_bytes(), &[timestamp.as_bytes(), body]))
}

/// HMAC-SHA256 over the concatenation of `parts`, without copying them together.
pub(crate) fn hmac_parts(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes a key of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Exactly one header value, trimmed of surrounding ASCII whitespace. An empty value
/// counts as no signature at all: it tells the sender's setup, not its signing, is off.
fn single_value<'a>(values: &[&'a [u8]]) -> Result<&'a [u8], SignatureError> {
    match values {
        [] => Err(SignatureError::Missing),
        [value] => match value.trim_ascii() {
            [] => Err(SignatureError::Missing),
            trimmed => Ok(trimmed),
        },
        _ => Err(SignatureError::Ambiguous),
    }
}

/// The one signature header decoded from 64 hex digits of either case.
fn single_digest(values: &[&[u8]]) -> Result<[u8; 32], SignatureError> {
    let text = single_value(values)?;
    let mut digest = [0u8; 32];
    // decode_to_slice refuses anything but exactly 64 hex digits for 32 bytes.
    hex::decode_to_slice(text, &mut digest).map_err(|_| SignatureError::Malformed)?;
    Ok(digest)
}
