//! Bearer tokens for `/api`: several may be configured (rotation, several
//! consumers); each is compared in constant time.

use axum::{
    extract::{Request, State},
    http::header::AUTHORIZATION,
    middleware::Next,
    response::Response,
};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{app::AppState, error::ApiError};

pub async fn require_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let mut values = request.headers().get_all(AUTHORIZATION).iter();
    let presented = match (values.next(), values.next()) {
        (Some(value), None) => value.to_str().ok().and_then(|v| {
            // The scheme name is case-insensitive (RFC 9110).
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then_some(token.trim())
        }),
        _ => None,
    };
    match presented {
        Some(token) if known(&state, token) => Ok(next.run(request).await),
        _ => Err(ApiError::unauthorized()),
    }
}

/// Compares digests rather than the tokens, so that neither the content nor
/// the length of a configured token shows in the timing.
fn known(state: &AppState, presented: &str) -> bool {
    let presented = Sha256::digest(presented.as_bytes());
    state
        .settings
        .api_tokens
        .iter()
        .fold(false, |found, token| {
            let expected = Sha256::digest(token.expose_secret().as_bytes());
            found | bool::from(expected.ct_eq(&presented))
        })
}
