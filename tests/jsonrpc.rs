//! JSON-RPC 2.0 at `/rpc` over real sockets: jsonrpsee's HTTP and WebSocket clients for the methods and the
//! subscription (events caused over gRPC and REST), raw HTTP for the spec's edge cases (bad JSON, wrong version,
//! batches with garbage, notifications, id types, standard and application error codes).

use std::time::Duration;

use jsonrpsee::core::client::{ClientT, Error as ClientError, Subscription, SubscriptionClientT};
use jsonrpsee::http_client::HttpClientBuilder;
use jsonrpsee::rpc_params;
use jsonrpsee::ws_client::WsClientBuilder;
use serde_json::{Value, json};

use crate::grpc::{client as grpc_client, text};
use crate::support::server::TestServer;

pub fn message(customer: &str, text: &str) -> Value {
    json!({"channel": "app", "sender": {"role": "customer", "external_id": customer},
        "content": {"type": "text", "text": text}})
}

/// The application code of a JSON-RPC error answer.
pub fn app_code(e: ClientError) -> i32 {
    match e {
        ClientError::Call(object) => object.code(),
        other => panic!("expected an error object, got {other:?}"),
    }
}

async fn next_text(sub: &mut Subscription<Value>) -> String {
    let event = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .expect("an event within 5 s")
        .unwrap()
        .unwrap();
    assert_eq!(event["type"], "message_stored", "{event}");
    event["message"]["content"]["text"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn http_and_websocket_clients_send_page_and_subscribe() {
    let server = TestServer::sqlite(|_| {}).await;
    let ws_url = format!("{}/rpc", server.base.replace("http://", "ws://"));
    let ws = WsClientBuilder::default().build(&ws_url).await.unwrap();
    let mut events: Subscription<Value> = ws
        .subscribe(
            "conversation.subscribe",
            rpc_params![json!({"customer": "frank"})],
            "conversation.unsubscribe",
        )
        .await
        .unwrap();
    let http = HttpClientBuilder::default().build(server.url("/rpc")).unwrap();

    let mut first = message("frank", "a");
    first["idempotency_key"] = json!("frank-1");
    let sent: Value = http.request("message.send", rpc_params![first.clone()]).await.unwrap();
    assert_eq!(sent["duplicate"], false);
    assert_eq!(next_text(&mut events).await, "a");
    let again: Value = http.request("message.send", rpc_params![first]).await.unwrap();
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["message"]["id"], sent["message"]["id"]);
    let conversation = sent["message"]["conversation_id"].clone();

    // Caused over gRPC and REST, heard on the WebSocket (the duplicate above was not an event).
    let mut grpc = grpc_client(&server).await;
    grpc.send_message(text("frank", "b")).await.unwrap();
    assert_eq!(next_text(&mut events).await, "b");
    let r = server
        .client
        .post(server.url("/v1/messages"))
        .json(&message("frank", "c"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(next_text(&mut events).await, "c");
    let over_ws: Value = ws
        .request("message.send", rpc_params![message("frank", "d")])
        .await
        .unwrap();
    assert_eq!(over_ws["message"]["conversation_id"], conversation);
    assert_eq!(next_text(&mut events).await, "d");

    page_and_read(&http, &ws, &conversation).await;

    let missing = json!({"id": uuid::Uuid::now_v7()});
    let err = http
        .request::<Value, _>("conversation.get", rpc_params![missing])
        .await
        .unwrap_err();
    assert_eq!(app_code(err), -32001);
    let mut invalid = message("frank", "");
    invalid["content"]["text"] = json!("");
    let err = http
        .request::<Value, _>("message.send", rpc_params![invalid])
        .await
        .unwrap_err();
    assert_eq!(app_code(err), -32004);
    events.unsubscribe().await.unwrap();
    server.shutdown().await;
}

async fn page_and_read(http: &impl ClientT, ws: &impl ClientT, conversation: &Value) {
    let page: Value = http
        .request(
            "conversation.messages",
            rpc_params![json!({"id": conversation, "limit": 3})],
        )
        .await
        .unwrap();
    let texts: Vec<_> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"]["text"].clone())
        .collect();
    assert_eq!(texts, ["a", "b", "c"]);
    let rest: Value = http
        .request(
            "conversation.messages",
            rpc_params![json!({"id": conversation, "limit": 3, "cursor": page["next_cursor"]})],
        )
        .await
        .unwrap();
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert!(rest.get("next_cursor").is_none());

    let got: Value = ws
        .request("conversation.get", rpc_params![json!({"id": conversation})])
        .await
        .unwrap();
    assert_eq!(got["customer_id"], "frank");
    let listed: Value = http
        .request("conversation.list", rpc_params![json!({"customer": "frank"})])
        .await
        .unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
}

/// A batch over `max_batch_len` (4) and a request over `max_request_bytes` (2048) are single error objects.
async fn limits(server: &TestServer) {
    let too_big = format!(
        "[{}]",
        [r#"{"jsonrpc":"2.0","id":1,"method":"conversation.list"}"#; 5].join(",")
    );
    let r = raw_json(server, &too_big).await;
    assert_eq!(
        r["error"]["code"], -32010,
        "a batch over max_batch_len is one error: {r}"
    );
    let huge = format!(
        r#"{{"jsonrpc": "2.0", "id": 1, "method": "conversation.list", "params": {{"customer": "{}"}}}}"#,
        "x".repeat(4096)
    );
    let (status, body) = raw(server, &huge).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"]["code"],
        -32007,
        "{body}"
    );
}

async fn raw(server: &TestServer, body: &str) -> (u16, String) {
    let r = server
        .client
        .post(server.url("/rpc"))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn raw_json(server: &TestServer, body: &str) -> Value {
    let (_, text) = raw(server, body).await;
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text:?}"))
}

#[tokio::test]
async fn malformed_requests_batches_and_notifications() {
    let server = TestServer::sqlite(|c| {
        c.jsonrpc.max_batch_len = 4;
        c.jsonrpc.max_request_bytes = 2048;
    })
    .await;
    let r = raw_json(&server, r#"{"jsonrpc": "2.0", "id": 1, "method": "#).await;
    assert_eq!(r["error"]["code"], -32700, "{r}");
    assert_eq!(r["id"], Value::Null);
    let r = raw_json(&server, r#"{"jsonrpc": "1.0", "id": 2, "method": "conversation.list"}"#).await;
    assert_eq!(r["error"]["code"], -32600, "{r}");
    let r = raw_json(&server, r#"{"jsonrpc": "2.0", "id": "x", "method": "nope"}"#).await;
    assert_eq!(
        (r["error"]["code"].clone(), r["id"].clone()),
        (json!(-32601), json!("x")),
        "{r}"
    );
    let r = raw_json(
        &server,
        r#"{"jsonrpc": "2.0", "id": 3, "method": "conversation.get", "params": {"id": 5}}"#,
    )
    .await;
    assert_eq!(r["error"]["code"], -32602, "{r}");

    let r = raw_json(&server, "[1, 2]").await;
    let codes: Vec<_> = r
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["error"]["code"].clone())
        .collect();
    assert_eq!(codes, [json!(-32600), json!(-32600)], "{r}");

    // Valid call (string id), garbage, a notification (no answer) and a call with a fractional id.
    let mixed = r#"[
        {"jsonrpc": "2.0", "id": "list-1", "method": "conversation.list", "params": {}},
        {"foo": "bar"},
        {"jsonrpc": "2.0", "method": "message.send", "params": {"sender": {"role": "customer", "external_id": "gus"}, "content": {"type": "text", "text": "quiet"}}},
        {"jsonrpc": "2.0", "id": 7, "method": "conversation.get", "params": {"id": "not-a-uuid"}}
    ]"#;
    let r = raw_json(&server, mixed).await;
    let answers = r.as_array().unwrap();
    assert_eq!(answers.len(), 3, "the notification gets no answer: {r}");
    let by_id = |id: Value| {
        answers
            .iter()
            .find(|a| a["id"] == id)
            .unwrap_or_else(|| panic!("{id} in {r}"))
    };
    assert!(by_id(json!("list-1"))["result"]["items"].is_array());
    assert_eq!(by_id(json!(7))["error"]["code"], -32602);
    assert!(
        answers
            .iter()
            .any(|a| a["id"].is_null() && a["error"]["code"] == -32600)
    );

    limits(&server).await;

    let gus = r#"{"jsonrpc": "2.0", "id": 9, "method": "conversation.list", "params": {"customer": "gus"}}"#;
    let gus = raw_json(&server, gus).await;
    assert_eq!(gus["result"]["items"].as_array().unwrap().len(), 1, "{gus}");

    let r = server.client.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200, "still serving after the garbage");
    let r = server
        .client
        .get(format!("http://{}/metrics", server.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "metrics on the admin listener");
    server.shutdown().await;
}

#[tokio::test]
async fn notifications_run_but_get_no_answer() {
    let server = TestServer::sqlite(|_| {}).await;
    // A lone notification is answered with nothing, yet it runs.
    let notification = r#"{"jsonrpc": "2.0", "method": "message.send", "params": {"sender": {"role": "customer", "external_id": "hal"}, "content": {"type": "text", "text": "fire and forget"}}}"#;
    let (status, body) = raw(&server, notification).await;
    assert_eq!((status, body.as_str()), (204, ""));
    let listed = raw_json(
        &server,
        r#"{"jsonrpc": "2.0", "id": null, "method": "conversation.list", "params": {"customer": "hal"}}"#,
    )
    .await;
    assert_eq!(listed["id"], Value::Null, "a null id is echoed: {listed}");
    assert_eq!(listed["result"]["items"].as_array().unwrap().len(), 1, "{listed}");
    let (status, body) = raw(&server, r#"[{"jsonrpc": "2.0", "method": "conversation.list"}]"#).await;
    assert_eq!(
        (status, body.as_str()),
        (204, ""),
        "a batch of only notifications gets no answer"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn the_python_example_runs() {
    let server = TestServer::sqlite(|_| {}).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/jsonrpc_client.py");
    let out = tokio::process::Command::new("python3")
        .arg(script)
        .arg(server.url("/rpc"))
        .output()
        .await
        .expect("python3 is installed (.ci/run installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.ends_with("ok\n"), "{stdout}");
    server.shutdown().await;
}

/// An agent takes and closes a conversation over REST; a JSON-RPC subscriber hears each status change, a
/// closed conversation refuses further changes, and the customer's next message opens a new conversation.
#[tokio::test]
async fn status_changes_are_stored_published_and_final_once_closed() {
    let server = TestServer::sqlite(|_| {}).await;
    let ws_url = format!("{}/rpc", server.base.replace("http://", "ws://"));
    let ws = WsClientBuilder::default().build(&ws_url).await.unwrap();
    let mut events: Subscription<Value> = ws
        .subscribe(
            "conversation.subscribe",
            rpc_params![json!({"customer": "gina"})],
            "conversation.unsubscribe",
        )
        .await
        .unwrap();
    let sent: Value = server
        .client
        .post(server.url("/v1/messages"))
        .json(&message("gina", "hi"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(next_text(&mut events).await, "hi");
    let conversation = sent["message"]["conversation_id"].as_str().unwrap().to_owned();
    let put = |body: Value| {
        server
            .client
            .put(server.url(&format!("/v1/conversations/{conversation}/status")))
            .json(&body)
            .send()
    };
    let queued = put(json!({"status": "queued", "department": "after-sales/returns"}))
        .await
        .unwrap();
    assert_eq!(queued.status(), 200);
    let queued: Value = queued.json().await.unwrap();
    assert_eq!(
        (queued["status"].as_str(), queued["department"].as_str()),
        (Some("queued"), Some("after-sales/returns"))
    );
    let assigned: Value = put(json!({"status": "assigned", "assigned_agent": "agent7"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(assigned["assigned_agent"], "agent7");
    assert_eq!(assigned["department"], "after-sales/returns", "kept when not given");
    assert_eq!(put(json!({"status": "closed"})).await.unwrap().status(), 200);
    for (from, to) in [("bot", "queued"), ("queued", "assigned"), ("assigned", "closed")] {
        let event = tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(event["type"], "status_changed", "{event}");
        assert_eq!((event["from"].as_str(), event["to"].as_str()), (Some(from), Some(to)));
    }
    let refused = put(json!({"status": "queued"})).await.unwrap();
    assert_eq!(refused.status(), 409);
    assert_eq!(
        refused.json::<Value>().await.unwrap()["error"]["code"],
        "conversation_closed"
    );
    let bad = put(json!({"status": "sleeping"})).await.unwrap();
    assert_eq!(bad.status(), 422);
    let next: Value = server
        .client
        .post(server.url("/v1/messages"))
        .json(&message("gina", "again"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_ne!(
        next["message"]["conversation_id"].as_str(),
        Some(conversation.as_str()),
        "a new conversation opens"
    );
}
