//! Answers that miss the budget: `success` at once, the answer later through a fake customer-service API, with
//! the access_token expiring in the middle, and concurrent refusals refreshing the token only once.

use std::time::Duration;

use protofuse::config::Config;
use protofuse::wechat::{AccountConfig, WebhookConfig};

use crate::support::server::TestServer;
use crate::support::wechat::{Backend, FAKE_APP_ID, FAKE_SECRET, FakeWechatApi, Oa, text_xml};
use crate::wechat::{PLAIN_TOKEN, history, plain_account, post};
use serde_json::json;

/// A server whose `late` account answers through `backend` (slow) within a 300 ms budget.
async fn late_server(api: &FakeWechatApi, backend: &Backend) -> TestServer {
    late_server_with(api, backend, |_| {}).await
}

/// [`late_server`], with `tweak` applied to the configuration last.
async fn late_server_with(api: &FakeWechatApi, backend: &Backend, tweak: impl FnOnce(&mut Config)) -> TestServer {
    let account = AccountConfig {
        app_id: Some(FAKE_APP_ID.to_owned()),
        app_secret: Some(FAKE_SECRET.to_owned()),
        webhook: Some(WebhookConfig {
            url: backend.url.clone(),
            timeout: Duration::from_secs(10),
        }),
        auto_replies: Vec::new(),
        ..plain_account("late")
    };
    let base = api.base.clone();
    TestServer::sqlite(move |c: &mut Config| {
        c.wechat.api_base_url = base;
        c.wechat.answer_budget = Duration::from_millis(300);
        c.wechat.accounts.push(account);
        tweak(c);
    })
    .await
}

async fn wait_for_sent(api: &FakeWechatApi, count: usize) {
    for _ in 0..100 {
        if api.sent().len() >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("only {} of {count} late answers delivered", api.sent().len());
}

#[tokio::test]
async fn late_answers_go_out_through_the_customer_service_api() {
    let api = FakeWechatApi::start().await;
    let backend = Backend::start(Duration::from_millis(1200)).await;
    let server = late_server(&api, &backend).await;
    let oa = Oa::plaintext("late", PLAIN_TOKEN);
    for (n, text) in ["first", "second"].into_iter().enumerate() {
        let started = tokio::time::Instant::now();
        let (status, body) = post(&server, &oa, oa.request(&text_xml("u-late", 6001 + n as u64, text))).await;
        assert_eq!((status, body.as_str()), (200, "success"));
        assert!(
            started.elapsed() < Duration::from_millis(1000),
            "answered within the budget"
        );
        wait_for_sent(&api, n + 1).await;
        let sent = api.sent();
        assert_eq!(sent.len(), n + 1, "late answer delivered");
        let expected = json!({"touser": "u-late", "msgtype": "text", "text": {"content": format!("echo: {text}")}});
        assert_eq!(sent[n]["body"], expected);
        // The token expires between the two deliveries: the second one is refused once, then refreshed.
        api.expire_current_token();
    }
    let sent = api.sent();
    assert_eq!(
        (sent[0]["token"].as_str(), sent[1]["token"].as_str()),
        (Some("tok-1"), Some("tok-2"))
    );
    assert_eq!(api.rejected(), 1);
    assert_eq!(api.tokens_issued(), 2);
    let messages = history(&server, "u-late", 4).await;
    let bot: Vec<_> = messages.iter().filter(|m| m["sender"]["role"] == "bot").collect();
    assert_eq!(bot.len(), 2);
    assert!(
        bot.iter().all(|m| m["metadata"]["delivery"] == "customer_service_api"),
        "{bot:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_waits_for_a_late_answer_to_go_out_and_be_stored() {
    let api = FakeWechatApi::start().await;
    let backend = Backend::start(Duration::from_millis(1200)).await;
    let mut server = late_server(&api, &backend).await;
    let oa = Oa::plaintext("late", PLAIN_TOKEN);
    let (status, body) = post(&server, &oa, oa.request(&text_xml("u-drain", 6101, "bye"))).await;
    assert_eq!((status, body.as_str()), (200, "success"), "the budget elapsed first");
    // The responder is still waiting for the backend; shutting down must not drop its answer.
    server.stop().await;
    assert_eq!(api.sent().len(), 1, "the late answer went out before shutdown returned");
    let db = format!("sqlite://{}", server.dir().join("protofuse.db").display());
    let pool = sqlx::SqlitePool::connect(&db).await.unwrap();
    let (bot, delivery): (i64, Option<String>) = sqlx::query_as(
        "SELECT COUNT(*), MAX(json_extract(body, '$.metadata.delivery')) FROM messages WHERE sender_role = 'bot'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((bot, delivery.as_deref()), (1, Some("customer_service_api")));
}

#[tokio::test]
async fn concurrent_token_failures_refresh_once() {
    let api = FakeWechatApi::start().await;
    let backend = Backend::start(Duration::from_millis(600)).await;
    let server = late_server(&api, &backend).await;
    let oa = Oa::plaintext("late", PLAIN_TOKEN);
    let (status, _) = post(&server, &oa, oa.request(&text_xml("u-herd-0", 8000, "prime"))).await;
    assert_eq!(status, 200);
    wait_for_sent(&api, 1).await;
    api.expire_current_token();
    api.set_token_delay(Duration::from_millis(300));
    let posts = (1..=4u64).map(|n| {
        let request = oa.request(&text_xml(&format!("u-herd-{n}"), 8000 + n, "hello"));
        post(&server, &oa, request)
    });
    for (status, body) in futures::future::join_all(posts).await {
        assert_eq!((status, body.as_str()), (200, "success"));
    }
    wait_for_sent(&api, 5).await;
    assert_eq!(api.tokens_issued(), 2, "one refresh for four concurrent 42001s");
    assert!((1..=4).contains(&api.rejected()), "{}", api.rejected());
    assert!(api.sent()[1..].iter().all(|s| s["token"] == "tok-2"));
    server.shutdown().await;
}

/// An agent answers a WeChat user from another system (here the REST API): the dispatcher's `wechat_kf`
/// destination sends it through the customer-service API; the bot's own replies are not routed there.
#[tokio::test]
async fn agent_replies_reach_the_wechat_user_through_the_dispatcher() {
    let api = FakeWechatApi::start().await;
    let account = AccountConfig {
        app_id: Some(FAKE_APP_ID.to_owned()),
        app_secret: Some(FAKE_SECRET.to_owned()),
        ..plain_account("kf")
    };
    let base = api.base.clone();
    let server = TestServer::sqlite(move |c: &mut Config| {
        c.wechat.api_base_url = base;
        c.wechat.accounts.push(account);
        c.dispatch.poll_interval = Duration::from_millis(50);
        c.dispatch.destinations = vec![protofuse::dispatch::DestinationConfig {
            name: "wechat-kf".to_owned(),
            kind: protofuse::dispatch::DestinationKind::WechatKf,
            url: None,
            headers: Default::default(),
            adapter: None,
            account: Some("kf".to_owned()),
            fuse: Default::default(),
            retry: Default::default(),
        }];
        c.dispatch.routes = vec![protofuse::dispatch::RouteConfig {
            channels: vec!["wechat".to_owned()],
            directions: vec!["outbound".to_owned()],
            roles: vec!["agent".to_owned()],
            destinations: vec!["wechat-kf".to_owned()],
            ..Default::default()
        }];
    })
    .await;
    let oa = Oa::plaintext("kf", PLAIN_TOKEN);
    let (status, _) = post(&server, &oa, oa.request(&text_xml("u-kf", 7001, "hours"))).await;
    assert_eq!(status, 200);
    let conversations = server.get_json("/v1/conversations?customer=u-kf").await;
    let conversation = conversations["items"][0]["id"].as_str().unwrap().to_owned();

    let reply = json!({"conversation_id": conversation, "channel": "wechat", "direction": "outbound",
                       "sender": {"role": "agent", "external_id": "agent1"},
                       "content": {"type": "text", "text": "您好，退货已受理"}});
    let sent = server
        .client
        .post(server.url("/v1/messages"))
        .json(&reply)
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 201);
    wait_for_sent(&api, 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent = api.sent();
    assert_eq!(
        sent.len(),
        1,
        "only the agent's reply, not the bot's passive answer: {sent:?}"
    );
    assert_eq!(
        sent[0]["body"],
        json!({"touser": "u-kf", "msgtype": "text", "text": {"content": "您好，退货已受理"}})
    );
}

/// Issue 16: a late answer is stored first and then delivered by the account's customer-service destination
/// like any delivery: a WeChat API that keeps refusing (errcode -1, "system busy") gets it retried by the
/// dispatcher up to the destination's attempts, then it waits in the dead letters, and an operator's replay
/// delivers it once the API recovers.
#[tokio::test]
async fn a_late_answer_the_api_keeps_refusing_is_retried_then_dead_lettered_and_replayed() {
    let api = FakeWechatApi::start().await;
    api.refuse_sends(Some(-1));
    let backend = Backend::start(Duration::from_millis(600)).await;
    let server = late_server_with(&api, &backend, |c| {
        c.dispatch.poll_interval = Duration::from_millis(50);
        let mut kf = protofuse::dispatch::DestinationConfig::implicit_wechat_kf("late");
        kf.name = "kf-late".to_owned();
        kf.retry.max_attempts = 3;
        kf.retry.backoff_initial = Duration::from_millis(10);
        kf.retry.backoff_max = Duration::from_millis(40);
        c.dispatch.destinations = vec![kf];
    })
    .await;
    let oa = Oa::plaintext("late", PLAIN_TOKEN);
    let (status, body) = post(&server, &oa, oa.request(&text_xml("u-refused", 9001, "anyone?"))).await;
    assert_eq!((status, body.as_str()), (200, "success"), "the budget elapsed first");

    let admin = |path: &str| format!("http://{}{path}", server.admin);
    let dead = || async {
        let r = server.client.get(admin("/admin/dead-letters")).send().await.unwrap();
        r.json::<serde_json::Value>().await.unwrap()["items"].clone()
    };
    crate::dispatch::eventually(
        "the late answer in the dead letters",
        Duration::from_secs(10),
        || async { dead().await.as_array().is_some_and(|items| items.len() == 1) },
    )
    .await;
    let items = dead().await;
    assert_eq!(items[0]["destination"], "kf-late");
    assert_eq!(items[0]["attempts"], 3);
    assert!(items[0]["last_error"].as_str().unwrap().contains("-1"), "{items}");
    assert_eq!(api.refused_sends(), 3, "one call per attempt");
    assert!(api.sent().is_empty());
    let messages = history(&server, "u-refused", 2).await;
    let bot: Vec<_> = messages.iter().filter(|m| m["sender"]["role"] == "bot").collect();
    assert_eq!(bot.len(), 1, "stored before it was sent: {messages:?}");
    assert_eq!(bot[0]["metadata"]["delivery"], "customer_service_api");

    api.refuse_sends(None);
    let replay = server
        .client
        .post(admin(&format!("/admin/dead-letters/{}/replay", items[0]["id"])))
        .send()
        .await
        .unwrap();
    assert!(replay.status().is_success(), "{}", replay.status());
    wait_for_sent(&api, 1).await;
    let expected = json!({"touser": "u-refused", "msgtype": "text", "text": {"content": "echo: anyone?"}});
    assert_eq!(api.sent()[0]["body"], expected);
    server.shutdown().await;
}
