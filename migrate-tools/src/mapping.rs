//! The mapping file: which source tables hold conversations, messages, customers and agents, and how their
//! columns become canonical fields. Parsed and checked up front, so a bad mapping fails before any I/O.
//!
//! Files: `table.rs` the shape and field evaluation, `lookup.rs` rows of other tables a field reads, `template.rs` placeholders and fallbacks, `value.rs` source
//! values, `validate.rs` the rules checked without a database; this file reads, parses and validates.

use std::path::Path;

mod lookup;
mod table;
mod template;
mod validate;
mod value;

pub use lookup::{Lookup, merge as merge_lookup, split as split_lookup};
pub use table::{ColumnOptions, EntityKind, Field, FieldError, Mapping, TableMapping, Transform};
pub use template::{Template, Variable, sql_string};
pub use validate::{FLAG_FIELDS, KEY_FIELDS, MappingIssue, valid_value, vocabulary};
pub use value::{Row, is_empty, text_of};

/// A mapping that cannot work, found before touching any database.
#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    /// The file cannot be read.
    #[error("cannot read mapping {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML for a mapping.
    #[error("mapping {path} is invalid: {source}")]
    Parse {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: toml::de::Error,
    },
    /// Semantic problems, each naming its key (`tables.<table>.fields.<field>`).
    #[error("mapping has {} problem(s):\n{}", .0.len(), validate::list(.0))]
    Invalid(Vec<MappingIssue>),
}

impl Mapping {
    /// Reads and validates a mapping file.
    pub fn load(path: &Path) -> Result<Self, MappingError> {
        let text = std::fs::read_to_string(path).map_err(|source| MappingError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text).map_err(|e| match e {
            MappingError::Parse { source, .. } => MappingError::Parse {
                path: path.display().to_string(),
                source,
            },
            other => other,
        })
    }

    /// Parses and validates mapping text.
    pub fn parse(text: &str) -> Result<Self, MappingError> {
        let mut mapping: Self = toml::from_str(text).map_err(|source| MappingError::Parse {
            path: "(text)".to_owned(),
            source,
        })?;
        let issues = mapping.issues();
        if !issues.is_empty() {
            return Err(MappingError::Invalid(issues));
        }
        for field in mapping.tables.iter_mut().flat_map(|t| t.fields.values_mut()) {
            field.parsed = field.template.as_deref().and_then(|t| Template::parse(t).ok());
        }
        Ok(mapping)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = r#"
name = "t"
channel = "web"
source_timezone = "+08:00"
[[tables]]
table = "conv"
kind = "conversation"
fields.customer_id = { template = "v-{uid}" }
fields.created_at = { column = "created", transform = "datetime" }
[[tables]]
table = "msg"
kind = "message"
conversation_table = "conv"
fields.conversation = { column = "cid" }
fields.role = { column = "type", map = { M = "customer", R = "agent" }, default = "system" }
fields.sender_id = { column = "uid" }
fields.sent_at = { column = "ts", transform = "unix_seconds" }
"#;

    #[test]
    fn fields_evaluate() {
        let m = Mapping::parse(SMALL).unwrap();
        let conv = &m.tables[0];
        let row: Row = serde_json::from_str(r#"{"uid": 7, "created": "2024-01-01 08:00:00", "type": "X"}"#).unwrap();
        assert_eq!(conv.text("customer_id", &row).unwrap(), "v-7");
        let t = conv.time("created_at", &row, m.zone()).unwrap().unwrap();
        assert_eq!(t.to_rfc3339(), "2024-01-01T00:00:00+00:00");
        assert_eq!(m.tables[1].text("role", &row).unwrap(), "system");
    }

    #[test]
    fn bad_mappings_fail_with_the_field_named() {
        let err = Mapping::parse(&SMALL.replace("fields.sender_id", "fields.sender")).unwrap_err();
        assert!(err.to_string().contains("sender"), "{err}");
        let err =
            Mapping::parse(&SMALL.replace("conversation_table = \"conv\"", "conversation_table = \"x\"")).unwrap_err();
        assert!(err.to_string().contains("not mapped"), "{err}");
    }
}
