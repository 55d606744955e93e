//! Topics about the app's authorisation and seller-level logistics: types 6, 7 and 21.

use serde::Serialize;

use super::fields::{FieldError, Fields};
use crate::tiktok::ids::Id;

/// Type 6, SELLER_DEAUTHORIZATION: the seller removed the app. Ordered by the envelope
/// timestamp, as it carries no time of its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SellerDeauthorization {
    pub message: Option<String>,
}

impl SellerDeauthorization {
    pub(super) fn read(d: &Fields) -> Result<Self, FieldError> {
        Ok(Self {
            message: d.text("message")?,
        })
    }
}

/// Type 7, UPCOMING_AUTHORIZATION_EXPIRATION. `expiration_time` arrives as a string in
/// some of TikTok's examples and a number in others; both read as Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpcomingAuthorizationExpiration {
    pub message: Option<String>,
    pub expiration_time: Option<i64>,
}

impl UpcomingAuthorizationExpiration {
    pub(super) fn read(d: &Fields) -> Result<Self, FieldError> {
        Ok(Self {
            message: d.text("message")?,
            expiration_time: d.time("expiration_time")?,
        })
    }
}

/// Type 21, FBT (Fulfilled by TikTok) inbound order status. Seller-level: the envelope
/// has `seller_open_id` and no `shop_id`. Its `order_status` is a warehouse state
/// (`PARTIALLY_RECEIVED`), not an [`OrderStatus`](crate::tiktok::OrderStatus), so it
/// stays text, and the inbound order id is not a sales order id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FbtInboundOrderStatus {
    pub inbound_order_id: Option<Id>,
    pub order_status: Option<String>,
    pub update_time: Option<i64>,
}

impl FbtInboundOrderStatus {
    pub(super) fn read(d: &Fields) -> Result<Self, FieldError> {
        Ok(Self {
            inbound_order_id: d.id("inbound_order_id")?,
            order_status: d.text("order_status")?,
            update_time: d.time("update_time")?,
        })
    }
}
