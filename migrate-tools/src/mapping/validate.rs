//! The offline checks of a mapping: everything that can be known without the source. Every problem is reported,
//! each with its key, so one `check-mapping` run shows them all.

use serde::Serialize;
use serde_json::Value as Json;

use super::lookup::split;
use super::table::{EntityKind, Field, Mapping, TableMapping};
use super::template::Template;
use super::value::text_of;
use chrono::FixedOffset;

/// One problem with a mapping, keyed by where it is (`tables.ost_thread_entry.fields.text`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MappingIssue {
    /// Where: `name`, `tables.<table>`, `tables.<table>.fields.<field>`, `tables.<table>.columns.<column>`.
    pub key: String,
    /// What is wrong and, where known, the way out.
    pub message: String,
}

impl MappingIssue {
    /// An issue at `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for MappingIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

pub(super) fn list(issues: &[MappingIssue]) -> String {
    let lines: Vec<String> = issues.iter().map(|i| format!("  {i}")).collect();
    lines.join("\n")
}

/// Fields whose value identifies a row's customer, conversation or party: a constant `default` would merge every
/// row whose value is missing into one (all unknown customers become one customer).
pub const KEY_FIELDS: &[&str] = &["customer_id", "conversation", "conversation_key", "external_id"];

/// Fields read as booleans.
pub const FLAG_FIELDS: &[&str] = &["internal", "skip"];

/// The values a field may take, for fields with a closed vocabulary.
pub fn vocabulary(field: &str) -> Option<&'static [&'static str]> {
    match field {
        "role" => Some(&["customer", "agent", "bot", "system"]),
        "status" => Some(&["bot", "queued", "assigned", "closed"]),
        "content_type" => Some(&["text", "image", "file"]),
        _ => None,
    }
}

/// Whether `value` is a value `field` can take (always, for open fields such as ids and text).
pub fn valid_value(field: &str, value: &Json) -> bool {
    if FLAG_FIELDS.contains(&field) {
        return match value {
            Json::Bool(_) | Json::Number(_) => true,
            Json::String(s) => matches!(
                s.to_ascii_lowercase().as_str(),
                "0" | "1" | "y" | "n" | "yes" | "no" | "true" | "false"
            ),
            _ => false,
        };
    }
    vocabulary(field).is_none_or(|words| words.contains(&text_of(value).as_str()))
}

impl Mapping {
    /// The key prefix of a table mapping: `tables.<table>`, or `tables.<table>[<kind>]` when the table is mapped
    /// more than once.
    pub fn table_key(&self, t: &TableMapping) -> String {
        if self.for_table(&t.table).count() > 1 {
            format!("tables.{}[{}]", t.table, t.kind.as_str())
        } else {
            format!("tables.{}", t.table)
        }
    }

    /// Every problem that can be found without the source.
    pub fn issues(&self) -> Vec<MappingIssue> {
        let mut out = Vec::new();
        if self.name.is_empty() || self.name.contains(':') {
            out.push(MappingIssue::new("name", "must be non-empty and contain no ':'"));
        }
        if self.source_timezone.parse::<FixedOffset>().is_err() {
            out.push(MappingIssue::new(
                "source_timezone",
                format!("{:?} is not an offset like +08:00", self.source_timezone),
            ));
        }
        if self.tables.is_empty() {
            out.push(MappingIssue::new("tables", "no [[tables]]"));
        }
        for t in &self.tables {
            self.table_issues(t, &mut out);
        }
        out
    }

    fn table_issues(&self, t: &TableMapping, out: &mut Vec<MappingIssue>) {
        let key = self.table_key(t);
        for name in t.kind.required() {
            if !t.fields.contains_key(*name) {
                out.push(MappingIssue::new(
                    format!("{key}.fields.{name}"),
                    format!("field `{name}` is required for a {} table", t.kind.as_str()),
                ));
            }
        }
        for (name, field) in &t.fields {
            let at = format!("{key}.fields.{name}");
            if t.kind.allowed().contains(&name.as_str()) {
                field_issues(&at, name, field, out);
            } else {
                out.push(MappingIssue::new(
                    at,
                    format!(
                        "unknown field `{name}` for a {} table; allowed: {}",
                        t.kind.as_str(),
                        t.kind.allowed().join(", ")
                    ),
                ));
            }
        }
        lookup_issues(&key, t, out);
        if t.kind == EntityKind::Message {
            match &t.conversation_table {
                None => out.push(MappingIssue::new(
                    format!("{key}.conversation_table"),
                    "messages need `conversation_table`",
                )),
                Some(conv) if self.conversation_table(conv).is_none() => out.push(MappingIssue::new(
                    format!("{key}.conversation_table"),
                    format!("{conv:?} is not mapped as a conversation"),
                )),
                Some(_) => {}
            }
        }
    }
}

/// Lookup aliases are plain names, and every `<alias>.<column>` a field reads names a declared lookup.
fn lookup_issues(key: &str, t: &TableMapping, out: &mut Vec<MappingIssue>) {
    for (alias, lookup) in &t.lookups {
        if alias.is_empty() || alias.contains('.') {
            out.push(MappingIssue::new(
                format!("{key}.lookups.{alias}"),
                "a lookup's name must be non-empty and contain no '.'",
            ));
        }
        if split(&lookup.from).is_some() {
            out.push(MappingIssue::new(
                format!("{key}.lookups.{alias}.from"),
                format!(
                    "{:?}: a lookup reads a column of {} itself (lookups do not chain)",
                    lookup.from, t.table
                ),
            ));
        }
    }
    for (name, field) in &t.fields {
        let placeholders = field.template.as_deref().and_then(|t| Template::parse(t).ok());
        let columns = field
            .column
            .iter()
            .cloned()
            .chain(placeholders.iter().flat_map(|p| p.variables()).map(|v| v.column));
        for column in columns {
            if let Some((alias, _)) = split(&column)
                && !t.lookups.contains_key(alias)
            {
                out.push(MappingIssue::new(
                    format!("{key}.fields.{name}"),
                    format!("{column:?} reads lookup {alias:?}, which `lookups` does not declare"),
                ));
            }
        }
    }
}

fn field_issues(at: &str, name: &str, field: &Field, out: &mut Vec<MappingIssue>) {
    let sources = [
        field.column.is_some(),
        field.constant.is_some(),
        field.template.is_some(),
    ];
    if sources.iter().filter(|s| **s).count() != 1 {
        out.push(MappingIssue::new(
            at,
            "give exactly one of `column`, `constant`, `template`",
        ));
    }
    if let Some(template) = &field.template
        && let Err(reason) = Template::parse(template)
    {
        out.push(MappingIssue::new(at, format!("template: {reason}")));
    }
    let declared = field
        .map
        .iter()
        .map(|(k, v)| (format!("map value for {k:?}"), v))
        .chain(field.default.iter().map(|v| ("default".to_owned(), v)))
        .chain(field.constant.iter().map(|v| ("constant".to_owned(), v)));
    for (what, value) in declared {
        let empty = matches!(value, Json::String(s) if s.is_empty());
        if !empty && !valid_value(name, value) {
            let expected = vocabulary(name).map_or("a boolean".to_owned(), |w| w.join("|"));
            out.push(MappingIssue::new(at, format!("{what} {value} is not {expected}")));
        }
    }
    if KEY_FIELDS.contains(&name)
        && field.constant.is_none()
        && let Some(default) = &field.default
    {
        out.push(MappingIssue::new(
            at,
            format!(
                "a constant default ({default}) on a key field merges every row whose value is missing into one; \
                 derive a per-row key instead, e.g. template = \"{{column|anonymous-{{id}}}}\""
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::super::Mapping;

    #[test]
    fn every_problem_is_listed_with_its_key() {
        let text = r#"
name = "a:b"
channel = "web"
[[tables]]
table = "conv"
kind = "conversation"
fields.customer_id = { column = "cid", default = "unknown" }
fields.created_at = { column = "created", transform = "datetime" }
fields.status = { column = "state", map = { o = "open" } }
[[tables]]
table = "msg"
kind = "message"
conversation_table = "conv"
fields.conversation = { column = "cid" }
fields.role = { column = "type", map = { M = "customer", X = "boss" } }
fields.sent_at = { column = "ts" }
fields.sender_name = { template = "{first} {last" }
"#;
        let Err(super::super::MappingError::Invalid(issues)) = Mapping::parse(text) else {
            panic!("accepted");
        };
        let keys: Vec<&str> = issues.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "name",
                "tables.conv.fields.customer_id",
                "tables.conv.fields.status",
                "tables.msg.fields.role",
                "tables.msg.fields.sender_name",
            ],
            "{issues:#?}"
        );
    }
}
