//! Caller authentication for legacy adapters: none (loopback integrations), a static API key in a header, or
//! an HMAC-SHA256 signature with a timestamp and a nonce.
//!
//! The HMAC canonical string is, with `\n` between the lines and no trailing newline:
//! ```text
//! METHOD            e.g. POST
//! PATH              the request path, without the query string
//! TIMESTAMP         the X-Timestamp header, Unix seconds, as sent
//! NONCE             the X-Nonce header, as sent
//! SHA256(body)      lower-case hex
//! ```
//! and the signature header carries lower-case hex of `HMAC-SHA256(secret, canonical)`. This module checks the
//! signature and the timestamp window; remembering nonces (replays within the window) needs state and is the
//! caller's job: [`verify`] returns the nonce to remember.

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// How callers of an adapter prove who they are.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthConfig {
    /// Anyone who can reach the route (bind it to loopback or a private network).
    None,
    /// A static key in a header.
    ApiKey {
        /// The header, e.g. `X-Api-Key`.
        header: String,
        /// Accepted keys (several, so keys can be rotated without downtime).
        keys: Vec<String>,
    },
    /// HMAC-SHA256 over the canonical string above.
    Hmac {
        /// The shared secret.
        secret: String,
        /// How far the timestamp may be from now, either way; nonces are remembered this long.
        #[serde(with = "humantime_secs", default = "default_window")]
        window: Duration,
        /// Header with the hex signature.
        #[serde(default = "default_signature_header")]
        signature_header: String,
        /// Header with Unix seconds.
        #[serde(default = "default_timestamp_header")]
        timestamp_header: String,
        /// Header with a unique string per request.
        #[serde(default = "default_nonce_header")]
        nonce_header: String,
    },
}

fn default_window() -> Duration {
    Duration::from_secs(300)
}
fn default_signature_header() -> String {
    "X-Signature".to_owned()
}
fn default_timestamp_header() -> String {
    "X-Timestamp".to_owned()
}
fn default_nonce_header() -> String {
    "X-Nonce".to_owned()
}

/// Seconds as an integer in configuration (`window = 300`), to keep this crate free of a duration-text parser.
mod humantime_secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

/// Why a caller was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// A required header is absent or not text.
    #[error("missing {0} header")]
    MissingHeader(String),
    /// The key or signature does not match.
    #[error("bad credentials")]
    Mismatch,
    /// The timestamp is not a number or outside the window.
    #[error("timestamp outside the accepted window")]
    Stale,
}

/// What a request offers for checking.
#[derive(Debug, Clone, Copy)]
pub struct Presented<'a> {
    /// The request method.
    pub method: &'a str,
    /// The request path, without the query string.
    pub path: &'a str,
    /// The body bytes as received.
    pub body: &'a [u8],
    /// Unix seconds now.
    pub now: i64,
}

/// Checks `request` against `config`; `header` looks up a request header by name (case-insensitive). Returns
/// the nonce the caller must remember for the window (HMAC only) so a replay is refused.
pub fn verify<'h>(
    config: &AuthConfig,
    request: Presented<'_>,
    header: impl Fn(&str) -> Option<&'h str>,
) -> Result<Option<String>, AuthError> {
    let required = |name: &str| header(name).ok_or_else(|| AuthError::MissingHeader(name.to_owned()));
    match config {
        AuthConfig::None => Ok(None),
        AuthConfig::ApiKey { header: name, keys } => {
            let presented = required(name)?.as_bytes();
            let ok = keys
                .iter()
                .fold(false, |ok, key| ok | bool::from(key.as_bytes().ct_eq(presented)));
            if ok { Ok(None) } else { Err(AuthError::Mismatch) }
        }
        AuthConfig::Hmac {
            secret,
            window,
            signature_header,
            timestamp_header,
            nonce_header,
        } => {
            let timestamp = required(timestamp_header)?;
            let nonce = required(nonce_header)?;
            let signature = required(signature_header)?;
            let sent: i64 = timestamp.trim().parse().map_err(|_| AuthError::Stale)?;
            if sent.abs_diff(request.now) > window.as_secs() {
                return Err(AuthError::Stale);
            }
            let expected = sign(secret, request.method, request.path, timestamp, nonce, request.body);
            if bool::from(
                expected
                    .as_bytes()
                    .ct_eq(signature.trim().to_ascii_lowercase().as_bytes()),
            ) {
                Ok(Some(nonce.to_owned()))
            } else {
                Err(AuthError::Mismatch)
            }
        }
    }
}

/// The lower-case hex HMAC-SHA256 signature of a request (used to verify inbound and sign outbound calls).
pub fn sign(secret: &str, method: &str, path: &str, timestamp: &str, nonce: &str, body: &[u8]) -> String {
    let body_hash = hex(&Sha256::digest(body));
    let canonical = format!("{method}\n{path}\n{timestamp}\n{nonce}\n{body_hash}");
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(canonical.as_bytes());
    hex(&mac.finalize().into_bytes())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hmac_config() -> AuthConfig {
        toml::from_str::<AuthConfig>("kind = \"hmac\"\nsecret = \"s3cret\"\nwindow = 300").unwrap()
    }

    fn lookup<'h>(headers: &'h [(&'static str, String)]) -> impl Fn(&str) -> Option<&'h str> {
        move |name| headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn hmac_accepts_valid_and_refuses_tampering_and_staleness() {
        let config = hmac_config();
        let sig = sign("s3cret", "POST", "/legacy/crm", "1700000000", "n1", b"{}");
        let headers = [
            ("X-Timestamp", "1700000000".to_owned()),
            ("X-Nonce", "n1".to_owned()),
            ("X-Signature", sig),
        ];
        let request = Presented {
            method: "POST",
            path: "/legacy/crm",
            body: b"{}",
            now: 1_700_000_100,
        };
        assert_eq!(verify(&config, request, lookup(&headers)), Ok(Some("n1".to_owned())));
        let tampered = Presented {
            body: b"{\"x\":1}",
            ..request
        };
        assert_eq!(verify(&config, tampered, lookup(&headers)), Err(AuthError::Mismatch));
        let late = Presented {
            now: 1_700_000_301,
            ..request
        };
        assert_eq!(verify(&config, late, lookup(&headers)), Err(AuthError::Stale));
        assert!(matches!(
            verify(&config, request, lookup(&headers[..2])),
            Err(AuthError::MissingHeader(_))
        ));
    }

    #[test]
    fn api_key_checks_every_configured_key() {
        let config = AuthConfig::ApiKey {
            header: "X-Api-Key".into(),
            keys: vec!["old".into(), "new".into()],
        };
        let request = Presented {
            method: "POST",
            path: "/",
            body: b"",
            now: 0,
        };
        assert_eq!(verify(&config, request, |_| Some("new")), Ok(None));
        assert_eq!(verify(&config, request, |_| Some("nope")), Err(AuthError::Mismatch));
        assert!(matches!(
            verify(&config, request, |_| None),
            Err(AuthError::MissingHeader(_))
        ));
    }
}
