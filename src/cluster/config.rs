//! `[cluster]`: the NATS server, this node's name, and the names this cluster's streams and buckets take.

use std::time::Duration;

use serde::Deserialize;

use crate::config::ConfigIssue;

/// Conversation events are kept this long: a subscriber reconnecting to another node within it resumes
/// without a gap, and a day of a busy desk's events is a few hundred MB at most.
const DEFAULT_EVENT_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// `[cluster]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// The NATS server with JetStream, e.g. `nats://127.0.0.1:4222`.
    pub nats: String,
    /// This node's name, unique in the cluster (logs, NATS connection name).
    pub node: String,
    /// Prefix of this cluster's subjects, stream and bucket names: two clusters (or tests) on one NATS keep
    /// apart by it. Letters, digits, `-` and `_`.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// How long conversation events stay in the stream.
    #[serde(default = "default_retention", with = "humantime_serde")]
    pub event_retention: Duration,
}

fn default_prefix() -> String {
    "protofuse".to_owned()
}

fn default_retention() -> Duration {
    DEFAULT_EVENT_RETENTION
}

impl ClusterConfig {
    /// Every broken rule, keys named `cluster.…`.
    pub fn issues(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        if !(self.nats.starts_with("nats://") || self.nats.starts_with("tls://")) {
            issues.push(ConfigIssue::new("cluster.nats", "must be a nats:// or tls:// URL"));
        }
        if self.node.trim().is_empty() {
            issues.push(ConfigIssue::new("cluster.node", "must name this node"));
        }
        let name_ok = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !name_ok(&self.prefix) {
            issues.push(ConfigIssue::new(
                "cluster.prefix",
                "must be letters, digits, `-` or `_` (it names NATS subjects, streams and buckets)",
            ));
        }
        if self.event_retention < Duration::from_secs(60) {
            issues.push(ConfigIssue::new(
                "cluster.event_retention",
                "must be at least a minute: reconnecting subscribers resume from it",
            ));
        }
        issues
    }

    /// The stream of conversation events.
    pub(crate) fn event_stream(&self) -> String {
        format!("{}_events", self.prefix)
    }

    /// The subject of one conversation's events (`*` for all).
    pub(crate) fn event_subject(&self, conversation: &str) -> String {
        format!("{}.events.{conversation}", self.prefix)
    }

    /// A control subject (`heartbeat`, `breaker`; `*` for all).
    pub(crate) fn control_subject(&self, what: &str) -> String {
        format!("{}.control.{what}", self.prefix)
    }

    /// The stream of the WeChat accounts' access_tokens.
    pub(crate) fn token_stream(&self) -> String {
        format!("{}_tokens", self.prefix)
    }

    /// The subject of one account's access_token (`*` for all).
    pub(crate) fn token_subject(&self, app_id: &str) -> String {
        format!("{}.tokens.{app_id}", self.prefix)
    }

    /// The stream of HMAC nonces seen.
    pub(crate) fn nonce_stream(&self) -> String {
        format!("{}_nonces", self.prefix)
    }

    /// The subject of one nonce (`*` for all).
    pub(crate) fn nonce_subject(&self, key: &str) -> String {
        format!("{}.nonces.{key}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issues_name_the_key() {
        let config = ClusterConfig {
            nats: "http://x".to_owned(),
            node: " ".to_owned(),
            prefix: "a.b".to_owned(),
            event_retention: Duration::from_secs(1),
        };
        let keys: Vec<String> = config.issues().into_iter().map(|i| i.key).collect();
        assert_eq!(
            keys,
            [
                "cluster.nats",
                "cluster.node",
                "cluster.prefix",
                "cluster.event_retention"
            ]
        );
    }
}
