//! The dispatcher through its real interfaces: messages posted over HTTP, delivered to real webhook receivers
//! that fail, hang, answer slowly and recover; breakers and dead letters inspected and driven through the admin
//! API over HTTP.

use std::time::Duration;

use protofuse::config::Config;
use protofuse::dispatch::{DestinationConfig, DestinationKind, FuseSettings, RetrySettings, RouteConfig};
use serde_json::{Value, json};

use crate::support::receiver::{Mode, Receiver};
use crate::support::server::TestServer;

/// A webhook destination with settings small enough for tests: breaker after 3 failures, open for 200-400 ms,
/// quick retries.
pub(crate) fn webhook(name: &str, url: &str) -> DestinationConfig {
    let mut fuse = FuseSettings {
        timeout: Duration::from_millis(400),
        slow_call: Duration::from_millis(300),
        concurrency: 4,
        queue: 8,
        ..FuseSettings::default()
    };
    fuse.breaker.consecutive_failures = 3;
    fuse.breaker.open_initial = Duration::from_millis(200);
    fuse.breaker.open_max = Duration::from_millis(400);
    fuse.breaker.half_open_probes = 1;
    DestinationConfig {
        name: name.to_owned(),
        kind: DestinationKind::Webhook,
        url: Some(url.to_owned()),
        headers: Default::default(),
        adapter: None,
        account: None,
        fuse,
        retry: RetrySettings {
            max_attempts: 1000,
            backoff_initial: Duration::from_millis(20),
            backoff_max: Duration::from_millis(100),
            budget_min_per_second: 1000.0,
            ..RetrySettings::default()
        },
    }
}

pub(crate) fn route_all(config: &mut Config, destinations: Vec<DestinationConfig>) {
    config.dispatch.poll_interval = Duration::from_millis(50);
    config.dispatch.routes = vec![RouteConfig {
        destinations: destinations.iter().map(|d| d.name.clone()).collect(),
        ..RouteConfig::default()
    }];
    config.dispatch.destinations = destinations;
}

/// Posts `n` messages; returns their stored ids (the key receivers dedupe on).
async fn post_messages(server: &TestServer, customer: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let body = json!({"channel": "web", "sender": {"role": "customer", "external_id": customer},
                          "content": {"type": "text", "text": format!("message {i}")}});
        let response = server
            .client
            .post(server.url("/v1/messages"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let stored: Value = response.json().await.unwrap();
        ids.push(stored["message"]["id"].as_str().unwrap().to_owned());
    }
    ids
}

async fn admin(server: &TestServer, path: &str) -> Value {
    let url = format!("http://{}{path}", server.admin);
    server.client.get(url).send().await.unwrap().json().await.unwrap()
}

async fn destination(server: &TestServer, name: &str) -> Value {
    let all = admin(server, "/admin/destinations").await;
    all["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == name)
        .cloned()
        .unwrap()
}

/// Polls `check` every 20 ms until it holds, or panics with `what` after `limit`.
pub(crate) async fn eventually<F: std::future::Future<Output = bool>>(
    what: &str,
    limit: Duration,
    mut check: impl FnMut() -> F,
) {
    let deadline = tokio::time::Instant::now() + limit;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn breaker_opens_fails_fast_probes_one_at_a_time_and_closes_again() {
    let receiver = Receiver::start(Mode::Fail(503)).await;
    let server = TestServer::sqlite(|c| route_all(c, vec![webhook("flaky", &receiver.url)])).await;
    let ids = post_messages(&server, "ann", 12).await;

    eventually("the breaker to open", Duration::from_secs(10), || async {
        destination(&server, "flaky").await["state"] != "closed"
    })
    .await;
    // From now on, only half-open probes reach the receiver, one at a time.
    receiver.reset_max_concurrent();
    let calls_when_opened = receiver.calls();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let probes = receiver.calls() - calls_when_opened;
    assert!(
        receiver.max_concurrent() <= 1,
        "probes ran {} at once",
        receiver.max_concurrent()
    );
    // Open for 200-400 ms at a time: a handful of probes in 1.5 s, not a retry storm of 12 messages.
    assert!((1..=30).contains(&probes), "{probes} calls while the breaker was open");
    let view = destination(&server, "flaky").await;
    assert!(view["calls"]["rejected_open"].as_u64().unwrap() > 0, "{view}");
    assert_eq!(view["pending"], 12, "nothing is dropped while open: {view}");
    let metrics = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let open_series = metrics
        .lines()
        .filter(|l| l.starts_with("protofuse_breaker_state{") && l.contains("destination=\"flaky\""))
        .filter(|l| l.ends_with(" 1"))
        .count();
    assert_eq!(open_series, 1, "one state series is 1 per destination:\n{metrics}");
    assert!(metrics.contains("protofuse_destination_calls_total{destination=\"flaky\",outcome=\"rejected_open\"}"));

    receiver.set_mode(Mode::Healthy);
    receiver.wait_for(&ids, Duration::from_secs(15)).await;
    eventually("the breaker to close", Duration::from_secs(5), || async {
        destination(&server, "flaky").await["state"] == "closed"
    })
    .await;
    // Each message accepted exactly once: the dispatcher retried only what had not been accepted.
    let accepted = receiver.accepted();
    assert_eq!(accepted.len(), ids.len());
    assert!(accepted.values().all(|n| *n == 1), "{accepted:?}");
    eventually("the outbox to empty", Duration::from_secs(5), || async {
        destination(&server, "flaky").await["pending"] == 0
    })
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_hanging_destination_does_not_slow_a_healthy_one_or_ingress() {
    let hanging = Receiver::start(Mode::Hang).await;
    let healthy = Receiver::start(Mode::Healthy).await;
    let server = TestServer::sqlite(|c| {
        route_all(
            c,
            vec![webhook("hangs", &hanging.url), webhook("healthy", &healthy.url)],
        );
    })
    .await;
    let started = tokio::time::Instant::now();
    let ids = post_messages(&server, "bob", 40).await;
    // 40 acknowledged writes, each waiting only for the store, not for the hanging destination (400 ms
    // timeout each): far less than even one timeout per message.
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "ingress took {:?}",
        started.elapsed()
    );
    healthy.wait_for(&ids, Duration::from_secs(5)).await;
    eventually("timeouts to open the breaker", Duration::from_secs(5), || async {
        destination(&server, "hangs").await["state"] != "closed"
    })
    .await;
    let view = destination(&server, "hangs").await;
    assert!(view["calls"]["timeout"].as_u64().unwrap() >= 3, "{view}");
    assert_eq!(view["pending"], 40, "{view}");
    assert!(hanging.accepted().is_empty());
    assert_eq!(destination(&server, "healthy").await["state"], "closed");
    server.shutdown().await;
}

#[tokio::test]
async fn slow_successes_count_toward_opening_the_breaker() {
    let receiver = Receiver::start(Mode::Slow(Duration::from_millis(350))).await;
    // A timeout far above the 350 ms answer: on a loaded machine a 350 ms call can take over the shared 400 ms
    // timeout and count as a timeout instead of a slow success, which is not what this test is about.
    let mut sluggish = webhook("sluggish", &receiver.url);
    sluggish.fuse.timeout = Duration::from_secs(5);
    let server = TestServer::sqlite(|c| route_all(c, vec![sluggish])).await;
    let ids = post_messages(&server, "cid", 8).await;
    eventually("the breaker to open on slow calls", Duration::from_secs(10), || async {
        destination(&server, "sluggish").await["state"] != "closed"
    })
    .await;
    let view = destination(&server, "sluggish").await;
    assert!(view["calls"]["slow"].as_u64().unwrap() >= 3, "{view}");
    receiver.set_mode(Mode::Healthy);
    receiver.wait_for(&ids, Duration::from_secs(10)).await;
    server.shutdown().await;
}

fn doomed(c: &mut Config, receiver: &Receiver) {
    let mut d = webhook("doomed", &receiver.url);
    d.retry.max_attempts = 3;
    d.fuse.breaker.consecutive_failures = 1000;
    route_all(c, vec![d]);
    c.admin.token = Some("s3cret".to_owned());
}

#[tokio::test]
async fn failed_deliveries_become_dead_letters_and_replay_delivers_them() {
    let receiver = Receiver::start(Mode::Fail(500)).await;
    let server = TestServer::sqlite(|c| doomed(c, &receiver)).await;
    dead_letter_cycle(&server, &receiver).await;
}

#[tokio::test]
async fn the_outbox_and_dead_letters_work_on_mariadb() {
    let receiver = Receiver::start(Mode::Fail(500)).await;
    let mut config = crate::support::server::loopback_config();
    config.store.url = crate::support::mariadb::server().await.fresh_database().await;
    doomed(&mut config, &receiver);
    let server = TestServer::start(&config, tempfile::tempdir().unwrap()).await;
    dead_letter_cycle(&server, &receiver).await;
}

/// Three messages fail three times each, become dead letters, are inspected, and are replayed once the
/// receiver recovers; the admin API's auth and refusals are checked on the way.
async fn dead_letter_cycle(server: &TestServer, receiver: &Receiver) {
    let ids = post_messages(server, "dee", 3).await;
    let client = &server.client;
    let url = |path: &str| format!("http://{}{path}", server.admin);
    let list = || async {
        let r = client
            .get(url("/admin/dead-letters"))
            .bearer_auth("s3cret")
            .send()
            .await
            .unwrap();
        r.json::<Value>().await.unwrap()
    };
    eventually("three dead letters", Duration::from_secs(10), || async {
        list().await["items"].as_array().unwrap().len() == 3
    })
    .await;
    assert_eq!(receiver.calls(), 9, "exactly max_attempts calls per message");
    let items = list().await["items"].as_array().unwrap().clone();
    assert!(items.iter().all(|d| d["attempts"] == 3 && d["destination"] == "doomed"));
    assert!(items[0]["last_error"].as_str().unwrap().contains("500"), "{}", items[0]);
    let one = client
        .get(url(&format!("/admin/dead-letters/{}", items[0]["id"])))
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap();
    let one: Value = one.json().await.unwrap();
    // Dead letters are listed in the order they died, which retries with jitter make any order.
    assert_eq!(
        one["message"]["id"], items[0]["message_id"],
        "the original message comes with it"
    );
    assert!(ids.contains(&one["message"]["id"].as_str().unwrap().to_owned()));
    assert!(
        one["message"]["content"]["text"]
            .as_str()
            .unwrap()
            .starts_with("message ")
    );

    // The admin API refuses without the token, and refuses a replay that does not say what to replay.
    let refused = client.get(url("/admin/dead-letters")).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    let vague = client
        .post(url("/admin/dead-letters/replay"))
        .bearer_auth("s3cret")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(vague.status(), 400);

    receiver.set_mode(Mode::Healthy);
    let replayed = client
        .post(url("/admin/dead-letters/replay"))
        .bearer_auth("s3cret")
        .json(&json!({"destination": "doomed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(replayed.json::<Value>().await.unwrap()["replayed"], 3);
    receiver.wait_for(&ids, Duration::from_secs(10)).await;
    assert!(list().await["items"].as_array().unwrap().is_empty());
    eventually("the outbox to empty", Duration::from_secs(5), || async {
        let r = client
            .get(url("/admin/destinations"))
            .bearer_auth("s3cret")
            .send()
            .await
            .unwrap();
        r.json::<Value>().await.unwrap()["destinations"][0]["pending"] == 0
    })
    .await;
}

#[tokio::test]
async fn a_refusal_is_dead_lettered_at_once_without_tripping_the_breaker() {
    let receiver = Receiver::start(Mode::Fail(422)).await;
    let server = TestServer::sqlite(|c| route_all(c, vec![webhook("strict", &receiver.url)])).await;
    post_messages(&server, "eve", 5).await;
    eventually("five dead letters", Duration::from_secs(10), || async {
        destination(&server, "strict").await["dead_letters"] == 5
    })
    .await;
    assert_eq!(receiver.calls(), 5, "a 422 is not retried");
    assert_eq!(destination(&server, "strict").await["state"], "closed");
    server.shutdown().await;
}

#[tokio::test]
async fn operators_can_force_a_breaker_open_and_back() {
    let receiver = Receiver::start(Mode::Healthy).await;
    let server = TestServer::sqlite(|c| route_all(c, vec![webhook("crm", &receiver.url)])).await;
    let put = |value: &'static str| {
        server
            .client
            .put(format!("http://{}/admin/destinations/crm/breaker", server.admin))
            .json(&json!({ "override": value }))
            .send()
    };
    assert_eq!(put("forced_open").await.unwrap().status(), 200);
    let ids = post_messages(&server, "fay", 3).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(receiver.calls(), 0, "a forced-open breaker lets nothing through");
    assert_eq!(destination(&server, "crm").await["override"], "forced_open");
    assert_eq!(put("auto").await.unwrap().status(), 200);
    receiver.wait_for(&ids, Duration::from_secs(5)).await;
    let unknown = server
        .client
        .put(format!("http://{}/admin/destinations/nope/breaker", server.admin))
        .json(&json!({ "override": "auto" }))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    server.shutdown().await;
}

#[tokio::test]
async fn the_dead_letters_command_lists_shows_and_replays() {
    let receiver = Receiver::start(Mode::Fail(500)).await;
    let server = TestServer::sqlite(|c| {
        let mut d = webhook("crm", &receiver.url);
        d.retry.max_attempts = 1;
        route_all(c, vec![d]);
    })
    .await;
    let ids = post_messages(&server, "gus", 2).await;
    eventually("two dead letters", Duration::from_secs(10), || async {
        destination(&server, "crm").await["dead_letters"] == 2
    })
    .await;
    let db = server.dir().join("protofuse.db");
    let config = server.dir().join("cli.toml");
    std::fs::write(&config, format!("[store]\nurl = \"sqlite://{}\"\n", db.display())).unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_protofuse"))
            .arg("dead-letters")
            .arg("--config")
            .arg(&config)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let listed: Vec<Value> = run(&["list", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(listed.len(), 2);
    let mut listed_ids: Vec<&str> = listed.iter().map(|d| d["message_id"].as_str().unwrap()).collect();
    listed_ids.sort_unstable();
    let mut expected: Vec<&str> = ids.iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(listed_ids, expected);
    let shown: Value = serde_json::from_str(&run(&["show", &listed[0]["id"].to_string()])).unwrap();
    assert!(shown["last_error"].as_str().unwrap().contains("500"));
    assert_eq!(shown["message"]["sender"]["external_id"], "gus");

    // Replayed from the command line while the server runs: its worker delivers them.
    receiver.set_mode(Mode::Healthy);
    assert_eq!(
        run(&["replay", "--destination", "crm"]).trim(),
        "replayed 2 dead letter(s)"
    );
    receiver.wait_for(&ids, Duration::from_secs(10)).await;
    assert_eq!(run(&["list", "--json"]), "");
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_drains_within_its_deadline_and_the_next_start_resumes() {
    let receiver = Receiver::start(Mode::Hang).await;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("resume.db").display());
    let tweak = |c: &mut Config| {
        let mut d = webhook("later", &receiver.url);
        d.fuse.timeout = Duration::from_secs(30);
        route_all(c, vec![d]);
        c.dispatch.drain_timeout = Duration::from_millis(300);
        c.store.url.clone_from(&db);
    };
    let server = TestServer::sqlite(tweak).await;
    let ids = post_messages(&server, "hal", 3).await;
    eventually("the deliveries to hang", Duration::from_secs(5), || async {
        receiver.calls() == 3
    })
    .await;
    let started = tokio::time::Instant::now();
    server.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown took {:?}",
        started.elapsed()
    );

    // The hanging calls were abandoned at the drain deadline and their rows released: a new process delivers
    // them at once, without waiting for the 30 s timeout's lease to expire.
    receiver.set_mode(Mode::Healthy);
    let server = TestServer::sqlite(tweak).await;
    receiver.wait_for(&ids, Duration::from_secs(5)).await;
    server.shutdown().await;
}
