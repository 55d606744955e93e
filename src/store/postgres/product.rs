//! PostgreSQL's SQL for a product write: each aspect of a product (status,
//! information, creation, category, audit) has its own columns and its own
//! ordering column, changed only by an event not older than the stored one.

use super::{project::Ctx, write::Tx};
use crate::store::{
    projection::{AspectColumns, ColumnValue, ProductAspect},
    Result,
};

impl Ctx<'_> {
    pub(super) async fn product(
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
