//! `/api/products/:productId`: a product's latest status, audit result,
//! category and last change.

use axum::{extract::State, Json};

use super::{data, params::Id, Data};
use crate::{app::AppState, error::ApiError, store::ProductRecord};

pub async fn one(
    State(state): State<AppState>,
    Id(product_id): Id,
) -> Result<Json<Data<ProductRecord>>, ApiError> {
    match state.store.product(&product_id).await? {
        Some(product) => Ok(data(product)),
        None => Err(ApiError::not_found(format!("no product {product_id}"))),
    }
}
