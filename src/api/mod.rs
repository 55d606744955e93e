//! The reading API under `/api`: one file per resource, all behind bearer
//! tokens (order data holds buyers' names and addresses) and the per-address
//! rate limit. Each handler carries its OpenAPI description, so the document
//! at `/api/openapi.json` is made from the same list of routes as the router.

mod auth;
mod events;
mod orders;
mod params;
mod products;
mod shops;
mod stats;

use axum::{
    http::{header, HeaderValue},
    middleware, Json,
};
use serde::Serialize;
use tower_http::{limit::RequestBodyLimitLayer, set_header::SetResponseHeaderLayer};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{app::AppState, ratelimit};

/// The API takes no bodies; this only keeps a client from streaming one.
const BODY_LIMIT: usize = 1024;

pub fn routes(state: AppState) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(orders::one))
        .routes(routes!(orders::history))
        .routes(routes!(orders::retry))
        .routes(routes!(orders::by_shop))
        .routes(routes!(orders::unprocessed))
        .routes(routes!(stats::webhooks))
        .routes(routes!(stats::orders))
        .routes(routes!(shops::one))
        .routes(routes!(products::one))
        .routes(routes!(events::list))
        .routes(routes!(events::one))
        .routes(routes!(events::attempts))
        .routes(routes!(events::retry))
        // Outermost last: the rate limit counts every request, so that
        // guessing tokens is throttled as well.
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .route_layer(middleware::from_fn_with_state(state, ratelimit::limit_api))
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        // Answers hold personal data: no shared cache may keep them.
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
}

/// Every successful answer: `{"success":true,"data":...}`. Serialised
/// directly (never through `serde_json::Value`) so that raw JSON inside keeps
/// its exact digits.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Data<T> {
    success: bool,
    data: T,
}

pub fn data<T: Serialize>(data: T) -> Json<Data<T>> {
    Json(Data {
        success: true,
        data,
    })
}
