//! [`Wechat`]: the configured accounts, each with its codec settings, its responders (keywords, then a chain of
//! triage or a chat model → webhook) and the destination that sends its customer-service messages; and the customer-service API clients
//! ([`kf_clients`]) the dispatcher's `wechat_kf` destinations use.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use protofuse_wechat::WechatSettings;

use super::config::WechatSection;
use super::kf::KfClient;
use super::memory::Answered;
use crate::decisions::Decisions;
use crate::respond::{Chain, ChatClient, Keywords, LlmResponder, Responder, TriageResponder, Webhook};
use crate::service::Service;

/// Why the WeChat accounts could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WechatError {
    /// An account's callback keys are invalid (validation should have caught it first).
    #[error("wechat account {0} is misconfigured")]
    Account(String),
    /// The HTTP client for webhooks and the WeChat API could not be built (TLS setup).
    #[error("cannot build the http client")]
    Http(#[source] reqwest::Error),
    /// An account uses triage but none was loaded.
    #[error("a wechat account sets triage = true but triage was not loaded")]
    TriageNotLoaded,
    /// An account's chat model names a key variable that is not set.
    #[error("wechat account {account}: llm.api_key_env names {var}, which is not set")]
    LlmKeyMissing {
        /// The account.
        account: String,
        /// The variable.
        var: String,
    },
}

/// One account: its codec settings, its responders and its customer-service channel.
pub struct Account {
    settings: WechatSettings,
    /// The first responder, apart from the rest: it answers from the callback alone, before it is stored, so
    /// the message and its reply are stored in one write (`answer.rs`).
    pub(crate) keywords: Keywords,
    /// The rest of the chain (triage or a chat model, then a webhook), asked about the stored message when the
    /// keywords had nothing to say; `None` when there is no rest.
    pub(crate) responder: Option<Arc<dyn Responder>>,
    /// The dispatcher destination that sends this account's customer-service messages, when it has an AppID
    /// and AppSecret.
    pub(crate) kf_destination: Option<String>,
}

impl Account {
    /// The codec settings.
    pub fn settings(&self) -> &WechatSettings {
        &self.settings
    }
}

/// Every configured account, and what answering them needs. Cheap to share behind an `Arc`.
pub struct Wechat {
    /// Swapped whole by a configuration reload; a callback keeps the account it started with.
    current: ArcSwap<Accounts>,
    pub(crate) service: Service,
    pub(crate) answers: Answered,
    /// Responders in flight, so shutdown can let late answers go out and be stored.
    pub(crate) responders: tokio_util::task::TaskTracker,
}

impl Wechat {
    /// Builds the accounts of `section`; `service` stores the bots' replies; `kf_destinations` names, per
    /// account, the dispatcher destination that sends its customer-service messages (late answers go out
    /// through it, behind its fuse, with retries and dead letters). `triage` is built-in triage's decisions, which
    /// accounts with `triage = true` put in their responder chain.
    pub fn build(
        section: &WechatSection,
        triage: Option<&Arc<Decisions>>,
        service: Service,
        kf_destinations: &HashMap<String, String>,
    ) -> Result<Self, WechatError> {
        let accounts = Self::prepare(section, triage, &service, kf_destinations)?;
        Ok(Self {
            current: ArcSwap::from_pointee(accounts),
            service,
            answers: Answered::default(),
            responders: tokio_util::task::TaskTracker::new(),
        })
    }

    /// The accounts of `section`, built and not yet in force (see [`Wechat::build`] for the arguments).
    pub fn prepare(
        section: &WechatSection,
        triage: Option<&Arc<Decisions>>,
        service: &Service,
        kf_destinations: &HashMap<String, String>,
    ) -> Result<Accounts, WechatError> {
        if triage.is_none() && section.accounts.iter().any(|a| a.triage) {
            return Err(WechatError::TriageNotLoaded);
        }
        let http = http_client(section)?;
        let mut accounts = HashMap::new();
        for config in &section.accounts {
            let settings = config
                .callback()
                .validate()
                .map_err(|_| WechatError::Account(config.account.clone()))?;
            let keywords = Keywords::new(
                &config.handoff_keywords,
                config.handoff_kf_account.clone(),
                &config.auto_replies,
            );
            let mut chain: Vec<Box<dyn Responder>> = Vec::new();
            let decisions = triage.filter(|_| config.triage);
            if let Some(llm) = &config.llm {
                let key = llm.key().map_err(|var| WechatError::LlmKeyMissing {
                    account: config.account.clone(),
                    var,
                })?;
                let chat = ChatClient::new(
                    http.clone(),
                    &llm.base_url,
                    llm.model.clone(),
                    key,
                    llm.max_tokens,
                    llm.temperature,
                );
                chain.push(Box::new(LlmResponder::new(
                    &format!("llm:{}", config.account),
                    llm,
                    chat,
                    decisions.cloned(),
                    service.clone(),
                    config.handoff_kf_account.clone(),
                )));
            } else if let Some(triage) = decisions {
                chain.push(Box::new(TriageResponder::new(
                    triage.clone(),
                    config.handoff_kf_account.clone(),
                )));
            }
            if let Some(webhook) = &config.webhook {
                chain.push(Box::new(Webhook::new(
                    http.clone(),
                    webhook.url.clone(),
                    webhook.timeout,
                )));
            }
            let account = Account {
                settings,
                keywords,
                responder: (!chain.is_empty()).then(|| Arc::new(Chain(chain)) as Arc<dyn Responder>),
                kf_destination: kf_destinations.get(&config.account).cloned(),
            };
            accounts.insert(config.account.clone(), Arc::new(account));
        }
        Ok(Accounts {
            by_name: accounts,
            budget: section.answer_budget,
        })
    }

    /// Puts `accounts` in force (a configuration reload). Callbacks already running finish with the accounts
    /// they started with; remembered answers and responders in flight are kept.
    pub fn replace(&self, accounts: Accounts) {
        self.current.store(Arc::new(accounts));
    }

    /// The account named `name`.
    pub fn account(&self, name: &str) -> Option<Arc<Account>> {
        self.current.load().by_name.get(name).cloned()
    }

    /// How long a callback waits for its passive answer (`wechat.answer_budget`).
    pub(crate) fn budget(&self) -> Duration {
        self.current.load().budget
    }

    /// How many accounts are in force.
    pub fn account_count(&self) -> usize {
        self.current.load().by_name.len()
    }
}

/// The accounts of one `[wechat]` section with their answer budget, as [`Wechat`] holds them.
pub struct Accounts {
    by_name: HashMap<String, Arc<Account>>,
    budget: Duration,
}

fn http_client(section: &WechatSection) -> Result<reqwest::Client, WechatError> {
    reqwest::Client::builder()
        .timeout(section.api_timeout)
        .build()
        .map_err(WechatError::Http)
}

/// One customer-service API client per account that has an AppID and AppSecret.
pub fn kf_clients(section: &WechatSection) -> Result<HashMap<String, Arc<KfClient>>, WechatError> {
    kf_clients_keeping(section, None)
}

/// [`kf_clients`] for a reloaded `section`, keeping the client (and so its cached access_token) of every
/// account whose credentials and API settings are those `before` had.
pub fn kf_clients_keeping(
    section: &WechatSection,
    before: Option<(&WechatSection, &HashMap<String, Arc<KfClient>>)>,
) -> Result<HashMap<String, Arc<KfClient>>, WechatError> {
    let http = http_client(section)?;
    let mut clients = HashMap::new();
    for config in &section.accounts {
        let (Some(app_id), Some(secret)) = (&config.app_id, &config.app_secret) else {
            continue;
        };
        if secret.is_empty() {
            continue;
        }
        let kept = before.and_then(|(old, clients)| {
            let same_api = old.api_base_url == section.api_base_url && old.api_timeout == section.api_timeout;
            let same_account = old
                .accounts
                .iter()
                .any(|a| a.account == config.account && a.app_id == config.app_id && a.app_secret == config.app_secret);
            clients
                .get(&config.account)
                .filter(|_| same_api && same_account)
                .cloned()
        });
        let client = kept.unwrap_or_else(|| {
            Arc::new(KfClient::new(
                http.clone(),
                &section.api_base_url,
                app_id.clone(),
                secret.clone(),
            ))
        });
        clients.insert(config.account.clone(), client);
    }
    Ok(clients)
}
