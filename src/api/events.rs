//! `/api/events`: the stored notifications, newest received first.

use axum::{extract::State, http::StatusCode, Json};
use serde::Serialize;

use super::{
    data,
    params::{Id, Params},
    Data,
};
use crate::{
    app::AppState,
    error::ApiError,
    store::{AttemptRecord, EventFilter, EventRecord},
};

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
        type_code: match params.text("type") {
            None => None,
            Some(_) => Some(params.number("type", 0, 0, i64::MAX)?),
        },
        limit: params.limit()?,
        status: match params.text("status") {
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
pub async fn attempts(
    State(state): State<AppState>,
    Id(event_id): Id,
) -> Result<Json<Data<Vec<AttemptRecord>>>, ApiError> {
    if state.store.event(&event_id).await?.is_none() {
        return Err(ApiError::not_found(format!("no event {event_id}")));
    }
    Ok(data(state.store.job_attempts(&event_id).await?))
}

#[derive(Debug, Serialize)]
pub struct Retried {
    event_ids: Vec<String>,
    status: &'static str,
}

/// Queues the event again now, with a fresh budget of attempts: for a dead
/// letter after its receiver recovered, or to run the handler once more.
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
    state.queue_wake.notify_waiters();
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
    state.queue_wake.notify_waiters();
    Ok(data(Retried {
        event_ids: retried,
        status: "pending",
    }))
}
