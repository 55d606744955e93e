//! The quirks of spec section 2 and the tolerance rules of the topics.

use super::support::event;
use crate::tiktok::topics::{NewMessage, OrderStatusChange, Package, PackageUpdate};
use crate::tiktok::{Id, OrderStatus, Topic};

fn order_change(data: &str) -> OrderStatusChange {
    match event(&format!(r#"{{"type":1,"data":{data}}}"#)).topic {
        Topic::OrderStatusChange(t) => t,
        other => panic!("{other:?}"),
    }
}

fn message(data: &str) -> NewMessage {
    match event(&format!(r#"{{"type":14,"data":{data}}}"#)).topic {
        Topic::NewMessage(m) => m,
        other => panic!("{other:?}"),
    }
}

fn malformed_reason(body: &str) -> String {
    match event(body).topic {
        Topic::Malformed { reason, .. } => reason,
        other => panic!("not malformed: {other:?}"),
    }
}

#[test]
fn millisecond_timestamps_are_normalised_to_seconds() {
    let e = event(r#"{"type":1,"timestamp":1796212805123,"data":{"update_time":"1796212801999"}}"#);
    assert_eq!(e.timestamp, Some(1796212805));
    assert_eq!(e.ordering_time(), Some(1796212801));
    assert_eq!(
        event(r#"{"type":6,"timestamp":"1796212805"}"#).timestamp,
        Some(1796212805)
    );
    assert_eq!(
        event(r#"{"type":6,"timestamp":999999999999}"#).timestamp,
        Some(999999999999)
    );
}

#[test]
fn ids_beyond_u64_keep_their_exact_digits() {
    let big = "123456789012345678901234567890";
    let body = format!(
        r#"{{"type":5,"tts_notification_id":{big},"shop_id":{big},"data":{{"product_id":{big}}}}}"#
    );
    let e = event(&body);
    assert_eq!(e.id.as_str(), big);
    assert_eq!(e.shop_id.as_ref().map(Id::as_str), Some(big));
    let Topic::ProductStatusChange(p) = &e.topic else {
        panic!("{:?}", e.topic)
    };
    assert_eq!(p.product_id.as_ref().map(Id::as_str), Some(big));
    assert_eq!(serde_json::to_value(p).unwrap()["product_id"], big);
    let orders = order_change(&format!(r#"{{"order_id":{big}}}"#));
    assert_eq!(orders.order_id.as_ref().map(Id::as_str), Some(big));
}

#[test]
fn cancel_and_cancelled_are_the_same_status() {
    let cancel = order_change(r#"{"order_status":"CANCEL"}"#)
        .order_status
        .unwrap();
    let cancelled = order_change(r#"{"order_status":"CANCELLED"}"#)
        .order_status
        .unwrap();
    assert_eq!(cancel, OrderStatus::Cancelled);
    assert_eq!(cancel, cancelled);
    assert_eq!(cancel.as_str(), "CANCELLED");
}

#[test]
fn legacy_numeric_statuses_are_mapped() {
    let status = |value: &str| order_change(&format!(r#"{{"order_status":{value}}}"#)).order_status;
    assert_eq!(status("100"), Some(OrderStatus::Unpaid));
    assert_eq!(status("140"), Some(OrderStatus::Cancelled));
    assert_eq!(status(r#""122""#), Some(OrderStatus::Delivered));
    assert_eq!(status("999"), Some(OrderStatus::Other("999".to_owned())));
    assert_eq!(
        status(r#""RETURNED_TO_SENDER""#),
        Some(OrderStatus::Other("RETURNED_TO_SENDER".to_owned()))
    );
}

#[test]
fn nulls_are_absent_never_values() {
    let nulls =
        r#"{"order_id":null,"order_status":null,"is_on_hold_order":null,"update_time":null}"#;
    let expected = OrderStatusChange {
        order_id: None,
        order_status: None,
        is_on_hold_order: None,
        update_time: None,
    };
    assert_eq!(order_change(nulls), expected);
    assert_eq!(order_change("null"), expected);
    assert_eq!(
        order_change(r#"{"order_id":"","order_status":""}"#),
        expected
    );
    assert_eq!(
        event(r#"{"type":1}"#).topic,
        Topic::OrderStatusChange(expected)
    );

    let lists = event(
        r#"{"type":4,"data":{"package_list":[null,{"package_id":null,"order_id_list":[null,"7",""]}]}}"#,
    );
    let package = Package {
        package_id: None,
        order_id_list: vec![Id::from("7")],
    };
    let expected = PackageUpdate {
        sc_type: None,
        role_type: None,
        package_list: vec![package],
        update_time: None,
    };
    assert_eq!(lists.topic, Topic::PackageUpdate(expected));
    let empty = event(r#"{"type":36,"data":{"order_ids":null}}"#);
    assert!(empty.topic.order_ids().is_empty());
}

#[test]
fn data_that_is_not_an_object_makes_a_known_topic_malformed_not_an_error() {
    let e = event(r#"{"type":1,"tts_notification_id":"42","data":"Ada Lovelace"}"#);
    let Topic::Malformed { code, reason, .. } = &e.topic else {
        panic!("{:?}", e.topic)
    };
    assert_eq!(*code, 1);
    assert_eq!(reason, "`data` must be an object");
    assert_eq!(
        (e.event_type(), e.id.as_str()),
        ("order_status_change", "42")
    );
    assert_eq!((e.order_id(), e.topic.ordering_time()), (None, None));
    for data in ["[1]", "7", "true"] {
        let body = format!(r#"{{"type":67,"data":{data}}}"#);
        assert_eq!(
            malformed_reason(&body),
            "`data` must be an object",
            "{data}"
        );
    }
}

#[test]
fn a_field_no_reader_accepts_is_named_without_its_value() {
    let cases = [
        (
            r#"{"type":1,"data":{"update_time":"yesterday"}}"#,
            "`data.update_time` must be a Unix time",
        ),
        (
            r#"{"type":1,"data":{"order_id":{"id":"Ada"}}}"#,
            "`data.order_id` must be an id",
        ),
        (
            r#"{"type":1,"data":{"is_on_hold_order":"Ada"}}"#,
            "`data.is_on_hold_order` must be a boolean",
        ),
        (
            r#"{"type":1,"data":{"order_status":["Ada"]}}"#,
            "`data.order_status` must be an order status",
        ),
        (
            r#"{"type":4,"data":{"package_list":[{"order_id_list":[1,{"Ada":1}]}]}}"#,
            "`data.package_list[0].order_id_list[1]` must be an id",
        ),
        (
            r#"{"type":14,"data":{"sender":"Ada"}}"#,
            "`data.sender` must be an object",
        ),
        (
            r#"{"type":36,"data":{"order_ids":"Ada"}}"#,
            "`data.order_ids` must be an array",
        ),
        (
            r#"{"type":37,"data":{"audit":{"status":{"Ada":1}}}}"#,
            "`data.audit.status` must be a string",
        ),
        (
            r#"{"type":5,"data":{"update_time":-5}}"#,
            "`data.update_time` must be a Unix time",
        ),
        (
            r#"{"type":5,"data":{"update_time":1.5}}"#,
            "`data.update_time` must be a Unix time",
        ),
    ];
    for (body, start) in cases {
        let reason = malformed_reason(body);
        assert!(reason.starts_with(start), "{body}: {reason}");
        assert!(
            !reason.contains("Ada") && !reason.contains("yesterday"),
            "{reason}"
        );
    }
}

#[test]
fn unknown_extra_fields_are_ignored() {
    let t = order_change(
        r#"{"order_id":"9","fulfillment_hint":{"carrier":"ROYAL_MAIL"},"order_status":"DELIVERED"}"#,
    );
    assert_eq!(
        (t.order_id, t.order_status),
        (Some(Id::from("9")), Some(OrderStatus::Delivered))
    );
}

#[test]
fn message_content_is_decoded_when_it_is_the_usual_json() {
    let m = message(
        r#"{"content":"{\"content\":\"Ol\\u00e1! Où? 🙂\"}","index":"7494560109732334999"}"#,
    );
    assert_eq!(m.text().as_deref(), Some("Olá! Où? 🙂"));
    assert_eq!(m.index, Some(Id::from("7494560109732334999")));
    assert_eq!(
        message(r#"{"content":{"content":"hi"}}"#).text().as_deref(),
        Some("hi")
    );
    let image = message(r#"{"type":"IMAGE","content":"{\"url\":\"https://x\"}"}"#);
    assert_eq!((image.text(), image.content.is_some()), (None, true));
    assert_eq!(message(r#"{"content":"plain words"}"#).text(), None);
    assert_eq!(message(r#"{"is_visible":"false"}"#).is_visible, Some(false));
}

#[test]
fn message_debug_output_leaves_out_what_the_buyer_wrote() {
    let m = message(r#"{"content":"{\"content\":\"my address is 12 Sage Lane\"}"}"#);
    let shown = format!("{m:?}");
    assert!(
        !shown.contains("Sage Lane") && shown.contains("content_len"),
        "{shown}"
    );
}

#[test]
fn refunds_list_each_order_once_and_keep_numeric_totals_as_text() {
    let body = r#"{"type":67,"data":{"refund_total":24.50,"line_items":[{"main_order_id":"1"},{"main_order_id":2},{"main_order_id":"1"},{}]}}"#;
    let e = event(body);
    let orders: Vec<&str> = e.topic.order_ids().iter().map(|i| i.as_str()).collect();
    assert_eq!(orders, ["1", "2"]);
    let Topic::RefundSuccess(r) = &e.topic else {
        panic!("{:?}", e.topic)
    };
    assert_eq!(r.refund_total.as_deref(), Some("24.50"));
    assert_eq!(r.line_items.len(), 4);
}

#[test]
fn reverse_codes_sent_as_strings_or_numbers_read_the_same() {
    let read = |value: &str| match event(&format!(
        r#"{{"type":2,"data":{{"reverse_order_status":{value}}}}}"#
    ))
    .topic
    {
        Topic::ReverseOrderUpdate(t) => t.reverse_order_status,
        other => panic!("{other:?}"),
    };
    assert_eq!(read("1"), read(r#""1""#));
}

#[test]
fn topics_serialize_ids_and_statuses_as_strings() {
    let t =
        order_change(r#"{"order_id":578102300000000207,"order_status":"CANCEL","update_time":1}"#);
    let json = serde_json::to_string(&t).unwrap();
    assert_eq!(
        json,
        r#"{"order_id":"578102300000000207","order_status":"CANCELLED","is_on_hold_order":null,"update_time":1}"#
    );
}

#[test]
fn every_known_code_has_its_event_type_and_the_others_are_unknown() {
    let known = [
        1, 2, 3, 4, 5, 6, 7, 11, 12, 13, 14, 15, 16, 18, 21, 36, 37, 67,
    ];
    for code in known {
        let topic = Topic::parse(code, None);
        assert_eq!(topic.code(), code);
        assert!(
            !matches!(topic, Topic::Unknown { .. } | Topic::Malformed { .. }),
            "{code}"
        );
        assert_ne!(topic.event_type(), "unknown");
    }
    for code in [0, 8, 17, 19, 33, 99, -1, i64::MAX] {
        assert_eq!(Topic::parse(code, None), Topic::Unknown { code });
    }
    assert_eq!(
        Topic::parse(21, None).event_type(),
        "fbt_inbound_order_status_change"
    );
}
