//! PostgreSQL's SQL for a product write: each aspect of a product (status,
//! information, creation, category, audit) has its own columns and its own
//! ordering column, changed only by an event not older than the stored one.

use super::{project::Ctx, write::Tx};
use crate::store::{projection::ProductAspect, Result};

impl Ctx<'_> {
    pub(super) async fn product(
        &self,
        tx: &mut Tx<'_>,
        product_id: &str,
        aspect: &ProductAspect<'_>,
        time: Option<i64>,
    ) -> Result<()> {
        // Each aspect has its own columns and its own ordering column; the
        // column names come from this fixed table, never from input.
        let (columns, time_column, values): (&[&str], &str, Vec<Value>) = match aspect {
            ProductAspect::Status {
                status,
                suspended_reason,
            } => (
                &["status", "suspended_reason"],
                "status_time",
                vec![Value::Text(*status), Value::Text(*suspended_reason)],
            ),
            ProductAspect::Information {
                change_source,
                changed_fields,
            } => (
                &["change_source", "changed_fields"],
                "information_time",
                vec![Value::Text(*change_source), Value::List(changed_fields)],
            ),
            ProductAspect::Creation { product_types } => (
                &["product_types"],
                "creation_time",
                vec![Value::List(product_types)],
            ),
            ProductAspect::Category { previous, current } => (
                &["previous_category_id", "category_id"],
                "category_time",
                vec![Value::Text(*previous), Value::Text(*current)],
            ),
            ProductAspect::Audit { status } => {
                (&["audit_status"], "audit_time", vec![Value::Text(*status)])
            }
        };
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
                Value::Text(text) => query.bind(text),
                Value::List(items) => query.bind(items),
            };
        }
        query.execute(&mut **tx).await?;
        Ok(())
    }
}

/// A product column's value: text, or a list kept as `text[]`.
enum Value<'a> {
    Text(Option<&'a str>),
    List(&'a [String]),
}
