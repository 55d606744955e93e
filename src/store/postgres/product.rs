//! PostgreSQL's SQL for product writes: each aspect of a product (status,
//! information, creation, category, audit) has its own columns and its own
//! ordering column, changed only by an event not older than the stored one.
//! A round's writes (see `project.rs`) go as one statement per aspect.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{
    project::{lock_rows, Plan, ProductWrite},
    write::Tx,
};
use crate::store::{
    projection::{AspectColumns, ColumnValue},
    Result,
};

impl Plan<'_> {
    pub(super) async fn apply_products(&self, tx: &mut Tx<'_>, now: DateTime<Utc>) -> Result<()> {
        for (round, writes) in self.products.rounds().into_iter().enumerate() {
            // An aspect's ordering column names it.
            let mut aspects: BTreeMap<&str, Vec<(&str, &ProductWrite<'_>, AspectColumns<'_>)>> =
                BTreeMap::new();
            for (product_id, write) in writes {
                let columns = write.aspect.columns();
                aspects
                    .entry(columns.time_column)
                    .or_default()
                    .push((product_id, write, columns));
            }
            if round == 0 && aspects.len() > 1 {
                lock_rows(
                    tx,
                    "SELECT FROM products WHERE product_id = ANY($1::text[])
                     ORDER BY product_id COLLATE \"C\" FOR UPDATE",
                    &self.products.keys(),
                )
                .await?;
            }
            for rows in aspects.values() {
                aspect_rows(tx, rows, now).await?;
            }
        }
        Ok(())
    }
}

/// Upserts one aspect of several products (each product once).
async fn aspect_rows(
    tx: &mut Tx<'_>,
    rows: &[(&str, &ProductWrite<'_>, AspectColumns<'_>)],
    now: DateTime<Utc>,
) -> Result<()> {
    let Some((_, _, first)) = rows.first() else {
        return Ok(());
    };
    let (columns, time_column) = (first.columns, first.time_column);
    // Column i's values, one per product. A list travels as a JSON array in
    // text: a `text[][]` parameter would have to be rectangular, and
    // UNNEST would flatten it.
    let mut values: Vec<Vec<Option<String>>> = vec![Vec::with_capacity(rows.len()); columns.len()];
    let mut is_list = vec![false; columns.len()];
    for (_, _, aspect) in rows {
        for (i, value) in aspect.values.iter().enumerate() {
            values[i].push(match value {
                ColumnValue::Text(text) => text.map(str::to_owned),
                ColumnValue::List(items) => {
                    is_list[i] = true;
                    Some(serde_json::Value::from(items.to_vec()).to_string())
                }
            });
        }
    }
    let names: Vec<String> = (0..columns.len()).map(|i| format!("c{i}")).collect();
    let arrays: Vec<String> = (0..columns.len())
        .map(|i| format!("${}::text[]", i + 5))
        .collect();
    let selected: Vec<String> = names
        .iter()
        .zip(&is_list)
        .map(|(name, list)| match list {
            // Kept as `text[]`, in the list's order.
            true => format!(
                "ARRAY(SELECT x.item FROM jsonb_array_elements_text(r.{name}::jsonb)
                       WITH ORDINALITY AS x(item, n) ORDER BY x.n)"
            ),
            false => format!("r.{name}"),
        })
        .collect();
    let sets: Vec<String> = columns
        .iter()
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    // Column names come from `AspectColumns`, fixed names, never input.
    let sql = format!(
        "INSERT INTO products AS p (product_id, shop_id, {time_column}, created_at, updated_at,
             {cols})
         SELECT r.product_id, r.shop_id, r.ordering, $4, $4, {selected}
         FROM UNNEST($1::text[], $2::text[], $3::bigint[], {arrays}) WITH ORDINALITY
             AS r(product_id, shop_id, ordering, {names}, ord)
         ORDER BY r.ord
         ON CONFLICT (product_id) DO UPDATE SET
             shop_id = COALESCE(excluded.shop_id, p.shop_id),
             {time_column} = COALESCE(excluded.{time_column}, p.{time_column}),
             updated_at = excluded.updated_at, {sets}
         WHERE p.{time_column} IS NULL
             OR excluded.{time_column} IS NULL
             OR excluded.{time_column} >= p.{time_column}",
        cols = columns.join(", "),
        selected = selected.join(", "),
        arrays = arrays.join(", "),
        names = names.join(", "),
        sets = sets.join(", "),
    );
    let mut query = sqlx::query(&sql)
        .bind(rows.iter().map(|(id, _, _)| *id).collect::<Vec<_>>())
        .bind(
            rows.iter()
                .map(|(_, w, _)| w.event.shop_id.as_ref().map(|s| s.as_str()))
                .collect::<Vec<_>>(),
        )
        .bind(rows.iter().map(|(_, w, _)| w.time).collect::<Vec<_>>())
        .bind(now);
    for column in values {
        query = query.bind(column);
    }
    query.execute(&mut **tx).await?;
    Ok(())
}
