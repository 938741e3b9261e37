//! Passive replies: the XML a callback may answer with (text, image, voice, video, music, news, hand-off to
//! customer service), and the `success` acknowledgement.
//!
//! This module owns the reply shapes and the escaping of every text put into them. It never lets caller text
//! end a CDATA section early (`]]>` is split across two sections) and drops the control characters XML 1.0
//! forbids, because WeChat answers malformed reply XML with "该公众号暂时无法提供服务". It does not encrypt:
//! [`crate::secure`] wraps the rendered XML for safe mode.

use protofuse_model::Envelope;

/// The body that acknowledges a callback without replying; WeChat neither retries nor shows anything.
pub const SUCCESS: &str = "success";
/// WeChat accepts at most this many articles in a news reply (and only 1 in answer to a user's message).
pub const MAX_ARTICLES: usize = 8;

/// Why a reply cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyError {
    /// A news reply needs between 1 and [`MAX_ARTICLES`] articles.
    #[error("news reply has {count} articles, expected 1 to 8")]
    ArticleCount {
        /// Articles given.
        count: usize,
    },
}

/// One article of a news reply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Article {
    /// Headline.
    pub title: String,
    /// Summary under the headline.
    pub description: String,
    /// Cover image URL.
    pub pic_url: String,
    /// Where a tap leads.
    pub url: String,
}

/// What a reply says. Media variants need a `media_id` uploaded to WeChat beforehand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyBody {
    /// Plain text.
    Text {
        /// The text.
        content: String,
    },
    /// A picture.
    Image {
        /// The uploaded picture.
        media_id: String,
    },
    /// A voice clip.
    Voice {
        /// The uploaded clip.
        media_id: String,
    },
    /// A video.
    Video {
        /// The uploaded video.
        media_id: String,
        /// Title, if any.
        title: Option<String>,
        /// Description, if any.
        description: Option<String>,
    },
    /// A music card.
    Music {
        /// Title, if any.
        title: Option<String>,
        /// Description, if any.
        description: Option<String>,
        /// The uploaded thumbnail (required by WeChat).
        thumb_media_id: String,
        /// Track URL, if any.
        music_url: Option<String>,
        /// High-quality track URL (used on Wi-Fi), if any.
        hq_music_url: Option<String>,
    },
    /// Article cards.
    News {
        /// 1 to [`MAX_ARTICLES`] articles.
        articles: Vec<Article>,
    },
    /// Hands the user's message to the customer-service (多客服) system; only valid in answer to a user
    /// message, never to an event.
    TransferCustomerService {
        /// Pin the user to this agent (`account@oa`), if given.
        kf_account: Option<String>,
    },
}

/// A complete passive reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The user's OpenID (the inbound `FromUserName`).
    pub to_user: String,
    /// The account's original id, `gh_…` (the inbound `ToUserName`).
    pub from_user: String,
    /// Unix seconds, passed in because this crate never reads the clock.
    pub create_time: i64,
    /// What it says.
    pub body: ReplyBody,
}

impl Reply {
    /// A reply to a decoded message: users swapped, the account id taken from `raw["ToUserName"]`.
    /// `None` when the envelope did not come from a WeChat callback with that field.
    pub fn answering(inbound: &Envelope, create_time: i64, body: ReplyBody) -> Option<Self> {
        let account_id = inbound.source.raw.get("ToUserName")?.as_str()?;
        Some(Self {
            to_user: inbound.sender.external_id.clone(),
            from_user: account_id.to_owned(),
            create_time,
            body,
        })
    }

    /// Renders the reply as WeChat expects it (no whitespace between elements, text in CDATA).
    pub fn render(&self) -> Result<String, ReplyError> {
        let mut out = String::with_capacity(256);
        out.push_str("<xml>");
        leaf(&mut out, "ToUserName", &self.to_user);
        leaf(&mut out, "FromUserName", &self.from_user);
        out.push_str(&format!("<CreateTime>{}</CreateTime>", self.create_time));
        leaf(&mut out, "MsgType", self.body.msg_type());
        self.body.render_into(&mut out)?;
        out.push_str("</xml>");
        Ok(out)
    }
}

impl ReplyBody {
    /// The `MsgType` this body is sent as.
    pub fn msg_type(&self) -> &'static str {
        match self {
            Self::Text { .. } => "text",
            Self::Image { .. } => "image",
            Self::Voice { .. } => "voice",
            Self::Video { .. } => "video",
            Self::Music { .. } => "music",
            Self::News { .. } => "news",
            Self::TransferCustomerService { .. } => "transfer_customer_service",
        }
    }

    fn render_into(&self, out: &mut String) -> Result<(), ReplyError> {
        match self {
            Self::Text { content } => leaf(out, "Content", content),
            Self::Image { media_id } => wrapped(out, "Image", |out| leaf(out, "MediaId", media_id)),
            Self::Voice { media_id } => wrapped(out, "Voice", |out| leaf(out, "MediaId", media_id)),
            Self::Video {
                media_id,
                title,
                description,
            } => wrapped(out, "Video", |out| {
                leaf(out, "MediaId", media_id);
                optional(out, "Title", title.as_deref());
                optional(out, "Description", description.as_deref());
            }),
            Self::Music {
                title,
                description,
                thumb_media_id,
                music_url,
                hq_music_url,
            } => wrapped(out, "Music", |out| {
                optional(out, "Title", title.as_deref());
                optional(out, "Description", description.as_deref());
                leaf(out, "ThumbMediaId", thumb_media_id);
                optional(out, "MusicUrl", music_url.as_deref());
                optional(out, "HQMusicUrl", hq_music_url.as_deref());
            }),
            Self::News { articles } => {
                if !(1..=MAX_ARTICLES).contains(&articles.len()) {
                    return Err(ReplyError::ArticleCount { count: articles.len() });
                }
                out.push_str(&format!("<ArticleCount>{}</ArticleCount>", articles.len()));
                wrapped(out, "Articles", |out| {
                    for article in articles {
                        wrapped(out, "item", |out| {
                            leaf(out, "Title", &article.title);
                            leaf(out, "Description", &article.description);
                            leaf(out, "PicUrl", &article.pic_url);
                            leaf(out, "Url", &article.url);
                        });
                    }
                });
            }
            Self::TransferCustomerService { kf_account } => {
                if let Some(kf_account) = kf_account {
                    wrapped(out, "TransInfo", |out| leaf(out, "KfAccount", kf_account));
                }
            }
        }
        Ok(())
    }
}

/// `<name><![CDATA[text]]></name>`; `name` is always one of this module's constants, so it needs no escaping.
fn leaf(out: &mut String, name: &str, text: &str) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    push_cdata(out, text);
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

fn optional(out: &mut String, name: &str, text: Option<&str>) {
    if let Some(text) = text {
        leaf(out, name, text);
    }
}

fn wrapped(out: &mut String, name: &str, inner: impl FnOnce(&mut String)) {
    out.push_str(&format!("<{name}>"));
    inner(out);
    out.push_str(&format!("</{name}>"));
}

/// Writes `text` as CDATA that parses back to exactly `text` (minus characters XML cannot carry at all).
pub(crate) fn push_cdata(out: &mut String, text: &str) {
    // Filter first: dropping a control character from `]]\u{1}>` must not create a `]]>` after the split.
    let clean: String = text.chars().filter(is_xml_char).collect();
    out.push_str("<![CDATA[");
    let mut rest = clean.as_str();
    // `]]>` would close the section: end it after `]]`, and start a new one for the `>`.
    while let Some(at) = rest.find("]]>") {
        let (before, after) = rest.split_at(at + 2);
        out.push_str(before);
        out.push_str("]]><![CDATA[");
        rest = after;
    }
    out.push_str(rest);
    out.push_str("]]>");
}

/// XML 1.0 allows no C0 control except tab, LF and CR, and neither U+FFFE nor U+FFFF, even in CDATA.
fn is_xml_char(c: &char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || (*c >= ' ' && !matches!(c, '\u{FFFE}' | '\u{FFFF}'))
}

#[cfg(test)]
mod tests;
