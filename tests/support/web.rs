//! A web-channel visitor for tests: a server with `[web]` on, session tokens, a real WebSocket client
//! (tokio-tungstenite) and a real SSE client (reqwest streaming + eventsource-stream). Every wait is for a frame
//! or an event, bounded by a timeout; nothing sleeps and hopes.

#![allow(dead_code)]

use std::time::Duration;

use eventsource_stream::{Event as SseEvent, Eventsource};
use futures::{Stream, StreamExt, stream::BoxStream};
use protofuse::config::Config;
use protofuse::respond::{AutoReply, MatchKind};
use protofuse::server::web::{Secret, SiteConfig};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::server::TestServer;

/// The server's session key in these tests.
pub const SESSION_KEY: &str = "test-session-key-0123456789abcdef0123456789";
/// The `shop` site's key for its users' tokens.
pub const SITE_KEY: &str = "test-site-key-shop-0123456789abcdef01234567";
/// The `shop` site's pages, which may call the channel from a browser.
pub const SITE_ORIGIN: &str = "https://shop.example";
/// What the bot answers to a text containing "hello".
pub const GREETING: &str = "Hi! How can we help?";
/// How long any one frame or event may take to arrive.
pub const WAIT: Duration = Duration::from_secs(10);

/// A server with the web channel on, site `shop` (anonymous visitors and signed users) and a keyword bot;
/// `tweak` adjusts the config further.
pub async fn server(tweak: impl FnOnce(&mut Config)) -> TestServer {
    TestServer::sqlite(|config| {
        config.web.enabled = true;
        config.web.session_key = Some(Secret::from(SESSION_KEY));
        config.web.sites.insert(
            "shop".to_owned(),
            SiteConfig {
                key: Some(Secret::from(SITE_KEY)),
                anonymous: true,
                origins: vec![SITE_ORIGIN.to_owned()],
            },
        );
        config.web.auto_replies = vec![AutoReply {
            keyword: "hello".to_owned(),
            match_kind: MatchKind::Contains,
            reply: GREETING.to_owned(),
        }];
        tweak(config);
    })
    .await
}

/// `POST /web/session` with `body`: the status and the JSON answer.
pub async fn session_with(server: &TestServer, body: &Value) -> (u16, Value) {
    let response = server
        .client
        .post(server.url("/web/session"))
        .json(body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// An anonymous visitor's session token on `shop`.
pub async fn anonymous(server: &TestServer) -> String {
    let (status, body) = session_with(server, &json!({"site": "shop"})).await;
    assert_eq!(status, 201, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

/// `POST /web/messages` as the visitor holding `token`: the status and the JSON answer.
pub async fn post_message(server: &TestServer, token: &str, client_id: &str, text: &str) -> (u16, Value) {
    let response = server
        .client
        .post(server.url("/web/messages"))
        .bearer_auth(token)
        .json(&json!({"client_id": client_id, "text": text}))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// An agent's reply in `conversation` through the REST API.
pub async fn agent_reply(server: &TestServer, conversation: &str, text: &str) -> Value {
    let body = json!({"conversation_id": conversation, "channel": "web", "direction": "outbound",
        "sender": {"role": "agent", "external_id": "agent-7", "display_name": "Mia"},
        "content": {"type": "text", "text": text}});
    let response = server
        .client
        .post(server.url("/v1/messages"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

/// Every message of `conversation` in the store, oldest first, through the REST API.
pub async fn stored(server: &TestServer, conversation: &str) -> Vec<Value> {
    let page = server
        .get_json(&format!("/v1/conversations/{conversation}/messages?limit=500"))
        .await;
    page["items"].as_array().unwrap().clone()
}

/// A visitor's WebSocket.
pub struct Ws(WebSocketStream<MaybeTlsStream<TcpStream>>);

/// `ws://…/web/ws?token=…[&after=…]`.
pub fn ws_url(server: &TestServer, token: &str, after: Option<&str>) -> String {
    let base = server.base.replace("http://", "ws://");
    match after {
        Some(after) => format!("{base}/web/ws?token={token}&after={after}"),
        None => format!("{base}/web/ws?token={token}"),
    }
}

impl Ws {
    /// Opens the socket and reads its `ready` frame.
    pub async fn connect(server: &TestServer, token: &str, after: Option<&str>) -> Self {
        let (socket, _) = tokio_tungstenite::connect_async(ws_url(server, token, after))
            .await
            .expect("the upgrade is accepted");
        let mut ws = Self(socket);
        let ready = ws.next().await;
        assert_eq!(ready["type"], "ready", "{ready}");
        ws
    }

    /// Sends one JSON frame.
    pub async fn send(&mut self, frame: &Value) {
        futures::SinkExt::send(&mut self.0, Frame::text(frame.to_string()))
            .await
            .unwrap();
    }

    /// Sends `text` as message `client_id`.
    pub async fn say(&mut self, client_id: &str, text: &str) {
        self.send(&json!({"type": "message", "client_id": client_id, "text": text}))
            .await;
    }

    /// The next JSON frame (pings are answered by the client as it reads); a close frame comes back as
    /// `{"type": "closed", "code"}`.
    pub async fn next(&mut self) -> Value {
        loop {
            let frame = tokio::time::timeout(WAIT, self.0.next())
                .await
                .expect("a frame in time")
                .expect("the socket is open")
                .expect("a well-formed frame");
            match frame {
                Frame::Text(text) => return serde_json::from_str(text.as_str()).unwrap(),
                Frame::Close(close) => {
                    let code = close.map(|c| u16::from(c.code));
                    return json!({"type": "closed", "code": code});
                }
                _ => {}
            }
        }
    }

    /// Frames until the first of type `kind`, which is returned; the others are dropped.
    pub async fn next_of(&mut self, kind: &str) -> Value {
        loop {
            let frame = self.next().await;
            if frame["type"] == kind {
                return frame;
            }
        }
    }

    /// The next message frame's message; fails on any other frame.
    pub async fn next_message(&mut self) -> (String, Value) {
        let frame = self.next().await;
        assert_eq!(frame["type"], "message", "{frame}");
        (frame["seq"].as_str().unwrap().to_owned(), frame["message"].clone())
    }

    /// Closes the socket from the visitor's side.
    pub async fn close(mut self) {
        let _ = self.0.close(None).await;
    }
}

/// A visitor's event stream.
pub struct Sse(BoxStream<'static, SseEvent>);

impl Sse {
    /// `GET /web/events?token=…[&after=…]`, with `Last-Event-ID` when given; reads the `ready` event.
    pub async fn connect(server: &TestServer, token: &str, after: Option<&str>, last_event_id: Option<&str>) -> Self {
        let mut url = format!("{}/web/events?token={token}", server.base);
        if let Some(after) = after {
            url.push_str(&format!("&after={after}"));
        }
        let mut request = server.client.get(url);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        let events = response
            .bytes_stream()
            .eventsource()
            .map(|event| event.expect("a well-formed event"));
        let mut sse = Self(boxed(events));
        let ready = sse.next().await;
        assert_eq!(ready.event, "ready");
        sse
    }

    /// The next event (heartbeat comments are not events).
    pub async fn next(&mut self) -> SseEvent {
        tokio::time::timeout(WAIT, self.0.next())
            .await
            .expect("an event in time")
            .expect("the stream is open")
    }

    /// The next `message` event: its id and message.
    pub async fn next_message(&mut self) -> (String, Value) {
        let event = self.next().await;
        assert_eq!(event.event, "message", "{event:?}");
        let frame: Value = serde_json::from_str(&event.data).unwrap();
        assert_eq!(frame["seq"], event.id.as_str(), "the event id is the sequence");
        (event.id, frame["message"].clone())
    }
}

fn boxed(stream: impl Stream<Item = SseEvent> + Send + 'static) -> BoxStream<'static, SseEvent> {
    stream.boxed()
}

/// A message's text.
pub fn text(message: &Value) -> &str {
    message["content"]["text"].as_str().unwrap_or("")
}
