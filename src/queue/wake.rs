//! What intake tells the workers: new events are stored (wake up), whether
//! it left jobs in the table (look there), and how busy it is (give way).
//!
//! Processing is asynchronous by design: a 200 only promises that the event
//! is stored. So during a burst the workers give intake the machine's CPU
//! and the database's attention, taking jobs at most once per [`BURST_GAP`]
//! each, and catch up at full speed once the burst is over. Processing every
//! event as it arrived cost PostgreSQL more than storing it (four tables
//! written per event), and took a third of what intake could do on two
//! cores.
//!
//! A burst is intake saturated, not merely busy: batches of at least
//! [`BURST_BATCH`] events, which form only when requests queue up for the
//! writer. Under a steady load that intake keeps up with, batches stay
//! small and the workers never wait, so processing keeps pace however long
//! the load lasts instead of falling further behind; and whatever the batch
//! sizes, workers stop giving way once the events they claim have waited
//! [`MAX_LAG`].

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Mutex,
    },
    time::{Duration, Instant},
};

use tokio::sync::Notify;

/// A batch this large means requests are queuing for the writer.
pub const BURST_BATCH: usize = 16;
/// Intake counts as in a burst this long after its last such batch.
const BUSY_WINDOW: Duration = Duration::from_millis(50);
/// While intake is busy, a worker takes jobs at most once in this long.
pub const BURST_GAP: Duration = Duration::from_millis(25);
/// Workers stop giving way once the events they claim have waited this
/// long: whatever sets the batch size (a slow commit to a distant database
/// makes large batches at a rate intake keeps up with), giving way never
/// lets processing fall further behind than this.
pub const MAX_LAG: chrono::TimeDelta = chrono::TimeDelta::seconds(10);

#[derive(Debug, Default)]
pub struct Wake {
    notify: Notify,
    last_burst: Mutex<Option<Instant>>,
    /// The table may hold due jobs of this instance's making that no worker
    /// has: intake created jobs without a lease (no room in the hand-off),
    /// or an event was retried by hand. Workers otherwise look at the table
    /// once per `QUEUE_POLL_INTERVAL`.
    table_work: AtomicBool,
}

impl Wake {
    /// Intake committed a batch of `events` with new ones among them, their
    /// jobs `handed` to this instance's workers or left in the table: wakes
    /// the idle workers.
    pub fn stored(&self, events: usize, handed: bool) {
        if events >= BURST_BATCH {
            *self.last_burst.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        }
        if !handed {
            self.table_work.store(true, Ordering::Relaxed);
        }
        self.notify.notify_waiters();
    }

    /// Jobs were made due by hand (a retry), or a claim took as many as it
    /// asked for (there may be more): wakes the idle workers to claim them.
    pub fn nudge(&self) {
        self.table_work.store(true, Ordering::Relaxed);
        self.notify.notify_waiters();
    }

    /// Whether the table has work the last look did not take; clears it.
    pub fn take_table_work(&self) -> bool {
        self.table_work.swap(false, Ordering::Relaxed)
    }

    pub async fn notified(&self) {
        self.notify.notified().await
    }

    /// How long a worker that last claimed `since` ago should wait before
    /// claiming again: nothing unless intake is in a burst.
    pub fn give_way(&self, since: Duration) -> Option<Duration> {
        let last = *self.last_burst.lock().unwrap_or_else(|e| e.into_inner());
        let busy = last.is_some_and(|at| at.elapsed() < BUSY_WINDOW);
        (busy && since < BURST_GAP).then(|| BURST_GAP - since)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_work_after_jobs_left_there_or_a_retry_until_a_worker_looks() {
        let wake = Wake::default();
        assert!(!wake.take_table_work(), "nothing yet");
        wake.stored(3, true);
        assert!(!wake.take_table_work(), "handed to the workers");
        wake.stored(3, false);
        assert!(wake.take_table_work());
        assert!(!wake.take_table_work(), "taken by the worker that looked");
        wake.nudge();
        assert!(wake.take_table_work());
    }

    #[test]
    fn workers_give_way_only_while_intake_is_saturated() {
        let wake = Wake::default();
        assert_eq!(wake.give_way(Duration::ZERO), None, "no commit yet");
        wake.stored(BURST_BATCH - 1, true);
        assert_eq!(wake.give_way(Duration::ZERO), None, "intake keeps up");
        wake.stored(BURST_BATCH, true);
        assert_eq!(
            wake.give_way(Duration::from_millis(5)),
            Some(BURST_GAP - Duration::from_millis(5))
        );
        assert_eq!(wake.give_way(BURST_GAP), None, "claimed long enough ago");
        *wake.last_burst.lock().unwrap() = Some(Instant::now() - BUSY_WINDOW);
        assert_eq!(wake.give_way(Duration::ZERO), None, "the burst is over");
    }
}
