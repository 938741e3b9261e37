//! Evaluation shared by `protofuse triage eval` and the training tool: labelled examples read from JSONL
//! ([`read_jsonl`]) and the figures reported on them ([`Confusion`], [`Figures`], [`ece`], [`reliability`]). One copy, so the
//! server's evaluation and the training metrics can never disagree. Must never fit or change a model; the only
//! I/O is [`read_jsonl`] reading the file it is given.

mod metrics;

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use metrics::{BINS, Bin, Confusion, Figures, ece, reliability, reliability_table};

/// Why a file of labelled examples could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// The file could not be read.
    #[error("{0}: {1}")]
    Io(PathBuf, #[source] std::io::Error),
    /// A data line is not `{"text", "intent", ...}`.
    #[error("{file}:{line}: not a labelled example")]
    Line {
        /// The file.
        file: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
}

/// One line of a data file. `lang` and `group` are optional for evaluation files.
#[derive(Debug, Clone, Deserialize)]
pub struct Example {
    /// The customer's message.
    pub text: String,
    /// The intent id.
    pub intent: String,
    /// `zh` or `en`.
    #[serde(default)]
    pub lang: String,
    /// The seed this example was written or derived from; the split never separates a group.
    #[serde(default)]
    pub group: String,
    /// `train` pins the example to the training split (vocabulary examples that are no customer's phrasing
    /// and must not be measured on).
    #[serde(default)]
    pub split: Option<String>,
}

/// Reads a JSONL file; every bad line is an error naming the file and line.
pub fn read_jsonl(path: &Path) -> Result<Vec<Example>, EvalError> {
    let text = std::fs::read_to_string(path).map_err(|e| EvalError::Io(path.to_path_buf(), e))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line).map_err(|e| EvalError::Line {
                file: path.to_path_buf(),
                line: i + 1,
                source: e,
            })
        })
        .collect()
}
