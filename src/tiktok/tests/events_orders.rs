//! The example bodies in `events/` of the order and after-sales topics, one test each,
//! checking the fields read from them.

use sha2::{Digest, Sha256};

use super::support::{fixture, id, shop_event, text, SHOP};
use crate::tiktok::topics::*;
use crate::tiktok::{Id, OrderStatus, Topic};

#[test]
fn order_status_change_01() {
    let e = shop_event(
        "01-order-status-change.json",
        1,
        "7438810292745531401",
        1796212805,
    );
    let expected = OrderStatusChange {
        order_id: id("578112345609871201"),
        order_status: Some(OrderStatus::AwaitingShipment),
        is_on_hold_order: Some(false),
        update_time: Some(1796212801),
    };
    assert_eq!(e.topic, Topic::OrderStatusChange(expected));
    assert_eq!(e.event_type(), "order_status_change");
    assert_eq!(e.order_id(), id("578112345609871201").as_ref());
    assert_eq!(e.ordering_time(), Some(1796212801));
}

#[test]
fn reverse_order_update_02_has_a_body_hash_id() {
    let e = fixture("02-reverse-order-update.json");
    let hash = hex::encode(Sha256::digest(e.raw()));
    assert_eq!(e.id.as_str(), format!("sha256:{hash}"));
    assert!(e.id.is_body_hash());
    assert_eq!(
        (e.type_code, e.timestamp, e.shop_id.clone()),
        (2, Some(1733011320), id(SHOP))
    );
    let expected = ReverseOrderUpdate {
        order_id: id("578112345609871202"),
        reverse_order_id: id("4036112345609871202"),
        reverse_order_status: text("1"),
        reverse_type: text("2"),
        reverse_event_type: text("ORDER_REFUND"),
        reverse_user: text("1"),
        update_time: Some(1733011316),
    };
    assert_eq!(e.topic, Topic::ReverseOrderUpdate(expected));
    assert_eq!(e.event_type(), "reverse_order_update");
    assert_eq!(e.order_id(), id("578112345609871202").as_ref());
}

#[test]
fn recipient_address_update_03() {
    let e = shop_event(
        "03-recipient-address-update.json",
        3,
        "7438810292745531403",
        1796212990,
    );
    let expected = RecipientAddressUpdate {
        order_id: id("578112345609871201"),
        update_time: Some(1796212987),
    };
    assert_eq!(e.topic, Topic::RecipientAddressUpdate(expected));
    assert_eq!(e.event_type(), "recipient_address_update");
    assert_eq!(e.ordering_time(), Some(1796212987));
}

#[test]
fn package_update_04_lists_every_order() {
    let e = shop_event(
        "04-package-update.json",
        4,
        "7438810292745531404",
        1796213220,
    );
    let expected = PackageUpdate {
        sc_type: text("COMBINE"),
        role_type: text("ROLE_SELLER"),
        package_list: vec![Package {
            package_id: id("1154208877012345601"),
            order_id_list: vec![
                Id::from("578112345609871201"),
                Id::from("578112345609871203"),
            ],
        }],
        update_time: Some(1796213218),
    };
    assert_eq!(e.topic, Topic::PackageUpdate(expected));
    assert_eq!(e.event_type(), "package_update");
    let orders: Vec<&str> = e.topic.order_ids().iter().map(|i| i.as_str()).collect();
    assert_eq!(orders, ["578112345609871201", "578112345609871203"]);
    assert_eq!(e.order_id().map(Id::as_str), Some("578112345609871201"));
}

#[test]
fn cancellation_status_change_11() {
    let e = shop_event(
        "11-cancellation-status-change.json",
        11,
        "7438810292745531411",
        1796214133,
    );
    let expected = CancellationStatusChange {
        order_id: id("578112345609871204"),
        cancellations_role: text("SELLER"),
        cancel_status: text("CANCELLATION_REQUEST_SUCCESS"),
        cancel_id: id("4036220098765432111"),
        create_time: Some(1796214110),
    };
    assert_eq!(e.topic, Topic::CancellationStatusChange(expected));
    assert_eq!(e.event_type(), "cancellation_status_change");
    assert_eq!(
        e.ordering_time(),
        Some(1796214133),
        "spec orders type 11 by the envelope"
    );
}

#[test]
fn return_status_change_12() {
    let e = shop_event(
        "12-return-status-change.json",
        12,
        "7438810292745531412",
        1796214370,
    );
    let expected = ReturnStatusChange {
        order_id: id("578112345609871205"),
        return_role: text("BUYER"),
        return_type: text("REFUND"),
        return_status: text("RETURN_OR_REFUND_REQUEST_PENDING"),
        return_id: id("4036330098765432112"),
        create_time: Some(1796214366),
        update_time: Some(1796214366),
    };
    assert_eq!(e.topic, Topic::ReturnStatusChange(expected));
    assert_eq!(e.event_type(), "return_status_change");
    assert_eq!(e.order_id(), id("578112345609871205").as_ref());
}

#[test]
fn invoice_status_change_36() {
    let e = shop_event(
        "36-invoice-status-change.json",
        36,
        "7438810292745531436",
        1796215925,
    );
    let expected = InvoiceStatusChange {
        package_id: id("1154208877012345636"),
        order_ids: vec![Id::from("578112345609871206")],
        invoice_status: text("SUCCESS"),
        invalid_reason: text(""),
    };
    assert_eq!(e.topic, Topic::InvoiceStatusChange(expected));
    assert_eq!(e.event_type(), "invoice_status_change");
    assert_eq!(e.order_id(), id("578112345609871206").as_ref());
    assert_eq!(e.ordering_time(), Some(1796215925));
}

#[test]
fn refund_success_67_keeps_the_total_as_text() {
    let e = shop_event(
        "67-refund-success.json",
        67,
        "7438810292745531467",
        1796216420,
    );
    let expected = RefundSuccess {
        aftersales_request_id: id("5761200000000123467"),
        rma_id: id("5761200000000123468"),
        line_items: vec![RefundLineItem {
            main_order_id: id("578112345609871205"),
            return_line_item_id: id("4036440000000001201"),
            sku_id: id("1731245560981299901"),
            sku_return_request_id: id("4036440000000001202"),
        }],
        refund_currency: text("GBP"),
        refund_status: text("REFUND_SUCCESS"),
        refund_timestamp: Some(1796216411),
        refund_total: text("24.50"),
    };
    assert_eq!(e.topic, Topic::RefundSuccess(expected));
    assert_eq!(e.event_type(), "refund_success");
    assert_eq!(e.order_id(), id("578112345609871205").as_ref());
    assert_eq!(e.ordering_time(), Some(1796216411));
}
