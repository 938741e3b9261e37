//! Who answers a customer: the [`Responder`] seam between a stored inbound message and the reply a protocol
//! sends back: [`Keywords`] (a table from config), [`TriageResponder`] (built-in triage) and [`Webhook`] (a
//! backend asked over HTTP), tried in order by [`Chain`].
//!
//! This module owns the shape of an answer, not its delivery: a responder never talks to WeChat, never stores
//! anything and never decides whether its answer arrives in time. The caller (e.g. `crate::wechat`) races it
//! against its budget and delivers the answer passively or later.

mod keywords;
mod triage;
mod webhook;

use async_trait::async_trait;
use protofuse_model::Message;
use serde::{Deserialize, Serialize};

pub use keywords::Keywords;
pub use triage::TriageResponder;
pub use webhook::Webhook;

/// What a responder wants said to the customer. Media answers name media already uploaded to the platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Answer {
    /// A text reply.
    Text {
        /// The text.
        text: String,
    },
    /// A picture.
    Image {
        /// The platform's media id.
        media_id: String,
    },
    /// A voice clip.
    Voice {
        /// The platform's media id.
        media_id: String,
    },
    /// A video.
    Video {
        /// The platform's media id.
        media_id: String,
        /// Title, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title: Option<String>,
        /// Description, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
    },
    /// A music card.
    Music {
        /// The thumbnail's media id.
        thumb_media_id: String,
        /// Title, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title: Option<String>,
        /// Description, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        /// Track URL, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        music_url: Option<String>,
        /// High-quality track URL, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hq_music_url: Option<String>,
    },
    /// Article cards (WeChat shows one in answer to a user's message).
    News {
        /// The articles.
        articles: Vec<NewsArticle>,
    },
    /// Hand the conversation to a human agent.
    Handoff {
        /// A specific agent, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kf_account: Option<String>,
    },
}

/// One article card of [`Answer::News`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NewsArticle {
    /// Headline.
    pub title: String,
    /// Summary.
    pub description: String,
    /// Where a tap leads.
    pub url: String,
    /// Cover image URL.
    pub pic_url: String,
}

/// Why a responder could not answer. The caller logs it and answers nothing; the customer's message is stored
/// regardless.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RespondError {
    /// The backend could not be reached or did not answer in time.
    #[error("responder backend unreachable")]
    Transport(#[source] reqwest::Error),
    /// The backend answered with an error status.
    #[error("responder backend answered {0}")]
    Status(u16),
    /// The backend's answer is not the documented JSON.
    #[error("responder backend answered malformed json")]
    Malformed(#[source] serde_json::Error),
}

/// Produces the answer to one stored inbound message.
///
/// May be called concurrently, and may take as long as it likes: the caller bounds it. Called at most once
/// per stored message (duplicates never reach it).
#[async_trait]
pub trait Responder: Send + Sync + 'static {
    /// The answer, or `None` when there is nothing to say.
    async fn respond(&self, message: &Message) -> Result<Option<Answer>, RespondError>;
}

/// Responders tried in order; the first answer wins, an error stops the chain.
pub struct Chain(pub Vec<Box<dyn Responder>>);

#[async_trait]
impl Responder for Chain {
    async fn respond(&self, message: &Message) -> Result<Option<Answer>, RespondError> {
        for responder in &self.0 {
            if let Some(answer) = responder.respond(message).await? {
                return Ok(Some(answer));
            }
        }
        Ok(None)
    }
}
