//! `/api/events`: the stored notifications, newest received first.

use axum::{extract::State, Json};

use super::{
    data,
    params::EventsDoc,
    params::{Id, Params, MAX_NUMBER},
    Data,
};
use crate::{
    app::AppState,
    error::{ApiError, ErrorResponse},
    store::{EventFilter, EventRecord},
};

#[utoipa::path(
    get,
    path = "/events",
    tag = "events",
    params(EventsDoc),
    responses(
        (status = 200, description = "stored notifications, newest received first", body = Data<Vec<EventRecord>>),
        (status = 400, description = "`bad_request`: a bad filter value", body = ErrorResponse),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    params: Params,
) -> Result<Json<Data<Vec<EventRecord>>>, ApiError> {
    let filter = EventFilter {
        shop_id: params.text("shop_id").map(str::to_owned),
        type_code: params.optional_number("type", 0, MAX_NUMBER)?,
        limit: params.limit()?,
        before: params.text("before").map(str::to_owned),
    };
    Ok(data(state.store.events(&filter).await?))
}

#[utoipa::path(
    get,
    path = "/events/{event_id}",
    tag = "events",
    params(("event_id" = String, Path, example = "7438810292745531401", description = "`tts_notification_id`, or `sha256:` and the body's hex digest", min_length = 1, max_length = 200)),
    responses(
        (status = 200, description = "one notification with its raw body", body = Data<EventRecord>),
        (status = 400, description = "`bad_request`", body = ErrorResponse),
        (status = 404, description = "`not_found`: no such event", body = ErrorResponse),
    )
)]
pub async fn one(
    State(state): State<AppState>,
    Id(event_id): Id,
) -> Result<Json<Data<EventRecord>>, ApiError> {
    match state.store.event(&event_id).await? {
        Some(event) => Ok(data(event)),
        None => Err(ApiError::not_found(format!("no event {event_id}"))),
    }
}
