//! The entry point the cargo-fuzz target (`fuzz/fuzz_targets/decode.rs`) and the corpus replay test share, so
//! that CI on stable checks every kept input through exactly the code the fuzzer ran.
//!
//! The fuzzer plays a legacy caller of one of four adapters: the three shipped examples (GBK form, JSON, XML
//! with a declared charset) and one that reads the query string in Big5 with every transform. Besides "no
//! panic", it checks that hostile values cannot break out of the answer or outbound templates. Compiled only for
//! tests and the `fuzzing` feature.

use std::str::FromStr;
use std::sync::OnceLock;

use protofuse_adapter::IngestOutcome;
use protofuse_model::{ConversationId, MessageId};

use crate::{Class, LegacyAdapter, Reply};

const PHP: &str = include_str!("../../../config/adapters/php-helpdesk.toml");
const JAVA: &str = include_str!("../../../config/adapters/java-crm.toml");
const DOTNET: &str = include_str!("../../../config/adapters/dotnet-service.toml");
/// Covers what the shipped files leave out: the query format, Big5, `datetime` without seconds, lowercase,
/// numeric targets, concatenation with a default.
const QUERY: &str = r#"
name = "fuzz-query"
method = "GET"
path = "/legacy/fuzz"
format = "query"
charset = "big5"

[fields]
"sender.external_id" = { from = "u", required = true }
"sender.display_name" = { concat = "{first} {last}" }
"content.type" = { from = "t", map = { "t" = "text", "l" = "location", "i" = "image" }, default = "t" }
"content.text" = { from = "m", transform = "trim" }
"content.latitude" = { from = "lat" }
"content.longitude" = { from = "lon" }
"content.url" = { from = "url", transform = "lowercase" }
"sent_at" = { from = "at", transform = "datetime", format = "%Y%m%d%H%M", utc_offset = "-03:30" }
"external_id" = { from = "id" }
"metadata.shop" = { from = "shop", default = "none" }

[response]
escape = "json"
stored = { status = 200, body = '{"ok":true,"id":"{{message.id}}","text":"{{message.content.text}}"}' }
invalid = { status = 400, body = '{"ok":false,"code":"{{error.code}}","why":"{{error.message}}"}' }
"#;

/// `Content-Type` values offered to the adapters (only `charset = "declared"` reads them).
const CONTENT_TYPES: &[Option<&str>] = &[
    None,
    Some("application/xml"),
    Some("text/xml; charset=gbk"),
    Some("application/xml; charset=\"big5\""),
    Some("text/xml;charset=GB18030"),
    Some("application/xml; charset=iso-8859-1"),
    Some("application/xml; charset=utf-16"),
    Some("application/xml; charset=no-such-charset"),
];

/// Runs one fuzz input: the first byte picks the adapter and the `Content-Type`, the rest is the body (or the
/// query string). Panics only where an invariant breaks: never on hostile input.
pub fn decode(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let adapter = adapter(selector % 4);
    let content_type = CONTENT_TYPES[usize::from(selector / 4) % CONTENT_TYPES.len()];
    match adapter.decode(content_type, body) {
        Ok(envelope) => {
            let id = MessageId::from_str("01890000-0000-7000-8000-000000000001").unwrap_or_default();
            let conversation = ConversationId::from_str("01890000-0000-7000-8000-000000000002").unwrap_or_default();
            let message = envelope.into_message(id, conversation, chrono::DateTime::UNIX_EPOCH);
            let outcome = IngestOutcome {
                message,
                duplicate: false,
            };
            check_answer(adapter, &adapter.respond(Reply::Accepted(&outcome)));
            if let Some(outbound) = adapter.outbound()
                && let Ok(request) = outbound.render(&outcome.message, 1_700_000_000, "nonce")
            {
                check_outbound(&request);
            }
        }
        Err(error) => {
            let message = error.to_string();
            let reply = Reply::Refused {
                class: Class::Invalid,
                code: error.code(),
                message: &message,
            };
            check_answer(adapter, &adapter.respond(reply));
        }
    }
}

/// Parsed once: loading an adapter file costs a hundred times more than decoding a request, and would
/// otherwise be most of what the fuzzer measures.
fn adapter(index: u8) -> &'static LegacyAdapter {
    static ADAPTERS: OnceLock<Vec<LegacyAdapter>> = OnceLock::new();
    let all = ADAPTERS.get_or_init(|| {
        [PHP, JAVA, DOTNET, QUERY]
            .iter()
            .map(|text| match LegacyAdapter::from_toml(text) {
                Ok(adapter) => adapter,
                Err(issues) => panic!("a fuzz adapter is invalid: {issues:?}"),
            })
            .collect()
    });
    &all[usize::from(index).min(all.len() - 1)]
}

/// Every answer template here is JSON with `escape = "json"`: whatever the request held, the answer must still
/// be one JSON document (read back in the adapter's charset).
fn check_answer(adapter: &LegacyAdapter, answer: &crate::Rendered) {
    let encoding = match adapter.name() {
        "php-helpdesk" => encoding_rs::GBK,
        "fuzz-query" => encoding_rs::BIG5,
        _ => encoding_rs::UTF_8,
    };
    let (text, _, malformed) = encoding.decode(&answer.body);
    assert!(!malformed, "answer of {} is not in its charset", adapter.name());
    if let Err(e) = serde_json::from_str::<serde_json::Value>(&text) {
        panic!("answer of {} is not JSON ({e}): {text}", adapter.name());
    }
}

/// The shipped outbound templates are a JSON object (java-crm) and a four-field form (php-helpdesk); a message's
/// text must never add a field or end the document.
fn check_outbound(request: &crate::OutboundRequest) {
    let json = request
        .headers
        .iter()
        .any(|(name, value)| name == "Content-Type" && value.contains("json"));
    if json {
        let text = String::from_utf8_lossy(&request.body);
        if let Err(e) = serde_json::from_str::<serde_json::Value>(&text) {
            panic!("outbound body is not JSON ({e}): {text}");
        }
    } else {
        let keys: Vec<&[u8]> = request
            .body
            .split(|&b| b == b'&')
            .map(|pair| pair.split(|&b| b == b'=').next().unwrap_or_default())
            .collect();
        assert_eq!(
            keys,
            [&b"uid"[..], b"msg", b"conv", b"mid"],
            "outbound form fields were injected"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Replays the kept corpus (seeds and minimised findings) through the fuzz target's entry, on stable.
    #[test]
    fn kept_corpus_replays_without_panicking() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/decode");
        let mut replayed = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            decode(&std::fs::read(&path).unwrap());
            replayed += 1;
        }
        assert!(replayed >= 8, "{} holds only {replayed} inputs", dir.display());
    }

    #[test]
    fn the_query_adapter_decodes_every_field_it_maps() {
        // The fuzz-only adapter must be able to succeed, or the fuzzer would never reach the templates with it.
        let adapter = adapter(3);
        let (big5, _, _) = encoding_rs::BIG5.encode("中文");
        let text: String = big5.iter().map(|b| format!("%{b:02X}")).collect();
        let query = format!("u=42&first=A&last=B&t=l&m=+{text}+&lat=1.5&lon=-2&url=HTTP://X&at=202401020304&id=7");
        let envelope = adapter.decode(None, query.as_bytes()).unwrap();
        assert_eq!(envelope.sender.display_name.as_deref(), Some("A B"));
        assert_eq!(
            envelope.sent_at.map(|t| t.to_rfc3339()).as_deref(),
            Some("2024-01-02T06:34:00+00:00")
        );
        decode(&[3].iter().chain(query.as_bytes()).copied().collect::<Vec<_>>());
    }
}
