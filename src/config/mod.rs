//! Configuration: one TOML file (`config/default.toml` runs as shipped), every key overridable by an
//! environment variable `PROTOFUSE__SECTION__KEY`, validated before anything starts.
//!
//! Parsing ([`load`]) and validation ([`Config::validate`]) are separate: validation is pure and reports every
//! problem at once, each naming its key, so `protofuse check-config` and start-up give the same answer.

mod dispatch;
mod load;
mod rpc;
mod validate;

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

pub use dispatch::{
    BreakerSettings, DestinationConfig, DestinationKind, DispatchConfig, FuseSettings, RetrySettings, RouteConfig,
};
pub use load::{ConfigError, ENV_PREFIX, load};
pub use rpc::{AdminConfig, GrpcConfig, JsonRpcConfig};
pub use validate::ConfigIssue;

use crate::store::Synchronous;
use crate::telemetry::LogFormat;

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The HTTP listener.
    pub server: ServerConfig,
    /// The conversation store.
    pub store: StoreConfig,
    /// Logging.
    pub log: LogConfig,
    /// Legacy REST adapters.
    pub legacy: LegacyConfig,
    /// The gRPC listener.
    pub grpc: GrpcConfig,
    /// JSON-RPC 2.0 at `/rpc` on the HTTP listener.
    pub jsonrpc: JsonRpcConfig,
    /// The admin listener (health and metrics).
    pub admin: AdminConfig,
    /// WeChat Official Accounts on `/wechat/{account}`.
    pub wechat: crate::wechat::WechatSection,
    /// The dispatcher: destinations, their fuses and routes.
    pub dispatch: DispatchConfig,
    /// Built-in triage: intent model, rules, routing, knowledge base, hand-off (its section type and validation
    /// live in `protofuse_triage`, next to the code).
    pub triage: protofuse_triage::TriageConfig,
}

/// `[legacy]`: legacy REST dialects, one adapter file each (see `config/adapters/` and the README).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LegacyConfig {
    /// Adapter files to mount on the HTTP listener. Relative paths are relative to the directory of the
    /// configuration file naming them. None by default: every route a legacy system can call is opted into.
    pub adapters: Vec<std::path::PathBuf>,
}

/// `[server]`: the HTTP listener serving the REST API, health and metrics.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on. Loopback by default: exposing it is a deliberate choice.
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes; larger bodies get 413.
    pub body_limit_bytes: usize,
    /// Longest a request may take end to end before it is answered 503.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// On SIGINT/SIGTERM, how long in-flight requests may take to finish before the process exits anyway.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
}

/// 1 MiB: far above any chat message, small enough that a flood of large bodies cannot exhaust memory.
pub const DEFAULT_BODY_LIMIT_BYTES: usize = 1024 * 1024;
/// Below the 30 s that most HTTP clients and proxies give up at, above any healthy store write.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Within the 30 s that orchestrators usually wait between SIGTERM and SIGKILL.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(15);

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            body_limit_bytes: DEFAULT_BODY_LIMIT_BYTES,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
        }
    }
}

/// `[store]`: where conversations and messages are kept.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite://data/protofuse.db` (relative to the working directory) or `mysql://user:pass@host:3306/db`.
    pub url: String,
    /// Connection pool size (SQLite: readers; there is always exactly one writer).
    pub max_connections: u32,
    /// How long a request waits for a free connection before failing with 503.
    #[serde(with = "humantime_serde")]
    pub acquire_timeout: Duration,
    /// SQLite only: `full` (fsync every commit; survives power loss) or `normal` (survives process crashes).
    pub sqlite_synchronous: Synchronous,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://data/protofuse.db".to_owned(),
            max_connections: 8,
            acquire_timeout: Duration::from_secs(5),
            sqlite_synchronous: Synchronous::Full,
        }
    }
}

/// `[log]`: what is logged and how.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` (human-readable) or `json` (one object per line).
    pub format: LogFormat,
    /// Which events to log, in `RUST_LOG` syntax.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            filter: "info,sqlx=warn".to_owned(),
        }
    }
}
