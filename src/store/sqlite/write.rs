//! SQLite's half of the write path: one event inside the batch transaction.
//!
//! The database decides: dedupe is the unique key on `event_id`, and every
//! projection is a conditional upsert that changes a row only when the
//! incoming ordering value is not older than the stored one.

//!
//! Every statement is prepared once per connection (`prepare_cached`) and
//! runs on the writer thread (`thread.rs`), straight into SQLite.

use std::collections::BTreeMap;

use rusqlite::{params, params_from_iter, types::Value, OptionalExtension, Transaction};

use crate::{
    store::{
        projection::{
            processing_outcome, writes, AspectColumns, ColumnValue, ProductAspect, Request,
            ShopChange, Write,
        },
        Committed, Result,
    },
    tiktok::Event,
};

/// One batch's writes inside its transaction.
///
/// Nearly every event marks its shop as active, and a batch from one shop
/// would update that one row hundreds of times. Activity only moves
/// `last_activity_at` forward (a maximum, whatever the order), so the batch
/// keeps each shop's newest activity and writes it once, in [`Batch::finish`].
pub struct Batch<'t> {
    tx: &'t Transaction<'t>,
    now: &'t str,
    /// The new jobs' lease owner and end (text), when they are created
    /// leased (see [`crate::store::Lease`]).
    lease: Option<(&'t str, &'t str)>,
    activity: BTreeMap<String, Option<i64>>,
}

impl<'t> Batch<'t> {
    pub fn new(tx: &'t Transaction<'t>, now: &'t str, lease: Option<(&'t str, &'t str)>) -> Self {
        Self {
            tx,
            now,
            lease,
            activity: BTreeMap::new(),
        }
    }

    /// Inserts one event, or counts one more delivery of a known one;
    /// applies the projections only for a new event.
    pub fn store_event(&mut self, event: &Event) -> Result<Committed> {
        let tx = self.tx;
        // A readable event waits for the queue; a malformed one is final now.
        let (processed, success, error) = match processing_outcome(event) {
            (true, _) => (false, None, None),
            (false, error) => (true, Some(false), error),
        };
        let deliveries: i64 = tx
            .prepare_cached(
                "INSERT INTO webhook_events (event_id, type, event_type, shop_id, order_id,
                     payload, timestamp, received_at, last_received_at, processed, success,
                     error_message)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9, ?10, ?11)
                 ON CONFLICT (event_id) DO UPDATE SET
                     deliveries = deliveries + 1, last_received_at = excluded.last_received_at
                 RETURNING deliveries",
            )?
            .query_row(
                params![
                    event.id.as_str(),
                    event.type_code,
                    event.event_type(),
                    event.shop_id.as_ref().map(|s| s.as_str()),
                    event.order_id().map(|s| s.as_str()),
                    event.raw_str(),
                    event.timestamp,
                    self.now,
                    processed,
                    success,
                    error.as_deref(),
                ],
                |row| row.get(0),
            )?;
        let duplicate = deliveries > 1;
        if !duplicate {
            let ctx = Ctx {
                tx,
                event,
                now: self.now,
            };
            for write in writes(event) {
                match (write, ctx.shop_id()) {
                    (Write::Shop(ShopChange::Activity { at }), Some(shop_id)) => {
                        let newest = self.activity.entry(shop_id.to_owned()).or_default();
                        *newest = (*newest).max(at);
                    }
                    (write, _) => ctx.apply(&write)?,
                }
            }
            if !processed {
                ctx.enqueue(self.lease)?;
            } else if let (Some(order_id), Some(reason)) = (event.order_id(), error) {
                // Unreadable, so never queued: its order shows the failure.
                tx.prepare_cached(
                    "UPDATE tiktok_orders SET processed = 0, error_message = ?1
                     WHERE order_id = ?2",
                )?
                .execute(params![reason, order_id.as_str()])?;
            }
        }
        Ok(Committed {
            duplicate,
            deliveries,
        })
    }

    /// Writes what the batch gathered: each shop's newest activity.
    pub fn finish(self) -> Result<()> {
        for (shop_id, at) in &self.activity {
            shop(self.tx, self.now, shop_id, ShopChange::Activity { at: *at })?;
        }
        Ok(())
    }
}

/// What every write of one event shares.
struct Ctx<'e> {
    tx: &'e Transaction<'e>,
    event: &'e Event,
    now: &'e str,
}

impl Ctx<'_> {
    fn shop_id(&self) -> Option<&str> {
        self.event.shop_id.as_ref().map(|s| s.as_str())
    }

    /// Runs one cached statement.
    fn run(&self, sql: &str, params: impl rusqlite::Params) -> Result<()> {
        run(self.tx, sql, params)
    }

    fn apply(&self, write: &Write<'_>) -> Result<()> {
        match write {
            Write::OrderStatus {
                order_id,
                status,
                on_hold,
                update_time,
            } => self.order_status(order_id, status, *on_hold, *update_time),
            Write::OrderHistory {
                order_id,
                status,
                update_time,
            } => self.run(
                "INSERT INTO order_status_history
                     (order_id, event_id, order_status, update_time, received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
                params![
                    order_id,
                    self.event.id.as_str(),
                    status,
                    update_time,
                    self.now
                ],
            ),
            Write::OrderTouch {
                order_id,
                address_updated_at,
            } => self.order_touch(order_id, *address_updated_at),
            Write::Request(request) => self.request(request),
            Write::Package {
                package_id,
                sc_type,
                role_type,
                order_ids,
                update_time,
            } => self.package(package_id, *sc_type, *role_type, order_ids, *update_time),
            Write::Invoice {
                package_id,
                order_ids,
                status,
                invalid_reason,
                time,
            } => self.invoice(package_id, order_ids, *status, *invalid_reason, *time),
            Write::Product {
                product_id,
                aspect,
                time,
            } => self.product(product_id, aspect, *time),
            Write::Shop(change) => match self.shop_id() {
                Some(shop_id) => shop(self.tx, self.now, shop_id, *change),
                None => Ok(()),
            },
        }
    }

    /// The event's job, due now or already leased (`lease`: owner, end);
    /// its order waits for it.
    fn enqueue(&self, lease: Option<(&str, &str)>) -> Result<()> {
        let (status, attempts) = match lease {
            Some(_) => ("running", 1),
            None => ("pending", 0),
        };
        self.run(
            "INSERT INTO jobs (event_id, status, attempts, lease_owner, lease_until, next_run_at,
                 created_at, updated_at)
             VALUES (?1, ?3, ?4, ?5, ?6, ?2, ?2, ?2) ON CONFLICT DO NOTHING",
            params![
                self.event.id.as_str(),
                self.now,
                status,
                attempts,
                lease.map(|l| l.0),
                lease.map(|l| l.1)
            ],
        )?;
        if let Some(order_id) = self.event.order_id() {
            // A new order row already says 0: no write then.
            self.run(
                "UPDATE tiktok_orders SET processed = 0 WHERE order_id = ?1 AND processed != 0",
                params![order_id.as_str()],
            )?;
        }
        Ok(())
    }

    fn order_status(
        &self,
        order_id: &str,
        status: &str,
        on_hold: Option<bool>,
        update_time: Option<i64>,
    ) -> Result<()> {
        self.run(
            "INSERT INTO tiktok_orders (order_id, shop_id, event_type, order_status, is_on_hold,
                 update_time, last_event_id, order_data, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)
             ON CONFLICT (order_id) DO UPDATE SET
                 shop_id = COALESCE(excluded.shop_id, tiktok_orders.shop_id),
                 event_type = excluded.event_type,
                 order_status = excluded.order_status,
                 is_on_hold = COALESCE(excluded.is_on_hold, tiktok_orders.is_on_hold),
                 update_time = COALESCE(excluded.update_time, tiktok_orders.update_time),
                 last_event_id = excluded.last_event_id,
                 order_data = excluded.order_data,
                 updated_at = excluded.updated_at
             WHERE tiktok_orders.update_time IS NULL
                 OR excluded.update_time IS NULL
                 OR excluded.update_time >= tiktok_orders.update_time",
            params![
                order_id,
                self.shop_id(),
                self.event.event_type(),
                status,
                on_hold,
                update_time,
                self.event.id.as_str(),
                self.event.raw_str(),
                self.now,
            ],
        )
    }

    fn order_touch(&self, order_id: &str, address_updated_at: Option<i64>) -> Result<()> {
        // SQLite's two-argument MAX is NULL when either side is; the
        // COALESCEs make it "the newer of the known values".
        self.run(
            "INSERT INTO tiktok_orders (order_id, shop_id, event_type, address_updated_at,
                 processed, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, 1, ?5, ?5)
             ON CONFLICT (order_id) DO UPDATE SET
                 shop_id = COALESCE(tiktok_orders.shop_id, excluded.shop_id),
                 address_updated_at = MAX(
                     COALESCE(tiktok_orders.address_updated_at, excluded.address_updated_at),
                     COALESCE(excluded.address_updated_at, tiktok_orders.address_updated_at)),
                 updated_at = excluded.updated_at",
            params![
                order_id,
                self.shop_id(),
                self.event.event_type(),
                address_updated_at,
                self.now,
            ],
        )
    }

    fn request(&self, r: &Request<'_>) -> Result<()> {
        self.run(
            "INSERT INTO order_requests (order_id, kind, request_id, status, role, request_type,
                 amount, currency, update_time, last_event_id, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)
             ON CONFLICT (order_id, kind, request_id) DO UPDATE SET
                 status = COALESCE(excluded.status, order_requests.status),
                 role = COALESCE(excluded.role, order_requests.role),
                 request_type = COALESCE(excluded.request_type, order_requests.request_type),
                 amount = COALESCE(excluded.amount, order_requests.amount),
                 currency = COALESCE(excluded.currency, order_requests.currency),
                 update_time = COALESCE(excluded.update_time, order_requests.update_time),
                 last_event_id = excluded.last_event_id,
                 updated_at = excluded.updated_at
             WHERE order_requests.update_time IS NULL
                 OR excluded.update_time IS NULL
                 OR excluded.update_time >= order_requests.update_time",
            params![
                r.order_id,
                r.kind.as_str(),
                r.request_id,
                r.status,
                r.role,
                r.request_type,
                r.amount,
                r.currency,
                r.update_time,
                self.event.id.as_str(),
                self.now,
            ],
        )
    }

    fn package(
        &self,
        package_id: &str,
        sc_type: Option<&str>,
        role_type: Option<&str>,
        order_ids: &[&str],
        update_time: Option<i64>,
    ) -> Result<()> {
        // RETURNING yields a row only when the upsert applied: only then does
        // this event's order list replace the package's.
        let applied: Option<String> = self
            .tx
            .prepare_cached(
                "INSERT INTO packages (package_id, shop_id, sc_type, role_type, update_time,
                     created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
                 ON CONFLICT (package_id) DO UPDATE SET
                     shop_id = COALESCE(excluded.shop_id, packages.shop_id),
                     sc_type = excluded.sc_type,
                     role_type = excluded.role_type,
                     update_time = COALESCE(excluded.update_time, packages.update_time),
                     updated_at = excluded.updated_at
                 WHERE packages.update_time IS NULL
                     OR excluded.update_time IS NULL
                     OR excluded.update_time >= packages.update_time
                 RETURNING package_id",
            )?
            .query_row(
                params![
                    package_id,
                    self.shop_id(),
                    sc_type,
                    role_type,
                    update_time,
                    self.now
                ],
                |row| row.get(0),
            )
            .optional()?;
        if applied.is_some() {
            self.run(
                "DELETE FROM package_orders WHERE package_id = ?1",
                params![package_id],
            )?;
            self.package_orders(package_id, order_ids)?;
        }
        Ok(())
    }

    fn package_orders(&self, package_id: &str, ids: &[&str]) -> Result<()> {
        for order_id in ids {
            self.run(
                "INSERT INTO package_orders (package_id, order_id) VALUES (?1, ?2)
                 ON CONFLICT DO NOTHING",
                params![package_id, order_id],
            )?;
        }
        Ok(())
    }

    fn invoice(
        &self,
        package_id: &str,
        order_ids: &[&str],
        status: Option<&str>,
        invalid_reason: Option<&str>,
        time: Option<i64>,
    ) -> Result<()> {
        self.run(
            "INSERT INTO packages (package_id, shop_id, invoice_status, invalid_reason,
                 invoice_time, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
             ON CONFLICT (package_id) DO UPDATE SET
                 invoice_status = excluded.invoice_status,
                 invalid_reason = excluded.invalid_reason,
                 invoice_time = COALESCE(excluded.invoice_time, packages.invoice_time),
                 updated_at = excluded.updated_at
             WHERE packages.invoice_time IS NULL
                 OR excluded.invoice_time IS NULL
                 OR excluded.invoice_time >= packages.invoice_time",
            params![
                package_id,
                self.shop_id(),
                status,
                invalid_reason,
                time,
                self.now
            ],
        )?;
        self.package_orders(package_id, order_ids)
    }

    fn product(
        &self,
        product_id: &str,
        aspect: &ProductAspect<'_>,
        time: Option<i64>,
    ) -> Result<()> {
        let AspectColumns {
            columns,
            time_column,
            values,
        } = aspect.columns();
        let sets: Vec<String> = columns
            .iter()
            .map(|c| format!("{c} = excluded.{c}"))
            .collect();
        let placeholders: Vec<String> = (0..columns.len()).map(|i| format!("?{}", i + 5)).collect();
        // One text per aspect, so the statement cache keeps one of each.
        let sql = format!(
            "INSERT INTO products (product_id, shop_id, {time_column}, created_at, updated_at, {cols})
             VALUES (?1, ?2, ?3, ?4, ?4, {placeholders})
             ON CONFLICT (product_id) DO UPDATE SET
                 shop_id = COALESCE(excluded.shop_id, products.shop_id),
                 {time_column} = COALESCE(excluded.{time_column}, products.{time_column}),
                 updated_at = excluded.updated_at, {sets}
             WHERE products.{time_column} IS NULL
                 OR excluded.{time_column} IS NULL
                 OR excluded.{time_column} >= products.{time_column}",
            cols = columns.join(", "),
            placeholders = placeholders.join(", "),
            sets = sets.join(", "),
        );
        let text = |t: Option<&str>| t.map_or(Value::Null, |t| Value::Text(t.to_owned()));
        let mut binds = vec![
            Value::Text(product_id.to_owned()),
            text(self.shop_id()),
            time.map_or(Value::Null, Value::Integer),
            Value::Text(self.now.to_owned()),
        ];
        binds.extend(values.iter().map(|value| match value {
            ColumnValue::Text(t) => text(*t),
            // SQLite has no arrays: a list is kept as JSON text.
            ColumnValue::List(items) => Value::Text(json_list(items)),
        }));
        self.run(&sql, params_from_iter(binds))
    }
}

/// Runs one cached statement.
fn run(tx: &Transaction<'_>, sql: &str, params: impl rusqlite::Params) -> Result<()> {
    tx.prepare_cached(sql)?.execute(params)?;
    Ok(())
}

/// A shop's authorization state. An expiry notice also proves the app is
/// still authorized; the newest notice decides the expiry time.
fn shop(tx: &Transaction<'_>, now: &str, shop_id: &str, change: ShopChange) -> Result<()> {
    let (activity, deauthorized, expires, notice) = match change {
        ShopChange::Activity { at } => (at, None, None, None),
        ShopChange::Deauthorized { at } => (None, at, None, None),
        ShopChange::ExpiryNotice { expires_at, at } => (at, None, expires_at, at),
    };
    run(
        tx,
        "INSERT INTO shops (shop_id, last_activity_at, deauthorized_at,
             authorization_expires_at, expiry_notice_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
         ON CONFLICT (shop_id) DO UPDATE SET
             last_activity_at = MAX(COALESCE(shops.last_activity_at, excluded.last_activity_at),
                                    COALESCE(excluded.last_activity_at, shops.last_activity_at)),
             deauthorized_at = MAX(COALESCE(shops.deauthorized_at, excluded.deauthorized_at),
                                   COALESCE(excluded.deauthorized_at, shops.deauthorized_at)),
             authorization_expires_at = CASE
                 WHEN excluded.expiry_notice_at IS NOT NULL
                  AND (shops.expiry_notice_at IS NULL
                       OR excluded.expiry_notice_at >= shops.expiry_notice_at)
                 THEN excluded.authorization_expires_at
                 ELSE shops.authorization_expires_at END,
             expiry_notice_at = MAX(COALESCE(shops.expiry_notice_at, excluded.expiry_notice_at),
                                    COALESCE(excluded.expiry_notice_at, shops.expiry_notice_at)),
             updated_at = excluded.updated_at",
        params![shop_id, activity, deauthorized, expires, notice, now],
    )
}

fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}
