//! The application service: the operations every protocol exposes (send a message, read a conversation, page its
//! messages, list conversations), implemented once. Transports decode their protocol into these calls and encode
//! the results and [`ServiceError`]s back; no business rule lives in a transport.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use protofuse_adapter::IngestOutcome;
use protofuse_model::{Conversation, ConversationId, ConversationStatus, Envelope, Message, ValidationError};

use crate::dispatch::Dispatcher;
use crate::events::{Event, EventBus, EventFilter, Subscription};
use crate::telemetry::metric;
use protofuse_store::{ConversationFilter, Page, PageRequest, StatusChange, Store, StoreError};

/// Why an operation failed, classified by what the caller should do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The message breaks a rule of the canonical model; fix the request.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The conversation does not exist.
    #[error("conversation {0} not found")]
    ConversationNotFound(ConversationId),
    /// The idempotency key was used before for a different message; use a new key.
    #[error("idempotency key was already used for a different message")]
    KeyReused,
    /// The store is unreachable or failing; retry later.
    #[error("the conversation store is unavailable")]
    Unavailable(#[source] StoreError),
    /// The conversation is closed: a closed conversation never changes again (the customer's next message opens
    /// a new one).
    #[error("conversation {0} is closed")]
    ConversationClosed(ConversationId),
}

impl ServiceError {
    /// A stable, machine-readable code, the same on every protocol.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "invalid_message",
            Self::ConversationNotFound(_) => "conversation_not_found",
            Self::KeyReused => "idempotency_key_reused",
            Self::Unavailable(_) => "store_unavailable",
            Self::ConversationClosed(_) => "conversation_closed",
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::ConversationNotFound(id) => Self::ConversationNotFound(id),
            StoreError::KeyReused => Self::KeyReused,
            other => Self::Unavailable(other),
        }
    }
}

/// The application service. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct Service {
    store: Arc<dyn Store>,
    dispatcher: Option<Arc<Dispatcher>>,
    draining: Arc<AtomicBool>,
    events: EventBus,
}

impl Service {
    /// A service over `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            dispatcher: None,
            draining: Arc::new(AtomicBool::new(false)),
            events: EventBus::new(crate::events::DEFAULT_CAPACITY),
        }
    }

    /// A service whose messages are also queued for `dispatcher`'s destinations, in the same transaction, and
    /// whose events go to `events` (shared with the destinations that change conversations, such as triage).
    pub fn with_dispatcher(store: Arc<dyn Store>, dispatcher: Arc<Dispatcher>, events: EventBus) -> Self {
        Self {
            dispatcher: Some(dispatcher),
            events,
            ..Self::new(store)
        }
    }

    /// The dispatcher, if any.
    pub fn dispatcher(&self) -> Option<&Arc<Dispatcher>> {
        self.dispatcher.as_ref()
    }

    /// Live conversation events passing `filter`, from now on (see [`crate::events`]).
    pub fn subscribe(&self, filter: EventFilter) -> Subscription {
        self.events.subscribe(filter)
    }

    /// Tells subscribers about a newly stored message. Runs after the commit; a failed lookup of the
    /// conversation's customer only costs the event, never the acknowledged write.
    async fn publish_stored(&self, message: &Message) {
        if !self.events.has_subscribers() {
            return;
        }
        let customer_id = if message.sender.role == protofuse_model::Role::Customer {
            message.sender.external_id.clone()
        } else {
            match self.store.conversation(message.conversation_id).await {
                Ok(Some(c)) => c.customer_id,
                Ok(None) | Err(_) => return,
            }
        };
        self.events.publish(Event::MessageStored {
            message: Arc::new(message.clone()),
            customer_id,
        });
    }

    /// Accepts a decoded message: validates it and stores it durably. Returns only after the write committed,
    /// so an acknowledgement built from the outcome never covers a message that could still be lost.
    pub async fn send(&self, envelope: Envelope) -> Result<IngestOutcome, ServiceError> {
        envelope.validate()?;
        let protocol = envelope.source.protocol.as_str();
        let destinations = self.dispatcher.as_ref().map(|d| d.route(&envelope)).unwrap_or_default();
        let routed = !destinations.is_empty();
        let inserted = if routed {
            self.store
                .insert_routed(envelope, chrono::Utc::now(), destinations.clone())
                .await?
        } else {
            self.store.insert_message(envelope, chrono::Utc::now()).await?
        };
        if routed
            && !inserted.duplicate
            && let Some(d) = &self.dispatcher
        {
            d.wake(&destinations);
        }
        let outcome = if inserted.duplicate { "duplicate" } else { "stored" };
        metrics::counter!(metric::MESSAGES_INGESTED, "protocol" => protocol, "outcome" => outcome).increment(1);
        if !inserted.duplicate {
            self.publish_stored(&inserted.message).await;
        }
        Ok(IngestOutcome {
            message: inserted.message,
            duplicate: inserted.duplicate,
        })
    }

    /// Moves a conversation to a new status (bot → queued on hand-off, → assigned when an agent takes it,
    /// → closed), and tells subscribers. Any move is allowed except out of `closed`; a move to the same status
    /// only updates department and agent, and publishes nothing.
    pub async fn change_status(&self, id: ConversationId, change: StatusChange) -> Result<Conversation, ServiceError> {
        change_status(self.store.as_ref(), &self.events, id, change).await
    }

    /// One conversation.
    pub async fn conversation(&self, id: ConversationId) -> Result<Conversation, ServiceError> {
        self.store
            .conversation(id)
            .await?
            .ok_or(ServiceError::ConversationNotFound(id))
    }

    /// A page of a conversation's messages. An unknown conversation is an error, not an empty page.
    pub async fn messages(&self, id: ConversationId, page: PageRequest) -> Result<Page<Message>, ServiceError> {
        let found = self.store.messages(id, page).await?;
        if found.items.is_empty() && page.after.is_none() {
            self.conversation(id).await?;
        }
        Ok(found)
    }

    /// A page of conversations matching `filter`.
    pub async fn conversations(
        &self,
        filter: &ConversationFilter,
        page: PageRequest,
    ) -> Result<Page<Conversation>, ServiceError> {
        Ok(self.store.conversations(filter, page).await?)
    }

    /// Ready to serve: not shutting down and the store answers.
    pub async fn ready(&self) -> Result<(), NotReady> {
        if self.draining.load(Ordering::Relaxed) {
            return Err(NotReady::Draining);
        }
        self.store.ping().await.map_err(NotReady::Store)
    }

    /// Marks the service as shutting down: readiness fails from now on so load balancers stop sending.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// The store backend's name.
    pub fn store_backend(&self) -> &'static str {
        self.store.backend()
    }
}

/// [`Service::change_status`], for parts that hold the store and the event bus but not the service (the triage
/// destination, which the service's own dispatcher owns).
pub async fn change_status(
    store: &dyn Store,
    events: &EventBus,
    id: ConversationId,
    change: StatusChange,
) -> Result<Conversation, ServiceError> {
    let current = store
        .conversation(id)
        .await?
        .ok_or(ServiceError::ConversationNotFound(id))?;
    if current.status == ConversationStatus::Closed {
        return Err(ServiceError::ConversationClosed(id));
    }
    let (before, after) = store
        .change_status(id, &change, chrono::Utc::now())
        .await?
        .ok_or(ServiceError::ConversationNotFound(id))?;
    if before.status != after.status {
        tracing::info!(conversation = %id, from = before.status.as_str(), to = after.status.as_str(), "conversation status changed");
        events.publish(Event::StatusChanged {
            conversation_id: id,
            customer_id: after.customer_id.clone(),
            from: before.status,
            to: after.status,
        });
    }
    Ok(after)
}

/// Why the service is not ready.
#[derive(Debug, thiserror::Error)]
pub enum NotReady {
    /// Shutdown has begun.
    #[error("shutting down")]
    Draining,
    /// The store does not answer.
    #[error("store unreachable")]
    Store(#[source] StoreError),
}
