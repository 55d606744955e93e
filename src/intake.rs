//! `POST /webhook/tiktok`: read → verify → parse → check age → store → answer.
//!
//! Each step refuses with its own status and nothing is stored for a refused
//! request. The answer 200 comes only after the commit that holds the event.

mod body;

use std::time::Instant;

use axum::{
    body::Body,
    extract::State,
    http::{header::AUTHORIZATION, HeaderMap, StatusCode},
    Json,
};
use serde::Serialize;

use crate::{
    app::AppState,
    error::ApiError,
    tiktok::{Event, ParseError, SignatureError, VerifiedBody},
};

const LEGACY_SIGNATURE: &str = "x-tiktok-shop-signature";
const LEGACY_TIMESTAMP: &str = "x-tiktok-shop-timestamp";

/// The body of a 200: the contract's shape.
#[derive(Debug, Serialize)]
pub struct Ack {
    success: bool,
    message: &'static str,
    event_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    order_id: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    duplicate: bool,
}

pub async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Ack>, ApiError> {
    let started = Instant::now();
    let bytes = body::read(&headers, body, state.settings.body_limit)
        .await
        .inspect_err(|e| refused(e.code))?;

    let verified = verify(&state, &headers, bytes).map_err(|e| {
        refused(e.code());
        ApiError::new(StatusCode::UNAUTHORIZED, e.code(), e.to_string())
    })?;

    let event = Event::parse(verified).map_err(invalid_body)?;
    check_age(&state, &event)?;
    let span = tracing::Span::current();
    // Debug-quoted: ids come from the sender and may hold line breaks.
    span.record("event_id", tracing::field::debug(event.id.as_str()));
    if let Some(shop) = &event.shop_id {
        span.record("shop_id", tracing::field::debug(shop.as_str()));
    }

    let event_id = event.id.to_string();
    let order_id = event.order_id().map(|id| id.to_string());
    let topic = event.event_type();
    let stored = tokio::time::timeout(state.settings.intake_timeout, state.writer.submit(event))
        .await
        .ok()
        .and_then(Result::ok);
    let Some(committed) = stored else {
        metrics::counter!("webhook_events_total", "topic" => topic, "outcome" => "unavailable")
            .increment(1);
        return Err(ApiError::store_unavailable());
    };

    let outcome = if committed.duplicate {
        "duplicate"
    } else {
        "stored"
    };
    metrics::counter!("webhook_events_total", "topic" => topic, "outcome" => outcome).increment(1);
    metrics::histogram!("webhook_intake_seconds").record(started.elapsed().as_secs_f64());
    Ok(Json(Ack {
        success: true,
        message: "Webhook processed successfully",
        event_id,
        order_id,
        duplicate: committed.duplicate,
    }))
}

/// TikTok's scheme (`Authorization`), or the legacy header scheme when it is
/// enabled and the request carries it instead.
fn verify(
    state: &AppState,
    headers: &HeaderMap,
    bytes: bytes::Bytes,
) -> Result<VerifiedBody, SignatureError> {
    let values =
        |name| -> Vec<&[u8]> { headers.get_all(name).iter().map(|v| v.as_bytes()).collect() };
    let authorization = values(AUTHORIZATION.as_str());
    if authorization.is_empty()
        && state.settings.legacy_signature_headers
        && headers.contains_key(LEGACY_SIGNATURE)
    {
        let tolerance = state.settings.legacy_signature_tolerance.as_secs() as i64;
        return state.verifier.verify_legacy(
            &values(LEGACY_SIGNATURE),
            &values(LEGACY_TIMESTAMP),
            bytes,
            state.clock.now_unix(),
            tolerance,
        );
    }
    state.verifier.verify(&authorization, bytes)
}

/// Refuses a body `timestamp` older than `WEBHOOK_MAX_AGE`: a replay from
/// beyond what dedupe remembers. Future timestamps are accepted (clock skew).
fn check_age(state: &AppState, event: &Event) -> Result<(), ApiError> {
    let Some(timestamp) = event.timestamp else {
        return Ok(());
    };
    let max_age = state.settings.webhook_max_age.as_secs() as i64;
    if timestamp < state.clock.now_unix() - max_age {
        refused("stale_event");
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "stale_event",
            "the body timestamp is older than WEBHOOK_MAX_AGE; the event was not stored",
        ));
    }
    Ok(())
}

fn invalid_body(error: ParseError) -> ApiError {
    refused("invalid_body");
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", error.to_string())
}

fn refused(reason: &'static str) {
    metrics::counter!("webhook_refused_total", "reason" => reason).increment(1);
}
