//! A gRPC client for protofuse, using the client generated from `proto/protofuse/v1` (crate `protofuse-grpc`).
//!
//! Run (with `protofuse serve` running): `cargo run --example grpc_client -- [http://127.0.0.1:50051] [api-key]`
//!
//! Subscribes to one customer's events, sends a message (gzip-compressed, with an idempotency key in the call
//! metadata), prints the event it causes, then pages the conversation's history.

use std::time::Duration;

use protofuse_grpc::pb::conversation_service_client::ConversationServiceClient;
use protofuse_grpc::pb::{self, content, subscribe_response};
use tonic::codec::CompressionEncoding;

/// Wraps `message` in a request carrying the API key, when there is one.
fn authed<T>(message: T, key: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(key) = key {
        let value = format!("Bearer {key}").parse().expect("an ASCII API key");
        request.metadata_mut().insert("authorization", value);
    }
    request
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| "http://127.0.0.1:50051".to_owned());
    let key = args.next();
    let mut client = ConversationServiceClient::connect(url)
        .await?
        .send_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Gzip);

    let customer = format!("grpc-example-{}", std::process::id());
    let filter = pb::SubscribeRequest {
        customer_id: Some(customer.clone()),
        ..Default::default()
    };
    let subscribe = authed(filter, key.as_deref());
    let mut events = client.clone().subscribe(subscribe).await?.into_inner();

    let message = pb::SendMessageRequest {
        channel: "app".to_owned(),
        sender: Some(pb::Party {
            role: pb::Role::Customer.into(),
            external_id: customer.clone(),
            display_name: Some("Example".to_owned()),
        }),
        content: Some(pb::Content {
            kind: Some(content::Kind::Text(content::Text {
                text: "Hello over gRPC".to_owned(),
            })),
        }),
        ..Default::default()
    };
    let mut send = authed(message, key.as_deref());
    send.metadata_mut()
        .insert("idempotency-key", format!("{customer}-1").parse()?);
    send.set_timeout(Duration::from_secs(5));
    let sent = client.send_message(send).await?.into_inner();
    let stored = sent.message.ok_or("the answer carries the stored message")?;
    println!("stored {} (duplicate: {})", stored.id, sent.duplicate);

    if let Ok(Ok(Some(event))) = tokio::time::timeout(Duration::from_secs(5), events.message()).await
        && let Some(subscribe_response::Event::MessageStored(m)) = event.event
    {
        println!("event: message {} stored in conversation {}", m.id, m.conversation_id);
    }

    let page = pb::ListMessagesRequest {
        conversation_id: stored.conversation_id,
        page_size: 10,
        ..Default::default()
    };
    let history = client.list_messages(authed(page, key.as_deref())).await?.into_inner();
    println!("the conversation has {} message(s)", history.messages.len());
    Ok(())
}
