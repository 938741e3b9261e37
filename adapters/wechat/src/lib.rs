//! The WeChat Official Account passive-callback protocol, as a pure codec.
//!
//! WeChat POSTs XML to the account's callback URL (signed in the query; encrypted with AES in compatible and
//! safe mode) and accepts a passive reply in the response. This crate turns such a request into the canonical
//! [`protofuse_model::Envelope`] and renders replies. The protocol itself is summarised in
//! `shared/wechat/PROTOCOL.md`; the vectors it is tested against are copied in `tests/vectors/`.
//!
//! # Layout
//! - [`config`]: one account's settings ([`WechatConfig`] → [`WechatSettings`]).
//! - [`signature`]: `signature` / `msg_signature`, constant-time comparison, replay window.
//! - [`crypto`]: the AES-256-CBC frame (`random16 ‖ len ‖ msg ‖ appid`, PKCS#7 to 32 bytes).
//! - [`xml`]: hostile-input-safe parsing of callback XML into [`Fields`].
//! - [`decode`]: [`Fields`] → [`protofuse_model::Envelope`], idempotency key, `Source::raw`.
//! - [`callback`]: the order of checks for one request, and the GET URL verification.
//! - [`reply`]: passive reply XML and `success`.
//! - [`secure`]: the encrypted reply envelope.
//! - [`custom`]: the customer-service message body (`message/custom/send`), the one builder of it.
//! - [`classify`]: callback failures as the shared refusal classes (no decryption oracle).
//!
//! # Invariants
//! - No I/O, no clock, no randomness: the time, the 16-byte random prefix and the reply nonce are arguments.
//! - Nothing is parsed before the query `signature` holds; nothing is decrypted before `msg_signature` holds.
//! - No DOCTYPE, no entity expansion, bounded sizes; no input makes this crate panic.
//! - Unknown message types and events are decoded (as [`protofuse_model::Content::Event`]), never refused, and
//!   every field that is not reproduced exactly by a canonical field is kept verbatim in `Source::raw`.
//!
//! # Not here
//! Sending customer-service messages and `access_token` handling need HTTP and shared state, so they belong to
//! the application's `wechat_kf` destination; this codec only builds the body ([`custom`]). Deduplication is ingest's job:
//! [`decode`] supplies the idempotency key and the transport acknowledges duplicates with `success`.

pub mod callback;
pub mod classify;
pub mod config;
pub mod crypto;
pub mod custom;
pub mod decode;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod reply;
pub mod secure;
pub mod signature;
pub mod xml;

#[cfg(test)]
mod vectors;

pub use callback::{CallbackError, CallbackQuery};
pub use config::{Cipher, ConfigIssue, Mode, WechatConfig, WechatSettings};
pub use crypto::{AesKey, CryptoError};
pub use decode::{CHANNEL, FieldError};
pub use reply::{Article, Reply, ReplyBody, ReplyError, SUCCESS};
pub use secure::SealError;
pub use signature::SignatureError;
pub use xml::{Fields, Node, XmlError};
