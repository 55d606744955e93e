//! What an event changes, worked out once for every backend.
//!
//! A backend turns each [`OrderWrite`] into its own SQL; which topics touch
//! which order fields, and by which ordering value, is decided only here.

use crate::tiktok::{Event, Topic};

/// One effect of an event on one order row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderWrite<'a> {
    /// A status change: applied only when `update_time` is not older than
    /// the stored one.
    Status {
        order_id: &'a str,
        status: &'a str,
        on_hold: Option<bool>,
        update_time: Option<i64>,
    },
    /// A line in the order's history: every status event, applied or not,
    /// even one whose status is null.
    History {
        order_id: &'a str,
        status: Option<&'a str>,
        update_time: Option<i64>,
    },
    /// The order is mentioned by another topic: the row exists afterwards,
    /// and `address_updated_at` moves forward when given.
    Touch {
        order_id: &'a str,
        address_updated_at: Option<i64>,
    },
}

/// Every order write an event causes, in a fixed order.
pub fn order_writes(event: &Event) -> Vec<OrderWrite<'_>> {
    match &event.topic {
        Topic::OrderStatusChange(change) => {
            let Some(order_id) = change.order_id.as_ref() else {
                return Vec::new();
            };
            let order_id = order_id.as_str();
            let status = change.order_status.as_ref().map(|s| s.as_str());
            let update_time = event.ordering_time();
            let history = OrderWrite::History {
                order_id,
                status,
                update_time,
            };
            // A null or missing status says nothing about the state: the
            // order exists, and the history shows the event, nothing more.
            let state = match status {
                Some(status) => OrderWrite::Status {
                    order_id,
                    status,
                    on_hold: change.is_on_hold_order,
                    update_time,
                },
                None => OrderWrite::Touch {
                    order_id,
                    address_updated_at: None,
                },
            };
            vec![state, history]
        }
        Topic::RecipientAddressUpdate(update) => update
            .order_id
            .as_ref()
            .map(|id| OrderWrite::Touch {
                order_id: id.as_str(),
                address_updated_at: event.ordering_time(),
            })
            .into_iter()
            .collect(),
        topic => topic
            .order_ids()
            .into_iter()
            .map(|id| OrderWrite::Touch {
                order_id: id.as_str(),
                address_updated_at: None,
            })
            .collect(),
    }
}

/// How the event's processing ends once its projections are applied:
/// `(success, error_message)`. A known topic whose data could not be read is
/// kept and acknowledged, but counted as failed so that someone looks at it.
pub fn processing_outcome(event: &Event) -> (bool, Option<String>) {
    match &event.topic {
        Topic::Malformed { reason, .. } => (false, Some(reason.clone())),
        _ => (true, None),
    }
}
