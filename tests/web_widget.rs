//! The embeddable widget in a real browser (headless Chromium over WebDriver) on a site's page, against a real
//! protofuse server on SQLite; agents answer through the REST API (the agent console is `web_console.rs`). Every wait
//! polls the page with a deadline. Screenshots land in `target/screenshots/`.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::support::browser::{Browser, Page};
use crate::support::proxy;
use crate::support::server::TestServer;
use crate::support::web::{self, GREETING, agent_reply};

/// The messages the widget shows, top to bottom.
pub(crate) const TRANSCRIPT: &str = "return Array.from(document.querySelectorAll('.pfw-msg')).map(m => ({
    seq: m.dataset.seq || null, role: m.dataset.role, state: m.dataset.state,
    text: m.querySelector('.pfw-text').textContent,
    sender: (m.querySelector('.pfw-sender') || {}).textContent || null }));";
/// The widget's connection state, transport and status line.
const STATE: &str = "const r = document.querySelector('.pfw-root');
    return r && {state: r.dataset.state, transport: r.dataset.transport,
                 status: r.querySelector('.pfw-status').textContent};";

/// One message as the widget shows it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct Line {
    /// The message id, once the server has it; `None` while the visitor's message is still being sent.
    pub(crate) seq: Option<String>,
    pub(crate) role: String,
    pub(crate) state: String,
    pub(crate) text: String,
    pub(crate) sender: Option<String>,
}

pub(crate) fn lines(value: &Value) -> Vec<Line> {
    serde_json::from_value(value.clone()).unwrap_or_default()
}

/// A server with the channel on for site `shop` on `page`'s origin, and the page serving the widget's tag with
/// `attributes`.
pub(crate) async fn site(
    page_attributes: &str,
    tweak: impl FnOnce(&mut protofuse::config::Config),
) -> (TestServer, Page) {
    let mut page = Page::bind().await;
    let origin = page.origin.clone();
    let server = web::server(|config| {
        config.web.sites.get_mut("shop").unwrap().origins.push(origin);
        tweak(config);
    })
    .await;
    page.serve(&server.base, page_attributes);
    (server, page)
}

/// A visitor's browser on the page, with the chat opened.
pub(crate) async fn visitor(name: &str, page: &Page) -> Browser {
    let browser = Browser::start(name).await;
    browser.client.goto(&page.url()).await.unwrap();
    browser.displayed(".pfw-bubble").await.click().await.unwrap();
    browser.displayed(".pfw-panel").await;
    browser
}

/// Types `text` into the widget and sends it.
pub(crate) async fn say(browser: &Browser, text: &str) {
    let input = browser.displayed(".pfw-input").await;
    input.send_keys(text).await.unwrap();
    browser.displayed(".pfw-send").await.click().await.unwrap();
}

/// Waits until the transcript satisfies `done`, and returns it.
pub(crate) async fn transcript_until(browser: &Browser, what: &str, done: impl Fn(&[Line]) -> bool) -> Vec<Line> {
    lines(&browser.wait_for(what, TRANSCRIPT, |v| done(&lines(v))).await)
}

/// Waits until the last line shown has `role` and `text`, sent (not a placeholder).
pub(crate) async fn shown_last(browser: &Browser, role: &str, text: &str) -> Vec<Line> {
    transcript_until(browser, &format!("{role}: {text}"), |lines| {
        lines
            .last()
            .is_some_and(|l| l.role == role && l.text == text && l.seq.is_some())
    })
    .await
}

/// Waits for the widget's connection state (`online`, `reconnecting`, …), and returns its transport.
async fn connection(browser: &Browser, state: &str) -> String {
    let value = browser
        .wait_for(&format!("the widget {state}"), STATE, |v| v["state"] == state)
        .await;
    value["transport"].as_str().unwrap_or("").to_owned()
}

/// Each message once, in sequence order, none still being sent; returns the texts.
fn each_once(lines: &[Line]) -> Vec<&str> {
    let seqs: Vec<&str> = lines
        .iter()
        .map(|l| l.seq.as_deref().expect("every message stored"))
        .collect();
    let mut sorted = seqs.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(seqs, sorted, "each message once, in order: {lines:#?}");
    assert!(lines.iter().all(|l| l.state == "sent"), "{lines:#?}");
    lines.iter().map(|l| l.text.as_str()).collect()
}

/// The conversation waiting for a human, as an agent's console would list it; taken by agent-7.
async fn take_queued(server: &TestServer) -> String {
    let queued = server.get_json("/v1/conversations?status=queued").await;
    let items = queued["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{queued}");
    let id = items[0]["id"].as_str().unwrap().to_owned();
    let taken = server
        .client
        .put(server.url(&format!("/v1/conversations/{id}/status")))
        .json(&json!({"status": "assigned", "assigned_agent": "agent-7"}))
        .send()
        .await
        .unwrap();
    assert_eq!(taken.status(), 200);
    id
}

/// The hand-off notice's text (the configured default).
pub(crate) fn handoff_notice() -> String {
    protofuse::server::web::WebConfig::default().handoff_notice
}

#[tokio::test]
async fn a_visitor_chats_with_the_bot_is_handed_to_an_agent_and_reads_the_reply() {
    let (server, page) = site(r#"data-lang="zh""#, |_| {}).await;
    let browser = visitor("chat", &page).await;
    assert_eq!(connection(&browser, "online").await, "websocket");
    let title = browser
        .eval("return document.querySelector('.pfw-title').textContent")
        .await;
    assert_eq!(title, "在线客服", "data-lang=zh");

    say(&browser, "hello").await;
    shown_last(&browser, "bot", GREETING).await;
    browser.screenshot("bot-answer").await;

    say(&browser, "转人工").await;
    shown_last(&browser, "system", &handoff_notice()).await;
    let conversation = take_queued(&server).await;
    agent_reply(&server, &conversation, "您好，我是客服 Mia，请问有什么可以帮您？").await;
    let shown = shown_last(&browser, "agent", "您好，我是客服 Mia，请问有什么可以帮您？").await;
    browser.screenshot("agent-reply").await;

    let notice = handoff_notice();
    assert_eq!(
        each_once(&shown),
        [
            "hello",
            GREETING,
            "转人工",
            notice.as_str(),
            "您好，我是客服 Mia，请问有什么可以帮您？"
        ]
    );
    assert_eq!(shown[4].sender.as_deref(), Some("Mia"), "the agent's display name");
    assert_eq!(shown[1].sender.as_deref(), Some("智能助手"), "the bot, in Chinese");

    // Closed, the chat folds back into its bubble and stays connected for what comes next.
    browser.displayed(".pfw-close").await.click().await.unwrap();
    browser.displayed(".pfw-bubble").await;
    connection(&browser, "background").await;
    agent_reply(&server, &conversation, "还在吗？").await;
    let badge = "const b = document.querySelector('.pfw-badge'); return b.hidden ? null : b.textContent;";
    browser.wait_for("the unread badge", badge, |v| v == "1").await;
    browser.screenshot("bubble").await;
    browser.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn with_the_websocket_refused_the_widget_continues_over_sse() {
    let (mut server, page) = site(r#"data-lang="en""#, |_| {}).await;
    let browser = visitor("sse", &page).await;
    assert_eq!(connection(&browser, "online").await, "websocket");
    say(&browser, "hello").await;
    shown_last(&browser, "bot", GREETING).await;

    // The same server comes back refusing upgrades (`[web] websocket = false`, as behind a proxy that strips
    // them): the widget's reconnect is refused with 403 and it goes on over SSE + POST, after the last
    // sequence it saw.
    server.stop().await;
    connection(&browser, "reconnecting").await;
    server.start_again(|config| config.web.websocket = false).await;
    assert_eq!(connection(&browser, "online").await, "sse");

    say(&browser, "I want a human").await;
    shown_last(&browser, "system", &handoff_notice()).await;
    let conversation = take_queued(&server).await;
    agent_reply(&server, &conversation, "Mia here, over SSE").await;
    let shown = shown_last(&browser, "agent", "Mia here, over SSE").await;
    browser.screenshot("over-sse").await;
    let notice = handoff_notice();
    assert_eq!(
        each_once(&shown),
        [
            "hello",
            GREETING,
            "I want a human",
            notice.as_str(),
            "Mia here, over SSE"
        ]
    );
    browser.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn behind_a_proxy_that_refuses_upgrades_the_widget_chats_over_sse_from_the_start() {
    let mut page = Page::bind().await;
    let origin = page.origin.clone();
    let server = web::server(|config| config.web.sites.get_mut("shop").unwrap().origins.push(origin)).await;
    // The server would accept a WebSocket (the session says so); the proxy in front refuses the upgrade.
    let front = proxy::refusing_upgrades(&server.base).await;
    page.serve(&front, r#"data-lang="en""#);
    let browser = visitor("proxy", &page).await;
    assert_eq!(connection(&browser, "online").await, "sse");

    say(&browser, "hello").await;
    shown_last(&browser, "bot", GREETING).await;
    let conversation = server.get_json("/v1/conversations").await["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    agent_reply(&server, &conversation, "Through the proxy").await;
    let shown = shown_last(&browser, "agent", "Through the proxy").await;
    assert_eq!(each_once(&shown), ["hello", GREETING, "Through the proxy"]);
    browser.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn after_a_server_restart_the_widget_reconnects_and_shows_every_message_once() {
    let (mut server, page) = site(r#"data-lang="en""#, |_| {}).await;
    let browser = visitor("restart", &page).await;
    say(&browser, "hello").await;
    shown_last(&browser, "bot", GREETING).await;

    server.stop().await;
    connection(&browser, "reconnecting").await;
    let status = browser.eval(STATE).await;
    assert_eq!(status["status"], "Connection lost, reconnecting…");
    // Typed while the server is down: kept, and sent once a connection is back.
    say(&browser, "are you back?").await;
    transcript_until(&browser, "the message waiting to be sent", |lines| {
        lines
            .last()
            .is_some_and(|l| l.text == "are you back?" && l.state == "sending")
    })
    .await;
    browser.screenshot("reconnecting").await;

    server.start_again(|_| {}).await;
    assert_eq!(connection(&browser, "online").await, "websocket");
    shown_last(&browser, "customer", "are you back?").await;
    let conversation = server.get_json("/v1/conversations").await["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    agent_reply(&server, &conversation, "We are back").await;
    let shown = shown_last(&browser, "agent", "We are back").await;
    assert_eq!(each_once(&shown), ["hello", GREETING, "are you back?", "We are back"]);
    assert_eq!(
        web::stored(&server, &conversation).await.len(),
        4,
        "the message typed while down stored once"
    );
    browser.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_reload_shows_the_history_once_and_keeps_the_visitor() {
    let (server, page) = site(r#"data-lang="en""#, |_| {}).await;
    let browser = visitor("reload", &page).await;
    say(&browser, "hello").await;
    shown_last(&browser, "bot", GREETING).await;
    say(&browser, "human please").await;
    shown_last(&browser, "system", &handoff_notice()).await;
    let conversation = take_queued(&server).await;
    agent_reply(&server, &conversation, "Hello from Mia").await;
    let before = shown_last(&browser, "agent", "Hello from Mia").await;
    let visitor_id = "return Object.keys(localStorage).map(k => JSON.parse(localStorage[k]).session.visitor_id)[0]";
    let who = browser.eval(visitor_id).await;

    browser.client.refresh().await.unwrap();
    // The chat was open, so it opens again, and replays the history from the start.
    let after = transcript_until(&browser, "the history after the reload", |lines| {
        lines.len() >= before.len()
    })
    .await;
    connection(&browser, "online").await;
    assert_eq!(after, before, "the same messages, once each, in the same order");
    assert_eq!(browser.eval(visitor_id).await, who, "the same visitor");
    let title = browser
        .eval("return document.querySelector('.pfw-title').textContent")
        .await;
    assert_eq!(title, "Chat with us");

    say(&browser, "thanks").await;
    let shown = shown_last(&browser, "customer", "thanks").await;
    browser.screenshot("after-reload").await;
    assert_eq!(each_once(&shown).len(), before.len() + 1);
    browser.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn the_widget_is_served_with_its_type_caching_and_cors() {
    let server = web::server(|_| {}).await;
    let script = server.client.get(server.url("/web/widget.js")).send().await.unwrap();
    assert_eq!(script.status(), 200);
    let headers = script.headers().clone();
    assert_eq!(headers["content-type"], "text/javascript; charset=utf-8");
    assert_eq!(headers["cache-control"], "public, max-age=300");
    assert_eq!(headers["access-control-allow-origin"], "*");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let etag = headers["etag"].to_str().unwrap().to_owned();
    let body = script.text().await.unwrap();
    let version = body
        .split("var CSS_VERSION = '")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .unwrap()
        .to_owned();
    assert_eq!(version.len(), 16, "the stylesheet's hash is written into the script");

    let again = server
        .client
        .get(server.url("/web/widget.js"))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert!(again.text().await.unwrap().is_empty());

    let css = server
        .client
        .get(server.url(&format!("/web/widget.css?v={version}")))
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), 200);
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    assert_eq!(css.headers()["cache-control"], "public, max-age=31536000, immutable");
    let stale = server
        .client
        .get(server.url("/web/widget.css?v=0000000000000000"))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.headers()["cache-control"], "public, max-age=300");
    server.shutdown().await;
}

#[tokio::test]
async fn a_signed_in_user_chats_as_themselves_over_sse_where_websockets_are_off() {
    let claims = json!({"sub": "u-42", "name": "Ann", "exp": chrono::Utc::now().timestamp() + 600});
    let key = jsonwebtoken::EncodingKey::from_secret(web::SITE_KEY.as_bytes()).unwrap();
    let token = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap();
    let attributes = format!(r#"data-lang="en" data-user-token="{token}""#);
    let (server, page) = site(&attributes, |config| config.web.websocket = false).await;
    let browser = visitor("signed-in", &page).await;
    // The session says WebSockets are off: straight to SSE, no upgrade attempted.
    assert_eq!(connection(&browser, "online").await, "sse");
    say(&browser, "hello").await;
    shown_last(&browser, "bot", GREETING).await;

    let conversation = server.get_json("/v1/conversations").await["items"][0].clone();
    let messages = web::stored(&server, conversation["id"].as_str().unwrap()).await;
    assert_eq!(
        (
            messages[0]["sender"]["external_id"].as_str(),
            messages[0]["sender"]["display_name"].as_str()
        ),
        (Some("u-42"), Some("Ann")),
        "the site's user, as its token says"
    );
    browser.close().await;
    server.shutdown().await;
}
