//! SQLite's half of the write path: one event inside the batch transaction.
//!
//! The database decides: dedupe is the unique key on `event_id`, and every
//! projection is a conditional upsert that changes a row only when the
//! incoming ordering value is not older than the stored one.

use chrono::Utc;
use sqlx::{Sqlite, Transaction};

use crate::{
    store::{
        projection::{
            processing_outcome, writes, AspectColumns, ColumnValue, ProductAspect, Request,
            ShopChange, Write,
        },
        time::to_text,
        Committed, Result,
    },
    tiktok::Event,
};

type Tx<'t> = Transaction<'t, Sqlite>;

/// Inserts one event, or counts one more delivery of a known one; applies the
/// projections only for a new event.
pub async fn store_event(tx: &mut Tx<'_>, event: &Event) -> Result<Committed> {
    let now = to_text(Utc::now());
    // A readable event waits for the queue; a malformed one is final now.
    let (processed, success, error) = match processing_outcome(event) {
        (true, _) => (false, None, None),
        (false, error) => (true, Some(false), error),
    };
    let deliveries: i64 = sqlx::query_scalar(
        "INSERT INTO webhook_events (event_id, type, event_type, shop_id, order_id, payload,
             timestamp, received_at, last_received_at, processed, success, error_message)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9, ?10, ?11)
         ON CONFLICT (event_id) DO UPDATE SET
             deliveries = deliveries + 1, last_received_at = excluded.last_received_at
         RETURNING deliveries",
    )
    .bind(event.id.as_str())
    .bind(event.type_code)
    .bind(event.event_type())
    .bind(event.shop_id.as_ref().map(|s| s.as_str()))
    .bind(event.order_id().map(|s| s.as_str()))
    .bind(event.raw_str())
    .bind(event.timestamp)
    .bind(&now)
    .bind(processed)
    .bind(success)
    .bind(error.as_deref())
    .fetch_one(&mut **tx)
    .await?;
    let duplicate = deliveries > 1;
    if !duplicate {
        let ctx = Ctx { event, now: &now };
        for write in writes(event) {
            ctx.apply(tx, &write).await?;
        }
        if !processed {
            ctx.enqueue(tx).await?;
        } else if let (Some(order_id), Some(reason)) = (event.order_id(), error) {
            // Unreadable, so never queued: its order shows the failure.
            sqlx::query(
                "UPDATE tiktok_orders SET processed = 0, error_message = ?1 WHERE order_id = ?2",
            )
            .bind(reason)
            .bind(order_id.as_str())
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(Committed {
        duplicate,
        deliveries,
    })
}

/// What every write of one event shares.
struct Ctx<'e> {
    event: &'e Event,
    now: &'e str,
}

impl Ctx<'_> {
    fn shop_id(&self) -> Option<&str> {
        self.event.shop_id.as_ref().map(|s| s.as_str())
    }

    async fn apply(&self, tx: &mut Tx<'_>, write: &Write<'_>) -> Result<()> {
        match write {
            Write::OrderStatus {
                order_id,
                status,
                on_hold,
                update_time,
            } => {
                self.order_status(tx, order_id, status, *on_hold, *update_time)
                    .await
            }
            Write::OrderHistory {
                order_id,
                status,
                update_time,
            } => {
                sqlx::query(
                    "INSERT INTO order_status_history
                         (order_id, event_id, order_status, update_time, received_at)
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
                )
                .bind(order_id)
                .bind(self.event.id.as_str())
                .bind(status)
                .bind(update_time)
                .bind(self.now)
                .execute(&mut **tx)
                .await?;
                Ok(())
            }
            Write::OrderTouch {
                order_id,
                address_updated_at,
            } => self.order_touch(tx, order_id, *address_updated_at).await,
            Write::Request(request) => self.request(tx, request).await,
            Write::Package {
                package_id,
                sc_type,
                role_type,
                order_ids,
                update_time,
            } => {
                self.package(
                    tx,
                    package_id,
                    *sc_type,
                    *role_type,
                    order_ids,
                    *update_time,
                )
                .await
            }
            Write::Invoice {
                package_id,
                order_ids,
                status,
                invalid_reason,
                time,
            } => {
                self.invoice(tx, package_id, order_ids, *status, *invalid_reason, *time)
                    .await
            }
            Write::Product {
                product_id,
                aspect,
                time,
            } => self.product(tx, product_id, aspect, *time).await,
            Write::Shop(change) => self.shop(tx, *change).await,
        }
    }

    /// The event's job, due now; its order waits for it.
    async fn enqueue(&self, tx: &mut Tx<'_>) -> Result<()> {
        sqlx::query(
            "INSERT INTO jobs (event_id, next_run_at, created_at, updated_at)
             VALUES (?1, ?2, ?2, ?2) ON CONFLICT DO NOTHING",
        )
        .bind(self.event.id.as_str())
        .bind(self.now)
        .execute(&mut **tx)
        .await?;
        if let Some(order_id) = self.event.order_id() {
            sqlx::query("UPDATE tiktok_orders SET processed = 0 WHERE order_id = ?1")
                .bind(order_id.as_str())
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    async fn order_status(
        &self,
        tx: &mut Tx<'_>,
        order_id: &str,
        status: &str,
        on_hold: Option<bool>,
        update_time: Option<i64>,
    ) -> Result<()> {
        sqlx::query(
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
        )
        .bind(order_id)
        .bind(self.shop_id())
        .bind(self.event.event_type())
        .bind(status)
        .bind(on_hold)
        .bind(update_time)
        .bind(self.event.id.as_str())
        .bind(self.event.raw_str())
        .bind(self.now)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    async fn order_touch(
        &self,
        tx: &mut Tx<'_>,
        order_id: &str,
        address_updated_at: Option<i64>,
    ) -> Result<()> {
        // SQLite's two-argument MAX is NULL when either side is; the
        // COALESCEs make it "the newer of the known values".
        sqlx::query(
            "INSERT INTO tiktok_orders (order_id, shop_id, event_type, address_updated_at,
                 processed, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, 1, ?5, ?5)
             ON CONFLICT (order_id) DO UPDATE SET
                 shop_id = COALESCE(tiktok_orders.shop_id, excluded.shop_id),
                 address_updated_at = MAX(
                     COALESCE(tiktok_orders.address_updated_at, excluded.address_updated_at),
                     COALESCE(excluded.address_updated_at, tiktok_orders.address_updated_at)),
                 updated_at = excluded.updated_at",
        )
        .bind(order_id)
        .bind(self.shop_id())
        .bind(self.event.event_type())
        .bind(address_updated_at)
        .bind(self.now)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    async fn request(&self, tx: &mut Tx<'_>, r: &Request<'_>) -> Result<()> {
        sqlx::query(
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
        )
        .bind(r.order_id)
        .bind(r.kind.as_str())
        .bind(r.request_id)
        .bind(r.status)
        .bind(r.role)
        .bind(r.request_type)
        .bind(r.amount)
        .bind(r.currency)
        .bind(r.update_time)
        .bind(self.event.id.as_str())
        .bind(self.now)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    async fn package(
        &self,
        tx: &mut Tx<'_>,
        package_id: &str,
        sc_type: Option<&str>,
        role_type: Option<&str>,
        order_ids: &[&str],
        update_time: Option<i64>,
    ) -> Result<()> {
        // RETURNING yields a row only when the upsert applied: only then does
        // this event's order list replace the package's.
        let applied: Option<String> = sqlx::query_scalar(
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
        )
        .bind(package_id)
        .bind(self.shop_id())
        .bind(sc_type)
        .bind(role_type)
        .bind(update_time)
        .bind(self.now)
        .fetch_optional(&mut **tx)
        .await?;
        if applied.is_some() {
            sqlx::query("DELETE FROM package_orders WHERE package_id = ?1")
                .bind(package_id)
                .execute(&mut **tx)
                .await?;
            self.package_orders(tx, package_id, order_ids).await?;
        }
        Ok(())
    }

    async fn package_orders(&self, tx: &mut Tx<'_>, package_id: &str, ids: &[&str]) -> Result<()> {
        for order_id in ids {
            sqlx::query(
                "INSERT INTO package_orders (package_id, order_id) VALUES (?1, ?2)
                 ON CONFLICT DO NOTHING",
            )
            .bind(package_id)
            .bind(order_id)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    async fn invoice(
        &self,
        tx: &mut Tx<'_>,
        package_id: &str,
        order_ids: &[&str],
        status: Option<&str>,
        invalid_reason: Option<&str>,
        time: Option<i64>,
    ) -> Result<()> {
        sqlx::query(
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
        )
        .bind(package_id)
        .bind(self.shop_id())
        .bind(status)
        .bind(invalid_reason)
        .bind(time)
        .bind(self.now)
        .execute(&mut **tx)
        .await?;
        self.package_orders(tx, package_id, order_ids).await
    }

    async fn product(
        &self,
        tx: &mut Tx<'_>,
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
        let mut query = sqlx::query(&sql)
            .bind(product_id)
            .bind(self.shop_id())
            .bind(time)
            .bind(self.now);
        for value in values {
            query = match value {
                ColumnValue::Text(text) => query.bind(text),
                // SQLite has no arrays: a list is kept as JSON text.
                ColumnValue::List(items) => query.bind(json_list(items)),
            };
        }
        query.execute(&mut **tx).await?;
        Ok(())
    }

    async fn shop(&self, tx: &mut Tx<'_>, change: ShopChange) -> Result<()> {
        let Some(shop_id) = self.shop_id() else {
            return Ok(());
        };
        let (activity, deauthorized, expires, notice) = match change {
            ShopChange::Activity { at } => (at, None, None, None),
            ShopChange::Deauthorized { at } => (None, at, None, None),
            ShopChange::ExpiryNotice { expires_at, at } => (at, None, expires_at, at),
        };
        // An expiry notice also proves the app is still authorized. The
        // newest notice decides the expiry time.
        sqlx::query(
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
        )
        .bind(shop_id)
        .bind(activity)
        .bind(deauthorized)
        .bind(expires)
        .bind(notice)
        .bind(self.now)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}
