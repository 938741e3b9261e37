//! The agent console (`/console`) and the operator dashboard (`/dashboard`) in real browsers (headless Chromium
//! over WebDriver), against a real protofuse server on SQLite: a visitor on a site's page and an agent in the
//! console, each in their own browser; an operator watching a breaker open and replaying a dead letter. Every
//! wait polls the page (or the receiver) with a deadline. Screenshots land in `target/screenshots/`.

use std::time::Duration;

use protofuse::auth::Scope;
use protofuse::config::Config;
use protofuse::dispatch::{DestinationConfig, DestinationKind, RouteConfig};
use protofuse_triage::RuleConfig;
use serde_json::{Value, json};

use crate::dispatch::webhook;
use crate::edge::key;
use crate::support::browser::Browser;
use crate::support::receiver::{Mode, Receiver};
use crate::support::server::TestServer;
use crate::web_widget::{handoff_notice, say, shown_last, site, visitor};

/// The agent's API key, as pasted into the console.
const AGENT_KEY: &str = "console-agent-key-0123456789";
/// The operator's admin token, as pasted into the dashboard.
const ADMIN_TOKEN: &str = "dashboard-admin-token-0123456789";

/// Routes web visitors' texts through built-in triage, so each carries its intent, department and confidence;
/// invoices go to people in billing by rule.
fn with_triage(config: &mut Config) {
    let rule = RuleConfig {
        id: "invoices-to-people".to_owned(),
        keywords: vec!["发票抬头".to_owned()],
        regex: None,
        intent: Some("human".to_owned()),
        department: Some("billing/invoices".to_owned()),
        priority: 10,
    };
    config.web.triage = true;
    config.triage = crate::triage::shipped_triage(vec![rule]);
    config.dispatch.poll_interval = Duration::from_millis(50);
    config.dispatch.destinations = vec![DestinationConfig {
        kind: DestinationKind::Triage,
        url: None,
        ..webhook("triage", "http://unused.invalid/")
    }];
    config.dispatch.routes = vec![RouteConfig {
        channels: vec!["web".to_owned()],
        directions: vec!["inbound".to_owned()],
        destinations: vec!["triage".to_owned()],
        ..RouteConfig::default()
    }];
}

/// Fills the console's sign-in form and submits it.
async fn sign_in(agent: &Browser, key: &str) {
    for (field, value) in [
        ("#key", key),
        ("#agent", "agent-7"),
        ("#name", "Mia"),
        ("#interval", "0.5"),
    ] {
        let input = agent.displayed(field).await;
        input.clear().await.unwrap();
        input.send_keys(value).await.unwrap();
    }
    agent
        .displayed("#sign-in button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
}

/// A text on the page (`null` while the element is missing).
fn text_of(css: &str) -> String {
    format!("const e = document.querySelector({css:?}); return e && e.textContent;")
}

/// The queue as the console shows it: `[{department, ids}]`.
const QUEUE: &str = "return Array.from(document.querySelectorAll('#queue .group')).map(g => ({
    department: g.dataset.department,
    ids: Array.from(g.querySelectorAll('.item')).map(i => i.dataset.id) }));";
/// The open conversation's history: `[{role, text, imported}]`.
const HISTORY: &str = "return Array.from(document.querySelectorAll('#history .msg')).map(m => ({
    role: m.dataset.role, text: m.querySelector('.text').textContent, imported: !!m.querySelector('.imported') }));";

#[tokio::test]
async fn a_visitor_is_greeted_handed_off_and_answered_by_an_agent_in_the_console() {
    let (server, page) = site(r#"data-lang="zh""#, |config| {
        config.api.keys = vec![key("agent-7", AGENT_KEY, &[Scope::Read, Scope::Write])];
        with_triage(config);
    })
    .await;
    let visitor = visitor("console-visitor", &page).await;
    let greeting = protofuse::server::web::WebConfig::default().greeting;
    visitor
        .wait_for("the bot's greeting", &text_of(".pfw-greeting .pfw-text"), |v| {
            v == greeting.as_str()
        })
        .await;
    visitor.screenshot("greeting").await;
    say(&visitor, "转人工，我要改发票抬头").await;
    shown_last(&visitor, "system", &handoff_notice()).await;

    let agent = visitor.another("console-agent").await;
    agent.client.goto(&server.url("/console")).await.unwrap();
    sign_in(&agent, "not-the-key").await;
    agent
        .wait_for("the refusal", &text_of("#sign-in-error"), |v| {
            v.as_str().is_some_and(|t| t.contains("refused"))
        })
        .await;
    sign_in(&agent, AGENT_KEY).await;
    let id = open_the_waiting_conversation(&agent, &server).await;

    agent.displayed("#take").await.click().await.unwrap();
    agent
        .wait_for("taken", &text_of("#conv-status"), |v| v == "assigned")
        .await;
    agent
        .wait_for(
            "in my list, no longer waiting",
            "return [document.querySelectorAll('#mine .item').length,
            document.querySelectorAll('#queue .item').length];",
            |v| *v == json!([1, 0]),
        )
        .await;
    let conversation = authorized(&server, &format!("/v1/conversations/{id}")).await;
    assert_eq!(conversation["assigned_agent"], "agent-7", "{conversation}");

    let answer = "您好，我是 Mia，发票抬头可以修改。";
    agent.displayed("#reply").await.send_keys(answer).await.unwrap();
    agent.displayed("#send").await.click().await.unwrap();
    let shown = shown_last(&visitor, "agent", answer).await;
    assert_eq!(shown.last().unwrap().sender.as_deref(), Some("Mia"));
    visitor.screenshot("agent-reply").await;
    agent
        .wait_for("the reply in the history", HISTORY, |v| {
            v.as_array()
                .and_then(|h| h.last())
                .is_some_and(|m| m["role"] == "agent" && m["text"] == answer)
        })
        .await;
    agent.screenshot("console").await;

    agent.displayed("#close-conv").await.click().await.unwrap();
    agent
        .wait_for("closed", &text_of("#conv-status"), |v| v == "closed")
        .await;
    let conversation = authorized(&server, &format!("/v1/conversations/{id}")).await;
    assert_eq!(conversation["status"], "closed");
    agent.close().await;
    visitor.close().await;
    server.shutdown().await;
}

/// In the console: the one conversation waiting, grouped under its department, opened with its whole history
/// and triage's outcome; returns its id.
async fn open_the_waiting_conversation(agent: &Browser, server: &TestServer) -> String {
    let queue = agent
        .wait_for("the conversation waiting in its department", QUEUE, |v| {
            v.as_array().is_some_and(|groups| groups.len() == 1)
                && v[0]["ids"].as_array().is_some_and(|ids| ids.len() == 1)
        })
        .await;
    let id = queue[0]["ids"][0].as_str().unwrap().to_owned();
    let waiting = authorized(server, &format!("/v1/conversations/{id}")).await;
    assert_eq!(waiting["status"], "queued");
    assert!(
        waiting["department"].as_str().is_some_and(|d| !d.is_empty()),
        "{waiting}"
    );
    assert_eq!(
        queue[0]["department"], waiting["department"],
        "grouped by the conversation's department"
    );
    let customer = waiting["customer_id"].as_str().unwrap();
    let imported = import_an_older_message(server, &id, customer).await;
    agent
        .displayed(&format!("#queue .item[data-id='{id}'] .open"))
        .await
        .click()
        .await
        .unwrap();
    agent
        .wait_for("the whole history, imported first", HISTORY, |v| {
            v.as_array().is_some_and(|h| {
                h.len() == 3
                    && h[0] == json!({"role": "customer", "text": imported, "imported": true})
                    && h[1]["role"] == "customer"
                    && h[1]["imported"] == false
                    && h[2]["text"] == handoff_notice().as_str()
            })
        })
        .await;
    // Triage's outcome is stored on the message by the dispatcher after the hand-off; the poll brings it.
    let outcome = triage_of(server, &id).await;
    let intent = outcome["intent"].as_str().unwrap();
    agent
        .wait_for("the intent", &text_of("#triage-intent"), |v| v == intent)
        .await;
    assert_eq!(agent.eval(&text_of("#triage-department")).await, outcome["department"]);
    let confidence = format!("{}%", (outcome["confidence"].as_f64().unwrap() * 100.0).round());
    assert_eq!(agent.eval(&text_of("#triage-confidence")).await, confidence.as_str());
    id
}

/// Writes a month-old message of `customer` into `conversation` through the store's import API, as the binlog
/// importer does when it copies a legacy helpdesk's history; returns its text.
async fn import_an_older_message(server: &TestServer, conversation: &str, customer: &str) -> &'static str {
    use protofuse_model::{Content, Direction, IdempotencyKey, Message, MessageId, Party, Protocol, Role, Source};
    let text = "上个月的发票还没收到";
    let sent = chrono::Utc::now() - chrono::Duration::days(30);
    let seconds = u64::try_from(sent.timestamp()).unwrap();
    let id = uuid::Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, seconds, 0));
    let message = Message {
        id: MessageId::from_uuid(id),
        conversation_id: conversation.parse().unwrap(),
        channel: "web".to_owned(),
        direction: Direction::Inbound,
        sender: Party {
            role: Role::Customer,
            external_id: customer.to_owned(),
            display_name: None,
        },
        content: Content::Text { text: text.to_owned() },
        sent_at: Some(sent),
        received_at: sent,
        source: Source::new(Protocol::Import),
        metadata: Default::default(),
        idempotency_key: IdempotencyKey::imported("helpdesk", "ticket_thread", 42),
        triage: None,
    };
    let url = format!("sqlite://{}", server.dir().join("protofuse.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    let row = protofuse_store::import::MessageRow::new(&message);
    protofuse_store::import::sqlite::upsert_messages(&mut tx, &[&row])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    pool.close().await;
    text
}

/// The triage outcome stored on the conversation's visitor message, once the dispatcher's triage step stored it.
async fn triage_of(server: &TestServer, conversation: &str) -> Value {
    let deadline = tokio::time::Instant::now() + crate::support::browser::WAIT;
    loop {
        let page = authorized(server, &format!("/v1/conversations/{conversation}/messages")).await;
        let triaged = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["triage"].is_object());
        if let Some(message) = triaged {
            return message["triage"].clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no triage outcome stored: {page}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// GETs `path` from the API with the agent's key.
async fn authorized(server: &TestServer, path: &str) -> Value {
    let response = server
        .client
        .get(server.url(path))
        .bearer_auth(AGENT_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

/// A destination that never answers: each call times out, three in a row open its breaker for a minute (so
/// the page has time to show it), and a failed message is dead at once.
fn hanging_crm(url: &str) -> DestinationConfig {
    let mut crm = webhook("crm", url);
    crm.fuse.breaker.open_initial = Duration::from_secs(60);
    crm.fuse.breaker.open_max = Duration::from_secs(60);
    crm.retry.max_attempts = 1;
    crm
}

/// The dashboard's row for `name`: `{state, override, dead}`.
fn destination_row(name: &str) -> String {
    format!(
        "const r = document.querySelector('#destinations tr[data-name={name:?}]');
         return r && {{state: r.dataset.state, override: r.querySelector('.override').textContent,
                      dead: r.querySelector('.dead').textContent,
                      depth: r.querySelector('svg').dataset.points}};"
    )
}

/// The dead letters the dashboard lists: their message ids.
const DEAD_LETTERS: &str =
    "return Array.from(document.querySelectorAll('#dead-letters tbody tr')).map(r => r.dataset.messageId);";

/// Posts a customer's message through the REST API; returns its id.
async fn post_message(server: &TestServer, text: &str) -> String {
    posted(server, text).await["id"].as_str().unwrap().to_owned()
}

/// Posts a customer's message through the REST API; returns it as stored.
async fn posted(server: &TestServer, text: &str) -> Value {
    let body = json!({"channel": "api", "sender": {"role": "customer", "external_id": "buyer-1"},
                      "content": {"type": "text", "text": text}});
    let response = server
        .client
        .post(server.url("/v1/messages"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let stored: Value = response.json().await.unwrap();
    stored["message"].clone()
}

/// Fills the dashboard's sign-in form and submits it.
async fn dashboard_sign_in(operator: &Browser, token: &str) {
    for (field, value) in [("#token", token), ("#interval", "0.5")] {
        let input = operator.displayed(field).await;
        input.clear().await.unwrap();
        input.send_keys(value).await.unwrap();
    }
    operator
        .displayed("#sign-in button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
}

/// Three messages to the hanging destination: the dashboard shows its breaker open, their three dead letters
/// and the ingest chart counting them; returns their ids.
async fn open_the_breaker(operator: &Browser, server: &TestServer) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(post_message(server, &format!("order {i}")).await);
    }
    let row = operator
        .wait_for("crm's breaker open, three dead letters", &destination_row("crm"), |v| {
            v["state"] == "open" && v["dead"] == "3"
        })
        .await;
    assert_eq!(row["override"], "auto");
    let listed = operator
        .wait_for("the dead letters listed", DEAD_LETTERS, |v| {
            v.as_array().is_some_and(|l| l.len() == 3)
        })
        .await;
    let mut listed: Vec<String> = serde_json::from_value(listed).unwrap();
    listed.sort();
    let mut posted = ids.clone();
    posted.sort();
    assert_eq!(listed, posted);
    // The ingest chart: the stored-messages counter sampled at each refresh, and the rate drawn from it.
    operator
        .wait_for(
            "the ingest chart",
            "const s = document.getElementById('ingest-chart');
            return [Number(s.dataset.total), Number(s.dataset.points || 0)];",
            |v| v[0].as_f64().is_some_and(|total| total >= 3.0) && v[1].as_f64().is_some_and(|points| points >= 2.0),
        )
        .await;
    operator.screenshot("breaker-open").await;
    ids
}

/// The importer's checkpoint table, as `protofuse-migrate` creates it in a SQLite store.
const CHECKPOINT_TABLE: &str = "CREATE TABLE IF NOT EXISTS import_checkpoint (name TEXT PRIMARY KEY NOT NULL, \
    file TEXT, pos INTEGER, gtid TEXT, snapshot_done INTEGER NOT NULL, rows_applied INTEGER NOT NULL, \
    events_applied INTEGER NOT NULL, last_event_at INTEGER, errors INTEGER NOT NULL, last_error TEXT)";

/// The dashboard's row for importer `name`: `{phase, rows, lag, rates}`.
fn importer_row(name: &str) -> String {
    format!(
        "const r = document.querySelector('#importers tr[data-name={name:?}]');
         return r && {{phase: r.querySelector('.phase').textContent, rows: r.querySelector('.rows').textContent,
                      lag: r.querySelector('.lag').textContent, rates: Number(r.querySelector('svg').dataset.points)}};"
    )
}

/// Plays a binlog importer committing checkpoints into the server's SQLite store (as `protofuse-migrate` does
/// with each batch): the dashboard shows its phase, rows applied and the age of its last source event, and
/// follows it as it goes on.
async fn an_importer_reports_its_progress(operator: &Browser, server: &TestServer) {
    let url = format!("sqlite://{}", server.dir().join("protofuse.db").display());
    let mut importer = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    sqlx::query(CHECKPOINT_TABLE).execute(&mut importer).await.unwrap();
    let written = chrono::Utc::now().timestamp() - 90;
    sqlx::query(
        "INSERT INTO import_checkpoint VALUES ('osticket', 'mysql-bin.000003', 4711, NULL, 1, 1000, 20, ?, 0, NULL)",
    )
    .bind(written)
    .execute(&mut importer)
    .await
    .unwrap();
    let row = operator
        .wait_for("the importer following", &importer_row("osticket"), |v| {
            v["rows"] == "1000"
        })
        .await;
    assert_eq!(row["phase"], "following");
    assert!(row["lag"].as_str().is_some_and(|lag| lag.ends_with("min ago")), "{row}");
    sqlx::query("UPDATE import_checkpoint SET rows_applied = 3000, events_applied = 60")
        .execute(&mut importer)
        .await
        .unwrap();
    operator
        .wait_for("its next checkpoint", &importer_row("osticket"), |v| {
            v["rows"] == "3000" && v["rates"].as_f64().is_some_and(|n| n >= 2.0)
        })
        .await;
    operator.screenshot("importer").await;
}

#[tokio::test]
async fn the_dashboard_shows_a_breaker_opening_and_replays_a_dead_letter_from_the_page() {
    let receiver = Receiver::start(Mode::Hang).await;
    let server = TestServer::sqlite(|config| {
        config.admin.token = Some(ADMIN_TOKEN.to_owned());
        crate::dispatch::route_all(config, vec![hanging_crm(&receiver.url)]);
    })
    .await;
    let operator = Browser::start("dashboard").await;
    operator
        .client
        .goto(&format!("http://{}/dashboard", server.admin))
        .await
        .unwrap();
    dashboard_sign_in(&operator, "not-the-token").await;
    operator
        .wait_for("the refusal", &text_of("#sign-in-error"), |v| {
            v.as_str().is_some_and(|t| t.contains("refused"))
        })
        .await;
    dashboard_sign_in(&operator, ADMIN_TOKEN).await;
    operator
        .wait_for("crm, closed", &destination_row("crm"), |v| v["state"] == "closed")
        .await;

    let ids = open_the_breaker(&operator, &server).await;

    // The receiver recovers; the operator forces the breaker closed rather than wait out its open minute, looks
    // at one dead letter and replays it.
    receiver.set_mode(Mode::Healthy);
    operator
        .displayed("#destinations tr[data-name='crm'] .force-forced_closed")
        .await
        .click()
        .await
        .unwrap();
    operator
        .wait_for("crm forced closed", &destination_row("crm"), |v| {
            v["override"] == "forced closed"
        })
        .await;
    let replayed = &ids[1];
    let row = format!("#dead-letters tr[data-message-id='{replayed}']");
    operator.displayed(&format!("{row} .show")).await.click().await.unwrap();
    operator
        .wait_for("the dead letter's details", &text_of("#dead-detail"), |v| {
            v.as_str()
                .is_some_and(|t| t.contains(replayed.as_str()) && t.contains("order 1"))
        })
        .await;
    operator
        .displayed(&format!("{row} .replay"))
        .await
        .click()
        .await
        .unwrap();
    receiver
        .wait_for(std::slice::from_ref(replayed), crate::support::browser::WAIT)
        .await;
    let left = operator
        .wait_for("the replayed letter gone from the list", DEAD_LETTERS, |v| {
            v.as_array().is_some_and(|l| l.len() == 2)
        })
        .await;
    assert!(
        !left.as_array().unwrap().iter().any(|id| id == replayed.as_str()),
        "{left}"
    );
    assert_eq!(receiver.accepted().len(), 1, "only the replayed letter was delivered");
    operator.screenshot("replayed").await;
    an_importer_reports_its_progress(&operator, &server).await;
    operator.close().await;
    server.shutdown().await;
}

/// `GET url` with `If-None-Match: etag` when given: the status and the headers.
async fn fetch_page(server: &TestServer, url: &str, etag: Option<&str>) -> (u16, reqwest::header::HeaderMap) {
    let mut request = server.client.get(url);
    if let Some(etag) = etag {
        request = request.header("if-none-match", etag);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.headers().clone())
}

#[tokio::test]
async fn the_pages_are_public_compiled_in_revalidated_and_unframeable_while_their_apis_want_credentials() {
    let server = TestServer::sqlite(|config| {
        config.api.keys = vec![key("agent-7", AGENT_KEY, &[Scope::Read])];
        config.admin.token = Some(ADMIN_TOKEN.to_owned());
    })
    .await;
    let admin = format!("http://{}", server.admin);
    let pages = [
        (server.url("/console"), "text/html"),
        (server.url("/console/desk.js"), "text/javascript"),
        (server.url("/console/console.js"), "text/javascript"),
        (server.url("/console/console.css"), "text/css"),
        (format!("{admin}/dashboard"), "text/html"),
        (format!("{admin}/dashboard/desk.js"), "text/javascript"),
        (format!("{admin}/dashboard/dashboard.js"), "text/javascript"),
        (format!("{admin}/dashboard/dashboard.css"), "text/css"),
    ];
    for (url, content_type) in pages {
        let (status, headers) = fetch_page(&server, &url, None).await;
        assert_eq!(status, 200, "{url}: public, no credential");
        let served = headers["content-type"].to_str().unwrap();
        assert!(served.starts_with(content_type), "{url}: {served}");
        if content_type == "text/html" {
            let policy = headers["content-security-policy"].to_str().unwrap();
            assert!(
                policy.contains("frame-ancestors 'none'") && policy.contains("script-src 'self'"),
                "{policy}"
            );
            assert_eq!(headers["x-frame-options"], "DENY");
        }
        let etag = headers["etag"].to_str().unwrap().to_owned();
        let (status, _) = fetch_page(&server, &url, Some(&etag)).await;
        assert_eq!(status, 304, "{url}: revalidated by its ETag");
    }
    let shared = |url: String| {
        let client = server.client.clone();
        async move { client.get(url).send().await.unwrap().text().await.unwrap() }
    };
    assert_eq!(
        shared(server.url("/console/desk.js")).await,
        shared(format!("{admin}/dashboard/desk.js")).await,
        "one shared script on both listeners"
    );
    let (status, _) = fetch_page(&server, &server.url("/v1/conversations"), None).await;
    assert_eq!(status, 401, "the API the console calls still wants a key");
    let (status, _) = fetch_page(&server, &format!("{admin}/admin/destinations"), None).await;
    assert_eq!(status, 401, "the API the dashboard calls still wants the token");
    let importers: Value = server
        .client
        .get(format!("{admin}/admin/importers"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        importers,
        json!({"importers": []}),
        "no importer has written to this store"
    );
    server.shutdown().await;
}

/// The console's "take" through the real API: a take expecting nobody (what the page last showed) after another
/// agent took the conversation is `409 assignee_changed`, naming that agent, and changes nothing; expecting the
/// current assignee (a deliberate hand-over) passes; without `expected_assignee` a status change applies as
/// before.
#[tokio::test]
async fn a_take_after_another_agent_took_the_conversation_is_409_and_steals_nothing() {
    let server = TestServer::sqlite(|_| {}).await;
    let waiting = posted(&server, "a customer waiting").await;
    let conversation = waiting["conversation_id"].as_str().unwrap().to_owned();
    let put = |body: Value| {
        let request = server
            .client
            .put(server.url(&format!("/v1/conversations/{conversation}/status")))
            .json(&body);
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap())
        }
    };
    let take = |agent: &str, expected: Value| json!({"status": "assigned", "assigned_agent": agent, "expected_assignee": expected});
    let (status, taken) = put(take("agent-9", Value::Null)).await;
    assert_eq!(
        (status, taken["assigned_agent"].as_str()),
        (200, Some("agent-9")),
        "{taken}"
    );
    let (status, refused) = put(take("agent-7", Value::Null)).await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (409, Some("assignee_changed")),
        "{refused}"
    );
    assert!(
        refused["error"]["message"].as_str().unwrap().contains("agent-9"),
        "{refused}"
    );
    let now = server.get_json(&format!("/v1/conversations/{conversation}")).await;
    assert_eq!(now["assigned_agent"], "agent-9", "the refused take changed nothing");
    let (status, handed) = put(take("agent-7", json!("agent-9"))).await;
    assert_eq!(
        (status, handed["assigned_agent"].as_str()),
        (200, Some("agent-7")),
        "{handed}"
    );
    let (status, _) = put(json!({"status": "assigned", "assigned_agent": "agent-8"})).await;
    assert_eq!(status, 200, "no expectation: applied whoever is assigned");
    let (status, body) = put(json!({"status": "closed", "expected_assignee": 7})).await;
    assert_eq!(status, 422, "{body}");
    server.shutdown().await;
}
