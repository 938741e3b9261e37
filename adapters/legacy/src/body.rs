//! Parsing a legacy request into a [`Document`] that field selectors read from: a JSON value (selected by JSON
//! pointer) or a flat map of names to text (form and query keys, XML element paths such as `Msg/From`).
//!
//! Bytes are decoded with the adapter's charset before anything is interpreted; XML with a DOCTYPE or entity
//! declarations is refused (no external entities, no expansion bombs).

use std::collections::BTreeMap;

use encoding_rs::Encoding;
use percent_encoding::percent_decode;
use quick_xml::escape::resolve_xml_entity;
use quick_xml::events::Event;
use serde::Deserialize;
use serde_json::Value;

use crate::charset::{self, CharsetError};

/// The syntax of a request body (or query string).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// A JSON object.
    Json,
    /// `application/x-www-form-urlencoded`.
    Form,
    /// An XML document; fields are element paths below the root.
    Xml,
    /// No body: the URL's query string.
    Query,
}

/// Why a body could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// The bytes are not text in the configured charset.
    #[error(transparent)]
    Charset(#[from] CharsetError),
    /// The text does not parse in the format.
    #[error("malformed {format}: {reason}")]
    Syntax {
        /// `JSON`, `XML`, ...
        format: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The XML declares a DOCTYPE or refers to an entity only a DTD could define.
    #[error("XML with a DOCTYPE or undeclared entities is not accepted")]
    Doctype,
    /// Nesting or element count beyond the limits.
    #[error("XML nests deeper than {MAX_DEPTH} or has more than {MAX_ELEMENTS} elements")]
    TooComplex,
}

const MAX_DEPTH: usize = 16;
const MAX_ELEMENTS: usize = 2000;

/// A parsed request.
#[derive(Debug, Clone, PartialEq)]
pub enum Document {
    /// A JSON body.
    Json(Value),
    /// Form fields, query parameters or XML element paths, decoded to text.
    Flat(BTreeMap<String, String>),
}

impl Document {
    /// Parses `bytes` (the body, or the query string for [`Format::Query`]).
    pub fn parse(format: Format, encoding: &'static Encoding, bytes: &[u8]) -> Result<Self, BodyError> {
        match format {
            Format::Json => {
                let text = charset::decode(encoding, bytes)?;
                let value: Value = serde_json::from_str(&text).map_err(|e| BodyError::Syntax {
                    format: "JSON",
                    reason: e.to_string(),
                })?;
                if !value.is_object() {
                    return Err(BodyError::Syntax {
                        format: "JSON",
                        reason: "expected an object".to_owned(),
                    });
                }
                Ok(Self::Json(value))
            }
            Format::Form | Format::Query => parse_form(encoding, bytes).map(Self::Flat),
            Format::Xml => parse_xml(&charset::decode(encoding, bytes)?).map(Self::Flat),
        }
    }

    /// The value a selector names: a JSON pointer for JSON bodies, a key or element path otherwise.
    pub fn get(&self, selector: &str) -> Option<Value> {
        match self {
            Self::Json(value) => value.pointer(selector).filter(|v| !v.is_null()).cloned(),
            Self::Flat(map) => map.get(selector).map(|s| Value::String(s.clone())),
        }
    }

    /// Every field with its selector, for keeping what no mapping used.
    pub fn leaves(&self) -> Vec<(String, Value)> {
        match self {
            Self::Json(value) => {
                let mut out = Vec::new();
                collect_leaves(value, &mut String::new(), &mut out);
                out
            }
            Self::Flat(map) => map.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect(),
        }
    }
}

fn collect_leaves(value: &Value, path: &mut String, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let len = path.len();
                path.push('/');
                path.push_str(&key.replace('~', "~0").replace('/', "~1"));
                collect_leaves(child, path, out);
                path.truncate(len);
            }
        }
        leaf => out.push((path.clone(), leaf.clone())),
    }
}

/// Form decoding over raw bytes: `+` and `%XX` are undone first, then the charset applies, which is how PHP and
/// Java servlet containers decode GBK forms.
fn parse_form(encoding: &'static Encoding, bytes: &[u8]) -> Result<BTreeMap<String, String>, BodyError> {
    let mut map = BTreeMap::new();
    for pair in bytes.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        let mut parts = pair.splitn(2, |b| *b == b'=');
        let key = unescape(encoding, parts.next().unwrap_or_default())?;
        let value = unescape(encoding, parts.next().unwrap_or_default())?;
        map.insert(key, value);
    }
    Ok(map)
}

fn unescape(encoding: &'static Encoding, raw: &[u8]) -> Result<String, BodyError> {
    let plus: Vec<u8> = raw.iter().map(|b| if *b == b'+' { b' ' } else { *b }).collect();
    let bytes: Vec<u8> = percent_decode(&plus).collect();
    Ok(charset::decode(encoding, &bytes)?)
}

fn parse_xml(text: &str) -> Result<BTreeMap<String, String>, BodyError> {
    let syntax = |e: &dyn std::fmt::Display| BodyError::Syntax {
        format: "XML",
        reason: e.to_string(),
    };
    let mut reader = quick_xml::Reader::from_str(text);
    let mut path: Vec<String> = Vec::new();
    let mut map = BTreeMap::new();
    let mut elements = 0;
    loop {
        match reader.read_event().map_err(|e| syntax(&e))? {
            Event::DocType(_) => return Err(BodyError::Doctype),
            Event::Start(start) => {
                elements += 1;
                if path.len() >= MAX_DEPTH || elements > MAX_ELEMENTS {
                    return Err(BodyError::TooComplex);
                }
                path.push(start.name().into_inner().to_owned());
            }
            Event::End(_) => {
                path.pop();
            }
            Event::Empty(_) => elements += 1,
            Event::Text(chunk) => append(&mut map, &path, &chunk.xml10_content()),
            Event::CData(chunk) => append(&mut map, &path, &chunk.xml10_content()),
            Event::GeneralRef(reference) => {
                // Only the five predefined entities and character references; anything else needs a DTD.
                let resolved = match reference.resolve_char_ref() {
                    Ok(Some(ch)) => ch.to_string(),
                    Ok(None) => resolve_xml_entity(&reference).ok_or(BodyError::Doctype)?.to_owned(),
                    Err(_) => return Err(BodyError::Doctype),
                };
                append(&mut map, &path, &resolved);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !path.is_empty() {
        return Err(syntax(&"unclosed element"));
    }
    Ok(map)
}

/// Text of an element below the root, keyed by its path without the root (`<xml><Msg><From>` → `Msg/From`).
fn append(map: &mut BTreeMap<String, String>, path: &[String], text: &str) {
    if path.len() < 2 {
        return;
    }
    let key = path[1..].join("/");
    map.entry(key).or_default().push_str(text);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gbk_form_decodes_after_unescaping() {
        // "uid=42&msg=我要退货" with the message in GBK, percent-encoded as a GBK page would post it.
        let body = b"uid=42&msg=%CE%D2%D2%AA%CD%CB%BB%F5&note=a+b";
        let doc = Document::parse(Format::Form, encoding_rs::GB18030, body).unwrap();
        assert_eq!(doc.get("msg"), Some(Value::String("我要退货".to_owned())));
        assert_eq!(doc.get("note"), Some(Value::String("a b".to_owned())));
        assert!(
            Document::parse(Format::Form, encoding_rs::UTF_8, body).is_err(),
            "GBK bytes are not UTF-8"
        );
    }

    #[test]
    fn xml_paths_and_hostile_xml() {
        let doc = Document::parse(
            Format::Xml,
            encoding_rs::UTF_8,
            b"<Request><Msg><From>u1</From><Text><![CDATA[a ]]&gt; b]]></Text><Amp>x &amp; y</Amp></Msg></Request>",
        )
        .unwrap();
        assert_eq!(doc.get("Msg/From"), Some(Value::String("u1".to_owned())));
        assert_eq!(doc.get("Msg/Amp"), Some(Value::String("x & y".to_owned())));
        let xxe = br#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r><a>&x;</a></r>"#;
        assert_eq!(
            Document::parse(Format::Xml, encoding_rs::UTF_8, xxe),
            Err(BodyError::Doctype)
        );
        assert!(Document::parse(Format::Xml, encoding_rs::UTF_8, b"<r><a>&x;</a></r>").is_err());
        assert!(Document::parse(Format::Xml, encoding_rs::UTF_8, b"<r><a>").is_err());
    }

    #[test]
    fn json_pointer_and_leaves() {
        let doc = Document::parse(Format::Json, encoding_rs::UTF_8, br#"{"data":{"userId":"u","a/b":1}}"#).unwrap();
        assert_eq!(doc.get("/data/userId"), Some(Value::String("u".to_owned())));
        let leaves: Vec<_> = doc.leaves().into_iter().map(|(k, _)| k).collect();
        assert_eq!(leaves, ["/data/a~1b", "/data/userId"]);
        assert!(Document::parse(Format::Json, encoding_rs::UTF_8, b"[1]").is_err());
    }
}
