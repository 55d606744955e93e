//! The topics of spec section 3: what each `type` code means and the fields of its
//! `data`.
//!
//! Reading a topic never fails. A code this service does not know is
//! [`Topic::Unknown`]; a known code whose `data` cannot be read (`data` is a string, or
//! a field has a type no tolerant reader accepts) is [`Topic::Malformed`] with a reason
//! naming the field. Both are stored and acknowledged by the server: refusing them would
//! only make TikTok retry the same bytes for 15 hours.

mod account;
mod fields;
mod messages;
mod orders;
mod products;

use std::collections::HashSet;

use serde_json::value::RawValue;

pub use account::{FbtInboundOrderStatus, SellerDeauthorization, UpcomingAuthorizationExpiration};
pub use fields::FieldError;
pub use messages::{MessageSender, NewConversation, NewMessage};
pub use orders::{
    CancellationStatusChange, InvoiceStatusChange, OrderStatusChange, Package, PackageUpdate,
    RecipientAddressUpdate, RefundLineItem, RefundSuccess, ReturnStatusChange, ReverseOrderUpdate,
};
pub use products::{
    ProductAuditStatusChange, ProductCategoryChange, ProductCreation, ProductInformationChange,
    ProductStatusChange,
};

use crate::tiktok::ids::Id;
use fields::Fields;

/// A notification's topic with its `data` read into fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topic {
    OrderStatusChange(OrderStatusChange),
    ReverseOrderUpdate(ReverseOrderUpdate),
    RecipientAddressUpdate(RecipientAddressUpdate),
    PackageUpdate(PackageUpdate),
    ProductStatusChange(ProductStatusChange),
    SellerDeauthorization(SellerDeauthorization),
    UpcomingAuthorizationExpiration(UpcomingAuthorizationExpiration),
    CancellationStatusChange(CancellationStatusChange),
    ReturnStatusChange(ReturnStatusChange),
    NewConversation(NewConversation),
    NewMessage(NewMessage),
    ProductInformationChange(ProductInformationChange),
    ProductCreation(ProductCreation),
    ProductCategoryChange(ProductCategoryChange),
    FbtInboundOrderStatus(FbtInboundOrderStatus),
    InvoiceStatusChange(InvoiceStatusChange),
    ProductAuditStatusChange(ProductAuditStatusChange),
    RefundSuccess(RefundSuccess),
    /// A code not in spec section 3 (TikTok adds topics); the raw body has the data.
    Unknown {
        code: i64,
    },
    /// A known code whose `data` could not be read; `reason` names the field and what
    /// was expected, never the value.
    Malformed {
        code: i64,
        reason: String,
        /// `data.order_id` when that one field is readable, so that the
        /// unreadable event still belongs to its order (and can be retried
        /// with it).
        order_id: Option<Id>,
    },
}

/// Each known code and its `event_type` name, the one list the rest derives from.
const EVENT_TYPES: [(i64, &str); 18] = [
    (1, "order_status_change"),
    (2, "reverse_order_update"),
    (3, "recipient_address_update"),
    (4, "package_update"),
    (5, "product_status_change"),
    (6, "seller_deauthorization"),
    (7, "upcoming_authorization_expiration"),
    (11, "cancellation_status_change"),
    (12, "return_status_change"),
    (13, "new_conversation"),
    (14, "new_message"),
    (15, "product_information_change"),
    (16, "product_creation"),
    (18, "product_category_change"),
    (21, "fbt_inbound_order_status_change"),
    (36, "invoice_status_change"),
    (37, "product_audit_status_change"),
    (67, "refund_success"),
];

/// The `event_type` name of a known code, `None` for an unknown one.
pub fn event_type_of(code: i64) -> Option<&'static str> {
    EVENT_TYPES
        .iter()
        .find(|(known, _)| *known == code)
        .map(|(_, name)| *name)
}

impl Topic {
    /// Reads the `data` of a notification of type `code` (`None` when the body has no
    /// `data`).
    pub fn parse(code: i64, data: Option<&RawValue>) -> Topic {
        if event_type_of(code).is_none() {
            return Topic::Unknown { code };
        }
        match Fields::data(data).and_then(|d| read_known(code, &d)) {
            Ok(topic) => topic,
            Err(error) => Topic::Malformed {
                code,
                reason: error.to_string(),
                order_id: Fields::data(data)
                    .and_then(|d| d.id("order_id"))
                    .ok()
                    .flatten(),
            },
        }
    }

    pub fn code(&self) -> i64 {
        match self {
            Topic::OrderStatusChange(_) => 1,
            Topic::ReverseOrderUpdate(_) => 2,
            Topic::RecipientAddressUpdate(_) => 3,
            Topic::PackageUpdate(_) => 4,
            Topic::ProductStatusChange(_) => 5,
            Topic::SellerDeauthorization(_) => 6,
            Topic::UpcomingAuthorizationExpiration(_) => 7,
            Topic::CancellationStatusChange(_) => 11,
            Topic::ReturnStatusChange(_) => 12,
            Topic::NewConversation(_) => 13,
            Topic::NewMessage(_) => 14,
            Topic::ProductInformationChange(_) => 15,
            Topic::ProductCreation(_) => 16,
            Topic::ProductCategoryChange(_) => 18,
            Topic::FbtInboundOrderStatus(_) => 21,
            Topic::InvoiceStatusChange(_) => 36,
            Topic::ProductAuditStatusChange(_) => 37,
            Topic::RefundSuccess(_) => 67,
            Topic::Unknown { code } | Topic::Malformed { code, .. } => *code,
        }
    }

    /// The snake-case name stored with the event: `unknown` for an unknown code, and the
    /// known code's own name for a malformed one.
    pub fn event_type(&self) -> &'static str {
        match self {
            Topic::Unknown { .. } => "unknown",
            known => event_type_of(known.code()).unwrap_or("unknown"),
        }
    }

    /// Every order the notification concerns, in the order sent, without repeats.
    pub fn order_ids(&self) -> Vec<&Id> {
        let ids: Vec<&Id> = match self {
            Topic::OrderStatusChange(t) => t.order_id.iter().collect(),
            Topic::ReverseOrderUpdate(t) => t.order_id.iter().collect(),
            Topic::RecipientAddressUpdate(t) => t.order_id.iter().collect(),
            Topic::CancellationStatusChange(t) => t.order_id.iter().collect(),
            Topic::ReturnStatusChange(t) => t.order_id.iter().collect(),
            Topic::PackageUpdate(t) => t
                .package_list
                .iter()
                .flat_map(|p| &p.order_id_list)
                .collect(),
            Topic::InvoiceStatusChange(t) => t.order_ids.iter().collect(),
            Topic::Malformed { order_id, .. } => order_id.iter().collect(),
            Topic::RefundSuccess(t) => t
                .line_items
                .iter()
                .filter_map(|i| i.main_order_id.as_ref())
                .collect(),
            _ => Vec::new(),
        };
        // A set rather than `Vec::contains`: a package update can list many orders.
        let mut seen = HashSet::with_capacity(ids.len());
        ids.into_iter().filter(|id| seen.insert(*id)).collect()
    }

    /// The topic's own "order by" time from spec section 3, in Unix seconds. `None`
    /// where the spec orders by the envelope timestamp (6, 7, 11, 36) or by the message
    /// `index` (14), and for unknown or malformed topics.
    pub fn ordering_time(&self) -> Option<i64> {
        match self {
            Topic::OrderStatusChange(t) => t.update_time,
            Topic::ReverseOrderUpdate(t) => t.update_time,
            Topic::RecipientAddressUpdate(t) => t.update_time,
            Topic::PackageUpdate(t) => t.update_time,
            Topic::ProductStatusChange(t) => t.update_time,
            Topic::ReturnStatusChange(t) => t.update_time,
            Topic::NewConversation(t) => t.create_time,
            Topic::ProductInformationChange(t) => t.update_time,
            Topic::ProductCreation(t) => t.update_time,
            Topic::ProductCategoryChange(t) => t.update_time,
            Topic::FbtInboundOrderStatus(t) => t.update_time,
            Topic::ProductAuditStatusChange(t) => t.update_time,
            Topic::RefundSuccess(t) => t.refund_timestamp,
            Topic::SellerDeauthorization(_)
            | Topic::UpcomingAuthorizationExpiration(_)
            | Topic::CancellationStatusChange(_)
            | Topic::NewMessage(_)
            | Topic::InvoiceStatusChange(_)
            | Topic::Unknown { .. }
            | Topic::Malformed { .. } => None,
        }
    }
}

fn read_known(code: i64, d: &Fields) -> Result<Topic, FieldError> {
    Ok(match code {
        1 => Topic::OrderStatusChange(OrderStatusChange::read(d)?),
        2 => Topic::ReverseOrderUpdate(ReverseOrderUpdate::read(d)?),
        3 => Topic::RecipientAddressUpdate(RecipientAddressUpdate::read(d)?),
        4 => Topic::PackageUpdate(PackageUpdate::read(d)?),
        5 => Topic::ProductStatusChange(ProductStatusChange::read(d)?),
        6 => Topic::SellerDeauthorization(SellerDeauthorization::read(d)?),
        7 => Topic::UpcomingAuthorizationExpiration(UpcomingAuthorizationExpiration::read(d)?),
        11 => Topic::CancellationStatusChange(CancellationStatusChange::read(d)?),
        12 => Topic::ReturnStatusChange(ReturnStatusChange::read(d)?),
        13 => Topic::NewConversation(NewConversation::read(d)?),
        14 => Topic::NewMessage(NewMessage::read(d)?),
        15 => Topic::ProductInformationChange(ProductInformationChange::read(d)?),
        16 => Topic::ProductCreation(ProductCreation::read(d)?),
        18 => Topic::ProductCategoryChange(ProductCategoryChange::read(d)?),
        21 => Topic::FbtInboundOrderStatus(FbtInboundOrderStatus::read(d)?),
        36 => Topic::InvoiceStatusChange(InvoiceStatusChange::read(d)?),
        37 => Topic::ProductAuditStatusChange(ProductAuditStatusChange::read(d)?),
        67 => Topic::RefundSuccess(RefundSuccess::read(d)?),
        _ => Topic::Unknown { code },
    })
}
