use proptest::prelude::*;

use super::*;
use crate::vectors::{self, squash};
use crate::xml::parse;

fn reply(to: &str, from: &str, create_time: i64, body: ReplyBody) -> Reply {
    Reply {
        to_user: to.into(),
        from_user: from.into(),
        create_time,
        body,
    }
}

fn article() -> Article {
    Article {
        title: "title".into(),
        description: "description".into(),
        pic_url: "picUrl".into(),
        url: "url".into(),
    }
}

fn some(s: &str) -> Option<String> {
    Some(s.to_owned())
}

#[test]
fn every_reply_vector_renders_exactly() {
    let cases = [
        reply(
            "to",
            "from",
            1122,
            ReplyBody::Text {
                content: "content".into(),
            },
        ),
        reply(
            "to",
            "from",
            1122,
            ReplyBody::Image {
                media_id: "ddfefesfsdfef".into(),
            },
        ),
        reply(
            "to",
            "from",
            1122,
            ReplyBody::Voice {
                media_id: "ddfefesfsdfef".into(),
            },
        ),
        reply(
            "toUser",
            "fromUser",
            1122,
            ReplyBody::Video {
                media_id: "media_id".into(),
                title: some("title"),
                description: some("ddfff"),
            },
        ),
        reply(
            "toUser",
            "fromUser",
            1122,
            ReplyBody::Music {
                title: some("title"),
                description: some("ddfff"),
                thumb_media_id: "thumbMediaId".into(),
                music_url: some("musicUrl"),
                hq_music_url: some("hQMusicUrl"),
            },
        ),
        reply(
            "toUser",
            "fromUser",
            1122,
            ReplyBody::News {
                articles: vec![article(), article()],
            },
        ),
        reply(
            "touser",
            "fromuser",
            1_399_197_672,
            ReplyBody::TransferCustomerService { kf_account: None },
        ),
        reply(
            "touser",
            "fromuser",
            1_399_197_672,
            ReplyBody::TransferCustomerService {
                kf_account: some("test1@test"),
            },
        ),
    ];
    let expected = vectors::replies();
    assert_eq!(cases.len(), expected.len(), "one case per vector");
    for (case, want) in cases.iter().zip(expected) {
        let got = case.render().unwrap();
        assert_eq!(squash(&got), squash(want));
        // The vectors happen to be compact already; rendering matches them byte for byte.
        assert_eq!(got, want);
    }
}

#[test]
fn cdata_terminator_cannot_break_out() {
    let hostile = "a]]></Content><MsgType>news</MsgType><Content><![CDATA[b]]>]]]>";
    let xml = reply(
        "u",
        "gh",
        1,
        ReplyBody::Text {
            content: hostile.into(),
        },
    )
    .render()
    .unwrap();
    let fields = parse(xml.as_bytes()).unwrap();
    assert_eq!(fields.text("Content"), Some(hostile));
    assert_eq!(fields.text("MsgType"), Some("text"));
    assert_eq!(fields.len(), 5);
}

#[test]
fn forbidden_control_characters_are_dropped_before_splitting() {
    let xml = reply(
        "u",
        "gh",
        1,
        ReplyBody::Text {
            content: "a\u{0}b]]\u{1}>c\u{FFFF}\td".into(),
        },
    )
    .render()
    .unwrap();
    assert_eq!(parse(xml.as_bytes()).unwrap().text("Content"), Some("ab]]>c\td"));
}

#[test]
fn news_needs_one_to_eight_articles() {
    let none = reply("u", "gh", 1, ReplyBody::News { articles: vec![] });
    assert_eq!(none.render(), Err(ReplyError::ArticleCount { count: 0 }));
    let nine = reply(
        "u",
        "gh",
        1,
        ReplyBody::News {
            articles: vec![article(); 9],
        },
    );
    assert_eq!(nine.render(), Err(ReplyError::ArticleCount { count: 9 }));
}

#[test]
fn answering_swaps_users() {
    let doc = vectors::inbound()[0];
    let inbound = crate::decode::to_envelope(&parse(doc.as_bytes()).unwrap(), "main").unwrap();
    let r = Reply::answering(&inbound, 5, ReplyBody::Text { content: "hi".into() }).unwrap();
    assert_eq!((r.to_user.as_str(), r.from_user.as_str()), ("fromUser", "toUser"));
    let mut stripped = inbound;
    stripped.source.raw.clear();
    assert!(Reply::answering(&stripped, 5, ReplyBody::Text { content: "hi".into() }).is_none());
}

proptest! {
    #[test]
    fn any_text_survives_a_render_parse_round_trip(text in "(\\PC|\\]|>|<|&|\\n){0,80}") {
        let xml = reply("u", "gh", 1, ReplyBody::Text { content: text.clone() }).render().unwrap();
        let fields = parse(xml.as_bytes()).unwrap();
        prop_assert_eq!(fields.text("Content"), Some(text.as_str()));
    }
}
