//! PostgreSQL's SQL for the projection writes of a batch: each table's writes
//! as a few multi-row statements instead of one statement per write.
//!
//! Every statement is still a conditional upsert that changes a row only when
//! the incoming ordering value is not older than the stored one (the same
//! SQL as before, fed from `UNNEST` arrays instead of one row of parameters).
//! PostgreSQL locks the conflicting row even when the `WHERE` leaves it
//! unchanged, which is what keeps the lock order of `write.rs` whole.
//!
//! # Rounds
//!
//! A statement may not change one row twice ("ON CONFLICT DO UPDATE command
//! cannot affect row a second time"), and a batch may hold several writes to
//! one row, whose outcome depends on their order. So each table's writes are
//! grouped by key ([`Keyed`]) and sent in *rounds*: round k holds the k-th
//! write (in batch order) of every key that has one, and only those. Within
//! a round every key appears once, so the round's statements touch disjoint
//! rows and their relative order does not matter; across rounds each key sees
//! its writes in batch order. The result is the one of applying the events
//! one after the other.
//!
//! Almost every batch has one round per table: an event's processing state
//! rides in its own status or touch upsert ([`OrderWrite::then`]) and a
//! shop's changes fold into one row ([`ShopRow::then`]); only several events
//! of one order, request, package or product make more. A batch of order
//! status events (type 1) thus costs five statements whatever its size: the
//! event insert (`write.rs`), one status upsert, one history insert, one
//! shop upsert and the job insert; it cost four per event before.
//!
//! # Lock order
//!
//! Round 0 holds every key of the table, so all of the table's row locks are
//! taken in round 0; later rounds only come back to rows already locked. Each
//! statement takes its rows in key order (`ORDER BY ord`, the arrays being
//! sorted by key in Rust's byte order, as the one-row statements were). When
//! round 0 needs more than one statement (say status upserts and touches of
//! different orders), the statements would interleave their keys, so the
//! existing rows are first locked together, in key order, by one
//! `SELECT … ORDER BY … FOR UPDATE`. What remains out of order: rows that do
//! not exist yet are created by round 0's statements one kind after the
//! other, so a new row of the second statement may be created (and held)
//! after a larger key of the first. Two instances can then only deadlock if
//! they create the same new rows, of different kinds, in the same instant;
//! PostgreSQL detects that and `PgStore::commit` runs the batch again.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};

use super::write::Tx;
use crate::{
    store::{
        projection::{ProductAspect, Request, ShopChange, Write},
        Result,
    },
    tiktok::Event,
};

/// Writes to the rows of one table, by key, each key's in batch order.
pub(super) struct Keyed<K, W>(BTreeMap<K, Vec<W>>);

impl<K, W> Default for Keyed<K, W> {
    fn default() -> Self {
        Self(BTreeMap::new())
    }
}

impl<K: Ord + Copy, W> Keyed<K, W> {
    fn push(&mut self, key: K, write: W) {
        self.0.entry(key).or_default().push(write);
    }

    /// Round k: the k-th write of every key that has one, in key order.
    pub(super) fn rounds(&self) -> Vec<Vec<(K, &W)>> {
        let depth = self.0.values().map(Vec::len).max().unwrap_or(0);
        (0..depth)
            .map(|k| {
                self.0
                    .iter()
                    .filter_map(|(key, writes)| writes.get(k).map(|w| (*key, w)))
                    .collect()
            })
            .collect()
    }

    /// The last write added for `key`.
    fn last_mut(&mut self, key: K) -> Option<&mut W> {
        self.0.get_mut(&key).and_then(|writes| writes.last_mut())
    }

    /// Every key, in order.
    pub(super) fn keys(&self) -> Vec<K> {
        self.0.keys().copied().collect()
    }
}

/// A write to an order row, and the event it comes from.
struct OrderWrite<'a> {
    event: &'a Event,
    change: OrderChange<'a>,
    /// The same event's processing state, when it follows this write on the
    /// same row (almost always): folded into this write's statement, which
    /// saves a statement per round and a second version of the row.
    then: Option<Unprocessed>,
}

enum OrderChange<'a> {
    Status {
        status: &'a str,
        on_hold: Option<bool>,
        update_time: Option<i64>,
    },
    Touch {
        address_updated_at: Option<i64>,
    },
    /// Only the processing state, when no write of the same event came
    /// just before on this row.
    Unprocessed(Unprocessed),
}

/// The order has an event waiting for the processing queue (`error` is
/// `None`), or one that failed for good, whose reason the order then shows:
/// `processed = false, error_message = COALESCE(error, error_message)`.
#[derive(Clone)]
struct Unprocessed {
    error: Option<String>,
}

struct History<'a> {
    event: &'a Event,
    status: Option<&'a str>,
    update_time: Option<i64>,
}

enum PackageWrite<'a> {
    Package {
        event: &'a Event,
        sc_type: Option<&'a str>,
        role_type: Option<&'a str>,
        order_ids: &'a [&'a str],
        update_time: Option<i64>,
    },
    Invoice {
        event: &'a Event,
        order_ids: &'a [&'a str],
        status: Option<&'a str>,
        invalid_reason: Option<&'a str>,
        time: Option<i64>,
    },
}

pub(super) struct ProductWrite<'a> {
    pub event: &'a Event,
    pub aspect: &'a ProductAspect<'a>,
    pub time: Option<i64>,
}

/// A shop row's values, as one upsert would propose them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ShopRow {
    activity: Option<i64>,
    deauthorized: Option<i64>,
    expires: Option<i64>,
    notice: Option<i64>,
}

impl ShopRow {
    fn of(change: ShopChange) -> ShopRow {
        let (activity, deauthorized, expires, notice) = match change {
            ShopChange::Activity { at } => (at, None, None, None),
            ShopChange::Deauthorized { at } => (None, at, None, None),
            // An expiry notice also proves the app is still authorized.
            ShopChange::ExpiryNotice { expires_at, at } => (at, None, expires_at, at),
        };
        ShopRow {
            activity,
            deauthorized,
            expires,
            notice,
        }
    }

    /// `self` as stored after `next` is upserted onto it: the `DO UPDATE`
    /// of [`shops`] written in Rust. Applying it is associative (each column
    /// is the greatest value, or the expiry of the newest notice, ties to the
    /// later one), so upserting the fold of a batch's changes leaves the row
    /// exactly as upserting them one after the other would, whether the row
    /// existed before or not; and a shop takes one row of one statement
    /// however many events of the batch it has.
    fn then(self, next: ShopRow) -> ShopRow {
        let newer_notice =
            next.notice.is_some() && (self.notice.is_none() || next.notice >= self.notice);
        ShopRow {
            activity: greatest(self.activity, next.activity),
            deauthorized: greatest(self.deauthorized, next.deauthorized),
            expires: if newer_notice {
                next.expires
            } else {
                self.expires
            },
            notice: greatest(self.notice, next.notice),
        }
    }
}

/// SQL's `GREATEST`, which ignores NULLs.
fn greatest(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    // `None` orders before any `Some`.
    a.max(b)
}

/// Every projection write of a batch, by table and key, ready to be sent.
#[derive(Default)]
pub(super) struct Plan<'a> {
    orders: Keyed<&'a str, OrderWrite<'a>>,
    history: Keyed<(&'a str, &'a str), History<'a>>,
    requests: Keyed<(&'a str, &'a str, &'a str), (&'a Event, &'a Request<'a>)>,
    packages: Keyed<&'a str, PackageWrite<'a>>,
    pub(super) products: Keyed<&'a str, ProductWrite<'a>>,
    shops: BTreeMap<&'a str, ShopRow>,
}

impl<'a> Plan<'a> {
    /// Adds one write of `event`; writes must be added in batch order.
    pub fn add(&mut self, event: &'a Event, write: &'a Write<'a>) {
        match write {
            Write::OrderStatus {
                order_id,
                status,
                on_hold,
                update_time,
            } => self.orders.push(
                order_id,
                OrderWrite {
                    event,
                    change: OrderChange::Status {
                        status,
                        on_hold: *on_hold,
                        update_time: *update_time,
                    },
                    then: None,
                },
            ),
            Write::OrderTouch {
                order_id,
                address_updated_at,
            } => self.orders.push(
                order_id,
                OrderWrite {
                    event,
                    change: OrderChange::Touch {
                        address_updated_at: *address_updated_at,
                    },
                    then: None,
                },
            ),
            Write::OrderHistory {
                order_id,
                status,
                update_time,
            } => self.history.push(
                (order_id, event.id.as_str()),
                History {
                    event,
                    status: *status,
                    update_time: *update_time,
                },
            ),
            Write::Request(r) => self
                .requests
                .push((r.order_id, r.kind.as_str(), r.request_id), (event, r)),
            Write::Package {
                package_id,
                sc_type,
                role_type,
                order_ids,
                update_time,
            } => self.packages.push(
                package_id,
                PackageWrite::Package {
                    event,
                    sc_type: *sc_type,
                    role_type: *role_type,
                    order_ids,
                    update_time: *update_time,
                },
            ),
            Write::Invoice {
                package_id,
                order_ids,
                status,
                invalid_reason,
                time,
            } => self.packages.push(
                package_id,
                PackageWrite::Invoice {
                    event,
                    order_ids,
                    status: *status,
                    invalid_reason: *invalid_reason,
                    time: *time,
                },
            ),
            Write::Product {
                product_id,
                aspect,
                time,
            } => self.products.push(
                product_id,
                ProductWrite {
                    event,
                    aspect,
                    time: *time,
                },
            ),
            Write::Shop(change) => {
                let Some(shop_id) = event.shop_id.as_ref().map(|s| s.as_str()) else {
                    return;
                };
                let row = ShopRow::of(*change);
                self.shops
                    .entry(shop_id)
                    .and_modify(|stored| *stored = stored.then(row))
                    .or_insert(row);
            }
        }
    }

    /// The order has an event waiting for the queue (`error` is `None`), or
    /// one that failed for good; added after the event's writes.
    pub fn unprocessed(&mut self, event: &'a Event, order_id: &'a str, error: Option<String>) {
        let state = Unprocessed { error };
        // Folded into the row's previous write when that is the same event's
        // status or touch: the two are adjacent in the row's sequence, so
        // one statement doing both keeps the batch order.
        if let Some(last) = self.orders.last_mut(order_id) {
            let folds = last.event.id.as_str() == event.id.as_str()
                && last.then.is_none()
                && !matches!(last.change, OrderChange::Unprocessed(_));
            if folds {
                last.then = Some(state);
                return;
            }
        }
        self.orders.push(
            order_id,
            OrderWrite {
                event,
                change: OrderChange::Unprocessed(state),
                then: None,
            },
        );
    }

    /// Sends the writes, table by table in the global lock order.
    pub async fn apply(&self, tx: &mut Tx<'_>, now: DateTime<Utc>) -> Result<()> {
        self.apply_orders(tx, now).await?;
        self.apply_history(tx, now).await?;
        self.apply_requests(tx, now).await?;
        self.apply_packages(tx, now).await?;
        self.apply_products(tx, now).await?;
        shops(tx, &self.shops, now).await
    }

    async fn apply_orders(&self, tx: &mut Tx<'_>, now: DateTime<Utc>) -> Result<()> {
        for (round, writes) in self.orders.rounds().into_iter().enumerate() {
            let (mut status, mut status_then, mut touch, mut flags) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for (order_id, write) in writes {
                match (&write.change, &write.then) {
                    (OrderChange::Status { .. }, None) => status.push((order_id, write)),
                    (OrderChange::Status { .. }, Some(_)) => status_then.push((order_id, write)),
                    (OrderChange::Touch { .. }, _) => touch.push((order_id, write)),
                    (OrderChange::Unprocessed(state), _) => flags.push((order_id, state)),
                }
            }
            // An UPDATE … FROM takes its rows in the join's order, not by
            // key: only rows already locked, or after a lock in key order.
            let statements = [status.len(), status_then.len(), touch.len(), flags.len()]
                .iter()
                .filter(|n| **n > 0)
                .count();
            if round == 0 && (statements > 1 || !flags.is_empty()) {
                lock_rows(
                    tx,
                    "SELECT FROM tiktok_orders WHERE order_id = ANY($1::text[])
                     ORDER BY order_id COLLATE \"C\" FOR UPDATE",
                    &self.orders.keys(),
                )
                .await?;
            }
            order_status(tx, &status, false, now).await?;
            // A status older than the stored one leaves the row alone, but
            // its processing state still applies: by a separate UPDATE, of
            // rows the upsert has locked already.
            let applied: HashSet<String> = order_status(tx, &status_then, true, now)
                .await?
                .into_iter()
                .collect();
            for (order_id, write) in &status_then {
                if let (false, Some(state)) = (applied.contains(*order_id), &write.then) {
                    flags.push((order_id, state));
                }
            }
            order_touch(tx, &touch, now).await?;
            unprocessed(tx, &flags).await?;
        }
        Ok(())
    }

    async fn apply_history(&self, tx: &mut Tx<'_>, now: DateTime<Utc>) -> Result<()> {
        for writes in self.history.rounds() {
            let event_ids: Vec<&str> = writes.iter().map(|(_, h)| h.event.id.as_str()).collect();
            sqlx::query(
                "INSERT INTO order_status_history
                     (order_id, event_id, order_status, update_time, received_at)
                 SELECT r.order_id, r.event_id, r.order_status, r.update_time, $5
                 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[]) WITH ORDINALITY
                     AS r(order_id, event_id, order_status, update_time, ord)
                 ORDER BY r.ord
                 ON CONFLICT DO NOTHING",
            )
            .bind(
                writes
                    .iter()
                    .map(|((order_id, _), _)| *order_id)
                    .collect::<Vec<_>>(),
            )
            .bind(event_ids)
            .bind(writes.iter().map(|(_, h)| h.status).collect::<Vec<_>>())
            .bind(
                writes
                    .iter()
                    .map(|(_, h)| h.update_time)
                    .collect::<Vec<_>>(),
            )
            .bind(now)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    async fn apply_requests(&self, tx: &mut Tx<'_>, now: DateTime<Utc>) -> Result<()> {
        for writes in self.requests.rounds() {
            let column = |f: fn(&Request<'a>) -> Option<&'a str>| {
                writes.iter().map(|(_, (_, r))| f(r)).collect::<Vec<_>>()
            };
            sqlx::query(
                "INSERT INTO order_requests AS q (order_id, kind, request_id, status, role,
                     request_type, amount, currency, update_time, last_event_id, created_at,
                     updated_at)
                 SELECT r.order_id, r.kind, r.request_id, r.status, r.role, r.request_type,
                     r.amount, r.currency, r.update_time, r.last_event_id, $11, $11
                 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                             $6::text[], $7::text[], $8::text[], $9::bigint[], $10::text[])
                     WITH ORDINALITY AS r(order_id, kind, request_id, status, role,
                         request_type, amount, currency, update_time, last_event_id, ord)
                 ORDER BY r.ord
                 ON CONFLICT (order_id, kind, request_id) DO UPDATE SET
                     status = COALESCE(excluded.status, q.status),
                     role = COALESCE(excluded.role, q.role),
                     request_type = COALESCE(excluded.request_type, q.request_type),
                     amount = COALESCE(excluded.amount, q.amount),
                     currency = COALESCE(excluded.currency, q.currency),
                     update_time = COALESCE(excluded.update_time, q.update_time),
                     last_event_id = excluded.last_event_id,
                     updated_at = excluded.updated_at
                 WHERE q.update_time IS NULL
                     OR excluded.update_time IS NULL
                     OR excluded.update_time >= q.update_time",
            )
            .bind(column(|r| Some(r.order_id)))
            .bind(column(|r| Some(r.kind.as_str())))
            .bind(column(|r| Some(r.request_id)))
            .bind(column(|r| r.status))
            .bind(column(|r| r.role))
            .bind(column(|r| r.request_type))
            .bind(column(|r| r.amount))
            .bind(column(|r| r.currency))
            .bind(
                writes
                    .iter()
                    .map(|(_, (_, r))| r.update_time)
                    .collect::<Vec<_>>(),
            )
            .bind(
                writes
                    .iter()
                    .map(|(_, (e, _))| e.id.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(now)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    async fn apply_packages(&self, tx: &mut Tx<'_>, now: DateTime<Utc>) -> Result<()> {
        for (round, writes) in self.packages.rounds().into_iter().enumerate() {
            let (packages, invoices): (Vec<_>, Vec<_>) = writes
                .into_iter()
                .partition(|(_, w)| matches!(w, PackageWrite::Package { .. }));
            if round == 0 && !packages.is_empty() && !invoices.is_empty() {
                lock_rows(
                    tx,
                    "SELECT FROM packages WHERE package_id = ANY($1::text[])
                     ORDER BY package_id COLLATE \"C\" FOR UPDATE",
                    &self.packages.keys(),
                )
                .await?;
            }
            // Only a package whose upsert applied has its order list replaced
            // by the event's; an invoice adds its orders in any case.
            let applied: HashSet<String> = package_rows(tx, &packages, now)
                .await?
                .into_iter()
                .collect();
            invoice_rows(tx, &invoices, now).await?;
            if !applied.is_empty() {
                sqlx::query("DELETE FROM package_orders WHERE package_id = ANY($1::text[])")
                    .bind(applied.iter().collect::<Vec<_>>())
                    .execute(&mut **tx)
                    .await?;
            }
            let mut pairs: Vec<(&str, &str)> = Vec::new();
            for (package_id, write) in packages.iter().chain(&invoices) {
                match write {
                    PackageWrite::Package { order_ids, .. } if applied.contains(*package_id) => {
                        pairs.extend(order_ids.iter().map(|o| (*package_id, *o)));
                    }
                    PackageWrite::Package { .. } => {}
                    PackageWrite::Invoice { order_ids, .. } => {
                        pairs.extend(order_ids.iter().map(|o| (*package_id, *o)));
                    }
                }
            }
            package_orders(tx, pairs).await?;
        }
        Ok(())
    }
}

/// Locks the existing rows that `sql` selects for `keys`, in its order.
pub(super) async fn lock_rows(tx: &mut Tx<'_>, sql: &'static str, keys: &[&str]) -> Result<()> {
    sqlx::query(sql).bind(keys).execute(&mut **tx).await?;
    Ok(())
}

fn shop_ids<'a, T>(
    rows: &[(&'a str, &T)],
    event: impl Fn(&T) -> &'a Event,
) -> Vec<Option<&'a str>> {
    rows.iter()
        .map(|(_, w)| event(w).shop_id.as_ref().map(|s| s.as_str()))
        .collect()
}

fn event_ids<'a, T>(rows: &[(&'a str, &T)], event: impl Fn(&T) -> &'a Event) -> Vec<&'a str> {
    rows.iter().map(|(_, w)| event(w).id.as_str()).collect()
}

fn event_types<'a, T>(
    rows: &[(&'a str, &T)],
    event: impl Fn(&T) -> &'a Event,
) -> Vec<&'static str> {
    rows.iter().map(|(_, w)| event(w).event_type()).collect()
}

/// Status upserts. `order_data` is the event's body as jsonb: the event row
/// this transaction has just inserted holds it already (`json_or_null` of
/// the same text), so it is taken from there rather than sent and parsed a
/// second time.
///
/// With `then`, each write's processing state (`OrderWrite::then`, present
/// on all of them) is applied too where the upsert applies; returns the
/// orders where it did (RETURNING yields a row only then).
async fn order_status(
    tx: &mut Tx<'_>,
    rows: &[(&str, &OrderWrite<'_>)],
    then: bool,
    now: DateTime<Utc>,
) -> Result<Vec<String>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut statuses = Vec::with_capacity(rows.len());
    let mut on_holds = Vec::with_capacity(rows.len());
    let mut times = Vec::with_capacity(rows.len());
    for (_, write) in rows {
        if let OrderChange::Status {
            status,
            on_hold,
            update_time,
        } = write.change
        {
            statuses.push(status);
            on_holds.push(on_hold);
            times.push(update_time);
        }
    }
    // Inserted, the row is `processed = false` (the default) either way.
    const SQL: &str = "INSERT INTO tiktok_orders AS o (order_id, shop_id, event_type,
             order_status, is_on_hold, update_time, last_event_id, order_data, error_message,
             created_at, updated_at)
         SELECT r.order_id, r.shop_id, r.event_type, r.order_status, r.is_on_hold,
             r.update_time, r.last_event_id,
             (SELECT w.payload FROM webhook_events w WHERE w.event_id = r.last_event_id),
             r.error, $9, $9
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::boolean[],
                     $6::bigint[], $7::text[], $8::text[]) WITH ORDINALITY
             AS r(order_id, shop_id, event_type, order_status, is_on_hold, update_time,
                  last_event_id, error, ord)
         ORDER BY r.ord
         ON CONFLICT (order_id) DO UPDATE SET
             shop_id = COALESCE(excluded.shop_id, o.shop_id),
             event_type = excluded.event_type,
             order_status = excluded.order_status,
             is_on_hold = COALESCE(excluded.is_on_hold, o.is_on_hold),
             update_time = COALESCE(excluded.update_time, o.update_time),
             last_event_id = excluded.last_event_id,
             order_data = excluded.order_data,
             updated_at = excluded.updated_at";
    const NEWER: &str = "WHERE o.update_time IS NULL
             OR excluded.update_time IS NULL
             OR excluded.update_time >= o.update_time";
    let sql = match then {
        false => format!("{SQL} {NEWER}"),
        true => format!(
            "{SQL}, processed = false,
                 error_message = COALESCE(excluded.error_message, o.error_message)
             {NEWER} RETURNING order_id"
        ),
    };
    let errors: Vec<Option<&str>> = rows
        .iter()
        .map(|(_, w)| w.then.as_ref().and_then(|t| t.error.as_deref()))
        .collect();
    let applied = sqlx::query_scalar(&sql)
        .bind(rows.iter().map(|(id, _)| *id).collect::<Vec<_>>())
        .bind(shop_ids(rows, |w| w.event))
        .bind(event_types(rows, |w| w.event))
        .bind(statuses)
        .bind(on_holds)
        .bind(times)
        .bind(event_ids(rows, |w| w.event))
        .bind(errors)
        .bind(now)
        .fetch_all(&mut **tx)
        .await?;
    Ok(applied)
}

/// Touches, each with its event's processing state when it has one
/// (`unprocessed`): a touch always applies, so both go in one upsert.
/// Without one, `processed` and `error_message` are written back unchanged.
async fn order_touch(
    tx: &mut Tx<'_>,
    rows: &[(&str, &OrderWrite<'_>)],
    now: DateTime<Utc>,
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let addresses: Vec<Option<i64>> = rows
        .iter()
        .map(|(_, w)| match w.change {
            OrderChange::Touch { address_updated_at } => address_updated_at,
            _ => None,
        })
        .collect();
    let unprocessed: Vec<bool> = rows.iter().map(|(_, w)| w.then.is_some()).collect();
    let errors: Vec<Option<&str>> = rows
        .iter()
        .map(|(_, w)| w.then.as_ref().and_then(|t| t.error.as_deref()))
        .collect();
    // A touch inserts its order as processed: it gives the queue nothing to
    // do, unless its event waits there. GREATEST ignores NULLs: "the newer
    // of the known values".
    sqlx::query(
        "INSERT INTO tiktok_orders AS o (order_id, shop_id, event_type, address_updated_at,
             processed, error_message, created_at, updated_at)
         SELECT r.order_id, r.shop_id, r.event_type, r.address_updated_at, NOT r.unprocessed,
             r.error, $7, $7
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::boolean[],
                     $6::text[]) WITH ORDINALITY
             AS r(order_id, shop_id, event_type, address_updated_at, unprocessed, error, ord)
         ORDER BY r.ord
         ON CONFLICT (order_id) DO UPDATE SET
             shop_id = COALESCE(o.shop_id, excluded.shop_id),
             address_updated_at = GREATEST(o.address_updated_at, excluded.address_updated_at),
             updated_at = excluded.updated_at,
             processed = o.processed AND excluded.processed,
             error_message = COALESCE(excluded.error_message, o.error_message)",
    )
    .bind(rows.iter().map(|(id, _)| *id).collect::<Vec<_>>())
    .bind(shop_ids(rows, |w| w.event))
    .bind(event_types(rows, |w| w.event))
    .bind(addresses)
    .bind(unprocessed)
    .bind(errors)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Marks orders as having an event waiting for the queue, or failed for good
/// with the given reason, which the order then shows. The `= ANY` repeats
/// the join for the planner: a generic plan knows nothing of the array's
/// size and may join by scanning the whole table.
async fn unprocessed(tx: &mut Tx<'_>, rows: &[(&str, &Unprocessed)]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE tiktok_orders AS o SET processed = false,
             error_message = COALESCE(r.error, o.error_message)
         FROM UNNEST($1::text[], $2::text[]) AS r(order_id, error)
         WHERE o.order_id = r.order_id AND o.order_id = ANY($1::text[])",
    )
    .bind(rows.iter().map(|(id, _)| *id).collect::<Vec<_>>())
    .bind(
        rows.iter()
            .map(|(_, u)| u.error.as_deref())
            .collect::<Vec<_>>(),
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Package upserts; returns the packages whose upsert applied (RETURNING
/// yields a row only then).
async fn package_rows(
    tx: &mut Tx<'_>,
    rows: &[(&str, &PackageWrite<'_>)],
    now: DateTime<Utc>,
) -> Result<Vec<String>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let (mut events, mut sc_types, mut role_types, mut times) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (_, write) in rows {
        if let PackageWrite::Package {
            event,
            sc_type,
            role_type,
            update_time,
            ..
        } = write
        {
            events.push(*event);
            sc_types.push(*sc_type);
            role_types.push(*role_type);
            times.push(*update_time);
        }
    }
    let applied = sqlx::query_scalar(
        "INSERT INTO packages AS p (package_id, shop_id, sc_type, role_type, update_time,
             created_at, updated_at)
         SELECT r.package_id, r.shop_id, r.sc_type, r.role_type, r.update_time, $6, $6
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[])
             WITH ORDINALITY AS r(package_id, shop_id, sc_type, role_type, update_time, ord)
         ORDER BY r.ord
         ON CONFLICT (package_id) DO UPDATE SET
             shop_id = COALESCE(excluded.shop_id, p.shop_id),
             sc_type = excluded.sc_type,
             role_type = excluded.role_type,
             update_time = COALESCE(excluded.update_time, p.update_time),
             updated_at = excluded.updated_at
         WHERE p.update_time IS NULL
             OR excluded.update_time IS NULL
             OR excluded.update_time >= p.update_time
         RETURNING package_id",
    )
    .bind(rows.iter().map(|(id, _)| *id).collect::<Vec<_>>())
    .bind(
        events
            .iter()
            .map(|e| e.shop_id.as_ref().map(|s| s.as_str()))
            .collect::<Vec<_>>(),
    )
    .bind(sc_types)
    .bind(role_types)
    .bind(times)
    .bind(now)
    .fetch_all(&mut **tx)
    .await?;
    Ok(applied)
}

async fn invoice_rows(
    tx: &mut Tx<'_>,
    rows: &[(&str, &PackageWrite<'_>)],
    now: DateTime<Utc>,
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let (mut shops, mut statuses, mut reasons, mut times) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (_, write) in rows {
        if let PackageWrite::Invoice {
            event,
            status,
            invalid_reason,
            time,
            ..
        } = write
        {
            shops.push(event.shop_id.as_ref().map(|s| s.as_str()));
            statuses.push(*status);
            reasons.push(*invalid_reason);
            times.push(*time);
        }
    }
    sqlx::query(
        "INSERT INTO packages AS p (package_id, shop_id, invoice_status, invalid_reason,
             invoice_time, created_at, updated_at)
         SELECT r.package_id, r.shop_id, r.invoice_status, r.invalid_reason, r.invoice_time,
             $6, $6
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[])
             WITH ORDINALITY
             AS r(package_id, shop_id, invoice_status, invalid_reason, invoice_time, ord)
         ORDER BY r.ord
         ON CONFLICT (package_id) DO UPDATE SET
             invoice_status = excluded.invoice_status,
             invalid_reason = excluded.invalid_reason,
             invoice_time = COALESCE(excluded.invoice_time, p.invoice_time),
             updated_at = excluded.updated_at
         WHERE p.invoice_time IS NULL
             OR excluded.invoice_time IS NULL
             OR excluded.invoice_time >= p.invoice_time",
    )
    .bind(rows.iter().map(|(id, _)| *id).collect::<Vec<_>>())
    .bind(shops)
    .bind(statuses)
    .bind(reasons)
    .bind(times)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Adds packages' orders, in one statement. Only written under the
/// package's row lock, so these rows need no place of their own in the lock
/// order.
async fn package_orders(tx: &mut Tx<'_>, mut pairs: Vec<(&str, &str)>) -> Result<()> {
    if pairs.is_empty() {
        return Ok(());
    }
    pairs.sort_unstable();
    pairs.dedup();
    sqlx::query(
        "INSERT INTO package_orders (package_id, order_id)
         SELECT r.package_id, r.order_id
         FROM UNNEST($1::text[], $2::text[]) WITH ORDINALITY AS r(package_id, order_id, ord)
         ORDER BY r.ord
         ON CONFLICT DO NOTHING",
    )
    .bind(pairs.iter().map(|(p, _)| *p).collect::<Vec<_>>())
    .bind(pairs.iter().map(|(_, o)| *o).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Every shop of the batch, each with its changes folded into one row (see
/// [`ShopRow::then`]). The newest notice decides the expiry time.
///
/// Most batches only prove that their shops are active. An upsert locks its
/// row even when it changes nothing, and every batch of a shop's flash sale
/// names that one shop, so batches under way at once waited for each other's
/// commits there; activity (whole seconds) changes at most once a second. So
/// a batch whose shops only show activity inserts the shops not seen yet and
/// updates only the rows it moves forward (`updated_at` then moves only when
/// a column does). A batch with any authorization change sends all its shops
/// through the one upsert, as two statements would take the table's rows out
/// of key order.
async fn shops(tx: &mut Tx<'_>, shops: &BTreeMap<&str, ShopRow>, now: DateTime<Utc>) -> Result<()> {
    if shops.values().all(ShopRow::is_activity_only) {
        shop_activity(tx, shops, now).await
    } else {
        shop_upsert(tx, shops, now).await
    }
}

impl ShopRow {
    fn is_activity_only(&self) -> bool {
        self.deauthorized.is_none() && self.expires.is_none() && self.notice.is_none()
    }
}

/// Activity only: new shops are inserted, known ones locked (in key order)
/// and updated only where the activity moves forward. A shop seen for the
/// first time is created before the known ones are locked, out of key order
/// against another batch's upsert: the same rare case as the module's "Lock
/// order" leaves open, which `PgStore::commit` handles by running the batch
/// again.
async fn shop_activity(
    tx: &mut Tx<'_>,
    shops: &BTreeMap<&str, ShopRow>,
    now: DateTime<Utc>,
) -> Result<()> {
    if shops.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = shops.keys().copied().collect();
    let activity: Vec<Option<i64>> = shops.values().map(|r| r.activity).collect();
    sqlx::query(
        "INSERT INTO shops (shop_id, last_activity_at, created_at, updated_at)
         SELECT r.shop_id, r.activity, $3, $3
         FROM UNNEST($1::text[], $2::bigint[]) WITH ORDINALITY AS r(shop_id, activity, ord)
         ORDER BY r.ord
         ON CONFLICT (shop_id) DO NOTHING",
    )
    .bind(&ids)
    .bind(&activity)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    // The subquery locks only the rows to move forward, in key order, and
    // checks again after waiting for a lock; the update changes only them.
    sqlx::query(
        "UPDATE shops s SET last_activity_at = r.activity, updated_at = $3
         FROM UNNEST($1::text[], $2::bigint[]) AS r(shop_id, activity)
         WHERE s.shop_id = r.shop_id
           AND s.shop_id IN (
               SELECT l.shop_id FROM shops l
               JOIN UNNEST($1::text[], $2::bigint[]) WITH ORDINALITY AS k(shop_id, activity, ord)
                   USING (shop_id)
               WHERE k.activity IS NOT NULL
                 AND (l.last_activity_at IS NULL OR l.last_activity_at < k.activity)
               ORDER BY k.ord FOR NO KEY UPDATE OF l)
           AND (s.last_activity_at IS NULL OR s.last_activity_at < r.activity)",
    )
    .bind(&ids)
    .bind(&activity)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// One upsert for every shop of a batch with any authorization change.
async fn shop_upsert(
    tx: &mut Tx<'_>,
    shops: &BTreeMap<&str, ShopRow>,
    now: DateTime<Utc>,
) -> Result<()> {
    if shops.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&ShopRow) -> Option<i64>| shops.values().map(f).collect::<Vec<_>>();
    sqlx::query(
        "INSERT INTO shops AS s (shop_id, last_activity_at, deauthorized_at,
             authorization_expires_at, expiry_notice_at, created_at, updated_at)
         SELECT r.shop_id, r.activity, r.deauthorized, r.expires, r.notice, $6, $6
         FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[])
             WITH ORDINALITY AS r(shop_id, activity, deauthorized, expires, notice, ord)
         ORDER BY r.ord
         ON CONFLICT (shop_id) DO UPDATE SET
             last_activity_at = GREATEST(s.last_activity_at, excluded.last_activity_at),
             deauthorized_at = GREATEST(s.deauthorized_at, excluded.deauthorized_at),
             authorization_expires_at = CASE
                 WHEN excluded.expiry_notice_at IS NOT NULL
                  AND (s.expiry_notice_at IS NULL
                       OR excluded.expiry_notice_at >= s.expiry_notice_at)
                 THEN excluded.authorization_expires_at
                 ELSE s.authorization_expires_at END,
             expiry_notice_at = GREATEST(s.expiry_notice_at, excluded.expiry_notice_at),
             updated_at = excluded.updated_at",
    )
    .bind(shops.keys().copied().collect::<Vec<_>>())
    .bind(column(|r| r.activity))
    .bind(column(|r| r.deauthorized))
    .bind(column(|r| r.expires))
    .bind(column(|r| r.notice))
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(activity: Option<i64>, expires: Option<i64>, notice: Option<i64>) -> ShopRow {
        ShopRow {
            activity,
            deauthorized: None,
            expires,
            notice,
        }
    }

    #[test]
    fn greatest_ignores_nulls() {
        assert_eq!(greatest(None, None), None);
        assert_eq!(greatest(Some(3), None), Some(3));
        assert_eq!(greatest(None, Some(3)), Some(3));
        assert_eq!(greatest(Some(2), Some(3)), Some(3));
    }

    /// Folding is associative, which is what makes one upsert of the fold
    /// equal to upserting the changes one by one.
    #[test]
    fn folding_shop_changes_is_associative() {
        let values = [None, Some(1), Some(2)];
        let mut rows = Vec::new();
        for a in values {
            for e in [None, Some(10), Some(20)] {
                for n in values {
                    rows.push(row(a, e, n));
                }
            }
        }
        for &x in &rows {
            for &y in &rows {
                for &z in &rows {
                    assert_eq!(x.then(y).then(z), x.then(y.then(z)), "{x:?} {y:?} {z:?}");
                }
            }
        }
    }
}
