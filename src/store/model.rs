//! What the store returns: plain records shared by every backend, serialised
//! as the reading API shows them (ids as strings, times as RFC 3339 UTC).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::value::RawValue;
use utoipa::ToSchema;

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
    /// Only events whose job is in this state: pending, running, done, dead.
    pub status: Option<String>,
    /// Only events received before this one (keyset pagination).
    pub before: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderRecord {
    pub order_id: String,
    pub shop_id: Option<String>,
    /// The topic of the event that last changed this row.
    pub event_type: String,
    pub order_status: Option<String>,
    pub is_on_hold_order: Option<bool>,
    #[serde(serialize_with = "unix_rfc3339")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub update_time: Option<i64>,
    /// The notification that set the current status, as received.
    #[schema(value_type = Option<Object>)]
    pub order_data: Option<Box<RawValue>>,
    pub last_event_id: Option<String>,
    #[serde(serialize_with = "unix_rfc3339")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub address_updated_at: Option<i64>,
    pub processed: bool,
    pub error_message: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryEntry {
    pub order_status: Option<String>,
    #[serde(serialize_with = "unix_rfc3339")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub update_time: Option<i64>,
    pub event_id: String,
    pub received_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookStat {
    pub event_type: String,
    pub total: i64,
    pub successful: i64,
    pub failed: i64,
    pub last_received: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderStat {
    pub shop_id: Option<String>,
    pub order_status: Option<String>,
    pub count: i64,
}

#[derive(Debug, Serialize, ToSchema)]
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
    /// The processing job's state (pending, running, done, dead), if any.
    pub status: Option<String>,
    pub attempts: i64,
    /// The body parsed, numbers with their exact digits. Only when one event
    /// is read: lists leave bodies out (they can be megabytes each).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub payload: Option<Box<RawValue>>,
    /// The body exactly as received; with `payload`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_body: Option<String>,
}

/// A cancellation, return, reverse order or refund of one order.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestRecord {
    #[serde(skip)]
    pub kind: String,
    pub request_id: String,
    pub status: Option<String>,
    pub role: Option<String>,
    pub request_type: Option<String>,
    /// Refunds: the total as TikTok's decimal text.
    pub amount: Option<String>,
    pub currency: Option<String>,
    #[serde(serialize_with = "unix_rfc3339")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub update_time: Option<i64>,
    pub last_event_id: String,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PackageRecord {
    pub package_id: String,
    pub sc_type: Option<String>,
    pub role_type: Option<String>,
    #[serde(serialize_with = "unix_rfc3339")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub update_time: Option<i64>,
    pub invoice_status: Option<String>,
    pub invalid_reason: Option<String>,
    /// Every order the package holds (more than one after a combine).
    pub order_ids: Vec<String>,
}

/// An order with everything known about it: the detail view of
/// `GET /api/orders/:id`.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderDetail {
    #[serde(flatten)]
    pub order: OrderRecord,
    pub packages: Vec<PackageRecord>,
    pub cancellations: Vec<RequestRecord>,
    pub returns: Vec<RequestRecord>,
    pub reverse_orders: Vec<RequestRecord>,
    pub refunds: Vec<RequestRecord>,
}

impl OrderDetail {
    pub fn new(order: OrderRecord, packages: Vec<PackageRecord>) -> Self {
        Self {
            order,
            packages,
            cancellations: Vec::new(),
            returns: Vec::new(),
            reverse_orders: Vec::new(),
            refunds: Vec::new(),
        }
    }

    /// Files a request under its kind (as `RequestKind::as_str` names it).
    pub fn add_request(&mut self, request: RequestRecord) {
        let list = match request.kind.as_str() {
            "cancellation" => &mut self.cancellations,
            "return" => &mut self.returns,
            "reverse_order" => &mut self.reverse_orders,
            _ => &mut self.refunds,
        };
        list.push(request);
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductRecord {
    pub product_id: String,
    pub shop_id: Option<String>,
    pub status: Option<String>,
    pub suspended_reason: Option<String>,
    #[serde(serialize_with = "unix_rfc3339")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub status_time: Option<i64>,
    pub audit_status: Option<String>,
    #[serde(serialize_with = "unix_rfc3339")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub audit_time: Option<i64>,
    pub category_id: Option<String>,
    pub previous_category_id: Option<String>,
    #[serde(serialize_with = "unix_rfc3339")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub category_time: Option<i64>,
    pub product_types: Vec<String>,
    pub change_source: Option<String>,
    pub changed_fields: Vec<String>,
    /// The newest change of any kind: its topic and time.
    #[schema(value_type = Option<String>)]
    pub last_change: Option<&'static str>,
    #[serde(serialize_with = "unix_rfc3339")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_change_time: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ProductRecord {
    /// Fills `last_change` from the newest of the aspect times.
    pub fn with_last_change(mut self, creation: Option<i64>, information: Option<i64>) -> Self {
        let aspects = [
            ("product_creation", creation),
            ("product_information_change", information),
            ("product_status_change", self.status_time),
            ("product_category_change", self.category_time),
            ("product_audit_status_change", self.audit_time),
        ];
        if let Some((name, time)) = aspects
            .into_iter()
            .filter_map(|(n, t)| t.map(|t| (n, t)))
            .max_by_key(|(_, t)| *t)
        {
            self.last_change = Some(name);
            self.last_change_time = Some(time);
        }
        self
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ShopRecord {
    pub shop_id: String,
    /// False after a deauthorization, until an event shows the app is back.
    pub authorized: bool,
    #[serde(serialize_with = "unix_rfc3339")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub deauthorized_at: Option<i64>,
    #[serde(serialize_with = "unix_rfc3339")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub authorization_expires_at: Option<i64>,
    #[serde(serialize_with = "unix_rfc3339")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_event_at: Option<i64>,
    pub orders: i64,
    pub events: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The lease that jobs are created with when a worker of this instance
/// already has their events in memory (the queue's hand-off): `running`,
/// first attempt under way, held by `owner` until `until`. Without one, a
/// job is created due, for any worker to claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub owner: String,
    pub until: DateTime<Utc>,
}

/// A job a worker holds the lease of.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub event_id: String,
    /// This attempt's number (1 for the first).
    pub attempt: i64,
    pub raw_body: String,
    pub created_at: DateTime<Utc>,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    Success,
    /// Try again at this time.
    Retry {
        at: DateTime<Utc>,
    },
    /// No more tries: dead-lettered until retried by hand.
    Dead,
}

impl JobOutcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            JobOutcome::Success => "success",
            JobOutcome::Retry { .. } => "retry",
            JobOutcome::Dead => "dead",
        }
    }
}

/// The result of one attempt, as the worker reports it.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub event_id: String,
    pub owner: String,
    pub attempt: i64,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub outcome: JobOutcome,
    pub status_code: Option<u16>,
    pub error: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptRecord {
    pub attempt: i64,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub outcome: String,
    pub status_code: Option<i64>,
    pub error: Option<String>,
}

/// Jobs by state, for metrics and health.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct QueueDepth {
    pub pending: i64,
    pub running: i64,
    pub dead: i64,
    /// Seconds since the oldest due job became due (0 when none is).
    pub lag_seconds: f64,
}

/// Stored JSON text as a raw value, so that numbers keep their exact digits.
pub(super) fn raw_json(text: String) -> Result<Box<RawValue>, StoreError> {
    serde_json::from_str(&text).map_err(|_| StoreError::Corrupt("stored JSON is not valid".into()))
}
