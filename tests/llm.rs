//! The chat-model responder of a WeChat account, against a local fake of an OpenAI-compatible endpoint over
//! real HTTP: a streamed answer grounded on the knowledge base and the conversation, a slow endpoint (the
//! fallback still makes the passive reply), a failing one (its breaker opens and customers are handed off) and a
//! stream cut midway (never sent half).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post as route_post;
use protofuse::dispatch::{BreakerSettings, FuseSettings};
use protofuse::respond::LlmConfig;
use protofuse::wechat::AccountConfig;
use serde_json::{Value, json};

use crate::support::server::TestServer;
use crate::support::wechat::{Oa, text_xml};
use crate::triage::{shipped_triage, triage_account};
use crate::wechat::{PLAIN_TOKEN, post};

/// How the fake endpoint behaves.
#[derive(Debug, Clone)]
enum Mode {
    /// Streams these pieces, then `[DONE]`.
    Answer(Vec<&'static str>),
    /// Waits this long before answering.
    Slow(Duration),
    /// Answers 500.
    Fail,
    /// Streams one piece and ends without `[DONE]`.
    Cut(&'static str),
}

/// Every request's JSON body and Authorization header.
type Calls = Arc<Mutex<Vec<(Value, Option<String>)>>>;

#[derive(Clone)]
struct Endpoint {
    mode: Mode,
    calls: Calls,
}

impl Endpoint {
    /// Serves on a loopback port; returns the base URL (`…/v1`) and a handle to the calls.
    async fn start(mode: Mode) -> (String, Calls) {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .route("/v1/chat/completions", route_post(completions))
            .with_state(Endpoint {
                mode,
                calls: Arc::clone(&calls),
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (format!("http://{addr}/v1"), calls)
    }
}

fn event(piece: &str) -> String {
    let chunk = json!({"choices": [{"index": 0, "delta": {"content": piece}}]});
    format!("data: {chunk}\n\n")
}

async fn completions(State(endpoint): State<Endpoint>, headers: HeaderMap, body: String) -> Response {
    let request: Value = serde_json::from_str(&body).unwrap();
    let auth = headers.get("authorization").map(|v| v.to_str().unwrap().to_owned());
    endpoint.calls.lock().unwrap().push((request, auth));
    let events: Vec<String> = match endpoint.mode {
        Mode::Fail => return (StatusCode::INTERNAL_SERVER_ERROR, "overloaded").into_response(),
        Mode::Slow(wait) => {
            tokio::time::sleep(wait).await;
            vec![event("too late"), "data: [DONE]\n\n".to_owned()]
        }
        Mode::Answer(pieces) => pieces
            .into_iter()
            .map(event)
            .chain(["data: [DONE]\n\n".to_owned()])
            .collect(),
        Mode::Cut(piece) => vec![event(piece)],
    };
    let stream = futures::stream::iter(events.into_iter().map(Ok::<_, std::io::Error>));
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(stream))
        .unwrap()
}

fn llm(base_url: &str, timeout: Duration, consecutive_failures: u32) -> LlmConfig {
    let mut config: LlmConfig = serde_json::from_value(json!({
        "base_url": base_url,
        "model": "qwen2.5-7b-instruct",
        "api_key": "sk-test-secret",
    }))
    .unwrap();
    config.fuse = FuseSettings {
        timeout,
        slow_call: timeout,
        breaker: BreakerSettings {
            consecutive_failures,
            ..BreakerSettings::default()
        },
        ..FuseSettings::default()
    };
    config
}

/// A plaintext account answered by the chat model at `base_url`; with triage (the shipped model and knowledge
/// base) when `triage`.
async fn server(base_url: String, triage: bool, timeout: Duration, failures: u32) -> TestServer {
    let account = AccountConfig {
        account: "llm".to_owned(),
        triage,
        llm: Some(llm(&base_url, timeout, failures)),
        ..triage_account()
    };
    TestServer::sqlite(move |c| {
        c.wechat.answer_budget = Duration::from_secs(2);
        c.wechat.accounts.push(account);
        if triage {
            c.triage = shipped_triage(Vec::new());
        }
    })
    .await
}

#[tokio::test]
async fn the_model_answers_with_the_knowledge_and_the_conversation() {
    let (base, calls) = Endpoint::start(Mode::Answer(vec!["您好，", "在「我的订单」里点「申请开票」即可。"])).await;
    let server = server(base, true, Duration::from_secs(1), 3).await;
    let oa = Oa::plaintext("llm", PLAIN_TOKEN);

    let (status, body) = post(&server, &oa, oa.request(&text_xml("u-llm", 1, "怎么开发票？"))).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("<Content><![CDATA[您好，在「我的订单」里点「申请开票」即可。]]></Content>"),
        "{body}"
    );
    let (status, _) = post(&server, &oa, oa.request(&text_xml("u-llm", 2, "要多久？"))).await;
    assert_eq!(status, 200);

    let calls = calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 2, "{calls:#?}");
    let (first, auth) = &calls[0];
    assert_eq!(auth.as_deref(), Some("Bearer sk-test-secret"));
    assert_eq!(first["model"], "qwen2.5-7b-instruct");
    assert_eq!(first["stream"], true);
    let messages = first["messages"].as_array().unwrap();
    assert_eq!(messages[0]["role"], "system");
    // The knowledge base's answer to the question grounds the model.
    assert!(
        messages[0]["content"].as_str().unwrap().contains("申请开票"),
        "{messages:#?}"
    );
    assert_eq!(
        messages.last().unwrap(),
        &json!({"role": "user", "content": "怎么开发票？"})
    );
    // The second question comes with the first.
    let second = calls[1].0["messages"].as_array().unwrap().clone();
    assert!(
        second.contains(&json!({"role": "user", "content": "怎么开发票？"})),
        "{second:#?}"
    );
    assert_eq!(second.last().unwrap(), &json!({"role": "user", "content": "要多久？"}));
    server.shutdown().await;
}

#[tokio::test]
async fn a_slow_model_falls_back_within_the_answer_budget() {
    let (base, _) = Endpoint::start(Mode::Slow(Duration::from_secs(10))).await;
    let server = server(base, true, Duration::from_millis(500), 10).await;
    let oa = Oa::plaintext("llm", PLAIN_TOKEN);
    let started = tokio::time::Instant::now();
    let (_, body) = post(&server, &oa, oa.request(&text_xml("u-slow", 1, "怎么开发票？"))).await;
    // The knowledge base's own answer, as the passive reply.
    assert!(body.contains("申请开票") && !body.contains("too late"), "{body}");
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    server.shutdown().await;
}

#[tokio::test]
async fn a_failing_model_opens_its_breaker_and_customers_are_handed_off() {
    let (base, calls) = Endpoint::start(Mode::Fail).await;
    let server = server(base, false, Duration::from_secs(1), 2).await;
    let oa = Oa::plaintext("llm", PLAIN_TOKEN);
    for n in 0..4 {
        let (_, body) = post(&server, &oa, oa.request(&text_xml("u-fail", 10 + n, "我的包裹呢"))).await;
        assert!(body.contains("transfer_customer_service"), "{n}: {body}");
    }
    // Two failures opened the breaker: the last two customers did not wait for the endpoint.
    assert_eq!(calls.lock().unwrap().len(), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn a_stream_cut_midway_is_never_sent() {
    let (base, calls) = Endpoint::start(Mode::Cut("您好，您的包裹")).await;
    let server = server(base, false, Duration::from_secs(1), 10).await;
    let oa = Oa::plaintext("llm", PLAIN_TOKEN);
    let (_, body) = post(&server, &oa, oa.request(&text_xml("u-cut", 1, "我的包裹呢"))).await;
    assert!(
        body.contains("transfer_customer_service") && !body.contains("您的包裹"),
        "{body}"
    );
    assert_eq!(calls.lock().unwrap().len(), 1);
    server.shutdown().await;
}
