//! Group commit: requests hand their verified event to one writer task, which
//! commits whatever is waiting in one transaction and answers each request
//! after the commit that holds its event.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Notify};

use super::{Committed, Store};
use crate::tiktok::Event;

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
    /// stored new events (it wakes the processing queue).
    pub fn spawn(store: Store, stored: Arc<Notify>) -> (Writer, tokio::task::JoinHandle<()>) {
        let (queue, receiver) = mpsc::channel(QUEUE);
        let task = tokio::spawn(run(store, receiver, stored));
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

async fn run(store: Store, mut receiver: mpsc::Receiver<Pending>, stored: Arc<Notify>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (events, replies): (Vec<Event>, Vec<_>) =
            batch.drain(..).map(|p| (p.event, p.reply)).unzip();
        let t0 = std::time::Instant::now();
        let outcomes = commit_batch(&store, &events).await;
        if std::env::var_os("WRITER_TRACE").is_some() {
            eprintln!("WT batch={} ms={:.2}", events.len(), t0.elapsed().as_secs_f64() * 1000.0);
        }
        let unavailable = outcomes.is_none();
        let outcomes = outcomes.unwrap_or_else(|| vec![None; replies.len()]);
        if outcomes.iter().flatten().any(|c| !c.duplicate) {
            stored.notify_waiters();
        }
        for (reply, outcome) in replies.into_iter().zip(outcomes) {
            // The request may have timed out and left; its event is stored
            // all the same and TikTok's retry will be counted as a duplicate.
            let _ = reply.send(outcome);
        }
        if unavailable {
            refuse_waiting(&mut receiver);
        }
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
async fn commit_batch(store: &Store, events: &[Event]) -> Option<Vec<Option<Committed>>> {
    match store.commit(events).await {
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
                outcomes.push(match store.commit(single).await {
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
