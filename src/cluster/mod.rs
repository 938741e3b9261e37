//! Cluster mode (`[cluster]`): several protofuse nodes on one MySQL/MariaDB store and one NATS JetStream. The
//! store already holds the durable state (messages, the outbox with its leases); JetStream carries what lived in
//! one process: the conversation events every node's subscribers must see (`events.rs`), the HMAC nonces a
//! replay to another node must meet (`nonces.rs`), each WeChat account's one access_token (`tokens.rs`), and the
//! operators' view of the nodes and their breaker overrides (`control.rs`).
//!
//! Owns the connection to NATS, the stream and bucket names, and what goes over them. Must never be needed by a
//! single node: without `[cluster]` nothing here runs and nothing connects.

mod config;
mod connection;
mod control;
mod events;
mod nonces;
mod tokens;

pub use config::ClusterConfig;
pub use connection::{Cluster, ClusterError};
pub(crate) use control::Control;
pub use control::NodeView;
pub(crate) use events::StreamRelay;
pub(crate) use nonces::SharedNonces;
pub(crate) use tokens::{Next as TokenStep, SharedTokens};
