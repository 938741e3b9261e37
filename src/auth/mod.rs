//! Who may call the API: `[api]` keys (stored as digests), their scopes and rate limits, checked the same way
//! for REST, JSON-RPC (HTTP and WebSocket) and gRPC. Each transport extracts the presented key and maps an
//! [`AuthError`] to its protocol's refusal.

mod config;
mod keys;

pub use config::{ApiConfig, ApiKeyConfig, Scope};
pub use keys::{AuthError, Authenticator, Caller, digest_hex, presented};
