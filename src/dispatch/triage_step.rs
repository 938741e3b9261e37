//! Triage as a destination: each inbound customer text message is triaged off the ingress path, behind its own
//! fuse, with the same decision a WeChat responder got for it (`crate::decisions`). The outcome is stored on the message; a hand-off queues the conversation for a human (with the
//! department) and tells subscribers. If triage fails or its breaker is open, the message has still been routed
//! to every other destination of its routes (the default route): triage only adds, it never gates delivery.

use std::sync::Arc;

use async_trait::async_trait;
use protofuse_model::{ConversationStatus, Direction, Role, TriageDecision};
use protofuse_store::{StatusChange, Store};

use super::destination::{Delivery, DeliveryError, Destination};
use crate::conversation::{Conversations, StatusError};
use crate::decisions::Decisions;

/// The triage destination.
pub struct TriageStep {
    decisions: Arc<Decisions>,
    store: Arc<dyn Store>,
    conversations: Conversations,
}

impl TriageStep {
    /// Records the decisions of `decisions` into `store` and queues hand-offs through `conversations`.
    pub fn new(decisions: Arc<Decisions>, store: Arc<dyn Store>, conversations: Conversations) -> Self {
        Self {
            decisions,
            store,
            conversations,
        }
    }
}

#[async_trait]
impl Destination for TriageStep {
    async fn deliver(&self, delivery: Delivery<'_>) -> Result<(), DeliveryError> {
        let message = delivery.message;
        let Some(text) = crate::decisions::triageable(message) else {
            return Ok(());
        };
        if message.direction != Direction::Inbound || message.sender.role != Role::Customer {
            return Ok(());
        }
        let transient = |e: &dyn std::fmt::Display| DeliveryError::Transient(format!("store: {e}"));
        // A redelivery (after a crash) finds the outcome already stored: the decision stays the one made.
        let outcome = match &message.triage {
            Some(stored) => stored.clone(),
            None => self
                .decisions
                .decide(message, text)
                .await
                .map_err(|e| transient(&e))?
                .outcome(),
        };
        self.store
            .set_triage(message.id, &outcome)
            .await
            .map_err(|e| transient(&e))?;
        if outcome.decision != TriageDecision::Handoff {
            return Ok(());
        }
        let conversation = self
            .store
            .conversation(message.conversation_id)
            .await
            .map_err(|e| transient(&e))?;
        // Only a bot-handled conversation is queued: one already queued or with an agent stays where it is.
        if conversation.is_none_or(|c| c.status != ConversationStatus::Bot) {
            return Ok(());
        }
        let change = StatusChange {
            status: ConversationStatus::Queued,
            department: Some(outcome.department.clone()),
            assigned_agent: None,
            if_assignee: None,
        };
        match self.conversations.change_status(message.conversation_id, change).await {
            Ok(_) | Err(StatusError::Closed(_) | StatusError::NotFound(_)) => Ok(()),
            Err(e) => Err(transient(&e)),
        }
    }
}
