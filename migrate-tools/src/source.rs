//! The source server: connecting, the pre-flight checks that make row-based following trustworthy, and the
//! column metadata both the snapshot and the binlog decoder need.

use std::collections::HashMap;

use mysql_async::prelude::Queryable as _;
use mysql_async::{Conn, Opts};

use crate::charset::{Charset, CharsetError};
use crate::decode::{ColumnInfo, Kind};
use crate::redact;

/// Source failures, with what to do about them.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The URL does not parse.
    #[error("source url {url} is invalid: {reason}")]
    Url {
        /// Redacted URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The server cannot be reached or refused us.
    #[error("cannot connect to the source {url}: {reason}")]
    Connect {
        /// Redacted URL.
        url: String,
        /// Why (redacted).
        reason: String,
    },
    /// A server setting makes row-based following unsafe.
    #[error("source is not configured for the importer: {0}")]
    Config(String),
    /// A query failed.
    #[error("source query failed: {0}")]
    Query(#[from] mysql_async::Error),
    /// A mapped table is missing or unsupported.
    #[error("source table {table}: {reason}")]
    Table {
        /// The table.
        table: String,
        /// Why.
        reason: String,
    },
    /// A column charset is unsupported.
    #[error(transparent)]
    Charset(#[from] CharsetError),
}

/// A connectable source: options plus the URL for messages (redacted).
#[derive(Debug, Clone)]
pub struct Source {
    opts: Opts,
    url: String,
    redacted: String,
}

impl Source {
    /// Parses the source URL (`mysql://user:pass@host:port/db`).
    pub fn new(url: &str) -> Result<Self, SourceError> {
        let opts = Opts::from_url(url).map_err(|e| SourceError::Url {
            url: redact::url(url),
            reason: redact::text(&e.to_string(), url),
        })?;
        if opts.db_name().is_none() {
            return Err(SourceError::Url {
                url: redact::url(url),
                reason: "name the source database in the path, e.g. mysql://user:pass@host:3306/osticket".to_owned(),
            });
        }
        Ok(Self {
            opts,
            url: url.to_owned(),
            redacted: redact::url(url),
        })
    }

    /// The source database name.
    pub fn database(&self) -> &str {
        self.opts.db_name().unwrap_or_default()
    }

    /// The URL with its password hidden.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }

    /// A new connection, failing fast (10 s) when the server is unreachable.
    pub async fn connect(&self) -> Result<Conn, SourceError> {
        let connect = Conn::new(self.opts.clone());
        match tokio::time::timeout(std::time::Duration::from_secs(10), connect).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(SourceError::Connect {
                url: self.redacted.clone(),
                reason: redact::text(&e.to_string(), &self.url),
            }),
            Err(_) => Err(SourceError::Connect {
                url: self.redacted.clone(),
                reason: "no answer within 10 s".to_owned(),
            }),
        }
    }
}

/// What the pre-flight learned about the server.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    /// `SELECT VERSION()`.
    pub version: String,
    /// MariaDB (GTID events by hand, capability 4) rather than MySQL.
    pub is_mariadb: bool,
    /// Collation id to charset, for decoding binlog text.
    pub collations: HashMap<u16, String>,
}

/// Checks the settings row-based following depends on, failing with the fix when one is wrong.
pub async fn preflight(conn: &mut Conn) -> Result<ServerInfo, SourceError> {
    let version: String = conn.query_first("SELECT VERSION()").await?.unwrap_or_default();
    let is_mariadb = version.contains("MariaDB");
    let var = |name: &'static str| format!("SELECT @@GLOBAL.{name}");
    let log_bin: Option<String> = conn.query_first(var("log_bin")).await?;
    if !matches!(log_bin.as_deref(), Some("1" | "ON")) {
        return Err(SourceError::Config(
            "the binary log is off; start the server with --log-bin".to_owned(),
        ));
    }
    let checks = [
        (
            "binlog_format",
            "ROW",
            "SET GLOBAL binlog_format = 'ROW' (and in my.cnf)",
        ),
        ("binlog_row_image", "FULL", "SET GLOBAL binlog_row_image = 'FULL'"),
        (
            "binlog_row_metadata",
            "FULL",
            "SET GLOBAL binlog_row_metadata = 'FULL' (MariaDB 10.5+/MySQL 8.0+; without it column names and \
             signedness are missing from the binlog)",
        ),
    ];
    for (name, want, fix) in checks {
        let got: Option<String> = conn.query_first(var(name)).await.ok().flatten();
        if !got.as_deref().is_some_and(|g| g.eq_ignore_ascii_case(want)) {
            return Err(SourceError::Config(format!(
                "@@{name} is {got:?}, must be {want}: {fix}"
            )));
        }
    }
    if is_mariadb {
        let compress: Option<String> = conn.query_first(var("log_bin_compress")).await.ok().flatten();
        if matches!(compress.as_deref(), Some("1" | "ON")) {
            return Err(SourceError::Config(
                "log_bin_compress=ON: compressed row events are not supported; SET GLOBAL log_bin_compress = OFF"
                    .to_owned(),
            ));
        }
    }
    let mut rows: Vec<(Option<u16>, Option<String>)> = conn
        .query("SELECT ID, CHARACTER_SET_NAME FROM information_schema.COLLATIONS")
        .await?;
    // MariaDB 10.10+ lists the ids of charset-specific variants of UCA-14 collations only here.
    if let Ok(more) = conn
        .query::<(Option<u16>, Option<String>), _>(
            "SELECT ID, CHARACTER_SET_NAME FROM information_schema.COLLATION_CHARACTER_SET_APPLICABILITY",
        )
        .await
    {
        rows.extend(more);
    }
    let collations = rows.into_iter().filter_map(|(id, cs)| Some((id?, cs?))).collect();
    Ok(ServerInfo {
        version,
        is_mariadb,
        collations,
    })
}

/// The columns of `table` in ordinal order, from `information_schema`.
pub async fn table_columns(conn: &mut Conn, database: &str, table: &str) -> Result<Vec<ColumnInfo>, SourceError> {
    type Row = (String, String, String, Option<String>, Option<u64>);
    let rows: Vec<Row> = conn
        .exec(
            "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, CHARACTER_SET_NAME, CHARACTER_MAXIMUM_LENGTH \
             FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            (database, table),
        )
        .await?;
    if rows.is_empty() {
        return Err(SourceError::Table {
            table: table.to_owned(),
            reason: format!("does not exist in database {database}"),
        });
    }
    rows.into_iter()
        .map(|(name, data_type, column_type, charset, max_len)| {
            let kind = kind_from_schema(&data_type, &column_type, charset.as_deref(), max_len).map_err(|reason| {
                SourceError::Table {
                    table: table.to_owned(),
                    reason: format!("column {name}: {reason}"),
                }
            })?;
            Ok(ColumnInfo { name, kind })
        })
        .collect()
}

fn kind_from_schema(
    data_type: &str,
    column_type: &str,
    charset: Option<&str>,
    max_len: Option<u64>,
) -> Result<Kind, String> {
    Ok(match data_type.to_ascii_lowercase().as_str() {
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" => Kind::Int,
        "decimal" | "numeric" => Kind::Decimal,
        "float" => Kind::Float,
        "double" | "real" => Kind::Double,
        "date" => Kind::Date,
        "datetime" => Kind::DateTime,
        "timestamp" => Kind::Timestamp,
        "time" => Kind::Time,
        "year" => Kind::Year,
        "bit" => Kind::Bit,
        "json" => Kind::Json,
        "enum" => Kind::Enum(labels(column_type)),
        "set" => Kind::Set(labels(column_type)),
        "binary" => Kind::Binary {
            pad: max_len.and_then(|n| usize::try_from(n).ok()),
        },
        "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => Kind::Binary { pad: None },
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" => {
            let charset = charset.unwrap_or("binary");
            match Charset::from_mysql_name(charset).map_err(|e| e.to_string())? {
                Charset::Binary => Kind::Binary { pad: None },
                cs => Kind::Text(cs),
            }
        }
        other => return Err(format!("type {other} is not supported by the importer")),
    })
}

/// The labels of `enum('a','b''c')` / `set(...)`.
pub fn labels(column_type: &str) -> Vec<String> {
    let inner = column_type
        .split_once('(')
        .and_then(|(_, rest)| rest.rsplit_once(')'))
        .map_or("", |(inner, _)| inner);
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('\'', true) if chars.peek() == Some(&'\'') => {
                current.push('\'');
                chars.next();
            }
            ('\'', true) => {
                out.push(std::mem::take(&mut current));
                quoted = false;
            }
            ('\'', false) => quoted = true,
            (c, true) => current.push(c),
            _ => {}
        }
    }
    out
}

/// The source's current binlog end, for lag in bytes.
pub async fn master_position(conn: &mut Conn) -> Result<(String, u64), SourceError> {
    let row: Option<mysql_async::Row> = conn.query_first("SHOW MASTER STATUS").await?;
    let row = row.ok_or_else(|| SourceError::Config("SHOW MASTER STATUS is empty: is the binlog on?".to_owned()))?;
    let file: String = row.get(0).unwrap_or_default();
    let pos: u64 = row.get(1).unwrap_or_default();
    Ok((file, pos))
}

/// Most binlog events `status` counts when measuring lag in events.
pub const EVENTS_BEHIND_CAP: u64 = 100_000;

/// Events between `file:pos` and the source's binlog end (capped at [`EVENTS_BEHIND_CAP`]).
pub async fn events_behind(conn: &mut Conn, file: &str, pos: u64) -> Result<u64, SourceError> {
    let logs: Vec<mysql_async::Row> = conn.query("SHOW BINARY LOGS").await?;
    let names: Vec<String> = logs
        .iter()
        .filter_map(|r| r.get::<String, _>(0))
        .filter(|n| n.as_str() >= file)
        .collect();
    let mut count = 0;
    for name in names {
        let from = if name == file { pos } else { 4 };
        let left = EVENTS_BEHIND_CAP.saturating_sub(count);
        if left == 0 {
            break;
        }
        let events: Vec<mysql_async::Row> = conn
            .query(format!(
                "SHOW BINLOG EVENTS IN '{}' FROM {from} LIMIT {left}",
                name.replace('\'', "")
            ))
            .await?;
        // The first event of every file is its format description, not a change.
        count += events.len().saturating_sub(usize::from(from == 4)) as u64;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    #[test]
    fn enum_labels_parse() {
        assert_eq!(
            super::labels("enum('kefu','visitor','it''s')"),
            ["kefu", "visitor", "it's"]
        );
        assert_eq!(super::labels("set('a','c d')"), ["a", "c d"]);
    }
}
