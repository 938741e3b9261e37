//! Conversation rules: which status moves are allowed (closed is final) and who hears of them. The one place
//! these rules live: the application service (an agent's move through any protocol) and the triage step (a
//! hand-off) both call [`Conversations::change_status`].
//!
//! Owns the rule and the `StatusChanged` event; must never decide *why* a conversation moves (transports and
//! triage do) or write the store by itself beyond the move it was asked for.

use std::sync::Arc;

use protofuse_model::{Conversation, ConversationId, ConversationStatus};
use protofuse_store::{StatusChange, Store, StoreError};

use crate::events::{Event, EventBus};

/// Why a status change was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StatusError {
    /// The conversation does not exist.
    #[error("conversation {0} not found")]
    NotFound(ConversationId),
    /// A closed conversation never changes again (the customer's next message opens a new one).
    #[error("conversation {0} is closed")]
    Closed(ConversationId),
    /// The store failed; retry later.
    #[error("the conversation store is unavailable")]
    Store(#[from] StoreError),
}

/// The status rule: any move is allowed except out of `closed`.
pub fn allowed(current: ConversationStatus) -> bool {
    current != ConversationStatus::Closed
}

/// Whether a move from `before` to `after` is news for subscribers: a move to the same status only updates
/// department and agent, and publishes nothing.
pub fn is_transition(before: ConversationStatus, after: ConversationStatus) -> bool {
    before != after
}

/// Status changes over a store, announced on an event bus. Cheap to clone.
#[derive(Clone)]
pub struct Conversations {
    store: Arc<dyn Store>,
    events: EventBus,
}

impl Conversations {
    /// Moves conversations of `store`, telling `events`' subscribers.
    pub fn new(store: Arc<dyn Store>, events: EventBus) -> Self {
        Self { store, events }
    }

    /// Moves a conversation to a new status (bot → queued on hand-off, → assigned when an agent takes it,
    /// → closed), setting department and agent where given, and publishes `StatusChanged` when the status
    /// actually changed.
    pub async fn change_status(&self, id: ConversationId, change: StatusChange) -> Result<Conversation, StatusError> {
        let current = self.store.conversation(id).await?.ok_or(StatusError::NotFound(id))?;
        if !allowed(current.status) {
            return Err(StatusError::Closed(id));
        }
        let (before, after) = self
            .store
            .change_status(id, &change, chrono::Utc::now())
            .await?
            .ok_or(StatusError::NotFound(id))?;
        if is_transition(before.status, after.status) {
            tracing::info!(conversation = %id, from = before.status.as_str(), to = after.status.as_str(), "conversation status changed");
            self.events
                .publish(Event::StatusChanged {
                    conversation_id: id,
                    customer_id: after.customer_id.clone(),
                    from: before.status,
                    to: after.status,
                })
                .await;
        }
        Ok(after)
    }
}

#[cfg(test)]
mod tests {
    use protofuse_model::ConversationStatus::{Assigned, Bot, Closed, Queued};

    use super::*;

    #[test]
    fn closed_is_final_and_every_other_move_is_allowed() {
        for (from, ok) in [(Bot, true), (Queued, true), (Assigned, true), (Closed, false)] {
            assert_eq!(allowed(from), ok, "from {from:?}");
        }
    }

    #[test]
    fn only_a_real_move_is_announced() {
        let table = [
            (Bot, Queued, true),
            (Queued, Assigned, true),
            (Assigned, Closed, true),
            (Bot, Closed, true),
            (Queued, Queued, false),
            (Assigned, Assigned, false),
        ];
        for (before, after, news) in table {
            assert_eq!(is_transition(before, after), news, "{before:?} → {after:?}");
        }
    }
}
