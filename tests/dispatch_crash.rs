//! Crash safety of the whole pipeline: `kill -9` of `protofuse serve` at random points while clients stream
//! messages in, several times, then a restart. Every acknowledged message must be in the store once and reach
//! the destination (at least once; by its idempotency key, exactly once).

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng as _;
use serde_json::{Value, json};

use crate::support::receiver::{Mode, Receiver};
use crate::support::server::Binary;

const CUSTOMER: &str = "crash-test";
const SENDERS: usize = 4;

fn write_config(dir: &Path, receiver: &str) -> std::path::PathBuf {
    let path = dir.join("crash.toml");
    let db = dir.join("protofuse.db");
    let text = format!(
        r#"
[store]
url = "sqlite://{db}"

[dispatch]
poll_interval = "50ms"

[[dispatch.destinations]]
name = "sink"
kind = "webhook"
url = "{receiver}"
fuse = {{ timeout = "1s" }}
retry = {{ backoff_initial = "50ms", backoff_max = "200ms" }}

[[dispatch.routes]]
destinations = ["sink"]
"#,
        db = db.display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// The shared ledger: keys to send, and what each acknowledged key was stored as.
#[derive(Default)]
struct Ledger {
    next: usize,
    retry: Vec<String>,
    acked: BTreeMap<String, String>,
}

impl Ledger {
    fn take(&mut self) -> String {
        self.retry.pop().unwrap_or_else(|| {
            self.next += 1;
            format!("crash-{}", self.next)
        })
    }
}

/// Sends until the server stops answering; a key whose request failed goes back to be retried with the same
/// key (what a real client does), since it may or may not have been stored.
async fn stream(base: String, ledger: Arc<Mutex<Ledger>>, limit: Option<usize>) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    loop {
        let key = {
            let mut l = ledger.lock().unwrap();
            if limit.is_some_and(|n| l.next >= n) && l.retry.is_empty() {
                return;
            }
            l.take()
        };
        let body = json!({"channel": "web", "sender": {"role": "customer", "external_id": CUSTOMER},
                          "content": {"type": "text", "text": format!("text of {key}")}});
        let sent = client
            .post(format!("{base}/v1/messages"))
            .header("Idempotency-Key", &key)
            .json(&body)
            .send()
            .await;
        let stored = match sent {
            Ok(r) if r.status().is_success() => r.json::<Value>().await.ok(),
            _ => None,
        };
        let mut l = ledger.lock().unwrap();
        match stored {
            Some(v) => {
                l.acked.insert(key, v["message"]["id"].as_str().unwrap().to_owned());
            }
            None => {
                l.retry.push(key);
                return;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_dash_nine_while_streaming_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(Mode::Healthy).await;
    let config = write_config(dir.path(), &receiver.url);
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    for _ in 0..4 {
        let binary = Binary::serve(&config, dir.path()).await;
        let senders: Vec<_> = (0..SENDERS)
            .map(|_| tokio::spawn(stream(binary.base.clone(), ledger.clone(), None)))
            .collect();
        let pause = rand::rng().random_range(200..900);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        binary.kill();
        for s in senders {
            s.await.unwrap();
        }
    }
    // The last run: finish the keys left unacknowledged by the crashes, and let the outbox drain.
    let binary = Binary::serve(&config, dir.path()).await;
    let total = ledger.lock().unwrap().next;
    stream(binary.base.clone(), ledger.clone(), Some(total)).await;
    let acked = ledger.lock().unwrap().acked.clone();
    assert_eq!(acked.len(), total, "every key was eventually acknowledged");
    assert!(
        total > 20,
        "the crashes hit a stream of messages, not an idle server ({total})"
    );

    let ids: Vec<String> = acked.values().cloned().collect();
    receiver.wait_for(&ids, Duration::from_secs(30)).await;
    let delivered: HashSet<String> = receiver.accepted().into_keys().collect();
    let expected: HashSet<String> = ids.iter().cloned().collect();
    assert_eq!(
        delivered, expected,
        "the destination saw exactly the acknowledged messages"
    );

    let stored = stored_keys(&binary.base).await;
    assert_eq!(
        stored.len(),
        acked.len(),
        "each acknowledged message stored exactly once"
    );
    let unique: HashSet<&String> = stored.iter().collect();
    assert_eq!(unique.len(), stored.len(), "no message stored twice");
    binary.terminate();
}

/// Idempotency keys of every stored message of the test's customer, through the native API.
async fn stored_keys(base: &str) -> Vec<String> {
    let client = reqwest::Client::new();
    let conversations: Value = client
        .get(format!("{base}/v1/conversations?customer={CUSTOMER}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut keys = Vec::new();
    for conversation in conversations["items"].as_array().unwrap() {
        let id = conversation["id"].as_str().unwrap();
        let mut cursor: Option<String> = None;
        loop {
            let mut url = format!("{base}/v1/conversations/{id}/messages?limit=500");
            if let Some(c) = &cursor {
                url.push_str(&format!("&cursor={c}"));
            }
            let page: Value = client.get(url).send().await.unwrap().json().await.unwrap();
            for m in page["items"].as_array().unwrap() {
                keys.push(m["idempotency_key"].as_str().unwrap().to_owned());
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
    }
    keys
}
