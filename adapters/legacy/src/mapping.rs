//! Field mapping: how one canonical field is filled from a legacy request, and the small transforms between.
//!
//! A [`FieldSpec`] takes its value from a selector (`from`), a constant (`value`) or a concatenation template
//! (`concat`, with `{selector}` references), then applies a default, a transform and a value map, in that order.
//! The set of canonical targets is closed ([`TARGETS`]) so a typo in configuration is caught at start-up.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, NaiveDateTime, Offset, TimeZone, Utc};
use serde::Deserialize;
use serde_json::Value;

use crate::body::Document;

/// Canonical fields a mapping may fill, as paths into the native message form, plus `metadata.<key>`.
pub const TARGETS: &[&str] = &[
    "conversation_id",
    "channel",
    "account",
    "direction",
    "external_id",
    "idempotency_key",
    "sent_at",
    "sender.role",
    "sender.external_id",
    "sender.display_name",
    "content.type",
    "content.text",
    "content.url",
    "content.media_id",
    "content.mime_type",
    "content.title",
    "content.description",
    "content.name",
    "content.size",
    "content.latitude",
    "content.longitude",
    "content.label",
    "content.format",
    "content.recognition",
    "content.kind",
    "content.key",
];

/// Targets whose JSON form is a number.
const NUMERIC_TARGETS: &[&str] = &["content.size", "content.latitude", "content.longitude"];

/// Whether `target` is a field a mapping may fill.
pub fn is_target(target: &str) -> bool {
    TARGETS.contains(&target) || target.strip_prefix("metadata.").is_some_and(|k| !k.is_empty())
}

/// A conversion applied to a source value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transform {
    /// Seconds since the Unix epoch → RFC 3339.
    UnixSeconds,
    /// Milliseconds since the Unix epoch → RFC 3339.
    UnixMillis,
    /// A formatted local time (`format`, chrono syntax) at `utc_offset` → RFC 3339.
    Datetime,
    /// Leading and trailing white space removed.
    Trim,
    /// Lower-cased.
    Lowercase,
}

/// How one canonical field is filled.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    /// Selector of the source value: a JSON pointer (`/data/userId`), a form or query key, an XML path (`Msg/From`).
    pub from: Option<String>,
    /// A constant.
    pub value: Option<String>,
    /// Text with `{selector}` references, e.g. `"{first_name} {last_name}"`.
    pub concat: Option<String>,
    /// Used when the source is absent or empty.
    pub default: Option<String>,
    /// Conversion applied after the default.
    pub transform: Option<Transform>,
    /// For `datetime`: the chrono format, e.g. `%Y-%m-%d %H:%M:%S`.
    pub format: Option<String>,
    /// For `datetime`: the source's UTC offset, e.g. `+08:00` (default `+00:00`).
    pub utc_offset: Option<String>,
    /// Replaces the value by its entry here (e.g. `{ "1" = "customer", "2" = "agent" }`); a value with no entry
    /// is an error.
    pub map: Option<BTreeMap<String, String>>,
    /// Absent after `default` is an error (default `false`: the field is left out).
    #[serde(default)]
    pub required: bool,
}

/// Why a request could not be mapped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    /// A required field is absent.
    #[error("{target}: required field {source_name} is missing")]
    Missing {
        /// The canonical field.
        target: String,
        /// Where it was looked for.
        source_name: String,
    },
    /// A value does not convert.
    #[error("{target}: {reason}")]
    Convert {
        /// The canonical field.
        target: String,
        /// What failed.
        reason: String,
    },
}

impl FieldSpec {
    /// Selectors this spec reads, so the rest of the request can be kept in `Source::raw`.
    pub fn selectors(&self) -> Vec<String> {
        let mut out: Vec<String> = self.from.iter().cloned().collect();
        if let Some(concat) = &self.concat {
            out.extend(concat_refs(concat));
        }
        out
    }

    /// The canonical JSON value for `target`, or `None` when the field is absent and optional.
    pub fn apply(&self, target: &str, doc: &Document) -> Result<Option<Value>, MapError> {
        let convert = |reason: String| MapError::Convert {
            target: target.to_owned(),
            reason,
        };
        let raw = if let Some(constant) = &self.value {
            Some(constant.clone())
        } else if let Some(concat) = &self.concat {
            Some(render_concat(concat, doc))
        } else {
            self.from.as_deref().and_then(|sel| doc.get(sel)).map(|v| match v {
                Value::String(s) => s,
                other => other.to_string(),
            })
        };
        let Some(text) = raw.filter(|t| !t.is_empty()).or_else(|| self.default.clone()) else {
            if self.required {
                let source_name = self.from.clone().unwrap_or_else(|| "(concat)".to_owned());
                return Err(MapError::Missing {
                    target: target.to_owned(),
                    source_name,
                });
            }
            return Ok(None);
        };
        let text = match self.transform {
            None => text,
            Some(t) => self.transform(t, &text).map_err(convert)?,
        };
        let text = match &self.map {
            None => text,
            Some(map) => map
                .get(&text)
                .cloned()
                .ok_or_else(|| convert(format!("no mapping for value {text:?}")))?,
        };
        if NUMERIC_TARGETS.contains(&target) {
            let number: f64 = text
                .trim()
                .parse()
                .map_err(|_| convert(format!("{text:?} is not a number")))?;
            return Ok(Some(serde_json::json!(number)));
        }
        Ok(Some(Value::String(text)))
    }

    fn transform(&self, transform: Transform, text: &str) -> Result<String, String> {
        let epoch = |scale: i64| -> Result<String, String> {
            let n: i64 = text
                .trim()
                .parse()
                .map_err(|_| format!("{text:?} is not an integer timestamp"))?;
            let time = match scale {
                1 => DateTime::<Utc>::from_timestamp(n, 0),
                _ => DateTime::<Utc>::from_timestamp_millis(n),
            };
            time.map(|t| t.to_rfc3339())
                .ok_or_else(|| format!("timestamp {n} out of range"))
        };
        match transform {
            Transform::UnixSeconds => epoch(1),
            Transform::UnixMillis => epoch(1000),
            Transform::Trim => Ok(text.trim().to_owned()),
            Transform::Lowercase => Ok(text.to_lowercase()),
            Transform::Datetime => {
                let format = self.format.as_deref().unwrap_or("%Y-%m-%d %H:%M:%S");
                let offset = parse_offset(self.utc_offset.as_deref().unwrap_or("+00:00"))?;
                let naive = NaiveDateTime::parse_from_str(text.trim(), format)
                    .map_err(|e| format!("{text:?} does not match {format:?}: {e}"))?;
                let local = offset
                    .from_local_datetime(&naive)
                    .single()
                    .ok_or("ambiguous local time")?;
                Ok(local.with_timezone(&Utc).to_rfc3339())
            }
        }
    }
}

/// Parses `+08:00` / `-05:30` / `Z`.
pub fn parse_offset(text: &str) -> Result<FixedOffset, String> {
    if text == "Z" {
        return Ok(Utc.fix());
    }
    let parsed = DateTime::parse_from_rfc3339(&format!("2000-01-01T00:00:00{text}"))
        .map_err(|_| format!("utc_offset {text:?} is not like +08:00"))?;
    Ok(*parsed.offset())
}

fn concat_refs(template: &str) -> Vec<String> {
    template
        .split('{')
        .skip(1)
        .filter_map(|piece| piece.split_once('}').map(|(name, _)| name.to_owned()))
        .collect()
}

fn render_concat(template: &str, doc: &Document) -> String {
    let mut out = String::new();
    let mut pieces = template.split('{');
    out.push_str(pieces.next().unwrap_or_default());
    for piece in pieces {
        match piece.split_once('}') {
            Some((name, rest)) => {
                match doc.get(name) {
                    Some(Value::String(s)) => out.push_str(&s),
                    Some(other) => out.push_str(&other.to_string()),
                    None => {}
                }
                out.push_str(rest);
            }
            None => out.push_str(piece),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Document {
        Document::Flat(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
    }

    #[test]
    fn transforms_and_maps() {
        let doc = form(&[
            ("ts", "1700000000"),
            ("role", "2"),
            ("at", "2024-05-01 08:00:00"),
            ("a", "x"),
            ("b", "y"),
        ]);
        let ts = FieldSpec {
            from: Some("ts".into()),
            transform: Some(Transform::UnixSeconds),
            ..Default::default()
        };
        assert_eq!(
            ts.apply("sent_at", &doc).unwrap(),
            Some(Value::String("2023-11-14T22:13:20+00:00".into()))
        );
        let role = FieldSpec {
            from: Some("role".into()),
            map: Some([("1".into(), "customer".into()), ("2".into(), "agent".into())].into()),
            ..Default::default()
        };
        assert_eq!(
            role.apply("sender.role", &doc).unwrap(),
            Some(Value::String("agent".into()))
        );
        let at = FieldSpec {
            from: Some("at".into()),
            transform: Some(Transform::Datetime),
            utc_offset: Some("+08:00".into()),
            ..Default::default()
        };
        assert_eq!(
            at.apply("sent_at", &doc).unwrap(),
            Some(Value::String("2024-05-01T00:00:00+00:00".into()))
        );
        let both = FieldSpec {
            concat: Some("{a}-{b}".into()),
            ..Default::default()
        };
        assert_eq!(
            both.apply("external_id", &doc).unwrap(),
            Some(Value::String("x-y".into()))
        );
        assert_eq!(both.selectors(), ["a", "b"]);
    }

    #[test]
    fn defaults_requirements_and_errors() {
        let doc = form(&[("role", "9"), ("lat", "north")]);
        let missing = FieldSpec {
            from: Some("uid".into()),
            required: true,
            ..Default::default()
        };
        assert!(matches!(
            missing.apply("sender.external_id", &doc),
            Err(MapError::Missing { .. })
        ));
        let defaulted = FieldSpec {
            from: Some("uid".into()),
            default: Some("anon".into()),
            ..Default::default()
        };
        assert_eq!(
            defaulted.apply("sender.external_id", &doc).unwrap(),
            Some(Value::String("anon".into()))
        );
        let unmapped = FieldSpec {
            from: Some("role".into()),
            map: Some(BTreeMap::new()),
            ..Default::default()
        };
        assert!(matches!(
            unmapped.apply("sender.role", &doc),
            Err(MapError::Convert { .. })
        ));
        let lat = FieldSpec {
            from: Some("lat".into()),
            ..Default::default()
        };
        assert!(lat.apply("content.latitude", &doc).is_err());
        assert!(is_target("metadata.order_no") && !is_target("content.txt") && !is_target("metadata."));
    }
}
