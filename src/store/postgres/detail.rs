//! PostgreSQL reads of the projections beyond the order row: an order's
//! packages and requests, products, shops.

use sqlx::{postgres::PgRow, Row};

use super::PgStore;
use crate::store::{
    authorized, OrderDetail, PackageRecord, ProductRecord, RequestRecord, Result, ShopRecord,
};

impl PgStore {
    pub async fn order_detail(&self, order_id: &str) -> Result<Option<OrderDetail>> {
        let Some(order) = self.order(order_id).await? else {
            return Ok(None);
        };
        let packages = self.order_packages(order_id).await?;
        let rows = sqlx::query(
            "SELECT kind, request_id, status, role, request_type, amount, currency, update_time,
                    last_event_id, updated_at
             FROM order_requests WHERE order_id = $1 ORDER BY id",
        )
        .bind(order_id)
        .fetch_all(&self.pool)
        .await?;
        let mut detail = OrderDetail::new(order, packages);
        for row in &rows {
            detail.add_request(request_record(row)?);
        }
        Ok(Some(detail))
    }

    async fn order_packages(&self, order_id: &str) -> Result<Vec<PackageRecord>> {
        let rows = sqlx::query(
            "SELECT p.package_id, p.sc_type, p.role_type, p.update_time, p.invoice_status,
                    p.invalid_reason,
                    ARRAY(SELECT order_id FROM package_orders WHERE package_id = p.package_id
                          ORDER BY order_id) AS order_ids
             FROM packages p JOIN package_orders po ON po.package_id = p.package_id
             WHERE po.order_id = $1 ORDER BY p.package_id",
        )
        .bind(order_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PackageRecord {
                    package_id: r.try_get("package_id")?,
                    sc_type: r.try_get("sc_type")?,
                    role_type: r.try_get("role_type")?,
                    update_time: r.try_get("update_time")?,
                    invoice_status: r.try_get("invoice_status")?,
                    invalid_reason: r.try_get("invalid_reason")?,
                    order_ids: r.try_get("order_ids")?,
                })
            })
            .collect()
    }

    pub async fn product(&self, product_id: &str) -> Result<Option<ProductRecord>> {
        let row = sqlx::query("SELECT * FROM products WHERE product_id = $1")
            .bind(product_id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(r) = row else { return Ok(None) };
        let list = |column: &str| -> Result<Vec<String>> {
            let items: Option<Vec<String>> = r.try_get(column)?;
            Ok(items.unwrap_or_default())
        };
        let record = ProductRecord {
            product_id: r.try_get("product_id")?,
            shop_id: r.try_get("shop_id")?,
            status: r.try_get("status")?,
            suspended_reason: r.try_get("suspended_reason")?,
            status_time: r.try_get("status_time")?,
            audit_status: r.try_get("audit_status")?,
            audit_time: r.try_get("audit_time")?,
            category_id: r.try_get("category_id")?,
            previous_category_id: r.try_get("previous_category_id")?,
            category_time: r.try_get("category_time")?,
            product_types: list("product_types")?,
            change_source: r.try_get("change_source")?,
            changed_fields: list("changed_fields")?,
            last_change: None,
            last_change_time: None,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        };
        Ok(Some(record.with_last_change(
            r.try_get("creation_time")?,
            r.try_get("information_time")?,
        )))
    }

    pub async fn shop(&self, shop_id: &str) -> Result<Option<ShopRecord>> {
        let row = sqlx::query(
            "SELECT s.*,
                    (SELECT COUNT(*) FROM tiktok_orders WHERE shop_id = s.shop_id) AS orders,
                    (SELECT COUNT(*) FROM webhook_events WHERE shop_id = s.shop_id) AS events
             FROM shops s WHERE s.shop_id = $1",
        )
        .bind(shop_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let activity: Option<i64> = r.try_get("last_activity_at")?;
        let deauthorized: Option<i64> = r.try_get("deauthorized_at")?;
        Ok(Some(ShopRecord {
            shop_id: r.try_get("shop_id")?,
            authorized: authorized(activity, deauthorized),
            deauthorized_at: deauthorized,
            authorization_expires_at: r.try_get("authorization_expires_at")?,
            last_event_at: activity.max(deauthorized),
            orders: r.try_get("orders")?,
            events: r.try_get("events")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        }))
    }
}

fn request_record(r: &PgRow) -> Result<RequestRecord> {
    Ok(RequestRecord {
        kind: r.try_get("kind")?,
        request_id: r.try_get("request_id")?,
        status: r.try_get("status")?,
        role: r.try_get("role")?,
        request_type: r.try_get("request_type")?,
        amount: r.try_get("amount")?,
        currency: r.try_get("currency")?,
        update_time: r.try_get("update_time")?,
        last_event_id: r.try_get("last_event_id")?,
        updated_at: r.try_get("updated_at")?,
    })
}
