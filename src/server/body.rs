//! Reading request bodies under the configured size limit, with refusals as [`DecodeError`]s so every endpoint
//! answers oversize and wrong-type bodies the same way.

use axum::body::Body;
use axum::http::{HeaderMap, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use protofuse_adapter::DecodeError;

/// Reads the whole body, refusing it (413) as soon as it is known to exceed `limit`: from `Content-Length`
/// before reading anything, otherwise while streaming, so an oversized body is never buffered whole.
pub(super) async fn read_limited(headers: &HeaderMap, body: Body, limit: usize) -> Result<bytes::Bytes, DecodeError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(DecodeError::TooLarge { limit });
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(DecodeError::TooLarge { limit }),
        Err(e) => Err(DecodeError::Malformed {
            format: "HTTP body",
            reason: e.to_string(),
        }),
    }
}

/// Refuses (415) a body whose `Content-Type` is not JSON (`application/json` or any `+json` type).
pub(super) fn require_json(headers: &HeaderMap) -> Result<(), DecodeError> {
    let mime = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    match mime.as_deref() {
        Some("application/json") => Ok(()),
        Some(m) if m.starts_with("application/") && m.ends_with("+json") => Ok(()),
        _ => Err(DecodeError::UnsupportedMediaType {
            expected: "application/json",
        }),
    }
}
