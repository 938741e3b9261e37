//! The gRPC face over a real socket with the tonic client generated from `proto/`: send, page, subscribe
//! (events caused over REST and JSON-RPC), idempotency, the standard health and reflection services,
//! compression, and each refusal with its status code while the server keeps serving.

use std::time::Duration;

use protofuse_grpc::pb::conversation_service_client::ConversationServiceClient;
use protofuse_grpc::pb::{self, content, subscribe_response};
use serde_json::json;
use tonic::Code;
use tonic::codec::CompressionEncoding;
use tonic::transport::Channel;

use crate::support::server::TestServer;

pub async fn client(server: &TestServer) -> ConversationServiceClient<Channel> {
    ConversationServiceClient::connect(server.grpc.clone()).await.unwrap()
}

pub fn text(customer: &str, text: &str) -> pb::SendMessageRequest {
    pb::SendMessageRequest {
        channel: "app".to_owned(),
        sender: Some(pb::Party {
            role: pb::Role::Customer.into(),
            external_id: customer.to_owned(),
            display_name: None,
        }),
        content: Some(pb::Content {
            kind: Some(content::Kind::Text(content::Text { text: text.to_owned() })),
        }),
        ..Default::default()
    }
}

fn text_of(m: &pb::Message) -> &str {
    match m.content.as_ref().and_then(|c| c.kind.as_ref()) {
        Some(content::Kind::Text(t)) => &t.text,
        other => panic!("not a text message: {other:?}"),
    }
}

async fn next_message(stream: &mut tonic::Streaming<pb::SubscribeResponse>) -> pb::Message {
    let event = tokio::time::timeout(Duration::from_secs(5), stream.message())
        .await
        .expect("an event within 5 s")
        .unwrap()
        .expect("stream open");
    match event.event {
        Some(subscribe_response::Event::MessageStored(m)) => m,
        other => panic!("expected message_stored, got {other:?}"),
    }
}

#[tokio::test]
async fn send_page_and_hear_every_protocol() {
    let server = TestServer::sqlite(|_| {}).await;
    let mut grpc = client(&server).await;
    let filter = pb::SubscribeRequest {
        customer_id: Some("carol".to_owned()),
        ..Default::default()
    };
    let mut events = grpc.subscribe(filter).await.unwrap().into_inner();

    let mut request = tonic::Request::new(text("carol", "one"));
    request
        .metadata_mut()
        .insert("idempotency-key", "carol-1".parse().unwrap());
    let first = grpc.send_message(request).await.unwrap().into_inner();
    assert!(!first.duplicate);
    let first = first.message.unwrap();
    assert_eq!(first.source.as_ref().unwrap().protocol, "grpc");
    assert_eq!(text_of(&next_message(&mut events).await), "one");

    let mut again = tonic::Request::new(text("carol", "one"));
    again
        .metadata_mut()
        .insert("idempotency-key", "carol-1".parse().unwrap());
    let again = grpc.send_message(again).await.unwrap().into_inner();
    assert!(again.duplicate, "the same idempotency key is a duplicate");
    assert_eq!(again.message.unwrap().id, first.id);

    // Over REST and JSON-RPC, into the same conversation; the gRPC subscriber hears both, not the duplicate.
    let body = json!({"channel": "app", "sender": {"role": "customer", "external_id": "carol"},
        "content": {"type": "text", "text": "two"}});
    let r = server
        .client
        .post(server.url("/v1/messages"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(text_of(&next_message(&mut events).await), "two");
    let mut rpc_body = body.clone();
    rpc_body["content"]["text"] = json!("three");
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "message.send", "params": rpc_body});
    let r: serde_json::Value = server
        .client
        .post(server.url("/rpc"))
        .json(&call)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["result"]["message"]["source"]["protocol"], "jsonrpc", "{r}");
    let heard = next_message(&mut events).await;
    assert_eq!(text_of(&heard), "three");
    assert_eq!(heard.conversation_id, first.conversation_id);

    page_and_read(&mut grpc, &first.conversation_id).await;
    server.shutdown().await;
}

async fn page_and_read(grpc: &mut ConversationServiceClient<Channel>, conversation_id: &str) {
    let mut page = pb::ListMessagesRequest {
        conversation_id: conversation_id.to_owned(),
        page_size: 2,
        ..Default::default()
    };
    let one = grpc.list_messages(page.clone()).await.unwrap().into_inner();
    assert_eq!(one.messages.iter().map(text_of).collect::<Vec<_>>(), ["one", "two"]);
    page.page_token = one.next_page_token;
    let two = grpc.list_messages(page).await.unwrap().into_inner();
    assert_eq!(two.messages.iter().map(text_of).collect::<Vec<_>>(), ["three"]);
    assert!(two.next_page_token.is_empty());

    let conversation = grpc
        .get_conversation(pb::GetConversationRequest {
            conversation_id: conversation_id.to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .conversation
        .unwrap();
    assert_eq!(conversation.customer_id, "carol");
    assert_eq!(conversation.status, i32::from(pb::ConversationStatus::Bot));
    let listed = grpc
        .list_conversations(pb::ListConversationsRequest {
            customer_id: "carol".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.conversations.len(), 1);
}

#[tokio::test]
async fn refusals_have_their_codes_and_the_server_keeps_serving() {
    let server = TestServer::sqlite(|c| {
        let scopes = [protofuse::auth::Scope::Read, protofuse::auth::Scope::Write];
        c.api.keys = vec![crate::edge::key("test", "s3cret", &scopes)];
        c.grpc.request_timeout = Duration::from_millis(300);
    })
    .await;
    let mut grpc = client(&server).await;
    let status = grpc.send_message(text("dan", "hi")).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    let mut bad = tonic::Request::new(text("dan", "hi"));
    bad.metadata_mut()
        .insert("authorization", "Bearer nope".parse().unwrap());
    assert_eq!(grpc.send_message(bad).await.unwrap_err().code(), Code::Unauthenticated);

    fn authed<T>(mut r: tonic::Request<T>) -> tonic::Request<T> {
        r.metadata_mut().insert("x-api-key", "s3cret".parse().unwrap());
        r
    }
    let huge = text("dan", &"x".repeat(5 * 1024 * 1024));
    let status = grpc.send_message(authed(tonic::Request::new(huge))).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");

    let mut no_sender = text("dan", "hi");
    no_sender.sender = None;
    let status = grpc
        .send_message(authed(tonic::Request::new(no_sender)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let unknown = pb::GetConversationRequest {
        conversation_id: uuid::Uuid::now_v7().to_string(),
    };
    let status = grpc
        .get_conversation(authed(tonic::Request::new(unknown)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");

    // Hold SQLite's write lock from outside so the store write outlasts the deadline: first the server's cap
    // ([grpc] request_timeout = 300ms), then a shorter client deadline (which tonic's client also enforces).
    let url = format!("sqlite://{}", server.dir().join("protofuse.db").display());
    let mut blocker = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE").execute(&mut blocker).await.unwrap();
    let status = grpc
        .send_message(authed(tonic::Request::new(text("dan", "slow"))))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    let mut slow = authed(tonic::Request::new(text("dan", "slower")));
    slow.set_timeout(Duration::from_millis(100));
    let started = std::time::Instant::now();
    let status = grpc.send_message(slow).await.unwrap_err();
    assert!(
        matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{status:?}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(280),
        "the client deadline won over the cap"
    );
    sqlx::query("ROLLBACK").execute(&mut blocker).await.unwrap();

    // The writes that timed out are still queued ahead of this one (a deadline abandons the answer, not a write
    // already handed to the store), and SQLite's busy handler polls for the released lock, so on a busy machine
    // the first call after the release may itself meet the 300 ms cap. The server must come back, not hang.
    let mut sent = None;
    for _ in 0..50 {
        match grpc
            .send_message(authed(tonic::Request::new(text("dan", "still here"))))
            .await
        {
            Ok(reply) => {
                sent = Some(reply.into_inner());
                break;
            }
            Err(status) if status.code() == Code::DeadlineExceeded => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(status) => panic!("{status:?}"),
        }
    }
    assert!(sent.is_some(), "the server serves again once the lock is released");
    server.shutdown().await;
}

#[tokio::test]
async fn health_reflection_and_compression() {
    let server = TestServer::sqlite(|_| {}).await;
    let channel = Channel::from_shared(server.grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    for service in ["", "protofuse.v1.ConversationService"] {
        let reply = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            reply.status(),
            tonic_health::pb::health_check_response::ServingStatus::Serving
        );
    }

    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let ask = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut reflection = ServerReflectionClient::new(channel.clone());
    let mut replies = reflection
        .server_reflection_info(tokio_stream::iter([ask]))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) = replies.message().await.unwrap().unwrap().message_response
    else {
        panic!("expected a service list");
    };
    let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"protofuse.v1.ConversationService".to_owned()),
        "{names:?}"
    );
    assert!(names.contains(&"grpc.health.v1.Health".to_owned()), "{names:?}");

    for encoding in [CompressionEncoding::Gzip, CompressionEncoding::Zstd] {
        let mut grpc = ConversationServiceClient::new(channel.clone())
            .send_compressed(encoding)
            .accept_compressed(encoding);
        let reply = grpc
            .send_message(text("erin", &"compressible ".repeat(200)))
            .await
            .unwrap();
        assert!(reply.into_inner().message.is_some());
    }
    server.shutdown().await;
}

#[tokio::test]
async fn health_turns_not_serving_on_shutdown() {
    let server = TestServer::sqlite(|c| c.server.shutdown_grace = Duration::from_millis(500)).await;
    let channel = Channel::from_shared(server.grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let mut watch = health
        .watch(tonic_health::pb::HealthCheckRequest { service: String::new() })
        .await
        .unwrap()
        .into_inner();
    use tonic_health::pb::health_check_response::ServingStatus;
    assert_eq!(watch.message().await.unwrap().unwrap().status(), ServingStatus::Serving);
    let stopping = tokio::spawn(server.shutdown());
    let next = tokio::time::timeout(Duration::from_secs(5), watch.message())
        .await
        .unwrap();
    assert_eq!(next.unwrap().unwrap().status(), ServingStatus::NotServing);
    stopping.await.unwrap();
}
