//! PostgreSQL's side of the processing queue: claim with a lease, record an
//! attempt, give leases back, retry by hand.
//!
//! Several instances claim from one table. A claim is one statement that
//! locks the due rows it takes with `FOR UPDATE SKIP LOCKED`: a row another
//! instance is claiming is skipped, not waited for and never taken twice. An
//! expired lease makes a `running` job claimable again.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Row, Transaction};

use super::{project::lock_rows, PgStore};
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
    /// A few multi-row statements per batch, whatever its size (they were
    /// five per attempt: the queue then cost PostgreSQL more than intake).
    /// Rows are locked in the order intake locks them (jobs and events by
    /// event id, then orders by order id), so that a finishing batch and an
    /// intake batch touching the same events wait rather than deadlock.
    pub async fn finish_jobs(&self, attempts: &[Attempt]) -> Result<Vec<bool>> {
        let mut tx = self.pool.begin().await?;
        let mut held = vec![false; attempts.len()];
        let mut order_of: Vec<Option<String>> = vec![None; attempts.len()];
        for round in rounds(attempts) {
            let batch: Vec<&Attempt> = round.iter().map(|&i| &attempts[i]).collect();
            let moved = record_attempts(&mut tx, &batch).await?;
            let settled: Vec<&Attempt> = batch
                .iter()
                .copied()
                .filter(|a| moved.contains(a.event_id.as_str()))
                .collect();
            let orders = settle_events(&mut tx, &settled).await?;
            for &i in &round {
                held[i] = moved.contains(attempts[i].event_id.as_str());
                if held[i] {
                    order_of[i] = orders.get(attempts[i].event_id.as_str()).cloned().flatten();
                }
            }
        }
        // Each order's error is that of its last attempt in the batch (in
        // the worker's order, not the rounds' event id order), as if the
        // attempts had been recorded one after the other.
        let mut orders: BTreeMap<String, Option<&str>> = BTreeMap::new();
        for (i, order_id) in order_of.into_iter().enumerate() {
            if let Some(order_id) = order_id {
                orders.insert(order_id, attempts[i].error.as_deref());
            }
        }
        let now = attempts.iter().map(|a| a.finished_at).max();
        settle_orders(&mut tx, &orders, now.unwrap_or_else(Utc::now)).await?;
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

/// The attempts as rounds of distinct event ids, each sorted by event id
/// (the lock order): round k holds the k-th attempt of every event that has
/// one. A worker's batch claims each job once, so there is almost always
/// one round; a statement may not change one row twice.
fn rounds(attempts: &[Attempt]) -> Vec<Vec<usize>> {
    let mut by_event: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, attempt) in attempts.iter().enumerate() {
        by_event
            .entry(attempt.event_id.as_str())
            .or_default()
            .push(i);
    }
    let depth = by_event.values().map(Vec::len).max().unwrap_or(0);
    (0..depth)
        .map(|k| {
            by_event
                .values()
                .filter_map(|all| all.get(k).copied())
                .collect()
        })
        .collect()
}

/// One value per attempt, for an `UNNEST` array.
fn column<'a, T>(attempts: &[&'a Attempt], f: impl Fn(&'a Attempt) -> T) -> Vec<T> {
    attempts.iter().map(|a| f(a)).collect()
}

/// Keeps the attempts; moves each job on where this worker still holds its
/// lease. Returns the event ids of the jobs moved on.
///
/// The jobs are locked first, in event id order, by the `IN` subquery (its
/// rows are sorted before they are locked, and the update only touches rows
/// it returned), so that the lock order holds whatever plan runs the update.
async fn record_attempts(tx: &mut Tx<'_>, attempts: &[&Attempt]) -> Result<HashSet<String>> {
    if attempts.is_empty() {
        return Ok(HashSet::new());
    }
    let event_ids = column(attempts, |a| a.event_id.as_str());
    let errors = column(attempts, |a| a.error.as_deref());
    let finished = column(attempts, |a| a.finished_at);
    sqlx::query(
        "INSERT INTO job_attempts (event_id, attempt, started_at, finished_at, outcome,
             status_code, error)
         SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::timestamptz[], $4::timestamptz[],
                              $5::text[], $6::bigint[], $7::text[])",
    )
    .bind(&event_ids)
    .bind(column(attempts, |a| a.attempt))
    .bind(column(attempts, |a| a.started_at))
    .bind(&finished)
    .bind(column(attempts, |a| a.outcome.as_str()))
    .bind(column(attempts, |a| a.status_code.map(i64::from)))
    .bind(&errors)
    .execute(&mut **tx)
    .await?;
    let (statuses, next_runs): (Vec<&str>, Vec<Option<DateTime<Utc>>>) = attempts
        .iter()
        .map(|a| match &a.outcome {
            JobOutcome::Success => ("done", None),
            JobOutcome::Retry { at } => ("pending", Some(*at)),
            JobOutcome::Dead => ("dead", None),
        })
        .unzip();
    let moved: Vec<String> = sqlx::query_scalar(
        "UPDATE jobs j SET status = a.status, next_run_at = COALESCE(a.next_run_at, j.next_run_at),
             lease_owner = NULL, lease_until = NULL, last_error = a.error,
             updated_at = a.finished_at
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[],
                     $6::timestamptz[])
             AS a(event_id, owner, status, next_run_at, error, finished_at)
         WHERE j.event_id = a.event_id AND j.lease_owner = a.owner AND j.status = 'running'
           AND j.id IN (
               SELECT l.id FROM jobs l
               JOIN UNNEST($1::text[]) WITH ORDINALITY AS k(event_id, ord) USING (event_id)
               ORDER BY k.ord FOR NO KEY UPDATE OF l)
         RETURNING j.event_id",
    )
    .bind(&event_ids)
    .bind(column(attempts, |a| a.owner.as_str()))
    .bind(statuses)
    .bind(next_runs)
    .bind(&errors)
    .bind(&finished)
    .fetch_all(&mut **tx)
    .await?;
    Ok(moved.into_iter().collect())
}

/// Each held attempt's event processing state; returns each event's order.
/// Locked in event id order, as in [`record_attempts`].
async fn settle_events(
    tx: &mut Tx<'_>,
    attempts: &[&Attempt],
) -> Result<HashMap<String, Option<String>>> {
    if attempts.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, Option<String>)> = sqlx::query_as(
        "UPDATE webhook_events e SET processed = a.processed, success = a.success,
             error_message = a.error
         FROM UNNEST($1::text[], $2::boolean[], $3::boolean[], $4::text[])
             AS a(event_id, processed, success, error)
         WHERE e.event_id = a.event_id
           AND e.id IN (
               SELECT l.id FROM webhook_events l
               JOIN UNNEST($1::text[]) WITH ORDINALITY AS k(event_id, ord) USING (event_id)
               ORDER BY k.ord FOR NO KEY UPDATE OF l)
         RETURNING e.event_id, e.order_id",
    )
    .bind(column(attempts, |a| a.event_id.as_str()))
    .bind(column(attempts, |a| {
        !matches!(a.outcome, JobOutcome::Retry { .. })
    }))
    .bind(column(attempts, |a| a.outcome == JobOutcome::Success))
    .bind(column(attempts, |a| a.error.as_deref()))
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().collect())
}

/// An order is processed when none of its events' jobs is left undone.
///
/// Two instances finishing two jobs of one order at once would each see the
/// other's job as undone if they judged from the same moment. Locking the
/// order rows first (in order id order) makes the second wait for the first
/// to commit; its next statement then sees that commit (READ COMMITTED takes
/// a new snapshot per statement), so the last one to finish sets the final
/// answer. That is why the lock and the update are two statements.
async fn settle_orders(
    tx: &mut Tx<'_>,
    orders: &BTreeMap<String, Option<&str>>,
    now: DateTime<Utc>,
) -> Result<()> {
    if orders.is_empty() {
        return Ok(());
    }
    let order_ids: Vec<&str> = orders.keys().map(String::as_str).collect();
    lock_rows(
        tx,
        "SELECT FROM tiktok_orders WHERE order_id = ANY($1::text[])
         ORDER BY order_id COLLATE \"C\" FOR NO KEY UPDATE",
        &order_ids,
    )
    .await?;
    sqlx::query(
        "UPDATE tiktok_orders o SET
             processed = NOT EXISTS (
                 SELECT 1 FROM webhook_events e JOIN jobs j ON j.event_id = e.event_id
                 WHERE e.order_id = o.order_id AND j.status != 'done'),
             error_message = a.error, updated_at = $3
         FROM UNNEST($1::text[], $2::text[]) AS a(order_id, error)
         WHERE o.order_id = a.order_id",
    )
    .bind(&order_ids)
    .bind(orders.values().copied().collect::<Vec<_>>())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
