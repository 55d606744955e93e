//! What makes a body refused, and how the envelope fields are read.

use sha2::{Digest, Sha256};

use super::support::{event, parse};
use crate::tiktok::{EventId, Id, ParseError, Topic};

fn refused(body: &[u8]) -> ParseError {
    parse(body).expect_err("body accepted")
}

#[test]
fn bodies_that_cannot_be_a_notification_are_refused_with_the_right_error() {
    let cases: [(&[u8], ParseError); 13] = [
        (b"", ParseError::NotJson),
        (b"  \n", ParseError::NotJson),
        (b"not json", ParseError::NotJson),
        (br#"{"type":1} trailing"#, ParseError::NotJson),
        (br#"{"type":1"#, ParseError::NotJson),
        (b"[1,2,3]", ParseError::NotObject),
        (br#""a string""#, ParseError::NotObject),
        (b"null", ParseError::NotObject),
        (b"{\"type\":1,\"data\":\"Caf\xff\"}", ParseError::NotUtf8),
        (br#"{"data":{"order_id":"1"}}"#, ParseError::MissingType),
        (br#"{"type":null}"#, ParseError::MissingType),
        (br#"{"type":1.5}"#, ParseError::BadType),
        (br#"{"type":{"code":1}}"#, ParseError::BadType),
    ];
    for (body, expected) in cases {
        assert_eq!(refused(body), expected, "{}", String::from_utf8_lossy(body));
    }
}

#[test]
fn a_type_must_be_an_integer_or_a_string_of_one() {
    for body in [
        r#"{"type":"abc"}"#,
        r#"{"type":""}"#,
        r#"{"type":"+1"}"#,
        r#"{"type":true}"#,
        r#"{"type":1e2}"#,
    ] {
        assert_eq!(refused(body.as_bytes()), ParseError::BadType, "{body}");
    }
    assert_eq!(
        refused(br#"{"type":99999999999999999999}"#),
        ParseError::BadType
    );
    assert_eq!(event(r#"{"type":"1","data":{}}"#).type_code, 1);
    assert_eq!(event(r#"{"type":-3}"#).topic, Topic::Unknown { code: -3 });
}

#[test]
fn parse_errors_have_codes_and_never_echo_the_body() {
    let secret_looking = br#"{"buyer":"Ada Lovelace, 12 Sage Lane"}"#;
    let error = refused(secret_looking);
    assert_eq!(error, ParseError::MissingType);
    assert_eq!(error.code(), "missing_type");
    assert!(!error.to_string().contains("Ada"), "{error}");
    let codes = [
        ParseError::NotUtf8,
        ParseError::NotJson,
        ParseError::NotObject,
        ParseError::BadType,
    ]
    .map(|e| e.code());
    assert_eq!(
        codes,
        [
            "body_not_utf8",
            "body_not_json",
            "body_not_object",
            "bad_type"
        ]
    );
}

#[test]
fn json_whitespace_around_the_object_is_accepted_and_kept() {
    let body =
        " \r\n\t{\"type\":3,\"tts_notification_id\":\"11\",\"data\":{\"order_id\":\"5\"}}\n ";
    let e = event(body);
    assert_eq!((e.type_code, e.id.as_str()), (3, "11"));
    assert_eq!(e.raw_str(), body);
}

#[test]
fn deeply_nested_json_is_read_without_overflowing_the_stack() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let as_data = event(&format!(r#"{{"type":1,"data":{deep}}}"#));
    assert!(
        matches!(as_data.topic, Topic::Malformed { code: 1, .. }),
        "{:?}",
        as_data.topic
    );
    let in_field = event(&format!(
        r#"{{"type":1,"data":{{"order_id":"8","extra":{deep}}}}}"#
    ));
    assert_eq!(in_field.order_id(), Some(&Id::from("8")));
    let Topic::NewMessage(m) =
        event(&format!(r#"{{"type":14,"data":{{"content":{deep}}}}}"#)).topic
    else {
        panic!("not a message")
    };
    assert_eq!(m.text(), None);
}

#[test]
fn a_missing_null_empty_or_odd_notification_id_falls_back_to_the_body_hash() {
    for body in [
        r#"{"type":1,"data":{}}"#,
        r#"{"type":1,"tts_notification_id":null,"data":{}}"#,
        r#"{"type":1,"tts_notification_id":"","data":{}}"#,
        r#"{"type":1,"tts_notification_id":{"id":7},"data":{}}"#,
        r#"{"type":1,"tts_notification_id":-7,"data":{}}"#,
    ] {
        let expected = format!("sha256:{}", hex::encode(Sha256::digest(body.as_bytes())));
        assert_eq!(event(body).id.as_str(), expected, "{body}");
    }
}

#[test]
fn a_numeric_notification_id_keeps_its_exact_digits() {
    let e = event(r#"{"type":1,"tts_notification_id":7441023000000000207,"data":{}}"#);
    assert_eq!(e.id.as_str(), "7441023000000000207");
    assert!(!e.id.is_body_hash());
    assert_eq!(
        serde_json::to_string(&e.id).unwrap(),
        r#""7441023000000000207""#
    );
}

#[test]
fn envelope_fields_of_the_wrong_type_are_absent_not_errors() {
    let e = event(
        r#"{"type":1,"shop_id":{"x":1},"timestamp":"yesterday","seller_open_id":7,"creator_open_id":"","data":{}}"#,
    );
    assert_eq!(e.shop_id, None);
    assert_eq!(e.timestamp, None);
    assert_eq!(e.seller_open_id.as_deref(), Some("7"));
    assert_eq!(e.creator_open_id, None);
    assert!(matches!(e.topic, Topic::OrderStatusChange(_)));
}

#[test]
fn creator_level_topics_carry_a_creator_open_id() {
    let e = event(r#"{"type":99,"creator_open_id":"CR8","timestamp":1796216700}"#);
    assert_eq!(
        (e.shop_id, e.creator_open_id.as_deref()),
        (None, Some("CR8"))
    );
}

#[test]
fn a_key_given_twice_keeps_its_last_value() {
    let e = event(r#"{"type":3,"type":1,"data":{"order_id":"1","order_id":"2"}}"#);
    assert_eq!(e.type_code, 1);
    assert_eq!(e.order_id(), Some(&Id::from("2")));
}

#[test]
fn escapes_in_the_body_are_decoded_in_fields_and_kept_in_the_raw_bytes() {
    let body = r#"{"type":3,"tts_notification_id":"\u0037\u0037","data":{"order_id":"5\/7"}}"#;
    let e = event(body);
    assert_eq!(e.id.as_str(), "77");
    assert_eq!(e.order_id().map(Id::as_str), Some("5/7"));
    assert_eq!(e.raw_str(), body);
}

#[test]
fn event_ids_from_paths_are_checked_for_plausibility() {
    assert_eq!(
        EventId::parse_path("7441023000000000207").unwrap().as_str(),
        "7441023000000000207"
    );
    let hash = format!("sha256:{}", "ab".repeat(32));
    assert_eq!(EventId::parse_path(&hash).unwrap().to_string(), hash);
    assert!(EventId::parse_path(&hash).unwrap().is_body_hash());
    assert_eq!(EventId::parse_path(""), None);
    assert_eq!(EventId::parse_path("a\nb"), None);
    assert_eq!(EventId::parse_path(&"9".repeat(257)), None);
}
