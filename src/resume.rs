//! A conversation subscription resumed after a cursor: what gRPC `Subscribe` and JSON-RPC
//! `conversation.subscribe` serve when the client passes `after` (the id of the last message it saw). The
//! subscriber first gets every stored message of the conversation after the cursor, then live events, each
//! message once and in id order, on whichever node it connects to (the store is shared, and so is the bus in
//! cluster mode).
//!
//! The order of operations is the invariant: the bus subscription is opened **before** the store is read. A
//! message committed before the read is in the read; one committed after it has its event published after
//! its commit, so after the subscription began, and the subscription holds it. Nothing falls between the two.
//! A live message event is never sent as it arrives: it marks the store stale, and the store is read again
//! after the last id sent (as the web channel's feed does). So messages go out in id order even when two nodes'
//! events reach the bus in the other order, and an event for an id at or below the last one sent (already
//! read from the store) is dropped. When the bus reports lag, the store is read again, so lag costs no message
//! (the lag notice is still passed on: status changes may have been missed).
//!
//! Owns: the replay-then-live seam for one subscriber. Must never: send a message id at or below one it
//! already sent, or skip a message the store holds after the cursor. Writers of one conversation draw their ids
//! in commit order (the store locks the conversation first), so this holds on one node; across nodes it needs
//! their clocks to agree to within the time between two messages of one conversation (as for the web channel).

use std::collections::VecDeque;
use std::sync::Arc;

use protofuse_model::{ConversationId, Message, MessageId};
use protofuse_store::{Order, PageRequest};

use crate::events::{Event, EventFilter, Received, Subscription};
use crate::service::{Service, ServiceError};

/// Messages read from the store per read; a longer history arrives over several reads.
const BATCH: u32 = 200;

/// One subscriber's view of one conversation, resumed after a cursor.
pub struct Resumed {
    service: Service,
    subscription: Subscription,
    conversation: ConversationId,
    customer_id: String,
    /// The last message id handed out, or the cursor the client resumed after.
    last: MessageId,
    /// Read from the store, not handed out yet (ascending ids, all above `last`).
    pending: VecDeque<Message>,
    /// The store may hold messages after `last` that are not in `pending`.
    stale: bool,
}

impl Resumed {
    /// Subscribes to the bus for `conversation` (and `customer`, when the client also filters by it), then
    /// reads the conversation's messages after `after`. Fails like a read of the conversation: an unknown one is
    /// [`ServiceError::ConversationNotFound`]. The nil UUID as `after` replays the whole conversation.
    pub async fn open(
        service: Service,
        conversation: ConversationId,
        customer: Option<String>,
        after: MessageId,
    ) -> Result<Self, ServiceError> {
        // Before any read: from here on every committed message's event reaches this subscription.
        let subscription = service.subscribe(EventFilter {
            conversation_id: Some(conversation),
            customer_id: customer.clone(),
        });
        let customer_id = service.conversation(conversation).await?.customer_id;
        // A customer filter naming someone else matches none of this conversation's messages, stored or live.
        let replays = customer.as_deref().is_none_or(|c| c == customer_id);
        let mut resumed = Self {
            service,
            subscription,
            conversation,
            customer_id,
            last: after,
            pending: VecDeque::new(),
            stale: replays,
        };
        if replays {
            resumed.read_after().await?;
        }
        Ok(resumed)
    }

    /// The next stored message or live event; `None` once the bus is gone (shutdown). A failed store read ends
    /// the subscription with its error: the client resumes with its cursor.
    pub async fn next(&mut self) -> Option<Result<Received, ServiceError>> {
        loop {
            if let Some(message) = self.pending.pop_front() {
                self.last = message.id;
                return Some(Ok(Received::Event(Event::MessageStored {
                    message: Arc::new(message),
                    customer_id: self.customer_id.clone(),
                })));
            }
            if self.stale {
                if let Err(e) = self.read_after().await {
                    return Some(Err(e));
                }
                continue;
            }
            match self.subscription.next().await? {
                Received::Event(Event::MessageStored { message, .. }) => {
                    // At or below the last id sent: the store read already had it.
                    self.stale = message.id > self.last;
                }
                Received::Lagged(n) => {
                    self.stale = true;
                    return Some(Ok(Received::Lagged(n)));
                }
                other @ Received::Event(_) => return Some(Ok(other)),
            }
        }
    }

    /// One page of the conversation after `last` into `pending`; stays stale while the store has more.
    async fn read_after(&mut self) -> Result<(), ServiceError> {
        let page = PageRequest {
            after: Some(*self.last.as_uuid()),
            limit: BATCH,
            order: Order::Ascending,
        };
        let found = self.service.messages(self.conversation, page).await?;
        self.stale = found.next_cursor.is_some();
        self.pending.extend(found.items);
        Ok(())
    }
}

/// A subscription as the transports serve it: live events only, or resumed after a cursor.
pub enum Events {
    /// Live events from now on (no cursor).
    Live(Subscription),
    /// Stored messages after a cursor, then live events.
    Resumed(Box<Resumed>),
}

impl Events {
    /// The next event; `None` once the bus is gone. Only a resumed subscription can fail (its store reads).
    pub async fn next(&mut self) -> Option<Result<Received, ServiceError>> {
        match self {
            Self::Live(subscription) => subscription.next().await.map(Ok),
            Self::Resumed(resumed) => resumed.next().await,
        }
    }
}
