//! The example bodies in `events/` of the product, account, chat and unknown topics,
//! one test each, checking the fields read from them.

use super::support::{fixture, id, shop_event, text};
use crate::tiktok::topics::*;
use crate::tiktok::Topic;

#[test]
fn product_status_change_05_keeps_a_numeric_product_id_exact() {
    let e = shop_event(
        "05-product-status-change.json",
        5,
        "7438810292745531405",
        1796213455,
    );
    let expected = ProductStatusChange {
        product_id: id("1731245560981234567"),
        status: text("PRODUCT_AUDIT_FAILURE"),
        suspended_reason: text("Main image shows a third-party watermark"),
        update_time: Some(1796213450),
    };
    assert_eq!(e.topic, Topic::ProductStatusChange(expected));
    assert_eq!(e.event_type(), "product_status_change");
    assert_eq!(e.order_id(), None);
}

#[test]
fn seller_deauthorization_06_orders_by_the_envelope() {
    let e = shop_event(
        "06-seller-deauthorization.json",
        6,
        "7438810292745531406",
        1796213700,
    );
    let message = "The seller of shop 7495263810457220311 has removed this app's authorization.";
    assert_eq!(
        e.topic,
        Topic::SellerDeauthorization(SellerDeauthorization {
            message: text(message)
        })
    );
    assert_eq!(e.event_type(), "seller_deauthorization");
    assert_eq!(e.topic.ordering_time(), None);
    assert_eq!(e.ordering_time(), Some(1796213700));
}

#[test]
fn upcoming_authorization_expiration_07_reads_a_string_time() {
    let e = shop_event(
        "07-upcoming-authorization-expiration.json",
        7,
        "7438810292745531407",
        1796213880,
    );
    let Topic::UpcomingAuthorizationExpiration(t) = &e.topic else {
        panic!("{:?}", e.topic)
    };
    assert_eq!(t.expiration_time, Some(1798804800));
    assert!(t
        .message
        .as_deref()
        .unwrap()
        .starts_with("Authorization for shop"));
    assert_eq!(e.event_type(), "upcoming_authorization_expiration");
    assert_eq!(e.ordering_time(), Some(1796213880));
}

#[test]
fn new_conversation_13_orders_by_create_time() {
    let e = shop_event(
        "13-new-conversation.json",
        13,
        "7438810292745531413",
        1796214602,
    );
    let expected = NewConversation {
        conversation_id: id("7102938475610293813"),
        create_time: Some(1796214601),
    };
    assert_eq!(e.topic, Topic::NewConversation(expected));
    assert_eq!(e.event_type(), "new_conversation");
    assert_eq!(e.ordering_time(), Some(1796214601));
}

#[test]
fn new_message_14_decodes_the_content_and_keeps_the_index_exact() {
    let e = shop_event("14-new-message.json", 14, "7438810292745531414", 1796214660);
    let Topic::NewMessage(m) = &e.topic else {
        panic!("{:?}", e.topic)
    };
    assert_eq!(m.index, id("7501928374650192837"));
    assert_eq!(m.message_id, id("7223344556677889914"));
    assert_eq!(m.conversation_id, id("7102938475610293813"));
    assert_eq!(m.message_type, text("TEXT"));
    assert_eq!(
        m.content,
        text(r#"{"content":"Could I switch the colour to navy before it ships?"}"#)
    );
    assert_eq!(
        m.text(),
        text("Could I switch the colour to navy before it ships?")
    );
    assert_eq!(
        (m.create_time, m.is_visible),
        (Some(1796214659), Some(true))
    );
    let sender = MessageSender {
        im_user_id: id("7071122334455667714"),
        role: text("BUYER"),
    };
    assert_eq!(m.sender, Some(sender));
    assert_eq!(e.event_type(), "new_message");
    assert_eq!(
        e.topic.ordering_time(),
        None,
        "messages are ordered by index"
    );
}

#[test]
fn product_information_change_15() {
    let e = shop_event(
        "15-product-information-change.json",
        15,
        "7438810292745531415",
        1796214904,
    );
    let expected = ProductInformationChange {
        product_id: id("1731245560981234567"),
        change_source: text("SELLER_CENTER"),
        changed_fields: vec!["description".to_owned(), "skus".to_owned()],
        update_time: Some(1796214900),
    };
    assert_eq!(e.topic, Topic::ProductInformationChange(expected));
    assert_eq!(e.event_type(), "product_information_change");
}

#[test]
fn product_creation_16_keeps_a_numeric_product_id_exact() {
    let e = shop_event(
        "16-product-creation.json",
        16,
        "7438810292745531416",
        1796215190,
    );
    let expected = ProductCreation {
        product_id: id("1731245560981234599"),
        product_types: vec!["GPR_PRODUCT".to_owned()],
        update_time: Some(1796215188),
    };
    assert_eq!(e.topic, Topic::ProductCreation(expected));
    assert_eq!(e.event_type(), "product_creation");
}

#[test]
fn product_category_change_18() {
    let e = shop_event(
        "18-product-category-change.json",
        18,
        "7438810292745531418",
        1796215411,
    );
    let expected = ProductCategoryChange {
        product_id: id("1731245560981234567"),
        previous_category_id: id("601152"),
        current_category_id: id("601226"),
        update_time: Some(1796215409),
    };
    assert_eq!(e.topic, Topic::ProductCategoryChange(expected));
    assert_eq!(e.event_type(), "product_category_change");
}

#[test]
fn fbt_inbound_order_status_21_is_seller_level() {
    let e = fixture("21-fbt-inbound-order-status.json");
    assert_eq!((e.type_code, e.id.as_str()), (21, "7438810292745531421"));
    assert_eq!(e.shop_id, None);
    assert_eq!(
        e.seller_open_id,
        text("VIyStQAAAABnq3Tt0cWm8Hn2xYk5Lr1JpZsAe4DgBo9Fv7UcXiK6")
    );
    assert_eq!(e.timestamp, Some(1796215700));
    let expected = FbtInboundOrderStatus {
        inbound_order_id: id("IBR578112345609871221"),
        order_status: text("PARTIALLY_RECEIVED"),
        update_time: Some(1796215695),
    };
    assert_eq!(e.topic, Topic::FbtInboundOrderStatus(expected));
    assert_eq!(e.event_type(), "fbt_inbound_order_status_change");
    assert_eq!(e.order_id(), None, "an inbound order is not a sales order");
}

#[test]
fn product_audit_status_change_37_flattens_the_audit() {
    let e = shop_event(
        "37-product-audit-status-change.json",
        37,
        "7438810292745531437",
        1796216160,
    );
    let expected = ProductAuditStatusChange {
        product_id: id("1731245560981234567"),
        audit_status: text("FAILED"),
        update_time: Some(1796216158),
    };
    assert_eq!(e.topic, Topic::ProductAuditStatusChange(expected));
    assert_eq!(e.event_type(), "product_audit_status_change");
}

#[test]
fn unknown_type_99_is_kept_and_named_unknown() {
    let e = shop_event(
        "99-unknown-type.json",
        99,
        "7438810292745531499",
        1796216700,
    );
    assert_eq!(e.topic, Topic::Unknown { code: 99 });
    assert_eq!(e.event_type(), "unknown");
    assert_eq!(e.order_id(), None);
    assert_eq!(e.ordering_time(), Some(1796216700));
    assert!(e.raw_str().contains(r#""schema_version":"2""#));
}
