//! `GET|POST /wechat/{account}`: the WeChat Official Account callback URL.
//!
//! This module owns the HTTP framing only: the path's account, the size-capped body, the order "verify and
//! decode (codec) → store and answer (crate::wechat) → render and, in compatible/safe mode, seal", and
//! the mapping of refusals onto the shared error body. It never parses a byte before the codec has checked the
//! signature, and never answers a stored message with an error: once stored, the answer is a reply or `success`.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use protofuse_adapter::DecodeError;
use protofuse_wechat::callback::{self, CallbackError, CallbackQuery};
use protofuse_wechat::{SUCCESS, classify::classify, secure};

use super::body;
use super::error::ApiError;
use super::state::AppState;
use crate::wechat::{self, Account};

/// The routes, mounted by the HTTP router (`http.rs`).
pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/wechat/{account}", get(verify_url).post(receive))
}

fn account(state: &AppState, name: &str) -> Result<Arc<Account>, ApiError> {
    state
        .wechat
        .account(name)
        .ok_or_else(|| DecodeError::Unauthenticated("unknown wechat account").into())
}

fn query(query: Result<Query<CallbackQuery>, QueryRejection>) -> Result<CallbackQuery, ApiError> {
    query
        .map(|Query(q)| q)
        .map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))
}

/// Logs the precise cause (never sent to the client: no padding or AppID oracle) and classifies it.
fn refuse(account: &str, error: CallbackError) -> ApiError {
    tracing::info!(account, error = %error, cause = ?std::error::Error::source(&error), "wechat callback refused");
    classify(error).into()
}

async fn verify_url(
    State(state): State<AppState>,
    Path(name): Path<String>,
    raw: Result<Query<CallbackQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let account = account(&state, &name)?;
    let query = query(raw)?;
    let now = chrono::Utc::now().timestamp();
    let echo = callback::verify_url(account.settings(), &query, now).map_err(|e| refuse(&name, e))?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], echo.to_owned()).into_response())
}

async fn receive(
    State(state): State<AppState>,
    Path(name): Path<String>,
    raw: Result<Query<CallbackQuery>, QueryRejection>,
    headers: HeaderMap,
    request_body: Body,
) -> Result<Response, ApiError> {
    let now = chrono::Utc::now();
    let account = account(&state, &name)?;
    let query = query(raw)?;
    let limit = state.body_limit.min(account.settings().max_body_bytes());
    let bytes = body::read_limited(&headers, request_body, limit).await?;
    let envelope = callback::decode(account.settings(), &query, &bytes, now).map_err(|e| refuse(&name, e))?;
    let (message, answer) = state.wechat.receive(&account, envelope).await?;
    let Some(xml) = wechat::passive_reply(&message, answer.as_ref(), chrono::Utc::now()) else {
        return Ok(text(SUCCESS.to_owned()));
    };
    let encrypted = query
        .encrypt_type
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("aes"));
    let Some(cipher) = account.settings().cipher().filter(|_| encrypted) else {
        return Ok(xml_response(xml));
    };
    let nonce = rand::random::<u32>().to_string();
    match secure::seal(
        cipher,
        account.settings().token(),
        &xml,
        &rand::random(),
        now.timestamp(),
        &nonce,
    ) {
        Ok(sealed) => Ok(xml_response(sealed)),
        Err(e) => {
            // The message is stored; `success` keeps WeChat from retrying it.
            tracing::error!(account = name, error = %e, "cannot seal the reply; answering success");
            Ok(text(SUCCESS.to_owned()))
        }
    }
}

fn text(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

fn xml_response(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/xml; charset=utf-8")], body).into_response()
}
