//! Every vector of `api-signing.json`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::support::read_data;
use crate::tiktok::api_signing::{
    base_string, base_string_for, sign_request, sign_request_for, ApiVersion,
};

#[derive(Deserialize)]
struct Vector {
    name: String,
    app_secret: String,
    path: String,
    query: BTreeMap<String, String>,
    content_type: String,
    body: String,
    base_string: String,
    sign: String,
    #[serde(default)]
    scheme: Option<String>,
}

impl Vector {
    fn version(&self) -> ApiVersion {
        match self.scheme.as_deref() {
            None => ApiVersion::V202309,
            Some("legacy-v1") => ApiVersion::LegacyV1,
            Some(other) => panic!("{}: unknown scheme {other}", self.name),
        }
    }

    fn multipart(&self) -> bool {
        self.content_type.starts_with("multipart/")
    }

    /// The query in reverse key order, so that the sorting is tested too.
    fn query(&self) -> Vec<(&str, &str)> {
        self.query
            .iter()
            .rev()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }
}

fn vectors() -> Vec<Vector> {
    serde_json::from_slice(&read_data("api-signing.json")).expect("api-signing.json")
}

#[test]
fn every_api_signing_vector_gives_its_base_string_and_sign() {
    let all = vectors();
    assert_eq!(all.len(), 7);
    for v in &all {
        let (query, body, multipart) = (v.query(), v.body.as_bytes(), v.multipart());
        let base = base_string_for(v.version(), &v.path, &query, body, multipart);
        assert_eq!(base, v.base_string, "{}", v.name);
        let sign = sign_request_for(v.version(), &v.app_secret, &v.path, &query, body, multipart);
        assert_eq!(sign, v.sign, "{}", v.name);
    }
}

#[test]
fn the_plain_functions_sign_for_the_202309_api() {
    let all = vectors();
    let current: Vec<&Vector> = all
        .iter()
        .filter(|v| v.version() == ApiVersion::V202309)
        .collect();
    assert_eq!(current.len(), 6);
    for v in current {
        let (query, body) = (v.query(), v.body.as_bytes());
        assert_eq!(
            base_string(&v.path, &query, body, v.multipart()),
            v.base_string,
            "{}",
            v.name
        );
        assert_eq!(
            sign_request(&v.app_secret, &v.path, &query, body, v.multipart()),
            v.sign,
            "{}",
            v.name
        );
    }
}

#[test]
fn the_legacy_api_never_signs_the_body() {
    let all = vectors();
    let legacy = all
        .iter()
        .find(|v| v.version() == ApiVersion::LegacyV1)
        .expect("a legacy vector");
    assert!(!legacy.body.is_empty());
    let (query, body) = (legacy.query(), legacy.body.as_bytes());
    let as_current = sign_request(&legacy.app_secret, &legacy.path, &query, body, false);
    assert_ne!(
        as_current, legacy.sign,
        "the body must make a difference for 202309"
    );
}

#[test]
fn multipart_bodies_are_left_out() {
    let query = [("app_key", "k"), ("timestamp", "1")];
    assert_eq!(
        base_string("/p", &query, b"--b\r\n", true),
        "/papp_keyktimestamp1"
    );
    assert_eq!(
        base_string("/p", &query, b"{}", false),
        "/papp_keyktimestamp1{}"
    );
}
