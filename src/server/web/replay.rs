//! [`Feed`]: what a visitor is sent, in sequence order, without loss or duplicates across reconnects and across
//! a switch between WebSocket and SSE.
//!
//! The sequence is the message id: UUIDv7, which the store already orders a conversation's messages by (the
//! index and the REST cursor use it), assigned by the store as it writes (ARCHITECTURE.md, "The web channel").
//! A feed opened with `after = s` first registers for prompts (`prompts.rs`: one per message stored for the
//! visitor from then on), then reads the store for the visitor's messages after `s`, and from then on reads the
//! store again after the last id it sent whenever it is prompted. So a message committed during the replay is
//! read by the prompt its event gives (or already by the replay; the second read then finds nothing), and
//! messages are always sent in id order even when events arrive out of order (two writers publish in whatever
//! order their tasks run). Prompts are never lost, and the bus falling behind prompts everyone, so no message
//! the store holds is skipped.
//!
//! Must never: send a message with an id at or below one it already sent, or skip one the store holds.

use protofuse_model::{Message, MessageId};
use protofuse_store::{ConversationFilter, Order, PageRequest};

use std::sync::Arc;

use super::inbound::CHANNEL;
use super::prompts::{Prompts, Registration};
use super::token::Visitor;
use crate::service::{Service, ServiceError};

/// The visitor's newest conversations on the site that are read; a visitor with more has older ones only in
/// the store (the API can page them), not in the chat window.
const CONVERSATIONS_READ: u32 = 50;
/// Messages read per conversation per store read; a longer history arrives over several batches.
const BATCH: u32 = 200;

/// One connection's view of a visitor's conversations.
pub(super) struct Feed {
    service: Service,
    visitor: Visitor,
    registration: Registration,
    /// The last id sent, or the one the client resumed after.
    cursor: Option<MessageId>,
    /// The store may hold messages after the cursor that were not sent yet.
    stale: bool,
}

impl Feed {
    /// Registers for prompts now, so nothing committed from here on can be missed; the replay happens on the
    /// first [`Feed::next`].
    pub(super) fn open(service: Service, prompts: &Arc<Prompts>, visitor: Visitor, after: Option<MessageId>) -> Self {
        let registration = prompts.register(&visitor.id);
        Self {
            service,
            visitor,
            registration,
            cursor: after,
            stale: true,
        }
    }

    /// The visitor this feed is for.
    pub(super) fn visitor(&self) -> &Visitor {
        &self.visitor
    }

    /// The next messages the visitor has not been sent, oldest first; waits for the bus when caught up.
    /// Cancel-safe: the cursor moves only when a batch is returned.
    pub(super) async fn next(&mut self) -> Result<Vec<Message>, ServiceError> {
        loop {
            if self.stale {
                // Boxed: the store read's state (several KiB of query futures) is allocated only while it
                // runs, not held by every idle connection waiting for a prompt (BENCHMARKS.md, "Idle web
                // visitors").
                let (batch, more) = Box::pin(self.read_after()).await?;
                self.stale = more;
                if let Some(last) = batch.last() {
                    self.cursor = Some(last.id);
                    return Ok(batch);
                }
            }
            self.registration.prompted().await;
            self.stale = true;
        }
    }

    /// The visitor's messages after the cursor, across their conversations on this site, in id order; `true`
    /// when a conversation had more than one batch (the rest comes next time).
    async fn read_after(&self) -> Result<(Vec<Message>, bool), ServiceError> {
        let filter = ConversationFilter {
            customer_id: Some(self.visitor.id.clone()),
            status: None,
        };
        let newest = PageRequest {
            after: None,
            limit: CONVERSATIONS_READ,
            order: Order::Descending,
        };
        let conversations = self.service.conversations(&filter, newest).await?;
        let mut messages = Vec::new();
        // With a conversation cut at its batch, nothing past its last read message may be sent yet: that
        // conversation's next messages come before it.
        let mut bound: Option<MessageId> = None;
        let visitors = conversations
            .items
            .iter()
            .filter(|c| c.channel == CHANNEL && c.account.as_deref() == Some(self.visitor.site.as_str()));
        for conversation in visitors {
            let page = PageRequest {
                after: self.cursor.map(|id| *id.as_uuid()),
                limit: BATCH,
                order: Order::Ascending,
            };
            let found = self.service.messages(conversation.id, page).await?;
            if found.next_cursor.is_some()
                && let Some(last) = found.items.last()
            {
                bound = Some(bound.map_or(last.id, |b| b.min(last.id)));
            }
            messages.extend(found.items);
        }
        messages.sort_by_key(|m| m.id);
        if let Some(bound) = bound {
            messages.retain(|m| m.id <= bound);
        }
        Ok((messages, bound.is_some()))
    }
}
