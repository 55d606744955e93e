//! One task records the attempts of every worker: whatever finished since
//! the last record goes in one call (one transaction, one disk sync).
//!
//! Workers used to record their own batch and wait for it before taking the
//! next. Under a steady load each took only the few events that had arrived
//! since its last turn, so the database received a record per handful of
//! events, and the workers spent their time waiting for it. Now a worker
//! hands its attempts over and goes on; records grow with the load, and the
//! queue keeps up with what intake stores.
//!
//! Nothing here is lost to a crash that a claim would not lose too: until an
//! attempt is recorded, its job is `running` under this instance's lease,
//! and runs again once the lease ends.

use std::{sync::Arc, time::Duration};

use tokio::{
    sync::{mpsc, Semaphore},
    task::JoinHandle,
};

use super::Handoff;
use crate::store::{Attempt, Store};

/// One worker's finished batch.
pub(super) struct Finished {
    pub attempts: Vec<Attempt>,
    /// How many of them came from the hand-off: their room is given back
    /// once they are recorded.
    pub handed: usize,
}

/// Batches recorded in one call at most (each at most `QUEUE_BATCH`).
const BATCHES_PER_RECORD: usize = 16;

/// Starts the recorder; it ends once every sender is dropped and what they
/// sent is recorded.
pub(super) fn spawn(
    store: Store,
    handoff: Arc<Handoff>,
    workers: usize,
) -> (mpsc::Sender<Finished>, JoinHandle<()>) {
    // Room for each worker's next batch: a worker waits here only while the
    // database is slower than the handlers.
    let (sender, receiver) = mpsc::channel(workers.max(1) * 2);
    (sender, tokio::spawn(run(store, handoff, receiver)))
}

/// Records under way at once: while one commits, the next is on its way
/// (one alone made the queue wait for each commit's disk sync in turn).
const RECORDS_IN_FLIGHT: u32 = 2;

async fn run(store: Store, handoff: Arc<Handoff>, mut receiver: mpsc::Receiver<Finished>) {
    let slots = Arc::new(Semaphore::new(RECORDS_IN_FLIGHT as usize));
    let mut batches = Vec::with_capacity(BATCHES_PER_RECORD);
    loop {
        // A slot first, then the batches: while both records are under way,
        // finished batches wait in the channel and the next record grows.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        if receiver.recv_many(&mut batches, BATCHES_PER_RECORD).await == 0 {
            break;
        }
        let handed: usize = batches.iter().map(|b: &Finished| b.handed).sum();
        let attempts: Vec<Attempt> = batches.drain(..).flat_map(|b| b.attempts).collect();
        let (store, handoff) = (store.clone(), handoff.clone());
        tokio::spawn(async move {
            record(&store, &attempts).await;
            handoff.finished(handed);
            drop(slot);
        });
    }
    // Every record under way ends before the recorder does.
    let _ = slots.acquire_many(RECORDS_IN_FLIGHT).await;
}

/// Tries a record gets when the database is unavailable (a broken
/// connection is replaced on the next use), a moment apart.
const RECORD_TRIES: u32 = 3;
const RETRY_PAUSE: Duration = Duration::from_millis(200);

async fn record(store: &Store, attempts: &[Attempt]) {
    // Unrecorded, the attempts would run again once their leases end (a
    // second delivery to FORWARD_URL): worth a retry when the connection,
    // not the statement, failed.
    let mut tried = 1;
    let result = loop {
        match store.finish_jobs(attempts).await {
            Err(error) if error.is_unavailable() && tried < RECORD_TRIES => {
                tracing::warn!(error = %error, tried, "could not record the attempts; trying again");
                tokio::time::sleep(RETRY_PAUSE * tried).await;
                tried += 1;
            }
            result => break result,
        }
    };
    match result {
        Ok(held) => {
            for (attempt, held) in attempts.iter().zip(held) {
                if !held {
                    tracing::warn!(
                        event_id = %attempt.event_id,
                        "the lease ran out during the attempt; another worker owns the job now"
                    );
                }
            }
        }
        // The leases will run out and the jobs will be tried again.
        Err(error) => tracing::error!(error = %error, "could not record the attempts"),
    }
}
