//! Configuration changes without a restart: `SIGHUP` or `POST /admin/reload` (in cluster mode, every node)
//! reads the configuration file again, validates it completely, builds everything it asks for, and only then
//! puts it in force: legacy adapter routes, WeChat accounts and their responders, dispatch destinations and
//! routes, triage rules, routing, models and knowledge base.
//!
//! Owns the order of a reload: nothing changes until every part has been built, so a file that is invalid,
//! names an adapter file that does not parse or a model that does not load leaves the running configuration
//! whole, and the refusal lists every problem. Each part is swapped whole (`ArcSwap`), so a request in flight
//! finishes on the part it started with; destinations are put in force before the routes that name them.
//!
//! Must never: rebind a listener, reopen the store or change what a node is (listeners and their limits, TLS,
//! `[api] listen`, `[store]`, `[log]`, `[web]`, `[cluster]`): a change there is reported as needing a restart and
//! the running value stays. The configuration put in force (the file's reloadable sections over the running
//! values of the others) is validated as a whole, so new API keys are checked against the listeners actually
//! running, not the ones the file asks for.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::config::{Config, ConfigError, ConfigIssue};
use crate::conversation::Conversations;
use crate::decisions::{Decisions, Models};
use crate::dispatch::{DestinationChanges, DispatchError, Dispatcher, Outbound};
use crate::legacy::AdapterFilesError;
use crate::server::LegacyRoutes;
use crate::wechat::kf::KfClient;
use crate::wechat::{Wechat, WechatError};
use protofuse_triage::{Triage, TriageError};

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReloadError {
    /// The server was started without a configuration file (defaults and environment only).
    #[error("this server was started without a configuration file: there is nothing to read again")]
    NoFile,
    /// The file does not parse, has unknown keys or breaks rules.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A legacy adapter file is missing or invalid.
    #[error(transparent)]
    Adapters(#[from] AdapterFilesError),
    /// The WeChat accounts could not be built.
    #[error("cannot set up the wechat accounts")]
    Wechat(#[from] WechatError),
    /// A destination could not be built.
    #[error(transparent)]
    Dispatch(#[from] DispatchError),
    /// The triage model, router or knowledge base does not load.
    #[error("cannot load triage")]
    Triage(#[source] TriageError),
    /// The new configuration uses triage, which this process did not load at start.
    #[error("triage was not loaded at start: using it needs a restart")]
    TriageNotLoaded,
    /// Building the new configuration stopped unexpectedly (a panic in a blocking task).
    #[error("reload failed: {0}")]
    Internal(String),
}

impl ReloadError {
    /// A stable code for the refusal: `no_config_file` or `invalid_config`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoFile => "no_config_file",
            _ => "invalid_config",
        }
    }

    /// The refusal as the admin API shows it: `{"code", "message", "issues": [{"key", "message"}]}`.
    pub fn detail(&self) -> serde_json::Value {
        let issues: Vec<_> = self
            .issues()
            .into_iter()
            .map(|i| serde_json::json!({ "key": i.key, "message": i.message }))
            .collect();
        serde_json::json!({
            "code": self.code(),
            "message": format!("{self}; the running configuration stays"),
            "issues": issues,
        })
    }

    /// Every problem, each with the key it concerns where there is one.
    pub fn issues(&self) -> Vec<ConfigIssue> {
        let issue = |key: &str, message: String| ConfigIssue {
            key: key.to_owned(),
            message,
        };
        match self {
            Self::Config(ConfigError::Invalid(issues)) => issues.clone(),
            Self::Config(ConfigError::Parse(text)) => text.lines().map(|l| issue("", l.to_owned())).collect(),
            Self::Adapters(AdapterFilesError(problems)) => {
                problems.iter().map(|p| issue("legacy.adapters", p.clone())).collect()
            }
            Self::Triage(e) => vec![issue("triage", crate::decisions::error_chain(e))],
            other => vec![issue("", error_chain(other))],
        }
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}

/// What a reload put in force.
#[derive(Debug, Clone, Serialize)]
pub struct Reloaded {
    /// The sections whose values changed and are now in force.
    pub changed: Vec<&'static str>,
    /// The sections whose values changed but take effect only after a restart; their running values stay.
    pub restart_required: Vec<&'static str>,
    /// Destinations added, replaced (new settings: a new fuse and worker) and removed.
    pub destinations: DestinationChanges,
    /// Legacy adapter routes in force.
    pub legacy_routes: usize,
    /// WeChat accounts in force.
    pub wechat_accounts: usize,
    /// The triage models in force, when triage is loaded.
    pub triage: Option<Models>,
}

/// The parts a reload swaps, and the configuration in force (see [`in_force`]).
pub struct Reloader {
    path: Option<PathBuf>,
    /// Held for the whole of a reload, so two reloads never interleave.
    current: tokio::sync::Mutex<Current>,
    parts: Swappable,
}

/// The running parts a reload replaces.
pub(crate) struct Swappable {
    pub(crate) dispatcher: Arc<Dispatcher>,
    pub(crate) wechat: Arc<Wechat>,
    pub(crate) decisions: Option<Arc<Decisions>>,
    pub(crate) legacy: Arc<LegacyRoutes>,
    /// The API keys (REST, JSON-RPC, gRPC).
    pub(crate) auth: Arc<crate::auth::Authenticator>,
    pub(crate) conversations: Conversations,
    /// Cluster mode: the access_tokens new customer-service clients take part in.
    pub(crate) tokens: Option<crate::cluster::SharedTokens>,
}

struct Current {
    config: Config,
    kf: HashMap<String, Arc<KfClient>>,
}

impl Reloader {
    /// A reloader for a process started from `config` (read from `path`, when there was a file), whose
    /// customer-service clients are `kf`.
    pub(crate) fn new(
        path: Option<&Path>,
        config: &Config,
        kf: &HashMap<String, Arc<KfClient>>,
        parts: Swappable,
    ) -> Self {
        Self {
            path: path.map(Path::to_path_buf),
            current: tokio::sync::Mutex::new(Current {
                config: config.clone(),
                kf: kf.clone(),
            }),
            parts,
        }
    }

    /// Reads the file again and puts it in force, or changes nothing and says why.
    pub async fn reload(&self) -> Result<Reloaded, ReloadError> {
        let path = self.path.clone().ok_or(ReloadError::NoFile)?;
        let mut current = self.current.lock().await;
        let wants_triage = self.parts.decisions.is_some();
        // Reading files and optimising models blocks: off the async workers.
        let (config, adapters, triage) = tokio::task::spawn_blocking(move || {
            let config = crate::config::load(Some(&path))?;
            if config.wants_triage() && !wants_triage {
                return Err(ReloadError::TriageNotLoaded);
            }
            let adapters = crate::legacy::load_adapters(&config.legacy.adapters)?;
            let triage = wants_triage
                .then(|| Triage::load(&config.triage))
                .transpose()
                .map_err(ReloadError::Triage)?;
            Ok((config, adapters, triage))
        })
        .await
        .map_err(|e| ReloadError::Internal(e.to_string()))??;
        let before = &current.config;
        let effective = in_force(before, &config);
        effective
            .validate()
            .map_err(|issues| ReloadError::Config(ConfigError::Invalid(issues)))?;
        let kf = crate::wechat::kf_clients_keeping(&config.wechat, Some((&before.wechat, &current.kf)))?;
        if let Some(tokens) = &self.parts.tokens {
            kf.values().for_each(|client| client.share_tokens(tokens.clone()));
        }
        let outbound = Outbound {
            adapters: &adapters,
            kf: &kf,
            triage: self.parts.decisions.as_ref(),
            conversations: Some(&self.parts.conversations),
        };
        let plan = self.parts.dispatcher.plan(&config.dispatch, &outbound)?;
        let accounts = Wechat::prepare(
            &config.wechat,
            self.parts.decisions.as_ref(),
            &self.parts.wechat.service,
            plan.kf_destinations(),
        )?;
        // Everything is built: from here nothing can fail.
        let changed = differences(before, &effective);
        let restart_required = differences(&effective, &config);
        let models = match (triage, &self.parts.decisions) {
            (Some(triage), Some(decisions)) => Some(decisions.replace(triage, config.triage.clone())),
            _ => None,
        };
        let destinations = self.parts.dispatcher.apply(plan);
        self.parts.wechat.replace(accounts);
        let legacy_routes = self.parts.legacy.replace(adapters);
        self.parts.auth.replace(&effective.api);
        current.config = effective;
        current.kf = kf;
        let reloaded = Reloaded {
            changed,
            restart_required,
            destinations,
            legacy_routes,
            wechat_accounts: self.parts.wechat.account_count(),
            triage: models,
        };
        tracing::info!(changed = ?reloaded.changed, restart_required = ?reloaded.restart_required, destinations = ?reloaded.destinations, "configuration reloaded");
        Ok(reloaded)
    }
}

/// What a reload of `file` over the running `before` puts in force: the file's legacy adapters, WeChat
/// accounts, dispatch, triage and API keys; the running values of everything else.
fn in_force(before: &Config, file: &Config) -> Config {
    Config {
        legacy: file.legacy.clone(),
        wechat: file.wechat.clone(),
        dispatch: file.dispatch.clone(),
        triage: file.triage.clone(),
        api: crate::auth::ApiConfig {
            listen: before.api.listen,
            ..file.api.clone()
        },
        ..before.clone()
    }
}

/// The sections whose values differ between `before` and `after`, by name.
fn differences(before: &Config, after: &Config) -> Vec<&'static str> {
    let sections: [(&'static str, bool); 13] = [
        ("legacy", before.legacy != after.legacy),
        ("wechat", before.wechat != after.wechat),
        ("dispatch", before.dispatch != after.dispatch),
        ("triage", before.triage != after.triage),
        ("server", before.server != after.server),
        ("store", before.store != after.store),
        ("log", before.log != after.log),
        ("api", before.api != after.api),
        ("grpc", before.grpc != after.grpc),
        ("jsonrpc", before.jsonrpc != after.jsonrpc),
        ("admin", before.admin != after.admin),
        ("web", before.web != after.web),
        ("cluster", before.cluster != after.cluster),
    ];
    sections
        .iter()
        .filter(|(_, differs)| *differs)
        .map(|(name, _)| *name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listener_changes_need_a_restart_and_dispatch_and_key_changes_do_not() {
        let before = Config::default();
        let mut file = Config::default();
        file.server.body_limit_bytes += 1;
        file.dispatch.poll_interval *= 2;
        file.api.rate_per_second += 1;
        file.api.listen = Some("127.0.0.1:9999".parse().unwrap());
        let effective = in_force(&before, &file);
        assert_eq!(differences(&before, &effective), ["dispatch", "api"]);
        assert_eq!(differences(&effective, &file), ["server", "api"]);
        assert_eq!(effective.api.listen, None, "the running listener stays");
        assert_eq!(effective.api.rate_per_second, file.api.rate_per_second);
        assert!(differences(&before, &before.clone()).is_empty());
    }
}
