//! The notification envelope, spec section 2: `type`, `tts_notification_id`, `shop_id`
//! (or `seller_open_id` / `creator_open_id`), `timestamp` and `data`.
//!
//! Only a body that cannot be a notification at all is refused (see [`ParseError`]).
//! Everything else is read tolerantly: a field of the wrong type is `None`, because the
//! body is signed by TikTok and storing it is worth more than judging it.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Serialize, Serializer};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use super::ids::{self, Id, JsonKind};
use super::signature::VerifiedBody;
use super::topics::Topic;

/// Why a verified body is not a notification. The messages tell the sender what is
/// wrong without repeating any of the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("the body is not valid UTF-8: send the notification as UTF-8 encoded JSON")]
    NotUtf8,
    /// Also an empty body, or one of whitespace only.
    #[error("the body is not valid JSON: send one JSON object")]
    NotJson,
    #[error("the body is JSON but not an object: send one JSON object with `type` and `data`")]
    NotObject,
    #[error("the body has no `type`: send the topic code as an integer in `type`")]
    MissingType,
    /// `type` is neither a JSON integer nor a string holding one (`"1"` is accepted).
    #[error("`type` is not an integer: send the topic code as an integer in `type`")]
    BadType,
}

impl ParseError {
    /// A stable snake-case code for error bodies and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            ParseError::NotUtf8 => "body_not_utf8",
            ParseError::NotJson => "body_not_json",
            ParseError::NotObject => "body_not_object",
            ParseError::MissingType => "missing_type",
            ParseError::BadType => "bad_type",
        }
    }
}

/// The key a notification is deduplicated by: its `tts_notification_id` (exact digits,
/// whether sent as a string or a number), or, when a body has none, `sha256:` and the
/// lowercase hex SHA-256 of the raw body, so that a retry of the same bytes still
/// collapses into one event.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId(String);

/// Longest event id accepted from a URL path; TikTok's are 19 digits, a hash id is 71.
const MAX_PATH_ID_LEN: usize = 256;

impl EventId {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this id is the body-hash fallback rather than TikTok's own id.
    pub fn is_body_hash(&self) -> bool {
        self.0.starts_with("sha256:")
    }

    /// Reads an event id from a URL path segment for lookups. Any non-empty text up to
    /// 256 bytes without control characters is accepted, since a `tts_notification_id`
    /// is kept as whatever string TikTok sent.
    pub fn parse_path(text: &str) -> Option<EventId> {
        let plausible = !text.is_empty()
            && text.len() <= MAX_PATH_ID_LEN
            && !text.chars().any(char::is_control);
        plausible.then(|| EventId(text.to_owned()))
    }

    fn of_body(body: &[u8]) -> EventId {
        EventId(format!("sha256:{}", hex::encode(Sha256::digest(body))))
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for EventId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// A verified notification, read. The body's bytes stay untouched inside it, for
/// storage and for anyone who needs a field this module does not read.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: EventId,
    pub type_code: i64,
    /// Absent on seller- and creator-level topics.
    pub shop_id: Option<Id>,
    pub seller_open_id: Option<String>,
    pub creator_open_id: Option<String>,
    /// When TikTok made the push, Unix seconds (a millisecond value is normalised).
    pub timestamp: Option<i64>,
    pub topic: Topic,
    body: VerifiedBody,
}

impl Event {
    pub fn parse(body: VerifiedBody) -> Result<Event, ParseError> {
        let text = std::str::from_utf8(body.as_bytes()).map_err(|_| ParseError::NotUtf8)?;
        let members = object_members(text)?;
        let member = |name: &str| members.get(name).copied();

        let type_code = read_type(member("type"))?;
        let id = member("tts_notification_id").and_then(read_id).map_or_else(
            || EventId::of_body(body.as_bytes()),
            |id| EventId(id.into_string()),
        );
        let shop_id = member("shop_id").and_then(read_id);
        let seller_open_id = member("seller_open_id").and_then(read_text);
        let creator_open_id = member("creator_open_id").and_then(read_text);
        let timestamp = member("timestamp").and_then(|raw| ids::time_from_json(raw).ok().flatten());
        let topic = Topic::parse(type_code, member("data"));

        Ok(Event {
            id,
            type_code,
            shop_id,
            seller_open_id,
            creator_open_id,
            timestamp,
            topic,
            body,
        })
    }

    /// The body exactly as received and verified.
    pub fn raw(&self) -> &[u8] {
        self.body.as_bytes()
    }

    /// The body as text; [`Event::parse`] has already refused anything not UTF-8.
    pub fn raw_str(&self) -> &str {
        // Checked again rather than assumed with `unsafe`; the empty fallback cannot be
        // reached because an Event only comes out of `parse`.
        std::str::from_utf8(self.body.as_bytes()).unwrap_or_default()
    }

    pub fn body(&self) -> &VerifiedBody {
        &self.body
    }

    pub fn event_type(&self) -> &'static str {
        self.topic.event_type()
    }

    /// The first order the notification concerns, if any.
    pub fn order_id(&self) -> Option<&Id> {
        self.topic.order_ids().into_iter().next()
    }

    /// The time to order this event against others of the same order or product: the
    /// topic's own time where spec section 3 names one, else the envelope timestamp.
    pub fn ordering_time(&self) -> Option<i64> {
        self.topic.ordering_time().or(self.timestamp)
    }
}

/// The top-level members of the body. A key given twice keeps its last value.
fn object_members(text: &str) -> Result<BTreeMap<String, &RawValue>, ParseError> {
    let value: &RawValue = serde_json::from_str(text).map_err(|_| ParseError::NotJson)?;
    if JsonKind::of(value) != JsonKind::Object {
        return Err(ParseError::NotObject);
    }
    serde_json::from_str(value.get()).map_err(|_| ParseError::NotJson)
}

/// Reads `type`: a JSON integer, or a string of an integer (accepted because it is
/// unambiguous and some relays turn every number into a string).
fn read_type(raw: Option<&RawValue>) -> Result<i64, ParseError> {
    let raw = raw.ok_or(ParseError::MissingType)?;
    let text = match JsonKind::of(raw) {
        JsonKind::Null => return Err(ParseError::MissingType),
        JsonKind::Number => raw.get().to_owned(),
        JsonKind::String => {
            serde_json::from_str::<String>(raw.get()).map_err(|_| ParseError::BadType)?
        }
        _ => return Err(ParseError::BadType),
    };
    let digits = text.strip_prefix('-').unwrap_or(&text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::BadType);
    }
    text.parse().map_err(|_| ParseError::BadType)
}

/// An envelope id; a value of the wrong type is treated as absent.
fn read_id(raw: &RawValue) -> Option<Id> {
    Id::from_json(raw).ok().flatten()
}

/// An envelope text such as `seller_open_id`; empty or wrong-typed is absent.
fn read_text(raw: &RawValue) -> Option<String> {
    ids::text_from_json(raw)
        .ok()
        .flatten()
        .filter(|s| !s.is_empty())
}
