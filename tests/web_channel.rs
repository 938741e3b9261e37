//! The web channel over real sockets: visitors with session tokens over a real WebSocket client and a real SSE
//! client plus HTTP POST, against an in-process server on SQLite; agents through the REST API.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::support::server::TestServer;
use crate::support::web::{self, GREETING, SITE_KEY, Sse, Ws, agent_reply, stored, text};

/// The message frames of a visitor's send and the bot's answer, whatever order the ack falls in.
async fn sent_and_answered(ws: &mut Ws, client_id: &str) -> (Value, Vec<(String, Value)>) {
    let mut ack = Value::Null;
    let mut messages = Vec::new();
    while ack.is_null() || messages.len() < 2 {
        let frame = ws.next().await;
        match frame["type"].as_str() {
            Some("ack") => ack = frame,
            Some("message") => messages.push((frame["seq"].as_str().unwrap().to_owned(), frame["message"].clone())),
            _ => panic!("unexpected frame {frame}"),
        }
    }
    assert_eq!(ack["client_id"], client_id);
    (ack, messages)
}

fn user_token(key: &str, sub: &str, exp_from_now: i64) -> String {
    let claims = json!({"sub": sub, "name": "Ann", "exp": chrono::Utc::now().timestamp() + exp_from_now});
    let key = EncodingKey::from_secret(key.as_bytes()).unwrap();
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap()
}

#[tokio::test]
async fn a_visitor_chats_over_websocket_gets_the_bot_and_a_resend_is_stored_once() {
    let server = web::server(|_| {}).await;
    let token = web::anonymous(&server).await;
    let mut ws = Ws::connect(&server, &token, None).await;

    ws.say("c-1", "hello, anyone there?").await;
    let (ack, messages) = sent_and_answered(&mut ws, "c-1").await;
    assert_eq!(ack["duplicate"], false);
    let (own, bot) = (&messages[0].1, &messages[1].1);
    assert_eq!(
        (text(own), own["client_id"].as_str()),
        ("hello, anyone there?", Some("c-1"))
    );
    assert_eq!(ack["seq"], messages[0].0.as_str());
    assert_eq!((bot["sender"]["role"].as_str(), text(bot)), (Some("bot"), GREETING));
    assert!(messages[0].0 < messages[1].0, "sequences increase");

    // A resend after a flaky network: answered as a duplicate, no new message, no second bot answer.
    ws.say("c-1", "hello, anyone there?").await;
    let again = ws.next().await;
    assert_eq!(
        (again["type"].as_str(), again["duplicate"].as_bool()),
        (Some("ack"), Some(true)),
        "{again}"
    );
    assert_eq!(again["seq"], ack["seq"]);
    // The same client id for other text is refused, not stored.
    ws.say("c-1", "something else").await;
    let refused = ws.next().await;
    assert_eq!(refused["error"]["code"], "idempotency_key_reused", "{refused}");

    let conversation = own["conversation_id"].as_str().unwrap();
    let all = stored(&server, conversation).await;
    assert_eq!(all.len(), 2, "the visitor's message and the bot's answer, once each");
    assert_eq!(all[0]["channel"], "web");
    assert_eq!(all[0]["source"]["protocol"], "web");
    assert_eq!(all[0]["source"]["account"], "shop");
    ws.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn an_agent_reply_through_rest_reaches_the_visitor_live() {
    let server = web::server(|_| {}).await;
    let token = web::anonymous(&server).await;
    let mut ws = Ws::connect(&server, &token, None).await;
    ws.say("c-1", "my parcel is late").await;
    let own = ws.next_of("message").await["message"].clone();
    let conversation = own["conversation_id"].as_str().unwrap().to_owned();

    agent_reply(&server, &conversation, "Looking into it now").await;
    let (_, reply) = ws.next_message().await;
    assert_eq!(
        (
            reply["sender"]["role"].as_str(),
            reply["sender"]["display_name"].as_str(),
            text(&reply)
        ),
        (Some("agent"), Some("Mia"), "Looking into it now")
    );
    assert!(
        reply.get("client_id").is_none(),
        "only the visitor's own messages carry a client id"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_reconnect_with_after_gets_exactly_what_was_missed_even_while_messages_keep_coming() {
    let server = web::server(|_| {}).await;
    let token = web::anonymous(&server).await;
    let mut ws = Ws::connect(&server, &token, None).await;
    ws.say("c-1", "hello").await;
    let (_, messages) = sent_and_answered(&mut ws, "c-1").await;
    let last_seen = messages[1].0.clone();
    let conversation = messages[0].1["conversation_id"].as_str().unwrap().to_owned();
    ws.close().await;

    // While the visitor is away: two agent replies and a message from the visitor's other tab.
    agent_reply(&server, &conversation, "missed 1").await;
    agent_reply(&server, &conversation, "missed 2").await;
    let (status, _) = web::post_message(&server, &token, "c-2", "from another tab").await;
    assert_eq!(status, 201);

    // Reconnect while an agent keeps writing, so the replay and the live events overlap at the seam.
    let writer = {
        let client = server.client.clone();
        let url = server.url("/v1/messages");
        let conversation = conversation.clone();
        tokio::spawn(async move {
            for i in 0..20 {
                let body = json!({"conversation_id": conversation, "direction": "outbound", "channel": "web",
                    "sender": {"role": "agent", "external_id": "agent-7"},
                    "content": {"type": "text", "text": format!("live {i}")}});
                let response = client.post(&url).json(&body).send().await.unwrap();
                assert_eq!(response.status(), 201);
            }
        })
    };
    let mut ws = Ws::connect(&server, &token, Some(&last_seen)).await;
    let mut received = Vec::new();
    while received.last().map(|(_, m): &(String, Value)| text(m)) != Some("live 19") {
        received.push(ws.next_message().await);
    }
    writer.await.unwrap();

    let expected: Vec<String> = stored(&server, &conversation)
        .await
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .filter(|id| *id > last_seen)
        .collect();
    let got: Vec<String> = received.iter().map(|(seq, _)| seq.clone()).collect();
    assert_eq!(got, expected, "every message after the last seen, once, in order");
    let texts: Vec<&str> = received.iter().take(3).map(|(_, m)| text(m)).collect();
    assert_eq!(texts, ["missed 1", "missed 2", "from another tab"]);

    // Nothing else is pending: the next frame is the next new message.
    agent_reply(&server, &conversation, "sentinel").await;
    assert_eq!(text(&ws.next_message().await.1), "sentinel");
    server.shutdown().await;
}

#[tokio::test]
async fn with_websocket_off_sse_and_post_carry_the_conversation_and_last_event_id_resumes() {
    let server = web::server(|config| config.web.websocket = false).await;
    let (status, session) = web::session_with(&server, &json!({"site": "shop"})).await;
    assert_eq!((status, session["websocket"].as_bool()), (201, Some(false)));
    let token = session["token"].as_str().unwrap().to_owned();
    let refused = tokio_tungstenite::connect_async(web::ws_url(&server, &token, None)).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("the upgrade should be refused, got {:?}", other.map(|_| ())),
    }

    let mut sse = Sse::connect(&server, &token, None, None).await;
    let (status, sent) = web::post_message(&server, &token, "c-1", "hello").await;
    assert_eq!((status, sent["duplicate"].as_bool()), (201, Some(false)));
    let (first, own) = sse.next_message().await;
    assert_eq!(
        (first.as_str(), own["client_id"].as_str()),
        (sent["seq"].as_str().unwrap(), Some("c-1"))
    );
    assert_eq!(text(&sse.next_message().await.1), GREETING);
    let (status, again) = web::post_message(&server, &token, "c-1", "hello").await;
    assert_eq!((status, again["duplicate"].as_bool()), (200, Some(true)));

    // Hand-off: the notice reaches the visitor and the conversation waits for a human.
    web::post_message(&server, &token, "c-2", "I want a human").await;
    assert_eq!(text(&sse.next_message().await.1), "I want a human");
    let (last_seen, notice) = sse.next_message().await;
    assert_eq!(notice["sender"]["role"], "system");
    let conversation = own["conversation_id"].as_str().unwrap().to_owned();
    let found = server.get_json(&format!("/v1/conversations/{conversation}")).await;
    assert_eq!(found["status"], "queued");
    drop(sse);

    // Away: an agent takes the conversation and answers; the visitor resumes with Last-Event-ID (the newer
    // cursor wins over a stale ?after=).
    let taken = server
        .client
        .put(server.url(&format!("/v1/conversations/{conversation}/status")))
        .json(&json!({"status": "assigned", "assigned_agent": "agent-7"}))
        .send()
        .await
        .unwrap();
    assert_eq!(taken.status(), 200);
    agent_reply(&server, &conversation, "Mia here, how can I help?").await;
    let mut sse = Sse::connect(&server, &token, Some(&first), Some(&last_seen)).await;
    assert_eq!(text(&sse.next_message().await.1), "Mia here, how can I help?");
    // The bot keeps quiet while a human has the conversation.
    web::post_message(&server, &token, "c-3", "hello? thanks").await;
    assert_eq!(text(&sse.next_message().await.1), "hello? thanks");
    agent_reply(&server, &conversation, "sentinel").await;
    assert_eq!(text(&sse.next_message().await.1), "sentinel");
    server.shutdown().await;
}

#[tokio::test]
async fn a_visitor_switching_from_websocket_to_sse_resumes_where_it_left_off() {
    let server = web::server(|_| {}).await;
    let token = web::anonymous(&server).await;
    let mut ws = Ws::connect(&server, &token, None).await;
    ws.say("c-1", "hello").await;
    let (_, messages) = sent_and_answered(&mut ws, "c-1").await;
    let (last_seen, conversation) = (messages[1].0.clone(), messages[0].1["conversation_id"].clone());
    ws.close().await;

    // The proxy now strips Upgrade: the widget continues over SSE from the WebSocket's last sequence.
    let conversation = conversation.as_str().unwrap();
    agent_reply(&server, conversation, "while you were switching").await;
    let mut sse = Sse::connect(&server, &token, Some(&last_seen), None).await;
    let (seq, missed) = sse.next_message().await;
    assert_eq!(text(&missed), "while you were switching");
    assert!(seq > last_seen);
    let (status, _) = web::post_message(&server, &token, "c-2", "thanks").await;
    assert_eq!(status, 201);
    assert_eq!(text(&sse.next_message().await.1), "thanks");
    server.shutdown().await;
}

#[tokio::test]
async fn with_triage_the_bot_answers_from_the_knowledge_base_and_hands_off_to_the_department() {
    let rule = protofuse_triage::RuleConfig {
        id: "invoices-to-people".to_owned(),
        keywords: vec!["发票抬头".to_owned()],
        regex: None,
        intent: Some("human".to_owned()),
        department: Some("billing/invoices".to_owned()),
        priority: 10,
    };
    let server = web::server(|config| {
        config.web.triage = true;
        config.triage = crate::triage::shipped_triage(vec![rule]);
    })
    .await;
    let token = web::anonymous(&server).await;
    let mut ws = Ws::connect(&server, &token, None).await;

    ws.say("c-1", "怎么开发票？").await;
    let (_, messages) = sent_and_answered(&mut ws, "c-1").await;
    let answer = &messages[1].1;
    assert_eq!(answer["sender"]["role"], "bot");
    assert!(text(answer).contains("申请开票"), "{answer}");

    ws.say("c-2", "怎么开发票抬头").await;
    let (_, messages) = sent_and_answered(&mut ws, "c-2").await;
    assert_eq!(messages[1].1["sender"]["role"], "system", "the hand-off notice");
    let conversation = messages[0].1["conversation_id"].as_str().unwrap();
    let found = server.get_json(&format!("/v1/conversations/{conversation}")).await;
    // The rule's department, routed to the longest configured prefix (the shipped departments have no invoices).
    assert_eq!(
        (found["status"].as_str(), found["department"].as_str()),
        (Some("queued"), Some("billing"))
    );
    server.shutdown().await;
}

#[tokio::test]
async fn tampered_expired_and_missing_tokens_are_refused_with_401() {
    let server = web::server(|_| {}).await;
    let token = web::anonymous(&server).await;
    // Another visitor's id in the payload, the signature kept.
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
    claims["sub"] = json!("anon-00000000000000000000000000000001");
    parts[1] = URL_SAFE_NO_PAD.encode(claims.to_string());
    let tampered = parts.join(".");
    for (name, bad) in [("tampered", tampered.as_str()), ("garbage", "not-a-token")] {
        let (status, body) = web::post_message(&server, bad, "c-1", "hi").await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (401, Some("invalid_token")),
            "{name}: {body}"
        );
        let events = server
            .client
            .get(server.url(&format!("/web/events?token={bad}")))
            .send()
            .await
            .unwrap();
        assert_eq!(events.status(), 401, "{name}");
        match tokio_tungstenite::connect_async(web::ws_url(&server, bad, None)).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 401),
            other => panic!("{name}: the upgrade should be refused, got {:?}", other.map(|_| ())),
        }
    }
    let missing = server.client.get(server.url("/web/events")).send().await.unwrap();
    assert_eq!(missing.status(), 401);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["code"], "token_required");

    // A site's user: signed with the site's key → a session for that user; another key or an old token → 401.
    let (status, session) = web::session_with(
        &server,
        &json!({"site": "shop", "user_token": user_token(SITE_KEY, "u-42", 60)}),
    )
    .await;
    assert_eq!((status, session["visitor_id"].as_str()), (201, Some("u-42")));
    let forged = user_token("a-key-the-site-never-had-0123456789abcdef", "u-42", 60);
    let (status, body) = web::session_with(&server, &json!({"site": "shop", "user_token": forged})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("invalid_token")),
        "{body}"
    );
    let expired = user_token(SITE_KEY, "u-42", -3600);
    let (status, body) = web::session_with(&server, &json!({"site": "shop", "user_token": expired})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("token_expired")),
        "{body}"
    );
    let (status, body) = web::session_with(&server, &json!({"site": "elsewhere"})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("unknown_site")),
        "{body}"
    );
    // Renewal keeps the visitor.
    let (status, renewed) = web::session_with(&server, &json!({"site": "shop", "session": token})).await;
    assert_eq!(status, 201);
    let first = web::session_with(&server, &json!({"site": "shop", "session": renewed["token"]})).await;
    assert_eq!(first.1["visitor_id"], renewed["visitor_id"]);
    server.shutdown().await;
}

/// A script cannot take a fresh visitor id for every message: anonymous sessions are limited per client
/// address; a site's users and renewals are not.
#[tokio::test]
async fn anonymous_sessions_are_limited_per_address_and_users_and_renewals_are_not() {
    let server = web::server(|c| {
        c.web.anonymous_sessions_per_minute = 1;
        c.web.anonymous_session_burst = 2;
    })
    .await;
    let token = web::anonymous(&server).await;
    web::anonymous(&server).await;
    let refused = server
        .client
        .post(server.url("/web/session"))
        .json(&json!({"site": "shop"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
    let retry_after: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    let user = json!({"site": "shop", "user_token": user_token(SITE_KEY, "u-7", 60)});
    assert_eq!(web::session_with(&server, &user).await.0, 201);
    let renewal = json!({"site": "shop", "session": token});
    assert_eq!(web::session_with(&server, &renewal).await.0, 201);
    server.shutdown().await;
}

#[tokio::test]
async fn oversize_overrate_and_garbage_get_clear_errors_and_the_socket_stays_up() {
    let server = web::server(|config| {
        config.web.max_message_bytes = 64;
        config.web.messages_per_minute = 1;
        config.web.message_burst = 2;
        config.web.max_connections_per_visitor = 1;
    })
    .await;
    let token = web::anonymous(&server).await;
    let mut ws = Ws::connect(&server, &token, None).await;

    ws.say("big", &"x".repeat(65)).await;
    let error = ws.next().await;
    assert_eq!(
        (error["client_id"].as_str(), error["error"]["code"].as_str()),
        (Some("big"), Some("message_too_large"))
    );
    ws.send(&json!({"type": "shout"})).await;
    assert_eq!(ws.next().await["error"]["code"], "invalid_request");
    ws.send(&json!({"type": "ping"})).await;
    assert_eq!(ws.next().await["type"], "pong");

    ws.say("c-1", "one").await;
    assert_eq!(ws.next_of("ack").await["client_id"], "c-1");
    ws.say("c-2", "two").await;
    assert_eq!(ws.next_of("ack").await["client_id"], "c-2");
    ws.say("c-3", "three").await;
    let limited = ws.next_of("error").await;
    assert_eq!(
        (limited["client_id"].as_str(), limited["error"]["code"].as_str()),
        (Some("c-3"), Some("rate_limited"))
    );
    assert!(
        limited["error"]["retry_after"].as_u64().is_some_and(|s| s >= 1),
        "{limited}"
    );

    // The same limits over POST, as HTTP statuses.
    let (status, body) = web::post_message(&server, &token, "big", &"x".repeat(65)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (413, Some("message_too_large"))
    );
    let response = server
        .client
        .post(server.url("/web/messages"))
        .bearer_auth(&token)
        .json(&json!({"client_id": "c-4", "text": "four"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    let (status, body) = web::post_message(&server, &token, "", "no id").await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_request")));

    // One connection per visitor here: a second one is refused before the upgrade.
    match tokio_tungstenite::connect_async(web::ws_url(&server, &token, None)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 429),
        other => panic!("a second connection should be refused, got {:?}", other.map(|_| ())),
    }
    // Still serving the first.
    ws.send(&json!({"type": "ping"})).await;
    assert_eq!(ws.next_of("pong").await["type"], "pong");
    server.shutdown().await;
}

#[tokio::test]
async fn a_sites_pages_may_call_the_channel_and_other_origins_may_not() {
    let server = web::server(|_| {}).await;
    let preflight = |origin: &'static str| {
        server
            .client
            .request(reqwest::Method::OPTIONS, server.url("/web/session"))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Headers", "content-type")
            .send()
    };
    let allowed = preflight(web::SITE_ORIGIN).await.unwrap();
    assert!(allowed.status().is_success(), "{}", allowed.status());
    assert_eq!(allowed.headers()["access-control-allow-origin"], web::SITE_ORIGIN);
    let other = preflight("https://evil.example").await.unwrap();
    assert!(!other.headers().contains_key("access-control-allow-origin"));
    let session = server
        .client
        .post(server.url("/web/session"))
        .header("Origin", web::SITE_ORIGIN)
        .json(&json!({"site": "shop"}))
        .send()
        .await
        .unwrap();
    assert_eq!(session.status(), 201);
    assert_eq!(session.headers()["access-control-allow-origin"], web::SITE_ORIGIN);
    server.shutdown().await;
}

/// A WebSocket client that completes the handshake and then never reads, so it never answers a ping: the
/// bytes the server sent until it closed the connection.
async fn silent_client(server: &TestServer, token: &str) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = server.base.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let handshake = format!(
        "GET /web/ws?token={token} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    socket.write_all(handshake.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    tokio::time::timeout(web::WAIT, socket.read_to_end(&mut received))
        .await
        .expect("the server closes the connection in time")
        .unwrap();
    received
}

#[tokio::test]
async fn a_silent_socket_is_evicted_and_shutdown_closes_the_rest() {
    let server = web::server(|config| {
        config.web.ping_interval = std::time::Duration::from_secs(1);
        config.web.idle_timeout = std::time::Duration::from_secs(2);
    })
    .await;
    let token = web::anonymous(&server).await;
    let received = silent_client(&server, &token).await;
    assert!(received.starts_with(b"HTTP/1.1 101"), "upgraded");
    // A ping was sent (opcode 0x9), then a close frame (0x88) with code 1008 (0x03F0, policy: idle).
    assert!(received.windows(2).any(|w| w == [0x89, 0x00]), "pinged");
    assert!(
        received.windows(4).any(|w| w[0] == 0x88 && w[2..] == [0x03, 0xF0]),
        "closed as idle"
    );

    let mut ws = Ws::connect(&server, &token, None).await;
    let mut stopping = server;
    stopping.stop().await;
    assert_eq!(ws.next_of("closed").await["code"], 1001);
}

#[test]
fn check_config_names_every_web_problem_and_never_echoes_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("web.toml");
    let config = "[web]\nenabled = true\nsession_key = \"short-secret-value\"\nmax_connections = 100000\n\
                  [web.sites.shop]\nanonymous = false\norigins = [\"https://shop.example/path\"]\n";
    std::fs::write(&file, config).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_protofuse"))
        .arg("check-config")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for key in [
        "web.max_connections",
        "web.session_key",
        "web.sites.shop.key",
        "web.sites.shop.origins[0]",
    ] {
        assert!(stderr.contains(key), "{key} in {stderr}");
    }
    assert!(!stderr.contains("short-secret-value"), "{stderr}");
}
