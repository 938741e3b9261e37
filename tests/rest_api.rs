//! The native REST API over real HTTP against an in-process server on SQLite.

use serde_json::{Value, json};

use crate::support::server::{TestServer, texts as support_texts};

fn text_message(customer: &str, text: &str) -> Value {
    json!({
        "channel": "web",
        "sender": {"role": "customer", "external_id": customer, "display_name": "Alice"},
        "content": {"type": "text", "text": text}
    })
}

async fn post(server: &TestServer, body: &Value, key: Option<&str>) -> reqwest::Response {
    let mut request = server.client.post(server.url("/v1/messages")).json(body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    request.send().await.unwrap()
}

async fn error_code(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("error bodies are JSON");
    let code = body["error"]["code"]
        .as_str()
        .expect("error.code is a string")
        .to_owned();
    assert!(
        body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
        "error.message present: {body}"
    );
    (status, code)
}

#[tokio::test]
async fn posted_message_round_trips() {
    let server = TestServer::sqlite(|_| {}).await;
    let response = post(&server, &text_message("alice", "where is my parcel?"), None).await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let sent: Value = response.json().await.unwrap();
    assert_eq!(sent["duplicate"], false);
    let conversation = sent["message"]["conversation_id"].as_str().unwrap();
    assert_eq!(location, format!("/v1/conversations/{conversation}/messages"));

    let page: Value = server.get_json(&location).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0], sent["message"]);
    assert_eq!(page["items"][0]["content"]["text"], "where is my parcel?");
    assert!(page.get("next_cursor").is_none());

    let found: Value = server.get_json(&format!("/v1/conversations/{conversation}")).await;
    assert_eq!(found["customer_id"], "alice");
    assert_eq!(found["status"], "bot");
    server.shutdown().await;
}

#[tokio::test]
async fn duplicate_post_stores_one_row_and_says_so() {
    let server = TestServer::sqlite(|_| {}).await;
    let body = text_message("bob", "refund please");
    let first: Value = post(&server, &body, Some("order-42")).await.json().await.unwrap();
    for _ in 0..2 {
        let again = post(&server, &body, Some("order-42")).await;
        assert_eq!(again.status(), 200);
        assert_eq!(again.headers()["idempotent-replayed"], "true");
        let again: Value = again.json().await.unwrap();
        assert_eq!(again["duplicate"], true);
        assert_eq!(again["message"]["id"], first["message"]["id"]);
    }
    let conversation = first["message"]["conversation_id"].as_str().unwrap();
    let page: Value = server
        .get_json(&format!("/v1/conversations/{conversation}/messages"))
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "stored once");

    let reused = post(&server, &text_message("bob", "something else"), Some("order-42")).await;
    assert_eq!(error_code(reused).await, (409, "idempotency_key_reused".to_owned()));
    server.shutdown().await;
}

#[tokio::test]
async fn bad_bodies_get_documented_errors_and_the_server_keeps_serving() {
    let server = TestServer::sqlite(|c| c.server.body_limit_bytes = 2048).await;
    let raw = |body: &'static str, content_type: &'static str| {
        server
            .client
            .post(server.url("/v1/messages"))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    assert_eq!(
        error_code(raw("{\"sender\": ", "application/json").await.unwrap()).await,
        (400, "malformed_body".into())
    );
    let oversized = text_message("carol", &"x".repeat(4096));
    assert_eq!(
        error_code(post(&server, &oversized, None).await).await,
        (413, "payload_too_large".into())
    );
    let streamed = reqwest::Body::wrap_stream(futures::stream::iter(
        (0..8).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b' '; 1024]))),
    ));
    let chunked = server
        .client
        .post(server.url("/v1/messages"))
        .header("content-type", "application/json")
        .body(streamed);
    assert_eq!(
        error_code(chunked.send().await.unwrap()).await,
        (413, "payload_too_large".into()),
        "no Content-Length"
    );
    let unknown_type = json!({"sender": {"role": "customer", "external_id": "c"}, "content": {"type": "hologram"}});
    assert_eq!(
        error_code(post(&server, &unknown_type, None).await).await,
        (422, "invalid_message".into())
    );
    let wrong_field_type =
        json!({"sender": {"role": "customer", "external_id": "c"}, "content": {"type": "text", "text": 5}});
    assert_eq!(
        error_code(post(&server, &wrong_field_type, None).await).await,
        (422, "invalid_message".into())
    );
    assert_eq!(
        error_code(raw("uid=1&msg=hi", "application/x-www-form-urlencoded").await.unwrap()).await,
        (415, "unsupported_media_type".into())
    );

    let ok = post(&server, &text_message("carol", "still here?"), None).await;
    assert_eq!(ok.status(), 201, "the server keeps serving after bad input");
    let health = server.client.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    server.shutdown().await;
}

#[tokio::test]
async fn bad_lookups_get_documented_errors() {
    let server = TestServer::sqlite(|_| {}).await;
    let missing = uuid::Uuid::now_v7();
    let mut to_missing = text_message("carol", "hi");
    to_missing["conversation_id"] = json!(missing);
    assert_eq!(
        error_code(post(&server, &to_missing, None).await).await,
        (404, "conversation_not_found".into())
    );
    for path in [
        format!("/v1/conversations/{missing}"),
        format!("/v1/conversations/{missing}/messages"),
    ] {
        let response = server.client.get(server.url(&path)).send().await.unwrap();
        assert_eq!(
            error_code(response).await,
            (404, "conversation_not_found".into()),
            "{path}"
        );
    }
    let get = |path: &'static str| server.client.get(server.url(path)).send();
    assert_eq!(
        error_code(get("/v1/conversations/not-a-uuid").await.unwrap()).await,
        (400, "invalid_id".into())
    );
    assert_eq!(
        error_code(get("/v1/conversations?status=sleeping").await.unwrap()).await,
        (400, "invalid_query".into())
    );
    assert_eq!(
        error_code(get("/v1/conversations?limit=abc").await.unwrap()).await,
        (400, "invalid_query".into())
    );
    assert_eq!(
        error_code(get("/v2/nothing").await.unwrap()).await,
        (404, "not_found".into())
    );
    let delete = server.client.delete(server.url("/v1/messages")).send().await.unwrap();
    assert_eq!(error_code(delete).await, (405, "method_not_allowed".into()));

    server.shutdown().await;
}

#[tokio::test]
async fn history_pages_with_cursor_and_conversations_filter() {
    let server = TestServer::sqlite(|_| {}).await;
    let mut conversation = String::new();
    for i in 0..5 {
        let sent: Value = post(&server, &text_message("dana", &format!("msg {i}")), None)
            .await
            .json()
            .await
            .unwrap();
        conversation = sent["message"]["conversation_id"].as_str().unwrap().to_owned();
    }
    post(&server, &text_message("eve", "other customer"), None).await;

    let mut texts = Vec::new();
    let mut next = format!("/v1/conversations/{conversation}/messages?limit=2&order=desc");
    loop {
        let page: Value = server.get_json(&next).await;
        texts.extend(support_texts(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                next = format!("/v1/conversations/{conversation}/messages?limit=2&order=desc&cursor={cursor}");
            }
            None => break,
        }
    }
    assert_eq!(texts, ["msg 4", "msg 3", "msg 2", "msg 1", "msg 0"]);

    let dana: Value = server.get_json("/v1/conversations?customer=dana&status=bot").await;
    assert_eq!(dana["items"].as_array().unwrap().len(), 1);
    assert_eq!(dana["items"][0]["id"], conversation.as_str());
    let closed: Value = server.get_json("/v1/conversations?status=closed").await;
    assert!(closed["items"].as_array().unwrap().is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let server = TestServer::sqlite(|_| {}).await;
    post(&server, &text_message("fay", "hi"), None).await;
    let ready: Value = server.get_json("/readyz").await;
    assert_eq!(ready["store"], "sqlite");
    let metrics = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"protofuse_http_requests_total{method="POST",route="/v1/messages",status="201"}"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("protofuse_http_request_duration_seconds_bucket{"),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"protofuse_messages_ingested_total{protocol="rest",outcome="stored"}"#),
        "{metrics}"
    );
    server.shutdown().await;
}
