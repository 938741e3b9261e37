//! Subscriptions resumed after a cursor, over real sockets on one node: a gRPC `Subscribe` and a JSON-RPC
//! `conversation.subscribe` with `after` get every stored message after it, then live ones, each once and in id
//! order, while a client keeps writing to the conversation during the switch from the store to the bus; and the
//! refusals (a cursor without a conversation, a malformed cursor, an unknown conversation).

use std::time::Duration;

use jsonrpsee::core::client::{Error as ClientError, Subscription, SubscriptionClientT};
use jsonrpsee::rpc_params;
use jsonrpsee::ws_client::WsClientBuilder;
use protofuse_grpc::pb::{self, content, subscribe_response};
use serde_json::{Value, json};
use tonic::Code;

use crate::grpc::{client, text};
use crate::support::server::TestServer;

/// Messages written while the subscriber connects: enough that some land in the replay and some after it.
const WRITTEN: usize = 40;

async fn next_grpc(stream: &mut tonic::Streaming<pb::SubscribeResponse>) -> pb::Message {
    let event = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("an event within 10 s")
        .unwrap()
        .expect("stream open");
    match event.event {
        Some(subscribe_response::Event::MessageStored(m)) => m,
        other => panic!("expected message_stored, got {other:?}"),
    }
}

fn grpc_text(m: &pb::Message) -> String {
    match m.content.as_ref().and_then(|c| c.kind.as_ref()) {
        Some(content::Kind::Text(t)) => t.text.clone(),
        other => panic!("not a text message: {other:?}"),
    }
}

fn texts(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("m{i}")).collect()
}

#[tokio::test]
async fn a_grpc_subscriber_resumes_after_its_cursor_while_the_conversation_grows() {
    let server = TestServer::sqlite(|_| {}).await;
    let mut grpc = client(&server).await;
    let mut ids = Vec::new();
    for text_ in texts(0..5) {
        let sent = grpc.send_message(text("rita", &text_)).await.unwrap().into_inner();
        ids.push(sent.message.unwrap());
    }
    let conversation = ids[0].conversation_id.clone();
    // Nothing new is written: what comes is read from the store.
    let quiet = pb::SubscribeRequest {
        conversation_id: Some(conversation.clone()),
        after: Some(ids[2].id.clone()),
        ..Default::default()
    };
    let mut quiet = grpc.subscribe(quiet).await.unwrap().into_inner();
    assert_eq!(grpc_text(&next_grpc(&mut quiet).await), "m3");
    assert_eq!(grpc_text(&next_grpc(&mut quiet).await), "m4");
    drop(quiet);
    // Another client keeps writing while the subscriber reads the store and switches to the bus.
    let writer = {
        let mut grpc = grpc.clone();
        tokio::spawn(async move {
            for text_ in texts(5..WRITTEN) {
                grpc.send_message(text("rita", &text_)).await.unwrap();
            }
        })
    };
    let resume = pb::SubscribeRequest {
        conversation_id: Some(conversation.clone()),
        after: Some(ids[1].id.clone()),
        ..Default::default()
    };
    let mut stream = grpc.subscribe(resume).await.unwrap().into_inner();
    let mut heard = Vec::new();
    while heard.len() < WRITTEN - 2 {
        heard.push(next_grpc(&mut stream).await);
    }
    writer.await.unwrap();
    assert_eq!(
        heard.iter().map(grpc_text).collect::<Vec<_>>(),
        texts(2..WRITTEN),
        "after the cursor, each once, in order"
    );
    assert!(heard.windows(2).all(|w| w[0].id < w[1].id), "ascending ids");
    // Nothing else was pending: the next event is the message sent now.
    grpc.send_message(text("rita", "last")).await.unwrap();
    assert_eq!(grpc_text(&next_grpc(&mut stream).await), "last");

    let refused = |request: pb::SubscribeRequest| {
        let mut grpc = grpc.clone();
        async move { grpc.subscribe(request).await.map(drop).unwrap_err() }
    };
    let without_conversation = pb::SubscribeRequest {
        customer_id: Some("rita".to_owned()),
        after: Some(ids[0].id.clone()),
        ..Default::default()
    };
    let status = refused(without_conversation).await;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("conversation_id is required"), "{status:?}");
    let malformed = pb::SubscribeRequest {
        conversation_id: Some(conversation),
        after: Some("yesterday".to_owned()),
        ..Default::default()
    };
    assert_eq!(refused(malformed).await.code(), Code::InvalidArgument);
    let unknown = pb::SubscribeRequest {
        conversation_id: Some(uuid::Uuid::now_v7().to_string()),
        after: Some(ids[0].id.clone()),
        ..Default::default()
    };
    assert_eq!(refused(unknown).await.code(), Code::NotFound);
    server.shutdown().await;
}

async fn next_rpc(events: &mut Subscription<Value>) -> Value {
    let event = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("an event within 10 s")
        .unwrap()
        .unwrap();
    assert_eq!(event["type"], "message_stored", "{event}");
    event["message"].clone()
}

fn rpc_message(customer: &str, text: &str) -> Value {
    json!({"channel": "app", "sender": {"role": "customer", "external_id": customer},
        "content": {"type": "text", "text": text}})
}

#[tokio::test]
async fn a_json_rpc_subscriber_replays_the_whole_conversation_then_hears_live_messages() {
    let server = TestServer::sqlite(|_| {}).await;
    let send = |text_: String| {
        let request = server
            .client
            .post(server.url("/v1/messages"))
            .json(&rpc_message("sam", &text_));
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 201);
            response.json::<Value>().await.unwrap()["message"].clone()
        }
    };
    let first = send("m0".to_owned()).await;
    for text_ in texts(1..5) {
        send(text_).await;
    }
    let writer = tokio::spawn({
        let (client, url) = (server.client.clone(), server.url("/v1/messages"));
        async move {
            for text_ in texts(5..WRITTEN) {
                let r = client
                    .post(&url)
                    .json(&rpc_message("sam", &text_))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 201);
            }
        }
    });
    let ws = WsClientBuilder::default()
        .build(format!("{}/rpc", server.base.replace("http://", "ws://")))
        .await
        .unwrap();
    let subscribe = |params: Value| {
        ws.subscribe::<Value, _>(
            "conversation.subscribe",
            rpc_params![params],
            "conversation.unsubscribe",
        )
    };
    // The nil UUID: from the conversation's beginning.
    let mut events = subscribe(json!({"conversation_id": first["conversation_id"], "after": uuid::Uuid::nil()}))
        .await
        .unwrap();
    let mut heard = Vec::new();
    while heard.len() < WRITTEN {
        heard.push(next_rpc(&mut events).await);
    }
    writer.await.unwrap();
    let heard_texts: Vec<&str> = heard.iter().map(|m| m["content"]["text"].as_str().unwrap()).collect();
    assert_eq!(
        heard_texts,
        texts(0..WRITTEN),
        "the whole conversation, each once, in order"
    );
    assert_eq!(heard[0]["id"], first["id"]);
    send("last".to_owned()).await;
    assert_eq!(next_rpc(&mut events).await["content"]["text"], "last");
    // A reconnect after the third-last message, with nothing written meanwhile: the rest comes from the store.
    let mut again = subscribe(json!({"conversation_id": first["conversation_id"], "after": heard[WRITTEN - 3]["id"]}))
        .await
        .unwrap();
    for expected in [texts(WRITTEN - 2..WRITTEN), vec!["last".to_owned()]].concat() {
        assert_eq!(next_rpc(&mut again).await["content"]["text"], expected.as_str());
    }

    let code = |refused: Result<Subscription<Value>, ClientError>| match refused {
        Err(ClientError::Call(object)) => object.code(),
        Err(other) => panic!("expected an error object, got {other:?}"),
        Ok(_) => panic!("subscribed"),
    };
    let without_conversation = subscribe(json!({"customer": "sam", "after": first["id"]})).await;
    assert_eq!(code(without_conversation), -32602);
    let unknown = subscribe(json!({"conversation_id": uuid::Uuid::now_v7(), "after": first["id"]})).await;
    assert_eq!(code(unknown), -32001);
    server.shutdown().await;
}
