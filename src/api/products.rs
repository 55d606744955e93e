//! `/api/products/:productId`: a product's latest status, audit result,
//! category and last change.

use axum::{extract::State, Json};

use super::{data, params::Id, Data};
use crate::{
    app::AppState,
    error::{ApiError, ErrorResponse},
    store::ProductRecord,
};

#[utoipa::path(
    get,
    path = "/products/{product_id}",
    tag = "products",
    params(("product_id" = String, Path, example = "1731245560981234567", description = "the TikTok product id", min_length = 1, max_length = 4096)),
    responses(
        (status = 200, description = "the product's latest state", body = Data<ProductRecord>),
        (status = 400, description = "`bad_request`", body = ErrorResponse),
        (status = 404, description = "`not_found`: no such product", body = ErrorResponse),
    )
)]
pub async fn one(
    State(state): State<AppState>,
    Id(product_id): Id,
) -> Result<Json<Data<ProductRecord>>, ApiError> {
    match state.store.product(&product_id).await? {
        Some(product) => Ok(data(product)),
        None => Err(ApiError::not_found(format!("no product {product_id}"))),
    }
}
