//! Source values as the mapping sees them: a decoded row, and what counts as empty and as text.

use std::collections::BTreeMap;

use serde_json::Value as Json;

/// A source row after decoding: column name to normalized value.
pub type Row = BTreeMap<String, Json>;

/// NULL, empty text or a zero date: what `default` and template fallbacks stand in for.
pub fn is_empty(v: &Json) -> bool {
    match v {
        Json::Null => true,
        Json::String(s) => s.is_empty() || s.starts_with("0000-00-00"),
        _ => false,
    }
}

/// The text of a value: strings as is, everything else in JSON notation.
pub fn text_of(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}
