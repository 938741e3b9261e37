use serde_json::json;

use super::*;
use crate::vectors;
use crate::xml::parse;

fn decode(doc: &str) -> Envelope {
    to_envelope(&parse(doc.as_bytes()).unwrap(), "main").unwrap()
}

fn vector(msg_type: &str, event: Option<&str>) -> Envelope {
    let found = vectors::inbound().into_iter().find(|doc| {
        doc.contains(&format!("<MsgType><![CDATA[{msg_type}]]>"))
            && event.is_none_or(|e| doc.contains(&format!("<Event><![CDATA[{e}]]>")))
    });
    decode(found.unwrap_or_else(|| panic!("no vector for {msg_type}/{event:?}")))
}

fn raw(env: &Envelope) -> serde_json::Value {
    serde_json::Value::Object(env.source.raw.clone())
}

#[test]
fn every_vector_decodes_to_a_valid_envelope() {
    for doc in vectors::inbound() {
        let env = decode(doc);
        env.validate().unwrap_or_else(|e| panic!("{e}: {doc}"));
        assert_eq!(env.channel, "wechat");
        assert_eq!(env.source.protocol, Protocol::Wechat);
        assert_eq!(env.source.account.as_deref(), Some("main"));
        assert!(env.sent_at.is_some(), "{doc}");
        assert!(env.source.raw.contains_key("ToUserName"), "{doc}");
        assert_eq!(
            decode(doc).idempotency_key,
            env.idempotency_key,
            "key is stable across repeats"
        );
    }
}

#[test]
fn text_message_maps_every_field() {
    let env = vector("text", None);
    assert_eq!(
        env.content,
        Content::Text {
            text: "this is a test".into()
        }
    );
    assert_eq!(env.sender.external_id, "fromUser");
    assert_eq!(env.sent_at.unwrap().timestamp(), 1_348_831_860);
    assert_eq!(env.source.external_id.as_deref(), Some("1234567890123456"));
    assert_eq!(raw(&env), json!({"ToUserName": "toUser"}));
    assert_eq!(
        env.idempotency_key,
        IdempotencyKey::derive("wechat", &["main", "fromUser", "1234567890123456"])
    );
}

#[test]
fn media_messages() {
    let image = vector("image", None);
    let media = MediaRef {
        url: Some("this is a url".into()),
        media_id: Some("media_id".into()),
        mime_type: None,
    };
    assert_eq!(image.content, Content::Image { media });
    let voice = vector("voice", None);
    assert!(matches!(&voice.content, Content::Voice { format: Some(f), recognition: None, .. } if f == "Format"));
    let video = vector("video", None);
    assert!(
        matches!(&video.content, Content::Video { thumb_media_id: Some(t), short: false, .. } if t == "thumb_media_id")
    );
}

#[test]
fn voice_recognition_and_short_video() {
    let voice = decode(
        "<xml><FromUserName>u</FromUserName><CreateTime>1</CreateTime><MsgType>voice</MsgType>\
         <MediaId>m</MediaId><Format>amr</Format><Recognition>你好</Recognition><MsgId>7</MsgId></xml>",
    );
    assert!(matches!(&voice.content, Content::Voice { recognition: Some(r), .. } if r == "你好"));
    let short = decode(
        "<xml><FromUserName>u</FromUserName><CreateTime>1</CreateTime><MsgType>shortvideo</MsgType>\
         <MediaId>m</MediaId><ThumbMediaId>t</ThumbMediaId><MsgId>8</MsgId></xml>",
    );
    assert!(matches!(short.content, Content::Video { short: true, .. }));
}

#[test]
fn location_and_link() {
    let loc = vector("location", None);
    let expected = Content::Location {
        latitude: 23.134521,
        longitude: 113.358803,
        scale: Some(20.0),
        label: Some("位置信息".into()),
    };
    assert_eq!(loc.content, expected);
    assert_eq!(raw(&loc), json!({"ToUserName": "toUser"}));
    let link = vector("link", None);
    let expected = Content::Link {
        url: "url".into(),
        title: Some("公众平台官网链接".into()),
        description: Some("公众平台官网链接".into()),
    };
    assert_eq!(link.content, expected);
}

#[test]
fn subscribe_events() {
    let plain = vector("event", Some("subscribe"));
    assert_eq!(
        plain.content,
        Content::Event {
            kind: "subscribe".into(),
            key: None
        }
    );
    let qr = vectors::inbound()
        .into_iter()
        .find(|d| d.contains("qrscene_"))
        .map(decode)
        .unwrap();
    assert_eq!(
        qr.content,
        Content::Event {
            kind: "subscribe".into(),
            key: Some("123123".into())
        }
    );
    assert_eq!(qr.source.raw.get("Ticket"), Some(&json!("TICKET")));
    assert_eq!(
        qr.source.raw.get("EventKey"),
        Some(&json!("qrscene_123123")),
        "stripped text stays verbatim in raw"
    );
    assert_ne!(plain.idempotency_key, qr.idempotency_key);
    assert_eq!(
        qr.idempotency_key,
        IdempotencyKey::derive(
            "wechat",
            &["main", "FromUser", "123456789", "subscribe", "qrscene_123123"]
        )
    );
}

#[test]
fn upper_case_events() {
    let scan = vector("event", Some("SCAN"));
    assert_eq!(
        scan.content,
        Content::Event {
            kind: "scan".into(),
            key: Some("123123".into())
        }
    );
    assert_eq!(scan.source.raw.get("Event"), Some(&json!("SCAN")));
    let loc = vector("event", Some("LOCATION"));
    assert_eq!(
        loc.content,
        Content::Event {
            kind: "location".into(),
            key: None
        }
    );
    let r = raw(&loc);
    assert_eq!(
        (&r["Latitude"], &r["Longitude"], &r["Precision"]),
        (&json!("23.137466"), &json!("113.352425"), &json!("119.385040"))
    );
    assert_eq!(
        vector("event", Some("CLICK")).content,
        Content::Event {
            kind: "click".into(),
            key: Some("EVENTKEY".into())
        }
    );
    assert_eq!(
        vector("event", Some("VIEW")).content,
        Content::Event {
            kind: "view".into(),
            key: Some("www.qq.com".into())
        }
    );
    assert_eq!(
        vector("event", Some("unsubscribe")).content,
        Content::Event {
            kind: "unsubscribe".into(),
            key: None
        }
    );
}

#[test]
fn template_job_finish_uses_the_msgid_capital_d_spelling() {
    let env = vector("event", Some("TEMPLATESENDJOBFINISH"));
    assert_eq!(env.source.external_id.as_deref(), Some("200163836"));
    assert_eq!(
        env.content,
        Content::Event {
            kind: "templatesendjobfinish".into(),
            key: None
        }
    );
    assert_eq!(env.source.raw.get("Status"), Some(&json!("success")));
    assert!(!env.source.raw.contains_key("MsgID"));
    let doc = vectors::inbound()
        .into_iter()
        .find(|d| d.contains("TEMPLATESENDJOBFINISH"))
        .unwrap();
    let next_job = decode(&doc.replace("200163836", "200163837"));
    assert_ne!(
        env.idempotency_key, next_job.idempotency_key,
        "same user, same second, different job"
    );
}

#[test]
fn kf_session_events() {
    let create = vector("event", Some("kf_create_session"));
    assert_eq!(
        create.content,
        Content::Event {
            kind: "kf_create_session".into(),
            key: Some("test1@test".into())
        }
    );
    let close = vector("event", Some("kf_close_session"));
    assert_eq!(
        close.content,
        Content::Event {
            kind: "kf_close_session".into(),
            key: Some("test1@test".into())
        }
    );
    let switch = vector("event", Some("kf_switch_session"));
    assert_eq!(
        switch.content,
        Content::Event {
            kind: "kf_switch_session".into(),
            key: Some("test2@test".into())
        }
    );
    assert_eq!(switch.source.raw.get("FromKfAccount"), Some(&json!("test1@test")));
    assert_ne!(create.idempotency_key, close.idempotency_key);
}

#[test]
fn unknown_kinds_are_kept_with_their_fields() {
    let mini = decode(
        "<xml><FromUserName>u</FromUserName><CreateTime>1</CreateTime><MsgType>miniprogrampage</MsgType>\
         <Title>t</Title><AppId>wxa</AppId><MsgId>9</MsgId></xml>",
    );
    assert_eq!(
        mini.content,
        Content::Event {
            kind: "miniprogrampage".into(),
            key: None
        }
    );
    assert_eq!(
        raw(&mini),
        json!({"MsgType": "miniprogrampage", "Title": "t", "AppId": "wxa"})
    );
    let scancode = decode(
        "<xml><FromUserName>u</FromUserName><CreateTime>1</CreateTime><MsgType>event</MsgType>\
         <Event>scancode_push</Event><EventKey>k</EventKey><ScanCodeInfo><ScanType>qrcode</ScanType>\
         <ScanResult>r</ScanResult></ScanCodeInfo></xml>",
    );
    assert_eq!(
        scancode.content,
        Content::Event {
            kind: "scancode_push".into(),
            key: Some("k".into())
        }
    );
    assert_eq!(
        raw(&scancode),
        json!({"ScanCodeInfo": {"ScanType": "qrcode", "ScanResult": "r"}})
    );
}

#[test]
fn lossy_fields_stay_in_raw_and_bad_fields_are_typed_errors() {
    let odd_time = decode(
        "<xml><FromUserName>u</FromUserName><CreateTime>0012</CreateTime><MsgType>text</MsgType><Content>c</Content></xml>",
    );
    assert_eq!(odd_time.sent_at, None);
    assert_eq!(odd_time.source.raw.get("CreateTime"), Some(&json!("0012")));
    let fields = |doc: &str| to_envelope(&parse(doc.as_bytes()).unwrap(), "main");
    assert_eq!(
        fields("<xml><MsgType>text</MsgType></xml>").unwrap_err(),
        FieldError::Missing("FromUserName")
    );
    assert_eq!(
        fields("<xml><FromUserName>u</FromUserName></xml>").unwrap_err(),
        FieldError::Missing("MsgType")
    );
    assert_eq!(
        fields("<xml><FromUserName>u</FromUserName><MsgType>event</MsgType></xml>").unwrap_err(),
        FieldError::Missing("Event")
    );
    let bad_lat = "<xml><FromUserName>u</FromUserName><MsgType>location</MsgType><Location_X>north</Location_X><Location_Y>1</Location_Y></xml>";
    assert!(matches!(
        fields(bad_lat).unwrap_err(),
        FieldError::Malformed {
            field: "Location_X",
            ..
        }
    ));
    let nan = "<xml><FromUserName>u</FromUserName><MsgType>location</MsgType><Location_X>NaN</Location_X><Location_Y>1</Location_Y></xml>";
    assert!(matches!(
        fields(nan).unwrap_err(),
        FieldError::Malformed {
            field: "Location_X",
            ..
        }
    ));
}

#[test]
fn message_keys_separate_users_and_accounts() {
    let doc = vectors::inbound()[0];
    let other_user = doc.replace("fromUser", "otherUser");
    assert_ne!(decode(doc).idempotency_key, decode(&other_user).idempotency_key);
    let elsewhere = to_envelope(&parse(doc.as_bytes()).unwrap(), "second").unwrap();
    assert_ne!(decode(doc).idempotency_key, elsewhere.idempotency_key);
}
