//! The one error type of the HTTP surface and its JSON shape.
//!
//! Handlers return [`ApiError`]. Its response carries only the status and an
//! [`ErrorBody`] extension; the [`render_errors`] middleware, which sees the
//! request id, turns that into the body
//! `{"success":false,"error":{"code","message","request_id"}}`. Responses that
//! axum produces itself (unknown route, wrong method) get the same shape there.

use axum::{
    extract::Request,
    http::{header, HeaderValue, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde_json::json;

/// A client-facing error: a stable snake-case `code` and a `message` that says
/// what to fix. Internal causes are logged where they happen, never put here.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds for a `Retry-After` header (429 and 503).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send `Authorization: Bearer <token>` with one of the configured API tokens",
        )
    }

    pub fn store_unavailable() -> Self {
        Self {
            retry_after: Some(5),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "the event could not be stored right now; retry later",
            )
        }
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }
}

/// The shape [`render_errors`] writes, for the OpenAPI document.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ErrorResponse {
    /// Always false.
    success: bool,
    error: ErrorDetail,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ErrorDetail {
    /// A stable snake-case word, e.g. `unauthorized`, `rate_limited`.
    code: String,
    /// What to fix; never internals.
    message: String,
    /// The `x-request-id` of the answer.
    request_id: String,
}

/// What [`render_errors`] needs to write the body; travels as a response
/// extension so that the request id can be added at the edge.
#[derive(Debug, Clone)]
pub struct ErrorBody {
    pub code: &'static str,
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response.extensions_mut().insert(ErrorBody {
            code: self.code,
            message: self.message,
        });
        response
    }
}

/// Middleware: gives every error response the one JSON shape with the request
/// id, including the empty 404/405/413 answers that axum and tower-http make.
pub async fn render_errors(request: Request, next: Next) -> Response {
    let request_id = request
        .headers()
        .get(crate::telemetry::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let error = match parts.extensions.remove::<ErrorBody>() {
        Some(error) => error,
        // A body that is already JSON was written on purpose; leave it alone.
        None if is_json(&parts.headers) => return Response::from_parts(parts, body),
        None => default_body(status),
    };
    let rendered = json!({
        "success": false,
        "error": {"code": error.code, "message": error.message, "request_id": request_id},
    });
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, axum::body::Body::from(rendered.to_string()))
}

fn is_json(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

fn default_body(status: StatusCode) -> ErrorBody {
    let (code, message) = match status {
        StatusCode::NOT_FOUND => ("not_found", "no such route"),
        StatusCode::METHOD_NOT_ALLOWED => {
            ("method_not_allowed", "this route does not take that method")
        }
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "the body is over the size limit"),
        StatusCode::REQUEST_TIMEOUT => ("timeout", "the request took too long"),
        StatusCode::TOO_MANY_REQUESTS => ("rate_limited", "too many requests; slow down"),
        s if s.is_server_error() => ("internal_error", "something went wrong on our side"),
        _ => ("bad_request", "the request could not be understood"),
    };
    ErrorBody {
        code,
        message: message.to_owned(),
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(error: crate::store::StoreError) -> Self {
        // Logged here, once, with its cause; the client sees no internals.
        tracing::error!(error = %error, "store error");
        match error {
            crate::store::StoreError::Unavailable(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "the database is not reachable right now; retry later",
            )
            .with_retry_after(5),
            _ => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "something went wrong on our side",
            ),
        }
    }
}
