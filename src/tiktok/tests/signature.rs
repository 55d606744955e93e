//! TikTok's signature scheme: every vector of `signatures.json` and the header rules.

use bytes::Bytes;
use secrecy::SecretString;
use serde::Deserialize;

use super::support::{read_data, verifier, APP_KEY, PREVIOUS_SECRET, SECRET};
use crate::tiktok::signature::sign;
use crate::tiktok::{SignatureError, WebhookVerifier};

/// One entry of `signatures.json`.
#[derive(Deserialize)]
pub(super) struct Vector {
    pub(super) name: String,
    pub(super) scheme: String,
    pub(super) must_verify: bool,
    pub(super) app_key: String,
    pub(super) app_secret: String,
    pub(super) body: Option<String>,
    pub(super) body_file: Option<String>,
    pub(super) timestamp: Option<String>,
    pub(super) signature: String,
}

impl Vector {
    pub(super) fn body(&self) -> Bytes {
        match (&self.body, &self.body_file) {
            (Some(body), _) => Bytes::from(body.clone()),
            (None, Some(file)) => Bytes::from(read_data(file)),
            (None, None) => panic!("{}: no body", self.name),
        }
    }

    pub(super) fn verifier(&self) -> WebhookVerifier {
        WebhookVerifier::new(
            self.app_key.clone(),
            SecretString::from(self.app_secret.as_str()),
            None,
        )
    }

    pub(super) fn verify(&self) -> Result<(), SignatureError> {
        self.verifier()
            .verify(&[self.signature.as_bytes()], self.body())
            .map(|_| ())
    }
}

pub(super) fn vectors(filter: impl Fn(&Vector) -> bool) -> Vec<Vector> {
    let all: Vec<Vector> =
        serde_json::from_slice(&read_data("signatures.json")).expect("signatures.json");
    all.into_iter().filter(filter).collect()
}

fn verify_one(value: &str, body: &[u8]) -> Result<(), SignatureError> {
    verifier()
        .verify(&[value.as_bytes()], Bytes::copy_from_slice(body))
        .map(|_| ())
}

pub(super) const BODY: &[u8] = br#"{"type":3,"data":{"order_id":"1"}}"#;

#[test]
fn every_tiktok_vector_that_must_verify_verifies() {
    let good = vectors(|v| v.scheme == "tiktok" && v.must_verify);
    assert_eq!(good.len(), 6);
    for v in &good {
        assert_eq!(v.verify(), Ok(()), "{}", v.name);
        let body = v.body();
        let verified = v
            .verifier()
            .verify(&[v.signature.as_bytes()], body.clone())
            .unwrap();
        assert_eq!(verified.bytes(), &body, "{}: body changed", v.name);
        assert_eq!(
            sign(&v.app_key, &v.app_secret, &body),
            v.signature,
            "{}",
            v.name
        );
    }
}

#[test]
fn every_vector_that_must_not_verify_is_refused_by_the_tiktok_verifier() {
    let bad = vectors(|v| !v.must_verify);
    assert_eq!(bad.len(), 5);
    for v in &bad {
        assert_eq!(v.verify(), Err(SignatureError::Mismatch), "{}", v.name);
    }
}

#[test]
fn uppercase_hex_and_surrounding_whitespace_are_accepted() {
    let sig = sign(APP_KEY, SECRET, BODY);
    assert_eq!(verify_one(&sig.to_uppercase(), BODY), Ok(()));
    assert_eq!(verify_one(&format!("  {sig}\t"), BODY), Ok(()));
}

#[test]
fn the_previous_secret_still_verifies_during_rotation() {
    assert_eq!(
        verify_one(&sign(APP_KEY, PREVIOUS_SECRET, BODY), BODY),
        Ok(())
    );
}

#[test]
fn wrong_signatures_are_a_mismatch() {
    let sig = sign(APP_KEY, SECRET, BODY);
    assert_eq!(
        verify_one(&sign(APP_KEY, "another-apps-secret", BODY), BODY),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        verify_one(&sign("other_key", SECRET, BODY), BODY),
        Err(SignatureError::Mismatch)
    );
    let flipped = format!(
        "{}{}",
        if sig.starts_with('0') { '1' } else { '0' },
        &sig[1..]
    );
    assert_eq!(verify_one(&flipped, BODY), Err(SignatureError::Mismatch));
    assert_eq!(
        verify_one(&sig, b"{\"type\":3}"),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn values_that_are_not_64_hex_digits_are_malformed() {
    let sig = sign(APP_KEY, SECRET, BODY);
    let digest = hex::decode(&sig).unwrap();
    let base64 = base64_encode(&digest);
    for value in [
        base64.as_str(),
        &format!("Bearer {sig}"),
        &sig[..63],
        &format!("{sig}0"),
        &format!("t=1,{sig}"),
    ] {
        assert_eq!(
            verify_one(value, BODY),
            Err(SignatureError::Malformed),
            "{value}"
        );
    }
    assert_eq!(
        verify_one(&sig.replace(&sig[..1], "g"), BODY),
        Err(SignatureError::Malformed)
    );
}

#[test]
fn zero_empty_or_several_authorization_values_are_refused() {
    let sig = sign(APP_KEY, SECRET, BODY);
    let v = verifier();
    let body = || Bytes::from_static(BODY);
    assert_eq!(v.verify(&[], body()).unwrap_err(), SignatureError::Missing);
    assert_eq!(
        v.verify(&[b""], body()).unwrap_err(),
        SignatureError::Missing
    );
    assert_eq!(
        v.verify(&[b"  \t"], body()).unwrap_err(),
        SignatureError::Missing
    );
    let (good, bad) = (sig.as_bytes(), [b'0'; 64]);
    assert_eq!(
        v.verify(&[good, &bad], body()).unwrap_err(),
        SignatureError::Ambiguous
    );
    assert_eq!(
        v.verify(&[good, good], body()).unwrap_err(),
        SignatureError::Ambiguous
    );
}

#[test]
fn error_codes_and_messages_say_what_to_fix_without_secrets() {
    use SignatureError::*;
    let codes: Vec<_> = [Missing, Malformed, Ambiguous, Mismatch, Stale]
        .iter()
        .map(|e| e.code())
        .collect();
    assert_eq!(
        codes,
        [
            "missing_signature",
            "bad_signature",
            "bad_signature",
            "bad_signature",
            "stale_event"
        ]
    );
    let sig = sign(APP_KEY, SECRET, BODY);
    for error in [Missing, Malformed, Ambiguous, Mismatch, Stale] {
        let message = error.to_string();
        assert!(message.len() > 20, "{message}");
        assert!(
            !message.contains(SECRET) && !message.contains(&sig),
            "{message}"
        );
    }
}

#[test]
fn debug_output_shows_no_secret_and_no_body() {
    let shown = format!("{:?}", verifier());
    assert!(shown.contains(APP_KEY), "{shown}");
    assert!(
        !shown.contains(SECRET) && !shown.contains(PREVIOUS_SECRET),
        "{shown}"
    );
    let body = super::support::verified(b"{\"buyer\":\"Ada Lovelace\"}");
    assert_eq!(format!("{body:?}"), "VerifiedBody { len: 24 }");
}

/// Standard base64, written out to keep base64 crates out of the dependencies.
fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            let c = if i <= chunk.len() {
                ALPHABET[(n >> (18 - 6 * i) & 63) as usize]
            } else {
                b'='
            };
            out.push(char::from(c));
        }
    }
    out
}
