//! What the store returns: plain records shared by every backend, serialised
//! as the reading API shows them (ids as strings, times as RFC 3339 UTC).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::value::RawValue;

use super::{time::unix_rfc3339, StoreError};

/// The outcome of one event in a committed batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    /// The event id was already stored: only its delivery count changed.
    pub duplicate: bool,
    /// Deliveries of this event so far, this one included.
    pub deliveries: i64,
}

/// `limit`/`offset` of a list, already validated.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub limit: i64,
    pub offset: i64,
}

/// Which stored notifications `GET /api/events` lists.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub shop_id: Option<String>,
    pub type_code: Option<i64>,
    pub limit: i64,
    /// Only events received before this one (keyset pagination).
    pub before: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct OrderRecord {
    pub order_id: String,
    pub shop_id: Option<String>,
    /// The topic of the event that last changed this row.
    pub event_type: String,
    pub order_status: Option<String>,
    pub is_on_hold_order: Option<bool>,
    #[serde(serialize_with = "unix_rfc3339")]
    pub update_time: Option<i64>,
    /// The notification that set the current status, as received.
    pub order_data: Option<Box<RawValue>>,
    pub last_event_id: Option<String>,
    #[serde(serialize_with = "unix_rfc3339")]
    pub address_updated_at: Option<i64>,
    pub processed: bool,
    pub error_message: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
pub struct HistoryEntry {
    pub order_status: Option<String>,
    #[serde(serialize_with = "unix_rfc3339")]
    pub update_time: Option<i64>,
    pub event_id: String,
    pub received_at: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
pub struct WebhookStat {
    pub event_type: String,
    pub total: i64,
    pub successful: i64,
    pub failed: i64,
    pub last_received: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
pub struct OrderStat {
    pub shop_id: Option<String>,
    pub order_status: Option<String>,
    pub count: i64,
}

#[derive(Debug, Serialize)]
pub struct EventRecord {
    pub event_id: String,
    #[serde(rename = "type")]
    pub type_code: i64,
    pub event_type: String,
    pub shop_id: Option<String>,
    pub order_id: Option<String>,
    /// The body's `timestamp`, in Unix seconds.
    pub timestamp: Option<i64>,
    pub received_at: DateTime<Utc>,
    pub last_received_at: DateTime<Utc>,
    pub deliveries: i64,
    pub processed: bool,
    pub success: Option<bool>,
    pub error_message: Option<String>,
    /// The body parsed, numbers with their exact digits.
    pub payload: Box<RawValue>,
    /// The body exactly as received.
    pub raw_body: String,
}

/// Stored JSON text as a raw value, so that numbers keep their exact digits.
pub(super) fn raw_json(text: String) -> Result<Box<RawValue>, StoreError> {
    serde_json::from_str(&text).map_err(|_| StoreError::Corrupt("stored JSON is not valid".into()))
}
