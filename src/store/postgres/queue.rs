//! PostgreSQL's side of the processing queue: claim with a lease, record an
//! attempt, give leases back, retry by hand.
//!
//! Several instances claim from one table. A claim is one statement that
//! locks the due rows it takes with `FOR UPDATE SKIP LOCKED`: a row another
//! instance is claiming is skipped, not waited for and never taken twice. An
//! expired lease makes a `running` job claimable again.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Row, Transaction};

use super::PgStore;
use crate::store::{Attempt, AttemptRecord, ClaimedJob, JobOutcome, QueueDepth, Result};

type Tx<'c> = Transaction<'c, Postgres>;

impl PgStore {
    pub async fn claim_jobs(
        &self,
        owner: &str,
        limit: i64,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<ClaimedJob>> {
        let rows = sqlx::query(
            // Expired leases first (older work), then due jobs in due order;
            // each an index range that stops at the limit. One `WHERE … OR
            // …` had the planner gather and sort every due job for every
            // claim, thousands during a burst.
            "WITH expired AS (
                 SELECT id, next_run_at FROM jobs
                 WHERE status = 'running' AND lease_until < $3
                 ORDER BY next_run_at LIMIT $4
                 FOR UPDATE SKIP LOCKED),
             due AS (
                 SELECT id, next_run_at FROM jobs
                 WHERE status = 'pending' AND next_run_at <= $3
                 ORDER BY next_run_at LIMIT $4 - (SELECT COUNT(*) FROM expired)
                 FOR UPDATE SKIP LOCKED),
             claimed AS (
                 UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_owner = $1,
                     lease_until = $2, updated_at = $3
                 WHERE id IN (SELECT id FROM expired UNION ALL SELECT id FROM due)
                 RETURNING event_id, attempts, created_at, next_run_at)
             SELECT c.event_id, c.attempts, c.created_at, e.raw_body
             FROM claimed c JOIN webhook_events e ON e.event_id = c.event_id
             ORDER BY c.next_run_at",
        )
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
    /// Rows are locked in the order intake locks them (jobs and events by
    /// event id, then orders by order id), so that a finishing batch and an
    /// intake batch touching the same events wait rather than deadlock.
    pub async fn finish_jobs(&self, attempts: &[Attempt]) -> Result<Vec<bool>> {
        let mut by_event: Vec<usize> = (0..attempts.len()).collect();
        by_event.sort_by(|&a, &b| attempts[a].event_id.cmp(&attempts[b].event_id));
        let mut tx = self.pool.begin().await?;
        let mut held = vec![false; attempts.len()];
        for &i in &by_event {
            held[i] = record_attempt(&mut tx, &attempts[i]).await?;
        }
        // Each order's error is that of its last attempt in the batch, as if
        // the attempts had been recorded one after the other.
        let mut orders: BTreeMap<String, Option<&str>> = BTreeMap::new();
        let mut order_of = vec![None; attempts.len()];
        for &i in by_event.iter().filter(|&&i| held[i]) {
            order_of[i] = settle_event(&mut tx, &attempts[i]).await?;
        }
        for (i, order_id) in order_of.into_iter().enumerate() {
            if let Some(order_id) = order_id {
                orders.insert(order_id, attempts[i].error.as_deref());
            }
        }
        let now = attempts.iter().map(|a| a.finished_at).max();
        for (order_id, error) in &orders {
            settle_order(&mut tx, order_id, *error, now.unwrap_or_else(Utc::now)).await?;
        }
        tx.commit().await?;
        Ok(held)
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
            "SELECT
                 COUNT(*) FILTER (WHERE status = 'pending') AS pending,
                 COUNT(*) FILTER (WHERE status = 'running') AS running,
                 COUNT(*) FILTER (WHERE status = 'dead') AS dead,
                 MIN(next_run_at) FILTER (WHERE status = 'pending' AND next_run_at <= $1)
                     AS oldest_due
             FROM jobs",
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

/// Keeps the attempt; moves the job on if this worker still holds its lease.
async fn record_attempt(tx: &mut Tx<'_>, attempt: &Attempt) -> Result<bool> {
    let (status, next_run_at) = match &attempt.outcome {
        JobOutcome::Success => ("done", None),
        JobOutcome::Retry { at } => ("pending", Some(*at)),
        JobOutcome::Dead => ("dead", None),
    };
    sqlx::query(
        "INSERT INTO job_attempts (event_id, attempt, started_at, finished_at, outcome,
             status_code, error)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&attempt.event_id)
    .bind(attempt.attempt)
    .bind(attempt.started_at)
    .bind(attempt.finished_at)
    .bind(attempt.outcome.as_str())
    .bind(attempt.status_code.map(i64::from))
    .bind(&attempt.error)
    .execute(&mut **tx)
    .await?;
    let moved = sqlx::query(
        "UPDATE jobs SET status = $1, next_run_at = COALESCE($2, next_run_at),
             lease_owner = NULL, lease_until = NULL, last_error = $3, updated_at = $4
         WHERE event_id = $5 AND lease_owner = $6 AND status = 'running'",
    )
    .bind(status)
    .bind(next_run_at)
    .bind(&attempt.error)
    .bind(attempt.finished_at)
    .bind(&attempt.event_id)
    .bind(&attempt.owner)
    .execute(&mut **tx)
    .await?;
    Ok(moved.rows_affected() == 1)
}

/// The event's processing state after a held attempt; returns its order.
async fn settle_event(tx: &mut Tx<'_>, attempt: &Attempt) -> Result<Option<String>> {
    let order_id: Option<Option<String>> = sqlx::query_scalar(
        "UPDATE webhook_events SET processed = $1, success = $2, error_message = $3
         WHERE event_id = $4 RETURNING order_id",
    )
    .bind(!matches!(attempt.outcome, JobOutcome::Retry { .. }))
    .bind(attempt.outcome == JobOutcome::Success)
    .bind(&attempt.error)
    .bind(&attempt.event_id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(order_id.flatten())
}

/// An order is processed when none of its events' jobs is left undone.
///
/// Two instances finishing two jobs of one order at once would each see the
/// other's job as undone if they judged from the same moment. Locking the
/// order row first makes the second wait for the first to commit; its next
/// statement then sees that commit (READ COMMITTED takes a new snapshot per
/// statement), so the last one to finish sets the final answer.
async fn settle_order(
    tx: &mut Tx<'_>,
    order_id: &str,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query("SELECT 1 FROM tiktok_orders WHERE order_id = $1 FOR UPDATE")
        .bind(order_id)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "UPDATE tiktok_orders o SET
             processed = NOT EXISTS (
                 SELECT 1 FROM webhook_events e JOIN jobs j ON j.event_id = e.event_id
                 WHERE e.order_id = o.order_id AND j.status != 'done'),
             error_message = $2, updated_at = $3
         WHERE o.order_id = $1",
    )
    .bind(order_id)
    .bind(error)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
