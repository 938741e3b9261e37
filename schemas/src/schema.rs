//! JSON Schema export of the canonical model. The checked-in files under `schemas/v1/` are generated from here.

use schemars::{JsonSchema, generate::SchemaSettings};

use crate::{Conversation, Message, NewMessage, SCHEMA_VERSION};

/// The schema documents of version `v1`: (file name, pretty JSON text ending in a newline).
pub fn documents() -> Vec<(&'static str, String)> {
    vec![
        ("message.schema.json", render::<Message>("message")),
        ("conversation.schema.json", render::<Conversation>("conversation")),
        ("new_message.schema.json", render::<NewMessage>("new_message")),
    ]
}

fn render<T: JsonSchema>(name: &str) -> String {
    let generator = SchemaSettings::draft2020_12().into_generator();
    let mut schema = generator.into_root_schema_for::<T>();
    schema.insert(
        "$id".to_owned(),
        format!("urn:protofuse:schema:{SCHEMA_VERSION}:{name}").into(),
    );
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema always serializes");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Fails when `schemas/v1/` no longer matches the types. Regenerate with `UPDATE_SCHEMAS=1 cargo test -p
    /// protofuse-model`.
    #[test]
    fn checked_in_schemas_are_current() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(super::SCHEMA_VERSION);
        let update = std::env::var_os("UPDATE_SCHEMAS").is_some();
        for (file, text) in super::documents() {
            let path = dir.join(file);
            if update {
                std::fs::write(&path, &text).unwrap();
                continue;
            }
            let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                on_disk == text,
                "{} is stale: run `UPDATE_SCHEMAS=1 cargo test -p protofuse-model` and commit the result",
                path.display()
            );
        }
    }
}
