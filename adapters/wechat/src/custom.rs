//! The customer-service message (`POST /cgi-bin/message/custom/send`) body: the one builder, used for every
//! message protofuse sends a WeChat user outside a passive reply (a bot answer that missed the passive-reply
//! budget, an agent's reply typed in another system).
//!
//! Pure: builds JSON, never sends it (the application's `wechat_kf` destination does, behind its fuse).

use serde_json::{Value, json};

use crate::reply::ReplyBody;

/// The `message/custom/send` body sending `body` to the user `open_id`, in the documented shape
/// (`{"touser", "msgtype", <msgtype>: {…}}`); `None` for a hand-off, which only a passive reply can express.
pub fn message(open_id: &str, body: &ReplyBody) -> Option<Value> {
    let (msgtype, payload) = match body {
        ReplyBody::Text { content } => ("text", json!({ "content": content })),
        ReplyBody::Image { media_id } => ("image", json!({ "media_id": media_id })),
        ReplyBody::Voice { media_id } => ("voice", json!({ "media_id": media_id })),
        ReplyBody::Video {
            media_id,
            title,
            description,
        } => (
            "video",
            json!({"media_id": media_id, "title": title, "description": description}),
        ),
        ReplyBody::Music {
            title,
            description,
            thumb_media_id,
            music_url,
            hq_music_url,
        } => (
            "music",
            json!({"title": title, "description": description, "musicurl": music_url,
                   "hqmusicurl": hq_music_url, "thumb_media_id": thumb_media_id}),
        ),
        ReplyBody::News { articles } => {
            let articles: Vec<_> = articles
                .iter()
                .map(|a| json!({"title": a.title, "description": a.description, "url": a.url, "picurl": a.pic_url}))
                .collect();
            ("news", json!({ "articles": articles }))
        }
        ReplyBody::TransferCustomerService { .. } => return None,
    };
    // Optional fields are left out rather than sent as null, which the API documents no meaning for.
    let mut payload = payload;
    if let Value::Object(fields) = &mut payload {
        fields.retain(|_, v| !v.is_null());
    }
    Some(json!({"touser": open_id, "msgtype": msgtype, msgtype: payload}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reply::Article;

    #[test]
    fn customer_service_messages_have_the_documented_shapes() {
        let news = ReplyBody::News {
            articles: vec![Article {
                title: "Happy Day".into(),
                description: "Is Really A Happy Day".into(),
                url: "URL".into(),
                pic_url: "PIC_URL".into(),
            }],
        };
        assert_eq!(
            message("OPENID", &news),
            Some(json!({"touser": "OPENID", "msgtype": "news", "news": {"articles": [
                {"title": "Happy Day", "description": "Is Really A Happy Day", "url": "URL", "picurl": "PIC_URL"}
            ]}}))
        );
        let image = ReplyBody::Image {
            media_id: "MEDIA_ID".into(),
        };
        assert_eq!(
            message("OPENID", &image),
            Some(json!({"touser": "OPENID", "msgtype": "image", "image": {"media_id": "MEDIA_ID"}}))
        );
        let text = ReplyBody::Text { content: "hi".into() };
        assert_eq!(
            message("OPENID", &text),
            Some(json!({"touser": "OPENID", "msgtype": "text", "text": {"content": "hi"}}))
        );
        let video = ReplyBody::Video {
            media_id: "V".into(),
            title: None,
            description: Some("d".into()),
        };
        assert_eq!(
            message("OPENID", &video),
            Some(json!({"touser": "OPENID", "msgtype": "video", "video": {"media_id": "V", "description": "d"}}))
        );
        assert_eq!(
            message("OPENID", &ReplyBody::TransferCustomerService { kf_account: None }),
            None
        );
    }
}
