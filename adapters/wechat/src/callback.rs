//! The inbound pipeline of one callback request: query signature, replay window, mode check, `msg_signature`,
//! decryption, XML parsing and mapping, in that order; plus the GET URL verification.
//!
//! This module owns the order of the checks, which is the security of the endpoint: nothing is parsed before
//! the query signature holds, nothing is decrypted before `msg_signature` holds, and an account configured for
//! safe or compatible mode never accepts a plaintext body (the downgrade EasyWeChat allows). It never touches
//! the network or the clock; `now` comes from the caller.

use chrono::{DateTime, Utc};
use protofuse_model::{Envelope, ValidationError};
use serde::Deserialize;

use crate::config::{Mode, WechatSettings};
use crate::crypto::{self, CryptoError};
use crate::decode::{FieldError, to_envelope};
use crate::signature::{self, SignatureError};
use crate::xml::{self, Fields, XmlError};

/// The query string of a callback, as WeChat sends it. Every parameter is optional here so that a missing one
/// becomes a typed error rather than a deserialization failure in the transport.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct CallbackQuery {
    /// SHA-1 over (token, timestamp, nonce); present in every mode.
    pub signature: Option<String>,
    /// Unix seconds, as text; signed exactly as received.
    pub timestamp: Option<String>,
    /// Random text chosen by WeChat.
    pub nonce: Option<String>,
    /// Only on the GET URL verification: the text to echo back.
    pub echostr: Option<String>,
    /// The sender's OpenID; informational, the body's `FromUserName` is what counts.
    pub openid: Option<String>,
    /// `aes` in compatible and safe mode.
    pub encrypt_type: Option<String>,
    /// SHA-1 over (token, timestamp, nonce, Encrypt); present with `encrypt_type=aes`.
    pub msg_signature: Option<String>,
}

/// Why a callback request was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallbackError {
    /// A query parameter the request needs is absent.
    #[error("query parameter {0} is missing")]
    MissingParam(&'static str),
    /// The body exceeds the account's limit.
    #[error("body of {len} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// The body's length.
        len: usize,
        /// The account's limit.
        limit: usize,
    },
    /// `signature` or `msg_signature` is wrong, or the timestamp is outside the replay window.
    #[error("request signature check failed")]
    Signature(#[source] SignatureError),
    /// The request's encryption does not match the account's configured mode.
    #[error("request is {found} but the account is configured for {expected:?} mode")]
    ModeMismatch {
        /// The account's mode.
        expected: Mode,
        /// What the request looks like.
        found: &'static str,
    },
    /// The outer document of an encrypted request has no `<Encrypt>`.
    #[error("encrypted request has no <Encrypt> field")]
    MissingEncrypt,
    /// The signed ciphertext could not be decrypted (wrong key or AppID, or a corrupt frame).
    #[error("message decryption failed")]
    Crypto(#[source] CryptoError),
    /// The body (or the decrypted message) is not acceptable XML.
    #[error("message is not acceptable xml")]
    Xml(#[source] XmlError),
    /// The message lacks a field its kind needs, or a field is malformed.
    #[error("message fields are invalid")]
    Fields(#[source] FieldError),
    /// The decoded envelope breaks a rule of the canonical model.
    #[error("decoded message is invalid")]
    Validation(#[source] ValidationError),
}

/// The parameters every signed request carries.
struct Signed<'q> {
    timestamp: &'q str,
    nonce: &'q str,
}

/// Checks `signature` and the replay window; returns the signed timestamp and nonce.
fn check_query<'q>(
    settings: &WechatSettings,
    query: &'q CallbackQuery,
    now_unix: i64,
) -> Result<Signed<'q>, CallbackError> {
    let presented = query
        .signature
        .as_deref()
        .ok_or(CallbackError::MissingParam("signature"))?;
    let timestamp = query
        .timestamp
        .as_deref()
        .ok_or(CallbackError::MissingParam("timestamp"))?;
    let nonce = query.nonce.as_deref().ok_or(CallbackError::MissingParam("nonce"))?;
    let expected = signature::signature(settings.token(), timestamp, nonce);
    signature::verify(&expected, presented).map_err(CallbackError::Signature)?;
    if let Some(window) = settings.replay_window_secs() {
        signature::check_timestamp(timestamp, now_unix, window).map_err(CallbackError::Signature)?;
    }
    Ok(Signed { timestamp, nonce })
}

/// Answers the GET URL verification: returns the `echostr` to send back verbatim (as `text/plain`), once the
/// signature holds. Official Accounts never encrypt `echostr` (WeCom does; this is not WeCom).
pub fn verify_url<'q>(
    settings: &WechatSettings,
    query: &'q CallbackQuery,
    now_unix: i64,
) -> Result<&'q str, CallbackError> {
    check_query(settings, query, now_unix)?;
    query.echostr.as_deref().ok_or(CallbackError::MissingParam("echostr"))
}

/// Authenticates a POST and returns the fields of the message it carries, decrypted if the mode says so.
pub fn open(
    settings: &WechatSettings,
    query: &CallbackQuery,
    body: &[u8],
    now_unix: i64,
) -> Result<Fields, CallbackError> {
    if body.len() > settings.max_body_bytes() {
        return Err(CallbackError::TooLarge {
            len: body.len(),
            limit: settings.max_body_bytes(),
        });
    }
    let signed = check_query(settings, query, now_unix)?;
    let encrypted = query
        .encrypt_type
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("aes"));
    let outer = xml::parse(body).map_err(CallbackError::Xml)?;
    let Some(cipher) = settings.cipher() else {
        // No key to decrypt with: the console was switched to another mode without updating protofuse.
        if encrypted {
            return Err(CallbackError::ModeMismatch {
                expected: Mode::Plaintext,
                found: "encrypted",
            });
        }
        return Ok(outer);
    };
    if !encrypted {
        return Err(CallbackError::ModeMismatch {
            expected: settings.mode(),
            found: "plaintext",
        });
    }
    let presented = query
        .msg_signature
        .as_deref()
        .ok_or(CallbackError::MissingParam("msg_signature"))?;
    let encrypt = outer.text("Encrypt").ok_or(CallbackError::MissingEncrypt)?.trim_ascii();
    let expected = signature::msg_signature(settings.token(), signed.timestamp, signed.nonce, encrypt);
    signature::verify(&expected, presented).map_err(CallbackError::Signature)?;
    let message = crypto::decrypt(&cipher.key, &cipher.app_id, encrypt).map_err(CallbackError::Crypto)?;
    // In compatible mode the outer document also has plaintext fields; they are unauthenticated and ignored.
    xml::parse(&message).map_err(CallbackError::Xml)
}

/// [`open`], then maps the message onto a validated envelope; `now` is the request's arrival time.
pub fn decode(
    settings: &WechatSettings,
    query: &CallbackQuery,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Envelope, CallbackError> {
    let fields = open(settings, query, body, now.timestamp())?;
    let envelope = to_envelope(&fields, settings.account()).map_err(CallbackError::Fields)?;
    envelope.validate().map_err(CallbackError::Validation)?;
    Ok(envelope)
}

#[cfg(test)]
mod tests;
