//! `/api/shops/:shopId`: a shop's authorization state and counts.

use axum::{extract::State, Json};

use super::{data, params::Id, Data};
use crate::{
    app::AppState,
    error::{ApiError, ErrorResponse},
    store::ShopRecord,
};

#[utoipa::path(
    get,
    path = "/shops/{shop_id}",
    tag = "shops",
    params(("shop_id" = String, Path, example = "7495263810457220311", description = "the TikTok shop id", min_length = 1, max_length = 4096)),
    responses(
        (status = 200, description = "the shop's authorization state and counts", body = Data<ShopRecord>),
        (status = 400, description = "`bad_request`", body = ErrorResponse),
        (status = 404, description = "`not_found`: no such shop", body = ErrorResponse),
    )
)]
pub async fn one(
    State(state): State<AppState>,
    Id(shop_id): Id,
) -> Result<Json<Data<ShopRecord>>, ApiError> {
    match state.store.shop(&shop_id).await? {
        Some(shop) => Ok(data(shop)),
        None => Err(ApiError::not_found(format!("no shop {shop_id}"))),
    }
}
