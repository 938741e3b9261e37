//! Loading the legacy REST adapter files named in `[legacy]` and the replay guard their HMAC callers need.
//!
//! The adapters themselves (mapping, charsets, auth checks, answers) are the pure `protofuse-legacy` crate;
//! this module does the I/O (reading files) and keeps the state (seen nonces) that a pure codec cannot.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use protofuse_legacy::LegacyAdapter;
use serde::Deserialize;
use tokio::time::Instant;

/// `[legacy]`: legacy REST dialects, one adapter file each (see `config/adapters/` and the README).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LegacyConfig {
    /// Adapter files to mount on the HTTP listener. Relative paths are relative to the directory of the
    /// configuration file naming them. None by default: every route a legacy system can call is opted into.
    pub adapters: Vec<std::path::PathBuf>,
}

/// Why the adapter files cannot be used: every problem, each naming its file, adapter and key.
#[derive(Debug, thiserror::Error)]
#[error("legacy adapters are invalid:\n{}", .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
pub struct AdapterFilesError(pub Vec<String>);

/// Reads and validates every adapter file; also refuses two adapters with the same name or route.
pub fn load_adapters(files: &[PathBuf]) -> Result<Vec<LegacyAdapter>, AdapterFilesError> {
    let mut problems = Vec::new();
    let mut adapters: Vec<LegacyAdapter> = Vec::new();
    for file in files {
        let shown = file.display();
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(e) => {
                problems.push(format!("{shown}: cannot read: {e}"));
                continue;
            }
        };
        match LegacyAdapter::from_toml(&text) {
            Ok(adapter) => {
                if let Some(other) = adapters.iter().find(|a| a.name() == adapter.name()) {
                    problems.push(format!("{shown}: name {:?} is already used", other.name()));
                } else if adapters
                    .iter()
                    .any(|a| a.path() == adapter.path() && a.method() == adapter.method())
                {
                    problems.push(format!(
                        "{shown}: route {} {} is already mounted",
                        adapter.method(),
                        adapter.path()
                    ));
                } else {
                    adapters.push(adapter);
                }
            }
            Err(issues) => {
                let name = toml_name(&text);
                problems.extend(issues.into_iter().map(|i| format!("{shown} (adapter {name}): {i}")));
            }
        }
    }
    if problems.is_empty() {
        Ok(adapters)
    } else {
        Err(AdapterFilesError(problems))
    }
}

fn toml_name(text: &str) -> String {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("name").and_then(|r| r.trim().strip_prefix('=')))
        .map_or_else(|| "?".to_owned(), |v| v.trim().trim_matches(['"', '\'']).to_owned())
}

/// Remembers HMAC nonces for their window so a captured request cannot be replayed.
#[derive(Debug, Default)]
pub struct NonceGuard {
    seen: Mutex<HashMap<String, Instant>>,
}

/// Nonces remembered at most; beyond it the oldest are forgotten early rather than memory growing without bound.
const MAX_NONCES: usize = 100_000;
/// Longest nonce accepted: far above the 16–64 characters signers use, so the memory of nonces is bounded in
/// bytes (at most about 13 MB), not only in count.
pub const MAX_NONCE_BYTES: usize = 128;

impl NonceGuard {
    /// `true` the first time `nonce` is offered within `window`; `false` for a replay, and for a nonce longer
    /// than [`MAX_NONCE_BYTES`] (never remembered).
    pub fn first_use(&self, nonce: &str, window: Duration) -> bool {
        if nonce.len() > MAX_NONCE_BYTES {
            return false;
        }
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.get(nonce).is_some_and(|expires| *expires > now) {
            return false;
        }
        if seen.len() >= MAX_NONCES {
            seen.retain(|_, expires| *expires > now);
            if seen.len() >= MAX_NONCES
                && let Some(oldest) = seen.iter().min_by_key(|(_, e)| **e).map(|(k, _)| k.clone())
            {
                seen.remove(&oldest);
            }
        }
        // A timestamp may be up to `window` in the past or the future, so a nonce must outlive twice that.
        seen.insert(nonce.to_owned(), now + window * 2);
        true
    }
}

/// Why an outbound webhook could not be delivered.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// The adapter's method is not an HTTP method.
    #[error("invalid HTTP method {0:?}")]
    Method(String),
    /// Connecting, sending or reading the answer failed (or timed out).
    #[error("webhook transport failed")]
    Transport(#[source] reqwest::Error),
    /// The backend answered with a non-2xx status.
    #[error("webhook answered {0}")]
    Status(u16),
}

/// Sends a rendered outbound request as is: exactly the rendered bytes and headers, so the backend's signature
/// check sees what was signed. Delivery policy (breaker, retries, outbox) belongs to the caller.
pub async fn send_outbound(
    client: &reqwest::Client,
    request: &protofuse_legacy::OutboundRequest,
    timeout: Duration,
) -> Result<u16, OutboundError> {
    let method = reqwest::Method::from_bytes(request.method.as_bytes())
        .map_err(|_| OutboundError::Method(request.method.clone()))?;
    let mut builder = client
        .request(method, &request.url)
        .timeout(timeout)
        .body(request.body.clone());
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    let response = builder
        .send()
        .await
        .map_err(|e| OutboundError::Transport(crate::redact::reqwest_error(e)))?;
    let status = response.status().as_u16();
    if response.status().is_success() {
        Ok(status)
    } else {
        Err(OutboundError::Status(status))
    }
}
