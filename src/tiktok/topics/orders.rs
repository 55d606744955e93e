//! Topics about orders and after-sales: types 1, 2, 3, 4, 11, 12, 36 and 67.
//!
//! Every field is optional: TikTok's examples leave fields out, send `null`, and change
//! shapes between API versions, and a push missing one field is still worth storing.

use serde::Serialize;

use super::fields::{FieldError, Fields};
use crate::tiktok::ids::Id;
use crate::tiktok::status::OrderStatus;

/// Type 1, ORDER_STATUS_CHANGE.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderStatusChange {
    pub order_id: Option<Id>,
    pub order_status: Option<OrderStatus>,
    pub is_on_hold_order: Option<bool>,
    pub update_time: Option<i64>,
}

impl OrderStatusChange {
    pub(super) fn read(d: &Fields) -> Result<Self, FieldError> {
        Ok(Self {
            order_id: d.id("order_id")?,
            order_status: d.order_status("order_status")?,
            is_on_hold_order: d.flag("is_on_hold_order")?,
            update_time: d.time("update_time")?,
        })
    }
}

/// Type 2, the legacy reverse-order update (retired with the legacy API). Its status,
/// type and user are integer codes; they are kept as their digits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReverseOrderUpdate {
    pub order_id: Option<Id>,
    pub reverse_order_id: Option<Id>,
    pub reverse_order_status: Option<String>,
    pub reverse_type: Option<String>,
    pub reverse_event_type: Option<String>,
    pub reverse_user: Option<String>,
    pub update_time: Option<i64>,
}

impl ReverseOrderUpdate {
    pub(super) fn read(d: &Fields) -> Result<Self, FieldError> {
        Ok(Self {
            order_id: d.id("order_id")?,
            reverse_order_id: d.id("reverse_order_id")?,
            reverse_order_status: d.text("reverse_order_status")?,
            reverse_type: d.text("reverse_type")?,
            reverse_event_type: d.text("reverse_event_type")?,
            reverse_user: d.text("reverse_user")?,
            update_time: d.time("update_time")?,
        })
    }
}

/// Type 3, RECIPIENT_ADDRESS_UPDATE. The new address itself is not in the push; it has
/// to be fetched from the order detail API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecipientAddressUpdate {
    pub order_id: Option<Id>,
    pub update_time: Option<i64>,
}

impl RecipientAddressUpdate {
    pub(super) fn read(d: &Fields) -> Result<Self, FieldError> {
        Ok(Self {
            order_id: d.id("order_id")?,
            update_time: d.time("update_time")?,
        })
    }
}

/// Type 4, PACKAGE_UPDATE: packages were combined or split across orders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackageUpdate {
    pub sc_type: Option<String>,
    pub role_type: Option<String>,
    pub package_list: Vec<Package>,
    pub update_time: Option<i64>,
}

/// One package of a [`PackageUpdate`] and the orders it now holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Package {
    pub package_id: Option<Id>,
    pub order_id_list: Vec<Id>,
}

impl PackageUpdate {
    pub(super) fn read(d: &Fields) -> Result<Self, FieldError> {
        let mut package_list = Vec::new();
        for p in d.objects("package_list")? {
            package_list.push(Package {
                package_id: p.id("package_id")?,
                order_id_list: p.ids("order_id_list")?,
            });
        }
        Ok(Self {
            sc_type: d.text("sc_type")?,
            role_type: d.text("role_type")?,
            package_list,
            update_time: d.time("update_time")?,
        })
    }
}

/// Type 11, CANCELLATION_STATUS_CHANGE. It has no update time; the spec orders it by
/// the envelope timestamp.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CancellationStatusChange {
    pub order_id: Option<Id>,
    pub cancellations_role: Option<String>,
    pub cancel_status: Option<String>,
    pub cancel_id: Option<Id>,
    pub create_time: Option<i64>,
}

impl CancellationStatusChange {
    pub(super) fn read(d: &Fields) -> Result<Self, FieldError> {
        Ok(Self {
            order_id: d.id("order_id")?,
            cancellations_role: d.text("cancellations_role")?,
            cancel_status: d.text("cancel_status")?,
            cancel_id: d.id("cancel_id")?,
            create_time: d.time("create_time")?,
        })
    }
}

/// Type 12, RETURN_STATUS_CHANGE.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReturnStatusChange {
    pub order_id: Option<Id>,
    pub return_role: Option<String>,
    pub return_type: Option<String>,
    pub return_status: Option<String>,
    pub return_id: Option<Id>,
    pub create_time: Option<i64>,
    pub update_time: Option<i64>,
}

impl ReturnStatusChange {
    pub(super) fn read(d: &Fields) -> Result<Self, FieldError> {
        Ok(Self {
            order_id: d.id("order_id")?,
            return_role: d.text("return_role")?,
            return_type: d.text("return_type")?,
            return_status: d.text("return_status")?,
            return_id: d.id("return_id")?,
            create_time: d.time("create_time")?,
            update_time: d.time("update_time")?,
        })
    }
}

/// Type 36, INVOICE_STATUS_CHANGE.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InvoiceStatusChange {
    pub package_id: Option<Id>,
    pub order_ids: Vec<Id>,
    pub invoice_status: Option<String>,
    pub invalid_reason: Option<String>,
}

impl InvoiceStatusChange {
    pub(super) fn read(d: &Fields) -> Result<Self, FieldError> {
        Ok(Self {
            package_id: d.id("package_id")?,
            order_ids: d.ids("order_ids")?,
            invoice_status: d.text("invoice_status")?,
            invalid_reason: d.text("invalid_reason")?,
        })
    }
}

/// Type 67, refund success. `refund_total` is a decimal string and stays one: money is
/// never put through a float.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefundSuccess {
    pub aftersales_request_id: Option<Id>,
    pub rma_id: Option<Id>,
    pub line_items: Vec<RefundLineItem>,
    pub refund_currency: Option<String>,
    pub refund_status: Option<String>,
    pub refund_timestamp: Option<i64>,
    pub refund_total: Option<String>,
}

/// One refunded line item of a [`RefundSuccess`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefundLineItem {
    pub main_order_id: Option<Id>,
    pub return_line_item_id: Option<Id>,
    pub sku_id: Option<Id>,
    pub sku_return_request_id: Option<Id>,
}

impl RefundSuccess {
    pub(super) fn read(d: &Fields) -> Result<Self, FieldError> {
        let mut line_items = Vec::new();
        for item in d.objects("line_items")? {
            line_items.push(RefundLineItem {
                main_order_id: item.id("main_order_id")?,
                return_line_item_id: item.id("return_line_item_id")?,
                sku_id: item.id("sku_id")?,
                sku_return_request_id: item.id("sku_return_request_id")?,
            });
        }
        Ok(Self {
            aftersales_request_id: d.id("aftersales_request_id")?,
            rma_id: d.id("rma_id")?,
            line_items,
            refund_currency: d.text("refund_currency")?,
            refund_status: d.text("refund_status")?,
            refund_timestamp: d.time("refund_timestamp")?,
            refund_total: d.text("refund_total")?,
        })
    }
}
