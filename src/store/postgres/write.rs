//! The batch write: a handful of multi-row statements per transaction,
//! whatever the batch size.
//!
//! Several instances write to one database at once, so two rules hold:
//!
//! - The database decides. Dedupe is `INSERT … ON CONFLICT (event_id) DO
//!   UPDATE … RETURNING deliveries`, newest-wins is the `WHERE` of the order
//!   upsert; nothing is read first and written after.
//! - Rows are written in one fixed order: events by event id, then orders by
//!   order id, then history. Two transactions that touch the same rows then
//!   wait for each other instead of deadlocking.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Transaction};

use crate::{
    store::{
        projection::{order_writes, processing_outcome, OrderWrite},
        Committed, Result, StoreError,
    },
    tiktok::Event,
};

type Tx<'c> = Transaction<'c, Postgres>;

/// Stores a batch: each event once (copies within the batch or already
/// stored only count deliveries), then the projections of the new ones.
/// Returns one outcome per event, in batch order.
pub async fn store_events(
    tx: &mut Tx<'_>,
    events: &[Event],
    now: DateTime<Utc>,
) -> Result<Vec<Committed>> {
    // One row per event id (a statement may not touch a row twice), with the
    // number of copies this batch holds. Sorted by id: the lock order.
    let mut distinct: BTreeMap<&str, (&Event, i64)> = BTreeMap::new();
    for event in events {
        distinct.entry(event.id.as_str()).or_insert((event, 0)).1 += 1;
    }
    let totals = insert_events(tx, &distinct, now).await?;

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

    let mut orders = Vec::new();
    let mut history = Vec::new();
    for event in fresh {
        for write in order_writes(event) {
            match Row::of(event, write) {
                Row::Order(row) => orders.push(row),
                Row::History(row) => history.push(row),
            }
        }
    }
    for round in rounds(orders) {
        upsert_orders(tx, &round, now).await?;
    }
    insert_history(tx, &history, now).await?;
    Ok(outcomes)
}

/// An [`OrderWrite`] flattened into the columns it sets.
enum Row<'a> {
    Order(OrderRow<'a>),
    History(HistoryRow<'a>),
}

/// A status change (`status` set) or a touch (`status` empty).
struct OrderRow<'a> {
    order_id: &'a str,
    shop_id: Option<&'a str>,
    event_type: &'a str,
    status: Option<&'a str>,
    on_hold: Option<bool>,
    update_time: Option<i64>,
    /// The event that set the status, and its body.
    event_id: Option<&'a str>,
    data: Option<&'a str>,
    address_updated_at: Option<i64>,
}

struct HistoryRow<'a> {
    order_id: &'a str,
    event_id: &'a str,
    status: Option<&'a str>,
    update_time: Option<i64>,
}

impl<'a> Row<'a> {
    fn of(event: &'a Event, write: OrderWrite<'a>) -> Row<'a> {
        let order = |order_id| OrderRow {
            order_id,
            shop_id: event.shop_id.as_ref().map(|s| s.as_str()),
            event_type: event.event_type(),
            status: None,
            on_hold: None,
            update_time: None,
            event_id: None,
            data: None,
            address_updated_at: None,
        };
        match write {
            OrderWrite::Status {
                order_id,
                status,
                on_hold,
                update_time,
            } => Row::Order(OrderRow {
                status: Some(status),
                on_hold,
                update_time,
                event_id: Some(event.id.as_str()),
                data: Some(event.raw_str()),
                ..order(order_id)
            }),
            OrderWrite::Touch {
                order_id,
                address_updated_at,
            } => Row::Order(OrderRow {
                address_updated_at,
                ..order(order_id)
            }),
            OrderWrite::History {
                order_id,
                status,
                update_time,
            } => Row::History(HistoryRow {
                order_id,
                event_id: event.id.as_str(),
                status,
                update_time,
            }),
        }
    }
}

/// Inserts the distinct events; returns each id's delivery count after the
/// statement (its copies here, plus what was stored before).
async fn insert_events(
    tx: &mut Tx<'_>,
    distinct: &BTreeMap<&str, (&Event, i64)>,
    now: DateTime<Utc>,
) -> Result<HashMap<String, i64>> {
    let rows: Vec<(&Event, i64)> = distinct.values().copied().collect();
    let (successes, errors): (Vec<bool>, Vec<Option<String>>) =
        rows.iter().map(|(e, _)| processing_outcome(e)).unzip();
    let each = |f: fn(&Event) -> Option<&str>| rows.iter().map(|(e, _)| f(e)).collect::<Vec<_>>();
    let totals: Vec<(String, i64)> = sqlx::query_as(
        "INSERT INTO webhook_events (event_id, type, event_type, shop_id, order_id, payload,
             raw_body, timestamp, received_at, last_received_at, deliveries, processed, success,
             error_message)
         SELECT e.event_id, e.type, e.event_type, e.shop_id, e.order_id, json_or_null(e.raw_body),
             e.raw_body, e.timestamp, $11, $11, e.copies, true, e.success, e.error_message
         FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::bigint[], $8::bigint[], $9::boolean[], $10::text[])
             AS e(event_id, type, event_type, shop_id, order_id, raw_body, timestamp, copies,
                  success, error_message)
         ORDER BY e.event_id
         ON CONFLICT (event_id) DO UPDATE SET
             deliveries = webhook_events.deliveries + excluded.deliveries,
             last_received_at = excluded.last_received_at
         RETURNING event_id, deliveries",
    )
    .bind(each(|e| Some(e.id.as_str())))
    .bind(rows.iter().map(|(e, _)| e.type_code).collect::<Vec<_>>())
    .bind(each(|e| Some(e.event_type())))
    .bind(each(|e| e.shop_id.as_ref().map(|s| s.as_str())))
    .bind(each(|e| e.order_id().map(|s| s.as_str())))
    .bind(each(|e| Some(e.raw_str())))
    .bind(rows.iter().map(|(e, _)| e.timestamp).collect::<Vec<_>>())
    .bind(rows.iter().map(|(_, copies)| *copies).collect::<Vec<_>>())
    .bind(successes)
    .bind(errors)
    .bind(now)
    .fetch_all(&mut **tx)
    .await?;
    Ok(totals.into_iter().collect())
}

/// Splits order rows into rounds: round `n` holds the `n`-th write to each
/// order, in batch order. No statement then changes a row twice (which
/// PostgreSQL refuses), each order's writes keep their order, and round 0,
/// which holds every order of the batch, takes all the row locks; later
/// rounds only revisit rows already locked.
fn rounds(rows: Vec<OrderRow<'_>>) -> Vec<Vec<OrderRow<'_>>> {
    let mut rounds: Vec<Vec<_>> = Vec::new();
    let mut per_order: HashMap<&str, usize> = HashMap::new();
    for row in rows {
        let n = per_order.entry(row.order_id).or_insert(0);
        if rounds.len() <= *n {
            rounds.push(Vec::new());
        }
        rounds[*n].push(row);
        *n += 1;
    }
    rounds
}

/// One round of status changes and touches, one row per order, in one
/// statement. A row with a status is a [`OrderWrite::Status`]: applied only
/// when its `update_time` is not older than the stored one. A row without one
/// is a [`OrderWrite::Touch`]: the order exists afterwards, the shop is
/// filled in if unknown, `address_updated_at` only moves forward.
async fn upsert_orders<'a>(
    tx: &mut Tx<'_>,
    round: &[OrderRow<'a>],
    now: DateTime<Utc>,
) -> Result<()> {
    let text = |f: fn(&OrderRow<'a>) -> Option<&'a str>| round.iter().map(f).collect::<Vec<_>>();
    let number = |f: fn(&OrderRow<'a>) -> Option<i64>| round.iter().map(f).collect::<Vec<_>>();
    sqlx::query(
        "INSERT INTO tiktok_orders AS o (order_id, shop_id, event_type, order_status, is_on_hold,
             update_time, last_event_id, order_data, address_updated_at, processed, created_at,
             updated_at)
         SELECT w.order_id, w.shop_id, w.event_type, w.status, w.on_hold, w.update_time,
             w.event_id, json_or_null(w.data), w.address_updated_at, true, $10, $10
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::boolean[], $6::bigint[],
                     $7::text[], $8::text[], $9::bigint[])
             AS w(order_id, shop_id, event_type, status, on_hold, update_time, event_id, data,
                  address_updated_at)
         ORDER BY w.order_id
         ON CONFLICT (order_id) DO UPDATE SET
             shop_id = CASE WHEN excluded.order_status IS NULL
                 THEN COALESCE(o.shop_id, excluded.shop_id)
                 ELSE COALESCE(excluded.shop_id, o.shop_id) END,
             event_type = CASE WHEN excluded.order_status IS NULL
                 THEN o.event_type ELSE excluded.event_type END,
             order_status = COALESCE(excluded.order_status, o.order_status),
             is_on_hold = COALESCE(excluded.is_on_hold, o.is_on_hold),
             update_time = COALESCE(excluded.update_time, o.update_time),
             last_event_id = COALESCE(excluded.last_event_id, o.last_event_id),
             order_data = CASE WHEN excluded.order_status IS NULL
                 THEN o.order_data ELSE excluded.order_data END,
             address_updated_at = GREATEST(o.address_updated_at, excluded.address_updated_at),
             updated_at = excluded.updated_at
         WHERE excluded.order_status IS NULL
             OR o.update_time IS NULL
             OR excluded.update_time IS NULL
             OR excluded.update_time >= o.update_time",
    )
    .bind(text(|r| Some(r.order_id)))
    .bind(text(|r| r.shop_id))
    .bind(text(|r| Some(r.event_type)))
    .bind(text(|r| r.status))
    .bind(round.iter().map(|r| r.on_hold).collect::<Vec<_>>())
    .bind(number(|r| r.update_time))
    .bind(text(|r| r.event_id))
    .bind(text(|r| r.data))
    .bind(number(|r| r.address_updated_at))
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Every status event's line in its order's history, applied or not. Lines
/// of one order keep their batch order, which breaks ties in `update_time`.
async fn insert_history(
    tx: &mut Tx<'_>,
    history: &[HistoryRow<'_>],
    now: DateTime<Utc>,
) -> Result<()> {
    if history.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO order_status_history (order_id, event_id, order_status, update_time,
             received_at)
         SELECT h.order_id, h.event_id, h.status, h.update_time, $5
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[]) WITH ORDINALITY
             AS h(order_id, event_id, status, update_time, n)
         ORDER BY h.order_id, h.n
         ON CONFLICT DO NOTHING",
    )
    .bind(history.iter().map(|h| h.order_id).collect::<Vec<_>>())
    .bind(history.iter().map(|h| h.event_id).collect::<Vec<_>>())
    .bind(history.iter().map(|h| h.status).collect::<Vec<_>>())
    .bind(history.iter().map(|h| h.update_time).collect::<Vec<_>>())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
