//! Lookups: a row of another source table, found by a column of the mapped row, whose columns fields may read as
//! `<alias>.<column>`.
//!
//! osTicket keeps a thread's department on its ticket (`ost_thread.object_id` → `ost_ticket.ticket_id`), not on
//! the thread the conversation is made of; a lookup lets the preset label the conversation with it. One level
//! only: a lookup's `from` is a column of the mapped table, so a change to the looked-up table finds the rows
//! that read it with one query (`dependents`), which is what keeps a transferred ticket's label current while
//! following.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value as Json;

use super::value::{Row, is_empty, text_of};

/// One lookup of a table mapping.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lookup {
    /// The looked-up table.
    pub table: String,
    /// Its column matched against `from` (usually its primary key).
    pub key: String,
    /// The mapped table's column holding the looked-up key.
    pub from: String,
    /// Only rows whose columns hold these values look up (osTicket: `object_type = "T"`, since a task's thread
    /// names a task, not a ticket, by the same column).
    #[serde(default)]
    pub when: BTreeMap<String, Json>,
}

impl Lookup {
    /// The key to look up for `row`, `None` when the row does not qualify or has no key.
    pub fn key_of(&self, row: &Row) -> Option<Json> {
        let qualifies = self
            .when
            .iter()
            .all(|(column, wanted)| row.get(column).is_some_and(|v| text_of(v) == text_of(wanted)));
        let key = row.get(&self.from)?;
        (qualifies && !is_empty(key)).then(|| key.clone())
    }

    /// Every column of the mapped table the lookup reads (`from` and the `when` columns).
    pub fn owner_columns(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.from.as_str()).chain(self.when.keys().map(String::as_str))
    }
}

/// Splits a field's column reference into `(alias, column)` when it reads a lookup.
pub fn split(column: &str) -> Option<(&str, &str)> {
    column.split_once('.')
}

/// Adds the looked-up row's columns to `row` as `<alias>.<column>`; without one they stay absent (read as NULL).
pub fn merge(row: &mut Row, alias: &str, found: Option<&Row>) {
    for (column, value) in found.into_iter().flatten() {
        row.insert(format!("{alias}.{column}"), value.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(json: &str) -> Row {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn only_qualifying_rows_with_a_key_look_up() {
        let lookup: Lookup = toml::from_str(
            r#"table = "ost_ticket"
key = "ticket_id"
from = "object_id"
when = { object_type = "T" }"#,
        )
        .unwrap();
        assert_eq!(
            lookup.key_of(&row(r#"{"object_id": 7, "object_type": "T"}"#)),
            Some(Json::from(7))
        );
        assert_eq!(lookup.key_of(&row(r#"{"object_id": 7, "object_type": "A"}"#)), None);
        assert_eq!(lookup.key_of(&row(r#"{"object_id": null, "object_type": "T"}"#)), None);
        let mut r = row(r#"{"object_id": 7}"#);
        merge(&mut r, "ticket", Some(&row(r#"{"dept_id": 2}"#)));
        assert_eq!(r.get("ticket.dept_id"), Some(&Json::from(2)));
    }
}
