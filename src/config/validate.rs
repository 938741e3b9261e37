//! [`Config::validate`]: every component's rules, checked all at once so an operator fixes every problem in
//! one go. Pure (no I/O), so `check-config` and start-up give the same answer.

use super::{Config, ConfigIssue};

impl Config {
    /// Checks every rule; pure (no I/O), so it is safe to run from `check-config`.
    pub fn validate(&self) -> Result<(), Vec<ConfigIssue>> {
        let mut issues = self.server.issues();
        issues.extend(
            self.store
                .issues()
                .into_iter()
                .map(|(key, message)| ConfigIssue::new(format!("store.{key}"), message)),
        );
        issues.extend(self.log.issues());
        issues.extend(crate::server::rpc_issues(&self.grpc, &self.jsonrpc));
        issues.extend(self.wechat.issues());
        issues.extend(self.dispatch.issues());
        issues.extend(self.admin.issues());
        issues.extend(self.triage.issues().into_iter().map(ConfigIssue::from));
        if issues.is_empty() { Ok(()) } else { Err(issues) }
    }
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
