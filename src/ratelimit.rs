//! Rate limits per client address: one budget for `/api`, one for webhook
//! requests that fail verification. Verified webhooks never touch a budget,
//! so a busy shop cannot lose orders to its own traffic, while forgeries and
//! replays from one address are throttled after `RATE_LIMIT_MAX` per
//! `RATE_LIMIT_WINDOW`.
//!
//! Each budget is a GCRA bucket (governor): `RATE_LIMIT_MAX` requests at once,
//! then one more every `RATE_LIMIT_WINDOW / RATE_LIMIT_MAX`. Per-address state
//! is dropped by [`RateLimits::prune`] once it is indistinguishable from a
//! fresh one, so memory follows the addresses active within one window.

use std::{
    net::{IpAddr, Ipv6Addr, SocketAddr},
    num::NonZeroU32,
    time::Duration,
};

use axum::{
    extract::{ConnectInfo, FromRequestParts, Request, State},
    http::{request::Parts, HeaderMap, StatusCode},
    middleware::Next,
    response::Response,
};
use governor::{clock::Clock, DefaultKeyedRateLimiter, Quota};

use crate::{app::AppState, error::ApiError};

type Limiter = DefaultKeyedRateLimiter<IpAddr>;

/// The two budgets of the service.
#[derive(Debug)]
pub struct RateLimits {
    api: Limiter,
    failures: Limiter,
}

impl RateLimits {
    /// `max` requests per `window` and address (both checked non-zero by the
    /// configuration).
    pub fn new(max: u32, window: Duration) -> Self {
        let burst = NonZeroU32::new(max.max(1)).unwrap_or(NonZeroU32::MIN);
        let period = (window / burst.get()).max(Duration::from_nanos(1));
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(burst))
            .allow_burst(burst);
        Self {
            api: Limiter::keyed(quota),
            failures: Limiter::keyed(quota),
        }
    }

    /// Spends one `/api` request of `client`.
    pub fn api(&self, client: ClientAddr) -> Result<(), ApiError> {
        spend(&self.api, client, "api")
    }

    /// Spends one failed verification of `client`: `Err` (429) once its
    /// budget is gone, in place of the refusal it would otherwise get.
    pub fn failure(&self, client: ClientAddr) -> Result<(), ApiError> {
        spend(&self.failures, client, "webhook")
    }

    /// Forgets every address whose budget is full again, and gives the
    /// memory back.
    pub fn prune(&self) {
        for (scope, limiter) in [("api", &self.api), ("webhook", &self.failures)] {
            limiter.retain_recent();
            limiter.shrink_to_fit();
            metrics::gauge!("rate_limit_tracked_addresses", "scope" => scope)
                .set(limiter.len() as f64);
        }
    }

    /// Addresses currently remembered, both budgets together.
    pub fn tracked(&self) -> usize {
        self.api.len() + self.failures.len()
    }
}

fn spend(limiter: &Limiter, client: ClientAddr, scope: &'static str) -> Result<(), ApiError> {
    let Err(not_until) = limiter.check_key(&client.0) else {
        return Ok(());
    };
    metrics::counter!("rate_limited_total", "scope" => scope).increment(1);
    let wait = not_until.wait_time_from(limiter.clock().now());
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    Err(ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        "too many requests from this address; retry after the time in Retry-After",
    )
    .with_retry_after(seconds.max(1)))
}

/// Middleware for `/api`: every request counts, answered or refused, so that
/// guessing tokens is throttled too.
pub async fn limit_api(
    State(state): State<AppState>,
    client: ClientAddr,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    state.limits.api(client)?;
    Ok(next.run(request).await)
}

/// The address a budget is kept for. An IPv6 client is keyed by its /64
/// network: one host usually holds a whole /64 and could otherwise take a
/// fresh budget for every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(IpAddr);

impl ClientAddr {
    /// From `X-Forwarded-For` when `trusted_hops` proxies are trusted (the
    /// entry that many places from the right: the one the outermost trusted
    /// proxy saw), else from the socket peer. Entries further left are
    /// written by the client and never believed.
    pub fn resolve(headers: &HeaderMap, peer: Option<IpAddr>, trusted_hops: usize) -> Self {
        let forwarded = (trusted_hops > 0)
            .then(|| forwarded_for(headers, trusted_hops))
            .flatten();
        let ip = forwarded
            .or(peer)
            .unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        ClientAddr(budget_key(ip))
    }

    pub fn ip(&self) -> IpAddr {
        self.0
    }
}

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        Ok(Self::resolve(
            &parts.headers,
            peer,
            state.settings.trust_proxy,
        ))
    }
}

fn forwarded_for(headers: &HeaderMap, hops: usize) -> Option<IpAddr> {
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let entry = entries.len().checked_sub(hops).map(|i| entries[i])?;
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

fn budget_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests;
