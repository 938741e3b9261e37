//! [`LlmResponder`]: answers from an OpenAI-compatible chat model (`chat.rs`), given the conversation's recent
//! messages and what the knowledge base found, behind its own fuse (timeout inside the breaker, bulkhead).
//!
//! Built on triage: a message triage hands off never reaches the model. When the model cannot answer in time
//! (breaker open, timeout, error, a stream cut midway), the customer gets the knowledge base's answer if triage
//! had one, else a hand-off to a person: never silence, never half an answer. The fuse's timeout is kept below
//! the WeChat answer budget (validated), so the fallback still goes out as the passive reply.

mod chat;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use protofuse_model::{Content, Message, Role};
use protofuse_store::{Order, PageRequest};
use protofuse_triage::{Action, Decision};
use serde::Deserialize;

pub use chat::{ChatClient, ChatError, ChatMessage};

use super::answer::Answer;
use super::responder::{RespondError, Responder};
use crate::decisions::{Decisions, triageable};
use crate::dispatch::{BreakerSettings, Fuse, FuseSettings};
use crate::service::Service;

/// `[wechat.accounts.llm]`: an OpenAI-compatible chat endpoint (OpenAI, or self-hosted: vLLM, llama.cpp,
/// Ollama's `/v1`) that answers after the keywords, in place of triage's own text answers.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmConfig {
    /// The API's base URL, before `/chat/completions`: `https://api.openai.com/v1`, `http://127.0.0.1:8000/v1`.
    pub base_url: String,
    /// The model name the endpoint serves.
    pub model: String,
    /// The API key itself; prefer `api_key_env` so the key stays out of the file. Sent as a bearer token, never
    /// logged.
    #[serde(default)]
    pub api_key: Option<String>,
    /// The environment variable that holds the API key.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// What the model is told before the conversation.
    #[serde(default = "default_system_prompt")]
    pub system_prompt: String,
    /// Earlier messages of the conversation given to the model.
    #[serde(default = "default_history")]
    pub history: u32,
    /// Longest answer, in tokens: a WeChat text reply holds about 600 Chinese characters.
    #[serde(default = "default_max_tokens")]
    pub max_tokens: u32,
    /// Sampling temperature.
    #[serde(default = "default_temperature")]
    pub temperature: f32,
    /// The endpoint's fuse: `timeout` (the whole streamed answer; below `wechat.answer_budget`), `slow_call`,
    /// `concurrency`, `queue`, `breaker`.
    #[serde(default = "default_fuse")]
    pub fuse: FuseSettings,
}

impl std::fmt::Debug for LlmConfig {
    // The key never reaches a log line, even through a debug print of the configuration.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("api_key_env", &self.api_key_env)
            .field("history", &self.history)
            .field("fuse", &self.fuse)
            .finish_non_exhaustive()
    }
}

fn default_system_prompt() -> String {
    "You are a customer-service assistant. Answer briefly, in the customer's language, using only the knowledge \
     given; when it does not cover the question, say that a human agent will follow up."
        .to_owned()
}

/// Enough for the model to see what the customer already said and what the bot answered.
fn default_history() -> u32 {
    10
}

fn default_max_tokens() -> u32 {
    400
}

fn default_temperature() -> f32 {
    0.3
}

/// A streamed answer of a few hundred tokens takes 1–3 s on a hosted model: 3 s leaves the fallback a second
/// of the default 4 s answer budget. Four failures in a row open the breaker for 30 s.
fn default_fuse() -> FuseSettings {
    FuseSettings {
        timeout: Duration::from_secs(3),
        slow_call: Duration::from_millis(2500),
        concurrency: 16,
        queue: 64,
        breaker: BreakerSettings {
            consecutive_failures: 4,
            ..BreakerSettings::default()
        },
    }
}

impl LlmConfig {
    /// The API key from `api_key` or the variable `api_key_env` names; `Err` names a variable that is unset.
    pub fn key(&self) -> Result<Option<String>, String> {
        match &self.api_key_env {
            Some(var) => std::env::var(var).map(Some).map_err(|_| var.clone()),
            None => Ok(self.api_key.clone()),
        }
    }
}

/// A chat model answering text messages, with triage's decision as its knowledge and its fallback.
pub struct LlmResponder {
    chat: ChatClient,
    fuse: Fuse,
    system_prompt: String,
    history: u32,
    decisions: Option<Arc<Decisions>>,
    service: Service,
    kf_account: Option<String>,
}

impl LlmResponder {
    /// A responder named `name` (its fuse's name in metrics and logs) asking `chat`.
    pub fn new(
        name: &str,
        config: &LlmConfig,
        chat: ChatClient,
        decisions: Option<Arc<Decisions>>,
        service: Service,
        kf_account: Option<String>,
    ) -> Self {
        Self {
            chat,
            fuse: Fuse::new(name, config.fuse.clone()),
            system_prompt: config.system_prompt.clone(),
            history: config.history,
            decisions,
            service,
            kf_account,
        }
    }

    /// The fuse, for operators.
    pub fn fuse(&self) -> &Fuse {
        &self.fuse
    }

    /// The system prompt with the knowledge, the earlier messages, then the customer's message.
    async fn prompt(&self, message: &Message, text: &str, decision: Option<&Decision>) -> Vec<ChatMessage> {
        let mut system = self.system_prompt.clone();
        let knowledge: Vec<&str> = match decision.map(|d| &d.decision) {
            Some(Action::BotAnswer { answer, .. }) => vec![answer.as_str()],
            Some(Action::Suggest { questions }) => questions.iter().map(String::as_str).collect(),
            _ => Vec::new(),
        };
        if !knowledge.is_empty() {
            system.push_str("\n\nKnowledge:\n");
            for entry in knowledge {
                system.push_str("- ");
                system.push_str(entry);
                system.push('\n');
            }
        }
        let mut messages = vec![ChatMessage {
            role: "system",
            content: system,
        }];
        let page = PageRequest {
            after: None,
            limit: self.history + 1,
            order: Order::Descending,
        };
        // Without the history the model still answers the message itself: worth more than no answer.
        match self.service.messages(message.conversation_id, page).await {
            Ok(recent) => {
                for earlier in recent.items.iter().rev().filter(|m| m.id != message.id) {
                    if let Content::Text { text } = &earlier.content {
                        let role = if earlier.sender.role == Role::Customer {
                            "user"
                        } else {
                            "assistant"
                        };
                        messages.push(ChatMessage {
                            role,
                            content: text.clone(),
                        });
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "conversation history unreadable; asking the model without it"),
        }
        messages.push(ChatMessage {
            role: "user",
            content: text.to_owned(),
        });
        messages
    }

    /// What the customer gets when the model cannot answer: the knowledge base's answer, else a person.
    fn fallback(&self, decision: Option<&Decision>) -> Answer {
        match decision.map(|d| &d.decision) {
            Some(Action::BotAnswer { answer, .. }) => Answer::Text { text: answer.clone() },
            _ => Answer::Handoff {
                kf_account: self.kf_account.clone(),
            },
        }
    }
}

#[async_trait]
impl Responder for LlmResponder {
    async fn respond(&self, message: &Message) -> Result<Option<Answer>, RespondError> {
        let Some(text) = triageable(message) else {
            return Ok(None);
        };
        let decision = match &self.decisions {
            Some(decisions) => Some(
                decisions
                    .decide(message, text)
                    .await
                    .map_err(|e| RespondError::Triage(Box::new(e)))?,
            ),
            None => None,
        };
        let decision = decision.as_deref();
        if let Some(Action::Handoff { .. }) = decision.map(|d| &d.decision) {
            return Ok(Some(Answer::Handoff {
                kf_account: self.kf_account.clone(),
            }));
        }
        let prompt = self.prompt(message, text, decision).await;
        match self.fuse.call(self.chat.complete(&prompt)).await {
            Ok(answer) => Ok(Some(Answer::Text { text: answer })),
            Err(e) => {
                tracing::warn!(
                    message = %message.id,
                    fuse = self.fuse.name(),
                    error = %e,
                    cause = ?std::error::Error::source(&e).map(ToString::to_string),
                    "the chat model did not answer; falling back"
                );
                Ok(Some(self.fallback(decision)))
            }
        }
    }
}
