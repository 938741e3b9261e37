//! [`TrainError`]: why training failed.

use std::path::PathBuf;

use protofuse_triage::eval::EvalError;

/// Why training failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// A data directory or output could not be read or written.
    #[error("{0}: {1}")]
    Io(PathBuf, #[source] std::io::Error),
    /// A data file could not be read, or a line is not `{"text", "intent", ...}`.
    #[error(transparent)]
    Read(#[from] EvalError),
    /// Nothing to train on, or a split came out empty.
    #[error("not enough data: {0}")]
    NotEnoughData(&'static str),
}
