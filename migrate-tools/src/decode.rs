//! Source values to one normalized form (`serde_json::Value`), whether they come from a snapshot `SELECT` (binary
//! protocol) or a binlog row image. Both paths must agree byte for byte, or `verify` would report every row.
//!
//! Normal forms: integers, BIT and YEAR as JSON numbers; DECIMAL as its exact decimal string; FLOAT/DOUBLE as
//! numbers; DATE `YYYY-MM-DD`; DATETIME as a zone-less `YYYY-MM-DD HH:MM:SS[.ffffff]`; TIMESTAMP as UTC
//! `YYYY-MM-DDTHH:MM:SS[.ffffff]Z` (the instant, whatever the server's zone); TIME `[-]HH:MM:SS[.ffffff]`; text
//! decoded from its column charset into UTF-8; binary as `{"hex": …}`; ENUM as its label, SET as `a,b`.

use mysql_async::Value;
use serde_json::{Number, Value as Json, json};

use crate::charset::{Charset, CharsetError};

/// What a column holds, from the table map (binlog) or `information_schema` (snapshot).
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// Any integer type; `unsigned` matters only for the binlog, which does not know it without metadata.
    Int,
    /// DECIMAL/NUMERIC.
    Decimal,
    /// FLOAT (single precision).
    Float,
    /// DOUBLE/REAL.
    Double,
    /// DATE.
    Date,
    /// DATETIME(fsp): a wall clock without zone.
    DateTime,
    /// TIMESTAMP(fsp): an instant.
    Timestamp,
    /// TIME(fsp), possibly negative or above 24 h.
    Time,
    /// YEAR.
    Year,
    /// CHAR/VARCHAR/TEXT/JSON-as-text in some charset.
    Text(Charset),
    /// BINARY/VARBINARY/BLOB; `pad` is the fixed length of BINARY(n), which the binlog strips trailing zeros of.
    Binary {
        /// Fixed length to re-pad to, if any.
        pad: Option<usize>,
    },
    /// ENUM with its labels in declaration order.
    Enum(Vec<String>),
    /// SET with its labels in bit order.
    Set(Vec<String>),
    /// BIT(n).
    Bit,
    /// MySQL's binary JSON.
    Json,
}

/// One source column.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnInfo {
    /// The column name.
    pub name: String,
    /// Its kind.
    pub kind: Kind,
}

/// A value that does not fit its column's kind: the importer stops rather than store a wrong value.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The value's shape does not match the column type.
    #[error("column {column}: unexpected value {value} for {kind}")]
    Unexpected {
        /// The column.
        column: String,
        /// The kind expected.
        kind: &'static str,
        /// A debug rendering of the value.
        value: String,
    },
    /// The bytes are not valid in the column's (or the reinterpreted) charset.
    #[error("column {column}: {source}")]
    Charset {
        /// The column.
        column: String,
        /// The cause.
        #[source]
        source: CharsetError,
    },
}

/// Normalizes one value. `reinterpret` overrides the column charset for text (mojibake repair).
pub fn normalize(value: &Value, column: &ColumnInfo, reinterpret: Option<Charset>) -> Result<Json, DecodeError> {
    if matches!(value, Value::NULL) {
        return Ok(Json::Null);
    }
    let unexpected = |kind: &'static str| DecodeError::Unexpected {
        column: column.name.clone(),
        kind,
        value: format!("{value:?}"),
    };
    match &column.kind {
        Kind::Int => int(value).ok_or_else(|| unexpected("integer")),
        Kind::Year => year(value).ok_or_else(|| unexpected("year")),
        Kind::Decimal => bytes(value)
            .and_then(|b| std::str::from_utf8(b).ok())
            .map(|s| Json::String(s.to_owned()))
            .ok_or_else(|| unexpected("decimal")),
        Kind::Float => float(value, true).ok_or_else(|| unexpected("float")),
        Kind::Double => float(value, false).ok_or_else(|| unexpected("double")),
        Kind::Date => match value {
            Value::Date(y, m, d, ..) => Ok(Json::String(format!("{y:04}-{m:02}-{d:02}"))),
            _ => Err(unexpected("date")),
        },
        Kind::DateTime => match value {
            Value::Date(..) => Ok(Json::String(datetime(value, ' ', ""))),
            _ => Err(unexpected("datetime")),
        },
        Kind::Timestamp => timestamp(value).ok_or_else(|| unexpected("timestamp")),
        Kind::Time => time(value).ok_or_else(|| unexpected("time")),
        Kind::Text(charset) => {
            let raw = bytes(value).ok_or_else(|| unexpected("text"))?;
            let charset = reinterpret.unwrap_or(*charset);
            charset
                .decode(raw)
                .map(Json::String)
                .map_err(|source| DecodeError::Charset {
                    column: column.name.clone(),
                    source,
                })
        }
        Kind::Binary { pad } => {
            let raw = bytes(value).ok_or_else(|| unexpected("binary"))?;
            if let Some(charset) = reinterpret {
                return charset
                    .decode(raw)
                    .map(Json::String)
                    .map_err(|source| DecodeError::Charset {
                        column: column.name.clone(),
                        source,
                    });
            }
            let mut raw = raw.to_vec();
            if let Some(pad) = pad {
                raw.resize((*pad).max(raw.len()), 0);
            }
            Ok(json!({ "hex": hex::encode(raw) }))
        }
        Kind::Enum(labels) => enum_label(value, labels).ok_or_else(|| unexpected("enum")),
        Kind::Set(labels) => set_labels(value, labels).ok_or_else(|| unexpected("set")),
        Kind::Bit => bit(value).ok_or_else(|| unexpected("bit")),
        Kind::Json => bytes(value)
            .and_then(|b| std::str::from_utf8(b).ok())
            .map(|s| Json::String(s.to_owned()))
            .ok_or_else(|| unexpected("json")),
    }
}

fn bytes(value: &Value) -> Option<&[u8]> {
    match value {
        Value::Bytes(b) => Some(b),
        _ => None,
    }
}

fn int(value: &Value) -> Option<Json> {
    match value {
        Value::Int(i) => Some(Json::from(*i)),
        Value::UInt(u) => Some(Json::from(*u)),
        // The text protocol and some server paths hand integers over as digits.
        Value::Bytes(b) => {
            let s = std::str::from_utf8(b).ok()?;
            s.parse::<i64>()
                .map(Json::from)
                .ok()
                .or_else(|| s.parse::<u64>().ok().map(Json::from))
        }
        _ => None,
    }
}

/// mysql_common renders binlog YEAR as `1900 + stored byte`, so YEAR 0000 arrives as "1900"; 1900 is outside
/// YEAR's range (1901..=2155), so it can only mean 0000.
fn year(value: &Value) -> Option<Json> {
    let year = match int(value)? {
        Json::Number(n) => n.as_u64()?,
        _ => return None,
    };
    Some(Json::from(if year == 1900 { 0 } else { year }))
}

/// FLOAT is formatted through `f32`'s shortest representation so that both paths agree.
fn float(value: &Value, single: bool) -> Option<Json> {
    let f = match value {
        Value::Float(f) => f64::from(*f),
        Value::Double(d) => *d,
        Value::Bytes(b) => std::str::from_utf8(b).ok()?.parse().ok()?,
        _ => return None,
    };
    #[allow(clippy::cast_possible_truncation)]
    let f = if single {
        (f as f32).to_string().parse().ok()?
    } else {
        f
    };
    Number::from_f64(f).map(Json::Number)
}

fn fraction(us: u32) -> String {
    if us == 0 { String::new() } else { format!(".{us:06}") }
}

fn datetime(value: &Value, sep: char, suffix: &str) -> String {
    match value {
        Value::Date(y, mo, d, h, mi, s, us) => {
            format!(
                "{y:04}-{mo:02}-{d:02}{sep}{h:02}:{mi:02}:{s:02}{}{suffix}",
                fraction(*us)
            )
        }
        _ => String::new(),
    }
}

/// The binlog gives a TIMESTAMP as epoch seconds text ("1704038400.500000"); a snapshot, read with the session
/// zone at UTC, as a date value. Both become the same UTC string; a zero timestamp stays zero.
fn timestamp(value: &Value) -> Option<Json> {
    match value {
        Value::Date(0, 0, 0, ..) => Some(Json::String("0000-00-00T00:00:00Z".to_owned())),
        Value::Date(..) => Some(Json::String(datetime(value, 'T', "Z"))),
        Value::Bytes(b) => {
            let text = std::str::from_utf8(b).ok()?;
            // TIMESTAMP has at most six fraction digits; more is not a value a server sends, so it is refused
            // (None: the caller names the row) rather than overflowing the nanoseconds below.
            let (secs, micros) = match text.split_once('.') {
                Some((_, f)) if f.len() > 6 => return None,
                Some((s, f)) => (s.parse::<i64>().ok()?, format!("{f:0<6}").parse::<u32>().ok()?),
                None => (text.parse::<i64>().ok()?, 0),
            };
            if secs == 0 && micros == 0 {
                return Some(Json::String("0000-00-00T00:00:00Z".to_owned()));
            }
            let at = chrono::DateTime::from_timestamp(secs, micros.checked_mul(1000)?)?;
            Some(Json::String(format!(
                "{}{}Z",
                at.format("%Y-%m-%dT%H:%M:%S"),
                fraction(micros)
            )))
        }
        Value::Int(secs) => timestamp(&Value::Bytes(secs.to_string().into_bytes())),
        _ => None,
    }
}

/// Rejects the garbage mysql_common produces for negative TIME(1|2) with a fraction (minutes or seconds above
/// 59, microseconds above 999999) instead of storing it.
fn time(value: &Value) -> Option<Json> {
    match value {
        Value::Time(neg, days, h, m, s, us) if *m < 60 && *s < 60 && *us < 1_000_000 => {
            let hours = u64::from(*days) * 24 + u64::from(*h);
            let sign = if *neg { "-" } else { "" };
            Some(Json::String(format!("{sign}{hours:02}:{m:02}:{s:02}{}", fraction(*us))))
        }
        _ => None,
    }
}

fn enum_label(value: &Value, labels: &[String]) -> Option<Json> {
    match value {
        // Index 0 is the "invalid value" the server stores for bad input in non-strict mode.
        Value::Int(0) => Some(Json::String(String::new())),
        Value::Int(i) => labels
            .get(usize::try_from(i.checked_sub(1)?).ok()?)
            .cloned()
            .map(Json::String),
        Value::Bytes(b) => Some(Json::String(String::from_utf8_lossy(b).into_owned())),
        _ => None,
    }
}

fn set_labels(value: &Value, labels: &[String]) -> Option<Json> {
    let raw = bytes(value)?;
    // A snapshot sends the labels as text; the binlog a little-endian bitmask of ceil(n/8) bytes.
    if labels.is_empty() || std::str::from_utf8(raw).is_ok_and(|s| s.split(',').all(|l| labels.iter().any(|x| x == l)))
    {
        return Some(Json::String(String::from_utf8_lossy(raw).into_owned()));
    }
    let mut mask = 0_u64;
    for (i, byte) in raw.iter().enumerate().take(8) {
        mask |= u64::from(*byte) << (8 * i);
    }
    let chosen: Vec<&str> = labels
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, l)| l.as_str())
        .collect();
    Some(Json::String(chosen.join(",")))
}

fn bit(value: &Value) -> Option<Json> {
    match value {
        Value::Bytes(b) if b.len() <= 8 => Some(Json::from(b.iter().fold(0_u64, |acc, x| (acc << 8) | u64::from(*x)))),
        Value::Int(i) => Some(Json::from(*i)),
        Value::UInt(u) => Some(Json::from(*u)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(kind: Kind) -> ColumnInfo {
        ColumnInfo {
            name: "c".to_owned(),
            kind,
        }
    }

    #[test]
    fn binlog_and_snapshot_forms_agree() {
        let ts = col(Kind::Timestamp);
        let from_binlog = normalize(&Value::Bytes(b"1704038400.5".to_vec()), &ts, None).unwrap();
        let from_select = normalize(&Value::Date(2023, 12, 31, 16, 0, 0, 500_000), &ts, None).unwrap();
        assert_eq!(from_binlog, from_select);
        assert_eq!(from_binlog, "2023-12-31T16:00:00.500000Z");
        let year = col(Kind::Year);
        assert_eq!(normalize(&Value::Bytes(b"1900".to_vec()), &year, None).unwrap(), 0);
        assert_eq!(normalize(&Value::Int(2024), &year, None).unwrap(), 2024);
        let set = col(Kind::Set(vec!["a".into(), "b".into(), "c".into()]));
        assert_eq!(normalize(&Value::Bytes(vec![0b101]), &set, None).unwrap(), "a,c");
        assert_eq!(normalize(&Value::Bytes(b"a,c".to_vec()), &set, None).unwrap(), "a,c");
        let float = col(Kind::Float);
        assert_eq!(
            normalize(&Value::Float(1.1), &float, None).unwrap(),
            normalize(&Value::Double(f64::from(1.1_f32)), &float, None).unwrap()
        );
    }

    #[test]
    fn broken_negative_time_is_refused() {
        let t = col(Kind::Time);
        assert!(normalize(&Value::Time(false, 25, 23, 63, 63, 16_277_216), &t, None).is_err());
        assert_eq!(
            normalize(&Value::Time(true, 1, 2, 3, 4, 500_000), &t, None).unwrap(),
            "-26:03:04.500000"
        );
    }
}
