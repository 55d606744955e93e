//! Layers every response passes through on the open internet: CORS for the
//! one frontend, security headers, and the request deadline.

use std::time::Duration;

use axum::{
    http::{
        header::{self, HeaderName},
        HeaderValue, Method, StatusCode,
    },
    Router,
};
use tower_http::{
    cors::{AllowOrigin, CorsLayer},
    set_header::SetResponseHeaderLayer,
    timeout::TimeoutLayer,
};

use crate::{config::Settings, telemetry::REQUEST_ID};

/// One year, the value HSTS preload lists ask for.
const HSTS: &str = "max-age=31536000; includeSubDomains";

/// The request deadline: a handler (body upload included) that is not done
/// in time is dropped and answered 408 `timeout`. Goes inside the error
/// renderer so that the 408 gets the error body.
pub fn deadline(router: Router, timeout: Duration) -> Router {
    router.layer(TimeoutLayer::with_status_code(
        StatusCode::REQUEST_TIMEOUT,
        timeout,
    ))
}

/// Security headers on every answer, and CORS when `FRONTEND_URL` is set.
/// Without it no CORS header is sent at all, so browsers keep other sites'
/// pages from reading the API.
pub fn harden(router: Router, settings: &Settings) -> Router {
    let fixed = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        // JSON only: nothing on these pages may load or frame anything.
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'",
        ),
    ];
    let mut router = router;
    for (name, value) in fixed {
        router = router.layer(SetResponseHeaderLayer::if_not_present(
            name,
            HeaderValue::from_static(value),
        ));
    }
    // HSTS is meaningful only over HTTPS, which production has at its proxy;
    // in development over plain http://localhost it would be noise.
    if settings.is_production() {
        router = router.layer(SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        ));
    }
    match settings.frontend_url.as_deref().map(HeaderValue::from_str) {
        Some(Ok(origin)) => router.layer(cors(origin)),
        _ => router,
    }
}

fn cors(origin: HeaderValue) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::list([origin]))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .expose_headers([REQUEST_ID, HeaderName::from_static("retry-after")])
        .max_age(Duration::from_secs(600))
}
