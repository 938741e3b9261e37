//! [`ConfigIssue`]: one broken configuration rule and the key it concerns. A leaf every component's
//! configuration uses to report its problems; it depends on nothing else here.

use std::fmt;

/// One broken rule, with the key it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// Dotted key path, e.g. `server.body_limit_bytes` or `wechat.accounts[0].token`.
    pub key: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl ConfigIssue {
    /// An issue with `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Triage validates its own section (`protofuse_triage`); its issues keep their keys (`triage.…`).
impl From<protofuse_triage::ConfigIssue> for ConfigIssue {
    fn from(issue: protofuse_triage::ConfigIssue) -> Self {
        Self::new(issue.key, issue.message)
    }
}
