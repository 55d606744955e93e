//! `/api/orders/stats/...`: webhook counts per topic, orders per shop and
//! status.

use axum::{extract::State, Json};

use super::{data, params::Params, Data};
use crate::{
    app::AppState,
    error::ApiError,
    store::{OrderStat, WebhookStat},
};

pub async fn webhooks(
    State(state): State<AppState>,
    params: Params,
) -> Result<Json<Data<Vec<WebhookStat>>>, ApiError> {
    let shop = params.text("shopId").or_else(|| params.text("shop_id"));
    Ok(data(state.store.webhook_stats(shop).await?))
}

pub async fn orders(State(state): State<AppState>) -> Result<Json<Data<Vec<OrderStat>>>, ApiError> {
    Ok(data(state.store.order_stats().await?))
}
