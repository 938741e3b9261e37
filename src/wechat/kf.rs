//! [`KfClient`]: the customer-service message API (`POST /cgi-bin/message/custom/send`), the outbound channel
//! for answers that missed the passive-reply budget, with its `access_token` cache.
//!
//! This module owns the token's life: fetched with the AppSecret, cached until shortly before expiry, and
//! refreshed once when WeChat says it is invalid (40001/40014/42001) — but only if the failing token is still
//! the cached one, and behind a single-flight lock, so concurrent failures cause one fetch, not a stampede
//! (each fetch invalidates the previous token at WeChat). It never retries a send more than once and never
//! stores anything. When the dispatcher lands, its breaker/outbox wraps [`KfClient::send`].

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde::Deserialize;
use tokio::time::Instant;

/// The errcodes meaning "this access_token is not (or no longer) valid".
const TOKEN_ERRORS: [i64; 3] = [40001, 40014, 42001];
/// Refresh this long before WeChat's stated expiry, so a token never expires on the way.
const EXPIRY_MARGIN: Duration = Duration::from_secs(300);

/// Why a customer-service message was not sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KfError {
    /// The WeChat API could not be reached or timed out.
    #[error("wechat api unreachable")]
    Transport(#[source] reqwest::Error),
    /// In cluster mode, another node was fetching the token and none appeared in time.
    #[error("no access_token from the cluster within {0:?}")]
    TokenUnavailable(Duration),
    /// The WeChat API refused the call.
    #[error("wechat api error {errcode}: {errmsg}")]
    Api {
        /// WeChat's error code (e.g. 45015: outside the 48 h window).
        errcode: i64,
        /// WeChat's message.
        errmsg: String,
    },
}

impl From<reqwest::Error> for KfError {
    fn from(e: reqwest::Error) -> Self {
        // The API's URLs carry the access_token (and the token request the AppSecret) in the query.
        Self::Transport(crate::redact::reqwest_error(e))
    }
}

#[derive(Deserialize)]
struct ApiReply {
    #[serde(default)]
    errcode: i64,
    #[serde(default)]
    errmsg: String,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

impl ApiReply {
    fn ok(self) -> Result<Self, KfError> {
        if self.errcode == 0 {
            Ok(self)
        } else {
            Err(KfError::Api {
                errcode: self.errcode,
                errmsg: self.errmsg,
            })
        }
    }
}

struct Token {
    value: Arc<str>,
    refresh_at: Instant,
}

/// One account's customer-service API client. Share one per account (the token cache is per account).
pub struct KfClient {
    http: reqwest::Client,
    base_url: String,
    app_id: String,
    secret: String,
    cached: Mutex<Option<Token>>,
    refreshing: tokio::sync::Mutex<()>,
    /// Cluster mode: the account's token is the cluster's.
    shared: OnceLock<crate::cluster::SharedTokens>,
}

/// Longest a node waits for the token another node is fetching (longer than a claim lasts, so a node that died
/// while fetching is taken over within it).
const SHARED_WAIT: Duration = Duration::from_secs(20);

impl KfClient {
    /// A client for the account `app_id` at `base_url` (no trailing slash needed).
    pub fn new(http: reqwest::Client, base_url: &str, app_id: String, secret: String) -> Self {
        Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            app_id,
            secret,
            cached: Mutex::new(None),
            refreshing: tokio::sync::Mutex::new(()),
            shared: OnceLock::new(),
        }
    }

    /// Takes the account's token from the cluster from now on.
    pub(crate) fn share_tokens(&self, shared: crate::cluster::SharedTokens) {
        let _ = self.shared.set(shared);
    }

    /// Sends one customer-service message (`{"touser", "msgtype", …}`); refreshes the token and retries once
    /// if WeChat rejects it.
    pub async fn send(&self, body: &serde_json::Value) -> Result<(), KfError> {
        let token = self.token().await?;
        match self.post(&token, body).await {
            Err(KfError::Api { errcode, .. }) if TOKEN_ERRORS.contains(&errcode) => {
                tracing::info!(errcode, "wechat access_token rejected; refreshing once");
                self.expire(&token);
                let token = self.token_other_than(Some(&token)).await?;
                self.post(&token, body).await
            }
            other => other,
        }
    }

    async fn post(&self, token: &str, body: &serde_json::Value) -> Result<(), KfError> {
        let url = format!("{}/cgi-bin/message/custom/send", self.base_url);
        let reply: ApiReply = self
            .http
            .post(url)
            .query(&[("access_token", token)])
            .json(body)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        reply.ok().map(drop)
    }

    /// The cached token, or a fresh one; at most one fetch runs at a time.
    async fn token(&self) -> Result<Arc<str>, KfError> {
        self.token_other_than(None).await
    }

    /// [`KfClient::token`], never `rejected` (the token WeChat just refused).
    async fn token_other_than(&self, rejected: Option<&str>) -> Result<Arc<str>, KfError> {
        if let Some(token) = self.fresh() {
            return Ok(token);
        }
        let _single_flight = self.refreshing.lock().await;
        // Whoever held the lock before us may have fetched already.
        if let Some(token) = self.fresh() {
            return Ok(token);
        }
        match self.shared.get() {
            Some(shared) => self.cluster_token(shared, rejected).await,
            None => {
                let (value, lifetime) = self.fetch().await?;
                Ok(self.cache(&value, Instant::now() + lifetime))
            }
        }
    }

    /// The cluster's token: the current one, or one this node fetches after winning the claim, or the one the
    /// winner publishes. If the cluster's stream does not answer, this node fetches its own (a token that may
    /// invalidate the others', which then refresh once: better than no answer to the customer).
    async fn cluster_token(
        &self,
        shared: &crate::cluster::SharedTokens,
        rejected: Option<&str>,
    ) -> Result<Arc<str>, KfError> {
        use crate::cluster::TokenStep;
        let deadline = Instant::now() + SHARED_WAIT;
        loop {
            match shared.next(&self.app_id, rejected).await {
                Ok(TokenStep::Use { value, refresh_at }) => {
                    let left = refresh_at - chrono::Utc::now().timestamp_millis();
                    let left = Duration::from_millis(u64::try_from(left).unwrap_or_default());
                    return Ok(self.cache(&value, Instant::now() + left));
                }
                Ok(TokenStep::Fetch(claimed)) => {
                    let (value, lifetime) = self.fetch().await?;
                    let refresh_at = chrono::Utc::now().timestamp_millis()
                        + i64::try_from(lifetime.as_millis()).unwrap_or(i64::MAX / 4);
                    shared.publish(&self.app_id, &value, refresh_at, claimed).await;
                    return Ok(self.cache(&value, Instant::now() + lifetime));
                }
                Ok(TokenStep::Wait) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Ok(TokenStep::Wait) => return Err(KfError::TokenUnavailable(SHARED_WAIT)),
                Err(e) => {
                    tracing::warn!(error = %e, "cluster: token stream unavailable; fetching this node's own token");
                    let (value, lifetime) = self.fetch().await?;
                    return Ok(self.cache(&value, Instant::now() + lifetime));
                }
            }
        }
    }

    /// A new token from WeChat and how long to use it (its lifetime less a margin).
    async fn fetch(&self) -> Result<(Arc<str>, Duration), KfError> {
        let url = format!("{}/cgi-bin/token", self.base_url);
        let query = [
            ("grant_type", "client_credential"),
            ("appid", &self.app_id),
            ("secret", &self.secret),
        ];
        let reply = self
            .http
            .get(url)
            .query(&query)
            .send()
            .await?
            .error_for_status()?
            .json::<ApiReply>()
            .await?
            .ok()?;
        let value: Arc<str> = Arc::from(reply.access_token.unwrap_or_default());
        let lifetime = Duration::from_secs(reply.expires_in.unwrap_or(7200));
        let margin = EXPIRY_MARGIN.min(lifetime / 2);
        Ok((value, lifetime - margin))
    }

    fn cache(&self, value: &str, refresh_at: Instant) -> Arc<str> {
        let value: Arc<str> = Arc::from(value);
        *self.lock() = Some(Token {
            value: Arc::clone(&value),
            refresh_at,
        });
        value
    }

    fn fresh(&self) -> Option<Arc<str>> {
        self.lock()
            .as_ref()
            .filter(|t| Instant::now() < t.refresh_at && !t.value.is_empty())
            .map(|t| Arc::clone(&t.value))
    }

    /// Forgets `used` if it is still the cached token (compare-and-expire): a token another task already
    /// replaced must not throw away the newer one.
    fn expire(&self, used: &str) {
        let mut cached = self.lock();
        if cached.as_ref().is_some_and(|t| &*t.value == used) {
            *cached = None;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Token>> {
        // A panic while holding this lock cannot leave the Option half-written; the value is still usable.
        self.cached.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
