//! The common batch as one statement: order status changes, address updates
//! and events that only show their shop's activity, each order at most once.
//!
//! A flash sale's batch is almost only order status changes of distinct
//! orders. The general path (`write.rs`, `project.rs`) sends such a batch as
//! a transaction of eight round trips: BEGIN, the event insert, whose answer
//! says which events are new, then one statement per projection table, and
//! COMMIT. Two writer connections doing that one round trip after another
//! left a third of the two cores idle. Here the whole batch is one statement
//! in its own implicit transaction, one round trip: the event insert is a
//! `WITH` query whose rows tell the projection inserts which events are new
//! (`fresh`: stored copies equal this batch's copies), so that a duplicate
//! still changes nothing but its delivery count.
//!
//! The statements inside one `WITH` share one snapshot and cannot see each
//! other's rows, and none may change a row another changes. So this path
//! takes only batches where every projection row has one write: no order
//! named by two events (of different ids), no authorization change, no
//! request, package or product, no malformed event. Everything else goes
//! the general way, which applies several writes to one row in batch order.
//! What each write does is the general path's statement, joined to `fresh`;
//! the random-batch tests hold both to the same per-event reference.
//!
//! Locks: each table's rows are taken in key order by one part of the
//! statement, as on the general path. That is why status changes and
//! address updates never go together here: two upserts of `tiktok_orders`,
//! run in whichever order PostgreSQL picks, would take the rows out of key
//! order, and could deadlock with the queue's `finish_jobs`, which locks
//! orders in key order. The general path locks such a batch's orders in
//! key order first. The order in which the `WITH` parts run between tables
//! is PostgreSQL's own; two instances writing the same rows at the same
//! instant may then deadlock, PostgreSQL ends one, and `PgStore::commit`
//! runs it again.
//!
//! Shop activity, as on the general path: a shop the statement's snapshot
//! does not hold is inserted with the batch's activity (or, when another
//! batch inserted it meanwhile, moved forward on that row); a known one is
//! locked, in key order, and moved forward only where the activity does, so
//! that batches of one busy shop do not wait for each other.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::write::{bind_events, bind_lease, delivery_totals, distinct, outcomes, INSERT_EVENTS};
use crate::{
    store::{
        projection::{processing_outcome, writes, ShopChange, Write},
        Committed, Lease, Result,
    },
    tiktok::Event,
};

/// A batch that qualifies, with its rows by table.
pub(super) struct OneStatement<'a> {
    events: &'a [Event],
    distinct: BTreeMap<&'a str, (&'a Event, i64)>,
    /// Each distinct event's place in the batch (its first copy): jobs are
    /// created in batch order.
    position: BTreeMap<&'a str, i64>,
    /// Status changes or touches (never both), each order at most once.
    statuses: BTreeMap<&'a str, Status<'a>>,
    touches: BTreeMap<&'a str, Touch<'a>>,
    history: Vec<History<'a>>,
}

struct Status<'a> {
    event: &'a Event,
    status: &'a str,
    on_hold: Option<bool>,
    update_time: Option<i64>,
}

struct Touch<'a> {
    event: &'a Event,
    address_updated_at: Option<i64>,
}

struct History<'a> {
    order_id: &'a str,
    event: &'a Event,
    status: Option<&'a str>,
    update_time: Option<i64>,
}

impl<'a> OneStatement<'a> {
    /// The batch as one statement, or `None` when it needs the general path.
    pub fn of(events: &'a [Event]) -> Option<Self> {
        let distinct = distinct(events);
        let mut position = BTreeMap::new();
        let (mut statuses, mut touches) = (BTreeMap::new(), BTreeMap::new());
        let mut history = Vec::new();
        for (i, event) in events.iter().enumerate() {
            if position.contains_key(event.id.as_str()) {
                continue;
            }
            position.insert(event.id.as_str(), i as i64);
            // A malformed event marks its order failed: a write of its own.
            if !processing_outcome(event).0 {
                return None;
            }
            let mut named = None;
            for write in writes(event) {
                match write {
                    Write::OrderStatus {
                        order_id,
                        status,
                        on_hold,
                        update_time,
                    } => {
                        let row = Status {
                            event,
                            status,
                            on_hold,
                            update_time,
                        };
                        if !touches.is_empty() {
                            return None;
                        }
                        statuses.insert(order_id, row).map_or(Some(()), |_| None)?;
                        named = Some(order_id);
                    }
                    Write::OrderTouch {
                        order_id,
                        address_updated_at,
                    } => {
                        let row = Touch {
                            event,
                            address_updated_at,
                        };
                        if !statuses.is_empty() {
                            return None;
                        }
                        touches.insert(order_id, row).map_or(Some(()), |_| None)?;
                        named = Some(order_id);
                    }
                    Write::OrderHistory {
                        order_id,
                        status,
                        update_time,
                    } => history.push(History {
                        order_id,
                        event,
                        status,
                        update_time,
                    }),
                    Write::Shop(ShopChange::Activity { .. }) => {}
                    _ => return None,
                }
            }
            // Its processing state rides in its own order write; an event
            // that names an order it does not write marks it separately.
            if event.order_id().map(|id| id.as_str()) != named {
                return None;
            }
        }
        Some(OneStatement {
            events,
            distinct,
            position,
            statuses,
            touches,
            history,
        })
    }

    /// Runs the statement on `conn`, outside any transaction of its own
    /// making: in its own implicit one, or in the caller's.
    pub async fn run(
        self,
        conn: &mut PgConnection,
        now: DateTime<Utc>,
        lease: Option<&Lease>,
    ) -> Result<Vec<Committed>> {
        let sql = self.sql();
        let query = bind_events(sqlx::query(&sql), &self.distinct, now);
        let positions: Vec<i64> = self.position.values().copied().collect();
        let query = bind_lease(query.bind(positions), lease);
        let rows = &self.statuses;
        let query = match rows.is_empty() {
            true => query,
            false => query
                .bind(rows.keys().copied().collect::<Vec<_>>())
                .bind(column(rows, |r| {
                    r.event.shop_id.as_ref().map(|s| s.as_str())
                }))
                .bind(column(rows, |r| r.event.event_type()))
                .bind(column(rows, |r| r.status))
                .bind(column(rows, |r| r.on_hold))
                .bind(column(rows, |r| r.update_time))
                .bind(column(rows, |r| r.event.id.as_str())),
        };
        let rows = &self.touches;
        let query = match rows.is_empty() {
            true => query,
            false => query
                .bind(rows.keys().copied().collect::<Vec<_>>())
                .bind(column(rows, |r| {
                    r.event.shop_id.as_ref().map(|s| s.as_str())
                }))
                .bind(column(rows, |r| r.event.event_type()))
                .bind(column(rows, |r| r.address_updated_at))
                .bind(column(rows, |r| r.event.id.as_str())),
        };
        // History rows by (order, event): the general path's key order.
        let mut history: Vec<&History> = self.history.iter().collect();
        history.sort_by_key(|h| (h.order_id, h.event.id.as_str()));
        let query = query
            .bind(history.iter().map(|h| h.order_id).collect::<Vec<_>>())
            .bind(
                history
                    .iter()
                    .map(|h| h.event.id.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(history.iter().map(|h| h.status).collect::<Vec<_>>())
            .bind(history.iter().map(|h| h.update_time).collect::<Vec<_>>());
        let rows = query.fetch_all(&mut *conn).await?;
        let totals = delivery_totals(&rows)?;
        Ok(outcomes(self.events, &self.distinct, &totals)?.0)
    }

    /// The statement's text: one of three, by the kind of order rows. The
    /// parameters of each part are numbered after those of the parts
    /// before it.
    fn sql(&self) -> String {
        let mut next = 18;
        let mut number = |part: &str, prefix: &str, count: usize| {
            let mut part = part.to_owned();
            // Highest first, so that `$S1` does not replace the start of `$S10`.
            for i in (1..=count).rev() {
                part = part.replace(&format!("${prefix}{i}"), &format!("${}", next + i - 1));
            }
            next += count;
            part
        };
        let statuses = match self.statuses.is_empty() {
            true => String::new(),
            false => number(ORDER_STATUS, "S", 7),
        };
        let touches = match self.touches.is_empty() {
            true => String::new(),
            false => number(ORDER_TOUCH, "T", 5),
        };
        let history = number(HISTORY, "H", 4);
        format!(
            "WITH ev AS ({INSERT_EVENTS} RETURNING event_id, deliveries, payload),
             {FRESH}{statuses}{touches}{history}{JOBS}{SHOPS}
             SELECT event_id, deliveries FROM ev"
        )
    }
}

fn column<R, T>(rows: &BTreeMap<&str, R>, f: impl Fn(&R) -> T) -> Vec<T> {
    rows.values().map(f).collect()
}

/// The events this statement stored for the first time (every copy of them
/// is in this batch), with their place in it (`$13`).
const FRESH: &str = "fresh AS (
         SELECT ev.event_id, ev.payload, c.position
         FROM ev JOIN UNNEST($1::text[], $8::bigint[], $13::bigint[])
             AS c(event_id, copies, position) USING (event_id)
         WHERE ev.deliveries = c.copies),";

/// `project.rs`'s status upsert with the event's processing state folded in
/// (`then`), in one upsert: the status columns change only when the event is
/// not older than the stored status, the processing state always.
const ORDER_STATUS: &str = "statuses AS (
         INSERT INTO tiktok_orders AS o (order_id, shop_id, event_type, order_status,
             is_on_hold, update_time, last_event_id, order_data, created_at, updated_at)
         SELECT r.order_id, r.shop_id, r.event_type, r.order_status, r.is_on_hold,
             r.update_time, r.event_id, f.payload, $12, $12
         FROM UNNEST($S1::text[], $S2::text[], $S3::text[], $S4::text[], $S5::boolean[],
                     $S6::bigint[], $S7::text[]) WITH ORDINALITY
             AS r(order_id, shop_id, event_type, order_status, is_on_hold, update_time,
                  event_id, ord)
             JOIN fresh f USING (event_id)
         ORDER BY r.ord
         ON CONFLICT (order_id) DO UPDATE SET
             shop_id = CASE WHEN o.update_time IS NULL OR excluded.update_time IS NULL
                 OR excluded.update_time >= o.update_time
                 THEN COALESCE(excluded.shop_id, o.shop_id) ELSE o.shop_id END,
             event_type = CASE WHEN o.update_time IS NULL OR excluded.update_time IS NULL
                 OR excluded.update_time >= o.update_time
                 THEN excluded.event_type ELSE o.event_type END,
             order_status = CASE WHEN o.update_time IS NULL OR excluded.update_time IS NULL
                 OR excluded.update_time >= o.update_time
                 THEN excluded.order_status ELSE o.order_status END,
             is_on_hold = CASE WHEN o.update_time IS NULL OR excluded.update_time IS NULL
                 OR excluded.update_time >= o.update_time
                 THEN COALESCE(excluded.is_on_hold, o.is_on_hold) ELSE o.is_on_hold END,
             update_time = CASE WHEN o.update_time IS NULL OR excluded.update_time IS NULL
                 OR excluded.update_time >= o.update_time
                 THEN COALESCE(excluded.update_time, o.update_time) ELSE o.update_time END,
             last_event_id = CASE WHEN o.update_time IS NULL OR excluded.update_time IS NULL
                 OR excluded.update_time >= o.update_time
                 THEN excluded.last_event_id ELSE o.last_event_id END,
             order_data = CASE WHEN o.update_time IS NULL OR excluded.update_time IS NULL
                 OR excluded.update_time >= o.update_time
                 THEN excluded.order_data ELSE o.order_data END,
             updated_at = CASE WHEN o.update_time IS NULL OR excluded.update_time IS NULL
                 OR excluded.update_time >= o.update_time
                 THEN excluded.updated_at ELSE o.updated_at END,
             processed = false),";

/// `project.rs`'s touch upsert, every row with its event waiting for the
/// queue.
const ORDER_TOUCH: &str = "touches AS (
         INSERT INTO tiktok_orders AS o (order_id, shop_id, event_type, address_updated_at,
             processed, created_at, updated_at)
         SELECT r.order_id, r.shop_id, r.event_type, r.address_updated_at, false, $12, $12
         FROM UNNEST($T1::text[], $T2::text[], $T3::text[], $T4::bigint[], $T5::text[])
             WITH ORDINALITY AS r(order_id, shop_id, event_type, address_updated_at,
                                  event_id, ord)
             JOIN fresh f USING (event_id)
         ORDER BY r.ord
         ON CONFLICT (order_id) DO UPDATE SET
             shop_id = COALESCE(o.shop_id, excluded.shop_id),
             address_updated_at = GREATEST(o.address_updated_at, excluded.address_updated_at),
             updated_at = excluded.updated_at,
             processed = false),";

/// The history of status events.
const HISTORY: &str = "history AS (
         INSERT INTO order_status_history
             (order_id, event_id, order_status, update_time, received_at)
         SELECT r.order_id, r.event_id, r.order_status, r.update_time, $12
         FROM UNNEST($H1::text[], $H2::text[], $H3::text[], $H4::bigint[]) WITH ORDINALITY
             AS r(order_id, event_id, order_status, update_time, ord)
             JOIN fresh f USING (event_id)
         ORDER BY r.ord
         ON CONFLICT DO NOTHING),";

/// One job per new event (every event here is readable), in batch order:
/// due, or leased (`$14`…`$17`, as `write::bind_lease` binds them).
const JOBS: &str = "jobs AS (
         INSERT INTO jobs (event_id, status, attempts, lease_owner, lease_until, next_run_at,
             created_at, updated_at)
         SELECT f.event_id, $14, $15, $16, $17, $12, $12, $12 FROM fresh f ORDER BY f.position
         ON CONFLICT DO NOTHING),";

/// The new events' shops, each with its newest envelope timestamp. A shop
/// the snapshot does not hold is inserted; should another batch have
/// inserted it meanwhile, its row moves forward there. A known shop's row
/// is locked, in key order, and updated only where the activity moves it
/// forward (and then checked again after waiting for the lock).
const SHOPS: &str = "shop_activity AS (
         SELECT s.shop_id, MAX(s.timestamp) AS activity
         FROM UNNEST($1::text[], $4::text[], $7::bigint[]) AS s(event_id, shop_id, timestamp)
             JOIN fresh f USING (event_id)
         WHERE s.shop_id IS NOT NULL
         GROUP BY s.shop_id),
     new_shops AS (
         INSERT INTO shops AS s (shop_id, last_activity_at, created_at, updated_at)
         SELECT a.shop_id, a.activity, $12, $12 FROM shop_activity a
         WHERE NOT EXISTS (SELECT FROM shops k WHERE k.shop_id = a.shop_id)
         ORDER BY a.shop_id COLLATE \"C\"
         ON CONFLICT (shop_id) DO UPDATE SET
             last_activity_at = excluded.last_activity_at, updated_at = excluded.updated_at
         WHERE excluded.last_activity_at IS NOT NULL
           AND (s.last_activity_at IS NULL OR s.last_activity_at < excluded.last_activity_at)),
     active_shops AS (
         UPDATE shops s SET last_activity_at = a.activity, updated_at = $12
         FROM shop_activity a
         WHERE s.shop_id = a.shop_id
           AND s.shop_id IN (
               SELECT l.shop_id FROM shops l JOIN shop_activity k USING (shop_id)
               WHERE k.activity IS NOT NULL
                 AND (l.last_activity_at IS NULL OR l.last_activity_at < k.activity)
               ORDER BY l.shop_id COLLATE \"C\" FOR NO KEY UPDATE OF l)
           AND (s.last_activity_at IS NULL OR s.last_activity_at < a.activity))";
