//! `[wechat]`: the Official Accounts protofuse answers on `/wechat/{account}`, and how each one answers.
//!
//! This module owns the shape of the section, its defaults (with their reasons) and its rules. It never opens a
//! socket: validation is pure, and the callback keys are checked by the codec's own `WechatConfig::validate`, so
//! the endpoint and `check-config` agree on what a valid account is.

use std::time::Duration;

use protofuse_wechat::{Mode, WechatConfig, config::DEFAULT_MAX_BODY_BYTES, config::DEFAULT_REPLAY_WINDOW_SECS};
use serde::Deserialize;

use crate::config::ConfigIssue;
use crate::respond::{AutoReply, MatchKind};

/// WeChat gives up after 5 s; answering within 4 s leaves a second for the network and the proxy in between.
pub const DEFAULT_ANSWER_BUDGET: Duration = Duration::from_secs(4);
/// Where the customer-service API lives; tests point this at a local fake.
pub const DEFAULT_API_BASE_URL: &str = "https://api.weixin.qq.com";
/// A WeChat API call slower than this is treated as failed; the late answer is then logged, not retried.
pub const DEFAULT_API_TIMEOUT: Duration = Duration::from_secs(5);
/// WeChat's own deadline; an answer budget at or above it would make WeChat retry every slow message.
const WECHAT_DEADLINE: Duration = Duration::from_secs(5);

/// `[wechat]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WechatSection {
    /// How long a callback may wait for its answer before it is acknowledged with `success` and the answer is
    /// sent later through the customer-service API.
    #[serde(with = "humantime_serde")]
    pub answer_budget: Duration,
    /// Base URL of the WeChat API (`/cgi-bin/token`, `/cgi-bin/message/custom/send`).
    pub api_base_url: String,
    /// Timeout of one WeChat API call.
    #[serde(with = "humantime_serde")]
    pub api_timeout: Duration,
    /// The accounts, each on `/wechat/{account}`.
    pub accounts: Vec<AccountConfig>,
}

impl Default for WechatSection {
    fn default() -> Self {
        Self {
            answer_budget: DEFAULT_ANSWER_BUDGET,
            api_base_url: DEFAULT_API_BASE_URL.to_owned(),
            api_timeout: DEFAULT_API_TIMEOUT,
            // The demo account (public sample credentials) only where a configuration names it.
            accounts: Vec::new(),
        }
    }
}

/// `[[wechat.accounts]]`: one Official Account. The callback keys mirror the codec's `WechatConfig` (not
/// flattened into it, because serde cannot combine `flatten` with `deny_unknown_fields`).
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// The `{account}` path segment.
    pub account: String,
    /// The console Token.
    pub token: String,
    /// `plaintext`, `compatible` or `safe`, as set in the console.
    #[serde(default)]
    pub mode: Mode,
    /// The AppID; required unless plaintext, and for the customer-service API.
    #[serde(default)]
    pub app_id: Option<String>,
    /// The 43-character EncodingAESKey; required unless plaintext.
    #[serde(default)]
    pub encoding_aes_key: Option<String>,
    /// The AppSecret; without it, answers that miss the budget cannot be delivered and are only logged.
    #[serde(default)]
    pub app_secret: Option<String>,
    /// Largest callback body, bytes.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Largest accepted distance between the query timestamp and now, seconds; 0 disables the check.
    #[serde(default = "default_replay_window_secs")]
    pub replay_window_secs: u64,
    /// Text messages containing one of these go to a human (`transfer_customer_service`).
    #[serde(default)]
    pub handoff_keywords: Vec<String>,
    /// Pin handed-off users to this agent (`agent@account`), if set.
    #[serde(default)]
    pub handoff_kf_account: Option<String>,
    /// Keyword auto-replies, first match wins.
    #[serde(default)]
    pub auto_replies: Vec<AutoReply>,
    /// A backend asked when no keyword matched.
    #[serde(default)]
    pub webhook: Option<WebhookConfig>,
    /// Built-in triage (`[triage]`) answers after the keywords and before the webhook.
    #[serde(default)]
    pub triage: bool,
    /// A chat model answers after the keywords (instead of triage's own text answers, with triage's knowledge
    /// and hand-offs when `triage = true`), before the webhook.
    #[serde(default)]
    pub llm: Option<crate::respond::LlmConfig>,
}

fn default_max_body_bytes() -> usize {
    DEFAULT_MAX_BODY_BYTES
}

fn default_replay_window_secs() -> u64 {
    DEFAULT_REPLAY_WINDOW_SECS
}

/// `[wechat.accounts.webhook]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Receives `POST` with the stored message as JSON.
    pub url: String,
    /// Longest the backend may take; past the answer budget its answer goes out through the customer-service API.
    #[serde(with = "humantime_serde", default = "default_webhook_timeout")]
    pub timeout: Duration,
}

/// Long enough for a slow triage model, short enough that the customer still remembers the question.
fn default_webhook_timeout() -> Duration {
    Duration::from_secs(30)
}

impl AccountConfig {
    /// The shipped demo account: the official documentation's safe-mode sample credentials (public, so
    /// anyone can sign requests for it: replace it before exposing the listener).
    pub fn demo() -> Self {
        Self {
            account: "demo".to_owned(),
            token: "spamtest".to_owned(),
            mode: Mode::Safe,
            app_id: Some("wx2c2769f8efd9abc2".to_owned()),
            encoding_aes_key: Some("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG".to_owned()),
            app_secret: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            replay_window_secs: DEFAULT_REPLAY_WINDOW_SECS,
            handoff_keywords: ["人工", "转人工", "human"].map(str::to_owned).to_vec(),
            handoff_kf_account: None,
            auto_replies: vec![AutoReply {
                keyword: "你好".to_owned(),
                match_kind: MatchKind::Contains,
                reply: "你好！这里是 protofuse 演示账号。回复“人工”转人工客服。".to_owned(),
            }],
            webhook: None,
            triage: false,
            llm: None,
        }
    }

    /// The codec's view of the callback keys.
    pub fn callback(&self) -> WechatConfig {
        WechatConfig {
            account: self.account.clone(),
            token: self.token.clone(),
            mode: self.mode,
            app_id: self.app_id.clone(),
            encoding_aes_key: self.encoding_aes_key.clone(),
            max_body_bytes: self.max_body_bytes,
            replay_window_secs: self.replay_window_secs,
        }
    }
}

impl std::fmt::Debug for AccountConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountConfig")
            .field("callback", &self.callback())
            .field("app_secret", &self.app_secret.as_ref().map(|_| "<redacted>"))
            .field("handoff_keywords", &self.handoff_keywords)
            .field("auto_replies", &self.auto_replies.len())
            .field("webhook", &self.webhook)
            .field("triage", &self.triage)
            .finish_non_exhaustive()
    }
}

/// The token and EncodingAESKey of WeChat's documented safe-mode sample (the shipped demo account): public, so an
/// account using either can be signed for by anyone.
const PUBLIC_SAMPLE_TOKEN: &str = "spamtest";
const PUBLIC_SAMPLE_AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

impl AccountConfig {
    /// Whether this account's credentials are the documentation's public sample (the demo account).
    pub fn uses_public_sample_credentials(&self) -> bool {
        self.token == PUBLIC_SAMPLE_TOKEN || self.encoding_aes_key.as_deref() == Some(PUBLIC_SAMPLE_AES_KEY)
    }
}

impl WechatSection {
    /// Every broken rule of the section, keys named like `wechat.accounts[0].encoding_aes_key`.
    pub(crate) fn issues(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        let mut issue = |key: String, message: &str| issues.push(ConfigIssue::new(key, message));
        if self.answer_budget.is_zero() || self.answer_budget >= WECHAT_DEADLINE {
            issue(
                "wechat.answer_budget".to_owned(),
                "must be greater than 0s and below WeChat's 5s deadline",
            );
        }
        if !is_http_url(&self.api_base_url) {
            issue("wechat.api_base_url".to_owned(), "must be an http:// or https:// URL");
        }
        if self.api_timeout.is_zero() {
            issue("wechat.api_timeout".to_owned(), "must be greater than 0s");
        }
        for (i, account) in self.accounts.iter().enumerate() {
            let key = |field: &str| format!("wechat.accounts[{i}].{field}");
            if let Err(found) = account.callback().validate() {
                for e in found {
                    issue(key(e.field), e.reason);
                }
            }
            if self.accounts[..i].iter().any(|a| a.account == account.account) {
                issue(key("account"), "is used by an earlier account; names must be unique");
            }
            if account.handoff_keywords.iter().any(|k| k.trim().is_empty()) {
                issue(key("handoff_keywords"), "must not contain empty keywords");
            }
            for (j, rule) in account.auto_replies.iter().enumerate() {
                if rule.keyword.trim().is_empty() || rule.reply.is_empty() {
                    issue(
                        key(&format!("auto_replies[{j}]")),
                        "needs a non-empty keyword and reply",
                    );
                }
            }
            if let Some(llm) = &account.llm {
                if !is_http_url(&llm.base_url) {
                    issue(key("llm.base_url"), "must be an http:// or https:// URL");
                }
                if llm.model.trim().is_empty() {
                    issue(key("llm.model"), "must name the model the endpoint serves");
                }
                if llm.api_key.is_some() && llm.api_key_env.is_some() {
                    issue(
                        key("llm.api_key"),
                        "give the key or the variable holding it (api_key_env), not both",
                    );
                }
                if llm.fuse.timeout.is_zero() || llm.fuse.timeout >= self.answer_budget {
                    issue(
                        key("llm.fuse.timeout"),
                        "must be greater than 0s and below wechat.answer_budget, so a slow model's fallback is \
                         still the passive reply",
                    );
                }
            }
            if let Some(webhook) = &account.webhook {
                if !is_http_url(&webhook.url) {
                    issue(key("webhook.url"), "must be an http:// or https:// URL");
                }
                if webhook.timeout.is_zero() {
                    issue(key("webhook.timeout"), "must be greater than 0s");
                }
            }
        }
        issues
    }
}

fn is_http_url(url: &str) -> bool {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    rest.is_some_and(|r| !r.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn a_chat_model_must_answer_within_the_budget_and_keep_its_key_in_one_place() {
        let mut config = Config::default();
        let mut account = AccountConfig::demo();
        let mut llm: crate::respond::LlmConfig = serde_json::from_value(serde_json::json!({
            "base_url": "http://127.0.0.1:8000/v1",
            "model": " ",
            "api_key": "sk-1",
            "api_key_env": "OPENAI_API_KEY",
        }))
        .unwrap();
        llm.fuse.timeout = config.wechat.answer_budget;
        account.llm = Some(llm);
        config.wechat.accounts.push(account);
        let issues = config.validate().unwrap_err();
        let keys: Vec<_> = issues.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "wechat.accounts[0].llm.model",
                "wechat.accounts[0].llm.api_key",
                "wechat.accounts[0].llm.fuse.timeout",
            ]
        );
        // Neither the key nor its issues print the key itself.
        let shown = format!("{:?} {issues:?}", config.wechat.accounts[0]);
        assert!(!shown.contains("sk-1"), "{shown}");
    }

    #[test]
    fn issues_name_the_account_entry_and_key() {
        let mut config = Config::default();
        config.wechat.accounts.push(AccountConfig::demo());
        config.wechat.answer_budget = Duration::from_secs(5);
        let mut broken = AccountConfig::demo();
        broken.encoding_aes_key = Some("short".to_owned());
        broken.webhook = Some(WebhookConfig {
            url: "ftp://x".to_owned(),
            timeout: Duration::from_secs(1),
        });
        config.wechat.accounts.push(broken);
        let keys: Vec<_> = config.validate().unwrap_err().into_iter().map(|i| i.key).collect();
        assert_eq!(
            keys,
            [
                "wechat.answer_budget",
                "wechat.accounts[1].encoding_aes_key",
                "wechat.accounts[1].account",
                "wechat.accounts[1].webhook.url",
            ]
        );
    }
}
