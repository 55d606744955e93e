//! Time as the store keeps it: RFC 3339 UTC text with a fixed microsecond
//! width (text order is then time order in SQLite), Unix seconds for
//! TikTok's own times.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::Serializer;

use super::StoreError;

pub fn to_text(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub fn from_text(text: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| StoreError::Corrupt(format!("bad stored time `{text}`")))
}

/// Serialises Unix seconds as an RFC 3339 UTC string (or null).
pub fn unix_rfc3339<S: Serializer>(value: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match value.and_then(|secs| Utc.timestamp_opt(secs, 0).single()) {
        Some(at) => s.serialize_str(&at.to_rfc3339_opts(SecondsFormat::Secs, true)),
        None => s.serialize_none(),
    }
}
