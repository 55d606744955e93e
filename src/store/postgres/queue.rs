//! PostgreSQL's side of the processing queue: claim with a lease, record an
//! attempt, give leases back, retry by hand.
//!
//! Several instances claim from one table. A claim is one statement that
//! locks the due rows it takes with `FOR UPDATE SKIP LOCKED`: a row another
//! instance is claiming is skipped, not waited for and never taken twice. An
//! expired lease makes a `running` job claimable again.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::PgStore;
use crate::store::{Attempt, AttemptRecord, ClaimedJob, JobOutcome, QueueDepth, Result};

impl PgStore {
    /// Expired leases first (older work) when asked for, then due jobs in
    /// due order: two statements, each an index range that stops at its
    /// limit. One `WHERE … OR …` had the planner gather and sort every due
    /// job for every claim, thousands during a burst; and a limit that the
    /// planner cannot see (the due jobs' limit was once "the limit less the
    /// expired ones found", a subquery) let it plan for every due job after
    /// an ANALYZE in the middle of a backlog: a hash of every event, spilled
    /// to disk, for each claim of sixteen, which slowed the queue tenfold.
    pub async fn claim_jobs(
        &self,
        owner: &str,
        limit: i64,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
        expired: bool,
    ) -> Result<Vec<ClaimedJob>> {
        let mut claimed = Vec::new();
        if expired {
            claimed = self
                .claim_where(CLAIM_EXPIRED, owner, limit, lease_until, now)
                .await?;
        }
        let left = limit - claimed.len() as i64;
        if left > 0 {
            claimed.extend(
                self.claim_where(CLAIM_DUE, owner, left, lease_until, now)
                    .await?,
            );
        }
        Ok(claimed)
    }

    async fn claim_where(
        &self,
        sql: &'static str,
        owner: &str,
        limit: i64,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<ClaimedJob>> {
        let rows = sqlx::query(sql)
            .bind(owner)
            .bind(lease_until)
            .bind(now)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(ClaimedJob {
                    event_id: row.try_get("event_id")?,
                    attempt: row.try_get("attempts")?,
                    raw_body: row.try_get("raw_body")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Records a worker's attempts in one transaction and, where the worker
    /// still holds the lease, each job's new state and its event's and
    /// order's processing state. False for an attempt whose lease had been
    /// lost (another worker took the job over).
    ///
    /// One call of the `finish_jobs` function (migration 0005), one round
    /// trip: sent as separate statements, a batch took seven, and the queue
    /// then cost PostgreSQL more than intake. The function locks rows in the
    /// order intake locks them (jobs and events by event id, then orders by
    /// order id), so that a finishing batch and an intake batch touching the
    /// same events wait rather than deadlock.
    pub async fn finish_jobs(&self, attempts: &[Attempt]) -> Result<Vec<bool>> {
        let all: Vec<&Attempt> = attempts.iter().collect();
        let (statuses, next_runs): (Vec<&str>, Vec<Option<DateTime<Utc>>>) = attempts
            .iter()
            .map(|a| match &a.outcome {
                JobOutcome::Success => ("done", None),
                JobOutcome::Retry { at } => ("pending", Some(*at)),
                JobOutcome::Dead => ("dead", None),
            })
            .unzip();
        let rounds = rounds(attempts);
        // Rolled back whole when PostgreSQL ends it to break a deadlock (an
        // intake batch writing the same orders), so it can simply run again:
        // giving up would leave the attempts unrecorded and their handlers
        // run a second time once the leases end.
        let mut attempt = 1;
        let held: Vec<i64> = loop {
            let result = sqlx::query_scalar(
                "SELECT finish_jobs($1::text[], $2::text[], $3::bigint[], $4::timestamptz[],
                     $5::timestamptz[], $6::text[], $7::bigint[], $8::text[], $9::text[],
                     $10::timestamptz[], $11::bigint[])",
            )
            .bind(column(&all, |a| a.event_id.as_str()))
            .bind(column(&all, |a| a.owner.as_str()))
            .bind(column(&all, |a| a.attempt))
            .bind(column(&all, |a| a.started_at))
            .bind(column(&all, |a| a.finished_at))
            .bind(column(&all, |a| a.outcome.as_str()))
            .bind(column(&all, |a| a.status_code.map(i64::from)))
            .bind(column(&all, |a| a.error.as_deref()))
            .bind(&statuses)
            .bind(&next_runs)
            .bind(&rounds)
            .fetch_all(&self.pool)
            .await;
            match result {
                Err(e) if attempt < super::COMMIT_ATTEMPTS && super::is_conflict(&e) => {
                    tracing::warn!(error = %e, attempt, "recording attempts rolled back; trying again");
                    attempt += 1;
                }
                result => break result?,
            }
        };
        let mut out = vec![false; attempts.len()];
        for position in held {
            if let Some(slot) = usize::try_from(position - 1)
                .ok()
                .and_then(|i| out.get_mut(i))
            {
                *slot = true;
            }
        }
        Ok(out)
    }

    /// Moves `owner`'s leases on these handed jobs to `until`; returns the
    /// events whose job it still held: running its first attempt, leased to
    /// it. (Once a lease ran out and a worker of the same instance claimed
    /// the job again, its attempt count says so.)
    pub async fn extend_leases(
        &self,
        owner: &str,
        event_ids: &[String],
        until: DateTime<Utc>,
    ) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "UPDATE jobs SET lease_until = $3
             WHERE event_id = ANY($1::text[]) AND lease_owner = $2 AND status = 'running'
               AND attempts = 1
             RETURNING event_id",
        )
        .bind(event_ids)
        .bind(owner)
        .bind(until)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Gives back every lease `owner` holds (graceful shutdown): the jobs are
    /// due again at once, for this or another instance.
    pub async fn release_jobs(&self, owner: &str, now: DateTime<Utc>) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE jobs SET status = 'pending', attempts = GREATEST(attempts - 1, 0),
                 lease_owner = NULL, lease_until = NULL, next_run_at = $2, updated_at = $2
             WHERE lease_owner = $1 AND status = 'running'",
        )
        .bind(owner)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Makes the event's job due now with a fresh budget of attempts (and
    /// creates it if the event never had one). False for an unknown event or
    /// a job that is running right now.
    pub async fn retry_event(&self, event_id: &str, now: DateTime<Utc>) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let changed = sqlx::query(
            "INSERT INTO jobs AS j (event_id, next_run_at, created_at, updated_at)
             SELECT event_id, $2, $2, $2 FROM webhook_events WHERE event_id = $1
             ON CONFLICT (event_id) DO UPDATE SET
                 status = 'pending', attempts = 0, next_run_at = excluded.next_run_at,
                 created_at = excluded.created_at, lease_owner = NULL, lease_until = NULL,
                 updated_at = excluded.updated_at
             WHERE j.status != 'running'",
        )
        .bind(event_id)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if changed {
            sqlx::query(
                "UPDATE webhook_events SET processed = false, success = NULL WHERE event_id = $1",
            )
            .bind(event_id)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE tiktok_orders SET processed = false
                 WHERE order_id = (SELECT order_id FROM webhook_events WHERE event_id = $1)",
            )
            .bind(event_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(changed)
    }

    /// The events of an order whose processing has not succeeded and is not
    /// under way: dead, waiting for a retry, or never queued (malformed).
    pub async fn unfinished_events(&self, order_id: &str) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT e.event_id FROM webhook_events e LEFT JOIN jobs j ON j.event_id = e.event_id
             WHERE e.order_id = $1
               AND (j.status IN ('dead', 'pending') OR (j.status IS NULL AND NOT e.success))
             ORDER BY e.id",
        )
        .bind(order_id)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn job_attempts(&self, event_id: &str) -> Result<Vec<AttemptRecord>> {
        let rows = sqlx::query(
            "SELECT attempt, started_at, finished_at, outcome, status_code, error
             FROM job_attempts WHERE event_id = $1 ORDER BY id",
        )
        .bind(event_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AttemptRecord {
                    attempt: r.try_get("attempt")?,
                    started_at: r.try_get("started_at")?,
                    finished_at: r.try_get("finished_at")?,
                    outcome: r.try_get("outcome")?,
                    status_code: r.try_get("status_code")?,
                    error: r.try_get("error")?,
                })
            })
            .collect()
    }

    pub async fn queue_depth(&self, now: DateTime<Utc>) -> Result<QueueDepth> {
        let row = sqlx::query(
            // Each count an index range of jobs_due: done jobs, the bulk of
            // the table, are never read.
            "SELECT
                 (SELECT COUNT(*) FROM jobs WHERE status = 'pending') AS pending,
                 (SELECT COUNT(*) FROM jobs WHERE status = 'running') AS running,
                 (SELECT COUNT(*) FROM jobs WHERE status = 'dead') AS dead,
                 (SELECT MIN(next_run_at) FROM jobs
                  WHERE status = 'pending' AND next_run_at <= $1) AS oldest_due",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        let oldest: Option<DateTime<Utc>> = row.try_get("oldest_due")?;
        let lag = oldest.map_or(0.0, |at| {
            (now - at).num_milliseconds().max(0) as f64 / 1000.0
        });
        Ok(QueueDepth {
            pending: row.try_get("pending")?,
            running: row.try_get("running")?,
            dead: row.try_get("dead")?,
            lag_seconds: lag,
        })
    }
}

/// Each attempt's round: the k-th attempt of an event in the batch is in
/// round k, so that a round holds each event at most once (a statement may
/// not change one row twice). A worker's batch claims each job once, so
/// there is almost always one round.
fn rounds(attempts: &[Attempt]) -> Vec<i64> {
    let mut seen: HashMap<&str, i64> = HashMap::new();
    attempts
        .iter()
        .map(|a| {
            let round = seen.entry(a.event_id.as_str()).or_insert(0);
            *round += 1;
            *round - 1
        })
        .collect()
}

/// One value per attempt, for an `UNNEST` array.
fn column<'a, T>(attempts: &[&'a Attempt], f: impl Fn(&'a Attempt) -> T) -> Vec<T> {
    attempts.iter().map(|a| f(a)).collect()
}

/// Claims up to `$4` jobs that `$condition` picks (`$3` is now) for `$1`,
/// leased until `$2`, with each job's event body; one text per condition,
/// so that each statement is prepared once.
macro_rules! claim {
    ($condition:literal) => {
        concat!(
            "WITH picked AS (
                 SELECT event_id FROM jobs WHERE ",
            $condition,
            " ORDER BY next_run_at LIMIT $4
                 FOR UPDATE SKIP LOCKED),
             claimed AS (
                 UPDATE jobs j SET status = 'running', attempts = attempts + 1,
                     lease_owner = $1, lease_until = $2, updated_at = $3
                 FROM picked p WHERE j.event_id = p.event_id
                 RETURNING j.event_id, j.attempts, j.created_at, j.next_run_at)
             SELECT c.event_id, c.attempts, c.created_at, e.raw_body
             FROM claimed c JOIN webhook_events e ON e.event_id = c.event_id
             ORDER BY c.next_run_at"
        )
    };
}

/// Jobs whose lease ran out.
const CLAIM_EXPIRED: &str = claim!("status = 'running' AND lease_until < $3");

/// Jobs due now.
const CLAIM_DUE: &str = claim!("status = 'pending' AND next_run_at <= $3");
