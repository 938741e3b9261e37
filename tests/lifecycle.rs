//! Request deadline and graceful shutdown, made deterministic with a real MariaDB row lock: a test transaction
//! holds the conversation row, so a write into that conversation waits inside the store for as long as the test
//! wants.

use std::time::Duration;

use serde_json::{Value, json};
use sqlx::{Connection, Executor, MySqlConnection};
use tokio::time::Instant;

use crate::support::mariadb;
use crate::support::server::{TestServer, loopback_config};

async fn mysql_server(tweak: impl FnOnce(&mut protofuse::config::Config)) -> (TestServer, String) {
    let url = mariadb::server().await.fresh_database().await;
    let mut config = loopback_config();
    config.store.url = url.clone();
    tweak(&mut config);
    (TestServer::start(&config, tempfile::tempdir().unwrap()).await, url)
}

/// Opens the customer's conversation and returns its id.
async fn open_conversation(server: &TestServer, customer: &str) -> String {
    let body =
        json!({"sender": {"role": "customer", "external_id": customer}, "content": {"type": "text", "text": "hi"}});
    let sent: Value = server
        .client
        .post(server.url("/v1/messages"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    sent["message"]["conversation_id"].as_str().unwrap().to_owned()
}

fn reply_into(conversation: &str, key: &str) -> Value {
    json!({"conversation_id": conversation, "direction": "outbound", "idempotency_key": key,
           "sender": {"role": "agent", "external_id": "agent-1"}, "content": {"type": "text", "text": "on it"}})
}

/// A connection holding the conversation's row lock until it is dropped or rolled back.
async fn lock_row(url: &str, conversation: &str) -> MySqlConnection {
    let mut conn = MySqlConnection::connect(url).await.unwrap();
    conn.execute("BEGIN").await.unwrap();
    sqlx::query("SELECT id FROM conversations WHERE id = ? FOR UPDATE")
        .bind(conversation)
        .execute(&mut conn)
        .await
        .unwrap();
    conn
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_over_the_deadline_gets_503_timeout_and_the_server_keeps_serving() {
    let (server, url) = mysql_server(|c| c.server.request_timeout = Duration::from_millis(300)).await;
    let conversation = open_conversation(&server, "slow-1").await;
    let mut lock = lock_row(&url, &conversation).await;

    let started = Instant::now();
    let blocked = server
        .client
        .post(server.url("/v1/messages"))
        .json(&reply_into(&conversation, "r1"))
        .send()
        .await
        .unwrap();
    assert_eq!(blocked.status(), 503);
    assert_eq!(blocked.headers()["retry-after"], "1");
    let body: Value = blocked.json().await.unwrap();
    assert_eq!(body["error"]["code"], "timeout");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered at the deadline, not when the lock was released"
    );

    lock.execute("ROLLBACK").await.unwrap();
    // A 503 `timeout` says the outcome is unknown: the write queued before the deadline may still commit once
    // the lock is gone (the store's writers outlive the request), so the retry either stores it (201) or learns
    // it was stored (200, a duplicate). On a busy machine a retry may itself meet the short deadline; it must
    // succeed within a few tries, and the idempotency key makes all of them one message.
    let mut status = 0;
    for _ in 0..20 {
        let retried = server
            .client
            .post(server.url("/v1/messages"))
            .json(&reply_into(&conversation, "r1"));
        status = retried.send().await.unwrap().status().as_u16();
        if status != 503 {
            break;
        }
    }
    assert!(
        status == 201 || status == 200,
        "the retry settles the timed-out write: {status}"
    );
    let messages = server
        .get_json(&format!("/v1/conversations/{conversation}/messages"))
        .await;
    let replies = messages["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["content"]["text"] == "on it")
        .count();
    assert_eq!(
        replies, 1,
        "the timed-out write and its retries are one message: {messages}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_an_in_flight_request_finish_and_refuses_new_connections() {
    let (server, url) = mysql_server(|c| c.server.shutdown_grace = Duration::from_secs(10)).await;
    let conversation = open_conversation(&server, "drain-1").await;
    let mut lock = lock_row(&url, &conversation).await;

    let in_flight = {
        let request = server
            .client
            .post(server.url("/v1/messages"))
            .json(&reply_into(&conversation, "d1"));
        tokio::spawn(request.send())
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let base = server.base.clone();
    let stopping = tokio::spawn(server.shutdown());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!stopping.is_finished(), "shutdown waits for the in-flight request");
    let fresh = reqwest::Client::new().get(format!("{base}/healthz")).send().await;
    assert!(fresh.is_err(), "no new connections once shutdown has begun");

    lock.execute("ROLLBACK").await.unwrap();
    let finished = in_flight.await.unwrap().expect("the in-flight request is answered");
    assert_eq!(finished.status(), 201);
    tokio::time::timeout(Duration::from_secs(5), stopping)
        .await
        .expect("shutdown completes once drained")
        .unwrap();
}
