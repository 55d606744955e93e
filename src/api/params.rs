//! Path and query values, checked: a bad value is a 400 that says what to
//! send instead, never a 500.

use std::collections::HashMap;

use axum::{
    extract::{FromRequestParts, Path, Query},
    http::request::Parts,
};

use crate::error::ApiError;

/// The largest `offset` or `type` accepted: far beyond any real value, and
/// exactly representable wherever the OpenAPI document is read.
pub const MAX_NUMBER: i64 = i32::MAX as i64;

/// The longest id accepted in a path.
pub const MAX_ID_CHARS: usize = 4096;

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

    /// The value as sent (trimmed), empty included.
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|v| v.trim())
    }

    /// A whole number in `min..=max`, or `default` when absent.
    pub fn number(&self, name: &str, default: i64, min: i64, max: i64) -> Result<i64, ApiError> {
        Ok(self.optional_number(name, min, max)?.unwrap_or(default))
    }

    /// A whole number in `min..=max` if the parameter is there. Present but
    /// empty (`?limit=`) is a bad value, not an absent one.
    pub fn optional_number(&self, name: &str, min: i64, max: i64) -> Result<Option<i64>, ApiError> {
        let Some(value) = self.0.get(name).map(|v| v.trim()) else {
            return Ok(None);
        };
        value
            .parse::<i64>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .map(Some)
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "`{name}` must be a whole number from {min} to {max}"
                ))
            })
    }

    pub fn limit(&self) -> Result<i64, ApiError> {
        self.number("limit", 100, 1, 1000)
    }

    pub fn offset(&self) -> Result<i64, ApiError> {
        self.number("offset", 0, 0, MAX_NUMBER)
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
        // put there); the bound only keeps absurd paths out. Counted in
        // characters, as the OpenAPI document's maxLength is.
        if id.is_empty() || id.chars().count() > MAX_ID_CHARS {
            return Err(ApiError::bad_request(format!(
                "the id must be 1 to {MAX_ID_CHARS} characters"
            )));
        }
        Ok(Id(id))
    }
}

/// `limit` and `offset` of a list, as the OpenAPI document shows them.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct PageDoc {
    /// How many, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// How many to skip (default 0).
    #[param(minimum = 0, maximum = 2147483647)]
    offset: Option<i64>,
}

/// `limit` alone.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct LimitDoc {
    /// How many, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// The filters of `GET /api/events`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct EventsDoc {
    /// Only this shop's events.
    shop_id: Option<String>,
    /// Only this topic code (1 = order status change, ...).
    #[param(minimum = 0, maximum = 2147483647)]
    r#type: Option<i64>,
    /// How many, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// Only events received before this `event_id` (the next page); an id
    /// that is not stored is a 400.
    before: Option<String>,
    /// Only events whose processing job is in this state.
    #[param(inline)]
    status: Option<JobStatusDoc>,
}

/// The filter of `GET /api/orders/stats/webhooks`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code, non_snake_case)]
pub struct ShopFilterDoc {
    /// Only this shop's events (`shop_id` is read too).
    shopId: Option<String>,
}

/// The states of a processing job.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum JobStatusDoc {
    Pending,
    Running,
    Done,
    Dead,
}
