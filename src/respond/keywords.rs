//! [`Keywords`]: an auto-reply table from configuration, matched against text messages.
//!
//! This module owns matching only. It never answers anything but text messages (events and media get `None`),
//! so a hand-off keyword can never turn an event into a `transfer_customer_service`, which WeChat forbids.

use async_trait::async_trait;
use protofuse_model::{Content, Message};

use serde::Deserialize;

use super::answer::Answer;
use super::responder::{RespondError, Responder};

/// How an auto-reply keyword is compared with the message text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchKind {
    /// The whole text, trimmed, equals the keyword (ASCII case-insensitive).
    #[default]
    Exact,
    /// The text contains the keyword (ASCII case-insensitive).
    Contains,
}

/// One auto-reply rule (`[[wechat.accounts.auto_replies]]`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoReply {
    /// What to look for.
    pub keyword: String,
    /// How to compare.
    #[serde(default, rename = "match")]
    pub match_kind: MatchKind,
    /// The text answered.
    pub reply: String,
}

/// Hand-off keywords first, then auto-replies in order.
#[derive(Debug, Clone, Default)]
pub struct Keywords {
    handoff: Vec<String>,
    kf_account: Option<String>,
    replies: Vec<AutoReply>,
}

impl Keywords {
    /// A table; `handoff` keywords match when contained in the text.
    pub fn new(handoff: &[String], kf_account: Option<String>, replies: &[AutoReply]) -> Self {
        Self {
            handoff: handoff.iter().map(|k| k.trim().to_lowercase()).collect(),
            kf_account,
            replies: replies.to_vec(),
        }
    }

    /// The answer for `text`, if any rule matches.
    pub fn answer(&self, text: &str) -> Option<Answer> {
        let text = text.trim().to_lowercase();
        if self.handoff.iter().any(|k| text.contains(k.as_str())) {
            return Some(Answer::Handoff {
                kf_account: self.kf_account.clone(),
            });
        }
        self.replies
            .iter()
            .find(|rule| {
                let keyword = rule.keyword.trim().to_lowercase();
                match rule.match_kind {
                    MatchKind::Exact => text == keyword,
                    MatchKind::Contains => text.contains(&keyword),
                }
            })
            .map(|rule| Answer::Text {
                text: rule.reply.clone(),
            })
    }
}

#[async_trait]
impl Responder for Keywords {
    async fn respond(&self, message: &Message) -> Result<Option<Answer>, RespondError> {
        Ok(match &message.content {
            Content::Text { text } => self.answer(text),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Keywords {
        let replies = [
            AutoReply {
                keyword: "Hours".into(),
                match_kind: MatchKind::Exact,
                reply: "9-18".into(),
            },
            AutoReply {
                keyword: "退货".into(),
                match_kind: MatchKind::Contains,
                reply: "退货流程…".into(),
            },
        ];
        Keywords::new(&["人工".into(), "human".into()], Some("a@b".into()), &replies)
    }

    #[test]
    fn handoff_wins_then_rules_in_order() {
        let t = table();
        assert_eq!(
            t.answer("我要转人工"),
            Some(Answer::Handoff {
                kf_account: Some("a@b".into())
            })
        );
        assert_eq!(t.answer(" HOURS "), Some(Answer::Text { text: "9-18".into() }));
        assert_eq!(t.answer("opening hours?"), None);
        assert_eq!(
            t.answer("怎么退货"),
            Some(Answer::Text {
                text: "退货流程…".into()
            })
        );
        assert_eq!(
            t.answer("Human please").map(|a| matches!(a, Answer::Handoff { .. })),
            Some(true)
        );
    }
}
