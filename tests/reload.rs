//! Issue 20, configuration changes without a restart: `POST /admin/reload` and SIGHUP read the file again and put
//! a legacy adapter and a destination in force while clients keep sending, refuse a broken file with every
//! problem and keep the running configuration; in cluster mode one command reloads every node.
//!
//! Every server here is the real binary on its own ports; the load is real clients over sockets, and a request
//! that fails during a reload fails the test.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use protofuse_testkit::binary::Binary;
use protofuse_testkit::mariadb;
use protofuse_testkit::receiver::{Mode, Receiver};
use serde_json::{Value, json};

const PHP_ADAPTER: &str = "config/adapters/php-helpdesk.toml";

/// The API key the clients here send; its rate is far above what they can reach.
const CLIENT_KEY: &str = "reload-test-client-key";
/// An API key a reload adds, and a later one takes away.
const OPS_KEY: &str = "reload-test-ops-key";

fn api_key(id: &str, key: &str) -> String {
    format!(
        "[[api.keys]]\nid = \"{id}\"\nsha256 = \"{}\"\nscopes = [\"read\", \"write\"]\nrate_per_second = 100000\n",
        protofuse::auth::digest_hex(key)
    )
}

/// A configuration: `store`, the clients' API key, the webhook destination `first` for every `app` message, and
/// `more` after it.
fn configuration(store: &str, first: &Receiver, more: &str) -> String {
    format!(
        "[store]\nurl = \"{store}\"\n{}\
         [[dispatch.destinations]]\nname = \"first\"\nkind = \"webhook\"\nurl = \"{}\"\n\
         [[dispatch.routes]]\nchannels = [\"app\"]\ndestinations = [\"first\"]\n{more}",
        api_key("client", CLIENT_KEY),
        first.url
    )
}

/// What the reload adds: the PHP helpdesk's adapter, `second` also receiving every `app` message, and a key.
fn additions(second: &Receiver) -> String {
    let adapter = Path::new(env!("CARGO_MANIFEST_DIR")).join(PHP_ADAPTER);
    format!(
        "[legacy]\nadapters = [\"{}\"]\n{}\
         [[dispatch.destinations]]\nname = \"second\"\nkind = \"webhook\"\nurl = \"{}\"\n\
         [[dispatch.routes]]\nchannels = [\"app\"]\ndestinations = [\"second\"]\n",
        adapter.display(),
        api_key("ops", OPS_KEY),
        second.url
    )
}

/// Two mistakes validation must both report: a route to a destination that does not exist, and a webhook
/// whose URL is not one.
const BROKEN: &str = "[[dispatch.destinations]]\nname = \"third\"\nkind = \"webhook\"\nurl = \"not a url\"\n\
                      [[dispatch.routes]]\nchannels = [\"app\"]\ndestinations = [\"nowhere\"]\n";

/// Clients sending `app` messages through `nodes` in turn until stopped; every answer is kept.
struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<Vec<(u16, String)>>>,
}

impl Load {
    fn start(nodes: &[String]) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..4)
            .map(|client| {
                let (stop, nodes) = (stop.clone(), nodes.to_vec());
                tokio::spawn(async move {
                    let http = reqwest::Client::new();
                    let mut answers = Vec::new();
                    for i in 0.. {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let node = &nodes[i % nodes.len()];
                        let body = json!({"channel": "app", "sender": {"role": "customer", "external_id": format!("load-{client}")},
                                          "content": {"type": "text", "text": format!("message {i}")}});
                        let request = http.post(format!("{node}/v1/messages")).bearer_auth(CLIENT_KEY);
                        let response = request.json(&body).send().await.unwrap();
                        let status = response.status().as_u16();
                        let answer: Value = response.json().await.unwrap_or_default();
                        answers.push((status, answer["message"]["id"].as_str().unwrap_or_default().to_owned()));
                    }
                    answers
                })
            })
            .collect();
        Self { stop, tasks }
    }

    /// Stops the clients; every answer must be 201, and the stored messages' ids are returned.
    async fn finish(self) -> Vec<String> {
        self.stop.store(true, Ordering::SeqCst);
        let mut ids = Vec::new();
        for task in self.tasks {
            for (status, id) in task.await.unwrap() {
                assert_eq!(status, 201, "no request fails while the configuration reloads");
                ids.push(id);
            }
        }
        assert!(ids.len() >= 20, "the load ran: {} messages", ids.len());
        ids
    }
}

async fn php_post(node: &str, uid: &str) -> (u16, String) {
    let response = reqwest::Client::new()
        .post(format!("{node}/legacy/php/message"))
        .header("x-api-key", "php-demo-key")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("uid={uid}&msg=hello&ts=1700000000&role=1"))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// Sends an `app` message with `key`: the status, and the stored message's id.
async fn send_with(node: &str, key: &str, customer: &str) -> (u16, String) {
    let body = json!({"channel": "app", "sender": {"role": "customer", "external_id": customer},
                      "content": {"type": "text", "text": "after the reload"}});
    let response = reqwest::Client::new()
        .post(format!("{node}/v1/messages"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let answer: Value = response.json().await.unwrap();
    (status, answer["message"]["id"].as_str().unwrap_or_default().to_owned())
}

async fn send(node: &str, customer: &str) -> String {
    let (status, id) = send_with(node, CLIENT_KEY, customer).await;
    assert_eq!(status, 201);
    id
}

async fn reload(node: &Binary) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/admin/reload", node.admin))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn destination(node: &Binary, name: &str) -> Value {
    let all: Value = reqwest::get(format!("{}/admin/destinations", node.admin))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    all["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == name)
        .cloned()
        .unwrap_or(Value::Null)
}

fn issue_keys(error: &Value) -> Vec<String> {
    error["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap().to_owned())
        .collect()
}

/// Polls `check` until it holds: the server applies a SIGHUP on its own time, and says so only in its log.
async fn eventually<F: Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "{what} within 20 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_protofuse"))
}

#[tokio::test]
async fn a_reload_under_load_adds_an_adapter_and_a_destination_and_a_broken_file_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("store.db").display());
    let (first, second) = (
        Receiver::start(Mode::Healthy).await,
        Receiver::start(Mode::Healthy).await,
    );
    let file: PathBuf = dir.path().join("protofuse.toml");
    std::fs::write(&file, configuration(&store, &first, "")).unwrap();
    let node = Binary::serve(exe(), &file, dir.path(), &[]).await;
    assert_eq!(php_post(&node.base, "1").await.0, 404, "no adapter yet");
    let forced = reqwest::Client::new()
        .put(format!("{}/admin/destinations/first/breaker", node.admin))
        .json(&json!({"override": "forced_closed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(forced.status(), 200);
    let load = Load::start(std::slice::from_ref(&node.base));

    std::fs::write(&file, configuration(&store, &first, &additions(&second))).unwrap();
    let (status, reloaded) = reload(&node).await;
    assert_eq!(status, 200, "{reloaded}");
    assert_eq!(reloaded["changed"], json!(["legacy", "dispatch", "api"]), "{reloaded}");
    assert_eq!(reloaded["restart_required"], json!([]));
    assert_eq!(reloaded["destinations"]["added"], json!(["second"]));
    assert_eq!(reloaded["destinations"]["replaced"], json!([]));
    assert_eq!(reloaded["legacy_routes"], 1);
    let (status, answer) = php_post(&node.base, "42").await;
    assert_eq!((status, answer.contains(r#""code":0"#)), (200, true), "{answer}");
    assert_eq!(
        send_with(&node.base, OPS_KEY, "ops").await.0,
        201,
        "the new key is accepted"
    );
    let id = send(&node.base, "after").await;
    second.wait_for(&[id], Duration::from_secs(20)).await;
    assert_eq!(
        destination(&node, "first").await["override"],
        "forced_closed",
        "an unchanged destination keeps its fuse"
    );

    // Both mistakes are listed, and everything reloaded before keeps serving.
    let broken = configuration(&store, &first, &(additions(&second) + BROKEN));
    std::fs::write(&file, broken).unwrap();
    let (status, refused) = reload(&node).await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"]["code"], "invalid_config");
    let keys = issue_keys(&refused["error"]);
    assert!(keys.contains(&"dispatch.destinations[2].url".to_owned()), "{refused}");
    assert!(
        keys.contains(&"dispatch.routes[2].destinations".to_owned()),
        "{refused}"
    );
    assert_eq!(php_post(&node.base, "43").await.0, 200);
    second
        .wait_for(&[send(&node.base, "still").await], Duration::from_secs(20))
        .await;

    // SIGHUP reloads too: the adapter goes, `first` gets new settings (a new fuse: the override is gone), and the
    // listener's change waits for a restart.
    let changed = configuration(&store, &first, "[server]\nbody_limit_bytes = 500000\n").replace(
        "name = \"first\"",
        "name = \"first\"\nheaders = { \"x-config\" = \"2\" }",
    );
    std::fs::write(&file, changed).unwrap();
    node.signal("HUP");
    eventually("the adapter's route is gone", || async {
        php_post(&node.base, "44").await.0 == 404
    })
    .await;
    assert_eq!(
        send_with(&node.base, OPS_KEY, "ops").await.0,
        401,
        "the removed key is refused"
    );
    assert_eq!(destination(&node, "first").await["override"], "auto");
    assert_eq!(destination(&node, "second").await, Value::Null);
    let (status, again) = reload(&node).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["restart_required"], json!(["server"]), "{again}");

    let ids = load.finish().await;
    first.wait_for(&ids, Duration::from_secs(30)).await;
}

/// `[cluster]` for node `node` under `prefix`, on the machine's NATS.
fn cluster(prefix: &str, node: &str) -> String {
    format!("[cluster]\nnats = \"nats://127.0.0.1:4222\"\nnode = \"{node}\"\nprefix = \"{prefix}\"\n")
}

/// Nodes a, b and c, each from its own file in `dir` (`a.toml`, ...), once each lists all three: a
/// cluster-wide command then waits for every node's answer.
async fn three_nodes(dir: &Path, store: &str, prefix: &str, first: &Receiver) -> Vec<Binary> {
    let mut nodes = Vec::new();
    for name in ["a", "b", "c"] {
        let file = dir.join(format!("{name}.toml"));
        std::fs::write(&file, configuration(store, first, &cluster(prefix, name))).unwrap();
        nodes.push(Binary::serve(exe(), &file, dir, &[]).await);
    }
    for node in &nodes {
        eventually("each node lists three nodes", || async {
            let listed: Value = reqwest::get(format!("{}/admin/nodes", node.admin))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            listed["nodes"].as_array().is_some_and(|n| n.len() == 3)
        })
        .await;
    }
    nodes
}

/// Node `name`'s answer in a cluster-wide reload's `answer`.
fn outcome(answer: &Value, name: &str) -> Value {
    let nodes = answer["nodes"].as_array().unwrap();
    nodes.iter().find(|n| n["node"] == name).cloned().unwrap()
}

/// Three nodes, each with its own file: one `POST /admin/reload` reloads them all, and a node whose file is
/// broken refuses on its own while the others apply theirs.
#[tokio::test]
async fn one_reload_command_reloads_every_node_and_a_node_with_a_broken_file_keeps_its_configuration() {
    let prefix = format!("pfr{}", uuid::Uuid::now_v7().simple());
    let store = mariadb::server().await.fresh_database().await;
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (
        Receiver::start(Mode::Healthy).await,
        Receiver::start(Mode::Healthy).await,
    );
    let nodes = three_nodes(dir.path(), &store, &prefix, &first).await;
    let bases: Vec<String> = nodes.iter().map(|n| n.base.clone()).collect();
    let write = |name: &str, more: &str| {
        let text = configuration(&store, &first, &(cluster(&prefix, name) + more));
        std::fs::write(dir.path().join(format!("{name}.toml")), text).unwrap();
    };
    let load = Load::start(&bases);

    ["a", "b", "c"].iter().for_each(|name| write(name, &additions(&second)));
    let (status, answer) = reload(&nodes[0]).await;
    assert_eq!(status, 200, "{answer}");
    for name in ["a", "b", "c"] {
        let node = outcome(&answer, name);
        assert_eq!(node["ok"], true, "{node}");
        assert_eq!(node["outcome"]["destinations"]["added"], json!(["second"]), "{node}");
    }
    for (i, base) in bases.iter().enumerate() {
        assert_eq!(
            php_post(base, &format!("9{i}")).await.0,
            200,
            "the adapter serves on every node"
        );
    }
    second
        .wait_for(&[send(&bases[2], "via-c").await], Duration::from_secs(20))
        .await;

    // Node b's file breaks: b refuses and keeps serving what it has; a and c apply theirs (the adapter goes).
    write("b", &(additions(&second) + BROKEN));
    write("a", "");
    write("c", "");
    let (status, answer) = reload(&nodes[2]).await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"]["code"], "reload_refused");
    assert_eq!(outcome(&answer, "a")["ok"], true);
    assert_eq!(outcome(&answer, "c")["ok"], true);
    assert_eq!(outcome(&answer, "b")["ok"], false);
    let keys = issue_keys(&outcome(&answer, "b")["outcome"]);
    assert!(keys.contains(&"dispatch.routes[2].destinations".to_owned()), "{answer}");
    assert_eq!(php_post(&bases[1], "b1").await.0, 200, "b keeps its configuration");
    assert_eq!(php_post(&bases[0], "a1").await.0, 404);

    let ids = load.finish().await;
    first.wait_for(&ids, Duration::from_secs(30)).await;
    drop(nodes);
    let js = async_nats::jetstream::new(async_nats::connect("nats://127.0.0.1:4222").await.unwrap());
    for stream in ["events", "nonces", "tokens"] {
        let _ = js.delete_stream(format!("{prefix}_{stream}")).await;
    }
}
