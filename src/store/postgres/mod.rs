//! The PostgreSQL backend, for production and for several instances sharing
//! one database.
//!
//! Two pools: [`WRITER_CONNECTIONS`] for the intake writer (one batch each;
//! it must never wait behind a slow read) and `DB_POOL_SIZE` for everything
//! else: reads and the processing queue. Both wait at most `DB_ACQUIRE_TIMEOUT` for a connection, so that a database that is
//! down turns into quick 503s; a connection found broken is replaced on the
//! next use, so the service recovers by itself when the database returns.
//! Everything that decides between instances (dedupe, newest-wins) is done by
//! the database in single statements; see `write.rs` and `project.rs`.

mod detail;
mod health;
mod one_statement;
mod product;
mod project;
mod queue;
mod read;
#[cfg(test)]
mod tests;
mod write;

use std::{
    str::FromStr,
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::{is_unavailable, Committed, Lease, Result, StoreError};
use crate::{config::PoolSettings, tiktok::Event};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Intake batches under way at once, each on its own connection: while one
/// commits, the next is already on its way. Batches in flight together take
/// their row locks in the global order of `write.rs`, as batches of several
/// instances do. Two measured best on two cores (9,800 events/s of intake
/// alone, against 9,500 with one and 7,800 with six).
pub(super) const WRITER_CONNECTIONS: u32 = 2;

/// How long start-up waits for a database that is not accepting connections
/// yet (a container started alongside this one). An error that is not about
/// reaching the server, such as a wrong password, ends start-up at once.
const STARTUP_PATIENCE: Duration = Duration::from_secs(30);

#[derive(Clone, Debug)]
pub struct PgStore {
    writer: PgPool,
    pool: PgPool,
    /// Whether intake's commits succeed (see `health.rs`).
    write_health: Arc<health::WriteHealth>,
}

impl PgStore {
    pub async fn open(url: &SecretString, pool: PoolSettings) -> Result<Self> {
        // The parse error never holds the URL, which may carry a password.
        let options = PgConnectOptions::from_str(url.expose_secret())
            .map_err(|e| StoreError::BadUrl(e.to_string()))?
            .application_name("tiktok-webhook");
        let pool_options = || PgPoolOptions::new().acquire_timeout(pool.acquire_timeout);
        // Intake's statements are the same inserts whatever the tables hold:
        // their generic plans are right, and planning them for every batch
        // cost a tenth of intake's speed.
        let writer = pool_options()
            .max_connections(WRITER_CONNECTIONS)
            .connect_lazy_with(options.clone());
        // The queue's and the reads' statements are planned for their own
        // parameters. A prepared statement's generic plan is made once, often
        // while the tables are still small (a fresh database at the start of
        // a burst), and kept until the next ANALYZE: sequential scans of jobs
        // and events that had grown to thousands of rows cost the queue 4-6
        // ms per statement. Planning costs tens of µs.
        let pool = pool_options()
            .max_connections(pool.size.max(1))
            .connect_lazy_with(options.options([("plan_cache_mode", "force_custom_plan")]));
        let store = Self {
            writer,
            pool,
            write_health: Arc::default(),
        };
        store.wait_for_server().await?;
        Ok(store)
    }

    async fn wait_for_server(&self) -> Result<()> {
        let deadline = Instant::now() + STARTUP_PATIENCE;
        loop {
            match sqlx::query("SELECT 1").execute(&self.writer).await {
                Ok(_) => return Ok(()),
                Err(e) if is_unavailable(&e) && Instant::now() < deadline => {
                    tracing::warn!(error = %e, "PostgreSQL not reachable yet; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Several instances may start at once: sqlx holds an advisory lock
    /// while it migrates, so one of them does the work and the others wait.
    pub async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.writer).await?;
        Ok(())
    }

    /// The intake writer's pool, and the one shared by reads and the queue.
    pub fn pool_use(&self) -> Vec<super::PoolUse> {
        vec![
            super::PoolUse::of("writer", &self.writer),
            super::PoolUse::of("shared", &self.pool),
        ]
    }

    pub async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }

    /// The server answers, and intake can store (see `health.rs`): after a
    /// commit failed for want of the database, health fails while intake
    /// has traffic and its commits keep failing, and once it is idle, until
    /// a test commit on its connections succeeds.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        let failing = |detail: &str| {
            Err(StoreError::Unavailable(
                format!("the last write failed{detail}").into(),
            ))
        };
        match self.write_health.check() {
            health::Verdict::Healthy => Ok(()),
            health::Verdict::Failing => failing(""),
            health::Verdict::Probe { seen } => {
                let Ok(_probing) = self.write_health.probing.try_lock() else {
                    return failing("; a test commit is under way");
                };
                match tokio::time::timeout(health::PROBE_TIMEOUT, self.probe_commit()).await {
                    Ok(Ok(())) => {
                        self.write_health.probed(seen);
                        Ok(())
                    }
                    Ok(Err(e)) => failing(&format!(", and so does a test commit: {e}")),
                    Err(_) => failing(", and a test commit did not end in time"),
                }
            }
        }
    }

    /// A transaction that must write: it takes a transaction id (so its
    /// COMMIT writes and syncs WAL) and runs an UPDATE, which a read-only
    /// database refuses; it changes no row, and gives up rather than wait
    /// long for a lock.
    async fn probe_commit(&self) -> std::result::Result<(), sqlx::Error> {
        let mut tx = self.writer.begin().await?;
        sqlx::query("SET LOCAL lock_timeout = '1s'")
            .execute(&mut *tx)
            .await?;
        sqlx::query("SELECT txid_current()")
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE shops SET shop_id = shop_id WHERE false")
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    /// Commits the batch; runs it again when PostgreSQL ended it to break a
    /// deadlock (see `project.rs` for the lock order and what it leaves
    /// open) or a serialization failure. Either rolls the whole transaction
    /// back and is gone once the other transaction has finished, so the
    /// batch goes in whole rather than falling back to the writer's one by
    /// one, which would cost its events their group commit.
    pub async fn commit(&self, events: &[Event], lease: Option<&Lease>) -> Result<Vec<Committed>> {
        let mut attempt = 1;
        let result = loop {
            match self.commit_once(events, lease).await {
                Err(StoreError::Refused(e)) if attempt < COMMIT_ATTEMPTS && is_conflict(&*e) => {
                    tracing::warn!(error = %e, attempt, batch = events.len(), "batch rolled back; trying again");
                    attempt += 1;
                }
                result => break result,
            }
        };
        self.write_health.committed(
            result.is_ok(),
            result.as_ref().is_err_and(|e| e.is_unavailable()),
        );
        result
    }

    async fn commit_once(&self, events: &[Event], lease: Option<&Lease>) -> Result<Vec<Committed>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.writer.acquire().await?;
        let result = write::commit(&mut conn, events, Utc::now(), lease).await;
        // After a failure the connection is closed, not pooled: whatever
        // state the failure left it in (a broken socket, a transaction still
        // being rolled back) cannot reach the next batch. Opening another
        // costs a few milliseconds, once.
        if result.is_err() {
            let _ = conn.close().await;
        }
        result
    }
}

/// How many times a batch is tried when PostgreSQL ends it for a conflict
/// with another transaction.
pub(super) const COMMIT_ATTEMPTS: u32 = 3;

/// A deadlock (40P01) or serialization failure (40001): the transaction
/// lost a conflict with another one and was rolled back; the same work can
/// simply be done again.
pub(super) fn is_conflict(error: &(dyn std::error::Error + 'static)) -> bool {
    match error.downcast_ref::<sqlx::Error>() {
        Some(sqlx::Error::Database(db)) => {
            matches!(db.code().as_deref(), Some("40P01" | "40001"))
        }
        _ => false,
    }
}

/// SQLSTATE classes that mean the server cannot take work right now rather
/// than that a statement is wrong: 08 connection exception, 53 insufficient
/// resources (too many connections, disk full), 57 operator intervention
/// (shutting down, starting up, statement timeout), 58 system error (I/O);
/// and 25006, a read-only transaction, which is what a standby answers
/// during a failover.
pub(super) fn is_unavailable_code(code: &str) -> bool {
    matches!(code.get(..2), Some("08" | "53" | "57" | "58")) || code == "25006"
}
