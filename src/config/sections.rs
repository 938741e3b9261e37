//! [`Config`]: the whole configuration, one field per component's section. Each section's type lives next to
//! its component; this file only gathers them.

use serde::Deserialize;

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The HTTP listener.
    pub server: crate::server::ServerConfig,
    /// The conversation store.
    pub store: protofuse_store::StoreConfig,
    /// Logging.
    pub log: crate::telemetry::LogConfig,
    /// Legacy REST adapters.
    pub legacy: crate::legacy::LegacyConfig,
    /// The API's listener and who may call it.
    pub api: crate::auth::ApiConfig,
    /// The gRPC listener.
    pub grpc: crate::server::GrpcConfig,
    /// JSON-RPC 2.0 at `/rpc` on the HTTP listener.
    pub jsonrpc: crate::server::JsonRpcConfig,
    /// The admin listener (health and metrics).
    pub admin: crate::server::AdminConfig,
    /// WeChat Official Accounts on `/wechat/{account}`.
    pub wechat: crate::wechat::WechatSection,
    /// The dispatcher: destinations, their fuses and routes.
    pub dispatch: crate::dispatch::DispatchConfig,
    /// Built-in triage: intent model, rules, routing, knowledge base, hand-off.
    pub triage: protofuse_triage::TriageConfig,
    /// The web channel: visitors on a site's page over WebSocket, or SSE plus POST (`/web/…`).
    pub web: crate::server::web::WebConfig,
    /// Cluster mode: several nodes on one MySQL/MariaDB store and NATS JetStream; off when unset.
    pub cluster: Option<crate::cluster::ClusterConfig>,
}

impl Config {
    /// `true` when a WeChat account, the web channel or a dispatch destination uses built-in triage, which is
    /// then loaded at start.
    pub fn wants_triage(&self) -> bool {
        self.wechat.accounts.iter().any(|a| a.triage)
            || (self.web.enabled && self.web.triage)
            || self
                .dispatch
                .destinations
                .iter()
                .any(|d| d.kind == crate::dispatch::DestinationKind::Triage)
    }
}
