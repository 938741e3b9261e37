//! [`Answer`]: what a responder wants said to the customer, in protocol-neutral terms. The WeChat side renders
//! it as a passive reply or a customer-service message; the store keeps it in the bot reply's metadata.

use serde::{Deserialize, Serialize};

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
