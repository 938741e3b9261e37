//! WeChat's side of the wire, for tests: an Official Account that signs (and encrypts) callbacks the way
//! WeChat does, a fake WeChat API (`/cgi-bin/token`, `/cgi-bin/message/custom/send`) that can expire its
//! token mid-test, and a webhook backend whose answers can be slowed down. Real sockets, no mocks.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use protofuse_wechat::crypto::{self, AesKey};
use protofuse_wechat::{Cipher, signature};
use serde_json::{Value, json};

/// The account, as WeChat knows it: signs queries, encrypts bodies.
pub struct Oa {
    pub account: String,
    pub token: String,
    pub cipher: Option<Cipher>,
}

impl Oa {
    pub fn plaintext(account: &str, token: &str) -> Self {
        Self {
            account: account.to_owned(),
            token: token.to_owned(),
            cipher: None,
        }
    }

    pub fn safe(account: &str, token: &str, app_id: &str, encoding_aes_key: &str) -> Self {
        let key = AesKey::from_encoding_aes_key(encoding_aes_key).unwrap();
        let cipher = Cipher {
            app_id: app_id.to_owned(),
            key,
        };
        Self {
            account: account.to_owned(),
            token: token.to_owned(),
            cipher: Some(cipher),
        }
    }

    /// The demo account shipped in config/default.toml.
    pub fn demo() -> Self {
        Self::safe(
            "demo",
            "spamtest",
            "wx2c2769f8efd9abc2",
            "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
        )
    }

    pub fn path(&self) -> String {
        format!("/wechat/{}", self.account)
    }

    /// `signature`, `timestamp` (now) and `nonce`.
    pub fn signed_query(&self) -> Vec<(String, String)> {
        let timestamp = chrono::Utc::now().timestamp().to_string();
        let nonce = rand::random::<u32>().to_string();
        let signature = signature::signature(&self.token, &timestamp, &nonce);
        vec![
            ("signature".into(), signature),
            ("timestamp".into(), timestamp),
            ("nonce".into(), nonce),
            ("openid".into(), "ignored".into()),
        ]
    }

    /// The query and body WeChat sends for `xml`: as is in plaintext mode, encrypted in safe mode.
    pub fn request(&self, xml: &str) -> (Vec<(String, String)>, String) {
        let Some(cipher) = &self.cipher else {
            return (self.signed_query(), xml.to_owned());
        };
        let encrypt = crypto::encrypt(&cipher.key, &cipher.app_id, &rand::random(), xml.as_bytes()).unwrap();
        self.sealed_request(&encrypt)
    }

    /// A safe-mode request carrying `encrypt` verbatim, correctly signed (for hostile ciphertexts).
    pub fn sealed_request(&self, encrypt: &str) -> (Vec<(String, String)>, String) {
        let mut query = self.signed_query();
        let msg_signature = signature::msg_signature(&self.token, &query[1].1, &query[2].1, encrypt);
        query.push(("encrypt_type".into(), "aes".into()));
        query.push(("msg_signature".into(), msg_signature));
        let body =
            format!("<xml><ToUserName><![CDATA[gh_test]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>");
        (query, body)
    }

    /// The reply XML inside a response body (unsealed in safe mode).
    pub fn open_reply(&self, body: &str) -> String {
        match &self.cipher {
            Some(cipher) => {
                String::from_utf8(protofuse_wechat::secure::unseal(cipher, &self.token, body).unwrap()).unwrap()
            }
            None => body.to_owned(),
        }
    }
}

/// A user's text message.
pub fn text_xml(from: &str, msg_id: u64, text: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    format!(
        "<xml><ToUserName><![CDATA[gh_test]]></ToUserName><FromUserName><![CDATA[{from}]]></FromUserName>\
         <CreateTime>{now}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{text}]]></Content>\
         <MsgId>{msg_id}</MsgId></xml>"
    )
}

/// An event (`subscribe`, `CLICK`, ...), with an optional `EventKey`.
pub fn event_xml(from: &str, event: &str, key: Option<&str>) -> String {
    let now = chrono::Utc::now().timestamp();
    let key = key
        .map(|k| format!("<EventKey><![CDATA[{k}]]></EventKey>"))
        .unwrap_or_default();
    format!(
        "<xml><ToUserName><![CDATA[gh_test]]></ToUserName><FromUserName><![CDATA[{from}]]></FromUserName>\
         <CreateTime>{now}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{event}]]></Event>{key}</xml>"
    )
}

#[derive(Default)]
struct ApiState {
    issued: Vec<String>,
    expired: Vec<String>,
    sent: Vec<Value>,
    rejected: usize,
    token_delay: Duration,
    /// While set, every customer-service send is answered with this errcode.
    refuse_with: Option<i64>,
    refused_sends: usize,
}

/// A fake `api.weixin.qq.com`.
#[derive(Clone)]
pub struct FakeWechatApi {
    pub base: String,
    state: Arc<Mutex<ApiState>>,
}

pub const FAKE_APP_ID: &str = "wxfake0000000001";
pub const FAKE_SECRET: &str = "fake-secret";

impl FakeWechatApi {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(ApiState::default()));
        let app = Router::new()
            .route("/cgi-bin/token", get(token))
            .route("/cgi-bin/message/custom/send", post(custom_send))
            .with_state(Arc::clone(&state));
        let base = serve(app).await;
        Self { base, state }
    }

    /// Makes the current token answer 42001 from now on.
    pub fn expire_current_token(&self) {
        let mut state = self.state.lock().unwrap();
        if let Some(current) = state.issued.last().cloned() {
            state.expired.push(current);
        }
    }

    /// Slows `/cgi-bin/token` down, so concurrent refreshers overlap.
    pub fn set_token_delay(&self, delay: Duration) {
        self.state.lock().unwrap().token_delay = delay;
    }

    /// Answers every customer-service send with `errcode` (-1: "system busy", which callers retry) until
    /// called with `None`.
    pub fn refuse_sends(&self, errcode: Option<i64>) {
        self.state.lock().unwrap().refuse_with = errcode;
    }

    /// Sends refused by [`FakeWechatApi::refuse_sends`].
    pub fn refused_sends(&self) -> usize {
        self.state.lock().unwrap().refused_sends
    }

    pub fn tokens_issued(&self) -> usize {
        self.state.lock().unwrap().issued.len()
    }

    pub fn sent(&self) -> Vec<Value> {
        self.state.lock().unwrap().sent.clone()
    }

    pub fn rejected(&self) -> usize {
        self.state.lock().unwrap().rejected
    }
}

async fn token(State(state): State<Arc<Mutex<ApiState>>>, Query(q): Query<Vec<(String, String)>>) -> Json<Value> {
    let has = |k: &str, v: &str| q.iter().any(|(qk, qv)| qk == k && qv == v);
    if !(has("grant_type", "client_credential") && has("appid", FAKE_APP_ID) && has("secret", FAKE_SECRET)) {
        return Json(json!({"errcode": 40013, "errmsg": "invalid appid"}));
    }
    let delay = state.lock().unwrap().token_delay;
    tokio::time::sleep(delay).await;
    let mut state = state.lock().unwrap();
    let token = format!("tok-{}", state.issued.len() + 1);
    state.issued.push(token.clone());
    Json(json!({"access_token": token, "expires_in": 7200}))
}

async fn custom_send(
    State(state): State<Arc<Mutex<ApiState>>>,
    Query(q): Query<Vec<(String, String)>>,
    Json(body): Json<Value>,
) -> Json<Value> {
    let mut state = state.lock().unwrap();
    let token = q
        .iter()
        .find(|(k, _)| k == "access_token")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    if !state.issued.contains(&token) || state.expired.contains(&token) {
        state.rejected += 1;
        return Json(json!({"errcode": 42001, "errmsg": "access_token expired"}));
    }
    if let Some(errcode) = state.refuse_with {
        state.refused_sends += 1;
        return Json(json!({"errcode": errcode, "errmsg": "system busy"}));
    }
    state.sent.push(json!({"token": token, "body": body}));
    Json(json!({"errcode": 0, "errmsg": "ok"}))
}

/// A webhook backend: answers `{"type":"text","text":"echo: <text>"}` (an image or news answer for
/// "image please" / "news please") after `delay`; records every call.
#[derive(Clone)]
pub struct Backend {
    pub url: String,
    calls: Arc<Mutex<Vec<Value>>>,
}

impl Backend {
    pub async fn start(delay: Duration) -> Self {
        let delay = Arc::new(Mutex::new(delay));
        let calls = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .route("/answer", post(answer))
            .with_state((delay, Arc::clone(&calls)));
        let url = format!("{}/answer", serve(app).await);
        Self { url, calls }
    }

    pub fn calls(&self) -> Vec<Value> {
        self.calls.lock().unwrap().clone()
    }
}

type BackendState = (Arc<Mutex<Duration>>, Arc<Mutex<Vec<Value>>>);

async fn answer(State((delay, calls)): State<BackendState>, Json(message): Json<Value>) -> Json<Value> {
    let wait = *delay.lock().unwrap();
    let text = message["content"]["text"].as_str().unwrap_or("").to_owned();
    calls.lock().unwrap().push(message);
    tokio::time::sleep(wait).await;
    Json(match text.as_str() {
        "image please" => json!({"type": "image", "media_id": "MEDIA1"}),
        "news please" => json!({"type": "news", "articles": [
            {"title": "Returns ]]> guide", "description": "How to", "url": "https://example.com/r", "pic_url": "https://example.com/p.png"}
        ]}),
        _ => json!({"type": "text", "text": format!("echo: {text}")}),
    })
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}
