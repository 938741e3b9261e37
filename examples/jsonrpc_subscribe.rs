//! Follows conversation events over JSON-RPC on a WebSocket (jsonrpsee client), as an agent desk would.
//!
//! Run (with `protofuse serve` running): `cargo run --example jsonrpc_subscribe -- [ws://127.0.0.1:8080/rpc]
//! [customer]`, then send messages through any protocol (REST, gRPC, JSON-RPC) and watch them arrive here.
//! Stops after 20 events or 60 s.

use std::time::Duration;

use jsonrpsee::core::client::{Subscription, SubscriptionClientT};
use jsonrpsee::rpc_params;
use jsonrpsee::ws_client::WsClientBuilder;
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| "ws://127.0.0.1:8080/rpc".to_owned());
    let filter = match args.next() {
        Some(customer) => json!({ "customer": customer }),
        None => json!({}),
    };
    let client = WsClientBuilder::default().build(&url).await?;
    let mut events: Subscription<Value> = client
        .subscribe(
            "conversation.subscribe",
            rpc_params![filter],
            "conversation.unsubscribe",
        )
        .await?;
    println!("subscribed on {url}; send a message through any protocol");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    for _ in 0..20 {
        match tokio::time::timeout_at(deadline, events.next()).await {
            Ok(Some(event)) => println!("{}", event?),
            Ok(None) | Err(_) => break,
        }
    }
    events.unsubscribe().await?;
    Ok(())
}
