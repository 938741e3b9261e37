//! Inbound XML: turns a callback body (or a decrypted message) into the ordered list of `<xml>`'s child
//! elements, [`Fields`].
//!
//! This module owns the defences against hostile XML. The body is parsed before anything has authenticated it
//! (safe mode must read `<Encrypt>` to check `msg_signature`), so it never expands or loads entities: any
//! `<!DOCTYPE` (and with it every `<!ENTITY`) is refused outright, only the five predefined entities and
//! character references are resolved, and size, depth and element count are capped. It never panics on any
//! input, and it knows nothing of message types: meaning is [`crate::decode`]'s job.

use quick_xml::Reader;
use quick_xml::escape::resolve_xml_entity;
use quick_xml::events::Event;

/// Largest document accepted, whatever the account's body limit says: a compatible-mode body is about three
/// times the message and real messages are a few KiB.
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// `<xml>` → `SendPicsInfo` → `PicList` → `item` → `PicMd5Sum` is the deepest real shape (5); leave headroom.
const MAX_DEPTH: usize = 8;
/// The largest real event (a news reply echoed back, `SendPicsInfo` with many pictures) stays far below this.
const MAX_ELEMENTS: usize = 1024;

/// Why a document was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum XmlError {
    /// The document exceeds [`MAX_DOCUMENT_BYTES`].
    #[error("document of {len} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// The document's length.
        len: usize,
        /// The limit applied.
        limit: usize,
    },
    /// The document is not UTF-8 (WeChat always sends UTF-8).
    #[error("document is not utf-8")]
    NotUtf8,
    /// The document has a `<!DOCTYPE`, the only place entities can be declared.
    #[error("document type declarations are not accepted")]
    Doctype,
    /// A reference to an entity other than the five XML predefines them, or an invalid character reference.
    #[error("entity references other than the predefined ones are not accepted")]
    Entity,
    /// A processing instruction other than the `<?xml ...?>` declaration.
    #[error("processing instructions are not accepted")]
    ProcessingInstruction,
    /// No root element.
    #[error("document has no root element")]
    Empty,
    /// The root element is not `<xml>`.
    #[error("root element is not <xml>")]
    Root,
    /// Text outside the root element, or a second root.
    #[error("content outside the root element")]
    OutsideRoot,
    /// A start tag without its end tag.
    #[error("element <{name}> is not closed")]
    Unclosed {
        /// The element left open.
        name: String,
    },
    /// Elements nested deeper than the cap.
    #[error("elements nested deeper than {MAX_DEPTH}")]
    TooDeep,
    /// More elements than the cap.
    #[error("more than {MAX_ELEMENTS} elements")]
    TooManyElements,
    /// An element holds both text and child elements.
    #[error("element <{name}> mixes text and elements")]
    MixedContent {
        /// The element.
        name: String,
    },
    /// `<xml>` has the same child twice: which one counts would be ambiguous, so neither does.
    #[error("field <{name}> appears more than once")]
    DuplicateField {
        /// The repeated field.
        name: String,
    },
    /// The underlying parser refused the syntax.
    #[error("xml syntax error")]
    Syntax(#[source] quick_xml::Error),
}

/// The value of one element: its text, or its child elements in document order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A leaf: text and CDATA concatenated, entities resolved, line ends normalized, nothing trimmed.
    Text(String),
    /// An element with children; repeated names (such as `item`) keep every occurrence.
    Children(Vec<(String, Node)>),
}

impl Node {
    /// The text of a leaf; `None` for an element with children.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text(text) => Some(text),
            Self::Children(_) => None,
        }
    }

    /// The JSON form kept in `Source::raw`: a string for a leaf, an object for children, where a name that
    /// occurs more than once becomes an array in document order.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Self::Text(text) => serde_json::Value::String(text.clone()),
            Self::Children(children) => {
                let mut object = serde_json::Map::new();
                for (name, child) in children {
                    let value = child.to_json();
                    if !is_repeated(children, name) {
                        object.insert(name.clone(), value);
                    } else if let serde_json::Value::Array(items) = object
                        .entry(name.clone())
                        .or_insert_with(|| serde_json::Value::Array(Vec::new()))
                    {
                        items.push(value);
                    }
                }
                serde_json::Value::Object(object)
            }
        }
    }
}

fn is_repeated(children: &[(String, Node)], name: &str) -> bool {
    children.iter().filter(|(n, _)| n == name).nth(1).is_some()
}

/// The children of `<xml>`, in document order, each name at most once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields {
    entries: Vec<(String, Node)>,
}

impl Fields {
    /// The element named `name`.
    pub fn get(&self, name: &str) -> Option<&Node> {
        self.entries.iter().find(|(n, _)| n == name).map(|(_, node)| node)
    }

    /// The text of the leaf named `name`.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(Node::as_text)
    }

    /// Every field in document order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Node)> {
        self.entries.iter().map(|(n, node)| (n.as_str(), node))
    }

    /// The number of fields.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// `true` for `<xml></xml>`.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// An element being read: its name, text so far and finished children.
struct Open {
    name: String,
    text: String,
    children: Vec<(String, Node)>,
}

impl Open {
    fn finish(self) -> Result<(String, Node), XmlError> {
        if self.children.is_empty() {
            return Ok((self.name, Node::Text(self.text)));
        }
        // Whitespace between child elements is layout, not content.
        if !self.text.trim().is_empty() {
            return Err(XmlError::MixedContent { name: self.name });
        }
        Ok((self.name, Node::Children(self.children)))
    }
}

/// Parses a callback document into the fields of its `<xml>` root.
pub fn parse(input: &[u8]) -> Result<Fields, XmlError> {
    if input.len() > MAX_DOCUMENT_BYTES {
        return Err(XmlError::TooLarge {
            len: input.len(),
            limit: MAX_DOCUMENT_BYTES,
        });
    }
    let text = std::str::from_utf8(input).map_err(|_| XmlError::NotUtf8)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = Reader::from_str(text);
    reader.config_mut().expand_empty_elements = true;

    let mut stack: Vec<Open> = Vec::new();
    let mut root: Option<Node> = None;
    let mut elements = 0usize;
    loop {
        match reader.read_event().map_err(XmlError::Syntax)? {
            Event::Decl(_) | Event::Comment(_) => {}
            Event::DocType(_) => return Err(XmlError::Doctype),
            Event::PI(_) => return Err(XmlError::ProcessingInstruction),
            Event::Start(start) | Event::Empty(start) => {
                elements += 1;
                if root.is_some() {
                    return Err(XmlError::OutsideRoot);
                }
                if elements > MAX_ELEMENTS {
                    return Err(XmlError::TooManyElements);
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError::TooDeep);
                }
                let name = start.name().into_inner().to_owned();
                if stack.is_empty() && name != "xml" {
                    return Err(XmlError::Root);
                }
                stack.push(Open {
                    name,
                    text: String::new(),
                    children: Vec::new(),
                });
            }
            Event::End(_) => {
                // quick-xml checks that end names match, so the popped element is the one being closed.
                let (name, node) = stack.pop().ok_or(XmlError::OutsideRoot)?.finish()?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push((name, node)),
                    None => root = Some(node),
                }
            }
            Event::Text(chunk) => push_text(&mut stack, &chunk.xml10_content())?,
            Event::CData(chunk) => push_text(&mut stack, &chunk.xml10_content())?,
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref() {
                    Ok(Some(ch)) => ch.to_string(),
                    Ok(None) => resolve_xml_entity(&reference).ok_or(XmlError::Entity)?.to_owned(),
                    Err(_) => return Err(XmlError::Entity),
                };
                push_text(&mut stack, &resolved)?;
            }
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.pop() {
        return Err(XmlError::Unclosed { name: open.name });
    }
    match root.ok_or(XmlError::Empty)? {
        Node::Children(entries) => into_fields(entries),
        Node::Text(text) if text.trim().is_empty() => Ok(Fields::default()),
        Node::Text(_) => Err(XmlError::MixedContent { name: "xml".to_owned() }),
    }
}

fn push_text(stack: &mut [Open], chunk: &str) -> Result<(), XmlError> {
    match stack.last_mut() {
        Some(open) => open.text.push_str(chunk),
        // Outside the root only layout whitespace may appear.
        None if chunk.trim().is_empty() => {}
        None => return Err(XmlError::OutsideRoot),
    }
    Ok(())
}

fn into_fields(entries: Vec<(String, Node)>) -> Result<Fields, XmlError> {
    for (i, (name, _)) in entries.iter().enumerate() {
        if entries.iter().take(i).any(|(earlier, _)| earlier == name) {
            return Err(XmlError::DuplicateField { name: name.clone() });
        }
    }
    Ok(Fields { entries })
}

#[cfg(test)]
mod tests;
