//! `/api/orders/stats/...`: webhook counts per topic, orders per shop and
//! status.

use axum::{extract::State, Json};

use super::{data, params::Params, params::ShopFilterDoc, Data};
use crate::{
    app::AppState,
    error::{ApiError, ErrorResponse},
    store::{OrderStat, WebhookStat},
};

#[utoipa::path(
    get,
    path = "/orders/stats/webhooks",
    tag = "stats",
    params(ShopFilterDoc),
    responses(
        (status = 200, description = "per topic: counts and the last arrival", body = Data<Vec<WebhookStat>>),
        (status = 400, description = "`bad_request`", body = ErrorResponse),
    )
)]
pub async fn webhooks(
    State(state): State<AppState>,
    params: Params,
) -> Result<Json<Data<Vec<WebhookStat>>>, ApiError> {
    let shop = params.text("shopId").or_else(|| params.text("shop_id"));
    Ok(data(state.store.webhook_stats(shop).await?))
}

#[utoipa::path(
    get,
    path = "/orders/stats/orders",
    tag = "stats",
    responses(
        (status = 200, description = "orders per shop and status", body = Data<Vec<OrderStat>>),
    )
)]
pub async fn orders(State(state): State<AppState>) -> Result<Json<Data<Vec<OrderStat>>>, ApiError> {
    Ok(data(state.store.order_stats().await?))
}
