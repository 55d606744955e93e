//! Ids with exact digits, and the tolerant readers for the loosely typed fields TikTok
//! sends (ids, times, flags and texts as strings *or* numbers, nulls anywhere).
//!
//! Every reader works on the raw JSON text of one value (`serde_json::value::RawValue`).
//! That is deliberate: without serde_json's `arbitrary_precision` feature an integer
//! above `u64::MAX` is turned into an `f64` and loses digits, and even below it a
//! detour through `serde_json::Value` is one careless `as_f64` away from doing so. The
//! raw text of a JSON integer *is* its exact digits, so ids are copied from it.
//!
//! The readers return `Err(expected)` with a short description of what was expected,
//! never the value itself, so that error messages built from them cannot leak a
//! buyer's data into logs.

use std::fmt;

use serde::de::{Deserialize, Deserializer, Error as _};
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

/// What a reader expected when it met a value it cannot accept.
pub type Expected = &'static str;

/// Times at or above this are milliseconds: 10^12 seconds is the year 33658, while
/// 10^12 milliseconds is September 2001, so a 13-digit time can only be milliseconds.
pub const MILLIS_THRESHOLD: i64 = 1_000_000_000_000;

/// An id from TikTok (order, shop, product, package...), kept as the exact text sent.
///
/// TikTok sends ids as strings of digits, but some topics send them as bare JSON
/// numbers above 2^53; both arrive here as the same digits. Non-numeric string ids
/// (FBT inbound orders, for one) are kept as they are. The inside is private so that
/// an `Id` can only come from [`Id::new`] or from reading JSON with these rules.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Id(String);

impl Id {
    /// Wraps text that is already known to be an id (tests, path parameters).
    pub fn new(id: impl Into<String>) -> Self {
        Id(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    /// Reads one JSON value: a string, or a non-negative integer of any size copied
    /// digit for digit. `null` and `""` are an absent id (`Ok(None)`).
    pub fn from_json(raw: &RawValue) -> Result<Option<Id>, Expected> {
        const EXPECTED: Expected = "an id (a string or a non-negative integer)";
        match JsonKind::of(raw) {
            JsonKind::Null => Ok(None),
            JsonKind::String => Ok(decode_str(raw)
                .ok_or(EXPECTED)?
                .filter(|s| !s.is_empty())
                .map(Id)),
            JsonKind::Number => digits(raw.get())
                .map(|d| Some(Id(d.to_owned())))
                .ok_or(EXPECTED),
            _ => Err(EXPECTED),
        }
    }
}

impl From<&str> for Id {
    fn from(id: &str) -> Self {
        Id::new(id)
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Always a JSON string, so that JavaScript clients of the service never round it.
impl Serialize for Id {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// Works only under serde_json's deserializer, which is the one that can hand out the
/// raw text; an empty string is refused here (use [`deserialize_opt_id`] for fields
/// where `""` means absent).
impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        Id::from_json(&raw)
            .map_err(D::Error::custom)?
            .ok_or_else(|| D::Error::custom("expected a non-empty id"))
    }
}

/// `#[serde(deserialize_with = "...")]` reader for an `Option<Id>` field (pair it with
/// `#[serde(default)]` so that a missing field is `None` as well).
pub fn deserialize_opt_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Id>, D::Error> {
    let raw = Box::<RawValue>::deserialize(d)?;
    Id::from_json(&raw).map_err(D::Error::custom)
}

/// `#[serde(deserialize_with = "...")]` reader for an `Option<i64>` Unix time in seconds
/// (pair it with `#[serde(default)]`); see [`time_from_json`].
pub fn deserialize_opt_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let raw = Box::<RawValue>::deserialize(d)?;
    time_from_json(&raw).map_err(D::Error::custom)
}

/// Reads a Unix time given as an integer or a string of digits, in seconds or (13
/// digits and up) milliseconds, and returns seconds. `null` and `""` are absent.
/// Negative, fractional and non-numeric values are refused: none of them is a time
/// TikTok could mean, and guessing would put events in the wrong order.
pub fn time_from_json(raw: &RawValue) -> Result<Option<i64>, Expected> {
    const EXPECTED: Expected = "a Unix time (an integer or a string of digits)";
    let text = match JsonKind::of(raw) {
        JsonKind::Null => return Ok(None),
        JsonKind::Number => raw.get().to_owned(),
        JsonKind::String => match decode_str(raw).ok_or(EXPECTED)? {
            None => return Ok(None),
            Some(s) if s.is_empty() => return Ok(None),
            Some(s) => s,
        },
        _ => return Err(EXPECTED),
    };
    let value: i64 = digits(&text)
        .ok_or(EXPECTED)?
        .parse()
        .map_err(|_| EXPECTED)?;
    Ok(Some(normalise_time(value)))
}

/// Turns a millisecond time into seconds and leaves a time in seconds alone.
pub fn normalise_time(value: i64) -> i64 {
    if value >= MILLIS_THRESHOLD {
        value / 1000
    } else {
        value
    }
}

/// Reads a text field. Numbers are kept as their JSON text (`1` becomes `"1"`), because
/// some codes that are strings in one topic are integers in another (`reverse_type`),
/// and a decimal amount sent as a number must not go through `f64`.
pub fn text_from_json(raw: &RawValue) -> Result<Option<String>, Expected> {
    const EXPECTED: Expected = "a string";
    match JsonKind::of(raw) {
        JsonKind::Null => Ok(None),
        JsonKind::String => decode_str(raw).ok_or(EXPECTED),
        JsonKind::Number => Ok(Some(raw.get().to_owned())),
        _ => Err(EXPECTED),
    }
}

/// Reads a flag: `true`/`false`, or the strings `"true"`/`"false"`.
pub fn flag_from_json(raw: &RawValue) -> Result<Option<bool>, Expected> {
    const EXPECTED: Expected = "a boolean";
    match JsonKind::of(raw) {
        JsonKind::Null => Ok(None),
        JsonKind::Bool => Ok(Some(raw.get() == "true")),
        JsonKind::String => match decode_str(raw).ok_or(EXPECTED)?.as_deref() {
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some("") => Ok(None),
            _ => Err(EXPECTED),
        },
        _ => Err(EXPECTED),
    }
}

/// The six shapes a JSON value can take, told apart by its first character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonKind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

impl JsonKind {
    pub fn of(raw: &RawValue) -> JsonKind {
        // A RawValue holds exactly one valid JSON value; whitespace around it is
        // trimmed defensively in case a top-level value kept some.
        match raw
            .get()
            .trim_start_matches([' ', '\t', '\n', '\r'])
            .as_bytes()
            .first()
        {
            Some(b'{') => JsonKind::Object,
            Some(b'[') => JsonKind::Array,
            Some(b'"') => JsonKind::String,
            Some(b't' | b'f') => JsonKind::Bool,
            Some(b'n') | None => JsonKind::Null,
            Some(_) => JsonKind::Number,
        }
    }

    /// A word for messages ("`data` is a string, expected an object").
    pub fn name(self) -> &'static str {
        match self {
            JsonKind::Null => "null",
            JsonKind::Bool => "a boolean",
            JsonKind::Number => "a number",
            JsonKind::String => "a string",
            JsonKind::Array => "an array",
            JsonKind::Object => "an object",
        }
    }
}

/// Decodes a JSON string value; `None` inside means JSON `null`. The outer `None` is a
/// string serde_json will not decode (a lone UTF-16 surrogate escape, for one).
fn decode_str(raw: &RawValue) -> Option<Option<String>> {
    serde_json::from_str::<Option<String>>(raw.get())
        .ok()
        .filter(|text| text.as_deref().map_or(true, storable))
}

/// Whether a decoded string can be kept as a value of its own. One that holds
/// U+0000 (a `\u0000` escape) cannot: no TikTok id, time or text has it, and
/// PostgreSQL's text type refuses it, so an event carrying one in an id or a
/// status would fail to store there every time (and TikTok retry it without
/// end) where SQLite took it. Such a value is read as unreadable on both
/// databases: an envelope id as absent, a topic field as malformed data. The
/// body itself, escape and all, is still kept as received.
pub fn storable(text: &str) -> bool {
    !text.contains('\0')
}

/// The text itself when it is a non-empty run of ASCII digits (a non-negative integer
/// with no sign, fraction or exponent).
fn digits(text: &str) -> Option<&str> {
    let all_digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    all_digits.then_some(text)
}
