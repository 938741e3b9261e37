//! Binlog specifics: column descriptions from a TABLE_MAP event (FULL row metadata), row images to normalized
//! rows, MariaDB GTID events (which mysql_common does not parse), and the DDL statements that concern a mapping.

use std::collections::{BTreeMap, HashMap};

use mysql_async::Value;
use mysql_async::binlog::events::{OptionalMetadataField, TableMapEvent};
use mysql_async::binlog::row::BinlogRow;
use mysql_async::binlog::value::BinlogValue;
use mysql_async::consts::ColumnType;

use crate::charset::Charset;
use crate::decode::{ColumnInfo, DecodeError, Kind, normalize};
use crate::mapping::{Row, TableMapping};

/// Row decoding failures; all are fatal (never skip what cannot be decoded).
#[derive(Debug, thiserror::Error)]
pub enum BinlogError {
    /// A column type the importer does not handle.
    #[error("table {table}, column {column}: unsupported column type {ty:?}")]
    Type {
        /// The table.
        table: String,
        /// The column.
        column: String,
        /// Its type.
        ty: ColumnType,
    },
    /// A collation id the server did not list.
    #[error("table {table}, column {column}: unknown collation id {id}")]
    Collation {
        /// The table.
        table: String,
        /// The column.
        column: String,
        /// The id.
        id: u16,
    },
    /// The row image lacks columns (`binlog_row_image` is not FULL for this session) or their names.
    #[error(
        "table {0}: the row image is partial or has no column names; the writing session must use \
         binlog_row_image=FULL and the server binlog_row_metadata=FULL"
    )]
    PartialImage(String),
    /// A value did not decode.
    #[error("table {table}: {source}")]
    Value {
        /// The table.
        table: String,
        /// The cause.
        #[source]
        source: DecodeError,
    },
    /// A MySQL partial JSON update (`binlog_row_value_options=PARTIAL_JSON`).
    #[error("table {0}: partial JSON updates are not supported; set binlog_row_value_options=''")]
    JsonDiff(String),
    /// The row data is malformed.
    #[error("table {table}: cannot parse row: {source}")]
    Parse {
        /// The table.
        table: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Describes the columns of rows of `tme` from the first row's synthesized columns plus the ENUM/SET labels and
/// BINARY lengths that only the table map carries.
pub fn columns(
    tme: &TableMapEvent<'_>,
    row: &BinlogRow,
    collations: &HashMap<u16, String>,
) -> Result<Vec<ColumnInfo>, BinlogError> {
    let table = tme.table_name().into_owned();
    if u64::try_from(row.len()).ok() != Some(tme.columns_count()) {
        return Err(BinlogError::PartialImage(table));
    }
    let (mut enums, mut sets) = labels(tme);
    let mut out = Vec::with_capacity(row.len());
    for (i, column) in row.columns_ref().iter().enumerate() {
        let name = column.name_str().into_owned();
        if name.starts_with('@') {
            return Err(BinlogError::PartialImage(table));
        }
        let ty = column.column_type();
        let kind = match ty {
            ColumnType::MYSQL_TYPE_ENUM => Kind::Enum(enums.next().unwrap_or_default()),
            ColumnType::MYSQL_TYPE_SET => Kind::Set(sets.next().unwrap_or_default()),
            ColumnType::MYSQL_TYPE_VARCHAR
            | ColumnType::MYSQL_TYPE_VAR_STRING
            | ColumnType::MYSQL_TYPE_STRING
            | ColumnType::MYSQL_TYPE_TINY_BLOB
            | ColumnType::MYSQL_TYPE_BLOB
            | ColumnType::MYSQL_TYPE_MEDIUM_BLOB
            | ColumnType::MYSQL_TYPE_LONG_BLOB => {
                let id = column.character_set();
                let charset = if id == 63 {
                    Charset::Binary
                } else {
                    let name = collations.get(&id).ok_or_else(|| BinlogError::Collation {
                        table: table.clone(),
                        column: name.clone(),
                        id,
                    })?;
                    Charset::from_mysql_name(name).map_err(|_| BinlogError::Collation {
                        table: table.clone(),
                        column: name.clone(),
                        id,
                    })?
                };
                match charset {
                    Charset::Binary if ty == ColumnType::MYSQL_TYPE_STRING => Kind::Binary {
                        pad: fixed_length(tme, i),
                    },
                    Charset::Binary => Kind::Binary { pad: None },
                    cs => Kind::Text(cs),
                }
            }
            other => scalar_kind(other).ok_or_else(|| BinlogError::Type {
                table: table.clone(),
                column: name.clone(),
                ty: other,
            })?,
        };
        out.push(ColumnInfo { name, kind });
    }
    Ok(out)
}

fn scalar_kind(ty: ColumnType) -> Option<Kind> {
    use ColumnType as T;
    Some(match ty {
        T::MYSQL_TYPE_TINY
        | T::MYSQL_TYPE_SHORT
        | T::MYSQL_TYPE_INT24
        | T::MYSQL_TYPE_LONG
        | T::MYSQL_TYPE_LONGLONG => Kind::Int,
        T::MYSQL_TYPE_NEWDECIMAL | T::MYSQL_TYPE_DECIMAL => Kind::Decimal,
        T::MYSQL_TYPE_FLOAT => Kind::Float,
        T::MYSQL_TYPE_DOUBLE => Kind::Double,
        T::MYSQL_TYPE_DATE | T::MYSQL_TYPE_NEWDATE => Kind::Date,
        T::MYSQL_TYPE_DATETIME | T::MYSQL_TYPE_DATETIME2 => Kind::DateTime,
        T::MYSQL_TYPE_TIMESTAMP | T::MYSQL_TYPE_TIMESTAMP2 => Kind::Timestamp,
        T::MYSQL_TYPE_TIME | T::MYSQL_TYPE_TIME2 => Kind::Time,
        T::MYSQL_TYPE_YEAR => Kind::Year,
        T::MYSQL_TYPE_BIT => Kind::Bit,
        T::MYSQL_TYPE_JSON => Kind::Json,
        _ => return None,
    })
}

type Labels = std::vec::IntoIter<Vec<String>>;

fn labels(tme: &TableMapEvent<'_>) -> (Labels, Labels) {
    let mut enums = Vec::new();
    let mut sets = Vec::new();
    for field in tme.iter_optional_meta().flatten() {
        match field {
            OptionalMetadataField::EnumStrValue(values) => {
                for column in values.iter_values().flatten() {
                    enums.push(column.values().iter().map(|v| v.value().into_owned()).collect());
                }
            }
            OptionalMetadataField::SetStrValue(values) => {
                for column in values.iter_values().flatten() {
                    sets.push(column.values().iter().map(|v| v.value().into_owned()).collect());
                }
            }
            _ => {}
        }
    }
    (enums.into_iter(), sets.into_iter())
}

/// The declared length of a CHAR/BINARY column: the server strips BINARY's trailing zero bytes from the image.
fn fixed_length(tme: &TableMapEvent<'_>, index: usize) -> Option<usize> {
    let meta = tme.get_column_metadata(index)?;
    let (b0, b1) = (usize::from(*meta.first()?), usize::from(*meta.get(1)?));
    Some(if (b0 & 0x30) == 0x30 {
        b1
    } else {
        b1 | (((b0 & 0x30) ^ 0x30) << 4)
    })
}

/// Decodes one row image.
pub fn decode(
    row: &BinlogRow,
    columns: &[ColumnInfo],
    mapping: &TableMapping,
    table: &str,
) -> Result<Row, BinlogError> {
    let mut out = BTreeMap::new();
    for (i, column) in columns.iter().enumerate() {
        let value = match row.as_ref(i) {
            None => Value::NULL,
            Some(BinlogValue::Value(v)) => v.clone(),
            Some(BinlogValue::Jsonb(_)) => {
                let owned = row.as_ref(i).cloned().map(BinlogValue::into_owned);
                owned
                    .and_then(|v| Value::try_from(v).ok())
                    .ok_or_else(|| BinlogError::JsonDiff(table.to_owned()))?
            }
            Some(BinlogValue::JsonDiff(_)) => return Err(BinlogError::JsonDiff(table.to_owned())),
        };
        let reinterpret = mapping.columns.get(&column.name).and_then(|o| o.reinterpret);
        let json = normalize(&value, column, reinterpret).map_err(|source| BinlogError::Value {
            table: table.to_owned(),
            source,
        })?;
        out.insert(column.name.clone(), json);
    }
    Ok(out)
}

/// A MariaDB GTID event (type 162): `domain-server-seq`, and whether it starts a standalone statement (DDL).
pub fn mariadb_gtid(data: &[u8], server_id: u32) -> Option<(u32, String, bool)> {
    let seq = u64::from_le_bytes(data.get(0..8)?.try_into().ok()?);
    let domain = u32::from_le_bytes(data.get(8..12)?.try_into().ok()?);
    let standalone = data.get(12)? & 1 != 0;
    Some((domain, format!("{domain}-{server_id}-{seq}"), standalone))
}

/// What a Query event means for the mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Statement {
    /// Starts a transaction.
    Begin,
    /// Ends a transaction (non-transactional engines, XA).
    Commit,
    /// Nothing for us: a comment, or a statement on unmapped tables.
    Ignore,
    /// `ALTER TABLE` on a mapped table: fine if every mapped column still exists.
    Alter(String),
    /// A statement that makes the mapping unsafe to continue (RENAME, TRUNCATE, DROP, statement-based DML).
    Stop(String),
}

/// Classifies a Query event against the mapped table names.
pub fn classify(query: &str, mapped: &[&str]) -> Statement {
    let q = query.trim();
    let upper = q.to_ascii_uppercase();
    if upper == "BEGIN" || upper.starts_with("XA START") {
        return Statement::Begin;
    }
    if upper == "COMMIT" || upper == "ROLLBACK" || upper.starts_with("XA COMMIT") || upper.starts_with("XA END") {
        return Statement::Commit;
    }
    if q.starts_with('#') || upper.starts_with("SAVEPOINT") || upper.starts_with("ROLLBACK TO") {
        return Statement::Ignore;
    }
    let words: Vec<String> = q
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    let Some(table) = mapped
        .iter()
        .find(|t| words.iter().any(|w| w == &t.to_ascii_lowercase()))
    else {
        return Statement::Ignore;
    };
    let first = words.first().map(String::as_str).unwrap_or_default();
    // A new column with a default or NOT NULL changes every existing row without a single row event.
    let adds_filled_column =
        words.iter().any(|w| w == "add") && (words.iter().any(|w| w == "default") || upper.contains("NOT NULL"));
    match first {
        "alter" if !words.iter().any(|w| w == "rename") && !adds_filled_column => Statement::Alter((*table).to_owned()),
        "create" | "analyze" | "optimize" | "repair" | "check" | "grant" | "flush"
            if !words.iter().any(|w| w == "select") =>
        {
            Statement::Ignore
        }
        _ => Statement::Stop((*table).to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddl_on_mapped_tables_is_recognized() {
        let mapped = ["message", "visitor"];
        assert_eq!(classify("BEGIN", &mapped), Statement::Begin);
        assert_eq!(
            classify("ALTER TABLE `message` ADD COLUMN x INT", &mapped),
            Statement::Alter("message".into())
        );
        assert_eq!(
            classify("TRUNCATE TABLE message", &mapped),
            Statement::Stop("message".into())
        );
        assert_eq!(
            classify("RENAME TABLE visitor TO v2", &mapped),
            Statement::Stop("visitor".into())
        );
        assert_eq!(
            classify("ALTER TABLE visitor RENAME TO v2", &mapped),
            Statement::Stop("visitor".into())
        );
        assert_eq!(classify("DROP TABLE other", &mapped), Statement::Ignore);
        assert_eq!(
            classify("# Dummy event replacing event type 160", &mapped),
            Statement::Ignore
        );
    }

    #[test]
    fn gtid_event_parses() {
        let mut data = 10_u64.to_le_bytes().to_vec();
        data.extend(0_u32.to_le_bytes());
        data.push(1);
        assert_eq!(mariadb_gtid(&data, 7), Some((0, "0-7-10".to_owned(), true)));
    }
}
