//! The application service: the operations every protocol exposes (send a message, read a conversation, page its
//! messages, list conversations), implemented once. Transports decode their protocol into these calls and encode
//! the results and [`ServiceError`]s back; no business rule lives in a transport.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use protofuse_adapter::IngestOutcome;
use protofuse_model::{Conversation, ConversationId, Envelope, Message, ValidationError};

use protofuse_store::{ConversationFilter, Inserted, Page, PageRequest, Reply, StatusChange, Store, StoreError};

use crate::conversation::{Conversations, StatusError};
use crate::events::{Event, EventBus, EventFilter, Subscription};
use crate::telemetry::metric;

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
    #[error("the conversation store is unavailable; retry later")]
    Unavailable(#[source] StoreError),
    /// The conversation is closed: a closed conversation never changes again (the customer's next message opens
    /// a new one).
    #[error("conversation {0} is closed")]
    ConversationClosed(ConversationId),
    /// The conversation's assignee is not the one the request expected: another agent took (or released) it
    /// meanwhile. Read it again and decide.
    #[error("another agent changed this conversation's assignment meanwhile (now assigned to {})", .current.as_deref().unwrap_or("nobody"))]
    AssigneeChanged {
        /// Who is assigned now.
        current: Option<String>,
    },
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
            Self::AssigneeChanged { .. } => "assignee_changed",
        }
    }
}

/// What a caller should do about a [`ServiceError`]: the one classification every transport maps to its
/// protocol's terms (HTTP status, gRPC code, legacy answer class), so no transport re-types the errors itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The request is wrong; fix it (HTTP 422, gRPC INVALID_ARGUMENT).
    Invalid,
    /// What it names does not exist (HTTP 404, gRPC NOT_FOUND).
    NotFound,
    /// Its idempotency key names something else (HTTP 409, gRPC ALREADY_EXISTS).
    AlreadyExists,
    /// What it names is in a state that refuses it (HTTP 409, gRPC FAILED_PRECONDITION).
    FailedPrecondition,
    /// The service cannot serve it now; retry later (HTTP 503, gRPC UNAVAILABLE).
    Unavailable,
}

impl ServiceError {
    /// What the caller should do about it.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Invalid(_) => ErrorClass::Invalid,
            Self::ConversationNotFound(_) => ErrorClass::NotFound,
            Self::KeyReused => ErrorClass::AlreadyExists,
            Self::ConversationClosed(_) | Self::AssigneeChanged { .. } => ErrorClass::FailedPrecondition,
            Self::Unavailable(_) => ErrorClass::Unavailable,
        }
    }
}

impl From<StatusError> for ServiceError {
    fn from(e: StatusError) -> Self {
        match e {
            StatusError::NotFound(id) => Self::ConversationNotFound(id),
            StatusError::Closed(id) => Self::ConversationClosed(id),
            StatusError::Store(e) => e.into(),
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::ConversationNotFound(id) => Self::ConversationNotFound(id),
            StoreError::KeyReused => Self::KeyReused,
            StoreError::AssigneeChanged { current } => Self::AssigneeChanged { current },
            // Load shedding, not a failure: counted, not logged per request (it comes in floods).
            StoreError::Overloaded => {
                metrics::counter!(crate::telemetry::metric::WRITES_SHED).increment(1);
                Self::Unavailable(StoreError::Overloaded)
            }
            other => {
                // Logged once here, with its cause; callers only learn that the store is unavailable.
                tracing::warn!(error = %other, cause = ?std::error::Error::source(&other), "store unavailable");
                Self::Unavailable(other)
            }
        }
    }
}

/// The service's port to the dispatcher: where a message goes, decided before its write so its deliveries are
/// queued in the same transaction, and a nudge once they are committed. The dispatcher implements it; the
/// service knows nothing else of it.
pub trait Deliveries: Send + Sync + 'static {
    /// The destinations `envelope` goes to.
    fn route(&self, envelope: &Envelope) -> Vec<String>;
    /// Deliveries for `destinations` were just committed.
    fn wake(&self, destinations: &[String]);
}

/// The application service. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct Service {
    store: Arc<dyn Store>,
    deliveries: Option<Arc<dyn Deliveries>>,
    conversations: Conversations,
    draining: Arc<AtomicBool>,
    events: EventBus,
}

impl Service {
    /// A service over `store` whose events go to `events`, which it shares with whoever else changes
    /// conversations (the triage step, through [`Conversations`]).
    pub fn new(store: Arc<dyn Store>, events: EventBus) -> Self {
        Self {
            conversations: Conversations::new(store.clone(), events.clone()),
            store,
            deliveries: None,
            draining: Arc::new(AtomicBool::new(false)),
            events,
        }
    }

    /// This service, also queueing each message's deliveries in its own transaction.
    #[must_use]
    pub fn with_deliveries(mut self, deliveries: Arc<dyn Deliveries>) -> Self {
        self.deliveries = Some(deliveries);
        self
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
        self.events
            .publish(Event::MessageStored {
                message: Arc::new(message.clone()),
                customer_id,
            })
            .await;
    }

    /// Accepts a decoded message: validates it and stores it durably. Returns only after the write committed,
    /// so an acknowledgement built from the outcome never covers a message that could still be lost.
    pub async fn send(&self, envelope: Envelope) -> Result<IngestOutcome, ServiceError> {
        self.send_with(envelope, &[]).await
    }

    /// [`Service::send`], delivering the message to `destinations` as well as to its routes' (a late WeChat
    /// answer goes to its account's customer-service destination), in the same transaction.
    pub async fn send_with(&self, envelope: Envelope, destinations: &[String]) -> Result<IngestOutcome, ServiceError> {
        envelope.validate()?;
        let protocol = envelope.source.protocol.as_str();
        let routed = self.route(&envelope, destinations);
        let inserted = if routed.is_empty() {
            self.store.insert_message(envelope, chrono::Utc::now()).await?
        } else {
            self.store
                .insert_routed(envelope, chrono::Utc::now(), routed.clone())
                .await?
        };
        self.stored(protocol, &inserted, &routed).await;
        Ok(IngestOutcome {
            message: inserted.message,
            duplicate: inserted.duplicate,
        })
    }

    /// [`Service::send`] for a message whose reply is known before it is stored (a keyword answer): the reply
    /// is stored with it, in the same write, when the message is new, and not at all for a duplicate (the
    /// first delivery stored it). Returns the stored reply too, or `None` (a duplicate, or a reply the store
    /// could not write after the message, which is logged: the message stands).
    pub async fn send_answered(
        &self,
        envelope: Envelope,
        reply: Reply,
    ) -> Result<(IngestOutcome, Option<Message>), ServiceError> {
        envelope.validate()?;
        reply.envelope().validate()?;
        let protocol = envelope.source.protocol.as_str();
        let reply_protocol = reply.envelope().source.protocol.as_str();
        let routed = self.route(&envelope, &[]);
        let reply_routed = self.route(reply.envelope(), &[]);
        let replied = self
            .store
            .insert_answered(
                envelope,
                chrono::Utc::now(),
                routed.clone(),
                reply.with_destinations(reply_routed.clone()),
            )
            .await?;
        self.stored(protocol, &replied.inserted, &routed).await;
        let reply = match replied.reply {
            Ok(reply) => reply,
            Err(e) => {
                tracing::warn!(error = %e, "bot reply not stored");
                None
            }
        };
        if let Some(reply) = &reply {
            let inserted = Inserted {
                message: reply.clone(),
                duplicate: false,
            };
            self.stored(reply_protocol, &inserted, &reply_routed).await;
        }
        let outcome = IngestOutcome {
            message: replied.inserted.message,
            duplicate: replied.inserted.duplicate,
        };
        Ok((outcome, reply))
    }

    /// The destinations of `envelope`'s routes, and `extra`, each once.
    fn route(&self, envelope: &Envelope, extra: &[String]) -> Vec<String> {
        let mut routed = self.deliveries.as_ref().map(|d| d.route(envelope)).unwrap_or_default();
        for destination in extra {
            if !routed.contains(destination) {
                routed.push(destination.clone());
            }
        }
        routed
    }

    /// After a committed write of a `protocol` message: wakes the dispatcher for its deliveries, counts it and
    /// tells subscribers.
    async fn stored(&self, protocol: &'static str, inserted: &Inserted, routed: &[String]) {
        if !routed.is_empty()
            && !inserted.duplicate
            && let Some(d) = &self.deliveries
        {
            d.wake(routed);
        }
        let outcome = if inserted.duplicate { "duplicate" } else { "stored" };
        metrics::counter!(metric::MESSAGES_INGESTED, "protocol" => protocol, "outcome" => outcome).increment(1);
        if !inserted.duplicate {
            self.publish_stored(&inserted.message).await;
        }
    }

    /// Moves a conversation to a new status (bot → queued on hand-off, → assigned when an agent takes it,
    /// → closed), and tells subscribers. Any move is allowed except out of `closed`; a move to the same status
    /// only updates department and agent, and publishes nothing.
    pub async fn change_status(&self, id: ConversationId, change: StatusChange) -> Result<Conversation, ServiceError> {
        Ok(self.conversations.change_status(id, change).await?)
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
