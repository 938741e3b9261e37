//! The canonical message model of protofuse, schema version `v1`.
//!
//! Every ingress protocol decodes into these types and every part of the application (store, dispatcher, triage,
//! importer) works on them. They are the single source of truth: the JSON Schema files in `schemas/v1/` are
//! generated from them (`UPDATE_SCHEMAS=1 cargo test -p protofuse-model`) and a test fails when those are stale.
//!
//! # Layout
//! - [`ids`]: time-ordered identifiers and the idempotency key.
//! - [`content`]: what a message says, as a tagged union.
//! - [`party`]: who sent a message.
//! - [`source`]: where a message came from, including the fields no adapter could map.
//! - [`message`]: [`Envelope`] (decoded, not stored yet), [`Message`] (stored) and [`NewMessage`] (the native API's input).
//! - [`conversation`]: a customer's conversation and its status.
//! - `values.rs`: [`Timestamp`] and [`Metadata`], the plain value types the others share.
//! - [`triage`]: what built-in triage decided about a message ([`TriageOutcome`]).
//!
//! This crate never does I/O: no sockets, no database, no clock except where a caller asks for a new id.

pub mod content;
pub mod conversation;
pub mod ids;
pub mod message;
pub mod party;
pub mod schema;
pub mod source;
pub mod triage;
mod values;

pub use content::{Content, MediaRef};
pub use conversation::{Conversation, ConversationStatus};
pub use ids::{ConversationId, IdempotencyKey, MessageId};
pub use message::{Direction, Envelope, Message, NewMessage, ValidationError};
pub use party::{Party, Role};
pub use source::{Protocol, Source};
pub use triage::{HandoffReason, TriageDecision, TriageOutcome};
pub use values::{Metadata, Timestamp};

/// The version of the canonical schema these types describe.
pub const SCHEMA_VERSION: &str = "v1";
