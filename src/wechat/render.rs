//! An [`Answer`] in WeChat's terms: the codec's reply body (rendered as passive reply XML here, or as a
//! customer-service message by the `wechat_kf` destination through `protofuse_wechat::custom`), and the
//! canonical content stored for the bot's reply.
//!
//! This module owns those mappings only. It renders through the codec (which escapes `]]>` and control
//! characters), never builds XML by hand, and never sends or stores anything.

use protofuse_model::{Content, MediaRef, Message, Timestamp};
use protofuse_wechat::reply::{Article, Reply, ReplyBody};

use crate::respond::Answer;

/// The passive reply XML for `answer` to `message`; `None` when there is nothing to say (so: `success`).
pub fn passive_reply(message: &Message, answer: Option<&Answer>, now: Timestamp) -> Option<String> {
    let account_id = message.source.raw.get("ToUserName")?.as_str()?;
    let reply = Reply {
        to_user: message.sender.external_id.clone(),
        from_user: account_id.to_owned(),
        create_time: now.timestamp(),
        body: reply_body(answer?.clone()),
    };
    match reply.render() {
        Ok(xml) => Some(xml),
        Err(e) => {
            tracing::warn!(error = %e, "answer cannot be rendered as a passive reply; answering success");
            None
        }
    }
}

/// The codec's reply body for `answer`: what a passive reply or a customer-service message says.
pub(crate) fn reply_body(answer: Answer) -> ReplyBody {
    match answer {
        Answer::Text { text } => ReplyBody::Text { content: text },
        Answer::Image { media_id } => ReplyBody::Image { media_id },
        Answer::Voice { media_id } => ReplyBody::Voice { media_id },
        Answer::Video {
            media_id,
            title,
            description,
        } => ReplyBody::Video {
            media_id,
            title,
            description,
        },
        Answer::Music {
            thumb_media_id,
            title,
            description,
            music_url,
            hq_music_url,
        } => ReplyBody::Music {
            title,
            description,
            thumb_media_id,
            music_url,
            hq_music_url,
        },
        Answer::News { articles } => ReplyBody::News {
            articles: articles
                .into_iter()
                .map(|a| Article {
                    title: a.title,
                    description: a.description,
                    pic_url: a.pic_url,
                    url: a.url,
                })
                .collect(),
        },
        Answer::Handoff { kf_account } => ReplyBody::TransferCustomerService { kf_account },
    }
}

/// The canonical content of the stored bot reply; the full answer also goes to the reply's metadata.
pub(super) fn stored_content(answer: &Answer) -> Content {
    let media = |media_id: &str| MediaRef {
        media_id: Some(media_id.to_owned()),
        ..MediaRef::default()
    };
    match answer {
        Answer::Text { text } => Content::Text { text: text.clone() },
        Answer::Image { media_id } => Content::Image { media: media(media_id) },
        Answer::Voice { media_id } => Content::Voice {
            media: media(media_id),
            format: None,
            recognition: None,
        },
        Answer::Video { media_id, .. } => Content::Video {
            media: media(media_id),
            thumb_media_id: None,
            short: false,
        },
        Answer::News { articles } if !articles.is_empty() && !articles[0].url.is_empty() => Content::Link {
            url: articles[0].url.clone(),
            title: Some(articles[0].title.clone()),
            description: Some(articles[0].description.clone()),
        },
        Answer::Music { .. } | Answer::News { .. } => Content::Event {
            kind: answer_kind(answer).to_owned(),
            key: None,
        },
        Answer::Handoff { kf_account } => Content::Event {
            kind: "handoff".to_owned(),
            key: kf_account.clone(),
        },
    }
}

fn answer_kind(answer: &Answer) -> &'static str {
    match answer {
        Answer::Music { .. } => "music",
        Answer::News { .. } => "news",
        _ => "answer",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::respond::NewsArticle;

    #[test]
    fn a_news_answer_is_stored_as_its_first_link() {
        let news = Answer::News {
            articles: vec![NewsArticle {
                title: "Happy Day".into(),
                description: "Is Really A Happy Day".into(),
                url: "URL".into(),
                pic_url: "PIC_URL".into(),
            }],
        };
        assert!(matches!(stored_content(&news), Content::Link { url, .. } if url == "URL"));
    }
}
