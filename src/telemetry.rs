//! Logs, request spans and metrics.
//!
//! One span per request carries the method, matched route, request id,
//! status and latency, and the event and shop ids once intake knows them.
//! Nothing here records headers, bodies, signatures or tokens.

use std::{
    sync::OnceLock,
    time::{Duration, Instant},
};

use axum::{
    extract::MatchedPath,
    http::{HeaderName, Request, Response},
    middleware::Next,
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tower_http::trace::{MakeSpan, OnResponse};
use tracing::{field::Empty, Span};
use tracing_subscriber::{fmt, EnvFilter};

use crate::{app::AppState, config::LogFormat};

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
        describe_operations();
        metrics::gauge!("tiktok_webhook_up").set(1.0);
        handle
    })
}

fn describe_operations() {
    metrics::describe_counter!(
        "rate_limited_total",
        "Requests answered 429, by budget (api, webhook)"
    );
    metrics::describe_gauge!(
        "rate_limit_tracked_addresses",
        "Client addresses whose budget is remembered, by budget"
    );
    metrics::describe_counter!(
        "http_requests_total",
        "Answers by method, matched route and status"
    );
    metrics::describe_histogram!(
        "http_request_duration_seconds",
        "Time from request to answer, by matched route"
    );
    metrics::describe_gauge!("queue_jobs", "Processing jobs by state");
    metrics::describe_counter!(
        "queue_attempts_total",
        "Processing attempts by outcome (success, retry, dead)"
    );
    metrics::describe_gauge!(
        "queue_oldest_due_seconds",
        "How long the oldest due job has waited"
    );
    metrics::describe_gauge!(
        "db_pool_connections",
        "Database connections by pool and state (open, idle, max), sampled at scrape"
    );
}

/// Sets the gauges that are read rather than counted: pool use now.
pub fn sample_gauges(state: &AppState) {
    for pool in state.store.pool_use() {
        let gauge = |kind: &'static str, value: f64| {
            metrics::gauge!("db_pool_connections", "pool" => pool.pool, "state" => kind).set(value)
        };
        gauge("open", f64::from(pool.open));
        gauge("idle", pool.idle as f64);
        gauge("max", f64::from(pool.max));
    }
}

/// Middleware: counts every answer by method, matched route (never the raw
/// path, whose ids would make a series per order) and status.
pub async fn count_requests(
    request: axum::extract::Request,
    next: Next,
) -> axum::response::Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "(unmatched)".to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!("http_request_duration_seconds", "route" => route.clone())
        .record(started.elapsed().as_secs_f64());
    metrics::counter!("http_requests_total", "method" => method, "route" => route, "status" => status)
        .increment(1);
    response
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
