//! Client addresses and budgets, without a server.

use std::{net::IpAddr, time::Duration};

use axum::http::{HeaderMap, HeaderValue};

use super::{ClientAddr, RateLimits};

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn forwarded(values: &[&str]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for v in values {
        headers.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
    }
    headers
}

const PEER: &str = "10.0.0.9";

fn resolve(values: &[&str], hops: usize) -> IpAddr {
    ClientAddr::resolve(&forwarded(values), Some(ip(PEER)), hops).ip()
}

#[test]
fn forwarded_for_is_ignored_unless_a_proxy_is_trusted() {
    assert_eq!(resolve(&["203.0.113.7"], 0), ip(PEER));
}

#[test]
fn one_trusted_proxy_means_the_rightmost_entry() {
    // The client wrote the first entry itself; the proxy appended the second.
    assert_eq!(resolve(&["1.2.3.4, 203.0.113.7"], 1), ip("203.0.113.7"));
    assert_eq!(resolve(&["1.2.3.4", "203.0.113.7"], 1), ip("203.0.113.7"));
}

#[test]
fn two_trusted_proxies_mean_the_second_entry_from_the_right() {
    assert_eq!(
        resolve(&["1.2.3.4, 203.0.113.7, 10.1.1.1"], 2),
        ip("203.0.113.7")
    );
}

#[test]
fn a_missing_or_unreadable_entry_falls_back_to_the_peer() {
    assert_eq!(resolve(&[], 1), ip(PEER));
    assert_eq!(resolve(&["not-an-address"], 1), ip(PEER));
    assert_eq!(resolve(&["203.0.113.7"], 2), ip(PEER));
    assert_eq!(resolve(&["203.0.113.7:4711"], 1), ip("203.0.113.7"));
}

#[test]
fn ipv6_clients_share_a_budget_per_64_network() {
    let a = resolve(&["2001:db8:1:2:aaaa::1"], 1);
    let b = resolve(&["2001:db8:1:2:bbbb::2"], 1);
    let other = resolve(&["2001:db8:1:3::1"], 1);
    assert_eq!(a, b);
    assert_ne!(a, other);
    assert_eq!(resolve(&["::ffff:203.0.113.7"], 1), ip("203.0.113.7"));
}

#[test]
fn a_budget_refuses_after_max_with_a_retry_after() {
    let limits = RateLimits::new(3, Duration::from_secs(60));
    let client = ClientAddr::resolve(&HeaderMap::new(), Some(ip(PEER)), 0);
    for _ in 0..3 {
        limits.failure(client).unwrap();
    }
    let refused = limits.failure(client).unwrap_err();
    assert_eq!(refused.status, 429);
    assert_eq!(refused.code, "rate_limited");
    let retry = refused.retry_after.unwrap();
    assert!(
        (1..=20).contains(&retry),
        "one slot frees every 20 s: {retry}"
    );
    // The other budget and other addresses are untouched.
    limits.api(client).unwrap();
    let other = ClientAddr::resolve(&HeaderMap::new(), Some(ip("10.0.0.10")), 0);
    limits.failure(other).unwrap();
}

#[test]
fn pruning_forgets_addresses_whose_budget_is_full_again() {
    let limits = RateLimits::new(1, Duration::from_millis(50));
    for n in 0..100u8 {
        let client = ClientAddr::resolve(&HeaderMap::new(), Some(IpAddr::from([10, 0, 1, n])), 0);
        limits.failure(client).unwrap();
    }
    assert_eq!(limits.tracked(), 100);
    std::thread::sleep(Duration::from_millis(120));
    limits.prune();
    assert_eq!(limits.tracked(), 0);
}

#[test]
fn pruning_keeps_addresses_that_have_spent_part_of_their_budget() {
    let limits = RateLimits::new(2, Duration::from_secs(60));
    let client = ClientAddr::resolve(&HeaderMap::new(), Some(ip(PEER)), 0);
    limits.failure(client).unwrap();
    limits.failure(client).unwrap();
    limits.prune();
    assert_eq!(limits.tracked(), 1);
    assert!(
        limits.failure(client).is_err(),
        "pruning must not refill a budget"
    );
}
