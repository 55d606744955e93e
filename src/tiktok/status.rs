//! Order statuses of topic 1 (ORDER_STATUS_CHANGE), spec section 3.

use std::fmt;

use serde::de::{Deserialize, Deserializer, Error as _};
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

use super::ids::{Expected, JsonKind};

/// The state of an order as TikTok reports it.
///
/// TikTok's webhook page spells the cancelled state `CANCEL` while the API says
/// `CANCELLED`; both are [`OrderStatus::Cancelled`]. The retired API sent numeric codes,
/// which are mapped too. A status this service does not know yet is kept, exactly as
/// sent, in [`OrderStatus::Other`] rather than refused: TikTok adds states over time.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum OrderStatus {
    Unpaid,
    OnHold,
    AwaitingShipment,
    PartiallyShipping,
    AwaitingCollection,
    InTransit,
    Delivered,
    Completed,
    Cancelled,
    Other(String),
}

/// Canonical names and legacy codes, in one table so that the three conversions below
/// cannot drift apart.
const KNOWN: [(OrderStatus, &str, u32); 9] = [
    (OrderStatus::Unpaid, "UNPAID", 100),
    (OrderStatus::OnHold, "ON_HOLD", 105),
    (OrderStatus::AwaitingShipment, "AWAITING_SHIPMENT", 111),
    (OrderStatus::AwaitingCollection, "AWAITING_COLLECTION", 112),
    (OrderStatus::PartiallyShipping, "PARTIALLY_SHIPPING", 114),
    (OrderStatus::InTransit, "IN_TRANSIT", 121),
    (OrderStatus::Delivered, "DELIVERED", 122),
    (OrderStatus::Completed, "COMPLETED", 130),
    (OrderStatus::Cancelled, "CANCELLED", 140),
];

impl OrderStatus {
    /// The canonical upper-case name (`CANCELLED`, never `CANCEL`), or the text of an
    /// unknown status as it was sent.
    pub fn as_str(&self) -> &str {
        match self {
            OrderStatus::Other(text) => text,
            known => KNOWN
                .iter()
                .find(|(status, _, _)| status == known)
                .map_or("", |(_, name, _)| name),
        }
    }

    /// Reads a status name. A string of digits is read as a legacy numeric code, since
    /// relays that re-encode numbers as strings are common.
    pub fn parse(text: &str) -> OrderStatus {
        if text == "CANCEL" {
            return OrderStatus::Cancelled;
        }
        if let Some((status, _, _)) = KNOWN.iter().find(|(_, name, _)| *name == text) {
            return status.clone();
        }
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            return OrderStatus::from_code(text);
        }
        OrderStatus::Other(text.to_owned())
    }

    /// Maps a legacy numeric code given as its digits; unknown codes stay as digits.
    fn from_code(digits: &str) -> OrderStatus {
        let code = digits.parse::<u32>().ok();
        KNOWN
            .iter()
            .find(|(_, _, known)| Some(*known) == code)
            .map_or_else(
                || OrderStatus::Other(digits.to_owned()),
                |(s, _, _)| s.clone(),
            )
    }

    /// Reads one JSON value: a status name, a legacy code as a non-negative integer, or
    /// `null` / `""` for none.
    pub fn from_json(raw: &RawValue) -> Result<Option<OrderStatus>, Expected> {
        const EXPECTED: Expected = "an order status (a name or a legacy numeric code)";
        match JsonKind::of(raw) {
            JsonKind::Null => Ok(None),
            JsonKind::String => match serde_json::from_str::<String>(raw.get()) {
                Ok(text) if text.is_empty() => Ok(None),
                Ok(text) if super::ids::storable(&text) => Ok(Some(OrderStatus::parse(&text))),
                _ => Err(EXPECTED),
            },
            JsonKind::Number if raw.get().bytes().all(|b| b.is_ascii_digit()) => {
                Ok(Some(OrderStatus::from_code(raw.get())))
            }
            _ => Err(EXPECTED),
        }
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for OrderStatus {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Works only under serde_json's deserializer (it reads the raw number text).
impl<'de> Deserialize<'de> for OrderStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        OrderStatus::from_json(&raw)
            .map_err(D::Error::custom)?
            .ok_or_else(|| D::Error::custom("expected a non-empty order status"))
    }
}
