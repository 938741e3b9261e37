//! `[api]`: where the API (`/v1`, `/rpc`) listens and who may call it: API keys, stored as SHA-256 digests, each
//! with scopes and a rate limit. gRPC takes the same keys.
//!
//! Owns the section and its rules; must never hold a key in clear (only digests are configured).

use std::net::SocketAddr;

use serde::Deserialize;

use crate::config::ConfigIssue;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Read conversations and messages; subscribe to events.
    Read,
    /// Send messages and change conversations.
    Write,
    /// The admin API (destinations, breakers, dead letters).
    Admin,
}

impl Scope {
    /// The scope's name, as configured.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Admin => "admin",
        }
    }
}

/// `[api]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Where `/v1` and `/rpc` are served. Unset: on `[server] listen`, beside the public routes (`/wechat`,
    /// the legacy adapters), which is fine on loopback; set it to keep the API off the public listener.
    pub listen: Option<SocketAddr>,
    /// The keys that may call the API (REST, JSON-RPC over HTTP and WebSocket, gRPC). None: no authentication,
    /// allowed only while every API listener is on a loopback address.
    pub keys: Vec<ApiKeyConfig>,
    /// Requests per second each key may make, unless the key says otherwise.
    pub rate_per_second: u32,
    /// Requests a key may make at once above its rate (a burst), unless the key says otherwise.
    pub burst: u32,
}

/// A backend posting chat traffic makes tens of requests a second; 100 leaves room without letting one leaked
/// key flood the store.
const DEFAULT_RATE_PER_SECOND: u32 = 100;
/// Two seconds' worth: a reconnecting client replaying its backlog is not refused at once.
const DEFAULT_BURST: u32 = 200;

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: None,
            keys: Vec::new(),
            rate_per_second: DEFAULT_RATE_PER_SECOND,
            burst: DEFAULT_BURST,
        }
    }
}

/// `[[api.keys]]`: one caller's key. `protofuse api-key new` prints a fresh key and this entry.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// Names the caller in logs and metrics (never the key itself).
    pub id: String,
    /// The SHA-256 of the key, 64 hex digits.
    pub sha256: String,
    /// What the key may do.
    pub scopes: Vec<Scope>,
    /// This key's own rate, requests per second.
    #[serde(default)]
    pub rate_per_second: Option<u32>,
    /// This key's own burst.
    #[serde(default)]
    pub burst: Option<u32>,
}

impl std::fmt::Debug for ApiKeyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyConfig")
            .field("id", &self.id)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

impl ApiConfig {
    /// Every broken rule of `[api]`.
    pub(crate) fn issues(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        if self.rate_per_second == 0 {
            issues.push(ConfigIssue::new("api.rate_per_second", "must be at least 1"));
        }
        if self.burst == 0 {
            issues.push(ConfigIssue::new("api.burst", "must be at least 1"));
        }
        for (i, key) in self.keys.iter().enumerate() {
            let at = |field: &str| format!("api.keys[{i}].{field}");
            if key.id.is_empty() || self.keys[..i].iter().any(|k| k.id == key.id) {
                issues.push(ConfigIssue::new(at("id"), "must be non-empty and unique"));
            }
            if key.sha256.len() != 64 || !key.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                issues.push(ConfigIssue::new(
                    at("sha256"),
                    "must be the key's SHA-256 as 64 hex digits (`protofuse api-key new` prints one)",
                ));
            } else if self.keys[..i]
                .iter()
                .any(|k| k.sha256.eq_ignore_ascii_case(&key.sha256))
            {
                issues.push(ConfigIssue::new(at("sha256"), "is the digest of an earlier key"));
            }
            if key.scopes.is_empty() {
                issues.push(ConfigIssue::new(
                    at("scopes"),
                    "must name at least one of read, write, admin",
                ));
            }
            if key.rate_per_second == Some(0) || key.burst == Some(0) {
                issues.push(ConfigIssue::new(
                    at("rate_per_second"),
                    "rate and burst must be at least 1",
                ));
            }
        }
        issues
    }
}
