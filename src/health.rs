//! `/health`, `/webhook/health` and `/metrics`: no token, nothing personal.

use axum::{extract::State, http::StatusCode, response::IntoResponse, Json};
use serde_json::{json, Value};

use crate::{app::AppState, error::ApiError};

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

/// Intake can store when the database answers.
pub async fn webhook_health(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state.store.ping().await?;
    Ok(Json(json!({"success": true, "status": "ok"})))
}

pub async fn metrics() -> impl IntoResponse {
    (
        [("content-type", "text/plain; version=0.0.4")],
        crate::telemetry::metrics_handle().render(),
    )
}
