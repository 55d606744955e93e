//! The reading side: the same queries as SQLite's, in PostgreSQL's types.

use sqlx::{postgres::PgRow, Row};

use super::PgStore;
use crate::store::{
    raw_json, EventFilter, EventRecord, HistoryEntry, OrderRecord, OrderStat, Page, Result,
    WebhookStat,
};

impl PgStore {
    pub async fn order(&self, order_id: &str) -> Result<Option<OrderRecord>> {
        let row = sqlx::query(&format!("{ORDER_COLUMNS} WHERE order_id = $1"))
            .bind(order_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| order_record(&r)).transpose()
    }

    pub async fn order_history(&self, order_id: &str) -> Result<Vec<HistoryEntry>> {
        let rows = sqlx::query(
            "SELECT order_status, update_time, event_id, received_at FROM order_status_history
             WHERE order_id = $1 ORDER BY update_time ASC NULLS LAST, id",
        )
        .bind(order_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(HistoryEntry {
                    order_status: r.try_get("order_status")?,
                    update_time: r.try_get("update_time")?,
                    event_id: r.try_get("event_id")?,
                    received_at: r.try_get("received_at")?,
                })
            })
            .collect()
    }

    pub async fn shop_orders(&self, shop_id: &str, page: Page) -> Result<Vec<OrderRecord>> {
        let rows = sqlx::query(&format!(
            "{ORDER_COLUMNS} WHERE shop_id = $1
             ORDER BY update_time DESC NULLS LAST, id DESC LIMIT $2 OFFSET $3"
        ))
        .bind(shop_id)
        .bind(page.limit)
        .bind(page.offset)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(order_record).collect()
    }

    pub async fn unprocessed_orders(&self, limit: i64) -> Result<Vec<OrderRecord>> {
        let rows = sqlx::query(&format!(
            "{ORDER_COLUMNS} WHERE NOT processed ORDER BY created_at, id LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(order_record).collect()
    }

    pub async fn webhook_stats(&self, shop_id: Option<&str>) -> Result<Vec<WebhookStat>> {
        let rows = sqlx::query(
            "SELECT event_type, COUNT(*) AS total,
                    COUNT(*) FILTER (WHERE success) AS successful,
                    COUNT(*) FILTER (WHERE processed AND NOT success) AS failed,
                    MAX(last_received_at) AS last_received
             FROM webhook_events WHERE $1::text IS NULL OR shop_id = $1
             GROUP BY event_type ORDER BY event_type",
        )
        .bind(shop_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(WebhookStat {
                    event_type: r.try_get("event_type")?,
                    total: r.try_get("total")?,
                    successful: r.try_get("successful")?,
                    failed: r.try_get("failed")?,
                    last_received: r.try_get("last_received")?,
                })
            })
            .collect()
    }

    pub async fn order_stats(&self) -> Result<Vec<OrderStat>> {
        let rows = sqlx::query(
            "SELECT shop_id, order_status, count FROM order_statistics
             ORDER BY shop_id, order_status",
        )
        .fetch_all(&self.pool)
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
             WHERE ($1::text IS NULL OR e.shop_id = $1) AND ($2::bigint IS NULL OR e.type = $2)
               AND ($3::text IS NULL
                    OR e.id < (SELECT id FROM webhook_events WHERE event_id = $3))
               AND ($5::text IS NULL OR j.status = $5)
             ORDER BY e.id DESC LIMIT $4",
            EVENT_COLUMNS.replace("{body}", "NULL")
        ))
        .bind(filter.shop_id.as_deref())
        .bind(filter.type_code)
        .bind(filter.before.as_deref())
        .bind(filter.limit)
        .bind(filter.status.as_deref())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event_record).collect()
    }

    pub async fn event(&self, event_id: &str) -> Result<Option<EventRecord>> {
        let row = sqlx::query(&format!(
            "{} WHERE e.event_id = $1",
            EVENT_COLUMNS.replace("{body}", "e.raw_body")
        ))
        .bind(event_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| event_record(&r)).transpose()
    }
}

/// `order_data` comes back as jsonb's text, so its numbers keep their digits.
const ORDER_COLUMNS: &str = "SELECT order_id, shop_id, event_type, order_status, is_on_hold,
    update_time, order_data::text AS order_data, last_event_id, address_updated_at, processed,
    error_message, created_at, updated_at FROM tiktok_orders";

fn order_record(r: &PgRow) -> Result<OrderRecord> {
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
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// An event's columns; `{body}` is `e.raw_body` for one event, NULL in lists.
/// The API's `payload` is parsed from `raw_body`, not read from the jsonb
/// column: jsonb reorders keys and cannot hold every body (see the
/// migration), and the answer must not depend on the database.
const EVENT_COLUMNS: &str = "SELECT e.event_id, e.type, e.event_type, e.shop_id, e.order_id,
    e.timestamp, e.received_at, e.last_received_at, e.deliveries, e.processed, e.success,
    e.error_message, {body} AS raw_body, j.status AS job_status,
    COALESCE(j.attempts, 0) AS attempts
    FROM webhook_events e LEFT JOIN jobs j ON j.event_id = e.event_id";

fn event_record(r: &PgRow) -> Result<EventRecord> {
    let raw_body: Option<String> = r.try_get("raw_body")?;
    Ok(EventRecord {
        event_id: r.try_get("event_id")?,
        type_code: r.try_get("type")?,
        event_type: r.try_get("event_type")?,
        shop_id: r.try_get("shop_id")?,
        order_id: r.try_get("order_id")?,
        timestamp: r.try_get("timestamp")?,
        received_at: r.try_get("received_at")?,
        last_received_at: r.try_get("last_received_at")?,
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
