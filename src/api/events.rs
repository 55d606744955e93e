//! `/api/events`: the stored notifications, newest received first.

use axum::{extract::State, Json};

use super::{
    data,
    params::{Id, Params},
    Data,
};
use crate::{
    app::AppState,
    error::ApiError,
    store::{EventFilter, EventRecord},
};

pub async fn list(
    State(state): State<AppState>,
    params: Params,
) -> Result<Json<Data<Vec<EventRecord>>>, ApiError> {
    let filter = EventFilter {
        shop_id: params.text("shop_id").map(str::to_owned),
        type_code: match params.text("type") {
            None => None,
            Some(_) => Some(params.number("type", 0, 0, i64::MAX)?),
        },
        limit: params.limit()?,
        before: params.text("before").map(str::to_owned),
    };
    Ok(data(state.store.events(&filter).await?))
}

pub async fn one(
    State(state): State<AppState>,
    Id(event_id): Id,
) -> Result<Json<Data<EventRecord>>, ApiError> {
    match state.store.event(&event_id).await? {
        Some(event) => Ok(data(event)),
        None => Err(ApiError::not_found(format!("no event {event_id}"))),
    }
}
