//! [`TriageError`]: why triage could not be set up, or one inference failed.

use std::path::PathBuf;

/// Why triage could not be set up (or, for [`TriageError::Run`], why one inference failed).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TriageError {
    /// A model or knowledge-base file could not be read.
    #[error("cannot read {0}")]
    Read(PathBuf, #[source] std::io::Error),
    /// The model file is not a triage model tract can run.
    #[error("model {0} is not a usable triage model")]
    Model(String, #[source] Box<dyn std::error::Error + Send + Sync>),
    /// The knowledge base does not parse.
    #[error("knowledge base {0}: {1}")]
    Knowledge(PathBuf, String),
    /// A rule's regex does not compile (validation should have caught it).
    #[error("rule {0}: invalid regex")]
    Rule(String, #[source] regex::Error),
    /// Inference failed.
    #[error("inference failed")]
    Run(#[source] Box<dyn std::error::Error + Send + Sync>),
}
