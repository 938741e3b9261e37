//! A mapping against the source it will read, before anything is written: every table and column it names must
//! exist with a type its transform can read, template placeholders over nullable columns need a fallback, and a
//! field with a closed vocabulary (role, status, content type, flags) must cover every value its column actually
//! holds. `snapshot`, `follow`, `run` and `verify` refuse to start on any problem; `check-mapping --source` lists
//! them all. Reads `information_schema` and `SELECT DISTINCT` only.

use std::collections::BTreeMap;

use mysql_async::Conn;
use mysql_async::prelude::Queryable as _;
use serde_json::Value as Json;

use crate::charset::Charset;
use crate::mapping::{
    EntityKind, FLAG_FIELDS, Field, KEY_FIELDS, Mapping, MappingIssue, TableMapping, Transform, is_empty, split_lookup,
    valid_value, vocabulary,
};
use crate::snapshot::ident;
use crate::source::{self, Source, SourceError};

/// Most distinct values a closed-vocabulary column is read for; past it, the field needs a `default`.
const MAX_DISTINCT: usize = 1_000;

/// A source column as `information_schema.COLUMNS` describes it.
#[derive(Debug, Clone)]
pub struct SourceColumn {
    /// Name.
    pub name: String,
    /// `DATA_TYPE`, lowercase (`int`, `varchar`, …).
    pub data_type: String,
    /// `COLUMN_TYPE` (`enum('a','b')`, `int(10) unsigned`).
    pub column_type: String,
    /// `IS_NULLABLE = 'YES'`.
    pub nullable: bool,
    /// `CHARACTER_SET_NAME`, for text.
    pub charset: Option<String>,
}

/// The tables of the source database, by name.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    /// The database.
    pub database: String,
    /// Table name to its columns in ordinal order.
    pub tables: BTreeMap<String, Vec<SourceColumn>>,
}

impl Schema {
    fn column(&self, table: &str, column: &str) -> Option<&SourceColumn> {
        self.tables.get(table)?.iter().find(|c| c.name == column)
    }

    /// The column a field of `t` reads: one of its table, or `<alias>.<column>` of a lookup's table, which reads
    /// as NULL whatever its declaration when a row finds no match.
    fn field_column(&self, t: &TableMapping, column: &str) -> Option<SourceColumn> {
        match split_lookup(column) {
            Some((alias, name)) => {
                let mut c = self.column(&t.lookups.get(alias)?.table, name)?.clone();
                c.nullable = true;
                Some(c)
            }
            None => self.column(&t.table, column).cloned(),
        }
    }
}

/// Every problem of `mapping` against the source.
pub async fn against_source(source: &Source, mapping: &Mapping) -> Result<Vec<MappingIssue>, SourceError> {
    let mut conn = source.connect().await?;
    conn.query_drop("SET NAMES utf8mb4").await?;
    let schema = read_schema(&mut conn, source.database()).await?;
    let mut issues = schema_issues(mapping, &schema);
    issues.extend(value_issues(&mut conn, mapping, &schema).await?);
    Ok(issues)
}

/// Reads every table's columns of `database`.
pub async fn read_schema(conn: &mut Conn, database: &str) -> Result<Schema, SourceError> {
    type Row = (String, String, String, String, String, Option<String>);
    let rows: Vec<Row> = conn
        .exec(
            "SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, CHARACTER_SET_NAME \
             FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, ORDINAL_POSITION",
            (database,),
        )
        .await?;
    let mut schema = Schema {
        database: database.to_owned(),
        tables: BTreeMap::new(),
    };
    for (table, name, data_type, column_type, nullable, charset) in rows {
        schema.tables.entry(table).or_default().push(SourceColumn {
            name,
            data_type: data_type.to_ascii_lowercase(),
            column_type,
            nullable: nullable.eq_ignore_ascii_case("YES"),
            charset,
        });
    }
    Ok(schema)
}

/// Problems visible in the schema alone: missing tables and columns, incompatible types, nullable placeholders.
pub fn schema_issues(mapping: &Mapping, schema: &Schema) -> Vec<MappingIssue> {
    let mut out = Vec::new();
    for t in &mapping.tables {
        let key = mapping.table_key(t);
        let Some(columns) = schema.tables.get(&t.table) else {
            let names = schema.tables.keys().map(String::as_str);
            out.push(MappingIssue::new(
                key,
                format!(
                    "table {:?} does not exist in database {}{}",
                    t.table,
                    schema.database,
                    did_you_mean(&t.table, names)
                ),
            ));
            continue;
        };
        let missing = |column: &str| {
            let names = columns.iter().map(|c| c.name.as_str());
            format!(
                "column {column:?} does not exist in {}{}",
                t.table,
                did_you_mean(column, names)
            )
        };
        match schema.column(&t.table, &t.key) {
            None => out.push(MappingIssue::new(format!("{key}.key"), missing(&t.key))),
            Some(c) if class(&c.data_type) != Class::Int => out.push(MappingIssue::new(
                format!("{key}.key"),
                format!(
                    "key column {:?} is {}; the key must be an integer column",
                    t.key, c.column_type
                ),
            )),
            Some(_) => {}
        }
        for column in t.columns.keys() {
            if schema.column(&t.table, column).is_none() {
                out.push(MappingIssue::new(format!("{key}.columns.{column}"), missing(column)));
            }
        }
        lookup_issues(&key, t, schema, &missing, &mut out);
        let missing = |column: &str| match split_lookup(column) {
            Some((alias, name)) => {
                let table = t.lookups.get(alias).map_or("?", |l| l.table.as_str());
                format!("column {name:?} does not exist in {table} (lookup {alias})")
            }
            None => missing(column),
        };
        for (name, field) in &t.fields {
            let at = format!("{key}.fields.{name}");
            field_issues(&at, name, field, t, schema, &missing, &mut out);
        }
    }
    out
}

/// Each lookup's table and key exist, and so do the columns of the mapped table it reads.
fn lookup_issues(
    key: &str,
    t: &TableMapping,
    schema: &Schema,
    missing: &dyn Fn(&str) -> String,
    out: &mut Vec<MappingIssue>,
) {
    for (alias, lookup) in &t.lookups {
        let at = format!("{key}.lookups.{alias}");
        if !schema.tables.contains_key(&lookup.table) {
            let names = schema.tables.keys().map(String::as_str);
            out.push(MappingIssue::new(
                format!("{at}.table"),
                format!(
                    "table {:?} does not exist in database {}{}",
                    lookup.table,
                    schema.database,
                    did_you_mean(&lookup.table, names)
                ),
            ));
        } else if schema.column(&lookup.table, &lookup.key).is_none() {
            out.push(MappingIssue::new(
                format!("{at}.key"),
                format!("column {:?} does not exist in {}", lookup.key, lookup.table),
            ));
        }
        for column in lookup.owner_columns() {
            if schema.column(&t.table, column).is_none() {
                out.push(MappingIssue::new(at.clone(), missing(column)));
            }
        }
    }
}

fn field_issues(
    at: &str,
    name: &str,
    field: &Field,
    t: &TableMapping,
    schema: &Schema,
    missing: &dyn Fn(&str) -> String,
    out: &mut Vec<MappingIssue>,
) {
    if let Some(column) = &field.column {
        let Some(c) = schema.field_column(t, column) else {
            out.push(MappingIssue::new(at, missing(column)));
            return;
        };
        if let Some(reason) = incompatible(name, field, &c, t) {
            out.push(MappingIssue::new(at, reason));
        }
        let required = (KEY_FIELDS.contains(&name) && name != "conversation_key") || name == "role";
        if required && c.nullable && field.default.is_none() {
            out.push(MappingIssue::new(
                at,
                format!(
                    "column {column:?} is nullable and a NULL would leave the row without its {name}; use a \
                     template with a per-row fallback, e.g. {{{column}|anonymous-{{{}}}}}",
                    t.key
                ),
            ));
        }
    }
    for variable in field.parsed_template().map(|t| t.variables()).unwrap_or_default() {
        match schema.field_column(t, &variable.column) {
            None => out.push(MappingIssue::new(
                at,
                format!(
                    "template placeholder {{{}}}: {}",
                    variable.column,
                    missing(&variable.column)
                ),
            )),
            Some(c) if c.nullable && !variable.has_fallback && field.default.is_none() => {
                out.push(MappingIssue::new(
                    at,
                    format!(
                        "template placeholder {{{0}}}: column {0:?} is nullable; declare a fallback, \
                         {{{0}|…}}, or a field default",
                        variable.column
                    ),
                ));
            }
            Some(_) => {}
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Int,
    Number,
    Temporal,
    Time,
    Text,
    Binary,
    Labels,
    Other,
}

fn class(data_type: &str) -> Class {
    match data_type {
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "year" => Class::Int,
        "decimal" | "numeric" | "float" | "double" | "real" | "bit" => Class::Number,
        "date" | "datetime" | "timestamp" => Class::Temporal,
        "time" => Class::Time,
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" | "json" => Class::Text,
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => Class::Binary,
        "enum" | "set" => Class::Labels,
        _ => Class::Other,
    }
}

/// Why a column cannot feed a field with this transform, if it cannot.
fn incompatible(name: &str, field: &Field, c: &SourceColumn, t: &TableMapping) -> Option<String> {
    let reinterpreted = t.columns.get(&c.name).and_then(|o| o.reinterpret).is_some();
    let mut kind = class(&c.data_type);
    if kind == Class::Binary && reinterpreted {
        kind = Class::Text;
    }
    if kind == Class::Text
        && let Some(charset) = &c.charset
        && let Err(e) = Charset::from_mysql_name(charset)
    {
        return Some(format!("column {:?}: {e}", c.name));
    }
    let time_field = matches!(name, "sent_at" | "created_at" | "updated_at");
    let transform = match field.transform {
        Transform::Text if time_field => Transform::Datetime,
        other => other,
    };
    let (ok, needs) = match transform {
        Transform::Text => (
            !matches!(kind, Class::Binary | Class::Other),
            "a text, number, date or enum column (binary columns need columns.<c>.reinterpret)",
        ),
        Transform::Datetime => (
            matches!(kind, Class::Temporal | Class::Text),
            "a DATE, DATETIME, TIMESTAMP or text column",
        ),
        Transform::UnixSeconds | Transform::UnixMillis => (
            matches!(kind, Class::Int | Class::Number | Class::Text),
            "an integer column",
        ),
        Transform::Bool => (
            matches!(kind, Class::Int | Class::Number | Class::Text | Class::Labels),
            "a number, text or enum column",
        ),
        Transform::Present => (kind != Class::Other, "a supported column type"),
    };
    (!ok).then(|| {
        format!(
            "column {:?} is {}; transform {} needs {needs}",
            c.name,
            c.column_type,
            transform_name(transform)
        )
    })
}

fn transform_name(t: Transform) -> &'static str {
    match t {
        Transform::Text => "text",
        Transform::UnixSeconds => "unix_seconds",
        Transform::UnixMillis => "unix_millis",
        Transform::Datetime => "datetime",
        Transform::Bool => "bool",
        Transform::Present => "present",
    }
}

/// Closed-vocabulary fields against the values their columns hold: a value the map does not list and no default
/// catches would import as an invalid role or a wrong flag.
async fn value_issues(conn: &mut Conn, mapping: &Mapping, schema: &Schema) -> Result<Vec<MappingIssue>, SourceError> {
    let mut out = Vec::new();
    for t in &mapping.tables {
        for (name, field) in &t.fields {
            let closed = vocabulary(name).is_some() || FLAG_FIELDS.contains(&name.as_str());
            let (true, Some(column)) = (closed && field.transform != Transform::Present, &field.column) else {
                continue;
            };
            // A looked-up column's values are not checked: which of them rows reach depends on the join.
            let Some(c) = schema.column(&t.table, column) else {
                continue;
            };
            let values = distinct_values(conn, &t.table, c).await?;
            let at = format!("{}.fields.{name}", mapping.table_key(t));
            if let Some(issue) = uncovered(&at, name, field, t.kind, column, &values) {
                out.push(issue);
            }
        }
    }
    Ok(out)
}

/// The column's distinct values as text (`None` for NULL); ENUM labels come from the type itself.
async fn distinct_values(conn: &mut Conn, table: &str, c: &SourceColumn) -> Result<Vec<Option<String>>, SourceError> {
    if c.data_type == "enum" {
        let mut values: Vec<Option<String>> = source::labels(&c.column_type).into_iter().map(Some).collect();
        if c.nullable {
            values.push(None);
        }
        return Ok(values);
    }
    let sql = format!(
        "SELECT DISTINCT CAST(`{c}` AS CHAR) FROM `{t}` LIMIT {}",
        MAX_DISTINCT + 1,
        c = ident(&c.name),
        t = ident(table)
    );
    Ok(conn.query(sql).await?)
}

fn uncovered(
    at: &str,
    name: &str,
    field: &Field,
    kind: EntityKind,
    column: &str,
    values: &[Option<String>],
) -> Option<MappingIssue> {
    if values.len() > MAX_DISTINCT && field.default.is_none() {
        return Some(MappingIssue::new(
            at,
            format!("column {column:?} holds more than {MAX_DISTINCT} distinct values; declare a default"),
        ));
    }
    let required = name == "role" && kind == EntityKind::Message;
    let mut bad = Vec::new();
    for value in values {
        let raw = value.clone().map_or(Json::Null, Json::String);
        let mapped = if raw.is_null() { raw } else { field.apply_map(raw) };
        let result = if is_empty(&mapped) {
            field.default.clone().unwrap_or(Json::Null)
        } else {
            mapped
        };
        let wrong = if result.is_null() {
            required
        } else {
            !valid_value(name, &result)
        };
        if wrong {
            bad.push(value.as_ref().map_or("NULL".to_owned(), |v| format!("{v:?}")));
        }
    }
    if bad.is_empty() {
        return None;
    }
    let shown: Vec<&str> = bad.iter().take(10).map(String::as_str).collect();
    let expected = vocabulary(name).map_or("a boolean".to_owned(), |w| w.join("|"));
    Some(MappingIssue::new(
        at,
        format!(
            "column {column:?} holds {} that the map does not cover and no default catches (the field must be \
             {expected}); list them in `map` or declare a `default`",
            shown.join(", ")
        ),
    ))
}

/// ` (did you mean "x"?)` for the closest name within a small edit distance, else nothing.
fn did_you_mean<'a>(wanted: &str, names: impl Iterator<Item = &'a str>) -> String {
    let best = names
        .map(|n| (distance(&wanted.to_lowercase(), &n.to_lowercase()), n))
        .filter(|(d, _)| *d <= (wanted.chars().count() / 3).max(1))
        .min_by_key(|(d, _)| *d);
    best.map_or_else(String::new, |(_, n)| format!(" (did you mean {n:?}?)"))
}

fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != *cb);
            current.push(substitute.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str, data_type: &str, nullable: bool) -> SourceColumn {
        SourceColumn {
            name: name.to_owned(),
            data_type: data_type.to_owned(),
            column_type: data_type.to_owned(),
            nullable,
            charset: Some("utf8mb3".to_owned()),
        }
    }

    #[test]
    fn schema_problems_are_named_with_their_keys_and_a_suggestion() {
        let mapping = Mapping::parse(
            r#"
name = "t"
channel = "web"
[[tables]]
table = "conv"
kind = "conversation"
fields.customer_id = { template = "c-{cust}" }
fields.created_at = { column = "id" }
[[tables]]
table = "msg"
kind = "message"
conversation_table = "conv"
fields.conversation = { column = "cid" }
fields.role = { constant = "customer" }
fields.sender_id = { column = "cid" }
fields.text = { column = "bodyy" }
fields.sent_at = { column = "created", transform = "datetime" }
"#,
        )
        .unwrap();
        let mut schema = Schema {
            database: "db".to_owned(),
            ..Schema::default()
        };
        schema.tables.insert(
            "conv".to_owned(),
            vec![column("id", "int", false), column("cust", "int", true)],
        );
        schema.tables.insert(
            "msg".to_owned(),
            vec![
                column("id", "int", false),
                column("cid", "int", false),
                column("body", "text", false),
                column("created", "datetime", false),
            ],
        );
        let issues: Vec<String> = schema_issues(&mapping, &schema)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            issues,
            [
                "tables.conv.fields.created_at: column \"id\" is int; transform datetime needs a DATE, DATETIME, \
                 TIMESTAMP or text column",
                "tables.conv.fields.customer_id: template placeholder {cust}: column \"cust\" is nullable; declare \
                 a fallback, {cust|…}, or a field default",
                "tables.msg.fields.text: column \"bodyy\" does not exist in msg (did you mean \"body\"?)",
            ]
        );
    }

    #[test]
    fn lookups_are_checked_against_both_tables() {
        let mapping = Mapping::parse(
            r#"
name = "t"
channel = "web"
[[tables]]
table = "thread"
kind = "conversation"
lookups.ticket = { table = "ticket", key = "ticket_id", from = "object_id", when = { object_typ = "T" } }
lookups.team = { table = "teams", key = "id", from = "object_id" }
fields.customer_id = { column = "object_id" }
fields.created_at = { column = "created", transform = "datetime" }
fields.department = { column = "ticket.dept" }
fields.assigned_agent = { template = "agent-{ticket.staff_id}" }
"#,
        )
        .unwrap();
        let mut schema = Schema {
            database: "db".to_owned(),
            ..Schema::default()
        };
        schema.tables.insert(
            "thread".to_owned(),
            vec![
                column("id", "int", false),
                column("object_id", "int", false),
                column("object_type", "char", false),
                column("created", "datetime", false),
            ],
        );
        schema.tables.insert(
            "ticket".to_owned(),
            vec![
                column("ticket_id", "int", false),
                column("dept_id", "int", false),
                column("staff_id", "int", false),
            ],
        );
        let issues: Vec<String> = schema_issues(&mapping, &schema)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            issues,
            [
                "tables.thread.lookups.team.table: table \"teams\" does not exist in database db",
                "tables.thread.lookups.ticket: column \"object_typ\" does not exist in thread (did you mean \"object_type\"?)",
                "tables.thread.fields.assigned_agent: template placeholder {ticket.staff_id}: column \"ticket.staff_id\" \
                 is nullable; declare a fallback, {ticket.staff_id|…}, or a field default",
                "tables.thread.fields.department: column \"dept\" does not exist in ticket (lookup ticket)",
            ]
        );
    }

    #[test]
    fn a_missing_table_and_a_text_key_are_named() {
        let mapping = Mapping::parse(
            r#"
name = "t"
channel = "web"
[[tables]]
table = "ost_tread"
kind = "customer"
fields.external_id = { column = "id" }
[[tables]]
table = "staff"
kind = "agent"
key = "username"
fields.external_id = { column = "username" }
columns.signatur = { reinterpret = "gbk" }
"#,
        )
        .unwrap();
        let mut schema = Schema {
            database: "db".to_owned(),
            ..Schema::default()
        };
        schema
            .tables
            .insert("ost_thread".to_owned(), vec![column("id", "int", false)]);
        schema.tables.insert(
            "staff".to_owned(),
            vec![column("username", "varchar", false), column("signature", "text", false)],
        );
        let issues: Vec<String> = schema_issues(&mapping, &schema)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            issues,
            [
                "tables.ost_tread: table \"ost_tread\" does not exist in database db (did you mean \"ost_thread\"?)",
                "tables.staff.key: key column \"username\" is varchar; the key must be an integer column",
                "tables.staff.columns.signatur: column \"signatur\" does not exist in staff (did you mean \"signature\"?)",
            ]
        );
    }

    #[test]
    fn closed_vocabularies_must_cover_the_values_present() {
        let field: Field = toml::from_str(
            r#"column = "type"
map = { M = "customer", R = "agent" }"#,
        )
        .unwrap();
        let values = [Some("M".to_owned()), Some("N".to_owned()), None];
        let issue = uncovered("k", "role", &field, EntityKind::Message, "type", &values).unwrap();
        assert!(issue.message.contains("\"N\", NULL"), "{issue}");
        let field: Field = toml::from_str(
            r#"column = "type"
map = { N = true }
default = false"#,
        )
        .unwrap();
        assert!(uncovered("k", "internal", &field, EntityKind::Message, "type", &values).is_none());
    }
}
