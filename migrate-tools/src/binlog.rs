//! Binlog specifics: column descriptions from a TABLE_MAP event (FULL row metadata), row images to normalized
//! rows (with the values mysql_common decodes wrongly repaired), and MariaDB GTID events (which mysql_common does
//! not parse).

use std::collections::{BTreeMap, HashMap};

use mysql_async::Value;
use mysql_async::binlog::events::{OptionalMetadataField, TableMapEvent};
use mysql_async::binlog::row::BinlogRow;
use mysql_async::binlog::value::BinlogValue;
use mysql_async::consts::{ColumnFlags, ColumnType};

use crate::charset::Charset;
use crate::decode::{ColumnInfo, DecodeError, Kind, normalize};
use crate::mapping::{ColumnOptions, Row};

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
    #[error("table {table}, row {row}: {source}")]
    Value {
        /// The table.
        table: String,
        /// The row, by its key (`id=42`).
        row: String,
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

/// One column of a row image: what it holds, and how mysql_common's decoding of it must be corrected.
#[derive(Debug, Clone, PartialEq)]
pub struct BinlogColumn {
    /// Name and kind, as the snapshot path describes them.
    pub info: ColumnInfo,
    repair: Repair,
}

/// Values mysql_common 0.37 decodes wrongly from a row image (shared/binlog/NOTES.md §0.7), fixed after the
/// fact because its decoder cannot be told otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repair {
    None,
    /// Signed MEDIUMINT: three bytes are read into a zero-padded `i32`, so the sign is never extended.
    SignedInt24,
    /// TIME(1) / TIME(2): a negative value with a fraction wraps an unsigned subtraction.
    Time2Fraction,
}

/// Describes the columns of rows of `tme` from the first row's synthesized columns plus the ENUM/SET labels and
/// BINARY lengths that only the table map carries.
pub fn columns(
    tme: &TableMapEvent<'_>,
    row: &BinlogRow,
    collations: &HashMap<u16, String>,
) -> Result<Vec<BinlogColumn>, BinlogError> {
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
        let repair = match ty {
            ColumnType::MYSQL_TYPE_INT24 if !column.flags().contains(ColumnFlags::UNSIGNED_FLAG) => Repair::SignedInt24,
            ColumnType::MYSQL_TYPE_TIME2
                if matches!(tme.get_column_metadata(i).and_then(<[u8]>::first), Some(&(1 | 2))) =>
            {
                Repair::Time2Fraction
            }
            _ => Repair::None,
        };
        out.push(BinlogColumn {
            info: ColumnInfo { name, kind },
            repair,
        });
    }
    Ok(out)
}

fn repair(value: Value, repair: Repair) -> Value {
    match (repair, value) {
        (Repair::SignedInt24, Value::Int(i)) if (0x80_0000..0x100_0000).contains(&i) => Value::Int(i - 0x100_0000),
        (Repair::Time2Fraction, Value::Time(neg, days, h, m, s, us)) => {
            repair_time2(neg, days, h, m, s, us).unwrap_or(Value::Time(neg, days, h, m, s, us))
        }
        (_, value) => value,
    }
}

/// mysql_common reads a TIME(1|2) fraction as `u32` and subtracts 0x100 from it for negative values (the
/// server's `frac -= 0x100` on an `int`), which wraps and adds exactly `10_000 << 32` to the packed time
/// (`hms << 24 | microseconds`) before it is split into fields. Those fields still hold the whole packed value
/// (it stays below 2^46 for every TIME), so the true one is recovered by subtracting the excess. A wrapped
/// value is recognizable: a correct TIME(1|2) has no fraction when negative and less than a second when not.
fn repair_time2(neg: bool, days: u32, h: u8, m: u8, s: u8, us: u32) -> Option<Value> {
    if !((neg && us != 0) || (!neg && us >= 1_000_000)) {
        return None;
    }
    let hours = i64::from(days) * 24 + i64::from(h);
    let magnitude = (hours << 36) | (i64::from(m) << 30) | (i64::from(s) << 24) | i64::from(us);
    let packed = if neg { -magnitude } else { magnitude } - (10_000_i64 << 32);
    let t = packed.abs();
    let hms = t >> 24;
    let hours = u32::try_from(hms >> 12).ok()?;
    Some(Value::Time(
        packed < 0,
        hours / 24,
        u8::try_from(hours % 24).ok()?,
        u8::try_from((hms >> 6) & 0x3f).ok()?,
        u8::try_from(hms & 0x3f).ok()?,
        u32::try_from(t & 0xff_ffff).ok()?,
    ))
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

/// Decodes one row image, with the mapping's per-column options; `key` names the row in errors.
pub fn decode(
    row: &BinlogRow,
    columns: &[BinlogColumn],
    options: &BTreeMap<String, ColumnOptions>,
    key: &str,
    table: &str,
) -> Result<Row, BinlogError> {
    let mut out = BTreeMap::new();
    for (
        i,
        BinlogColumn {
            info: column,
            repair: fix,
        },
    ) in columns.iter().enumerate()
    {
        let value = match row.as_ref(i) {
            None => Value::NULL,
            Some(BinlogValue::Value(v)) => repair(v.clone(), *fix),
            Some(BinlogValue::Jsonb(_)) => {
                let owned = row.as_ref(i).cloned().map(BinlogValue::into_owned);
                owned
                    .and_then(|v| Value::try_from(v).ok())
                    .ok_or_else(|| BinlogError::JsonDiff(table.to_owned()))?
            }
            Some(BinlogValue::JsonDiff(_)) => return Err(BinlogError::JsonDiff(table.to_owned())),
        };
        let reinterpret = options.get(&column.name).and_then(|o| o.reinterpret);
        let json = normalize(&value, column, reinterpret).map_err(|source| BinlogError::Value {
            table: table.to_owned(),
            row: row_key(row, columns, key),
            source,
        })?;
        out.insert(column.name.clone(), json);
    }
    Ok(out)
}

/// `key=value` of the row's key column, to name a row that cannot be imported.
fn row_key(row: &BinlogRow, columns: &[BinlogColumn], key: &str) -> String {
    let value = columns
        .iter()
        .position(|c| c.info.name == key)
        .and_then(|i| match row.as_ref(i) {
            Some(BinlogValue::Value(v)) => Some(v.as_sql(false)),
            _ => None,
        });
    format!("{key}={}", value.unwrap_or_else(|| "?".to_owned()))
}

/// A MariaDB GTID event (type 162): `domain-server-seq`, and whether it starts a standalone statement (DDL).
pub fn mariadb_gtid(data: &[u8], server_id: u32) -> Option<(u32, String, bool)> {
    let seq = u64::from_le_bytes(data.get(0..8)?.try_into().ok()?);
    let domain = u32::from_le_bytes(data.get(8..12)?.try_into().ok()?);
    let standalone = data.get(12)? & 1 != 0;
    Some((domain, format!("{domain}-{server_id}-{seq}"), standalone))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What mysql_common 0.37 makes of the server's TIME(2) bytes for a time of `hms` (h << 12 | m << 6 | s)
    /// and `hundredths`: the server's encoder (`my_time_packed_to_binary`), then mysql_common's decoder with
    /// its `u32` wrap.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    fn as_mysql_common_decodes(neg: bool, hms: i64, hundredths: i64) -> Value {
        let packed = ((hms << 24) + hundredths * 10_000) * if neg { -1 } else { 1 };
        let mut int_part = packed >> 24;
        let mut frac = u32::from(((packed % (1 << 24)) / 10_000) as i8 as u8);
        if int_part < 0 && frac > 0 {
            int_part += 1;
            frac = frac.wrapping_sub(0x100);
        }
        let tmp = (int_part << 24) + i64::from(frac) * 10_000;
        let t = tmp.abs();
        let hours = ((t >> 36) as u32) % 1024;
        Value::Time(
            tmp < 0,
            hours / 24,
            (hours % 24) as u8,
            ((t >> 30) % 64) as u8,
            ((t >> 24) % 64) as u8,
            (t % (1 << 24)) as u32,
        )
    }

    #[test]
    fn values_mysql_common_misdecodes_are_repaired() {
        for (decoded, want) in [
            (16_777_215, -1),
            (8_388_608, -8_388_608),
            (16_653_760, -123_456),
            (8_388_607, 8_388_607),
        ] {
            assert_eq!(repair(Value::Int(decoded), Repair::SignedInt24), Value::Int(want));
        }
        assert_eq!(repair(Value::Int(16_777_215), Repair::None), Value::Int(16_777_215));
        // '-01:00:00.50', as the issue saw it.
        let broken = Value::Time(false, 25, 23, 63, 63, 16_277_216);
        assert_eq!(as_mysql_common_decodes(true, 1 << 12, 50), broken);
        assert_eq!(
            repair(broken, Repair::Time2Fraction),
            Value::Time(true, 0, 1, 0, 0, 500_000)
        );
        for neg in [false, true] {
            for hours in [0_u32, 1, 23, 24, 100, 625, 626, 838] {
                for (m, s, hundredths) in [(0_u8, 0_u8, 0_u32), (0, 0, 1), (59, 59, 99), (30, 1, 50)] {
                    let hms = (i64::from(hours) << 12) | (i64::from(m) << 6) | i64::from(s);
                    let decoded = as_mysql_common_decodes(neg, hms, i64::from(hundredths));
                    let zero = hours == 0 && m == 0 && s == 0 && hundredths == 0;
                    let want = Value::Time(neg && !zero, hours / 24, (hours % 24) as u8, m, s, hundredths * 10_000);
                    assert_eq!(
                        repair(decoded, Repair::Time2Fraction),
                        want,
                        "{neg} {hours}:{m}:{s}.{hundredths}"
                    );
                }
            }
        }
    }

    #[test]
    fn gtid_event_parses() {
        let mut data = 10_u64.to_le_bytes().to_vec();
        data.extend(0_u32.to_le_bytes());
        data.push(1);
        assert_eq!(mariadb_gtid(&data, 7), Some((0, "0-7-10".to_owned(), true)));
    }
}
