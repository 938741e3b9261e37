//! The [`Store`] trait: what every backend offers the application (idempotent message writes, reads, status
//! changes, triage outcomes), with its request and result types.
//!
//! Owns the contract, not the SQL (`queries.rs` writes it once for both backends). Must never decide routing or
//! status transitions: which moves are allowed is the application's rule, the store only records them.

use async_trait::async_trait;
use protofuse_model::{
    Conversation, ConversationId, ConversationStatus, Envelope, IdempotencyKey, Message, MessageId, Timestamp,
    TriageOutcome,
};

use crate::error::StoreError;
use crate::outbox::Outbox;
use crate::page::{ConversationFilter, Page, PageRequest};

/// The conversation store. Implementations are cheap to share (`Arc`) and safe to call concurrently.
#[async_trait]
pub trait Store: Outbox + Send + Sync + 'static {
    /// Stores `envelope` as a message received at `received_at`, resolving or opening its conversation.
    /// Idempotent on the envelope's key: a second write of the same key stores nothing and returns the first
    /// message with `duplicate: true`; the same key with different content is [`StoreError::KeyReused`].
    async fn insert_message(&self, envelope: Envelope, received_at: Timestamp) -> Result<Inserted, StoreError> {
        self.insert_routed(envelope, received_at, Vec::new()).await
    }

    /// [`Store::insert_message`], also queueing one outbox delivery per destination in the same transaction
    /// (none for a duplicate: its deliveries were queued with the first write).
    async fn insert_routed(
        &self,
        envelope: Envelope,
        received_at: Timestamp,
        destinations: Vec<String>,
    ) -> Result<Inserted, StoreError>;

    /// [`Store::insert_routed`] for a message whose reply is known before it is stored (a keyword answer), and
    /// the reply with it when the message is new: the two cost one write. A duplicate writes neither; its reply
    /// was written with the first. SQLite writes both in one transaction (the answered message is never stored
    /// without its reply); MySQL writes the reply right after the message, so a failure between the two leaves
    /// the message stored and says so in [`Replied::reply`].
    async fn insert_answered(
        &self,
        envelope: Envelope,
        received_at: Timestamp,
        destinations: Vec<String>,
        reply: Reply,
    ) -> Result<Replied, StoreError>;

    /// One conversation, if it exists.
    async fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>, StoreError>;

    /// A page of a conversation's messages in id (= arrival) order.
    async fn messages(&self, conversation: ConversationId, page: PageRequest) -> Result<Page<Message>, StoreError>;

    /// A page of conversations matching `filter`, newest first.
    async fn conversations(
        &self,
        filter: &ConversationFilter,
        page: PageRequest,
    ) -> Result<Page<Conversation>, StoreError>;

    /// Moves a conversation to `change.status`, setting its department and agent where given (a `None` keeps the
    /// current value). Closing also frees the customer's "open conversation" slot, so their next message opens a
    /// new one. Returns the conversation before and after, or `None` if it does not exist. With
    /// `change.if_assignee`, the change is a compare-and-set on the assignee, atomic on both backends. Which
    /// transitions are allowed is the service's rule, not the store's.
    async fn change_status(
        &self,
        id: ConversationId,
        change: &StatusChange,
        at: Timestamp,
    ) -> Result<Option<(Conversation, Conversation)>, StoreError>;

    /// Records triage's outcome on a stored message (replacing an earlier one). Returns the updated message, or
    /// `None` if there is no such message.
    async fn set_triage(&self, id: MessageId, outcome: &TriageOutcome) -> Result<Option<Message>, StoreError>;

    /// A page of customer text messages whose conversation carries a department, in message id order, each with
    /// that department: the store's own history as labelled examples for training a department router
    /// (`protofuse triage train --from-store`). Only `page.after` and `page.limit` apply (always ascending).
    async fn labelled_messages(&self, page: PageRequest) -> Result<Page<Labelled>, StoreError>;

    /// Succeeds when the database answers a trivial query.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Each binlog importer's checkpoint in this store (`import_checkpoint`, which `protofuse-migrate` creates and
    /// writes), by mapping name; empty when no importer has written to this store. Read only: the importer owns
    /// the table.
    async fn import_progress(&self) -> Result<Vec<ImportProgress>, StoreError>;

    /// `sqlite` or `mysql`, for logs and metrics.
    fn backend(&self) -> &'static str;
}

/// One importer's checkpoint as it committed it ([`Store::import_progress`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImportProgress {
    /// The mapping's name.
    pub name: String,
    /// The binlog file and position applied up to, once following.
    pub file: Option<String>,
    /// The position in `file`.
    pub pos: Option<i64>,
    /// The GTID applied up to, when the source has GTIDs.
    pub gtid: Option<String>,
    /// Whether the snapshot has finished.
    pub snapshot_done: bool,
    /// Rows applied, snapshot and follow.
    pub rows_applied: i64,
    /// Binlog events applied.
    pub events_applied: i64,
    /// Unix seconds of the last applied source event.
    pub last_event_at: Option<i64>,
    /// Errors the importer recorded (reconnects, failed batches).
    pub errors: i64,
    /// The last of them, as the importer redacted it.
    pub last_error: Option<String>,
}

/// A customer message and the department its conversation is labelled with ([`Store::labelled_messages`]).
#[derive(Debug, Clone)]
pub struct Labelled {
    /// The conversation's department.
    pub department: String,
    /// The message.
    pub message: Message,
}

/// What [`Store::change_status`] sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    /// The new status.
    pub status: ConversationStatus,
    /// The department now responsible, if it changes.
    pub department: Option<String>,
    /// The agent now assigned, if it changes.
    pub assigned_agent: Option<String>,
    /// Applies the change only while the conversation's assignee is still this one, so an agent taking a
    /// conversation cannot silently take it from another who took it meanwhile
    /// ([`crate::StoreError::AssigneeChanged`] otherwise); `None` applies it whoever is assigned.
    pub if_assignee: Option<Assignee>,
}

/// Who a conversation is assigned to, as [`StatusChange::if_assignee`] expects it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assignee {
    /// No agent.
    Nobody,
    /// This agent.
    Agent(String),
}

impl Assignee {
    /// The assignee a conversation's `assigned_agent` column names.
    pub fn of(assigned_agent: Option<&str>) -> Self {
        assigned_agent.map_or(Self::Nobody, |a| Self::Agent(a.to_owned()))
    }

    /// The agent, if any.
    pub fn agent(&self) -> Option<&str> {
        match self {
            Self::Nobody => None,
            Self::Agent(a) => Some(a),
        }
    }
}

/// A reply to the message it is written with ([`Store::insert_answered`]). The store completes it from the
/// stored message it answers: the reply goes in that message's conversation, under the key
/// `IdempotencyKey::answering(scope, answered id)` (so it is written once, whoever retries), and with
/// `metadata.in_reply_to` naming the answered message.
#[derive(Debug, Clone)]
pub struct Reply {
    envelope: Envelope,
    scope: &'static str,
    destinations: Vec<String>,
}

impl Reply {
    /// `envelope` as the reply to the message written with it, keyed in `scope`. Its conversation and key are
    /// placeholders of the completed ones' shape until then, so [`Envelope::validate`] judges it as stored.
    pub fn new(mut envelope: Envelope, scope: &'static str) -> Self {
        envelope.conversation_id = Some(ConversationId::from_uuid(uuid::Uuid::nil()));
        envelope.idempotency_key = IdempotencyKey::answering(scope, MessageId::from_uuid(uuid::Uuid::nil()));
        Self {
            envelope,
            scope,
            destinations: Vec::new(),
        }
    }

    /// The reply, with placeholders for what the answered message decides (see [`Reply::new`]).
    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    /// Also queues one outbox delivery per destination, in the same transaction.
    #[must_use]
    pub fn with_destinations(mut self, destinations: Vec<String>) -> Self {
        self.destinations = destinations;
        self
    }

    /// The reply's envelope and deliveries once `answered` is stored: what the store writes, and what a caller
    /// writing a reply after its message stores.
    pub fn complete(self, answered: &Message) -> (Envelope, Vec<String>) {
        let Self {
            mut envelope,
            scope,
            destinations,
        } = self;
        envelope.conversation_id = Some(answered.conversation_id);
        envelope.idempotency_key = IdempotencyKey::answering(scope, answered.id);
        envelope
            .metadata
            .insert("in_reply_to".to_owned(), serde_json::json!(answered.id));
        (envelope, destinations)
    }
}

/// The result of [`Store::insert_answered`].
#[derive(Debug)]
pub struct Replied {
    /// The answered message, as [`Store::insert_routed`] returns it.
    pub inserted: Inserted,
    /// The stored reply; `None` when the message was a duplicate. An error only where the backend writes the
    /// reply on its own after the message (MySQL) and that write failed: the message stands regardless.
    pub reply: Result<Option<Message>, StoreError>,
}

/// The result of [`Store::insert_message`].
#[derive(Debug, Clone)]
pub struct Inserted {
    /// The stored message (the earlier one, for a duplicate).
    pub message: Message,
    /// `true` when the key had been stored before and nothing was written.
    pub duplicate: bool,
}
