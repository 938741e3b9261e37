//! Issue 20, several nodes: three `protofuse serve` processes on one private MariaDB and the machine's NATS
//! JetStream (under a stream prefix of this test's own; its streams are removed at the end). A subscriber on one node
//! hears every message ingested through the others, in order and once; an HMAC request replayed to another node
//! is refused.

use std::time::Duration;

use jsonrpsee::core::client::{Subscription, SubscriptionClientT};
use jsonrpsee::rpc_params;
use jsonrpsee::ws_client::WsClientBuilder;
use protofuse_testkit::binary::Binary;
use protofuse_testkit::mariadb;
use serde_json::{Value, json};

use crate::support::cluster::{nodes, prefix, remove};

async fn next_text(events: &mut Subscription<Value>) -> String {
    let event = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("an event within 10 s")
        .unwrap()
        .unwrap();
    assert_eq!(event["type"], "message_stored", "{event}");
    event["message"]["content"]["text"].as_str().unwrap().to_owned()
}

async fn send(client: &reqwest::Client, node: &Binary, customer: &str, text: &str) {
    let body = json!({"channel": "app", "sender": {"role": "customer", "external_id": customer},
                      "content": {"type": "text", "text": text}});
    let response = client.post(node.url("/v1/messages")).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
}

async fn crm_post(client: &reqwest::Client, node: &Binary, nonce: &str) -> u16 {
    let body = r#"{"header":{"requestId":"r-1"},"body":{"customerId":"h1","content":"where is my parcel"}}"#;
    let ts = chrono::Utc::now().timestamp().to_string();
    let signature = protofuse_legacy::auth::sign(
        "crm-demo-secret",
        "POST",
        "/legacy/crm/messages",
        &ts,
        nonce,
        body.as_bytes(),
    );
    client
        .post(node.url("/legacy/crm/messages"))
        .header("content-type", "application/json")
        .header("x-timestamp", ts)
        .header("x-nonce", nonce)
        .header("x-signature", signature)
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_subscriber_on_one_node_hears_the_others_and_a_replay_to_another_node_is_refused() {
    let prefix = prefix();
    let store = mariadb::server().await.fresh_database().await;
    let dir = tempfile::tempdir().unwrap();
    let nodes = nodes(dir.path(), &store, &prefix, "").await;
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let client = reqwest::Client::new();

    let ws = WsClientBuilder::default()
        .build(format!("{}/rpc", a.base.replace("http://", "ws://")))
        .await
        .unwrap();
    let mut events: Subscription<Value> = ws
        .subscribe(
            "conversation.subscribe",
            rpc_params![json!({"customer": "nina"})],
            "conversation.unsubscribe",
        )
        .await
        .unwrap();
    // One client's successive messages, alternating between B and C; A only listens.
    let sent: Vec<String> = (0..10).map(|i| format!("message {i}")).collect();
    for (i, text) in sent.iter().enumerate() {
        send(&client, [b, c][i % 2], "nina", text).await;
    }
    let mut heard = Vec::new();
    for _ in &sent {
        heard.push(next_text(&mut events).await);
    }
    assert_eq!(heard, sent, "in order, each once");
    // Nothing further was pending: the next event is the one sent now, through A itself.
    send(&client, a, "nina", "last").await;
    assert_eq!(next_text(&mut events).await, "last");

    // A signed request accepted by A, replayed to B: refused; a fresh nonce on C passes.
    assert_eq!(crm_post(&client, a, "nonce-1").await, 200);
    assert_eq!(
        crm_post(&client, b, "nonce-1").await,
        401,
        "a replay to another node is refused"
    );
    assert_eq!(crm_post(&client, c, "nonce-2").await, 200);

    drop(nodes);
    remove(&prefix).await;
}

/// A WeChat message's retries land on three different nodes: stored once, the backend (the responder) asked
/// once, and every retry gets the first node's passive answer, read from the shared store by the others.
#[tokio::test]
async fn wechat_retries_on_other_nodes_get_the_same_answer_and_run_the_responder_once() {
    let prefix = prefix();
    let store = mariadb::server().await.fresh_database().await;
    let backend = protofuse_testkit::wechat::Backend::start(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let account = format!(
        "[[wechat.accounts]]\naccount = \"retry\"\ntoken = \"plaintoken\"\nmode = \"plaintext\"\n\
         [wechat.accounts.webhook]\nurl = \"{}\"\n",
        backend.url
    );
    let nodes = nodes(dir.path(), &store, &prefix, &account).await;
    let client = reqwest::Client::new();
    let oa = protofuse_testkit::wechat::Oa::plaintext("retry", "plaintoken");
    let xml = protofuse_testkit::wechat::text_xml("u-retry", 9_001, "where is my parcel");
    let mut replies = Vec::new();
    for node in &nodes {
        let (query, body) = oa.request(&xml);
        let response = client
            .post(node.url(&oa.path()))
            .query(&query)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let reply = response.text().await.unwrap();
        let content = reply
            .split("<Content><![CDATA[")
            .nth(1)
            .and_then(|r| r.split("]]>").next())
            .unwrap_or_else(|| panic!("a text reply: {reply}"))
            .to_owned();
        replies.push(content);
    }
    assert_eq!(
        replies, ["echo: where is my parcel"; 3],
        "the identical reply on every node"
    );
    assert_eq!(backend.calls().len(), 1, "the responder ran once cluster-wide");
    let conversations =
        protofuse_testkit::http::get_json(&client, &nodes[2].url("/v1/conversations?customer=u-retry")).await;
    let id = conversations["items"][0]["id"].as_str().unwrap();
    let messages =
        protofuse_testkit::http::get_json(&client, &nodes[1].url(&format!("/v1/conversations/{id}/messages"))).await;
    assert_eq!(
        protofuse_testkit::http::texts(&messages),
        ["where is my parcel", "echo: where is my parcel"],
        "stored once, with its one reply"
    );
    drop(nodes);
    remove(&prefix).await;
}

/// Late WeChat answers sent by every node through the customer-service API use one access_token: exactly one
/// fetch at WeChat for the cluster, and after WeChat expires it, exactly one more (each fetch would invalidate
/// the token the other nodes hold).
#[tokio::test]
async fn the_nodes_share_one_wechat_access_token_and_refresh_it_once() {
    use protofuse_testkit::wechat::{Backend, FAKE_APP_ID, FAKE_SECRET, FakeWechatApi, Oa, text_xml};

    let prefix = prefix();
    let store = mariadb::server().await.fresh_database().await;
    let api = FakeWechatApi::start().await;
    let backend = Backend::start(Duration::from_millis(800)).await;
    let dir = tempfile::tempdir().unwrap();
    let account = format!(
        "[wechat]\napi_base_url = \"{}\"\nanswer_budget = \"300ms\"\n\
         [[wechat.accounts]]\naccount = \"late\"\ntoken = \"plaintoken\"\nmode = \"plaintext\"\n\
         app_id = \"{FAKE_APP_ID}\"\napp_secret = \"{FAKE_SECRET}\"\n\
         [wechat.accounts.webhook]\nurl = \"{}\"\ntimeout = \"10s\"\n",
        api.base, backend.url
    );
    let nodes = nodes(dir.path(), &store, &prefix, &account).await;
    let client = reqwest::Client::new();
    let oa = Oa::plaintext("late", "plaintoken");
    // Every node gets a message at once; each answer misses the budget and goes out through the API.
    let round = |first: u64| {
        let (client, oa, nodes) = (&client, &oa, &nodes);
        async move {
            let posts = nodes.iter().enumerate().map(|(i, node)| {
                let (query, body) = oa.request(&text_xml(&format!("u-{i}"), first + i as u64, "hello"));
                client.post(node.url(&oa.path())).query(&query).body(body).send()
            });
            for response in futures::future::join_all(posts).await {
                assert_eq!(response.unwrap().status(), 200);
            }
        }
    };
    let wait_for_sent = |count: usize| {
        let api = &api;
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            while api.sent().len() < count {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "only {} of {count} sent",
                    api.sent().len()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    round(7_000).await;
    wait_for_sent(3).await;
    assert_eq!(api.tokens_issued(), 1, "one token for the cluster");
    api.expire_current_token();
    round(7_100).await;
    wait_for_sent(6).await;
    assert_eq!(api.tokens_issued(), 2, "one refresh for the cluster");
    drop(nodes);
    remove(&prefix).await;
}

/// The admin API of any node lists the nodes it hears from, and a breaker override set on one node holds on
/// every node.
#[tokio::test]
async fn any_node_lists_the_nodes_and_a_breaker_override_reaches_them_all() {
    let prefix = prefix();
    let store = mariadb::server().await.fresh_database().await;
    let dir = tempfile::tempdir().unwrap();
    let crm = "[[dispatch.destinations]]\nname = \"crm\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/hook\"\n";
    let nodes = nodes(dir.path(), &store, &prefix, crm).await;
    let client = reqwest::Client::new();
    let get = |node: &Binary, path: &str| {
        let url = format!("{}{path}", node.admin);
        let client = client.clone();
        async move { protofuse_testkit::http::get_json(&client, &url).await }
    };
    // Heartbeats every 2 s: listed within a few.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let listed = get(&nodes[2], "/admin/nodes").await;
        let names: Vec<&str> = listed["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|n| n["node"].as_str())
            .collect();
        if names == ["a", "b", "c"] {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "listed: {listed}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let response = client
        .put(format!("{}/admin/destinations/crm/breaker", nodes[0].admin))
        .json(&json!({"override": "forced_open"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    for node in &nodes[1..] {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let destinations = get(node, "/admin/destinations").await;
            if destinations["destinations"][0]["override"] == "forced_open" {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{destinations}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    drop(nodes);
    remove(&prefix).await;
}
