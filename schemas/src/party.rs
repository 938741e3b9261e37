//! Who sent a message.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The role a sender plays in a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The end customer (a WeChat follower, a web visitor, an app user).
    Customer,
    /// A human service agent.
    Agent,
    /// An automated responder (triage, knowledge base, LLM).
    Bot,
    /// The platform itself (notices, status changes).
    System,
}

impl Role {
    /// The role's name as stored and serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Agent => "agent",
            Self::Bot => "bot",
            Self::System => "system",
        }
    }
}

/// The sender of a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Party {
    /// The sender's role.
    pub role: Role,
    /// The sender's id at the source (WeChat OpenID, a CRM user id, an agent's login).
    pub external_id: String,
    /// A name to show, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}
