//! Group commit: requests hand their verified event to one writer task, which
//! commits whatever is waiting in one transaction and answers each request
//! after the commit that holds its event.
//!
//! A few batches may be under way at once ([`Store::batches_in_flight`]):
//! while one commits, the next is already on its way to the database
//! instead of waiting for the answer to come back first.

use std::sync::Arc;

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{mpsc, oneshot, Semaphore};

use super::{projection::processing_outcome, Committed, Lease, Store};
use crate::{
    queue::{Handoff, Wake},
    tiktok::Event,
};

/// Most events in one transaction.
const MAX_BATCH: usize = 256;
/// Requests that may wait for the writer before `submit` itself waits.
const QUEUE: usize = 4096;

struct Pending {
    event: Event,
    reply: oneshot::Sender<Option<Committed>>,
}

/// The handle requests submit through; cheap to clone.
#[derive(Clone, Debug)]
pub struct Writer {
    queue: mpsc::Sender<Pending>,
}

/// The event was not stored (the database failed, or the writer is gone).
#[derive(Debug, thiserror::Error)]
#[error("the event could not be stored")]
pub struct NotStored;

impl Writer {
    /// Starts the writer task; it ends when every `Writer` is dropped and
    /// the queue is drained. `stored` is notified after each commit that
    /// stored new events (it wakes the processing queue); with `handoff`,
    /// a batch's new jobs are leased to this instance's workers and its new
    /// events handed to them when there is room (see `queue::handoff`).
    pub fn spawn(
        store: Store,
        stored: Arc<Wake>,
        handoff: Option<Arc<Handoff>>,
    ) -> (Writer, tokio::task::JoinHandle<()>) {
        let (queue, receiver) = mpsc::channel(QUEUE);
        let task = tokio::spawn(run(store, receiver, stored, handoff));
        (Writer { queue }, task)
    }

    /// Stores one event; returns once the transaction holding it committed.
    pub async fn submit(&self, event: Event) -> Result<Committed, NotStored> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Pending { event, reply })
            .await
            .map_err(|_| NotStored)?;
        answer.await.ok().flatten().ok_or(NotStored)
    }
}

async fn run(
    store: Store,
    mut receiver: mpsc::Receiver<Pending>,
    stored: Arc<Wake>,
    handoff: Option<Arc<Handoff>>,
) {
    let depth = store.batches_in_flight();
    let slots = Arc::new(Semaphore::new(depth));
    let unavailable = Arc::new(AtomicBool::new(false));
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        // A slot first, then the batch: while every slot is busy, requests
        // wait in the queue and the next batch grows.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        if receiver.recv_many(&mut batch, MAX_BATCH).await == 0 {
            break;
        }
        let pending: Vec<Pending> = std::mem::replace(&mut batch, Vec::with_capacity(MAX_BATCH));
        if unavailable.swap(false, Ordering::Relaxed) {
            refuse(pending);
            refuse_waiting(&mut receiver);
            continue;
        }
        let (store, stored, unavailable) = (store.clone(), stored.clone(), unavailable.clone());
        let reservation = handoff.as_ref().and_then(|h| h.reserve(pending.len()));
        tokio::spawn(async move {
            let (events, replies): (Vec<Event>, Vec<_>) =
                pending.into_iter().map(|p| (p.event, p.reply)).unzip();
            let lease = reservation.as_ref().map(|r| r.lease());
            let outcomes = commit_batch(&store, &events, lease).await;
            if outcomes.is_none() {
                unavailable.store(true, Ordering::Relaxed);
            }
            let outcomes = outcomes.unwrap_or_else(|| vec![None; replies.len()]);
            let batch = events.len();
            let new = outcomes.iter().flatten().any(|c| !c.duplicate);
            let handed = reservation.is_some();
            if let Some(reservation) = reservation {
                // Each event stored for the first time by this batch, and
                // queued: its job is leased to the workers it goes to.
                let handed = events
                    .into_iter()
                    .zip(&outcomes)
                    .filter(|(event, outcome)| {
                        outcome.is_some_and(|c| !c.duplicate) && processing_outcome(event).0
                    })
                    .map(|(event, _)| event);
                reservation.fill(handed);
            }
            if new {
                stored.stored(batch, handed);
            }
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                // The request may have timed out and left; its event is
                // stored all the same and TikTok's retry will be counted as
                // a duplicate.
                let _ = reply.send(outcome);
            }
            drop(slot);
        });
    }
    // Every batch under way is answered before the writer ends.
    let _ = slots.acquire_many(depth as u32).await;
}

fn refuse(pending: Vec<Pending>) {
    for p in pending {
        let _ = p.reply.send(None);
    }
}

/// Answers "not stored" to every request that queued while a batch was
/// failing for want of a database. They would fail the same way, and
/// answering now keeps each 503 within one failed attempt (about
/// `DB_ACQUIRE_TIMEOUT` on PostgreSQL) instead of two. The next request
/// makes a fresh attempt, so intake resumes as soon as the database is back.
fn refuse_waiting(receiver: &mut mpsc::Receiver<Pending>) {
    while let Ok(pending) = receiver.try_recv() {
        let _ = pending.reply.send(None);
    }
}

/// Commits the batch in one transaction; `None` when the database is
/// unavailable, in which case nothing of the batch was stored. Should the
/// database refuse a batch of several events, each is tried alone, so that
/// one event it refuses cannot cost the others their place.
async fn commit_batch(
    store: &Store,
    events: &[Event],
    lease: Option<&Lease>,
) -> Option<Vec<Option<Committed>>> {
    match store.commit(events, lease).await {
        Ok(outcomes) => Some(outcomes.into_iter().map(Some).collect()),
        Err(error) if error.is_unavailable() => {
            tracing::error!(error = %error, batch = events.len(), "database unavailable; events not stored");
            None
        }
        Err(error) if events.len() == 1 => {
            tracing::error!(error = %error, event_id = %events[0].id, "event not stored");
            Some(vec![None])
        }
        Err(error) => {
            tracing::warn!(error = %error, batch = events.len(), "batch not stored; storing one by one");
            let mut outcomes = Vec::with_capacity(events.len());
            for event in events {
                let single = std::slice::from_ref(event);
                outcomes.push(match store.commit(single, lease).await {
                    Ok(mut one) => one.pop(),
                    Err(error) => {
                        tracing::error!(error = %error, event_id = %event.id, "event not stored");
                        None
                    }
                });
            }
            Some(outcomes)
        }
    }
}
