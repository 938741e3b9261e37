//! Overload (issue 17): when the SQLite writer cannot keep up, a write is refused at once with 503 and
//! `Retry-After` instead of waiting in memory (gRPC `UNAVAILABLE`, JSON-RPC `-32003`); what was accepted is still
//! stored, each exactly once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use jsonrpsee::core::client::ClientT;
use jsonrpsee::http_client::HttpClientBuilder;
use jsonrpsee::rpc_params;
use serde_json::json;
use tokio::sync::Notify;
use tonic::Code;

use crate::grpc::{client as grpc_client, text};
use crate::jsonrpc::{app_code, message};
use crate::support::server::TestServer;

#[tokio::test]
async fn a_full_write_queue_answers_503_at_once_and_loses_nothing_accepted() {
    const QUEUE: usize = 4;
    const REQUESTS: usize = 120;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("overload.db");
    let url = format!("sqlite://{}", db.display());
    let store_url = url.clone();
    let server = TestServer::sqlite(move |c| {
        c.store.url = store_url;
        c.store.write_queue = QUEUE;
        // The writer waits for the lock held below rather than failing its group while the test runs.
        c.store.acquire_timeout = Duration::from_secs(60);
        c.server.request_timeout = Duration::from_secs(60);
    })
    .await;
    // Another connection holds SQLite's write lock: the writer is stuck in BEGIN IMMEDIATE, so at most the
    // queue, plus the group the writer took before it got stuck, can be accepted.
    let mut blocker = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE").execute(&mut blocker).await.unwrap();

    let answered = Arc::new(AtomicUsize::new(0));
    let progress = Arc::new(Notify::new());
    let requests: Vec<_> = (0..REQUESTS)
        .map(|i| {
            let request = server.client.post(server.url("/v1/messages")).json(&json!({
                "sender": {"role": "customer", "external_id": format!("flood-{i}")},
                "content": {"type": "text", "text": "hi"}
            }));
            let (answered, progress) = (answered.clone(), progress.clone());
            tokio::spawn(async move {
                let response = request.send().await.unwrap();
                answered.fetch_add(1, Ordering::AcqRel);
                progress.notify_one();
                let retry_after = response.headers().get("retry-after").cloned();
                (response.status().as_u16(), retry_after)
            })
        })
        .collect();
    // Everything beyond what the queue (and the writer's stuck group) can hold is answered while the lock is
    // still held: refusals do not wait for the writer.
    let refusable = REQUESTS - 2 * QUEUE;
    while answered.load(Ordering::Acquire) < refusable {
        tokio::time::timeout(Duration::from_secs(30), progress.notified())
            .await
            .expect("refusals arrive while the writer is stuck");
    }
    // The queue is full now: the other protocols are refused in their own terms, also at once.
    other_protocols_are_refused(&server).await;
    sqlx::query("COMMIT").execute(&mut blocker).await.unwrap();

    let mut accepted = 0;
    for request in requests {
        let (status, retry_after) = request.await.unwrap();
        match status {
            201 => accepted += 1,
            503 => assert_eq!(retry_after.unwrap(), "1"),
            other => panic!("every request is accepted or refused, got {other}"),
        }
    }
    assert!((1..=2 * QUEUE).contains(&accepted), "accepted {accepted}");
    let stored: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM messages")
        .fetch_one(&mut blocker)
        .await
        .unwrap();
    assert_eq!(
        stored.0,
        i64::try_from(accepted).unwrap(),
        "each accepted write stored once"
    );
    let metrics = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("protofuse_store_writes_shed_total"), "{metrics}");
    server.shutdown().await;
}

/// JSON-RPC answers its "store unavailable" error and gRPC `UNAVAILABLE` while the write queue is full.
async fn other_protocols_are_refused(server: &TestServer) {
    let rpc = HttpClientBuilder::default().build(server.url("/rpc")).unwrap();
    let refused = rpc
        .request::<serde_json::Value, _>("message.send", rpc_params![message("flood-rpc", "hi")])
        .await
        .unwrap_err();
    assert_eq!(app_code(refused), -32003);
    let mut grpc = grpc_client(server).await;
    let status = grpc.send_message(text("flood-grpc", "hi")).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
}
