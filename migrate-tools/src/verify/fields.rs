//! `verify --mode source`: every mapped field of every source row (or of a random sample), read from the source
//! with plain SQL and compared with what the store holds, so a mapping that imported the wrong thing is caught
//! even though the checksum mode (which maps the source again) agrees with it.
//!
//! The source side does not go through the importer's decode or mapping code: the server converts text from the
//! column's charset (a declared mojibake repair becomes `CONVERT(CAST(c AS BINARY) USING cs)`), computes instants
//! (`CONVERT_TZ` from `source_timezone`, `TIMESTAMPDIFF` in microseconds) and renders templates (`CONCAT`,
//! `COALESCE` for fallbacks). Only the mapping's declarations (`map`, `default`, `constant`) are taken as given.

use std::collections::BTreeMap;

use mysql_async::prelude::Queryable as _;
use serde::Serialize;
use serde_json::{Map, Value as Json};

use crate::canonical::Mapper;
use crate::charset::Charset;
use crate::mapping::{EntityKind, Field, Mapping, TableMapping, Transform, split_lookup, text_of};
use crate::sink::Target;
use crate::snapshot::{SnapshotError, ident};
use crate::source::{self, Source};

/// Rows read and compared per round trip.
const CHUNK: usize = 1_000;

/// Mismatches kept per table (all are counted).
const KEPT: usize = 100;

/// One stored field that differs from its source.
#[derive(Debug, Clone, Serialize)]
pub struct Mismatch {
    /// The source row's primary key.
    pub key: i64,
    /// The canonical field (`text`, `sender_id`, `sent_at`, … or `row` when the record is missing or extra).
    pub field: String,
    /// What the source says, as text (`NULL` when NULL).
    pub source: String,
    /// What the store holds.
    pub stored: String,
}

/// The result for one mapped table.
#[derive(Debug, Clone, Serialize)]
pub struct FieldReport {
    /// `<mapping>:<table>/<kind>`.
    pub source: String,
    /// Source rows compared.
    pub rows: u64,
    /// Mismatches found.
    pub mismatch_count: u64,
    /// The first mismatches, by key.
    pub mismatches: Vec<Mismatch>,
}

impl FieldReport {
    /// No mismatch.
    pub fn ok(&self) -> bool {
        self.mismatch_count == 0
    }
}

/// Compares every mapped field of every row (`sample: None`) or of `sample` random rows per table.
pub async fn run(
    source: &Source,
    target: &Target,
    mapper: &Mapper,
    sample: Option<u64>,
) -> Result<Vec<FieldReport>, SnapshotError> {
    let mut conn = source.connect().await?;
    source::preflight(&mut conn).await?;
    // Text converted by the server into UTF-8; TIMESTAMP shown in UTC.
    conn.query_drop("SET NAMES utf8mb4").await?;
    conn.query_drop("SET time_zone = '+00:00'").await?;
    conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT").await?;
    let mut reports = Vec::new();
    for t in &mapper.mapping().tables {
        let schema = source::table_columns(&mut conn, source.database(), &t.table).await?;
        let temporal: BTreeMap<String, bool> = schema
            .iter()
            .map(|c| (c.name.clone(), matches!(c.kind, crate::decode::Kind::Timestamp)))
            .collect();
        let query = Query::new(mapper.mapping(), t, &temporal);
        let mut report = FieldReport {
            source: mapper.source_name(t),
            rows: 0,
            mismatch_count: 0,
            mismatches: Vec::new(),
        };
        match sample {
            Some(n) => {
                let rows: Vec<mysql_async::Row> = conn.query(query.sample(n)).await?;
                for row in rows {
                    let row = SourceRow::new(row);
                    let stored = target.stored(&report.source, t.kind, row.key, row.key).await?;
                    compare(mapper, t, &query, &[row], stored, &mut report);
                }
            }
            None => {
                let mut last = i64::MIN;
                loop {
                    let rows: Vec<mysql_async::Row> = conn.exec(query.chunk(), (last,)).await?;
                    let full = rows.len() == CHUNK;
                    let lo = last.saturating_add(1);
                    let rows: Vec<SourceRow> = rows.into_iter().map(SourceRow::new).collect();
                    last = rows.iter().map(|r| r.key).max().unwrap_or(last);
                    let hi = if full { last } else { i64::MAX };
                    let stored = target.stored(&report.source, t.kind, lo, hi).await?;
                    compare(mapper, t, &query, &rows, stored, &mut report);
                    if !full {
                        break;
                    }
                }
            }
        }
        reports.push(report);
    }
    conn.query_drop("COMMIT").await?;
    Ok(reports)
}

/// The SELECT for one table mapping: the key, then one text expression per field read from the source.
struct Query {
    select: String,
    /// The table, and a LEFT JOIN per lookup.
    from: String,
    key: String,
    /// Field name to its position in the row (after the key).
    fields: Vec<String>,
}

impl Query {
    fn new(mapping: &Mapping, t: &TableMapping, timestamp: &BTreeMap<String, bool>) -> Self {
        let zone = mapping.source_timezone.clone();
        let mut exprs = vec![qualified(&t.key)];
        let mut fields = Vec::new();
        for (name, field) in &t.fields {
            let time = matches!(name.as_str(), "sent_at" | "created_at" | "updated_at");
            let text = |column: &str| text_sql(t, column);
            let expr = match (&field.column, field.parsed_template()) {
                (Some(column), _) if time => time_sql(column, field.transform, &zone, timestamp),
                (Some(column), _) => text(column),
                (None, Some(template)) => template.to_sql(&text),
                (None, None) => continue,
            };
            exprs.push(expr);
            fields.push(name.clone());
        }
        let mut from = format!("`{}` AS `{ROW}`", ident(&t.table));
        for (alias, lookup) in &t.lookups {
            from.push_str(&format!(
                " LEFT JOIN `{}` AS `{a}` ON `{a}`.`{}` = {}",
                ident(&lookup.table),
                ident(&lookup.key),
                qualified(&lookup.from),
                a = ident(alias),
            ));
            for (column, value) in &lookup.when {
                from.push_str(&format!(
                    " AND {} = {}",
                    qualified(column),
                    crate::mapping::sql_string(&text_of(value))
                ));
            }
        }
        Self {
            select: exprs.join(", "),
            from,
            key: qualified(&t.key),
            fields,
        }
    }

    fn chunk(&self) -> String {
        format!(
            "SELECT {} FROM {t} WHERE {k} > ? ORDER BY {k} LIMIT {CHUNK}",
            self.select,
            t = self.from,
            k = self.key
        )
    }

    fn sample(&self, n: u64) -> String {
        format!("SELECT {} FROM {} ORDER BY RAND() LIMIT {n}", self.select, self.from)
    }

    /// The source text of a field in `row`: `Some(None)` for a SQL NULL, `None` when the field is not read.
    fn get<'a>(&self, row: &'a SourceRow, field: &str) -> Option<Option<&'a str>> {
        let i = self.fields.iter().position(|f| f == field)?;
        row.values.get(i).map(Option::as_deref)
    }
}

/// The mapped table's alias in verify queries (lookup tables take their lookup's name).
const ROW: &str = "__row";

/// A column of the mapped table, or `<alias>.<column>` of a lookup, qualified by its table's alias.
fn qualified(column: &str) -> String {
    match split_lookup(column) {
        Some((alias, column)) => format!("`{}`.`{}`", ident(alias), ident(column)),
        None => format!("`{ROW}`.`{}`", ident(column)),
    }
}

/// A column as UTF-8 text, converted by the server (through the declared charset when the mapping repairs one).
fn text_sql(t: &TableMapping, column: &str) -> String {
    let quoted = qualified(column);
    match t.columns.get(column).and_then(|o| o.reinterpret) {
        Some(charset) => format!(
            "CONVERT(CAST({quoted} AS BINARY) USING {})",
            match charset {
                Charset::Utf8 => "utf8mb4",
                Charset::Latin1 => "latin1",
                Charset::Gbk => "gbk",
                Charset::Gb18030 => "gb18030",
                Charset::Big5 => "big5",
                Charset::Binary => "binary",
            }
        ),
        None => format!("CAST({quoted} AS CHAR)"),
    }
}

/// A time column as microseconds since the epoch, computed by the server.
fn time_sql(column: &str, transform: Transform, zone: &str, timestamp: &BTreeMap<String, bool>) -> String {
    let quoted = qualified(column);
    let micros = |instant: String| format!("TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', {instant})");
    let expr = match transform {
        Transform::UnixSeconds => format!("CAST({quoted} AS SIGNED) * 1000000"),
        Transform::UnixMillis => format!("CAST({quoted} AS SIGNED) * 1000"),
        // The session runs in UTC, so a TIMESTAMP reads as its UTC wall clock.
        _ if timestamp.get(column).copied().unwrap_or(false) => micros(quoted.clone()),
        _ => micros(format!(
            "CONVERT_TZ({quoted}, {}, '+00:00')",
            crate::mapping::sql_string(zone)
        )),
    };
    // A zero date is no instant: the importer takes the field's default (or NULL) for it.
    format!("CASE WHEN CAST({quoted} AS CHAR) LIKE '0000-00-00%' THEN NULL ELSE CAST({expr} AS CHAR) END")
}

struct SourceRow {
    key: i64,
    values: Vec<Option<String>>,
}

impl SourceRow {
    fn new(row: mysql_async::Row) -> Self {
        let mut values = row.unwrap().into_iter();
        let key = match values.next() {
            Some(mysql_async::Value::Int(i)) => i,
            Some(mysql_async::Value::UInt(u)) => i64::try_from(u).unwrap_or(i64::MAX),
            Some(mysql_async::Value::Bytes(b)) => String::from_utf8_lossy(&b).parse().unwrap_or_default(),
            _ => 0,
        };
        let values = values
            .map(|v| match v {
                mysql_async::Value::NULL => None,
                mysql_async::Value::Bytes(b) => Some(String::from_utf8_lossy(&b).into_owned()),
                mysql_async::Value::Int(i) => Some(i.to_string()),
                mysql_async::Value::UInt(u) => Some(u.to_string()),
                other => Some(other.as_sql(true)),
            })
            .collect();
        Self { key, values }
    }
}

/// What the mapping declares a field to be for this source text: its map (unlisted values take `default` if
/// declared, else pass through), then `default` for NULL, empty and zero dates. Written here again on purpose.
fn declared(field: &Field, text: Option<&str>) -> Json {
    let raw = match (&field.constant, text) {
        (Some(constant), _) => constant.clone(),
        (None, Some(text)) => Json::String(text.to_owned()),
        (None, None) => Json::Null,
    };
    let mapped = match (&raw, field.map.is_empty()) {
        (Json::Null, _) | (_, true) => raw,
        (value, false) => match field.map.get(&text_of(value)) {
            Some(to) => to.clone(),
            None => field.default.clone().unwrap_or(raw),
        },
    };
    let empty = match &mapped {
        Json::Null => true,
        Json::String(s) => s.is_empty() || s.starts_with("0000-00-00"),
        _ => false,
    };
    if empty {
        field.default.clone().unwrap_or(Json::Null)
    } else {
        mapped
    }
}

fn truthy(value: &Json) -> bool {
    match value {
        Json::Bool(b) => *b,
        Json::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Json::String(s) => matches!(s.to_ascii_lowercase().as_str(), "1" | "y" | "yes" | "true"),
        _ => false,
    }
}

/// The expected value of every field of one source row, by canonical field name.
struct Expected<'a> {
    t: &'a TableMapping,
    query: &'a Query,
    row: &'a SourceRow,
}

impl Expected<'_> {
    /// The field's value as text, `None` when NULL (or unmapped).
    fn text(&self, name: &str) -> Option<String> {
        let field = self.t.fields.get(name)?;
        let text = self.query.get(self.row, name).flatten();
        let value = declared(field, text);
        (!value.is_null()).then(|| text_of(&value))
    }

    fn flag(&self, name: &str) -> bool {
        let Some(field) = self.t.fields.get(name) else {
            return false;
        };
        let text = self.query.get(self.row, name).flatten();
        if field.transform == Transform::Present {
            return text.is_some_and(|t| !t.is_empty() && !t.starts_with("0000-00-00"));
        }
        truthy(&declared(field, text))
    }

    /// Microseconds since the epoch; `Err` when the field has a default standing in for NULL (not comparable).
    fn micros(&self, name: &str) -> Result<Option<i64>, ()> {
        let Some(field) = self.t.fields.get(name) else {
            return Ok(None);
        };
        match self.query.get(self.row, name).flatten() {
            Some(text) => Ok(text.parse().ok()),
            None if field.default.is_some() => Err(()),
            None => Ok(None),
        }
    }
}

fn compare(
    mapper: &Mapper,
    t: &TableMapping,
    query: &Query,
    rows: &[SourceRow],
    stored: Vec<(i64, Map<String, Json>)>,
    report: &mut FieldReport,
) {
    let mut stored: BTreeMap<i64, Map<String, Json>> = stored.into_iter().collect();
    for row in rows {
        let expected = Expected { t, query, row };
        let found = stored.remove(&row.key);
        report.rows += 1;
        let mut diffs = Vec::new();
        let skip = matches!(t.kind, EntityKind::Message | EntityKind::Conversation) && expected.flag("skip");
        match (skip, found) {
            (true, None) => {}
            (true, Some(_)) => diffs.push(("skip".to_owned(), "skipped".to_owned(), "stored".to_owned())),
            (false, None) => diffs.push(("row".to_owned(), "present".to_owned(), "missing".to_owned())),
            (false, Some(record)) => match t.kind {
                EntityKind::Message => message_diff(mapper, &expected, &record, &mut diffs),
                EntityKind::Conversation => conversation_diff(mapper, &expected, &record, &mut diffs),
                EntityKind::Customer | EntityKind::Agent => party_diff(&expected, &record, &mut diffs),
            },
        }
        for (field, source, stored) in diffs {
            report.mismatch_count += 1;
            if report.mismatches.len() < KEPT {
                report.mismatches.push(Mismatch {
                    key: row.key,
                    field,
                    source,
                    stored,
                });
            }
        }
    }
    // Stored records in the compared range that no source row accounts for (full mode only: a sample reads
    // single keys).
    for (key, _) in stored {
        report.mismatch_count += 1;
        if report.mismatches.len() < KEPT {
            report.mismatches.push(Mismatch {
                key,
                field: "row".to_owned(),
                source: "missing".to_owned(),
                stored: "present".to_owned(),
            });
        }
    }
}

/// (field, source value, stored value).
type Diffs = Vec<(String, String, String)>;

/// `"text"` or `NULL`.
fn show(value: Option<&str>) -> String {
    value.map_or_else(|| "NULL".to_owned(), |v| format!("{v:?}"))
}

fn check(diffs: &mut Diffs, field: &str, source: Option<&str>, stored: Option<&str>) {
    if source != stored {
        diffs.push((field.to_owned(), show(source), show(stored)));
    }
}

fn stored_text<'a>(record: &'a Map<String, Json>, column: &str) -> Option<&'a str> {
    record.get(column).and_then(Json::as_str)
}

fn conversation_diff(mapper: &Mapper, e: &Expected<'_>, record: &Map<String, Json>, diffs: &mut Diffs) {
    let key = e.text("conversation_key").unwrap_or_else(|| e.row.key.to_string());
    let id = mapper.conversation_id(&e.t.table, &key).to_string();
    check(diffs, "conversation_key", Some(&id), stored_text(record, "id"));
    for name in ["customer_id", "department", "assigned_agent"] {
        if e.t.fields.contains_key(name) {
            check(diffs, name, e.text(name).as_deref(), stored_text(record, name));
        }
    }
    let status = e.text("status").unwrap_or_else(|| "closed".to_owned());
    check(diffs, "status", Some(&status), stored_text(record, "status"));
    let channel = e.text("channel").unwrap_or_else(|| mapper.mapping().channel.clone());
    check(diffs, "channel", Some(&channel), stored_text(record, "channel"));
    let stored_micros = |column: &str| record.get(column).and_then(Json::as_i64);
    let Ok(created) = e.micros("created_at") else {
        return;
    };
    let created = created.unwrap_or(0);
    check_micros(diffs, "created_at", Some(created), stored_micros("created_at"));
    if let Ok(updated) = e.micros("updated_at") {
        let updated = updated.unwrap_or(created).max(created);
        check_micros(diffs, "updated_at", Some(updated), stored_micros("updated_at"));
    }
}

fn check_micros(diffs: &mut Diffs, field: &str, source: Option<i64>, stored: Option<i64>) {
    if source != stored {
        let show = |v: Option<i64>| {
            v.and_then(chrono::DateTime::from_timestamp_micros)
                .map_or_else(|| "NULL".to_owned(), |t| t.to_rfc3339())
        };
        diffs.push((field.to_owned(), show(source), show(stored)));
    }
}

fn party_diff(e: &Expected<'_>, record: &Map<String, Json>, diffs: &mut Diffs) {
    for name in ["external_id", "display_name", "email"] {
        if e.t.fields.contains_key(name) {
            check(diffs, name, e.text(name).as_deref(), stored_text(record, name));
        }
    }
}

fn message_diff(mapper: &Mapper, e: &Expected<'_>, record: &Map<String, Json>, diffs: &mut Diffs) {
    let body = record
        .get("body")
        .and_then(Json::as_str)
        .map(serde_json::from_str::<Json>);
    let Some(Ok(body)) = body else {
        diffs.push((
            "row".to_owned(),
            "a message".to_owned(),
            "an unreadable body".to_owned(),
        ));
        return;
    };
    let s = |pointer: &str| body.pointer(pointer).and_then(Json::as_str);
    let conversation = e.text("conversation").map(|key| {
        let table = e.t.conversation_table.as_deref().unwrap_or_default();
        mapper.conversation_id(table, &key).to_string()
    });
    check(diffs, "conversation", conversation.as_deref(), s("/conversation_id"));
    let role = e.text("role");
    check(diffs, "role", role.as_deref(), s("/sender/role"));
    // The author column depends on the role (osTicket keeps customers in user_id, staff in staff_id).
    let (author_field, author) = match (role.as_deref(), e.text("agent_id")) {
        (Some("customer"), _) | (_, None) => ("sender_id", e.text("sender_id")),
        (_, Some(agent)) => ("agent_id", Some(agent)),
    };
    check(diffs, author_field, author.as_deref(), s("/sender/external_id"));
    if e.t.fields.contains_key("sender_name") {
        check(
            diffs,
            "sender_name",
            e.text("sender_name").as_deref(),
            s("/sender/display_name"),
        );
    }
    let kind = e.text("content_type").unwrap_or_else(|| "text".to_owned());
    check(diffs, "content_type", Some(&kind), s("/content/type"));
    if kind == "text" {
        let text = e.text("text").unwrap_or_default();
        check(diffs, "text", Some(&text), s("/content/text"));
    } else {
        check(
            diffs,
            "attachment_url",
            e.text("attachment_url").as_deref(),
            s("/content/url"),
        );
        if kind == "file" {
            check(
                diffs,
                "attachment_name",
                e.text("attachment_name").as_deref(),
                s("/content/name"),
            );
        }
    }
    if let Ok(sent) = e.micros("sent_at") {
        let stored = s("/sent_at")
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.timestamp_micros());
        check_micros(diffs, "sent_at", sent, stored);
    }
    let internal = e.flag("internal");
    let stored_internal = body
        .pointer("/metadata/internal")
        .and_then(Json::as_bool)
        .unwrap_or(false);
    if internal != stored_internal {
        diffs.push(("internal".to_owned(), internal.to_string(), stored_internal.to_string()));
    }
    let channel = e.text("channel").unwrap_or_else(|| mapper.mapping().channel.clone());
    check(diffs, "channel", Some(&channel), s("/channel"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_values_follow_map_then_default() {
        let field: Field = toml::from_str(
            r#"column = "staff_id"
map = { "0" = "system" }"#,
        )
        .unwrap();
        assert_eq!(declared(&field, Some("0")), Json::from("system"));
        assert_eq!(
            declared(&field, Some("7")),
            Json::from("7"),
            "unlisted values pass through"
        );
        assert_eq!(declared(&field, None), Json::Null);
        let field: Field = toml::from_str(
            r#"column = "type"
map = { N = true }
default = false"#,
        )
        .unwrap();
        assert!(truthy(&declared(&field, Some("N"))));
        assert!(!truthy(&declared(&field, Some("R"))));
    }
}
