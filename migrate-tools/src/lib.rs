//! `protofuse-migrate`: snapshot a legacy helpdesk's MySQL/MariaDB database into the protofuse conversation
//! store, then follow its binlog until cut-over.
//!
//! # Layout
//! - [`cli`]: commands and options; [`mapping`]: the TOML mapping and its field vocabulary; [`check`]: the
//!   mapping against the source's schema and values, before any write.
//! - [`source`]: connecting and pre-flight checks; [`snapshot`]: the chunked consistent copy;
//!   [`follow`]: the replica stream, batching and reconnects; [`binlog`]: table-map columns, row images, GTIDs;
//!   [`gtid`]: where a GTID's transaction ends, for `follow --gtid`; [`ddl`]: which statements in the binlog are followed, ignored or stop the importer.
//! - [`charset`] and [`decode`]: one normalized form for every source value, from either path.
//! - [`lookup`]: rows of other tables a mapping reads (osTicket's ticket of a thread), on both paths.
//! - [`canonical`]: a normalized row to conversation/message/party records with derived ids.
//! - [`sink`]: the store's tables and the `import_*` bookkeeping, rows and checkpoint in one transaction.
//! - [`verify`]: counts and per-chunk checksums, source against target; [`progress`]: bar or log lines;
//!   [`redact`]: credentials out of every message.
//!
//! A row's path: source row (SELECT or binlog image) → [`decode::normalize`] per column → [`mapping::Row`] →
//! [`canonical::Mapper::map`] → [`sink::Op`] → [`sink::Target::apply`] (with the checkpoint).

pub mod binlog;
pub mod canonical;
pub mod charset;
pub mod check;
pub mod cli;
pub mod ddl;
pub mod decode;
pub mod follow;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod gtid;
pub mod lease;
pub mod lookup;
pub mod mapping;
pub mod progress;
pub mod redact;
pub mod sink;
pub mod snapshot;
pub mod source;
pub mod verify;
