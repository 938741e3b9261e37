//! Destinations: where a stored message is delivered. One trait, one implementation per kind of downstream. A
//! destination only delivers; breaker, timeout, retries and the outbox are the dispatcher's.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use protofuse_model::Message;

use super::fuse::Trips;
use crate::legacy::{OutboundError, send_outbound};

/// One delivery of a message to a destination.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// The stored message.
    pub message: &'a Message,
    /// 1 for the first try.
    pub attempt: u32,
}

impl Delivery<'_> {
    /// The key a receiver dedupes on: the message id, the same on every attempt and every restart.
    pub fn idempotency_key(&self) -> String {
        self.message.id.to_string()
    }
}

/// Why a delivery failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DeliveryError {
    /// The destination is down, overloaded or failing; a later attempt may succeed.
    #[error("{0}")]
    Transient(String),
    /// The destination refused this message for good (say, HTTP 400); retrying cannot help.
    #[error("{0}")]
    Permanent(String),
}

impl Trips for DeliveryError {
    fn trips(&self) -> bool {
        matches!(self, Self::Transient(_))
    }
}

/// A downstream that accepts messages.
#[async_trait]
pub trait Destination: Send + Sync + 'static {
    /// Delivers once. Must be safe to repeat: the receiver sees [`Delivery::idempotency_key`] to dedupe.
    async fn deliver(&self, delivery: Delivery<'_>) -> Result<(), DeliveryError>;
}

/// Classifies an HTTP answer: 2xx delivered; 408, 425, 429 and 5xx say "later"; other statuses refuse the
/// message itself.
fn classify(status: u16) -> Result<(), DeliveryError> {
    match status {
        200..=299 => Ok(()),
        408 | 425 | 429 | 500..=599 => Err(DeliveryError::Transient(format!("answered HTTP {status}"))),
        _ => Err(DeliveryError::Permanent(format!("answered HTTP {status}"))),
    }
}

/// POSTs the canonical message (schema v1 JSON) to a URL.
#[derive(Debug)]
pub struct Webhook {
    http: reqwest::Client,
    url: String,
    headers: Vec<(String, String)>,
}

impl Webhook {
    /// A webhook to `url` with extra `headers`.
    pub fn new(http: reqwest::Client, url: String, headers: Vec<(String, String)>) -> Self {
        Self { http, url, headers }
    }
}

#[async_trait]
impl Destination for Webhook {
    async fn deliver(&self, delivery: Delivery<'_>) -> Result<(), DeliveryError> {
        let mut request = self
            .http
            .post(&self.url)
            .json(delivery.message)
            .header("Idempotency-Key", delivery.idempotency_key())
            .header("X-Protofuse-Attempt", delivery.attempt.to_string());
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        let response = request
            .send()
            .await
            .map_err(|e| DeliveryError::Transient(format!("transport: {}", crate::redact::reqwest_error(e))))?;
        classify(response.status().as_u16())
    }
}

/// Renders the message with a legacy adapter's `[outbound]` section and sends exactly those bytes.
#[derive(Debug)]
pub struct LegacyOutbound {
    http: reqwest::Client,
    outbound: protofuse_legacy::Outbound,
    timeout: Duration,
}

impl LegacyOutbound {
    /// A destination for `outbound`; `timeout` bounds the HTTP exchange (the fuse's timeout also applies).
    pub fn new(http: reqwest::Client, outbound: protofuse_legacy::Outbound, timeout: Duration) -> Self {
        Self {
            http,
            outbound,
            timeout,
        }
    }
}

#[async_trait]
impl Destination for LegacyOutbound {
    async fn deliver(&self, delivery: Delivery<'_>) -> Result<(), DeliveryError> {
        // The nonce doubles as the idempotency key: the backend sees it signed, and it is stable per message.
        let request = self
            .outbound
            .render(
                delivery.message,
                chrono::Utc::now().timestamp(),
                &delivery.idempotency_key(),
            )
            .map_err(|e| DeliveryError::Permanent(format!("cannot render: {e}")))?;
        match send_outbound(&self.http, &request, self.timeout).await {
            Ok(_) => Ok(()),
            Err(OutboundError::Status(status)) => classify(status),
            Err(OutboundError::Method(m)) => Err(DeliveryError::Permanent(format!("invalid method {m}"))),
            Err(e @ OutboundError::Transport(_)) => Err(DeliveryError::Transient(e.to_string())),
        }
    }
}

/// A destination shared by its worker and the admin API.
pub type SharedDestination = Arc<dyn Destination>;

/// Sends a message to its conversation's WeChat user through an account's customer-service API (agents'
/// replies typed in another system reach the user this way).
pub struct WechatKf {
    account: String,
    client: Arc<crate::wechat::kf::KfClient>,
    store: Arc<dyn protofuse_store::Store>,
}

impl WechatKf {
    /// A destination for `account`'s customer-service API; `store` resolves the conversation's WeChat user.
    pub fn new(
        account: String,
        client: Arc<crate::wechat::kf::KfClient>,
        store: Arc<dyn protofuse_store::Store>,
    ) -> Self {
        Self { account, client, store }
    }
}

/// WeChat errcodes worth retrying: -1 "system busy", 45009 "api frequency limit". Others (45015 outside the
/// 48 h window, 40003 unknown user, ...) will not change on a retry.
const KF_TRANSIENT: [i64; 2] = [-1, 45009];

#[async_trait]
impl Destination for WechatKf {
    async fn deliver(&self, delivery: Delivery<'_>) -> Result<(), DeliveryError> {
        use crate::wechat::kf::KfError;
        let message = delivery.message;
        let conversation = self
            .store
            .conversation(message.conversation_id)
            .await
            .map_err(|e| DeliveryError::Transient(format!("store: {e}")))?
            .ok_or_else(|| DeliveryError::Permanent("conversation not found".to_owned()))?;
        if conversation.channel != "wechat" || conversation.account.as_deref() != Some(self.account.as_str()) {
            return Err(DeliveryError::Permanent(format!(
                "conversation is not on wechat account {}",
                self.account
            )));
        }
        let body = kf_body(&conversation.customer_id, message)?;
        match self.client.send(&body).await {
            Ok(()) => Ok(()),
            Err(KfError::Api { errcode, errmsg }) if !KF_TRANSIENT.contains(&errcode) => Err(DeliveryError::Permanent(
                format!("wechat api error {errcode}: {errmsg}"),
            )),
            Err(e) => Err(DeliveryError::Transient(e.to_string())),
        }
    }
}

/// The `message/custom/send` body for a stored message: a bot reply carries the full answer in its metadata
/// (news and music cards, which the stored content only summarises); anything else is sent from its content.
fn kf_body(open_id: &str, message: &Message) -> Result<serde_json::Value, DeliveryError> {
    use protofuse_model::Content;
    use protofuse_wechat::ReplyBody;
    let answer = message
        .metadata
        .get("answer")
        .and_then(|a| serde_json::from_value::<crate::respond::Answer>(a.clone()).ok());
    let media = |kind: &str, media: &protofuse_model::MediaRef| {
        media
            .media_id
            .clone()
            .ok_or_else(|| DeliveryError::Permanent(format!("{kind} without a media_id cannot be sent")))
    };
    let body = match (answer, &message.content) {
        (Some(answer), _) => crate::wechat::reply_body(answer),
        (None, Content::Text { text }) => ReplyBody::Text { content: text.clone() },
        (None, Content::Image { media: m }) => ReplyBody::Image {
            media_id: media("image", m)?,
        },
        (None, Content::Voice { media: m, .. }) => ReplyBody::Voice {
            media_id: media("voice", m)?,
        },
        (None, Content::Video { media: m, .. }) => ReplyBody::Video {
            media_id: media("video", m)?,
            title: None,
            description: None,
        },
        (None, other) => {
            return Err(DeliveryError::Permanent(format!(
                "{} content cannot be sent through the customer-service API",
                other.kind()
            )));
        }
    };
    protofuse_wechat::custom::message(open_id, &body).ok_or_else(|| {
        DeliveryError::Permanent("a hand-off cannot be sent through the customer-service API".to_owned())
    })
}
