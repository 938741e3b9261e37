//! Where a message came from. Carries what an adapter could not map, so nothing the source sent is lost.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The protocol a message arrived by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// The native REST API (`POST /v1/messages`).
    Rest,
    /// A WeChat Official Account callback.
    Wechat,
    /// The gRPC API.
    Grpc,
    /// The JSON-RPC 2.0 API.
    Jsonrpc,
    /// A configured legacy REST adapter.
    LegacyRest,
    /// The web channel: a visitor's browser over WebSocket, or Server-Sent Events and HTTP POST (`/web/…`).
    Web,
    /// The binlog importer.
    Import,
}

impl Protocol {
    /// The protocol's name as stored and serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rest => "rest",
            Self::Wechat => "wechat",
            Self::Grpc => "grpc",
            Self::Jsonrpc => "jsonrpc",
            Self::LegacyRest => "legacy_rest",
            Self::Web => "web",
            Self::Import => "import",
        }
    }
}

/// The origin of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Source {
    /// The protocol it arrived by.
    pub protocol: Protocol,
    /// The account or tenant at the source (a WeChat account name, a legacy adapter's name, an API client).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The source's own id for this message (WeChat `MsgId`, a helpdesk row id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// The original fields the adapter could not map to canonical fields, verbatim.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub raw: serde_json::Map<String, serde_json::Value>,
}

impl Source {
    /// A source with only the protocol known.
    pub fn new(protocol: Protocol) -> Self {
        Self {
            protocol,
            account: None,
            external_id: None,
            raw: serde_json::Map::new(),
        }
    }
}
