//! Legacy REST dialects by configuration: each adapter file maps one route of an old PHP/Java/.NET system
//! (form, JSON or XML, in UTF-8, GBK, GB18030, Big5 or Latin-1) to the canonical model, answers in the
//! caller's own convention, and renders canonical messages back into that system's format for outbound
//! webhooks.
//!
//! A pure codec like every adapter: no sockets, no clock (the caller passes "now" and nonces), no state
//! (remembering HMAC nonces is the server's job).
//!
//! # Layout
//! - [`config`]: an adapter file and its validation (every issue with its key).
//! - [`charset`]: strict decoding and encoding of the supported charsets.
//! - [`body`]: request bytes → [`body::Document`] (JSON pointer, form key or XML path lookups).
//! - [`mapping`]: canonical field ← selector, constant or concatenation, with transforms and value maps.
//! - [`auth`]: none, API key, HMAC-SHA256 with timestamp window (canonical string documented there).
//! - [`template`]: `{{ path }}` templates with JSON/XML/form escaping, for answers and outbound bodies.
//! - [`response`]: answers per outcome class (stored, duplicate, invalid, unauthorized, unavailable).
//! - [`outbound`]: canonical message → the backend's request (charset and signature included).
//! - [`adapter`]: [`LegacyAdapter`], tying them together.

pub mod adapter;
pub mod auth;
pub mod body;
pub mod charset;
pub mod config;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
mod issue;
pub mod mapping;
pub mod outbound;
pub mod response;
mod sample;
pub mod template;

pub use adapter::{LegacyAdapter, Rendered, Reply};
pub use config::AdapterConfig;
pub use issue::Issue;
pub use outbound::{Outbound, OutboundRequest};
pub use response::Class;
