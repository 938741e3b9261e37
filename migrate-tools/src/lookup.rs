//! Reads the rows a mapping's lookups name (`mapping::Lookup`) from the source, for both copy paths.
//!
//! The snapshot looks up inside its consistent read, so a thread and its ticket are read at the same instant.
//! The follower looks up at the end of each batch on a connection of its own, reading the source as it is then
//! (never older than the binlog events in the batch); a later change to a looked-up row is itself a row event,
//! and [`Lookups::dependents`] turns it into fresh upserts of the rows that read it, so the target converges on
//! the source the way replayed full row images do.

use std::collections::BTreeMap;

use mysql_async::prelude::Queryable as _;
use mysql_async::{Conn, Value};
use serde_json::Value as Json;

use crate::decode::ColumnInfo;
use crate::mapping::{Mapping, Row, TableMapping, merge_lookup, text_of};
use crate::snapshot::{SnapshotError, decode_row, ident};
use crate::source;

/// Keys per `IN (…)` query: bounds statement size and placeholders.
const KEYS_PER_QUERY: usize = 1_000;

/// Looks up rows, remembering each table's columns.
#[derive(Debug, Default)]
pub struct Lookups {
    database: String,
    columns: BTreeMap<String, Vec<ColumnInfo>>,
}

impl Lookups {
    /// For tables of `database`.
    pub fn new(database: &str) -> Self {
        Self {
            database: database.to_owned(),
            columns: BTreeMap::new(),
        }
    }

    /// Adds each of `t`'s lookups to `rows` (rows of `t.table`) as `<alias>.<column>`, one query per lookup per
    /// thousand rows. A row whose lookup finds nothing keeps those columns absent, which fields read as NULL.
    pub async fn enrich(&mut self, conn: &mut Conn, t: &TableMapping, rows: &mut [Row]) -> Result<(), SnapshotError> {
        for (alias, lookup) in &t.lookups {
            let keys: Vec<Json> = rows.iter().filter_map(|r| lookup.key_of(r)).collect();
            let found = self
                .rows_where(conn, &lookup.table, &lookup.key, &keys, &[], None)
                .await?;
            let by_key: BTreeMap<String, &Row> = found
                .iter()
                .filter_map(|r| Some((text_of(r.get(&lookup.key)?), r)))
                .collect();
            for row in rows.iter_mut() {
                let hit = lookup.key_of(row).and_then(|k| by_key.get(&text_of(&k)).copied());
                merge_lookup(row, alias, hit);
            }
        }
        Ok(())
    }

    /// The rows of mapped tables that read a changed row of `table` through a lookup, re-read from the source
    /// and enriched, with the index of the table mapping they are for. `changed` holds the changed rows' images
    /// (before and after), so a row that stopped matching is found too.
    pub async fn dependents(
        &mut self,
        conn: &mut Conn,
        mapping: &Mapping,
        table: &str,
        changed: &[Row],
    ) -> Result<Vec<(usize, Row)>, SnapshotError> {
        let mut out = Vec::new();
        for (index, t) in mapping.tables.iter().enumerate() {
            for lookup in t.lookups.values().filter(|l| l.table == table) {
                let keys: Vec<Json> = changed.iter().filter_map(|r| r.get(&lookup.key).cloned()).collect();
                let when: Vec<(&str, &Json)> = lookup.when.iter().map(|(c, v)| (c.as_str(), v)).collect();
                let mut rows = self
                    .rows_where(conn, &t.table, &lookup.from, &keys, &when, Some(t))
                    .await?;
                self.enrich(conn, t, &mut rows).await?;
                out.extend(rows.into_iter().map(|r| (index, r)));
            }
        }
        Ok(out)
    }

    /// Rows of `table` whose `column` is one of `keys` and whose `when` columns hold their values, decoded.
    async fn rows_where(
        &mut self,
        conn: &mut Conn,
        table: &str,
        column: &str,
        keys: &[Json],
        when: &[(&str, &Json)],
        options: Option<&TableMapping>,
    ) -> Result<Vec<Row>, SnapshotError> {
        let mut keys: Vec<&Json> = keys.iter().filter(|k| !k.is_null()).collect();
        keys.sort_by_key(|k| text_of(k));
        keys.dedup();
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        if !self.columns.contains_key(table) {
            let columns = source::table_columns(conn, &self.database, table).await?;
            self.columns.insert(table.to_owned(), columns);
        }
        let columns = &self.columns[table];
        let conditions: String = when.iter().map(|(c, _)| format!(" AND `{}` = ?", ident(c))).collect();
        let mut out = Vec::new();
        for part in keys.chunks(KEYS_PER_QUERY) {
            let marks = vec!["?"; part.len()].join(", ");
            let sql = format!(
                "SELECT * FROM `{}` WHERE `{}` IN ({marks}){conditions}",
                ident(table),
                ident(column)
            );
            let params: Vec<Value> = part
                .iter()
                .map(|k| value_of(k))
                .chain(when.iter().map(|(_, v)| value_of(v)))
                .collect();
            let rows: Vec<mysql_async::Row> = conn.exec(sql, params).await?;
            for row in rows {
                out.push(decode_row(&row.unwrap(), columns, options, table)?);
            }
        }
        Ok(out)
    }
}

/// A key as a statement parameter (numbers as numbers, so an index on an integer column is used).
fn value_of(key: &Json) -> Value {
    match key {
        Json::Number(n) => n
            .as_i64()
            .map(Value::Int)
            .or_else(|| n.as_u64().map(Value::UInt))
            .unwrap_or_else(|| Value::Bytes(n.to_string().into_bytes())),
        other => Value::Bytes(text_of(other).into_bytes()),
    }
}
