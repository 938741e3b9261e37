//! A conversation: one customer on one channel, from the first message until it is closed.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{ConversationId, Timestamp};

/// Where a conversation is in its life. Moves bot → queued → assigned → closed; a new inbound message after
/// `closed` opens a new conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConversationStatus {
    /// Handled by the bot (the default for a new conversation).
    #[default]
    Bot,
    /// Waiting for a human agent.
    Queued,
    /// A human agent has it.
    Assigned,
    /// Finished.
    Closed,
}

impl ConversationStatus {
    /// All statuses, in lifecycle order.
    pub const ALL: [Self; 4] = [Self::Bot, Self::Queued, Self::Assigned, Self::Closed];

    /// The status's name as stored and serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bot => "bot",
            Self::Queued => "queued",
            Self::Assigned => "assigned",
            Self::Closed => "closed",
        }
    }

    /// Parses the stored/serialized name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// A conversation between a customer and the platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Conversation {
    /// Time-ordered id.
    pub id: ConversationId,
    /// The channel it runs on (`wechat`, `web`, `api`, ...).
    pub channel: String,
    /// The account or tenant at the source, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The customer's id at the source (e.g. WeChat OpenID).
    pub customer_id: String,
    /// Where it is in its life.
    pub status: ConversationStatus,
    /// The department handling it (a path such as `after-sales/returns`), once routed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    /// The human agent it is assigned to, when assigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_agent: Option<String>,
    /// When it was opened.
    pub created_at: Timestamp,
    /// When it last changed (a message or a status change).
    pub updated_at: Timestamp,
}
