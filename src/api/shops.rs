//! `/api/shops/:shopId`: a shop's authorization state and counts.

use axum::{extract::State, Json};

use super::{data, params::Id, Data};
use crate::{app::AppState, error::ApiError, store::ShopRecord};

pub async fn one(
    State(state): State<AppState>,
    Id(shop_id): Id,
) -> Result<Json<Data<ShopRecord>>, ApiError> {
    match state.store.shop(&shop_id).await? {
        Some(shop) => Ok(data(shop)),
        None => Err(ApiError::not_found(format!("no shop {shop_id}"))),
    }
}
