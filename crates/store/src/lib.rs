//! `protofuse-store`: the conversation store, where accepted messages, their conversations and the
//! dispatcher's outbox live. It is the only code that writes the store's tables; the server writes through
//! [`Store`] and [`Outbox`], the importer through [`import`].
//!
//! One interface, two backends: SQLite (embedded default, a WAL-mode file) and MySQL/MariaDB (production).
//! Both run the same SQL, written once (`queries.rs`, `outbox.rs`, `import.rs`), and are checked by the same
//! test suite. Migrations are per backend (`migrations/{sqlite,mysql}/`) and applied by [`open`].
//!
//! Writing a message is idempotent on its idempotency key: the same key is stored once, and the caller learns
//! whether its write was a duplicate; the same key with other content is refused ([`fingerprint`] tells them
//! apart, the same way for every writer). The store never decides routing or status transitions; it records.
//!
//! # Layout
//! - [`Store`] (`store.rs`): the contract; [`page`]-style types (`page.rs`); [`StoreError`] (`error.rs`);
//!   [`StoreConfig`] (`config.rs`); [`open`] (`open.rs`).
//! - `codec.rs`: rows ↔ model (times, ids, the stored body, the fingerprint, the open-conversation key).
//! - `queries.rs`: the store's SQL once, instantiated per backend; `sqlite/` (a writer thread on its own
//!   connection group-commits messages, sqlx for the rest), `mysql/` (READ COMMITTED; writer tasks commit
//!   queued messages in batches of set-based statements, falling back to a transaction per message with
//!   deadlock retry);
//!   `turn.rs` (the FIFO turn SQLite's two writer connections take); `queue.rs` (the queued message write both
//!   backends' writers take, and submitting one).
//! - [`outbox`]: claim, settle, release, dead letters.
//! - [`import`]: bulk upserts for the importer, inside the importer's own transaction.

mod codec;
mod config;
mod error;
pub mod import;
mod mysql;
mod open;
pub mod outbox;
mod page;
mod queries;
mod queue;
mod sqlite;
mod store;
mod turn;

pub use codec::fingerprint;
pub use config::{StoreConfig, Synchronous};
pub use error::StoreError;
pub use mysql::{MysqlStore, is_deadlock};
pub use open::open;
pub use outbox::Outbox;
pub use page::{ConversationFilter, Order, Page, PageRequest};
pub use sqlite::SqliteStore;
pub use store::{Assignee, ImportProgress, Inserted, Labelled, Replied, Reply, StatusChange, Store};
