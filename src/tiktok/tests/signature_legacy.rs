//! The older `x-tiktok-shop-signature` / `x-tiktok-shop-timestamp` scheme.

use bytes::Bytes;

use super::signature::{vectors, BODY};
use super::support::{verifier, SECRET};
use crate::tiktok::signature::sign_legacy;
use crate::tiktok::SignatureError;

#[test]
fn legacy_header_vectors_verify_with_the_legacy_scheme_only() {
    let legacy = vectors(|v| v.scheme == "legacy-header");
    assert_eq!(legacy.len(), 2);
    for v in &legacy {
        let ts = v
            .timestamp
            .as_deref()
            .expect("legacy vectors have a timestamp");
        let now: i64 = ts.parse().unwrap();
        let result = v.verifier().verify_legacy(
            &[v.signature.as_bytes()],
            &[ts.as_bytes()],
            v.body(),
            now,
            300,
        );
        assert!(result.is_ok(), "{}", v.name);
        assert_eq!(
            sign_legacy(&v.app_secret, ts, &v.body()),
            v.signature,
            "{}",
            v.name
        );
        // The same digest in Authorization is not TikTok's scheme.
        assert_eq!(v.verify(), Err(SignatureError::Mismatch), "{}", v.name);
    }
}

#[test]
fn legacy_timestamps_outside_the_window_are_stale_but_only_when_signed() {
    let v = verifier();
    let sig = sign_legacy(SECRET, "1796212806", BODY);
    let check = |sig: &str, ts: &str, now: i64| {
        v.verify_legacy(
            &[sig.as_bytes()],
            &[ts.as_bytes()],
            Bytes::from_static(BODY),
            now,
            300,
        )
        .map(|_| ())
    };
    assert_eq!(check(&sig, "1796212806", 1796212806 + 300), Ok(()));
    assert_eq!(check(&sig, "1796212806", 1796212806 - 300), Ok(()));
    assert_eq!(
        check(&sig, "1796212806", 1796212806 + 301),
        Err(SignatureError::Stale)
    );
    assert_eq!(
        check(&sig, "1796212806", 1796212806 - 301),
        Err(SignatureError::Stale)
    );
    // The timestamp is signed: changing it breaks the signature before age matters.
    assert_eq!(
        check(&sig, "1796212807", 1796212806),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        check(&sig, "soon", 1796212806),
        Err(SignatureError::Malformed)
    );
    assert_eq!(
        check("", "1796212806", 1796212806),
        Err(SignatureError::Missing)
    );
    let ms_sig = sign_legacy(SECRET, "1796212806000", BODY);
    assert_eq!(check(&ms_sig, "1796212806000", 1796212806), Ok(()));
}

#[test]
fn legacy_headers_must_each_appear_exactly_once() {
    let v = verifier();
    let sig = sign_legacy(SECRET, "100", BODY);
    let body = || Bytes::from_static(BODY);
    let (s, t) = (sig.as_bytes(), b"100".as_slice());
    assert_eq!(
        v.verify_legacy(&[s], &[], body(), 100, 300).unwrap_err(),
        SignatureError::Missing
    );
    assert_eq!(
        v.verify_legacy(&[], &[t], body(), 100, 300).unwrap_err(),
        SignatureError::Missing
    );
    assert_eq!(
        v.verify_legacy(&[s], &[t, t], body(), 100, 300)
            .unwrap_err(),
        SignatureError::Ambiguous
    );
    assert_eq!(
        v.verify_legacy(&[s, s], &[t], body(), 100, 300)
            .unwrap_err(),
        SignatureError::Ambiguous
    );
}
