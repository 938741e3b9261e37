//! Rules that types cannot express, checked all at once so an operator fixes every problem in one go.

use std::fmt;
use std::time::Duration;

use tracing_subscriber::EnvFilter;

use super::Config;

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

/// Triage validates its own section (`protofuse_triage`); its issues keep their keys (`triage.…`).
impl From<protofuse_triage::ConfigIssue> for ConfigIssue {
    fn from(issue: protofuse_triage::ConfigIssue) -> Self {
        Self::new(issue.key, issue.message)
    }
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

const MIN_BODY_LIMIT: usize = 1024;
const MAX_BODY_LIMIT: usize = 64 * 1024 * 1024;

impl Config {
    /// Checks every rule; pure (no I/O), so it is safe to run from `check-config`.
    pub fn validate(&self) -> Result<(), Vec<ConfigIssue>> {
        let mut issues = Vec::new();
        let mut check = |ok: bool, key: &'static str, message: String| {
            if !ok {
                issues.push(ConfigIssue::new(key, message));
            }
        };
        let server = &self.server;
        check(
            (MIN_BODY_LIMIT..=MAX_BODY_LIMIT).contains(&server.body_limit_bytes),
            "server.body_limit_bytes",
            format!(
                "must be between {MIN_BODY_LIMIT} and {MAX_BODY_LIMIT}, got {}",
                server.body_limit_bytes
            ),
        );
        check(
            positive(server.request_timeout),
            "server.request_timeout",
            "must be greater than 0s".to_owned(),
        );
        check(
            positive(server.shutdown_grace),
            "server.shutdown_grace",
            "must be greater than 0s".to_owned(),
        );
        let store = &self.store;
        let scheme_ok = ["sqlite:", "mysql:", "mariadb:"]
            .iter()
            .any(|s| store.url.starts_with(s));
        check(
            scheme_ok,
            "store.url",
            "must start with sqlite:, mysql: or mariadb:".to_owned(),
        );
        check(
            (1..=1000).contains(&store.max_connections),
            "store.max_connections",
            format!("must be between 1 and 1000, got {}", store.max_connections),
        );
        check(
            positive(store.acquire_timeout),
            "store.acquire_timeout",
            "must be greater than 0s".to_owned(),
        );
        if let Err(e) = EnvFilter::try_new(&self.log.filter) {
            check(false, "log.filter", format!("is not a valid filter: {e}"));
        }
        issues.extend(super::rpc::issues(&self.grpc, &self.jsonrpc));
        issues.extend(self.wechat.issues());
        issues.extend(self.dispatch.issues().into_iter().map(|(k, m)| ConfigIssue::new(k, m)));
        if !self.admin.listen.ip().is_loopback() && self.admin.token.is_none() {
            issues.push(ConfigIssue::new(
                "admin.token",
                "required when admin.listen is not a loopback address: the admin API can replay and discard",
            ));
        }
        issues.extend(self.triage.issues().into_iter().map(ConfigIssue::from));
        if issues.is_empty() { Ok(()) } else { Err(issues) }
    }
}

fn positive(d: Duration) -> bool {
    !d.is_zero()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(Config::default().validate(), Ok(()));
    }

    #[test]
    fn every_issue_is_reported_with_its_key() {
        let mut config = Config::default();
        config.server.body_limit_bytes = 1;
        config.store.url = "postgres://x".to_owned();
        config.store.max_connections = 0;
        let keys: Vec<_> = config.validate().unwrap_err().into_iter().map(|i| i.key).collect();
        assert_eq!(keys, ["server.body_limit_bytes", "store.url", "store.max_connections"]);
    }
}
