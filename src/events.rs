//! The conversation event bus: what happened to conversations (a message stored, a status changed), fanned out
//! to live subscribers on every protocol (gRPC `Subscribe`, JSON-RPC `conversation.subscribe`, the web channel).
//! In cluster mode (`crate::cluster`) events go through JetStream, so every node's subscribers hear every
//! node's events; subscribing is the same either way.
//!
//! Owns: the event type and the broadcast channel. Must never: block or slow down the publisher. The channel
//! is bounded; a subscriber that falls behind loses the oldest events and is told how many
//! ([`Received::Lagged`]), so ingest never waits for a slow reader. Events are published after the durable
//! write, so a subscriber never hears of a message the store could still lose.

use std::sync::Arc;

use protofuse_model::{ConversationId, ConversationStatus, Message};
use tokio::sync::broadcast;

/// Events buffered per subscriber before it starts losing them: seconds of a busy desk, a few MiB at most.
pub const DEFAULT_CAPACITY: usize = 1024;

/// Something that happened to a conversation.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// A new message was stored (never published for a duplicate).
    MessageStored {
        /// The stored message.
        message: Arc<Message>,
        /// The conversation's customer, for subscribers filtering by customer.
        customer_id: String,
    },
    /// A conversation changed status (e.g. bot → queued on hand-off). Published by the status operations.
    StatusChanged {
        /// The conversation.
        conversation_id: ConversationId,
        /// Its customer.
        customer_id: String,
        /// Status before.
        from: ConversationStatus,
        /// Status after.
        to: ConversationStatus,
    },
}

impl Event {
    pub(crate) fn conversation_id(&self) -> ConversationId {
        match self {
            Self::MessageStored { message, .. } => message.conversation_id,
            Self::StatusChanged { conversation_id, .. } => *conversation_id,
        }
    }

    fn customer_id(&self) -> &str {
        match self {
            Self::MessageStored { customer_id, .. } | Self::StatusChanged { customer_id, .. } => customer_id,
        }
    }
}

/// Which events a subscriber wants. Empty fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only this conversation.
    pub conversation_id: Option<ConversationId>,
    /// Only this customer's conversations.
    pub customer_id: Option<String>,
}

impl EventFilter {
    /// `true` when `event` passes the filter.
    pub fn matches(&self, event: &Event) -> bool {
        self.conversation_id.is_none_or(|id| id == event.conversation_id())
            && self.customer_id.as_deref().is_none_or(|c| c == event.customer_id())
    }
}

/// Where events go in cluster mode, so that every node hears them (`crate::cluster` implements it; this module
/// needs nothing of the cluster's).
#[async_trait::async_trait]
pub trait Relay: Send + Sync + std::fmt::Debug {
    /// Hands `event` to every node (this one included, through [`EventBus::local_sender`]); `false` when it
    /// could not, and the bus then gives it to this node's subscribers itself.
    async fn publish(&self, event: &Event) -> bool;
}

/// The publishing side; cheap to clone.
#[derive(Debug, Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Event>,
    /// Cluster mode: events go through the cluster, which feeds `sender` on every node.
    relay: Option<Arc<dyn Relay>>,
}

impl EventBus {
    /// A bus buffering `capacity` events per subscriber.
    pub fn new(capacity: usize) -> Self {
        Self {
            sender: broadcast::channel(capacity.max(1)).0,
            relay: None,
        }
    }

    /// The same bus, its events going through the cluster's stream (started with [`EventBus::local_sender`]).
    pub(crate) fn with_relay(mut self, relay: Arc<dyn Relay>) -> Self {
        self.relay = Some(relay);
        self
    }

    /// What the cluster's stream feeds this node's subscribers through.
    pub(crate) fn local_sender(&self) -> broadcast::Sender<Event> {
        self.sender.clone()
    }

    /// Publishes to whoever listens. On one node it never waits; in cluster mode it waits for the stream to hold
    /// the event (bounded), so events of one client's successive requests keep their order across nodes.
    pub async fn publish(&self, event: Event) {
        if let Some(relay) = &self.relay
            && relay.publish(&event).await
        {
            return;
        }
        // An error only means nobody is subscribed, which is normal.
        let _ = self.sender.send(event);
    }

    /// `true` when someone may listen, so publishers can skip work that only subscribers need: in cluster mode
    /// always (another node's subscribers).
    pub fn has_subscribers(&self) -> bool {
        self.relay.is_some() || self.sender.receiver_count() > 0
    }

    /// A new subscription receiving events published from now on that pass `filter`.
    pub fn subscribe(&self, filter: EventFilter) -> Subscription {
        Subscription {
            receiver: self.sender.subscribe(),
            filter,
        }
    }
}

/// What a subscription yields.
#[derive(Debug)]
pub enum Received {
    /// The next matching event.
    Event(Event),
    /// The subscriber fell behind and this many events were dropped for it.
    Lagged(u64),
}

/// One subscriber's receiving side.
#[derive(Debug)]
pub struct Subscription {
    receiver: broadcast::Receiver<Event>,
    filter: EventFilter,
}

impl Subscription {
    /// The next matching event or lag notice; `None` once the bus is gone (shutdown).
    pub async fn next(&mut self) -> Option<Received> {
        loop {
            match self.receiver.recv().await {
                Ok(event) if self.filter.matches(&event) => return Some(Received::Event(event)),
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(n)) => return Some(Received::Lagged(n)),
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changed(customer: &str) -> Event {
        Event::StatusChanged {
            conversation_id: ConversationId::new(),
            customer_id: customer.to_owned(),
            from: ConversationStatus::Bot,
            to: ConversationStatus::Queued,
        }
    }

    #[tokio::test]
    async fn filters_and_reports_lag_instead_of_blocking() {
        let bus = EventBus::new(2);
        let mut ann = bus.subscribe(EventFilter {
            customer_id: Some("ann".to_owned()),
            ..EventFilter::default()
        });
        bus.publish(changed("bob")).await;
        bus.publish(changed("ann")).await;
        match ann.next().await {
            Some(Received::Event(e)) => assert_eq!(e.customer_id(), "ann"),
            other => panic!("expected ann's event, got {other:?}"),
        }
        // Publishing never waits: a subscriber that does not read loses the oldest events and is told.
        for _ in 0..5 {
            bus.publish(changed("ann")).await;
        }
        assert!(matches!(ann.next().await, Some(Received::Lagged(3))));
        assert!(matches!(ann.next().await, Some(Received::Event(_))));
    }
}
