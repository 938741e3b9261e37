//! [`Issue`]: one problem in an adapter file and the key it concerns; a leaf every part of an adapter's
//! configuration reports through.

/// A problem in an adapter file, with the key it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// The key path inside the file, e.g. `fields."sent_at".transform`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Issue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}
