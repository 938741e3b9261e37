//! The mapping's shape: the tables, their kinds and fields, and how one field is evaluated over a source row.

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::{FixedOffset, NaiveDateTime, Offset as _, TimeZone as _};
use serde::Deserialize;
use serde_json::Value as Json;

use super::lookup::Lookup;
use super::template::Template;
use super::value::{Row, is_empty, text_of};
use crate::charset::Charset;
use protofuse_model::Timestamp;

/// A whole mapping file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// Names the source system; becomes `source.account` and scopes idempotency keys and import bookkeeping.
    pub name: String,
    /// Default channel of imported conversations and messages.
    pub channel: String,
    /// Zone of zone-less DATETIME values, as `+08:00`; TIMESTAMP values are instants and need none.
    #[serde(default = "utc")]
    pub source_timezone: String,
    /// The mapped tables.
    pub tables: Vec<TableMapping>,
}

fn utc() -> String {
    "+00:00".to_owned()
}

/// What a source table holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    /// One row is one conversation.
    Conversation,
    /// One row is one message.
    Message,
    /// One row is one customer.
    Customer,
    /// One row is one agent.
    Agent,
}

impl EntityKind {
    /// The name used in bookkeeping keys.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Conversation => "conversation",
            Self::Message => "message",
            Self::Customer => "customer",
            Self::Agent => "agent",
        }
    }

    pub(super) fn required(self) -> &'static [&'static str] {
        match self {
            Self::Conversation => &["customer_id", "created_at"],
            Self::Message => &["conversation", "role", "sent_at"],
            Self::Customer | Self::Agent => &["external_id"],
        }
    }

    pub(super) fn allowed(self) -> &'static [&'static str] {
        match self {
            Self::Conversation => &[
                "conversation_key",
                "customer_id",
                "status",
                "department",
                "assigned_agent",
                "channel",
                "created_at",
                "updated_at",
                "skip",
            ],
            Self::Message => &[
                "conversation",
                "role",
                "sender_id",
                "agent_id",
                "sender_name",
                "text",
                "content_type",
                "attachment_url",
                "attachment_name",
                "sent_at",
                "internal",
                "channel",
                "skip",
            ],
            Self::Customer | Self::Agent => &["external_id", "display_name", "email"],
        }
    }
}

/// One mapped table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableMapping {
    /// The source table name.
    pub table: String,
    /// What its rows are.
    pub kind: EntityKind,
    /// Its single-column integer primary key (snapshot chunks and bookkeeping are keyed by it).
    #[serde(default = "id")]
    pub key: String,
    /// For messages: the mapped conversation table whose `conversation_key` the `conversation` field names.
    #[serde(default)]
    pub conversation_table: Option<String>,
    /// Canonical field name to how it is computed.
    pub fields: BTreeMap<String, Field>,
    /// Per-column decoding options.
    #[serde(default)]
    pub columns: BTreeMap<String, ColumnOptions>,
    /// Rows of other tables the fields read as `<alias>.<column>` (see [`Lookup`]).
    #[serde(default)]
    pub lookups: BTreeMap<String, Lookup>,
}

fn id() -> String {
    "id".to_owned()
}

/// Per-column decoding options.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnOptions {
    /// Decode the column's bytes as this charset instead of the declared one (mojibake repair).
    pub reinterpret: Option<Charset>,
}

/// How one canonical field is computed: from a column, a constant or a template; then a value map; then a
/// transform; `default` when the result is NULL or empty.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Field {
    /// Source column.
    pub column: Option<String>,
    /// Fixed value.
    pub constant: Option<Json>,
    /// Text with `{column}` or `{column|fallback}` placeholders (see [`Template`]).
    pub template: Option<String>,
    /// Value map, keyed by the value's text (role codes, status codes). A value it does not list takes `default`
    /// when one is declared and passes through unchanged otherwise: never a silent NULL.
    #[serde(default)]
    pub map: BTreeMap<String, Json>,
    /// Conversion applied last.
    #[serde(default)]
    pub transform: Transform,
    /// Used when the value is NULL, empty, a zero date, or not in `map`.
    pub default: Option<Json>,
    /// `template`, parsed once when the mapping is loaded.
    #[serde(skip)]
    pub(super) parsed: Option<Template>,
}

impl Field {
    /// The parsed template, for a template field.
    pub fn parsed_template(&self) -> Option<&Template> {
        self.parsed.as_ref()
    }

    /// The value `map` and `default` make of a non-NULL source value.
    pub fn apply_map(&self, raw: Json) -> Json {
        if self.map.is_empty() || raw.is_null() {
            return raw;
        }
        match self.map.get(&text_of(&raw)) {
            Some(mapped) => mapped.clone(),
            None => self.default.clone().unwrap_or(raw),
        }
    }
}

/// Conversions of a field value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transform {
    /// Text (numbers are printed).
    #[default]
    Text,
    /// Unix seconds to a timestamp.
    UnixSeconds,
    /// Unix milliseconds to a timestamp.
    UnixMillis,
    /// A DATETIME (in `source_timezone`) or TIMESTAMP value to a timestamp.
    Datetime,
    /// Truthiness: non-zero numbers, `true`, `"1"`, `"y"`, `"yes"`.
    Bool,
    /// True when the value is present (not NULL, empty or a zero date), e.g. a `deleted_at` column.
    Present,
}

/// A field value that cannot become what the canonical model needs.
#[derive(Debug, thiserror::Error)]
#[error("table {table}, row {row}, field {field}: {reason}")]
pub struct FieldError {
    /// The source table.
    pub table: String,
    /// The row, by its key (`id=42`), so the operator can look at it.
    pub row: String,
    /// The canonical field.
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

impl Mapping {
    /// The zone of DATETIME columns.
    pub fn zone(&self) -> FixedOffset {
        self.source_timezone.parse().unwrap_or_else(|_| chrono::Utc.fix())
    }

    /// The mappings of a source table (one table may feed several kinds, e.g. go-fly's `visitor`).
    pub fn for_table<'a>(&'a self, table: &'a str) -> impl Iterator<Item = &'a TableMapping> + 'a {
        self.tables.iter().filter(move |t| t.table == table)
    }

    /// The columns of `table` that fields read through lookups, and the lookups' keys into it: a change to a
    /// looked-up row that leaves them all as they were changes nothing imported.
    pub fn looked_up_columns(&self, table: &str) -> std::collections::BTreeSet<String> {
        let mut columns = std::collections::BTreeSet::new();
        for t in &self.tables {
            for (alias, lookup) in t.lookups.iter().filter(|(_, l)| l.table == table) {
                columns.insert(lookup.key.clone());
                let prefix = format!("{alias}.");
                for field in t.fields.values() {
                    let placeholders = field.parsed.iter().flat_map(Template::variables).map(|v| v.column);
                    for column in field.column.iter().cloned().chain(placeholders) {
                        if let Some(name) = column.strip_prefix(&prefix) {
                            columns.insert(name.to_owned());
                        }
                    }
                }
            }
        }
        columns
    }

    /// The mapped conversation table named `name`.
    pub fn conversation_table(&self, name: &str) -> Option<&TableMapping> {
        self.tables
            .iter()
            .find(|t| t.kind == EntityKind::Conversation && t.table == name)
    }
}

impl TableMapping {
    /// Evaluates a field to JSON (`Null` when absent and without default).
    pub fn value(&self, name: &str, row: &Row) -> Json {
        self.value_ref(name, row).into_owned()
    }

    /// [`TableMapping::value`], borrowing the row's value when no map or default replaces it: the snapshot
    /// reads several fields of every row, and each clone of a text value is an allocation.
    fn value_ref<'a>(&'a self, name: &str, row: &'a Row) -> Cow<'a, Json> {
        const NULL: &Json = &Json::Null;
        let Some(field) = self.fields.get(name) else {
            return Cow::Borrowed(NULL);
        };
        let raw = if let Some(column) = &field.column {
            Cow::Borrowed(row.get(column).unwrap_or(NULL))
        } else if let Some(constant) = &field.constant {
            Cow::Borrowed(constant)
        } else {
            Cow::Owned(
                field
                    .parsed
                    .as_ref()
                    .and_then(|t| t.render(row))
                    .map_or(Json::Null, Json::String),
            )
        };
        let mapped = if field.map.is_empty() || raw.is_null() {
            raw
        } else {
            Cow::Owned(field.apply_map(raw.into_owned()))
        };
        if is_empty(&mapped) {
            return field.default.as_ref().map_or(Cow::Borrowed(NULL), Cow::Borrowed);
        }
        mapped
    }

    /// A field as text, `None` when NULL.
    pub fn text(&self, name: &str, row: &Row) -> Option<String> {
        let v = self.value_ref(name, row);
        (!v.is_null()).then(|| text_of(&v))
    }

    /// A required text field.
    pub fn required_text(&self, name: &str, row: &Row) -> Result<String, FieldError> {
        self.text(name, row)
            .ok_or_else(|| self.error(name, "is NULL and has no default", row))
    }

    /// A field as a bool (absent: false).
    pub fn flag(&self, name: &str, row: &Row) -> bool {
        let present = self.fields.get(name).is_some_and(|f| f.transform == Transform::Present);
        match self.value_ref(name, row).as_ref() {
            v if present => !v.is_null(),
            Json::Bool(b) => *b,
            Json::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
            Json::String(s) => matches!(s.to_ascii_lowercase().as_str(), "1" | "y" | "yes" | "true"),
            _ => false,
        }
    }

    /// A field as a timestamp, by its transform.
    pub fn time(&self, name: &str, row: &Row, zone: FixedOffset) -> Result<Option<Timestamp>, FieldError> {
        let value = self.value_ref(name, row);
        if value.is_null() {
            return Ok(None);
        }
        let transform = self.fields.get(name).map(|f| f.transform).unwrap_or_default();
        to_time(&value, transform, zone).map_err(|reason| self.error(name, &reason, row))
    }

    /// The primary key of a row.
    pub fn pk(&self, row: &Row) -> Result<i64, FieldError> {
        match row.get(&self.key) {
            Some(Json::Number(n)) => n.as_i64().ok_or_else(|| self.error(&self.key, "key out of range", row)),
            Some(other) => Err(self.error(&self.key, &format!("key must be an integer, got {other}"), row)),
            None => Err(self.error(&self.key, "key column missing from the row", row)),
        }
    }

    /// The bookkeeping name of this mapping: `table/kind`.
    pub fn source_name(&self) -> String {
        format!("{}/{}", self.table, self.kind.as_str())
    }

    /// Why `field` of `row` cannot be imported.
    pub fn error(&self, field: &str, reason: &str, row: &Row) -> FieldError {
        FieldError {
            table: self.table.clone(),
            row: format!(
                "{}={}",
                self.key,
                row.get(&self.key).map_or_else(|| "?".to_owned(), text_of)
            ),
            field: field.to_owned(),
            reason: reason.to_owned(),
        }
    }
}

fn to_time(value: &Json, transform: Transform, zone: FixedOffset) -> Result<Option<Timestamp>, String> {
    let number = || match value {
        Json::Number(n) => n.as_i64().ok_or_else(|| format!("{n} is not an integer")),
        Json::String(s) => s.parse::<i64>().map_err(|_| format!("{s:?} is not an integer")),
        other => Err(format!("{other} is not a number")),
    };
    let at = match transform {
        Transform::UnixSeconds => chrono::DateTime::from_timestamp(number()?, 0),
        Transform::UnixMillis => chrono::DateTime::from_timestamp_millis(number()?),
        Transform::Datetime | Transform::Text | Transform::Bool | Transform::Present => {
            let text = text_of(value);
            if let Some(utc) = text.strip_suffix('Z') {
                let naive =
                    NaiveDateTime::parse_from_str(utc, "%Y-%m-%dT%H:%M:%S%.f").map_err(|e| format!("{text:?}: {e}"))?;
                Some(naive.and_utc())
            } else {
                let naive = NaiveDateTime::parse_from_str(&text, "%Y-%m-%d %H:%M:%S%.f")
                    .or_else(|_| {
                        chrono::NaiveDate::parse_from_str(&text, "%Y-%m-%d")
                            .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default())
                    })
                    .map_err(|e| format!("{text:?}: {e}"))?;
                zone.from_local_datetime(&naive).single().map(|t| t.to_utc())
            }
        }
    };
    at.map(Some).ok_or_else(|| "time out of range".to_owned())
}
