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
        issues.extend(self.api.issues());
        issues.extend(self.web.issues(&self.server));
        if let Some(cluster) = &self.cluster {
            issues.extend(cluster.issues());
            if self.store.url.starts_with("sqlite:") {
                issues.push(ConfigIssue::new(
                    "store.url",
                    "cluster mode needs a store every node shares: mysql:// or mariadb://, not SQLite",
                ));
            }
        }
        issues.extend(self.exposure_issues());
        if issues.is_empty() { Ok(()) } else { Err(issues) }
    }

    /// What must not face a network beyond this machine: the API and gRPC without keys, an API listener that
    /// is also the public one, and a WeChat account whose credentials are the documentation's public sample
    /// (anyone could sign callbacks for it).
    fn exposure_issues(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        let api_listen = self.api.listen.unwrap_or(self.server.listen);
        if self.api.keys.is_empty() && !api_listen.ip().is_loopback() {
            let on = if self.api.listen.is_some() {
                "api.listen"
            } else {
                "server.listen (which serves the API while api.listen is unset)"
            };
            issues.push(ConfigIssue::new(
                "api.keys",
                format!(
                    "required when the API (/v1, /rpc) listens on a non-loopback address ({on} = {api_listen}): \
                     configure [[api.keys]] (`protofuse api-key new`), or serve the API on loopback with api.listen"
                ),
            ));
        }
        if self.api.keys.is_empty() && !self.grpc.listen.ip().is_loopback() {
            issues.push(ConfigIssue::new(
                "api.keys",
                format!(
                    "required when grpc.listen is not a loopback address ({})",
                    self.grpc.listen
                ),
            ));
        }
        if self.api.listen == Some(self.server.listen) {
            issues.push(ConfigIssue::new(
                "api.listen",
                "must differ from server.listen; leave it unset to serve the API on the same listener",
            ));
        }
        if !self.server.listen.ip().is_loopback() {
            for (i, account) in self.wechat.accounts.iter().enumerate() {
                if account.uses_public_sample_credentials() {
                    issues.push(ConfigIssue::new(
                        format!("wechat.accounts[{i}]"),
                        format!(
                            "account `{}` uses the public sample credentials of WeChat's documentation, which anyone \
                             can sign callbacks with; it is refused on a non-loopback server.listen ({}): remove it \
                             or replace its token and keys with your own",
                            account.account, self.server.listen
                        ),
                    ));
                }
            }
        }
        issues
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
