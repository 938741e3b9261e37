//! The WeChat callback endpoint over real HTTP: URL verification, plaintext and safe mode, retries, events,
//! hand-off, and the shipped demo account through the real binary (late answers: `wechat_late.rs`).

use std::time::Duration;

use protofuse::respond::{AutoReply, MatchKind};
use protofuse::wechat::{AccountConfig, WebhookConfig};
use protofuse_wechat::Mode;
use serde_json::{Value, json};

use crate::support::server::{Binary, TestServer};
use crate::support::wechat::{Backend, Oa, event_xml, text_xml};

pub(crate) const PLAIN_TOKEN: &str = "plaintoken";

/// A plaintext-mode account answering "hours" from its table and handing "转人工" to `agent1@test`.
pub(crate) fn plain_account(name: &str) -> AccountConfig {
    AccountConfig {
        account: name.to_owned(),
        token: PLAIN_TOKEN.to_owned(),
        mode: Mode::Plaintext,
        app_id: None,
        encoding_aes_key: None,
        handoff_kf_account: Some("agent1@test".to_owned()),
        auto_replies: vec![AutoReply {
            keyword: "hours".to_owned(),
            match_kind: MatchKind::Exact,
            reply: "9-18 ]]> daily".to_owned(),
        }],
        ..AccountConfig::demo()
    }
}

pub(crate) async fn post(
    server: &TestServer,
    oa: &Oa,
    (query, body): (Vec<(String, String)>, String),
) -> (u16, String) {
    let response = server
        .client
        .post(server.url(&oa.path()))
        .query(&query)
        .header("content-type", "text/xml")
        .body(body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn get_json(server: &TestServer, path: &str) -> Value {
    server
        .client
        .get(server.url(path))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Every stored message of `customer`, oldest first, once there are at least `expected` (bot replies are
/// stored just after the answer goes out).
pub(crate) async fn history(server: &TestServer, customer: &str, expected: usize) -> Vec<Value> {
    for _ in 0..100 {
        let conversations = get_json(server, &format!("/v1/conversations?customer={customer}")).await;
        let mut messages = Vec::new();
        for conversation in conversations["items"].as_array().unwrap() {
            let id = conversation["id"].as_str().unwrap();
            let page = get_json(server, &format!("/v1/conversations/{id}/messages")).await;
            messages.extend(page["items"].as_array().unwrap().iter().cloned());
        }
        if messages.len() >= expected {
            return messages;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{customer} never had {expected} stored messages");
}

#[tokio::test]
async fn url_verification_echoes_only_when_signed() {
    let server = TestServer::sqlite(|_| {}).await;
    let oa = Oa::demo();
    let mut query = oa.signed_query();
    query.push(("echostr".into(), "4375120948345356249".into()));
    let response = server
        .client
        .get(server.url(&oa.path()))
        .query(&query)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "4375120948345356249");
    query[0].1 = "0".repeat(40);
    let response = server
        .client
        .get(server.url(&oa.path()))
        .query(&query)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    server.shutdown().await;
}

#[tokio::test]
async fn plaintext_text_is_stored_and_answered_from_the_table() {
    let server = TestServer::sqlite(|c| c.wechat.accounts.push(plain_account("plain"))).await;
    let oa = Oa::plaintext("plain", PLAIN_TOKEN);
    let (status, body) = post(&server, &oa, oa.request(&text_xml("u-plain", 1001, "hours"))).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("<ToUserName><![CDATA[u-plain]]></ToUserName>"), "{body}");
    assert!(
        body.contains("<FromUserName><![CDATA[gh_test]]></FromUserName>"),
        "{body}"
    );
    assert!(body.contains("<MsgType><![CDATA[text]]></MsgType>"), "{body}");
    // `]]>` in the reply text must not end the CDATA section.
    assert!(
        body.contains("<Content><![CDATA[9-18 ]]]]><![CDATA[> daily]]></Content>"),
        "{body}"
    );

    let messages = history(&server, "u-plain", 2).await;
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["content"], json!({"type": "text", "text": "hours"}));
    assert_eq!(messages[0]["source"]["protocol"], "wechat");
    assert_eq!(messages[0]["source"]["external_id"], "1001");
    assert_eq!(messages[1]["direction"], "outbound");
    assert_eq!(messages[1]["sender"]["role"], "bot");
    assert_eq!(messages[1]["content"]["text"], "9-18 ]]> daily");
    assert_eq!(messages[1]["metadata"]["delivery"], "passive");
    assert_eq!(messages[1]["metadata"]["in_reply_to"], messages[0]["id"]);
    server.shutdown().await;
}

/// A keyword answer is stored with its message in one write. A retry gets the first answer, from memory and,
/// after a restart (no memory), from the stored reply, even though the table now says something else; neither
/// the message nor its reply is stored twice.
#[tokio::test]
async fn a_keyword_answer_is_stored_with_its_message_and_retries_get_it_after_a_restart() {
    let mut server = TestServer::sqlite(|c| c.wechat.accounts.push(plain_account("plain"))).await;
    let oa = Oa::plaintext("plain", PLAIN_TOKEN);
    let request = oa.request(&text_xml("u-again", 1002, "hours"));
    let answer = "<Content><![CDATA[9-18 ]]]]><![CDATA[> daily]]></Content>";
    for _ in 0..2 {
        let (status, body) = post(&server, &oa, request.clone()).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains(answer), "{body}");
    }
    server.stop().await;
    server
        .start_again(|c| {
            let account = c.wechat.accounts.iter_mut().find(|a| a.account == "plain").unwrap();
            account.auto_replies[0].reply = "changed".to_owned();
        })
        .await;
    let (status, body) = post(&server, &oa, request).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(answer), "the first answer, read from the store: {body}");
    let messages = history(&server, "u-again", 2).await;
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert_eq!(messages[1]["metadata"]["in_reply_to"], messages[0]["id"]);
    assert_eq!(messages[1]["metadata"]["answer"]["text"], "9-18 ]]> daily");
    server.shutdown().await;
}

#[tokio::test]
async fn safe_mode_text_gets_an_encrypted_answer() {
    let server = TestServer::sqlite(|_| {}).await;
    let oa = Oa::demo();
    let (status, body) = post(&server, &oa, oa.request(&text_xml("u-safe", 2001, "你好呀"))).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.starts_with("<xml>\n<Encrypt><![CDATA[") && !body.contains("protofuse"),
        "{body}"
    );
    let reply = oa.open_reply(&body);
    assert!(reply.contains("<ToUserName><![CDATA[u-safe]]></ToUserName>"), "{reply}");
    assert!(reply.contains("这里是 protofuse 演示账号"), "{reply}");
    let messages = history(&server, "u-safe", 2).await;
    assert_eq!(messages[0]["content"]["text"], "你好呀");
    assert_eq!(messages[0]["source"]["account"], "demo");
    server.shutdown().await;
}

#[tokio::test]
async fn retried_delivery_is_stored_once_and_answered_alike() {
    let backend = Backend::start(Duration::ZERO).await;
    let webhook = WebhookConfig {
        url: backend.url.clone(),
        timeout: Duration::from_secs(5),
    };
    let account = AccountConfig {
        account: "retry".to_owned(),
        webhook: Some(webhook),
        ..AccountConfig::demo()
    };
    let server = TestServer::sqlite(|c| c.wechat.accounts.push(account)).await;
    let oa = Oa::safe(
        "retry",
        "spamtest",
        "wx2c2769f8efd9abc2",
        "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
    );
    let request = oa.request(&text_xml("u-retry", 3001, "are you there"));
    let mut replies = Vec::new();
    for _ in 0..3 {
        let (status, body) = post(&server, &oa, request.clone()).await;
        assert_eq!(status, 200, "{body}");
        replies.push(oa.open_reply(&body));
    }
    assert!(replies[0].contains("echo: are you there"), "{}", replies[0]);
    for reply in &replies[1..] {
        // Same answer; only CreateTime may differ.
        assert!(
            reply.contains("<Content><![CDATA[echo: are you there]]></Content>"),
            "{reply}"
        );
    }
    assert_eq!(backend.calls().len(), 1, "the responder runs once per message");
    let messages = history(&server, "u-retry", 2).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(history(&server, "u-retry", 2).await.len(), 2, "{messages:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn events_and_unknown_kinds_are_kept_and_acknowledged() {
    let server = TestServer::sqlite(|c| c.wechat.accounts.push(plain_account("plain"))).await;
    let oa = Oa::plaintext("plain", PLAIN_TOKEN);
    for xml in [
        event_xml("u-event", "subscribe", Some("qrscene_123")),
        event_xml("u-event", "brand_new_event", None),
        text_xml("u-event", 4001, "hours").replace("[text]", "[hologram]"),
    ] {
        let (status, body) = post(&server, &oa, oa.request(&xml)).await;
        assert_eq!((status, body.as_str()), (200, "success"));
    }
    let messages = history(&server, "u-event", 3).await;
    assert_eq!(messages.len(), 3);
    assert_eq!(messages[0]["content"]["type"], "event");
    assert_eq!(messages[0]["content"]["kind"], "subscribe");
    assert_eq!(messages[0]["content"]["key"], "123");
    assert_eq!(messages[1]["content"]["kind"], "brand_new_event");
    assert_eq!(messages[2]["source"]["raw"]["MsgType"], "hologram");
    server.shutdown().await;
}

#[tokio::test]
async fn handoff_keywords_transfer_to_customer_service() {
    let server = TestServer::sqlite(|c| c.wechat.accounts.push(plain_account("plain"))).await;
    let plain = Oa::plaintext("plain", PLAIN_TOKEN);
    let (_, body) = post(&server, &plain, plain.request(&text_xml("u-hand", 5001, "我要转人工"))).await;
    assert!(
        body.contains("<MsgType><![CDATA[transfer_customer_service]]></MsgType>"),
        "{body}"
    );
    assert!(
        body.contains("<TransInfo><KfAccount><![CDATA[agent1@test]]></KfAccount></TransInfo>"),
        "{body}"
    );
    let demo = Oa::demo();
    let (_, body) = post(&server, &demo, demo.request(&text_xml("u-hand2", 5002, "human please"))).await;
    let reply = demo.open_reply(&body);
    assert!(
        reply.contains("transfer_customer_service") && !reply.contains("TransInfo"),
        "{reply}"
    );
    let messages = history(&server, "u-hand", 2).await;
    assert_eq!(
        messages[1]["content"],
        json!({"type": "event", "kind": "handoff", "key": "agent1@test"})
    );
    server.shutdown().await;
}

#[tokio::test]
async fn webhook_media_and_news_answers_become_passive_replies() {
    let backend = Backend::start(Duration::ZERO).await;
    let account = AccountConfig {
        webhook: Some(WebhookConfig {
            url: backend.url.clone(),
            timeout: Duration::from_secs(5),
        }),
        ..plain_account("plain")
    };
    let server = TestServer::sqlite(|c| c.wechat.accounts.push(account)).await;
    let oa = Oa::plaintext("plain", PLAIN_TOKEN);
    let (_, body) = post(&server, &oa, oa.request(&text_xml("u-media", 8101, "image please"))).await;
    assert!(
        body.contains("<MsgType><![CDATA[image]]></MsgType><Image><MediaId><![CDATA[MEDIA1]]></MediaId></Image>"),
        "{body}"
    );
    let (_, body) = post(&server, &oa, oa.request(&text_xml("u-media", 8102, "news please"))).await;
    assert!(body.contains("<ArticleCount>1</ArticleCount>"), "{body}");
    assert!(
        body.contains("<Title><![CDATA[Returns ]]]]><![CDATA[> guide]]></Title>"),
        "{body}"
    );
    assert!(body.contains("<Url><![CDATA[https://example.com/r]]></Url>"), "{body}");
    let messages = history(&server, "u-media", 4).await;
    let bot: Vec<_> = messages.iter().filter(|m| m["sender"]["role"] == "bot").collect();
    assert_eq!(bot[0]["content"]["media_id"], "MEDIA1");
    assert_eq!(bot[1]["content"]["type"], "link");
    assert_eq!(bot[1]["metadata"]["answer"]["type"], "news");
    server.shutdown().await;
}

#[tokio::test]
async fn the_shipped_demo_account_works_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let binary = Binary::serve_default(dir.path()).await;
    let client = reqwest::Client::new();
    let oa = Oa::demo();
    let mut query = oa.signed_query();
    query.push(("echostr".into(), "12345".into()));
    let url = format!("{}{}", binary.base, oa.path());
    let echo = client
        .get(&url)
        .query(&query)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(echo, "12345");
    let (query, body) = oa.request(&text_xml("u-bin", 7001, "你好"));
    let response = client.post(&url).query(&query).body(body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let reply = oa.open_reply(&response.text().await.unwrap());
    assert!(reply.contains("protofuse 演示账号"), "{reply}");
    binary.terminate();
}
