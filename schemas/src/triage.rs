//! What triage decided about one inbound message, as stored on the message.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What the platform does with the message after triage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TriageDecision {
    /// The bot answered from the knowledge base.
    BotAnswer,
    /// The bot suggested similar questions.
    Suggest,
    /// The bot gave the default reply.
    DefaultReply,
    /// A human takes over.
    Handoff,
}

/// Why a conversation was handed to a human.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HandoffReason {
    /// The customer asked for a person.
    Asked,
    /// The model was not confident enough and no knowledge-base answer fitted.
    LowConfidence,
    /// The message reads as angry.
    Angry,
    /// The customer complained repeatedly in this conversation.
    RepeatedComplaints,
    /// The bot already failed too often in this conversation.
    BotFailures,
}

/// The triage outcome stored on a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TriageOutcome {
    /// The intent id (e.g. `refund`).
    pub intent: String,
    /// Calibrated probability of the intent (1.0 when a rule decided it).
    pub confidence: f32,
    /// The department path (e.g. `after-sales/returns`).
    pub department: String,
    /// What happens next.
    pub decision: TriageDecision,
    /// Why a human takes over, for [`TriageDecision::Handoff`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff_reason: Option<HandoffReason>,
    /// `model`, or `rule:<id>` when a configured rule decided the intent or department.
    pub reason: String,
    /// The intent model's version.
    pub model_version: String,
}
