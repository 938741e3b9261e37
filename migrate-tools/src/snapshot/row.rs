//! One source row read by SQL, decoded column by column into the mapping's [`Row`], and identifier quoting.
//! Shared by the snapshot, the follower's table copies and lookups.

use std::collections::BTreeMap;

use mysql_async::Value;

use super::error::SnapshotError;
use crate::decode::{ColumnInfo, normalize};
use crate::mapping::{Row, TableMapping};

/// Backquotes inside an identifier are doubled.
pub fn ident(name: &str) -> String {
    name.replace('`', "``")
}

/// Decodes a row of `columns` (in order), applying the mapping's per-column charset overrides.
pub fn decode_row(
    values: &[Value],
    columns: &[ColumnInfo],
    mapping: Option<&TableMapping>,
    table: &str,
) -> Result<Row, SnapshotError> {
    let mut row = BTreeMap::new();
    for (value, column) in values.iter().zip(columns) {
        let reinterpret = mapping
            .and_then(|m| m.columns.get(&column.name))
            .and_then(|o| o.reinterpret);
        let json = normalize(value, column, reinterpret).map_err(|source| SnapshotError::Decode {
            table: table.to_owned(),
            row: mapping.map_or_else(
                || "?".to_owned(),
                |m| {
                    let key = columns.iter().position(|c| c.name == m.key).and_then(|i| values.get(i));
                    format!("{}={}", m.key, key.map_or_else(|| "?".to_owned(), |v| v.as_sql(false)))
                },
            ),
            source,
        })?;
        row.insert(column.name.clone(), json);
    }
    Ok(row)
}

#[cfg(test)]
mod tests {
    use mysql_async::Value;

    use super::decode_row;
    use crate::charset::Charset;
    use crate::decode::{ColumnInfo, Kind};

    /// A value that cannot be imported stops the snapshot naming the table, the row by its key and the column.
    #[test]
    fn an_undecodable_value_names_its_row() {
        let mapping = crate::cli::load_mapping("preset:gofly").unwrap();
        let columns = [
            ColumnInfo {
                name: "id".to_owned(),
                kind: Kind::Int,
            },
            ColumnInfo {
                name: "content".to_owned(),
                kind: Kind::Text(Charset::Utf8),
            },
        ];
        let values = [Value::Int(42), Value::Bytes(vec![0xff, 0xfe])];
        let error = decode_row(&values, &columns, mapping.for_table("message").next(), "message")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("table message, row id=42") && error.contains("column content"),
            "{error}"
        );
    }
}
