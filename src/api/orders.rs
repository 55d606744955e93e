//! `/api/orders/...`: one order, its history, a shop's orders, the queue of
//! orders whose processing has not succeeded.

use axum::{extract::State, Json};

use super::{
    data,
    params::{Id, Params},
    Data,
};
use crate::{
    app::AppState,
    error::ApiError,
    store::{HistoryEntry, OrderDetail, OrderRecord, Page},
};

pub async fn one(
    State(state): State<AppState>,
    Id(order_id): Id,
) -> Result<Json<Data<OrderDetail>>, ApiError> {
    match state.store.order_detail(&order_id).await? {
        Some(order) => Ok(data(order)),
        None => Err(ApiError::not_found(format!("no order {order_id}"))),
    }
}

pub async fn history(
    State(state): State<AppState>,
    Id(order_id): Id,
) -> Result<Json<Data<Vec<HistoryEntry>>>, ApiError> {
    let entries = state.store.order_history(&order_id).await?;
    if entries.is_empty() && state.store.order(&order_id).await?.is_none() {
        return Err(ApiError::not_found(format!("no order {order_id}")));
    }
    Ok(data(entries))
}

pub async fn by_shop(
    State(state): State<AppState>,
    Id(shop_id): Id,
    params: Params,
) -> Result<Json<Data<Vec<OrderRecord>>>, ApiError> {
    let page = Page {
        limit: params.limit()?,
        offset: params.offset()?,
    };
    Ok(data(state.store.shop_orders(&shop_id, page).await?))
}

pub async fn unprocessed(
    State(state): State<AppState>,
    params: Params,
) -> Result<Json<Data<Vec<OrderRecord>>>, ApiError> {
    Ok(data(state.store.unprocessed_orders(params.limit()?).await?))
}

pub async fn retry(
    State(state): State<AppState>,
    Id(order_id): Id,
) -> Result<Json<Data<super::events::Retried>>, ApiError> {
    if state.store.order(&order_id).await?.is_none() {
        return Err(ApiError::not_found(format!("no order {order_id}")));
    }
    super::events::retry_order(&state, &order_id).await
}
