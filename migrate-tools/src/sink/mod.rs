//! The target: the protofuse conversation store's own tables plus the importer's bookkeeping (`import_*`).
//!
//! Conversations and messages are written through the store's bulk import API ([`protofuse_store::import`]),
//! which computes every stored column with the store's own codec, on the importer's own pool and inside the
//! importer's transaction. [`protofuse_store::open`] runs first, so the store's migrations are applied; the
//! `import_*` tables are created with `CREATE TABLE IF NOT EXISTS` rather than sqlx migrations, which would
//! clash with the store's migration history in `_sqlx_migrations`.
//!
//! Every [`Target::apply`] is one database transaction holding the rows and the checkpoint that covers them.

mod batch;
mod error;
mod mysql;
mod quiet;
mod sqlite;
mod sqlite_batch;
mod target;
mod writer;

pub use batch::{Action, Op, Position, Progress, Status};
pub use error::TargetError;
pub use target::{Target, TargetOptions};
