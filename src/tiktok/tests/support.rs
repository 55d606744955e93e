//! Helpers shared by the tests: fixture loading and a signer that turns test bodies
//! into `VerifiedBody`s the only way there is, by verifying them.

use bytes::Bytes;
use secrecy::SecretString;

use crate::tiktok::signature::sign;
use crate::tiktok::{Event, Id, ParseError, VerifiedBody, WebhookVerifier};

/// The fixtures, at the same relative path in this crate and in the server's.
pub const DATA_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/");

pub const APP_KEY: &str = "test_app_key";
pub const SECRET: &str = "test-secret-current";
pub const PREVIOUS_SECRET: &str = "test-secret-previous";

pub fn read_data(relative: &str) -> Vec<u8> {
    let path = format!("{DATA_DIR}{relative}");
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

pub fn verifier() -> WebhookVerifier {
    WebhookVerifier::new(
        APP_KEY,
        SecretString::from(SECRET),
        Some(SecretString::from(PREVIOUS_SECRET)),
    )
}

/// Signs `body` with the test key and verifies it.
pub fn verified(body: &[u8]) -> VerifiedBody {
    let signature = sign(APP_KEY, SECRET, body);
    verifier()
        .verify(&[signature.as_bytes()], Bytes::copy_from_slice(body))
        .expect("a body signed with the test secret verifies")
}

pub fn parse(body: &[u8]) -> Result<Event, ParseError> {
    Event::parse(verified(body))
}

/// Parses a body that must be accepted.
pub fn event(body: &str) -> Event {
    parse(body.as_bytes()).unwrap_or_else(|e| panic!("body refused: {e}"))
}

/// Parses `events/<name>` and checks the raw bytes came through untouched.
pub fn fixture(name: &str) -> Event {
    let bytes = read_data(&format!("events/{name}"));
    let event = parse(&bytes).unwrap_or_else(|e| panic!("{name} refused: {e}"));
    assert_eq!(event.raw(), &bytes[..], "{name}: raw bytes changed");
    event
}

/// The shop of every shop-level fixture.
pub const SHOP: &str = "7495263810457220311";

/// Shorthand for an expected id field.
pub fn id(text: &str) -> Option<Id> {
    Some(Id::from(text))
}

/// Shorthand for an expected text field.
pub fn text(text: &str) -> Option<String> {
    Some(text.to_owned())
}

/// Parses a shop-level fixture, checks its envelope and returns the event.
pub fn shop_event(name: &str, type_code: i64, event_id: &str, timestamp: i64) -> Event {
    let event = fixture(name);
    assert_eq!(event.type_code, type_code);
    assert_eq!(event.topic.code(), type_code);
    assert_eq!(event.id.as_str(), event_id);
    assert_eq!(event.shop_id, id(SHOP));
    assert_eq!(event.seller_open_id, None);
    assert_eq!(event.timestamp, Some(timestamp));
    event
}
