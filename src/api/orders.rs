//! `/api/orders/...`: one order, its history, a shop's orders, the queue of
//! orders whose processing has not succeeded.

use axum::{extract::State, Json};

use super::{
    data,
    params::{Id, Params},
    params::{LimitDoc, PageDoc},
    Data,
};
use crate::{
    app::AppState,
    error::{ApiError, ErrorResponse},
    store::{HistoryEntry, OrderDetail, OrderRecord, Page},
};

#[utoipa::path(
    get,
    path = "/orders/{order_id}",
    tag = "orders",
    params(("order_id" = String, Path, example = "578112345609871201", description = "the TikTok order id", min_length = 1, max_length = 4096)),
    responses(
        (status = 200, description = "the order with its packages and requests", body = Data<OrderDetail>),
        (status = 400, description = "`bad_request`", body = ErrorResponse),
        (status = 404, description = "`not_found`: no such order", body = ErrorResponse),
    )
)]
pub async fn one(
    State(state): State<AppState>,
    Id(order_id): Id,
) -> Result<Json<Data<OrderDetail>>, ApiError> {
    match state.store.order_detail(&order_id).await? {
        Some(order) => Ok(data(order)),
        None => Err(ApiError::not_found(format!("no order {order_id}"))),
    }
}

#[utoipa::path(
    get,
    path = "/orders/{order_id}/history",
    tag = "orders",
    params(("order_id" = String, Path, example = "578112345609871201", description = "the TikTok order id", min_length = 1, max_length = 4096)),
    responses(
        (status = 200, description = "the order's status changes, oldest first", body = Data<Vec<HistoryEntry>>),
        (status = 400, description = "`bad_request`", body = ErrorResponse),
        (status = 404, description = "`not_found`: no such order", body = ErrorResponse),
    )
)]
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

#[utoipa::path(
    get,
    path = "/orders/shop/{shop_id}",
    tag = "orders",
    params(
        ("shop_id" = String, Path, example = "7495263810457220311", description = "the TikTok shop id", min_length = 1, max_length = 4096),
        PageDoc,
    ),
    responses(
        (status = 200, description = "the shop's orders, newest update first", body = Data<Vec<OrderRecord>>),
        (status = 400, description = "`bad_request`: a bad `limit` or `offset`", body = ErrorResponse),
    )
)]
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

#[utoipa::path(
    get,
    path = "/orders/queue/unprocessed",
    tag = "orders",
    params(LimitDoc),
    responses(
        (status = 200, description = "orders whose processing has not succeeded", body = Data<Vec<OrderRecord>>),
        (status = 400, description = "`bad_request`: a bad `limit`", body = ErrorResponse),
    )
)]
pub async fn unprocessed(
    State(state): State<AppState>,
    params: Params,
) -> Result<Json<Data<Vec<OrderRecord>>>, ApiError> {
    Ok(data(state.store.unprocessed_orders(params.limit()?).await?))
}

#[utoipa::path(
    post,
    path = "/orders/{order_id}/retry",
    tag = "queue",
    params(("order_id" = String, Path, example = "578112345609871201", description = "the TikTok order id", min_length = 1, max_length = 4096)),
    responses(
        (status = 200, description = "the events of the order queued again", body = Data<super::events::Retried>),
        (status = 400, description = "`bad_request`", body = ErrorResponse),
        (status = 404, description = "`not_found`: no such order", body = ErrorResponse),
    )
)]
pub async fn retry(
    State(state): State<AppState>,
    Id(order_id): Id,
) -> Result<Json<Data<super::events::Retried>>, ApiError> {
    if state.store.order(&order_id).await?.is_none() {
        return Err(ApiError::not_found(format!("no order {order_id}")));
    }
    super::events::retry_order(&state, &order_id).await
}
