//! Path and query values, checked: a bad value is a 400 that says what to
//! send instead, never a 500.

use std::collections::HashMap;

use axum::{
    extract::{FromRequestParts, Path, Query},
    http::request::Parts,
};

use crate::error::ApiError;

/// The query string as name → value; a malformed one is a 400.
pub struct Params(HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map(|Query(map)| Params(map))
            .map_err(|_| ApiError::bad_request("the query string could not be read"))
    }
}

impl Params {
    pub fn text(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    /// A whole number in `min..=max`, or `default` when absent.
    pub fn number(&self, name: &str, default: i64, min: i64, max: i64) -> Result<i64, ApiError> {
        match self.text(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "`{name}` must be a whole number from {min} to {max}"
                    ))
                }),
        }
    }

    pub fn limit(&self) -> Result<i64, ApiError> {
        self.number("limit", 100, 1, 1000)
    }

    pub fn offset(&self) -> Result<i64, ApiError> {
        self.number("offset", 0, 0, i64::MAX)
    }
}

/// One path segment that names something by id.
pub struct Id(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::bad_request("the id in the path could not be read"))?;
        // Notification ids can be long (a body hash, or whatever a sender
        // put there); the bound only keeps absurd paths out.
        if id.is_empty() || id.len() > 4096 {
            return Err(ApiError::bad_request("the id must be 1 to 4096 characters"));
        }
        Ok(Id(id))
    }
}
