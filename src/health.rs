//! `/health`, `/webhook/health` and `/metrics`: no token, nothing personal.

use axum::{extract::State, http::StatusCode, response::IntoResponse, Json};
use serde::Serialize;
use serde_json::{json, Value};

use crate::{
    app::AppState,
    error::{ApiError, ErrorResponse},
};

/// The body of `GET /health`, for the OpenAPI document.
#[derive(Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct HealthReport {
    success: bool,
    /// `ok` or `unavailable`.
    status: String,
    /// `ok` or `unreachable`.
    database: String,
}

#[utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    responses(
        (status = 200, description = "the database answers", body = HealthReport),
        (status = 503, description = "the database does not answer", body = HealthReport),
    )
)]
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    match state.store.ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({"success": true, "status": "ok", "database": "ok"})),
        ),
        Err(error) => {
            tracing::warn!(error = %error, "health check: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"success": false, "status": "unavailable", "database": "unreachable"})),
            )
        }
    }
}

/// The body of `GET /webhook/health`.
#[derive(Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct IntakeHealth {
    success: bool,
    status: String,
}

/// Intake can store when the database answers.
#[utoipa::path(
    get,
    path = "/webhook/health",
    tag = "intake",
    responses(
        (status = 200, description = "intake can store", body = IntakeHealth),
        (status = 503, description = "`store_unavailable`", body = ErrorResponse),
    )
)]
pub async fn webhook_health(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state.store.ping().await?;
    Ok(Json(json!({"success": true, "status": "ok"})))
}

/// Prometheus text. Pool use is sampled here, at scrape time.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String))
)]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    crate::telemetry::sample_gauges(&state);
    (
        [("content-type", "text/plain; version=0.0.4")],
        crate::telemetry::metrics_handle().render(),
    )
}
