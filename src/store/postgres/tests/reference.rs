//! The per-row write path this crate had before batches were sent as
//! multi-row statements (one statement per projection write, in the order
//! the event makes them), kept verbatim as the oracle of `super`'s tests:
//! a batch must leave the database as these statements, one event at a time,
//! would.

use chrono::{DateTime, Utc};

use crate::{
    store::{
        postgres::write::{enqueue, insert_events, Tx},
        projection::{
            processing_outcome, writes, AspectColumns, ColumnValue, ProductAspect, Request,
            ShopChange, Write,
        },
        Committed, Result,
    },
    tiktok::Event,
};

/// Commits one event the old way.
pub async fn store_event(tx: &mut Tx<'_>, event: &Event, now: DateTime<Utc>) -> Result<Committed> {
    let distinct = [(event.id.as_str(), (event, 1))].into_iter().collect();
    let totals = insert_events(tx, &distinct, now).await?;
    let deliveries = totals[event.id.as_str()];
    if deliveries > 1 {
        return Ok(Committed {
            duplicate: true,
            deliveries,
        });
    }
    let ctx = Ctx { event, now };
    for write in writes(event) {
        ctx.apply(tx, &write).await?;
    }
    let (readable, error) = processing_outcome(event);
    if let Some(order_id) = event.order_id() {
        match error {
            _ if readable => ctx.unprocessed(tx, order_id.as_str(), None).await?,
            Some(reason) => {
                ctx.unprocessed(tx, order_id.as_str(), Some(&reason))
                    .await?
            }
            None => {}
        }
    }
    if readable {
        enqueue(tx, &[event.id.as_str()], now, None).await?;
    }
    Ok(Committed {
        duplicate: false,
        deliveries,
    })
}

/// What every write of one event shares.
struct Ctx<'e> {
    pub event: &'e Event,
    pub now: DateTime<Utc>,
}

impl Ctx<'_> {
    fn shop_id(&self) -> Option<&str> {
        self.event.shop_id.as_ref().map(|s| s.as_str())
    }

    pub async fn apply(&self, tx: &mut Tx<'_>, write: &Write<'_>) -> Result<()> {
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
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
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
                let package = Package {
                    package_id,
                    sc_type: *sc_type,
                    role_type: *role_type,
                    update_time: *update_time,
                };
                self.package(tx, &package, order_ids).await
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

    /// The order has an event waiting for the processing queue, or one that
    /// failed for good (`error`), which the order then shows.
    pub async fn unprocessed(
        &self,
        tx: &mut Tx<'_>,
        order_id: &str,
        error: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE tiktok_orders SET processed = false,
                 error_message = COALESCE($2, error_message)
             WHERE order_id = $1",
        )
        .bind(order_id)
        .bind(error)
        .execute(&mut **tx)
        .await?;
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
            "INSERT INTO tiktok_orders AS o (order_id, shop_id, event_type, order_status,
                 is_on_hold, update_time, last_event_id, order_data, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, json_or_null($8), $9, $9)
             ON CONFLICT (order_id) DO UPDATE SET
                 shop_id = COALESCE(excluded.shop_id, o.shop_id),
                 event_type = excluded.event_type,
                 order_status = excluded.order_status,
                 is_on_hold = COALESCE(excluded.is_on_hold, o.is_on_hold),
                 update_time = COALESCE(excluded.update_time, o.update_time),
                 last_event_id = excluded.last_event_id,
                 order_data = excluded.order_data,
                 updated_at = excluded.updated_at
             WHERE o.update_time IS NULL
                 OR excluded.update_time IS NULL
                 OR excluded.update_time >= o.update_time",
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
        // GREATEST ignores NULLs: "the newer of the known values".
        sqlx::query(
            "INSERT INTO tiktok_orders AS o (order_id, shop_id, event_type, address_updated_at,
                 processed, created_at, updated_at)
             VALUES ($1, $2, $3, $4, true, $5, $5)
             ON CONFLICT (order_id) DO UPDATE SET
                 shop_id = COALESCE(o.shop_id, excluded.shop_id),
                 address_updated_at = GREATEST(o.address_updated_at, excluded.address_updated_at),
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
            "INSERT INTO order_requests AS q (order_id, kind, request_id, status, role,
                 request_type, amount, currency, update_time, last_event_id, created_at,
                 updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)
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

    async fn package(&self, tx: &mut Tx<'_>, p: &Package<'_>, order_ids: &[&str]) -> Result<()> {
        // RETURNING yields a row only when the upsert applied: only then does
        // this event's order list replace the package's.
        let applied: Option<String> = sqlx::query_scalar(
            "INSERT INTO packages AS p (package_id, shop_id, sc_type, role_type, update_time,
                 created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6)
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
        .bind(p.package_id)
        .bind(self.shop_id())
        .bind(p.sc_type)
        .bind(p.role_type)
        .bind(p.update_time)
        .bind(self.now)
        .fetch_optional(&mut **tx)
        .await?;
        if applied.is_some() {
            sqlx::query("DELETE FROM package_orders WHERE package_id = $1")
                .bind(p.package_id)
                .execute(&mut **tx)
                .await?;
            package_orders(tx, p.package_id, order_ids).await?;
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
            "INSERT INTO packages AS p (package_id, shop_id, invoice_status, invalid_reason,
                 invoice_time, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6)
             ON CONFLICT (package_id) DO UPDATE SET
                 invoice_status = excluded.invoice_status,
                 invalid_reason = excluded.invalid_reason,
                 invoice_time = COALESCE(excluded.invoice_time, p.invoice_time),
                 updated_at = excluded.updated_at
             WHERE p.invoice_time IS NULL
                 OR excluded.invoice_time IS NULL
                 OR excluded.invoice_time >= p.invoice_time",
        )
        .bind(package_id)
        .bind(self.shop_id())
        .bind(status)
        .bind(invalid_reason)
        .bind(time)
        .bind(self.now)
        .execute(&mut **tx)
        .await?;
        package_orders(tx, package_id, order_ids).await
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
            "INSERT INTO shops AS s (shop_id, last_activity_at, deauthorized_at,
                 authorization_expires_at, expiry_notice_at, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6)
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

/// A package's own columns, as a type-4 event sets them.
struct Package<'a> {
    package_id: &'a str,
    sc_type: Option<&'a str>,
    role_type: Option<&'a str>,
    update_time: Option<i64>,
}

/// Adds the package's orders, in one statement.
async fn package_orders(tx: &mut Tx<'_>, package_id: &str, ids: &[&str]) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO package_orders (package_id, order_id)
         SELECT $1, order_id FROM UNNEST($2::text[]) AS order_id
         ON CONFLICT DO NOTHING",
    )
    .bind(package_id)
    .bind(ids)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Ctx<'_> {
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
        let placeholders: Vec<String> = (0..columns.len()).map(|i| format!("${}", i + 5)).collect();
        let sql = format!(
            "INSERT INTO products AS p (product_id, shop_id, {time_column}, created_at, updated_at,
                 {cols})
             VALUES ($1, $2, $3, $4, $4, {placeholders})
             ON CONFLICT (product_id) DO UPDATE SET
                 shop_id = COALESCE(excluded.shop_id, p.shop_id),
                 {time_column} = COALESCE(excluded.{time_column}, p.{time_column}),
                 updated_at = excluded.updated_at, {sets}
             WHERE p.{time_column} IS NULL
                 OR excluded.{time_column} IS NULL
                 OR excluded.{time_column} >= p.{time_column}",
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
                // Kept as `text[]`.
                ColumnValue::List(items) => query.bind(items),
            };
        }
        query.execute(&mut **tx).await?;
        Ok(())
    }
}
