//! Test-only access to the copied vectors in `tests/vectors/` (see the README there for their origin).
//!
//! Compiled only under `cfg(test)`; it embeds the files at compile time so tests never touch the file system
//! outside the crate.

pub(crate) const CRYPTO_JSON: &str = include_str!("../tests/vectors/crypto.json");
const INBOUND: &str = include_str!("../tests/vectors/inbound.xml.txt");
const REPLIES: &str = include_str!("../tests/vectors/replies.xml.txt");

/// One named section of `crypto.json`.
pub(crate) fn crypto(section: &str) -> serde_json::Value {
    let all: serde_json::Value = serde_json::from_str(CRYPTO_JSON).expect("crypto.json parses");
    all.get(section)
        .cloned()
        .unwrap_or_else(|| panic!("crypto.json has no {section}"))
}

/// A string field of a `crypto.json` section.
pub(crate) fn field(section: &serde_json::Value, name: &str) -> String {
    section
        .get(name)
        .and_then(|v| v.as_str())
        .unwrap_or_else(|| panic!("missing {name}"))
        .to_owned()
}

/// Every inbound document, one per line.
pub(crate) fn inbound() -> Vec<&'static str> {
    INBOUND.lines().filter(|l| !l.trim().is_empty()).collect()
}

/// Every expected reply, one per line.
pub(crate) fn replies() -> Vec<&'static str> {
    REPLIES.lines().filter(|l| !l.trim().is_empty()).collect()
}

/// Removes all whitespace, as the vectors' README prescribes for comparing replies.
pub(crate) fn squash(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}
