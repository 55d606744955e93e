//! The hand-off: events that intake has just stored go to this instance's
//! workers in memory, with their jobs created already leased to them, so a
//! worker neither claims them nor reads their bodies back.
//!
//! Claiming cost a statement per batch that locked and updated every job it
//! took, and read each event's body back; on PostgreSQL that was as much as
//! a third of what processing cost the database. The durability promise is
//! unchanged: the job row is written in the event's transaction, `running`
//! under this instance's lease. Memory only holds a copy of what the table
//! says. If the process dies, the leases run out and any instance claims the
//! jobs, as after a crash in the middle of a claimed attempt; a graceful stop
//! gives them back at once (`release_jobs`).
//!
//! Room is bounded ([`Handoff::capacity`]): a batch is leased only when
//! every one of its events has room, counting jobs waiting here and jobs
//! being worked on. Without room (the workers are behind, or giving way to a
//! burst), jobs are created due and claimed from the table later. A job that
//! waited here long enough for its lease to be short of a full attempt has
//! its lease extended first (`Queue` does that).
//!
//! One case waits for the lease: a commit whose answer was lost (the
//! connection broke after COMMIT) is reported as not stored, so its events
//! are not handed over although their jobs are in the table, leased. They
//! run once the lease has run out, as after a crash; nothing is lost.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use crate::{clock::Clock, store::Lease, tiktok::Event};

/// A stored event whose job this instance leased at intake.
#[derive(Debug)]
pub struct HandedJob {
    pub event: Event,
    pub created_at: DateTime<Utc>,
    pub lease_until: DateTime<Utc>,
}

#[derive(Debug)]
pub struct Handoff {
    owner: Arc<str>,
    lease: Duration,
    clock: Clock,
    capacity: usize,
    state: Mutex<State>,
    /// Notified when the last outstanding reservation ends.
    settled: Notify,
}

#[derive(Debug, Default)]
struct State {
    /// Reserved by batches being committed, waiting here, or being worked
    /// on: at most `capacity`.
    held: usize,
    /// Reservations not yet filled or dropped.
    open: usize,
    closed: bool,
    waiting: VecDeque<HandedJob>,
}

impl Handoff {
    pub fn new(owner: Arc<str>, lease: Duration, clock: Clock, capacity: usize) -> Self {
        Self {
            owner,
            lease,
            clock,
            capacity,
            state: Mutex::default(),
            settled: Notify::new(),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Room for `events` jobs and the lease to create them with, or `None`
    /// when there is not room for all of them (or the queue is stopping).
    pub fn reserve(self: &Arc<Self>, events: usize) -> Option<Reservation> {
        let mut state = self.state();
        if state.closed || state.held + events > self.capacity {
            return None;
        }
        state.held += events;
        state.open += 1;
        let now = self.clock.now();
        Some(Reservation {
            handoff: self.clone(),
            slots: events,
            created_at: now,
            lease: Lease {
                owner: self.owner.to_string(),
                until: now + self.lease,
            },
        })
    }

    /// Up to `max` waiting jobs, oldest first. Their room stays taken until
    /// [`Handoff::finished`].
    pub fn take(&self, max: usize) -> Vec<HandedJob> {
        let mut state = self.state();
        let n = max.min(state.waiting.len());
        state.waiting.drain(..n).collect()
    }

    /// `jobs` taken jobs are done with (recorded, or given up).
    pub fn finished(&self, jobs: usize) {
        let mut state = self.state();
        state.held = state.held.saturating_sub(jobs);
    }

    /// No more reservations; waits until every one made has been filled or
    /// dropped, so that no job is leased to this instance after the caller
    /// gives its leases back.
    pub async fn close(&self) {
        loop {
            let settled = self.settled.notified();
            {
                let mut state = self.state();
                state.closed = true;
                if state.open == 0 {
                    return;
                }
            }
            settled.await;
        }
    }

    fn end_reservation(&self, unused: usize, jobs: Vec<HandedJob>) {
        let mut state = self.state();
        state.held = state.held.saturating_sub(unused);
        state.waiting.extend(jobs);
        state.open -= 1;
        if state.open == 0 {
            self.settled.notify_waiters();
        }
    }
}

/// Room taken for one batch; what is not filled is given back when dropped
/// (the batch failed, or held duplicates or unreadable events).
#[derive(Debug)]
pub struct Reservation {
    handoff: Arc<Handoff>,
    slots: usize,
    created_at: DateTime<Utc>,
    lease: Lease,
}

impl Reservation {
    pub fn lease(&self) -> &Lease {
        &self.lease
    }

    /// Hands the batch's newly stored, readable events to the workers.
    pub fn fill(mut self, events: impl IntoIterator<Item = Event>) {
        let jobs: Vec<HandedJob> = events
            .into_iter()
            .take(self.slots)
            .map(|event| HandedJob {
                event,
                created_at: self.created_at,
                lease_until: self.lease.until,
            })
            .collect();
        let unused = self.slots - jobs.len();
        self.slots = 0;
        self.handoff.end_reservation(unused, jobs);
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.slots > 0 {
            self.handoff.end_reservation(self.slots, Vec::new());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    use crate::tiktok::VerifiedBody;

    fn handoff(capacity: usize) -> Arc<Handoff> {
        Arc::new(Handoff::new(
            "me".into(),
            Duration::from_secs(60),
            Clock::system(),
            capacity,
        ))
    }

    fn event(id: u32) -> Event {
        let body = format!(r#"{{"type":99,"tts_notification_id":"{id}","data":{{}}}}"#);
        Event::parse(VerifiedBody::from_storage(Bytes::from(body))).unwrap()
    }

    #[test]
    fn a_batch_is_leased_only_when_all_of_it_has_room() {
        let handoff = handoff(4);
        let first = handoff.reserve(3).expect("room for three");
        assert!(handoff.reserve(2).is_none(), "one left, two asked");
        let second = handoff.reserve(1).expect("room for one");
        assert_eq!(second.lease().owner, "me");
        drop(second);
        first.fill([event(1), event(2)]);
        // Two waiting, the third slot given back.
        assert!(handoff.reserve(2).is_some());
    }

    #[test]
    fn room_comes_back_only_when_taken_jobs_are_finished() {
        let handoff = handoff(2);
        handoff.reserve(2).unwrap().fill([event(1), event(2)]);
        let taken = handoff.take(16);
        assert_eq!(taken.len(), 2);
        assert!(handoff.reserve(1).is_none(), "both still being worked on");
        handoff.finished(taken.len());
        assert!(handoff.reserve(2).is_some());
    }

    #[test]
    fn jobs_are_taken_oldest_first_and_at_most_as_many_as_asked() {
        let handoff = handoff(8);
        handoff.reserve(2).unwrap().fill([event(1), event(2)]);
        handoff.reserve(1).unwrap().fill([event(3)]);
        let ids = |jobs: Vec<HandedJob>| -> Vec<String> {
            jobs.iter()
                .map(|j| j.event.id.as_str().to_owned())
                .collect()
        };
        assert_eq!(ids(handoff.take(2)), ["1", "2"]);
        assert_eq!(ids(handoff.take(2)), ["3"]);
        assert!(handoff.take(2).is_empty());
    }

    #[tokio::test]
    async fn close_waits_for_open_reservations_and_refuses_new_ones() {
        let handoff = handoff(8);
        let open = handoff.reserve(1).unwrap();
        let closing = {
            let handoff = handoff.clone();
            tokio::spawn(async move { handoff.close().await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!closing.is_finished(), "a batch is still being committed");
        assert!(handoff.reserve(1).is_none(), "closed to new batches");
        open.fill([event(1)]);
        tokio::time::timeout(Duration::from_secs(5), closing)
            .await
            .expect("close ends once the batch is in")
            .unwrap();
    }
}
