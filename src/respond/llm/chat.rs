//! One streamed chat completion from an OpenAI-compatible endpoint (`POST {base_url}/chat/completions` with
//! `"stream": true`, answered with Server-Sent Events of `choices[0].delta.content`, ended by `data: [DONE]`), as
//! served by OpenAI and by self-hosted servers (vLLM, llama.cpp, Ollama's `/v1`).
//!
//! Owns that wire contract only. It never retries and never times out by itself: the responder runs it inside
//! its fuse, whose timeout and breaker decide. A stream that ends before `[DONE]` is an error, never a truncated
//! answer sent to a customer.

use eventsource_stream::Eventsource as _;
use serde::{Deserialize, Serialize};
use tokio_stream::StreamExt as _;

use crate::dispatch::Trips;

/// One message of the conversation given to the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: &'static str,
    /// The text.
    pub content: String,
}

/// Why no answer came back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChatError {
    /// The endpoint could not be reached, or the connection broke.
    #[error("chat endpoint unreachable")]
    Transport(#[source] reqwest::Error),
    /// The endpoint answered with an error status.
    #[error("chat endpoint answered {0}")]
    Status(u16),
    /// The stream ended before `[DONE]`.
    #[error("chat stream cut before its end")]
    Cut,
    /// A stream event is not the documented JSON.
    #[error("chat stream event is malformed")]
    Malformed(#[source] serde_json::Error),
    /// The model said nothing.
    #[error("chat answer is empty")]
    Empty,
}

impl Trips for ChatError {
    /// A refusal of our request (a bad key, an unknown model) comes from a healthy endpoint: it does not count
    /// against its health, the way the dispatcher judges destinations. An empty answer neither.
    fn trips(&self) -> bool {
        match self {
            Self::Status(code) => *code >= 500 || *code == 429 || *code == 408,
            Self::Empty => false,
            Self::Transport(_) | Self::Cut | Self::Malformed(_) => true,
        }
    }
}

/// An OpenAI-compatible chat-completions endpoint.
#[derive(Clone)]
pub struct ChatClient {
    http: reqwest::Client,
    url: String,
    model: String,
    api_key: Option<String>,
    max_tokens: u32,
    temperature: f32,
}

impl std::fmt::Debug for ChatClient {
    // The key never reaches a log line, even through a debug print of the client.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatClient")
            .field("url", &self.url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct Request<'a> {
    model: &'a str,
    messages: &'a [ChatMessage],
    stream: bool,
    max_tokens: u32,
    temperature: f32,
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<Choice>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    delta: Delta,
}

#[derive(Default, Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
}

impl ChatClient {
    /// A client for `base_url` (ending before `/chat/completions`, e.g. `http://127.0.0.1:8000/v1`).
    pub fn new(
        http: reqwest::Client,
        base_url: &str,
        model: String,
        api_key: Option<String>,
        max_tokens: u32,
        temperature: f32,
    ) -> Self {
        Self {
            http,
            url: format!("{}/chat/completions", base_url.trim_end_matches('/')),
            model,
            api_key,
            max_tokens,
            temperature,
        }
    }

    /// The whole answer to `messages`, read from the stream.
    pub async fn complete(&self, messages: &[ChatMessage]) -> Result<String, ChatError> {
        let mut request = self.http.post(&self.url).json(&Request {
            model: &self.model,
            messages,
            stream: true,
            max_tokens: self.max_tokens,
            temperature: self.temperature,
        });
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let response = request
            .send()
            .await
            .map_err(|e| ChatError::Transport(crate::redact::reqwest_error(e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(ChatError::Status(status.as_u16()));
        }
        let mut events = response.bytes_stream().eventsource();
        let mut answer = String::new();
        while let Some(event) = events.next().await {
            let event = event.map_err(|e| match e {
                eventsource_stream::EventStreamError::Transport(e) => {
                    ChatError::Transport(crate::redact::reqwest_error(e))
                }
                // Bytes that are not UTF-8 or not SSE: the stream is broken.
                _ => ChatError::Cut,
            })?;
            if event.data.trim() == "[DONE]" {
                let answer = answer.trim();
                return if answer.is_empty() {
                    Err(ChatError::Empty)
                } else {
                    Ok(answer.to_owned())
                };
            }
            let chunk: Chunk = serde_json::from_str(&event.data).map_err(ChatError::Malformed)?;
            for choice in chunk.choices {
                answer.push_str(choice.delta.content.as_deref().unwrap_or_default());
            }
        }
        Err(ChatError::Cut)
    }
}
