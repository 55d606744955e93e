//! The storage seam: the product's verbs, with one backend per database.
//!
//! Everything SQL lives behind this module. The write path takes a *list* of
//! events and commits them in one transaction ([`Store::commit`]); the
//! [`writer`] batches concurrent requests into such lists (group commit).

mod model;
mod postgres;
pub mod projection;
mod sqlite;
mod time;
pub mod writer;

use chrono::{DateTime, Utc};

use crate::{
    config::{DatabaseUrl, PoolSettings},
    tiktok::Event,
};

pub use model::*;
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// Why the store could not do what was asked. Callers answer 503 for
/// `Unavailable`; the cause is logged where it happens, never sent to clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached, is shutting down, or is busy: nothing
    /// was done, and trying again later may work.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] BoxError),
    /// The database answered and refused this statement (a constraint, a
    /// value it cannot hold): other statements may still go through.
    #[error("database refused the statement: {0}")]
    Refused(#[source] BoxError),
    /// The database URL cannot be used; the message never holds the URL.
    #[error("DATABASE_URL is not usable: {0}")]
    BadUrl(String),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is not readable: {0}")]
    Corrupt(String),
}

/// A driver's error, kept as the cause (sqlx for readers and PostgreSQL,
/// rusqlite for SQLite's writer).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if is_unavailable(&e) {
            StoreError::Unavailable(e.into())
        } else {
            StoreError::Refused(e.into())
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        let code = e.sqlite_error().map(|f| f.extended_code.to_string());
        if sqlite::is_unavailable_code(code.as_deref()) {
            StoreError::Unavailable(e.into())
        } else {
            StoreError::Refused(e.into())
        }
    }
}

/// Whether an error says "the database is not there right now" rather than
/// "the database does not accept this". The writer tells them apart: a
/// refusal is worth retrying event by event, an outage is not.
fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => match db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        {
            Some(pg) => postgres::is_unavailable_code(pg.code()),
            None => sqlite::is_unavailable_code(db.code().as_deref()),
        },
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        _ => false,
    }
}

impl StoreError {
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }

    /// The same failure for another caller that shared the transaction:
    /// its kind and message (the cause itself has one owner).
    pub fn shared(&self) -> StoreError {
        let message = self.to_string();
        if self.is_unavailable() {
            StoreError::Unavailable(message.into())
        } else {
            StoreError::Refused(message.into())
        }
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Whether the app is authorized for a shop: yes unless deauthorized, and
/// yes again once an event newer than the deauthorization arrives.
pub fn authorized(last_activity_at: Option<i64>, deauthorized_at: Option<i64>) -> bool {
    match deauthorized_at {
        None => true,
        Some(at) => last_activity_at.is_some_and(|activity| activity > at),
    }
}

/// One connection pool's use, sampled when metrics are scraped.
#[derive(Debug, Clone, Copy)]
pub struct PoolUse {
    pub pool: &'static str,
    pub open: u32,
    pub idle: usize,
    pub max: u32,
}

impl PoolUse {
    fn of<DB: sqlx::Database>(pool: &'static str, connections: &sqlx::Pool<DB>) -> Self {
        Self {
            pool,
            open: connections.size(),
            idle: connections.num_idle(),
            max: connections.options().get_max_connections(),
        }
    }
}

/// One backend per database, chosen by the URL.
#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

/// Dispatches a call to whichever backend this store is.
macro_rules! dispatch {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            Store::Sqlite($store) => $call,
            Store::Postgres($store) => $call,
        }
    };
}

impl Store {
    /// Opens the database (creating an SQLite file and its folder if needed)
    /// and brings the schema up to date.
    pub async fn open(url: &DatabaseUrl, pool: PoolSettings) -> Result<Store> {
        let store = match url {
            DatabaseUrl::Sqlite(path) => Store::Sqlite(SqliteStore::open(path, pool.size).await?),
            DatabaseUrl::Postgres(url) => Store::Postgres(PgStore::open(url, pool).await?),
        };
        store.migrate().await?;
        Ok(store)
    }

    pub async fn migrate(&self) -> Result<()> {
        dispatch!(self, s => s.migrate().await)
    }

    /// Stores a batch of events in one transaction: each event row (or one
    /// more delivery of a known one), its projections, history and job (with
    /// `lease` when given). Returns one outcome per event, in order.
    pub async fn commit(&self, events: &[Event], lease: Option<&Lease>) -> Result<Vec<Committed>> {
        dispatch!(self, s => s.commit(events, lease).await)
    }

    pub async fn ping(&self) -> Result<()> {
        dispatch!(self, s => s.ping().await)
    }

    /// How many group-commit batches the writer may have under way at once.
    /// SQLite's writer thread merges whatever arrives into its next
    /// transaction, so batches can queue there; on PostgreSQL each batch is
    /// a transaction on a connection of its own.
    pub fn batches_in_flight(&self) -> usize {
        match self {
            Store::Sqlite(_) => 4,
            Store::Postgres(_) => postgres::WRITER_CONNECTIONS as usize,
        }
    }

    pub async fn order(&self, order_id: &str) -> Result<Option<OrderRecord>> {
        dispatch!(self, s => s.order(order_id).await)
    }

    /// The order with its packages, cancellations, returns and refunds.
    pub async fn order_detail(&self, order_id: &str) -> Result<Option<OrderDetail>> {
        dispatch!(self, s => s.order_detail(order_id).await)
    }

    pub async fn product(&self, product_id: &str) -> Result<Option<ProductRecord>> {
        dispatch!(self, s => s.product(product_id).await)
    }

    pub async fn shop(&self, shop_id: &str) -> Result<Option<ShopRecord>> {
        dispatch!(self, s => s.shop(shop_id).await)
    }

    pub async fn order_history(&self, order_id: &str) -> Result<Vec<HistoryEntry>> {
        dispatch!(self, s => s.order_history(order_id).await)
    }

    pub async fn shop_orders(&self, shop_id: &str, page: Page) -> Result<Vec<OrderRecord>> {
        dispatch!(self, s => s.shop_orders(shop_id, page).await)
    }

    pub async fn unprocessed_orders(&self, limit: i64) -> Result<Vec<OrderRecord>> {
        dispatch!(self, s => s.unprocessed_orders(limit).await)
    }

    pub async fn webhook_stats(&self, shop_id: Option<&str>) -> Result<Vec<WebhookStat>> {
        dispatch!(self, s => s.webhook_stats(shop_id).await)
    }

    pub async fn order_stats(&self) -> Result<Vec<OrderStat>> {
        dispatch!(self, s => s.order_stats().await)
    }

    pub async fn events(&self, filter: &EventFilter) -> Result<Vec<EventRecord>> {
        dispatch!(self, s => s.events(filter).await)
    }

    pub async fn event(&self, event_id: &str) -> Result<Option<EventRecord>> {
        dispatch!(self, s => s.event(event_id).await)
    }

    /// Each connection pool by name: open connections and how many are idle.
    pub fn pool_use(&self) -> Vec<PoolUse> {
        dispatch!(self, s => s.pool_use())
    }

    /// Leases up to `limit` due jobs to `owner`; with `expired`, jobs whose
    /// lease ran out first.
    pub async fn claim_jobs(
        &self,
        owner: &str,
        limit: i64,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
        expired: bool,
    ) -> Result<Vec<ClaimedJob>> {
        dispatch!(self, s => s.claim_jobs(owner, limit, lease_until, now, expired).await)
    }

    /// Moves the leases `owner` holds on these handed jobs (first attempt)
    /// to `until`; returns the events whose lease it still held.
    pub async fn extend_leases(
        &self,
        owner: &str,
        event_ids: &[String],
        until: DateTime<Utc>,
    ) -> Result<Vec<String>> {
        dispatch!(self, s => s.extend_leases(owner, event_ids, until).await)
    }

    /// Records a worker's attempts in one transaction; for each, false when
    /// the lease had been lost meanwhile (the result is then only logged).
    pub async fn finish_jobs(&self, attempts: &[Attempt]) -> Result<Vec<bool>> {
        dispatch!(self, s => s.finish_jobs(attempts).await)
    }

    pub async fn release_jobs(&self, owner: &str, now: DateTime<Utc>) -> Result<u64> {
        dispatch!(self, s => s.release_jobs(owner, now).await)
    }

    pub async fn retry_event(&self, event_id: &str, now: DateTime<Utc>) -> Result<bool> {
        dispatch!(self, s => s.retry_event(event_id, now).await)
    }

    pub async fn unfinished_events(&self, order_id: &str) -> Result<Vec<String>> {
        dispatch!(self, s => s.unfinished_events(order_id).await)
    }

    pub async fn job_attempts(&self, event_id: &str) -> Result<Vec<AttemptRecord>> {
        dispatch!(self, s => s.job_attempts(event_id).await)
    }

    pub async fn queue_depth(&self, now: DateTime<Utc>) -> Result<QueueDepth> {
        dispatch!(self, s => s.queue_depth(now).await)
    }

    /// Closes the connections (letting SQLite checkpoint its WAL).
    pub async fn close(&self) {
        dispatch!(self, s => s.close().await)
    }
}
