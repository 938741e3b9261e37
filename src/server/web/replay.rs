//! [`Feed`]: what a visitor is sent, in sequence order, without loss or duplicates across reconnects and across
//! a switch between WebSocket and SSE.
//!
//! The sequence is the message id: UUIDv7, which the store already orders a conversation's messages by (the
//! index and the REST cursor use it), assigned by the store as it writes (ARCHITECTURE.md, "The web channel").
//! A feed opened with `after = s` first subscribes to the event bus, then reads the store for the visitor's
//! messages after `s`, and from then on treats each event about the visitor as a prompt to read the store again
//! after the last id it sent. So an event already covered by the replay (id ≤ the cursor) is dropped unread, a
//! message committed during the replay is read by the prompt its event gives, and messages are always sent in
//! id order even when events arrive out of order (two writers publish in whatever order their tasks run). A
//! feed that falls behind the bus (`Lagged`) reads the store once more instead of losing what it missed.
//!
//! Must never: send a message with an id at or below one it already sent, or skip one the store holds.

use protofuse_model::{Message, MessageId};
use protofuse_store::{ConversationFilter, Order, PageRequest};

use super::inbound::CHANNEL;
use super::token::Visitor;
use crate::events::{Event, EventFilter, Received, Subscription};
use crate::service::{Service, ServiceError};

/// The visitor's newest conversations on the site that are read; a visitor with more has older ones only in
/// the store (the API can page them), not in the chat window.
const CONVERSATIONS_READ: u32 = 50;
/// Messages read per conversation per store read; a longer history arrives over several batches.
const BATCH: u32 = 200;

/// Why a feed ended.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(super) enum FeedError {
    /// The event bus is gone: the server is shutting down.
    #[error("the server is shutting down")]
    Closed,
    /// The store could not be read.
    #[error(transparent)]
    Service(#[from] ServiceError),
}

/// One connection's view of a visitor's conversations.
pub(super) struct Feed {
    service: Service,
    visitor: Visitor,
    subscription: Subscription,
    /// The last id sent, or the one the client resumed after.
    cursor: Option<MessageId>,
    /// The store may hold messages after the cursor that were not sent yet.
    stale: bool,
}

impl Feed {
    /// Subscribes now, so nothing committed from here on can be missed; the replay happens on the first
    /// [`Feed::next`].
    pub(super) fn open(service: Service, visitor: Visitor, after: Option<MessageId>) -> Self {
        let subscription = service.subscribe(EventFilter {
            conversation_id: None,
            customer_id: Some(visitor.id.clone()),
        });
        Self {
            service,
            visitor,
            subscription,
            cursor: after,
            stale: true,
        }
    }

    /// The next messages the visitor has not been sent, oldest first; waits for the bus when caught up.
    /// Cancel-safe: the cursor moves only when a batch is returned.
    pub(super) async fn next(&mut self) -> Result<Vec<Message>, FeedError> {
        loop {
            if self.stale {
                let (batch, more) = self.read_after().await?;
                self.stale = more;
                if let Some(last) = batch.last() {
                    self.cursor = Some(last.id);
                    return Ok(batch);
                }
            }
            match self.subscription.next().await {
                None => return Err(FeedError::Closed),
                Some(Received::Lagged(_)) => self.stale = true,
                Some(Received::Event(Event::MessageStored { message, .. })) => {
                    if self.cursor.is_none_or(|sent| message.id > sent) {
                        self.stale = true;
                    }
                }
                Some(Received::Event(_)) => {}
            }
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
