//! The batch write: the dedupe insert as one multi-row statement, then the
//! projections of the new events. A batch of the common shape goes as one
//! statement instead (`one_statement.rs`); this is the general path, which
//! takes any batch.
//!
//! Several instances write to one database at once, so two rules hold:
//!
//! - The database decides. Dedupe is `INSERT … ON CONFLICT (event_id) DO
//!   UPDATE … RETURNING deliveries`; every projection is a conditional upsert
//!   (see `project.rs`). Nothing is read first and written after.
//! - Every transaction takes its row locks in one global order: events by
//!   event id, then each projection table in a fixed sequence, its rows by
//!   key. Two instances writing overlapping batches then wait for each other
//!   instead of deadlocking. The projections go as a few multi-row
//!   statements per table; `project.rs` says how they keep this order and
//!   the one case where they cannot, for which `PgStore::commit` runs a
//!   batch again when PostgreSQL ends it to break a deadlock.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use sqlx::{
    postgres::{PgArguments, PgRow},
    query::Query,
    PgConnection, Postgres, Row, Transaction,
};

use super::{one_statement::OneStatement, project::Plan};
use crate::{
    store::{
        projection::{processing_outcome, writes, Write},
        Committed, Lease, Result, StoreError,
    },
    tiktok::Event,
};

pub(super) type Tx<'c> = Transaction<'c, Postgres>;

/// Commits a batch on `conn`: as one statement when it qualifies (see
/// `one_statement.rs`), else in a transaction of the general path.
pub async fn commit(
    conn: &mut PgConnection,
    events: &[Event],
    now: DateTime<Utc>,
    lease: Option<&Lease>,
) -> Result<Vec<Committed>> {
    if let Some(batch) = OneStatement::of(events) {
        return batch.run(conn, now, lease).await;
    }
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let outcomes = store_events(&mut tx, events, now, lease).await?;
    tx.commit().await?;
    Ok(outcomes)
}

/// Stores a batch: each event once (copies within the batch or already
/// stored only count deliveries), then the projections of the new ones.
/// Returns one outcome per event, in batch order.
pub async fn store_events(
    tx: &mut Tx<'_>,
    events: &[Event],
    now: DateTime<Utc>,
    lease: Option<&Lease>,
) -> Result<Vec<Committed>> {
    let distinct = distinct(events);
    let totals = insert_events(tx, &distinct, now).await?;
    let (outcomes, fresh) = outcomes(events, &distinct, &totals)?;

    // Each new event's projection writes and then, as in SQLite's write
    // path, its order's processing state: waiting for the queue, or failed
    // for good when the event cannot be read (it is never queued). They are
    // grouped by table and row, each row's in batch order, so the outcome is
    // the one of applying the events one after the other; `Plan` sends them
    // as a few multi-row statements in the global lock order.
    // The plan borrows the writes: they live here, one list per event.
    let changes: Vec<Vec<Write<'_>>> = fresh.iter().map(|event| writes(event)).collect();
    let mut plan = Plan::default();
    let mut queued = Vec::new();
    for (event, changes) in fresh.into_iter().zip(&changes) {
        for write in changes {
            plan.add(event, write);
        }
        let (readable, error) = processing_outcome(event);
        if readable {
            queued.push(event.id.as_str());
        }
        if let Some(order_id) = event.order_id() {
            match error {
                _ if readable => plan.unprocessed(event, order_id.as_str(), None),
                Some(reason) => plan.unprocessed(event, order_id.as_str(), Some(reason)),
                None => {}
            }
        }
    }
    plan.apply(tx, now).await?;
    enqueue(tx, &queued, now, lease).await?;
    Ok(outcomes)
}

/// One row per event id (a statement may not touch a row twice), with the
/// number of copies the batch holds. Sorted by id: the lock order.
pub(super) fn distinct(events: &[Event]) -> BTreeMap<&str, (&Event, i64)> {
    let mut distinct: BTreeMap<&str, (&Event, i64)> = BTreeMap::new();
    for event in events {
        distinct.entry(event.id.as_str()).or_insert((event, 0)).1 += 1;
    }
    distinct
}

/// Each event's outcome, in batch order, from the delivery counts the event
/// insert returned; and the events stored for the first time (the first copy
/// of each), in batch order.
pub(super) fn outcomes<'a>(
    events: &'a [Event],
    distinct: &BTreeMap<&str, (&Event, i64)>,
    totals: &HashMap<String, i64>,
) -> Result<(Vec<Committed>, Vec<&'a Event>)> {
    let mut copies_seen: HashMap<&str, i64> = HashMap::new();
    let mut fresh = Vec::new();
    let mut outcomes = Vec::with_capacity(events.len());
    for event in events {
        let id = event.id.as_str();
        let copy = copies_seen.entry(id).or_insert(0);
        *copy += 1;
        let total = totals
            .get(id)
            .ok_or_else(|| StoreError::Corrupt(format!("no row returned for event {id}")))?;
        // What was stored before this batch: nothing when the row is new.
        let before = total - distinct[id].1;
        let first_ever = before == 0 && *copy == 1;
        if first_ever {
            fresh.push(event);
        }
        outcomes.push(Committed {
            duplicate: !first_ever,
            deliveries: before + *copy,
        });
    }
    Ok((outcomes, fresh))
}

/// A malformed event is final when stored (failed, for someone to look at);
/// any other waits for the processing queue.
fn is_final(event: &Event) -> bool {
    !processing_outcome(event).0
}

/// One job per queued event: due now, or already leased (see [`Lease`]).
/// Job rows belong to events this transaction has just inserted, so no other
/// transaction waits for them.
pub(super) async fn enqueue(
    tx: &mut Tx<'_>,
    event_ids: &[&str],
    now: DateTime<Utc>,
    lease: Option<&Lease>,
) -> Result<()> {
    if event_ids.is_empty() {
        return Ok(());
    }
    let sql = "INSERT INTO jobs (event_id, status, attempts, lease_owner, lease_until,
             next_run_at, created_at, updated_at)
         SELECT event_id, $3, $4, $5, $6, $2, $2, $2 FROM UNNEST($1::text[]) AS event_id
         ON CONFLICT DO NOTHING";
    bind_lease(sqlx::query(sql).bind(event_ids).bind(now), lease)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Binds a new job's `status`, `attempts`, `lease_owner` and `lease_until`:
/// pending and never tried, or running its first attempt under `lease`.
pub(super) fn bind_lease<'q>(
    query: Query<'q, Postgres, PgArguments>,
    lease: Option<&'q Lease>,
) -> Query<'q, Postgres, PgArguments> {
    let (status, attempts) = match lease {
        Some(_) => ("running", 1_i64),
        None => ("pending", 0),
    };
    query
        .bind(status)
        .bind(attempts)
        .bind(lease.map(|l| l.owner.as_str()))
        .bind(lease.map(|l| l.until))
}

/// The dedupe insert of a batch's distinct events, without its RETURNING
/// clause: `$1`…`$12` as bound by [`bind_events`]. A known event id only
/// counts one more delivery per copy.
pub(super) const INSERT_EVENTS: &str = "INSERT INTO webhook_events (event_id, type, event_type,
         shop_id, order_id, payload, raw_body, timestamp, received_at, last_received_at,
         deliveries, processed, success, error_message)
     SELECT e.event_id, e.type, e.event_type, e.shop_id, e.order_id, json_or_null(e.raw_body),
         e.raw_body, e.timestamp, $12, $12, e.copies, e.processed, e.success, e.error_message
     FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[],
                 $7::bigint[], $8::bigint[], $9::boolean[], $10::boolean[], $11::text[])
         AS e(event_id, type, event_type, shop_id, order_id, raw_body, timestamp, copies,
              processed, success, error_message)
     ORDER BY e.event_id
     ON CONFLICT (event_id) DO UPDATE SET
         deliveries = webhook_events.deliveries + excluded.deliveries,
         last_received_at = excluded.last_received_at";

/// Binds `$1`…`$12` of [`INSERT_EVENTS`]: the distinct events' columns, in
/// event id order, and the time.
pub(super) fn bind_events<'q>(
    query: Query<'q, Postgres, PgArguments>,
    distinct: &BTreeMap<&'q str, (&'q Event, i64)>,
    now: DateTime<Utc>,
) -> Query<'q, Postgres, PgArguments> {
    let rows: Vec<(&Event, i64)> = distinct.values().copied().collect();
    // A readable event waits for the queue; a malformed one is final now.
    let (successes, errors): (Vec<Option<bool>>, Vec<Option<String>>) = rows
        .iter()
        .map(|(e, _)| match processing_outcome(e) {
            (true, _) => (None, None),
            (false, error) => (Some(false), error),
        })
        .unzip();
    let processed: Vec<bool> = rows.iter().map(|(e, _)| is_final(e)).collect();
    let each =
        |f: fn(&'q Event) -> Option<&'q str>| rows.iter().map(|(e, _)| f(e)).collect::<Vec<_>>();
    query
        .bind(each(|e| Some(e.id.as_str())))
        .bind(rows.iter().map(|(e, _)| e.type_code).collect::<Vec<_>>())
        .bind(each(|e| Some(e.event_type())))
        .bind(each(|e| e.shop_id.as_ref().map(|s| s.as_str())))
        .bind(each(|e| e.order_id().map(|s| s.as_str())))
        .bind(each(|e| Some(e.raw_str())))
        .bind(rows.iter().map(|(e, _)| e.timestamp).collect::<Vec<_>>())
        .bind(rows.iter().map(|(_, copies)| *copies).collect::<Vec<_>>())
        .bind(processed)
        .bind(successes)
        .bind(errors)
        .bind(now)
}

/// Inserts the distinct events; returns each id's delivery count after the
/// statement (its copies here, plus what was stored before).
pub(super) async fn insert_events(
    tx: &mut Tx<'_>,
    distinct: &BTreeMap<&str, (&Event, i64)>,
    now: DateTime<Utc>,
) -> Result<HashMap<String, i64>> {
    let sql = format!("{INSERT_EVENTS} RETURNING event_id, deliveries");
    let rows = bind_events(sqlx::query(&sql), distinct, now)
        .fetch_all(&mut **tx)
        .await?;
    delivery_totals(&rows)
}

/// `event_id, deliveries` of each row a statement returned.
pub(super) fn delivery_totals(rows: &[PgRow]) -> Result<HashMap<String, i64>> {
    rows.iter()
        .map(|row| Ok((row.try_get("event_id")?, row.try_get("deliveries")?)))
        .collect()
}
