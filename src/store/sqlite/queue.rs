//! SQLite's side of the processing queue: claim with a lease, record an
//! attempt, give leases back, retry by hand.
//!
//! SQLite has one writer at a time, so a claim (one UPDATE … RETURNING on
//! the writer connection) can never hand one job to two workers; an expired
//! lease makes a `running` job claimable again.

use chrono::{DateTime, Utc};
use rusqlite::{params, Transaction};
use sqlx::Row;

use super::SqliteStore;
use crate::store::{
    time::{from_text, to_text},
    Attempt, AttemptRecord, ClaimedJob, JobOutcome, QueueDepth, Result,
};

impl SqliteStore {
    pub async fn claim_jobs(
        &self,
        owner: &str,
        limit: i64,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
        expired: bool,
    ) -> Result<Vec<ClaimedJob>> {
        let (owner, now, lease_until) = (owner.to_owned(), to_text(now), to_text(lease_until));
        self.write_background(move |tx| {
            // Expired leases first (older work) when asked for, then due
            // jobs in due order. Two statements, each an index range that
            // stops at the limit: one `WHERE … OR …` made SQLite collect and
            // sort every due job, which during a burst is thousands, for
            // every claim.
            let mut claimed = match expired {
                true => claim(
                    tx,
                    "status = 'running' AND lease_until < ?3",
                    (&owner, &lease_until, &now, limit),
                )?,
                false => Vec::new(),
            };
            let left = limit - claimed.len() as i64;
            if left > 0 {
                claimed.extend(claim(
                    tx,
                    "status = 'pending' AND next_run_at <= ?3",
                    (&owner, &lease_until, &now, left),
                )?);
            }
            let mut body =
                tx.prepare_cached("SELECT payload FROM webhook_events WHERE event_id = ?1")?;
            claimed
                .into_iter()
                .map(|(event_id, attempt, created_at)| {
                    let raw_body: String = body.query_row(params![event_id], |row| row.get(0))?;
                    Ok(ClaimedJob {
                        attempt,
                        created_at: from_text(&created_at)?,
                        event_id,
                        raw_body,
                    })
                })
                .collect()
        })
        .await
    }

    /// Records the attempts in one transaction (one disk sync for a whole
    /// batch) and, where the worker still holds the lease, each job's new
    /// state and its event's and order's processing state. False for an
    /// attempt whose lease had been lost (another worker took the job over).
    pub async fn finish_jobs(&self, attempts: &[Attempt]) -> Result<Vec<bool>> {
        let attempts = attempts.to_vec();
        self.write_background(move |tx| attempts.iter().map(|a| finish_job(tx, a)).collect())
            .await
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
        let (owner, ids, until) = (owner.to_owned(), event_ids.to_vec(), to_text(until));
        self.write(move |tx| {
            let mut extend = tx.prepare_cached(
                "UPDATE jobs SET lease_until = ?3
                 WHERE event_id = ?1 AND lease_owner = ?2 AND status = 'running'
                   AND attempts = 1",
            )?;
            let mut held = Vec::new();
            for id in &ids {
                if extend.execute(params![id, owner, until])? == 1 {
                    held.push(id.clone());
                }
            }
            Ok(held)
        })
        .await
    }

    /// Gives back every lease `owner` holds (graceful shutdown): the jobs are
    /// due again at once, for this or another instance.
    pub async fn release_jobs(&self, owner: &str, now: DateTime<Utc>) -> Result<u64> {
        let (owner, now) = (owner.to_owned(), to_text(now));
        self.write(move |tx| {
            let released = tx
                .prepare_cached(
                    "UPDATE jobs SET status = 'pending', attempts = MAX(attempts - 1, 0),
                         lease_owner = NULL, lease_until = NULL, next_run_at = ?2, updated_at = ?2
                     WHERE lease_owner = ?1 AND status = 'running'",
                )?
                .execute(params![owner, now])?;
            Ok(released as u64)
        })
        .await
    }

    /// Makes the event's job due now with a fresh budget of attempts (and
    /// creates it if the event never had one). False for an unknown event or
    /// a job that is running right now.
    pub async fn retry_event(&self, event_id: &str, now: DateTime<Utc>) -> Result<bool> {
        let (event_id, now) = (event_id.to_owned(), to_text(now));
        self.write(move |tx| {
            let changed = tx
                .prepare_cached(
                    "INSERT INTO jobs (event_id, next_run_at, created_at, updated_at)
                     SELECT event_id, ?2, ?2, ?2 FROM webhook_events WHERE event_id = ?1
                     ON CONFLICT (event_id) DO UPDATE SET
                         status = 'pending', attempts = 0, next_run_at = excluded.next_run_at,
                         created_at = excluded.created_at, lease_owner = NULL,
                         lease_until = NULL, updated_at = excluded.updated_at
                     WHERE jobs.status != 'running'",
                )?
                .execute(params![event_id, now])?
                == 1;
            if changed {
                tx.prepare_cached(
                    "UPDATE webhook_events SET processed = 0, success = NULL WHERE event_id = ?1",
                )?
                .execute(params![event_id])?;
                tx.prepare_cached(
                    "UPDATE tiktok_orders SET processed = 0
                     WHERE order_id = (SELECT order_id FROM webhook_events WHERE event_id = ?1)",
                )?
                .execute(params![event_id])?;
            }
            Ok(changed)
        })
        .await
    }

    /// The events of an order whose processing has not succeeded and is not
    /// under way: dead, waiting for a retry, or never queued (malformed).
    pub async fn unfinished_events(&self, order_id: &str) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT e.event_id FROM webhook_events e LEFT JOIN jobs j ON j.event_id = e.event_id
             WHERE e.order_id = ?1
               AND (j.status IN ('dead', 'pending') OR (j.status IS NULL AND e.success = 0))
             ORDER BY e.id",
        )
        .bind(order_id)
        .fetch_all(&self.readers)
        .await?)
    }

    pub async fn job_attempts(&self, event_id: &str) -> Result<Vec<AttemptRecord>> {
        let rows = sqlx::query(
            "SELECT attempt, started_at, finished_at, outcome, status_code, error
             FROM job_attempts WHERE event_id = ?1 ORDER BY id",
        )
        .bind(event_id)
        .fetch_all(&self.readers)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AttemptRecord {
                    attempt: r.try_get("attempt")?,
                    started_at: from_text(r.try_get("started_at")?)?,
                    finished_at: from_text(r.try_get("finished_at")?)?,
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
                  WHERE status = 'pending' AND next_run_at <= ?1) AS oldest_due",
        )
        .bind(to_text(now))
        .fetch_one(&self.readers)
        .await?;
        let oldest: Option<String> = row.try_get("oldest_due")?;
        let lag = match oldest {
            Some(text) => (now - from_text(&text)?).num_milliseconds().max(0) as f64 / 1000.0,
            None => 0.0,
        };
        Ok(QueueDepth {
            pending: row.try_get("pending")?,
            running: row.try_get("running")?,
            dead: row.try_get("dead")?,
            lag_seconds: lag,
        })
    }
}

/// Leases up to `limit` jobs matching `condition` (over `?3`, the time now)
/// to `owner` until `lease_until`; each job's event id, attempt number and
/// creation time.
fn claim(
    tx: &Transaction<'_>,
    condition: &str,
    (owner, lease_until, now, limit): (&str, &str, &str, i64),
) -> Result<Vec<(String, i64, String)>> {
    let sql = format!(
        "UPDATE jobs SET status = 'running', attempts = attempts + 1,
             lease_owner = ?1, lease_until = ?2, updated_at = ?3
         WHERE id IN (SELECT id FROM jobs WHERE {condition} ORDER BY next_run_at LIMIT ?4)
         RETURNING event_id, attempts, created_at"
    );
    let rows = tx
        .prepare_cached(&sql)?
        .query_map(params![owner, lease_until, now, limit], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

fn finish_job(tx: &Transaction<'_>, attempt: &Attempt) -> Result<bool> {
    let now = to_text(attempt.finished_at);
    let (status, next_run_at) = match &attempt.outcome {
        JobOutcome::Success => ("done", None),
        JobOutcome::Retry { at } => ("pending", Some(to_text(*at))),
        JobOutcome::Dead => ("dead", None),
    };
    tx.prepare_cached(
        "INSERT INTO job_attempts (event_id, attempt, started_at, finished_at, outcome,
             status_code, error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        attempt.event_id,
        attempt.attempt,
        to_text(attempt.started_at),
        now,
        attempt.outcome.as_str(),
        attempt.status_code.map(i64::from),
        attempt.error,
    ])?;
    let held =
        tx.prepare_cached(
            "UPDATE jobs SET status = ?1, next_run_at = COALESCE(?2, next_run_at),
                 lease_owner = NULL, lease_until = NULL, last_error = ?3, updated_at = ?4
             WHERE event_id = ?5 AND lease_owner = ?6 AND status = 'running'",
        )?
        .execute(params![
            status,
            next_run_at,
            attempt.error,
            now,
            attempt.event_id,
            attempt.owner,
        ])? == 1;
    if held {
        let success = attempt.outcome == JobOutcome::Success;
        tx.prepare_cached(
            "UPDATE webhook_events SET processed = ?1, success = ?2, error_message = ?3
             WHERE event_id = ?4",
        )?
        .execute(params![
            status != "pending",
            success,
            attempt.error,
            attempt.event_id
        ])?;
        // An order is processed when none of its events' jobs is left
        // undone.
        tx.prepare_cached(
            "UPDATE tiktok_orders SET
                 processed = NOT EXISTS (
                     SELECT 1 FROM webhook_events e JOIN jobs j ON j.event_id = e.event_id
                     WHERE e.order_id = tiktok_orders.order_id AND j.status != 'done'),
                 error_message = ?1, updated_at = ?2
             WHERE order_id = (SELECT order_id FROM webhook_events WHERE event_id = ?3)",
        )?
        .execute(params![attempt.error, now, attempt.event_id])?;
    }
    Ok(held)
}
