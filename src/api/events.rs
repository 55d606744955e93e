//! `/api/events`: the stored notifications, newest received first.

use axum::{extract::State, http::StatusCode, Json};
use serde::Serialize;

use super::{
    data,
    params::EventsDoc,
    params::{Id, Params, MAX_NUMBER},
    Data,
};
use crate::{
    app::AppState,
    error::{ApiError, ErrorResponse},
    store::{AttemptRecord, EventFilter, EventRecord},
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
    if let Some(before) = params.text("before") {
        if state.store.event(before).await?.is_none() {
            return Err(ApiError::bad_request(
                "`before` must be the event_id of a stored event (from an earlier page)",
            ));
        }
    }
    let filter = EventFilter {
        shop_id: params.text("shop_id").map(str::to_owned),
        type_code: params.optional_number("type", 0, MAX_NUMBER)?,
        limit: params.limit()?,
        status: match params.raw("status") {
            None => None,
            Some(s @ ("pending" | "running" | "done" | "dead")) => Some(s.to_owned()),
            Some(_) => {
                return Err(ApiError::bad_request(
                    "`status` must be pending, running, done or dead",
                ))
            }
        },
        before: params.text("before").map(str::to_owned),
    };
    Ok(data(state.store.events(&filter).await?))
}

#[utoipa::path(
    get,
    path = "/events/{event_id}",
    tag = "events",
    params(("event_id" = String, Path, example = "7438810292745531401", description = "`tts_notification_id`, or `sha256:` and the body's hex digest", min_length = 1, max_length = 4096)),
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

/// Every processing attempt of one event, oldest first.
#[utoipa::path(
    get,
    path = "/events/{event_id}/attempts",
    tag = "queue",
    params(("event_id" = String, Path, example = "7438810292745531401", description = "the event id", min_length = 1, max_length = 4096)),
    responses(
        (status = 200, description = "the event's processing attempts, oldest first", body = Data<Vec<AttemptRecord>>),
        (status = 400, description = "`bad_request`", body = ErrorResponse),
        (status = 404, description = "`not_found`: no such event", body = ErrorResponse),
    )
)]
pub async fn attempts(
    State(state): State<AppState>,
    Id(event_id): Id,
) -> Result<Json<Data<Vec<AttemptRecord>>>, ApiError> {
    if state.store.event(&event_id).await?.is_none() {
        return Err(ApiError::not_found(format!("no event {event_id}")));
    }
    Ok(data(state.store.job_attempts(&event_id).await?))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Retried {
    event_ids: Vec<String>,
    status: &'static str,
}

/// Queues the event again now, with a fresh budget of attempts: for a dead
/// letter after its receiver recovered, or to run the handler once more.
#[utoipa::path(
    post,
    path = "/events/{event_id}/retry",
    tag = "queue",
    params(("event_id" = String, Path, example = "7438810292745531401", description = "the event id", min_length = 1, max_length = 4096)),
    responses(
        (status = 200, description = "queued again", body = Data<Retried>),
        (status = 400, description = "`bad_request`", body = ErrorResponse),
        (status = 404, description = "`not_found`: no such event", body = ErrorResponse),
        (status = 409, description = "`job_running`: being processed right now", body = ErrorResponse),
    )
)]
pub async fn retry(
    State(state): State<AppState>,
    Id(event_id): Id,
) -> Result<Json<Data<Retried>>, ApiError> {
    if state.store.event(&event_id).await?.is_none() {
        return Err(ApiError::not_found(format!("no event {event_id}")));
    }
    if !state
        .store
        .retry_event(&event_id, state.clock.now())
        .await?
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "job_running",
            "the event is being processed right now; look at its attempts afterwards",
        ));
    }
    state.queue_wake.nudge();
    Ok(data(Retried {
        event_ids: vec![event_id],
        status: "pending",
    }))
}

/// Queues again every event of the order whose processing has not
/// succeeded (dead letters, waiting retries, unreadable topics).
pub async fn retry_order(
    state: &AppState,
    order_id: &str,
) -> Result<Json<Data<Retried>>, ApiError> {
    let mut retried = Vec::new();
    for event_id in state.store.unfinished_events(order_id).await? {
        if state
            .store
            .retry_event(&event_id, state.clock.now())
            .await?
        {
            retried.push(event_id);
        }
    }
    state.queue_wake.nudge();
    Ok(data(Retried {
        event_ids: retried,
        status: "pending",
    }))
}
