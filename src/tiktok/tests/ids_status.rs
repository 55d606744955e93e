//! Ids, the tolerant readers as serde helpers, and order statuses.

use serde::Deserialize;

use crate::tiktok::ids::{self, Id};
use crate::tiktok::OrderStatus;

/// A struct using the helpers the way server code would.
#[derive(Debug, Deserialize)]
struct Row {
    #[serde(default, deserialize_with = "ids::deserialize_opt_id")]
    id: Option<Id>,
    #[serde(default, deserialize_with = "ids::deserialize_opt_time")]
    at: Option<i64>,
    /// A plain `Option<Id>`, which goes through `Id`'s own `Deserialize`.
    #[serde(default)]
    plain: Option<Id>,
}

fn row(json: &str) -> Row {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"))
}

#[test]
fn ids_deserialize_from_strings_and_integers_of_any_size() {
    let id = |json: &str| serde_json::from_str::<Id>(json).map(|id| id.into_string());
    assert_eq!(id(r#""578112345609871201""#).unwrap(), "578112345609871201");
    assert_eq!(id("578112345609871201").unwrap(), "578112345609871201");
    assert_eq!(
        id("123456789012345678901234567890").unwrap(),
        "123456789012345678901234567890"
    );
    assert_eq!(id(r#""IBR-1""#).unwrap(), "IBR-1");
    for bad in ["{}", "[1]", "true", "1.5", "1e3", "-1", r#""""#, "null"] {
        assert!(id(bad).is_err(), "{bad}");
    }
}

#[test]
fn ids_display_and_serialize_as_strings() {
    let id = Id::new("1731245560981234567");
    assert_eq!(id.to_string(), "1731245560981234567");
    assert_eq!(
        serde_json::to_string(&id).unwrap(),
        r#""1731245560981234567""#
    );
    assert_eq!(Id::from("7").as_str(), "7");
}

#[test]
fn optional_id_and_time_helpers_treat_null_missing_and_empty_as_absent() {
    for json in [r#"{}"#, r#"{"id":null,"at":null}"#, r#"{"id":"","at":""}"#] {
        let r = row(json);
        assert_eq!((r.id, r.at), (None, None), "{json}");
    }
    let r = row(r#"{"id":99999999999999999999,"at":"1796212805123","plain":18446744073709551616}"#);
    assert_eq!(
        (r.id.unwrap().as_str(), r.at),
        ("99999999999999999999", Some(1796212805))
    );
    assert_eq!(r.plain.unwrap().as_str(), "18446744073709551616");
    assert_eq!(row(r#"{"plain":null}"#).plain, None);
    assert!(serde_json::from_str::<Row>(r#"{"at":"noon"}"#).is_err());
    assert!(serde_json::from_str::<Row>(r#"{"id":[1]}"#).is_err());
}

#[test]
fn times_refuse_what_cannot_be_a_unix_time() {
    let time = |json: &str| {
        let raw: Box<serde_json::value::RawValue> = serde_json::from_str(json).unwrap();
        ids::time_from_json(&raw)
    };
    assert_eq!(time("1796212805"), Ok(Some(1796212805)));
    assert_eq!(time("1796212805000"), Ok(Some(1796212805)));
    assert_eq!(time("0"), Ok(Some(0)));
    for bad in [
        "-1",
        "1.0",
        "1e9",
        r#""-1""#,
        r#""12a""#,
        "99999999999999999999",
        "true",
        "{}",
    ] {
        assert!(time(bad).is_err(), "{bad}");
    }
}

#[test]
fn statuses_parse_to_canonical_names_and_keep_unknown_text() {
    let names = [
        ("UNPAID", 100),
        ("ON_HOLD", 105),
        ("AWAITING_SHIPMENT", 111),
        ("AWAITING_COLLECTION", 112),
        ("PARTIALLY_SHIPPING", 114),
        ("IN_TRANSIT", 121),
        ("DELIVERED", 122),
        ("COMPLETED", 130),
        ("CANCELLED", 140),
    ];
    for (name, code) in names {
        let by_name = OrderStatus::parse(name);
        assert!(!matches!(by_name, OrderStatus::Other(_)), "{name}");
        assert_eq!(by_name.as_str(), name);
        let by_code: OrderStatus = serde_json::from_str(&code.to_string()).unwrap();
        assert_eq!(by_code, by_name, "{code}");
    }
    assert_eq!(OrderStatus::parse("CANCEL").to_string(), "CANCELLED");
    assert_eq!(
        OrderStatus::parse("awaiting_shipment"),
        OrderStatus::Other("awaiting_shipment".to_owned())
    );
    assert_eq!(
        OrderStatus::parse("101"),
        OrderStatus::Other("101".to_owned())
    );
}

#[test]
fn statuses_serialize_canonically_and_refuse_impossible_json() {
    let cancelled: OrderStatus = serde_json::from_str(r#""CANCEL""#).unwrap();
    assert_eq!(serde_json::to_string(&cancelled).unwrap(), r#""CANCELLED""#);
    for bad in ["-100", "1.5", "true", "[]", "{}", "null", r#""""#] {
        assert!(serde_json::from_str::<OrderStatus>(bad).is_err(), "{bad}");
    }
}
