//! The native JSON codec: the canonical [`NewMessage`] form, as accepted by `POST /v1/messages`.

use protofuse_model::{Envelope, NewMessage, Protocol};
use serde_json::error::Category;

use crate::DecodeError;

/// Decodes a posted JSON body into an envelope. `idempotency_key` is the transport's header, which takes
/// precedence over the body's field.
///
/// Syntax errors are [`DecodeError::Malformed`] (HTTP 400); well-formed JSON that is not a valid message
/// (unknown content type, a field of the wrong type, a broken model rule) is [`DecodeError::Invalid`] or
/// [`DecodeError::Validation`] (HTTP 422).
pub fn decode(body: &[u8], idempotency_key: Option<&str>) -> Result<Envelope, DecodeError> {
    // serde reads a struct from a JSON array too (field by position); a message is an object, nothing else.
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if matches!(first, Some(b'[' | b'"' | b't' | b'f' | b'n' | b'-' | b'0'..=b'9')) {
        return Err(DecodeError::Invalid(
            "the body must be a JSON object (one message)".to_owned(),
        ));
    }
    let posted: NewMessage = serde_json::from_slice(body).map_err(|e| match e.classify() {
        Category::Data => DecodeError::Invalid(plain(&e.to_string())),
        Category::Syntax | Category::Eof | Category::Io => DecodeError::Malformed {
            format: "JSON",
            reason: e.to_string(),
        },
    })?;
    Ok(posted.into_envelope(Protocol::Rest, idempotency_key)?)
}

/// serde's data errors name Rust types ("expected struct NewMessage"); callers know the JSON, not our types.
fn plain(message: &str) -> String {
    message
        .replace("struct NewMessage", "a message object")
        .replace("struct Party", "a sender object")
        .replace("internally tagged enum Content", "a content object")
        .replace("struct ", "an object ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Rejection;

    #[test]
    fn only_an_object_is_a_message_and_errors_speak_json() {
        let array = br#"[{"role":"customer","external_id":"u"},{"type":"text","text":"hi"}]"#;
        let refused = decode(array, None).unwrap_err();
        assert_eq!(refused.rejection(), Rejection::Unprocessable);
        assert!(refused.to_string().contains("JSON object"), "{refused}");
        let wrong = decode(br#"{"sender": 5, "content": {"type":"text","text":"x"}}"#, None).unwrap_err();
        assert!(!wrong.to_string().contains("struct"), "{wrong}");
    }

    #[test]
    fn classes_of_bad_input() {
        let malformed = decode(b"{\"sender\":", None).unwrap_err();
        assert_eq!(malformed.rejection(), Rejection::BadRequest);
        let unknown_type = br#"{"sender":{"role":"customer","external_id":"u"},"content":{"type":"hologram"}}"#;
        assert_eq!(
            decode(unknown_type, None).unwrap_err().rejection(),
            Rejection::Unprocessable
        );
        let wrong_type = br#"{"sender":{"role":"customer","external_id":"u"},"content":{"type":"text","text":5}}"#;
        assert_eq!(decode(wrong_type, None).unwrap_err().code(), "invalid_message");
    }

    #[test]
    fn decodes_a_text_message() {
        let body = br#"{"sender":{"role":"customer","external_id":"u"},"content":{"type":"text","text":"hi"}}"#;
        let env = decode(body, Some("k")).unwrap();
        assert_eq!(env.source.protocol, Protocol::Rest);
        assert_eq!(env.content.kind(), "text");
    }

    #[test]
    fn a_number_reads_back_as_the_value_accepted() {
        // Found by fuzzing (target `native`): serde_json's default float parser is not correctly rounded for long
        // literals, so the store's JSON read back a different `scale` than the one accepted and validated.
        let digits = format!("555555{}{}20", "0".repeat(120), "5".repeat(39));
        let body = format!(
            r#"{{"sender":{{"role":"customer","external_id":"u"}},"content":{{"type":"location","latitude":0,"longitude":0,"scale":{digits}}}}}"#
        );
        let accepted = decode(body.as_bytes(), None).unwrap();
        let stored = serde_json::to_vec(&accepted).unwrap();
        let read: Envelope = serde_json::from_slice(&stored).unwrap();
        assert_eq!(read, accepted);
    }
}
