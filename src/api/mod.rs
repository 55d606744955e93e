//! The reading API under `/api`: one file per resource, all behind bearer
//! tokens (order data holds buyers' names and addresses).

mod auth;
mod events;
mod orders;
mod params;
mod products;
mod shops;
mod stats;

use axum::{
    middleware,
    routing::{get, post},
    Json, Router,
};
use serde::Serialize;

use crate::app::AppState;

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/orders/{order_id}", get(orders::one))
        .route("/orders/{order_id}/history", get(orders::history))
        .route("/orders/{order_id}/retry", post(orders::retry))
        .route("/orders/shop/{shop_id}", get(orders::by_shop))
        .route("/orders/queue/unprocessed", get(orders::unprocessed))
        .route("/orders/stats/webhooks", get(stats::webhooks))
        .route("/orders/stats/orders", get(stats::orders))
        .route("/shops/{shop_id}", get(shops::one))
        .route("/products/{product_id}", get(products::one))
        .route("/events", get(events::list))
        .route("/events/{event_id}", get(events::one))
        .route("/events/{event_id}/attempts", get(events::attempts))
        .route("/events/{event_id}/retry", post(events::retry))
        .route_layer(middleware::from_fn_with_state(state, auth::require_token))
}

/// Every successful answer: `{"success":true,"data":...}`. Serialised
/// directly (never through `serde_json::Value`) so that raw JSON inside keeps
/// its exact digits.
#[derive(Debug, Serialize)]
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
