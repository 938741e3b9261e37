//! Triage as a destination: each inbound customer text message is triaged off the ingress path, behind its own
//! fuse. The outcome is stored on the message; a hand-off queues the conversation for a human (with the
//! department) and tells subscribers. If triage fails or its breaker is open, the message has still been routed
//! to every other destination of its routes (the default route): triage only adds, it never gates delivery.

use std::sync::Arc;

use async_trait::async_trait;
use protofuse_model::{Content, ConversationStatus, Direction, Message, Role, TriageDecision};
use protofuse_triage::{ConversationContext, Triage};

use super::destination::{Delivery, DeliveryError, Destination};
use crate::conversation::{Conversations, StatusError};
use protofuse_store::{Order, PageRequest, StatusChange, Store};

/// Messages of the conversation read to judge repeated complaints and bot failures.
const HISTORY: u32 = 20;

/// The triage destination.
pub struct TriageStep {
    triage: Arc<Triage>,
    store: Arc<dyn Store>,
    conversations: Conversations,
}

impl TriageStep {
    /// Triage with `triage`, recording into `store` and queueing hand-offs through `conversations`.
    pub fn new(triage: Arc<Triage>, store: Arc<dyn Store>, conversations: Conversations) -> Self {
        Self {
            triage,
            store,
            conversations,
        }
    }

    /// What earlier triage outcomes of this conversation say: the customer's intents, oldest first, and how
    /// often the bot could only suggest or give the default reply.
    async fn context(&self, message: &Message) -> Result<ConversationContext, DeliveryError> {
        let page = PageRequest {
            after: None,
            limit: HISTORY,
            order: Order::Descending,
        };
        let recent = self
            .store
            .messages(message.conversation_id, page)
            .await
            .map_err(|e| DeliveryError::Transient(format!("store: {e}")))?;
        let mut ctx = ConversationContext::default();
        for earlier in recent.items.iter().rev().filter(|m| m.id != message.id) {
            if let Some(outcome) = &earlier.triage {
                ctx.recent_intents.push(outcome.intent.clone());
                if matches!(outcome.decision, TriageDecision::Suggest | TriageDecision::DefaultReply) {
                    ctx.bot_failures += 1;
                }
            }
        }
        Ok(ctx)
    }
}

#[async_trait]
impl Destination for TriageStep {
    async fn deliver(&self, delivery: Delivery<'_>) -> Result<(), DeliveryError> {
        let message = delivery.message;
        let Content::Text { text } = &message.content else {
            return Ok(());
        };
        if message.direction != Direction::Inbound || message.sender.role != Role::Customer {
            return Ok(());
        }
        let ctx = self.context(message).await?;
        let outcome = self.triage.triage(text, &ctx).outcome();
        let transient = |e: &dyn std::fmt::Display| DeliveryError::Transient(format!("store: {e}"));
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
        };
        match self.conversations.change_status(message.conversation_id, change).await {
            Ok(_) | Err(StatusError::Closed(_) | StatusError::NotFound(_)) => Ok(()),
            Err(e) => Err(transient(&e)),
        }
    }
}
