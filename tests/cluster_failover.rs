//! Issue 20, node failure: three `protofuse serve` nodes on one private MariaDB and the machine's NATS JetStream,
//! clients writing through all three with their own idempotency keys, deliveries to a slow webhook (so every node
//! always holds leased rows), and `kill -9` of one node mid-load. Clients retry what failed on the dead node
//! against another node with the same key, as a real client would; a subscriber on the dead node reconnects to
//! another node with its last cursor. Then: every acknowledged message is stored exactly once, every one reaches
//! the webhook under its idempotency key (the dead node's leased rows are delivered by the others once the lease
//! expires), and the subscriber ends with every message of its conversation once, in order.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jsonrpsee::core::client::SubscriptionClientT;
use jsonrpsee::rpc_params;
use jsonrpsee::ws_client::WsClientBuilder;
use serde_json::{Value, json};

use crate::support::cluster::{nodes, prefix, remove};
use crate::support::mariadb;
use crate::support::receiver::{Mode, Receiver};

/// Load clients, spread over the nodes, each with its own customer.
const SENDERS: usize = 6;
/// Messages per client.
const PER_SENDER: usize = 30;
/// The customer whose conversation the subscriber follows (written by one more client).
const WATCHED: &str = "watched";
/// The node killed (`b`); the subscriber starts on it.
const VICTIM: usize = 1;
/// Each delivery takes this long, so deliveries are in flight (leased) on every node when one dies.
const DELIVERY: Duration = Duration::from_millis(500);
/// Deliveries in flight at once per node (the destination's bulkhead).
const CONCURRENCY: usize = 8;

/// Fast polls and a short lease (2 × the 1 s timeout + 2 s), so the dead node's rows come back within seconds.
fn dispatch(receiver: &str) -> String {
    format!(
        "[dispatch]\npoll_interval = \"50ms\"\n\
         [[dispatch.destinations]]\nname = \"sink\"\nkind = \"webhook\"\nurl = \"{receiver}\"\n\
         fuse = {{ timeout = \"1s\", slow_call = \"900ms\", concurrency = {CONCURRENCY} }}\n\
         retry = {{ backoff_initial = \"50ms\", backoff_max = \"200ms\" }}\n\
         [[dispatch.routes]]\ndestinations = [\"sink\"]\n"
    )
}

/// What the clients were acknowledged: key → (customer, message id), and any key acknowledged as two messages.
#[derive(Default)]
struct Ledger {
    acked: BTreeMap<String, (String, String)>,
    conflicts: Vec<String>,
    /// Keys a node failed to acknowledge, sent again to another.
    retried: usize,
}

impl Ledger {
    fn record(&mut self, key: String, customer: &str, id: String) {
        if let Some((_, earlier)) = self.acked.get(&key)
            && *earlier != id
        {
            self.conflicts.push(key.clone());
        }
        self.acked.insert(key, (customer.to_owned(), id));
    }
}

/// One POST; the stored message's id when acknowledged (201 new, 200 a duplicate of the same key).
async fn post(client: &reqwest::Client, base: &str, customer: &str, key: &str) -> Option<String> {
    let body = json!({"channel": "app", "sender": {"role": "customer", "external_id": customer},
                      "content": {"type": "text", "text": format!("text of {key}")}});
    let response = client
        .post(format!("{base}/v1/messages"))
        .header("Idempotency-Key", key)
        .json(&body)
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    let stored: Value = response.json().await.ok()?;
    stored["message"]["id"].as_str().map(str::to_owned)
}

/// Sends `count` messages for `customer`, each through the next node in turn; a request that fails goes to the
/// following node with the same key until one acknowledges it.
async fn client(bases: Arc<Vec<String>>, first: usize, customer: String, count: usize, ledger: Arc<Mutex<Ledger>>) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    for i in 0..count {
        let key = format!("{customer}-{i}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut node = first + i;
        let id = loop {
            if let Some(id) = post(&client, &bases[node % bases.len()], &customer, &key).await {
                break id;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{key} not acknowledged by any node"
            );
            ledger.lock().unwrap().retried += 1;
            node += 1;
        };
        ledger.lock().unwrap().record(key, &customer, id);
    }
}

/// Follows `conversation` on `bases` in turn, from its beginning; when a node's subscription ends (the node
/// died), resumes on the next after the last message id it received.
async fn follow(
    bases: Vec<String>,
    conversation: String,
    heard: Arc<Mutex<Vec<Value>>>,
    connections: Arc<AtomicUsize>,
) {
    let mut after = uuid::Uuid::nil().to_string();
    for base in bases {
        let Ok(ws) = WsClientBuilder::default()
            .build(format!("{}/rpc", base.replace("http://", "ws://")))
            .await
        else {
            continue;
        };
        let params = json!({"conversation_id": conversation, "after": after});
        let Ok(mut events) = ws
            .subscribe::<Value, _>(
                "conversation.subscribe",
                rpc_params![params],
                "conversation.unsubscribe",
            )
            .await
        else {
            continue;
        };
        connections.fetch_add(1, Ordering::SeqCst);
        while let Some(Ok(event)) = events.next().await {
            if event["type"] == "message_stored" {
                after = event["message"]["id"].as_str().unwrap().to_owned();
                heard.lock().unwrap().push(event["message"].clone());
            }
        }
    }
}

/// Every stored message id of `customer`'s conversations, read through `base`.
async fn stored(http: &reqwest::Client, base: &str, customer: &str) -> Vec<String> {
    let get = protofuse_testkit::http::get_json;
    let conversations = get(http, &format!("{base}/v1/conversations?customer={customer}&limit=500")).await;
    let mut ids = Vec::new();
    for conversation in conversations["items"].as_array().unwrap() {
        let mut cursor = String::new();
        loop {
            let url = format!(
                "{base}/v1/conversations/{}/messages?limit=500{cursor}",
                conversation["id"].as_str().unwrap()
            );
            let page = get(http, &url).await;
            ids.extend(
                page["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| m["id"].as_str().unwrap().to_owned()),
            );
            match page["next_cursor"].as_str() {
                Some(next) => cursor = format!("&cursor={next}"),
                None => break,
            }
        }
    }
    ids
}

/// Polls `done` every 50 ms for up to `limit`.
async fn eventually(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "{what} within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The subscriber of the watched conversation, running [`follow`] in a task.
struct Follower {
    heard: Arc<Mutex<Vec<Value>>>,
    connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Follower {
    /// Connected to `bases[0]` when this returns; moves on to the others in turn.
    async fn start(bases: Vec<String>, conversation: String) -> Self {
        let (heard, connections) = (Arc::new(Mutex::new(Vec::new())), Arc::new(AtomicUsize::new(0)));
        let task = tokio::spawn(follow(bases, conversation, heard.clone(), connections.clone()));
        eventually(Duration::from_secs(10), "the subscriber connected", || {
            connections.load(Ordering::SeqCst) == 1
        })
        .await;
        Self {
            heard,
            connections,
            task,
        }
    }

    fn heard_ids(&self) -> Vec<String> {
        let heard = self.heard.lock().unwrap();
        heard.iter().map(|m| m["id"].as_str().unwrap().to_owned()).collect()
    }
}

/// The load: [`SENDERS`] clients of their own customers and one of the watched customer, each starting on
/// another node.
fn start_clients(bases: &Arc<Vec<String>>, ledger: &Arc<Mutex<Ledger>>) -> Vec<tokio::task::JoinHandle<()>> {
    (0..=SENDERS)
        .map(|s| {
            let customer = if s == SENDERS {
                WATCHED.to_owned()
            } else {
                format!("load-{s}")
            };
            tokio::spawn(client(bases.clone(), s, customer, PER_SENDER, ledger.clone()))
        })
        .collect()
}

#[tokio::test]
async fn kill_dash_nine_of_one_node_under_load_loses_duplicates_and_skips_nothing() {
    let prefix = prefix();
    let store = mariadb::server().await.fresh_database().await;
    let receiver = Receiver::start(Mode::Slow(DELIVERY)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = nodes(dir.path(), &store, &prefix, &dispatch(&receiver.url)).await;
    let bases: Arc<Vec<String>> = Arc::new(nodes.iter().map(|n| n.base.clone()).collect());
    let survivors: Vec<String> = (0..bases.len())
        .filter(|&i| i != VICTIM)
        .map(|i| bases[i].clone())
        .collect();
    let http = reqwest::Client::new();
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    // The watched conversation exists before its subscriber connects to the victim.
    let first_key = format!("{WATCHED}-first");
    let first = post(&http, &bases[0], WATCHED, &first_key).await.unwrap();
    ledger.lock().unwrap().record(first_key, WATCHED, first);
    let conversation = get_conversation(&http, &bases[0], WATCHED).await;
    let follower = Follower::start([vec![bases[VICTIM].clone()], survivors.clone()].concat(), conversation).await;

    let clients = start_clients(&bases, &ledger);
    // Mid-load: a third of the messages acknowledged, and more calls in flight at the receiver than two nodes'
    // bulkheads allow, so the victim holds leased deliveries when it dies.
    let total = (SENDERS + 1) * PER_SENDER;
    eventually(Duration::from_secs(60), "a third acknowledged", || {
        ledger.lock().unwrap().acked.len() > total / 3
    })
    .await;
    eventually(
        Duration::from_secs(30),
        "deliveries in flight on all three nodes",
        || {
            receiver.reset_max_concurrent();
            receiver.max_concurrent() > 2 * CONCURRENCY
        },
    )
    .await;
    nodes.remove(VICTIM).kill();
    for c in clients {
        c.await.unwrap();
    }

    let ledger = Arc::try_unwrap(ledger).ok().unwrap().into_inner().unwrap();
    assert!(
        ledger.conflicts.is_empty(),
        "keys acknowledged as two messages: {:?}",
        ledger.conflicts
    );
    assert_eq!(ledger.acked.len(), total + 1, "every key acknowledged");
    assert!(ledger.retried > 0, "requests to the dead node were retried elsewhere");
    let ids = assert_stored_once(&http, &survivors[0], &ledger).await;
    // Every message reaches the webhook under its idempotency key (the message id), the dead node's leased
    // deliveries included once their lease (4 s) expires.
    receiver.wait_for(&ids, Duration::from_secs(60)).await;
    assert!(
        receiver.calls() > ids.len(),
        "the dead node's deliveries in flight were made again"
    );

    let watched = stored(&http, &survivors[1], WATCHED).await;
    eventually(Duration::from_secs(30), "the subscriber caught up", || {
        follower.heard_ids().len() >= watched.len()
    })
    .await;
    assert_eq!(
        follower.heard_ids(),
        watched,
        "every message of the conversation once, in id order"
    );
    assert_eq!(
        follower.connections.load(Ordering::SeqCst),
        2,
        "resumed once, on a survivor"
    );
    follower.task.abort();
    drop(nodes);
    remove(&prefix).await;
}

async fn get_conversation(http: &reqwest::Client, base: &str, customer: &str) -> String {
    let listed = protofuse_testkit::http::get_json(http, &format!("{base}/v1/conversations?customer={customer}")).await;
    listed["items"][0]["id"].as_str().unwrap().to_owned()
}

/// Every acknowledged message is in the store, once, and nothing else is; returns their ids.
async fn assert_stored_once(http: &reqwest::Client, base: &str, ledger: &Ledger) -> Vec<String> {
    let mut customers: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (customer, id) in ledger.acked.values() {
        customers.entry(customer.as_str()).or_default().push(id.as_str());
    }
    let mut all = Vec::new();
    for (customer, acked) in customers {
        let found = stored(http, base, customer).await;
        let distinct: HashSet<&String> = found.iter().collect();
        assert_eq!(distinct.len(), found.len(), "{customer}: a message stored twice");
        let acked: HashSet<String> = acked.into_iter().map(str::to_owned).collect();
        let acked: HashSet<&String> = acked.iter().collect();
        assert_eq!(distinct, acked, "{customer}: stored = acknowledged (0 lost, 0 extra)");
        all.extend(found);
    }
    all
}
