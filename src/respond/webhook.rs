//! [`Webhook`]: asks a backend over HTTP. `POST {url}` with the stored message (`schemas/v1/message.schema.json`)
//! as JSON; the backend answers `200` with an [`Answer`] (`{"type":"text","text":"…"}` or
//! `{"type":"handoff","kf_account":null}`), or `204`/`null` for nothing to say.
//!
//! This module owns that contract. It never retries: a customer waiting for a reply is better served by
//! nothing than by an answer that arrives minutes late.

use std::time::Duration;

use async_trait::async_trait;
use protofuse_model::Message;

use super::answer::Answer;
use super::responder::{RespondError, Responder};

/// A backend reached over HTTP.
#[derive(Debug, Clone)]
pub struct Webhook {
    client: reqwest::Client,
    url: String,
    timeout: Duration,
}

impl Webhook {
    /// A webhook at `url`, bounded by `timeout` per call.
    pub fn new(client: reqwest::Client, url: String, timeout: Duration) -> Self {
        Self { client, url, timeout }
    }
}

#[async_trait]
impl Responder for Webhook {
    async fn respond(&self, message: &Message) -> Result<Option<Answer>, RespondError> {
        let response = self
            .client
            .post(&self.url)
            .timeout(self.timeout)
            .json(message)
            .send()
            .await
            .map_err(|e| RespondError::Transport(crate::redact::reqwest_error(e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(RespondError::Status(status.as_u16()));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| RespondError::Transport(crate::redact::reqwest_error(e)))?;
        if status == reqwest::StatusCode::NO_CONTENT || body.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        serde_json::from_slice(&body).map_err(RespondError::Malformed)
    }
}
