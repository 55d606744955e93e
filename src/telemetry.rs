//! Logs, request spans and metrics.
//!
//! One span per request carries the method, matched route, request id,
//! status and latency, and the event and shop ids once intake knows them.
//! Nothing here records headers, bodies, signatures or tokens.

use std::{sync::OnceLock, time::Duration};

use axum::{
    extract::MatchedPath,
    http::{HeaderName, Request, Response},
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tower_http::trace::{MakeSpan, OnResponse};
use tracing::{field::Empty, Span};
use tracing_subscriber::{fmt, EnvFilter};

use crate::config::LogFormat;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Installs the global tracing subscriber; later calls do nothing, so tests
/// may call it from every test.
pub fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    let builder = fmt().with_env_filter(filter).with_target(false);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

/// The process-wide Prometheus recorder, installed on first use.
pub fn metrics_handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&[
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ])
            .expect("static buckets are valid")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (a library user's); then
        // our handle renders only what it sees, which is still correct.
        let _ = metrics::set_global_recorder(recorder);
        metrics::describe_counter!(
            "webhook_events_total",
            "Verified webhook events by topic and outcome (stored, duplicate, unavailable)"
        );
        metrics::describe_counter!(
            "webhook_refused_total",
            "Webhook requests refused, by reason"
        );
        metrics::describe_histogram!(
            "webhook_intake_seconds",
            "Time from request to answer for verified webhooks"
        );
        metrics::gauge!("tiktok_webhook_up").set(1.0);
        handle
    })
}

/// Makes the one span of a request.
#[derive(Clone, Copy, Debug)]
pub struct RequestSpan;

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, request: &Request<B>) -> Span {
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "(unmatched)".to_owned());
        let request_id = request
            .headers()
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        tracing::info_span!(
            "request",
            method = %request.method(),
            route = %route,
            request_id = %request_id,
            status = Empty,
            latency_ms = Empty,
            event_id = Empty,
            shop_id = Empty,
        )
    }
}

/// Records status and latency on the span and logs one line per request.
#[derive(Clone, Copy, Debug)]
pub struct RequestDone;

impl<B> OnResponse<B> for RequestDone {
    fn on_response(self, response: &Response<B>, latency: Duration, span: &Span) {
        let status = response.status().as_u16();
        let latency_ms = latency.as_secs_f64() * 1000.0;
        span.record("status", status);
        span.record("latency_ms", latency_ms);
        if status >= 500 {
            tracing::error!(status, latency_ms, "request failed");
        } else if status >= 400 {
            tracing::warn!(status, latency_ms, "request refused");
        } else {
            tracing::info!(status, latency_ms, "request done");
        }
    }
}
