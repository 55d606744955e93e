//! The embedded SQLite backend.
//!
//! WAL with `synchronous=FULL`: a commit is on disk when it returns. One
//! writer connection (SQLite serialises writers anyway, and one connection
//! makes batching natural) and a small pool of readers.

use std::{
    path::{Path, PathBuf},
    str::FromStr,
    sync::Arc,
    time::Duration,
};

use chrono::Utc;
use sqlx::{
    sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
    },
    Connection, Pool, Row, Sqlite,
};

use super::{
    raw_json,
    time::{from_text, to_text},
    Committed, EventFilter, EventRecord, HistoryEntry, Lease, OrderRecord, OrderStat, Page, Result,
    StoreError, WebhookStat,
};
use crate::tiktok::Event;
use checkpoint::Checkpointer;
use thread::{Priority, WriterThread};

mod checkpoint;
mod detail;
mod queue;
mod thread;
mod write;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

#[derive(Clone, Debug)]
pub struct SqliteStore {
    writer: Arc<WriterThread>,
    readers: Pool<Sqlite>,
    /// For migrations. Behind an `Arc`: the store is cloned per request.
    options: Arc<SqliteConnectOptions>,
    file: Arc<DatabaseFile>,
    checkpointer: Arc<Checkpointer>,
}

/// The database file as opened. SQLite keeps writing to a file that was
/// deleted or replaced under it, and everything written then is lost at the
/// next start; checking the path still names the same file catches that.
#[derive(Debug)]
struct DatabaseFile {
    path: PathBuf,
    identity: Option<(u64, u64)>,
}

impl DatabaseFile {
    fn identity(path: &Path) -> Option<(u64, u64)> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
        }
        #[cfg(not(unix))]
        {
            std::fs::metadata(path).ok().map(|_| (0, 0))
        }
    }

    fn check(&self) -> Result<()> {
        if Self::identity(&self.path) == self.identity {
            Ok(())
        } else {
            Err(StoreError::Unavailable(
                format!(
                    "{} was deleted or replaced while open; restart to reopen it",
                    self.path.display()
                )
                .into(),
            ))
        }
    }
}

impl SqliteStore {
    pub async fn open(path: &Path, readers: u32) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::BadUrl(format!("cannot create the folder {}: {e}", dir.display()))
            })?;
        }
        // The writer's connection creates the file; its identity is taken
        // once it exists.
        let connection = {
            let path = path.to_path_buf();
            tokio::task::spawn_blocking(move || thread::open(&path))
                .await
                .map_err(|e| StoreError::Unavailable(e.into()))??
        };
        let file = Arc::new(DatabaseFile {
            path: path.to_path_buf(),
            identity: DatabaseFile::identity(path),
        });
        let writer = WriterThread::start(path, file.clone(), connection)?;
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let readers = SqlitePoolOptions::new()
            .max_connections(readers.max(1))
            .acquire_timeout(Duration::from_secs(3))
            .connect_with(options.clone().read_only(true))
            .await?;
        let checkpointer =
            Checkpointer::start(path).map_err(|e| StoreError::Unavailable(e.into()))?;
        Ok(Self {
            writer: Arc::new(writer),
            readers,
            options: Arc::new(options),
            file,
            checkpointer: Arc::new(checkpointer),
        })
    }

    /// Runs `work` in a transaction on the writer connection; see
    /// [`WriterThread::write`].
    async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: Fn(&rusqlite::Transaction<'_>) -> Result<T> + Send + 'static,
    {
        self.writer.write(Priority::Now, work).await
    }

    /// As [`SqliteStore::write`], for the processing queue's bookkeeping,
    /// which gives way to intake during bursts.
    async fn write_background<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: Fn(&rusqlite::Transaction<'_>) -> Result<T> + Send + 'static,
    {
        self.writer.write(Priority::Background, work).await
    }

    /// Migrations run through sqlx's migrator on a connection of their own.
    pub async fn migrate(&self) -> Result<()> {
        let mut connection = sqlx::SqliteConnection::connect_with(self.options.as_ref()).await?;
        let outcome = MIGRATOR.run(&mut connection).await;
        let _ = sqlx::Connection::close(connection).await;
        outcome?;
        Ok(())
    }

    pub fn pool_use(&self) -> Vec<super::PoolUse> {
        let writer_open = u32::from(self.writer.is_open());
        vec![
            super::PoolUse {
                pool: "writer",
                open: writer_open,
                idle: writer_open as usize,
                max: 1,
            },
            super::PoolUse::of("readers", &self.readers),
        ]
    }

    pub async fn close(&self) {
        self.checkpointer.stop();
        self.readers.close().await;
        self.writer.close().await;
    }

    /// Readable, the same file as opened, and the last write succeeded.
    pub async fn ping(&self) -> Result<()> {
        self.file.check()?;
        if self.writer.is_failing() {
            return Err(StoreError::Unavailable("the last write failed".into()));
        }
        sqlx::query("SELECT 1").execute(&self.readers).await?;
        Ok(())
    }

    /// Stores the batch in one transaction. The events are copied for the
    /// writer thread (the copies share the bodies' bytes).
    pub async fn commit(&self, events: &[Event], lease: Option<&Lease>) -> Result<Vec<Committed>> {
        let events = events.to_vec();
        let lease = lease.map(|l| (l.owner.clone(), to_text(l.until)));
        self.write(move |tx| {
            let now = to_text(Utc::now());
            let lease = lease
                .as_ref()
                .map(|(owner, until)| (owner.as_str(), until.as_str()));
            let mut batch = write::Batch::new(tx, &now, lease);
            let outcomes = events
                .iter()
                .map(|event| batch.store_event(event))
                .collect::<Result<Vec<_>>>()?;
            batch.finish()?;
            Ok(outcomes)
        })
        .await
    }

    pub async fn order(&self, order_id: &str) -> Result<Option<OrderRecord>> {
        let row = sqlx::query(&format!("{ORDER_COLUMNS} WHERE order_id = ?1"))
            .bind(order_id)
            .fetch_optional(&self.readers)
            .await?;
        row.map(|r| order_record(&r)).transpose()
    }

    pub async fn order_history(&self, order_id: &str) -> Result<Vec<HistoryEntry>> {
        let rows = sqlx::query(
            "SELECT order_status, update_time, event_id, received_at FROM order_status_history
             WHERE order_id = ?1 ORDER BY update_time IS NULL, update_time, id",
        )
        .bind(order_id)
        .fetch_all(&self.readers)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(HistoryEntry {
                    order_status: r.try_get("order_status")?,
                    update_time: r.try_get("update_time")?,
                    event_id: r.try_get("event_id")?,
                    received_at: from_text(r.try_get("received_at")?)?,
                })
            })
            .collect()
    }

    pub async fn shop_orders(&self, shop_id: &str, page: Page) -> Result<Vec<OrderRecord>> {
        let rows = sqlx::query(&format!(
            "{ORDER_COLUMNS} WHERE shop_id = ?1
             ORDER BY update_time IS NULL, update_time DESC, id DESC LIMIT ?2 OFFSET ?3"
        ))
        .bind(shop_id)
        .bind(page.limit)
        .bind(page.offset)
        .fetch_all(&self.readers)
        .await?;
        rows.iter().map(order_record).collect()
    }

    pub async fn unprocessed_orders(&self, limit: i64) -> Result<Vec<OrderRecord>> {
        let rows = sqlx::query(&format!(
            "{ORDER_COLUMNS} WHERE processed = 0 ORDER BY created_at, id LIMIT ?1"
        ))
        .bind(limit)
        .fetch_all(&self.readers)
        .await?;
        rows.iter().map(order_record).collect()
    }

    pub async fn webhook_stats(&self, shop_id: Option<&str>) -> Result<Vec<WebhookStat>> {
        let rows = sqlx::query(
            "SELECT event_type, COUNT(*) AS total,
                    COALESCE(SUM(CASE WHEN success = 1 THEN 1 ELSE 0 END), 0) AS successful,
                    COALESCE(SUM(CASE WHEN processed = 1 AND success = 0 THEN 1 ELSE 0 END), 0) AS failed,
                    MAX(last_received_at) AS last_received
             FROM webhook_events WHERE ?1 IS NULL OR shop_id = ?1
             GROUP BY event_type ORDER BY event_type",
        )
        .bind(shop_id)
        .fetch_all(&self.readers)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(WebhookStat {
                    event_type: r.try_get("event_type")?,
                    total: r.try_get("total")?,
                    successful: r.try_get("successful")?,
                    failed: r.try_get("failed")?,
                    last_received: from_text(r.try_get("last_received")?)?,
                })
            })
            .collect()
    }

    pub async fn order_stats(&self) -> Result<Vec<OrderStat>> {
        let rows = sqlx::query(
            "SELECT shop_id, order_status, count FROM order_statistics
             ORDER BY shop_id, order_status",
        )
        .fetch_all(&self.readers)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(OrderStat {
                    shop_id: r.try_get("shop_id")?,
                    order_status: r.try_get("order_status")?,
                    count: r.try_get("count")?,
                })
            })
            .collect()
    }

    pub async fn events(&self, filter: &EventFilter) -> Result<Vec<EventRecord>> {
        let rows = sqlx::query(&format!(
            "{}
             WHERE (?1 IS NULL OR e.shop_id = ?1) AND (?2 IS NULL OR e.type = ?2)
               AND (?3 IS NULL OR e.id < (SELECT id FROM webhook_events WHERE event_id = ?3))
               AND (?5 IS NULL OR j.status = ?5)
             ORDER BY e.id DESC LIMIT ?4",
            EVENT_COLUMNS.replace("{body}", "NULL")
        ))
        .bind(filter.shop_id.as_deref())
        .bind(filter.type_code)
        .bind(filter.before.as_deref())
        .bind(filter.limit)
        .bind(filter.status.as_deref())
        .fetch_all(&self.readers)
        .await?;
        rows.iter().map(event_record).collect()
    }

    pub async fn event(&self, event_id: &str) -> Result<Option<EventRecord>> {
        let row = sqlx::query(&format!(
            "{} WHERE e.event_id = ?1",
            EVENT_COLUMNS.replace("{body}", "e.payload")
        ))
        .bind(event_id)
        .fetch_optional(&self.readers)
        .await?;
        row.map(|r| event_record(&r)).transpose()
    }
}

const ORDER_COLUMNS: &str = "SELECT order_id, shop_id, event_type, order_status, is_on_hold,
    update_time, order_data, last_event_id, address_updated_at, processed, error_message,
    created_at, updated_at FROM tiktok_orders";

fn order_record(r: &SqliteRow) -> Result<OrderRecord> {
    let order_data: Option<String> = r.try_get("order_data")?;
    Ok(OrderRecord {
        order_id: r.try_get("order_id")?,
        shop_id: r.try_get("shop_id")?,
        event_type: r.try_get("event_type")?,
        order_status: r.try_get("order_status")?,
        is_on_hold_order: r.try_get("is_on_hold")?,
        update_time: r.try_get("update_time")?,
        order_data: order_data.map(raw_json).transpose()?,
        last_event_id: r.try_get("last_event_id")?,
        address_updated_at: r.try_get("address_updated_at")?,
        processed: r.try_get("processed")?,
        error_message: r.try_get("error_message")?,
        created_at: from_text(r.try_get("created_at")?)?,
        updated_at: from_text(r.try_get("updated_at")?)?,
    })
}

/// An event's columns; `{body}` is `e.payload` for one event, NULL in lists.
const EVENT_COLUMNS: &str = "SELECT e.event_id, e.type, e.event_type, e.shop_id, e.order_id,
    e.timestamp, e.received_at, e.last_received_at, e.deliveries, e.processed, e.success,
    e.error_message, {body} AS payload, j.status AS job_status,
    COALESCE(j.attempts, 0) AS attempts
    FROM webhook_events e LEFT JOIN jobs j ON j.event_id = e.event_id";

fn event_record(r: &SqliteRow) -> Result<EventRecord> {
    let raw_body: Option<String> = r.try_get("payload")?;
    Ok(EventRecord {
        event_id: r.try_get("event_id")?,
        type_code: r.try_get("type")?,
        event_type: r.try_get("event_type")?,
        shop_id: r.try_get("shop_id")?,
        order_id: r.try_get("order_id")?,
        timestamp: r.try_get("timestamp")?,
        received_at: from_text(r.try_get("received_at")?)?,
        last_received_at: from_text(r.try_get("last_received_at")?)?,
        deliveries: r.try_get("deliveries")?,
        processed: r.try_get("processed")?,
        success: r.try_get("success")?,
        error_message: r.try_get("error_message")?,
        status: r.try_get("job_status")?,
        attempts: r.try_get("attempts")?,
        payload: raw_body.clone().map(raw_json).transpose()?,
        raw_body,
    })
}

/// SQLite's result codes that mean the file cannot be written right now
/// (busy, locked, out of memory, read-only, I/O error, disk full, cannot open,
/// lock protocol), rather than that a statement is wrong. sqlx reports the
/// extended code; its low byte is the primary one.
pub(super) fn is_unavailable_code(code: Option<&str>) -> bool {
    let primary = code.and_then(|c| c.parse::<i32>().ok()).map(|c| c & 0xff);
    matches!(primary, Some(5 | 6 | 7 | 8 | 10 | 13 | 14 | 15))
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::store::ShopRecord;
    use crate::tiktok::VerifiedBody;

    fn event(id: u32, pad: usize) -> Event {
        let body = format!(
            r#"{{"type":1,"tts_notification_id":"{id}","shop_id":"1","timestamp":1,"data":{{"order_id":"9{id}","order_status":"UNPAID","update_time":1,"pad":"{}"}}}}"#,
            "x".repeat(pad)
        );
        Event::parse(VerifiedBody::from_storage(Bytes::from(body))).unwrap()
    }

    /// A migrated store in a file of `dir`.
    async fn migrated(dir: &Path) -> SqliteStore {
        let store = SqliteStore::open(&dir.join("db.sqlite"), 2).await.unwrap();
        store.migrate().await.unwrap();
        store
    }

    fn shop_event(id: u32, type_code: u8, timestamp: i64) -> Event {
        let data = if type_code == 6 {
            r#"{"seller_id":"1"}"#.to_owned()
        } else {
            format!(r#"{{"order_id":"9{id}","order_status":"UNPAID","update_time":{timestamp}}}"#)
        };
        let body = format!(
            r#"{{"type":{type_code},"tts_notification_id":"{id}","shop_id":"77","timestamp":{timestamp},"data":{data}}}"#
        );
        Event::parse(VerifiedBody::from_storage(Bytes::from(body))).unwrap()
    }

    /// The batch writes each shop's activity once (`write::Batch`); the
    /// shop must end as if the events had been committed one at a time.
    #[tokio::test]
    async fn a_batch_leaves_the_shop_as_one_event_at_a_time_would() {
        let events = [
            shop_event(1, 1, 300),
            shop_event(2, 6, 250),
            shop_event(3, 1, 100),
            shop_event(1, 1, 300),
            shop_event(4, 1, 200),
        ];
        let dir = tempfile::tempdir().unwrap();
        let mut shops = Vec::new();
        for batched in [true, false] {
            let store = SqliteStore::open(&dir.path().join(format!("{batched}.db")), 2)
                .await
                .unwrap();
            store.migrate().await.unwrap();
            if batched {
                let outcomes = store.commit(&events, None).await.unwrap();
                assert!(outcomes[3].duplicate, "the second copy in one batch");
            } else {
                for event in &events {
                    store
                        .commit(std::slice::from_ref(event), None)
                        .await
                        .unwrap();
                }
            }
            shops.push(store.shop("77").await.unwrap().expect("the shop row"));
        }
        // Everything but the row's own times.
        let value = |shop: &ShopRecord| {
            let mut value = serde_json::to_value(shop).unwrap();
            let fields = value.as_object_mut().unwrap();
            fields.remove("created_at");
            fields.remove("updated_at");
            value
        };
        assert_eq!(value(&shops[0]), value(&shops[1]));
        assert!(shops[0].authorized, "activity at 300 is newer than 250");
        assert_eq!(shops[0].deauthorized_at, Some(250));
    }

    /// A write alone in its round runs without a savepoint: refused, it
    /// takes its whole transaction back, and the store carries on.
    #[tokio::test]
    async fn a_refused_write_alone_leaves_nothing_and_the_store_carries_on() {
        let dir = tempfile::tempdir().unwrap();
        let store = migrated(dir.path()).await;
        store
            .write(|tx| Ok(tx.execute_batch("CREATE TABLE t (v INTEGER)")?))
            .await
            .unwrap();
        let refused = store
            .write(|tx| {
                tx.execute("INSERT INTO t VALUES (1)", [])?;
                Err::<(), _>(StoreError::Refused("refused on purpose".into()))
            })
            .await;
        assert!(
            matches!(refused, Err(StoreError::Refused(_))),
            "{refused:?}"
        );
        let rows: i64 = store
            .write(|tx| Ok(tx.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(rows, 0, "the refused write's insert was rolled back");
        store.ping().await.unwrap();
        store.commit(&[event(5, 10)], None).await.unwrap();
        assert!(store.event("5").await.unwrap().is_some());
    }

    /// Writes that wait together share one transaction, straight in it;
    /// when one of them is refused, the round runs again with each write in
    /// a savepoint: the refused one is rolled back alone and the others are
    /// stored once, not twice.
    #[tokio::test]
    async fn a_refused_write_among_others_is_rolled_back_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = migrated(dir.path()).await;
        store
            .write(|tx| Ok(tx.execute_batch("CREATE TABLE t (v INTEGER)")?))
            .await
            .unwrap();
        let insert = |v: i64| {
            move |tx: &rusqlite::Transaction<'_>| {
                tx.execute("INSERT INTO t VALUES (?1)", [v])?;
                Ok(v)
            }
        };
        // The first write holds the thread while the others queue behind
        // it, so that they make one round.
        let (busy, a, refused, c) = tokio::join!(
            store.write(|_| {
                std::thread::sleep(std::time::Duration::from_millis(300));
                Ok(0)
            }),
            store.write(insert(1)),
            store.write(|tx| {
                tx.execute("INSERT INTO t VALUES (2)", [])?;
                Err::<i64, _>(StoreError::Refused("refused on purpose".into()))
            }),
            store.write(insert(3)),
        );
        assert_eq!((busy.unwrap(), a.unwrap(), c.unwrap()), (0, 1, 3));
        assert!(
            matches!(refused, Err(StoreError::Refused(_))),
            "{refused:?}"
        );
        let rows: Vec<i64> = store
            .write(|tx| {
                let mut rows = tx.prepare("SELECT v FROM t ORDER BY v")?;
                let rows = rows.query_map([], |r| r.get(0))?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .await
            .unwrap();
        assert_eq!(rows, vec![1, 3]);
    }

    #[tokio::test]
    async fn a_failed_commit_leaves_no_open_transaction_behind() {
        let dir = tempfile::tempdir().unwrap();
        let store = migrated(dir.path()).await;
        store
            .write(|tx| {
                tx.execute_batch(
                    "CREATE TABLE parent (id INTEGER PRIMARY KEY);
                     CREATE TABLE child (pid INTEGER REFERENCES parent (id)
                         DEFERRABLE INITIALLY DEFERRED);",
                )?;
                Ok(())
            })
            .await
            .unwrap();
        // A deferred constraint fails at COMMIT, and SQLite then keeps the
        // transaction open, as it may after a full disk.
        let failed = store
            .write(|tx| {
                tx.execute("INSERT INTO child VALUES (42)", [])?;
                Ok(())
            })
            .await;
        assert!(failed.is_err());

        store.commit(&[event(4, 10)], None).await.unwrap();
        assert!(
            store.event("4").await.unwrap().is_some(),
            "a later commit is really committed, not nested in the failed one"
        );
    }

    #[tokio::test]
    async fn after_a_failed_write_the_next_commit_is_durable_and_visible() {
        let dir = tempfile::tempdir().unwrap();
        let store = migrated(dir.path()).await;
        // A size cap on the writer connection stands in for a full disk.
        store
            .writer
            .with_connection(|c| {
                let pages: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0))?;
                c.query_row(
                    &format!("PRAGMA max_page_count = {}", pages + 2),
                    [],
                    |_| Ok(()),
                )?;
                Ok(())
            })
            .await
            .unwrap();
        assert!(store.commit(&[event(1, 200_000)], None).await.is_err());
        assert!(
            store.ping().await.is_err(),
            "health reports the failed write"
        );

        // The connection that failed was replaced: no cap, no open
        // transaction left behind, and the commit really commits.
        let stored = store.commit(&[event(2, 10)], None).await.unwrap();
        assert!(!stored[0].duplicate);
        assert!(store.event("2").await.unwrap().is_some(), "readers see it");
        assert!(store.event("1").await.unwrap().is_none());
        store.ping().await.unwrap();
    }

    #[tokio::test]
    async fn a_deleted_database_file_refuses_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let store = SqliteStore::open(&path, 2).await.unwrap();
        store.migrate().await.unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(store.commit(&[event(3, 10)], None).await.is_err());
        assert!(store.ping().await.is_err());
    }
}
