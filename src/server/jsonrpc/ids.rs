//! Request ids the spec does not allow. JSON-RPC 2.0 says an id is a string, a number or null; jsonrpsee reads a
//! request whose id is an object, an array or a boolean as a notification (no id at all), so it would be run and
//! never answered. This screens HTTP POST bodies first: such requests are refused with `-32600 Invalid Request`
//! (id null, as the spec asks when the id cannot be determined), alone or inside a batch, and are never run.
//!
//! Must never: change a request it does not refuse (the body is passed on byte for byte).

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};

/// The request (rebuilt around its buffered body) without the refused entries, or `None` when every entry was
/// refused; and one error object per refused entry. `Err` is a complete answer (the body is too large).
pub(super) async fn screen(
    request: axum::extract::Request,
    limit: usize,
) -> Result<(Option<axum::extract::Request>, Vec<Value>), Response> {
    let (parts, body) = request.into_parts();
    let bytes = match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Err(too_large()),
    };
    let rebuild = |bytes: bytes::Bytes| Some(axum::extract::Request::from_parts(parts.clone(), Body::from(bytes)));
    let Ok(value) = serde_json::from_slice::<Value>(&bytes) else {
        // Not JSON: jsonrpsee answers the parse error itself.
        return Ok((rebuild(bytes), Vec::new()));
    };
    match value {
        Value::Object(ref object) if bad_id(object.get("id")) => Ok((None, vec![invalid_request()])),
        Value::Array(entries) if entries.iter().any(|e| bad_id(e.get("id"))) => {
            let (refused, kept): (Vec<Value>, Vec<Value>) = entries.into_iter().partition(|e| bad_id(e.get("id")));
            let refusals = refused.iter().map(|_| invalid_request()).collect();
            if kept.is_empty() {
                return Ok((None, refusals));
            }
            let body = serde_json::to_vec(&kept).unwrap_or_default();
            Ok((rebuild(body.into()), refusals))
        }
        _ => Ok((rebuild(bytes), Vec::new())),
    }
}

fn bad_id(id: Option<&Value>) -> bool {
    matches!(id, Some(Value::Object(_) | Value::Array(_) | Value::Bool(_)))
}

fn invalid_request() -> Value {
    json!({"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request: id must be a string, a number or null"}, "id": null})
}

fn too_large() -> Response {
    let body = json!({"jsonrpc": "2.0", "error": {"code": -32007, "message": "Request is too big"}, "id": null});
    (StatusCode::PAYLOAD_TOO_LARGE, axum::Json(body)).into_response()
}

/// The answer when every entry was refused: one error, or an array of them for a batch.
pub(super) fn only_refusals(refused: &[Value]) -> Response {
    let body = match refused {
        [one] => one.clone(),
        many => Value::Array(many.to_vec()),
    };
    axum::Json(body).into_response()
}

/// jsonrpsee's answer to the kept entries of a batch, with the refused entries' errors added.
pub(super) async fn with_refusals(response: jsonrpsee::server::HttpResponse, refused: &[Value]) -> Response {
    let (parts, body) = response.into_parts();
    let Ok(collected) = body.collect().await else {
        return crate::server::error::ApiError::internal().into_response();
    };
    let mut answers = match serde_json::from_slice::<Value>(&collected.to_bytes()) {
        Ok(Value::Array(answers)) => answers,
        Ok(Value::Null) | Err(_) => Vec::new(),
        Ok(one) => vec![one],
    };
    answers.extend(refused.iter().cloned());
    let mut response = Response::from_parts(parts, Body::from(serde_json::to_vec(&answers).unwrap_or_default()));
    response.headers_mut().remove(header::CONTENT_LENGTH);
    response
}
