//! Property tests: no input makes verification or parsing panic, and every JSON object
//! with an integer `type` is accepted (odd data only ever makes a topic Malformed).

use bytes::Bytes;
use proptest::prelude::*;

use super::support::{parse, verifier};

/// Pieces that, joined at random, make bodies close to real notifications.
const FRAGMENTS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    " ",
    "\n",
    r#"{"type":1,"data":"#,
    r#""type":"#,
    r#""data":"#,
    r#""tts_notification_id":"#,
    r#""shop_id":"#,
    r#""timestamp":"#,
    r#""order_id":"#,
    r#""order_status":"#,
    r#""package_list":"#,
    r#""order_id_list":"#,
    r#""line_items":"#,
    r#""content":"#,
    r#""audit":"#,
    "1",
    "14",
    "67",
    "-1",
    "0",
    "1.5",
    "1e400",
    "123456789012345678901234567890",
    "1796212805123",
    "null",
    "true",
    "false",
    r#""""#,
    r#""x""#,
    r#""CANCEL""#,
    r#""\ud800""#,
    r#""\u0000""#,
    "\u{1F642}",
    "\\",
];

/// Field names of every topic, for building `data` objects.
const FIELDS: &[&str] = &[
    "order_id",
    "order_status",
    "is_on_hold_order",
    "update_time",
    "create_time",
    "reverse_order_status",
    "package_list",
    "order_id_list",
    "package_id",
    "product_id",
    "changed_fields",
    "expiration_time",
    "message",
    "content",
    "index",
    "is_visible",
    "sender",
    "audit",
    "order_ids",
    "line_items",
    "main_order_id",
    "refund_total",
    "refund_timestamp",
    "inbound_order_id",
];

/// JSON values of every shape, including nested ones with the same field names.
const VALUES: &[&str] = &[
    "null",
    "true",
    "0",
    "-7",
    "2.5",
    "1e3",
    "18446744073709551616",
    "1796212805123",
    r#""""#,
    r#""578112345609871201""#,
    r#""CANCEL""#,
    r#""{\"content\":\"hi\"}""#,
    "[]",
    "{}",
    r#"[null,"1",2,{}]"#,
    r#"[{"order_id_list":["1",null]},null,7]"#,
    r#"{"status":"FAILED"}"#,
    r#"{"im_user_id":1,"role":null}"#,
    r#"[{"main_order_id":3}]"#,
];

const CODES: &[i64] = &[
    1, 2, 3, 4, 5, 6, 7, 11, 12, 13, 14, 15, 16, 18, 21, 36, 37, 67, 99, -1,
];

fn fragments() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(FRAGMENTS), 0..32).prop_map(|parts| parts.concat())
}

fn notification() -> impl Strategy<Value = String> {
    let member = (prop::sample::select(FIELDS), prop::sample::select(VALUES));
    (
        prop::sample::select(CODES),
        prop::collection::vec(member, 0..8),
    )
        .prop_map(|(code, members)| {
            let data: Vec<String> = members
                .iter()
                .map(|(k, v)| format!("\"{k}\":{v}"))
                .collect();
            format!(
                r#"{{"type":{code},"timestamp":"x","data":{{{}}}}}"#,
                data.join(",")
            )
        })
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(event) = parse(&body) {
            prop_assert_eq!(event.raw(), &body[..]);
            prop_assert!(!event.event_type().is_empty());
        }
    }

    #[test]
    fn json_like_fragments_never_panic(body in fragments()) {
        match parse(body.as_bytes()) {
            Ok(event) => {
                let _ = (event.order_id(), event.ordering_time(), event.topic.order_ids());
            }
            Err(error) => prop_assert!(!error.to_string().is_empty()),
        }
    }

    #[test]
    fn objects_with_an_integer_type_are_always_accepted(body in notification()) {
        let event = parse(body.as_bytes());
        prop_assert!(event.is_ok(), "{:?}", event.err());
        let event = event.unwrap();
        prop_assert_eq!(event.timestamp, None);
        let _ = (event.order_id(), event.ordering_time(), event.event_type());
    }

    #[test]
    fn arbitrary_authorization_values_never_panic(
        values in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..80), 0..3),
        body in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let values: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
        let v = verifier();
        let _ = v.verify(&values, Bytes::from(body.clone()));
        let _ = v.verify_legacy(&values, &values, Bytes::from(body), 0, 300);
    }
}
