//! The workers: take handed jobs or claim due ones, handle them, pass the
//! attempts to the recorder, repeat; stop at shutdown, let running jobs end
//! within the bound, give the rest of the leases back.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use tokio::{
    sync::{mpsc, watch},
    task::JoinSet,
};
use tracing::Instrument;

use super::{
    handoff::HandedJob,
    recorder::{self, Finished},
    EventHandler, HandlerError, Handoff, QueueSettings, Wake,
};
use crate::{
    clock::Clock,
    store::{Attempt, ClaimedJob, JobOutcome, Store},
    tiktok::{Event, VerifiedBody},
};

#[derive(Clone)]
pub struct Queue {
    store: Store,
    handler: Arc<dyn EventHandler>,
    settings: QueueSettings,
    clock: Clock,
    /// Wakes idle workers when this instance stores new events.
    wake: Arc<Wake>,
    /// This instance's lease owner name.
    owner: Arc<str>,
    /// Events intake stored with their jobs leased to this instance.
    handoff: Arc<Handoff>,
    /// When the queue gauges were last read from the database.
    depth_read: Arc<Mutex<Option<Instant>>>,
}

/// The queue gauges are read from the database at most this often. Workers
/// find the queue empty many times a second during a burst (they keep up
/// with intake), and counting jobs each time cost more than the jobs.
const DEPTH_INTERVAL: Duration = Duration::from_secs(1);

/// Returned by [`Queue::start`]; stops the workers.
pub struct QueueHandle {
    stop: watch::Sender<bool>,
    workers: JoinSet<()>,
    /// Ends once the workers are gone and their attempts are recorded.
    recorder: tokio::task::JoinHandle<()>,
    queue: Queue,
}

impl Queue {
    pub fn new(
        store: Store,
        handler: Arc<dyn EventHandler>,
        settings: QueueSettings,
        clock: Clock,
        wake: Arc<Wake>,
    ) -> Self {
        let owner: Arc<str> =
            format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple()).into();
        // Room for two batches per worker: one being worked on, the next
        // waiting. More would only let jobs wait in memory while the table
        // could give them to another instance.
        let capacity = settings.workers.max(1) * settings.batch.max(1) as usize * 2;
        let handoff = Handoff::new(owner.clone(), settings.lease, clock.clone(), capacity);
        Self {
            store,
            handler,
            settings,
            clock,
            wake,
            owner,
            handoff: Arc::new(handoff),
            depth_read: Arc::default(),
        }
    }

    /// What intake hands this queue's workers (see `handoff.rs`).
    pub fn handoff(&self) -> Arc<Handoff> {
        self.handoff.clone()
    }

    pub fn start(self) -> QueueHandle {
        let (stop, stopped) = watch::channel(false);
        let count = self.settings.workers.max(1);
        let (finished, recorder) = recorder::spawn(self.store.clone(), self.handoff(), count);
        let mut workers = JoinSet::new();
        for _ in 0..count {
            workers.spawn(self.clone().run(stopped.clone(), finished.clone()));
        }
        QueueHandle {
            stop,
            workers,
            recorder,
            queue: self,
        }
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    async fn run(self, mut stopped: watch::Receiver<bool>, finished: mpsc::Sender<Finished>) {
        let mut last_claim = Instant::now()
            .checked_sub(super::wake::BURST_GAP)
            .unwrap_or_else(Instant::now);
        // Whether the last claim held a first attempt waiting longer than
        // MAX_LAG: the queue is behind, and stops giving way.
        let mut behind = false;
        let mut looked = Looked {
            table: Instant::now(),
            expired: Instant::now()
                .checked_sub(self.settings.poll)
                .unwrap_or_else(Instant::now),
            table_turn: false,
        };
        while !*stopped.borrow() {
            let pause = match behind {
                true => None,
                false => self.wake.give_way(last_claim.elapsed()),
            };
            if let Some(pause) = pause {
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = stopped.changed() => continue,
                }
            }
            last_claim = Instant::now();
            let (jobs, from_handoff) = self.next_jobs(&mut looked).await;
            let now = self.now();
            behind = jobs
                .iter()
                .any(|j| j.attempt == 1 && now - j.created_at > super::wake::MAX_LAG);
            if jobs.is_empty() {
                // Handed jobs whose lease could not be kept: given up.
                self.handoff.finished(from_handoff);
                self.record_depth().await;
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(self.settings.poll) => {}
                    _ = stopped.changed() => {}
                }
                continue;
            }
            // The jobs run side by side; the recorder records their attempts
            // with other workers' (see `recorder.rs`).
            let attempts =
                futures::future::join_all(jobs.into_iter().map(|j| self.process(j))).await;
            let batch = Finished {
                attempts,
                handed: from_handoff,
            };
            if finished.send(batch).await.is_err() {
                tracing::error!("the recorder is gone; the attempts' leases will run out");
                break;
            }
        }
    }

    /// The next jobs, and how many of them came from the hand-off: handed
    /// jobs first, due jobs from the table when there are none. When intake
    /// left jobs in the table or a retry made one due
    /// ([`Wake::take_table_work`]), the table goes first every other turn,
    /// so that neither a backlog there nor a steady flow of handed jobs
    /// holds the other up; and every `QUEUE_POLL_INTERVAL` in any case, so
    /// that retries coming due and other instances' jobs are not left
    /// behind while the hand-off never runs dry.
    async fn next_jobs(&self, looked: &mut Looked) -> (Vec<Job>, usize) {
        let batch = self.settings.batch.max(1) as usize;
        looked.table_turn = !looked.table_turn;
        let table_first = looked.table.elapsed() >= self.settings.poll
            || (looked.table_turn && self.wake.take_table_work());
        if !table_first {
            let handed = self.handoff.take(batch);
            if !handed.is_empty() {
                let from_handoff = handed.len();
                return (self.keep_leases(handed).await, from_handoff);
            }
        }
        looked.table = Instant::now();
        // Expired leases (an instance died mid-attempt) are looked for once
        // per interval: finding none means reading every running job.
        let expired = looked.expired.elapsed() >= self.settings.poll;
        if expired {
            looked.expired = Instant::now();
        }
        let claimed = self.claim(expired).await;
        if claimed.len() >= batch {
            // There may be more: another worker may help.
            self.wake.nudge();
        }
        if !claimed.is_empty() {
            return (claimed, 0);
        }
        let handed = self.handoff.take(batch);
        let from_handoff = handed.len();
        (self.keep_leases(handed).await, from_handoff)
    }

    /// Due jobs from the table (and jobs whose lease expired, with
    /// `expired`), leased to this instance.
    async fn claim(&self, expired: bool) -> Vec<Job> {
        let lease_until = self.now() + self.settings.lease;
        let claimed = self
            .store
            .claim_jobs(
                &self.owner,
                self.settings.batch,
                lease_until,
                self.now(),
                expired,
            )
            .await;
        match claimed {
            Ok(jobs) => jobs.into_iter().map(Job::claimed).collect(),
            Err(error) => {
                tracing::warn!(error = %error, "could not claim jobs; trying again");
                Vec::new()
            }
        }
    }

    /// Handed jobs whose lease leaves room for a whole attempt; the lease of
    /// one that waited longer is extended first. A job whose lease cannot be
    /// extended (the database is down, or the lease was lost) is left to
    /// whoever claims it once the lease has run out.
    async fn keep_leases(&self, handed: Vec<HandedJob>) -> Vec<Job> {
        let now = self.now();
        // An attempt may take 80% of JOB_LEASE; the rest is for recording it.
        let needed = chrono::TimeDelta::from_std(self.settings.lease.mul_f64(0.9))
            .unwrap_or(chrono::TimeDelta::MAX);
        let fresh_enough = |job: &HandedJob| job.lease_until - now >= needed;
        let (ready, stale): (Vec<HandedJob>, Vec<HandedJob>) =
            handed.into_iter().partition(fresh_enough);
        let mut jobs: Vec<Job> = ready.into_iter().map(Job::handed).collect();
        if stale.is_empty() {
            return jobs;
        }
        let ids: Vec<String> = stale
            .iter()
            .map(|j| j.event.id.as_str().to_owned())
            .collect();
        let until = now + self.settings.lease;
        match self.store.extend_leases(&self.owner, &ids, until).await {
            Ok(held) => {
                let held: std::collections::HashSet<String> = held.into_iter().collect();
                jobs.extend(
                    stale
                        .into_iter()
                        .filter(|j| held.contains(j.event.id.as_str()))
                        .map(Job::handed),
                );
            }
            Err(error) => {
                tracing::warn!(error = %error, jobs = ids.len(), "could not extend leases; the jobs wait for them to run out")
            }
        }
        jobs
    }

    async fn process(&self, job: Job) -> Attempt {
        let started_at = self.now();
        let timer = Instant::now();
        if job.attempt == 1 {
            let lag = (started_at - job.created_at).num_milliseconds().max(0) as f64 / 1000.0;
            metrics::histogram!("queue_lag_seconds").record(lag);
        }
        let span = tracing::info_span!("job", event_id = ?job.event_id, attempt = job.attempt);
        let result = match &job.event {
            Some(event) => {
                // A call must end before the lease does, or another worker
                // would take the job over and run it a second time.
                let bound = self.settings.lease.mul_f64(0.8);
                let call = tokio::time::timeout(bound, self.handler.handle(event));
                match call.instrument(span.clone()).await {
                    Ok(result) => result,
                    Err(_) => Err(HandlerError::retry(
                        "the handler took longer than 80% of JOB_LEASE and was stopped",
                    )),
                }
            }
            None => Err(HandlerError::permanent(
                "the stored body can no longer be read",
            )),
        };
        let (outcome, status_code, error) = self.judge(&job, result);
        metrics::counter!("queue_attempts_total", "outcome" => outcome.as_str()).increment(1);
        metrics::histogram!("queue_attempt_seconds").record(timer.elapsed().as_secs_f64());
        let _enter = span.enter();
        match &outcome {
            JobOutcome::Success => tracing::debug!("event handled"),
            JobOutcome::Retry { at } => {
                tracing::warn!(error = error.as_deref(), next = %at, "attempt failed; will retry")
            }
            JobOutcome::Dead => tracing::error!(error = error.as_deref(), "event dead-lettered"),
        }
        Attempt {
            event_id: job.event_id.clone(),
            owner: self.owner.to_string(),
            attempt: job.attempt,
            started_at,
            finished_at: self.now(),
            outcome,
            status_code,
            error,
        }
    }

    /// Success, a retry at a backed-off time, or dead when the attempts or
    /// the time budget are used up.
    fn judge(
        &self,
        job: &Job,
        result: Result<(), HandlerError>,
    ) -> (JobOutcome, Option<u16>, Option<String>) {
        let error = match result {
            Ok(()) => return (JobOutcome::Success, None, None),
            Err(error) => error,
        };
        let policy = &self.settings.retry;
        let at = self.now() + policy.delay(job.attempt, error.retry_after);
        let too_late = at > job.created_at + policy.max_age;
        let outcome = if error.permanent || job.attempt >= policy.max_attempts || too_late {
            JobOutcome::Dead
        } else {
            JobOutcome::Retry { at }
        };
        (outcome, error.status, Some(error.message))
    }

    async fn record_depth(&self) {
        {
            let mut last = self.depth_read.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|at| at.elapsed() < DEPTH_INTERVAL) {
                return;
            }
            *last = Some(Instant::now());
        }
        if let Ok(depth) = self.store.queue_depth(self.now()).await {
            metrics::gauge!("queue_jobs", "state" => "pending").set(depth.pending as f64);
            metrics::gauge!("queue_jobs", "state" => "running").set(depth.running as f64);
            metrics::gauge!("queue_jobs", "state" => "dead").set(depth.dead as f64);
            metrics::gauge!("queue_oldest_due_seconds").set(depth.lag_seconds);
        }
    }
}

/// When a worker last looked at the table, and for expired leases; and
/// whether the table may go first this turn.
struct Looked {
    table: Instant,
    expired: Instant,
    table_turn: bool,
}

/// A job this worker holds the lease of, claimed or handed.
struct Job {
    event_id: String,
    attempt: i64,
    created_at: DateTime<Utc>,
    /// `None` when the stored body can no longer be read.
    event: Option<Event>,
}

impl Job {
    fn claimed(job: ClaimedJob) -> Job {
        let body = VerifiedBody::from_storage(Bytes::from(job.raw_body));
        Job {
            event_id: job.event_id,
            attempt: job.attempt,
            created_at: job.created_at,
            event: Event::parse(body).ok(),
        }
    }

    fn handed(job: HandedJob) -> Job {
        Job {
            event_id: job.event.id.as_str().to_owned(),
            attempt: 1,
            created_at: job.created_at,
            event: Some(job.event),
        }
    }
}

impl QueueHandle {
    /// Stops claiming, lets running jobs end within the shutdown bound, then
    /// gives back every lease this instance still holds.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        // Most of the shutdown bound: the rest is for giving leases back.
        let bound = self.queue.settings.shutdown.mul_f64(0.8);
        let drained = tokio::time::timeout(bound, async {
            while self.workers.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("jobs still running at the shutdown bound; giving their leases back");
            self.workers.abort_all();
            while self.workers.join_next().await.is_some() {}
        }
        // The workers' senders are gone with them: the recorder records
        // what it was given and ends.
        let _ = self.recorder.await;
        // Batches being committed finish leasing their jobs to this
        // instance first: every lease it holds is then given back below.
        self.queue.handoff.close().await;
        match self
            .queue
            .store
            .release_jobs(&self.queue.owner, Utc::now())
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(jobs = n, "gave leases back"),
            Err(error) => {
                tracing::warn!(error = %error, "could not give leases back; they will expire")
            }
        }
    }
}
