//! The shipped legacy REST adapters over real HTTP: GBK forms, HMAC-signed JSON, XML, and the example PHP and
//! Java clients against the real `protofuse serve`, each read back through the native API.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::support::server::{Binary, TestServer, get_json, texts};

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

pub(crate) async fn with_adapters() -> TestServer {
    TestServer::sqlite(|c| {
        c.legacy.adapters = ["php-helpdesk", "java-crm", "dotnet-service"]
            .iter()
            .map(|n| repo(&format!("config/adapters/{n}.toml")))
            .collect();
    })
    .await
}

fn gbk_percent(text: &str) -> String {
    let (bytes, _, _) = encoding_rs::GBK.encode(text);
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

/// The texts of every message of `customer`'s conversations, through the native API.
async fn texts_of(client: &reqwest::Client, base: &str, customer: &str) -> Vec<String> {
    let list = get_json(client, &format!("{base}/v1/conversations?customer={customer}")).await;
    let mut all = Vec::new();
    for conversation in list["items"].as_array().unwrap() {
        let id = conversation["id"].as_str().unwrap();
        all.extend(texts(
            &get_json(client, &format!("{base}/v1/conversations/{id}/messages")).await,
        ));
    }
    all
}

async fn php_post(server: &TestServer, key: &str, body: String) -> (u16, Value) {
    let response = server
        .client
        .post(server.url("/legacy/php/message"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-api-key", key)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (
        status,
        serde_json::from_slice(&response.bytes().await.unwrap()).unwrap(),
    )
}

#[tokio::test]
async fn gbk_form_is_stored_as_utf8_and_answered_in_php_convention() {
    let server = with_adapters().await;
    let form = format!("uid=g1&msg={}&ts=1700000000&mid=77", gbk_percent("我要退货，谢谢"));
    let (status, answer) = php_post(&server, "php-demo-key", form.clone()).await;
    assert_eq!(
        (status, &answer["code"], &answer["msg"]),
        (200, &Value::from(0), &Value::from("ok"))
    );
    let (_, again) = php_post(&server, "php-demo-key", form).await;
    assert_eq!(
        (&again["msg"], &again["id"]),
        (&Value::from("duplicate"), &answer["id"]),
        "retry stored once"
    );
    assert_eq!(texts_of(&server.client, &server.base, "g1").await, ["我要退货，谢谢"]);

    let (status, refused) = php_post(&server, "wrong", "uid=g2&msg=hi".to_owned()).await;
    assert_eq!((status, &refused["code"]), (403, &Value::from(403)));
    let (status, malformed) = php_post(&server, "php-demo-key", format!("msg={}", gbk_percent("没有用户"))).await;
    assert_eq!(
        (status, &malformed["code"]),
        (200, &Value::from(1)),
        "PHP convention: errors in the body"
    );
    assert!(malformed["msg"].as_str().unwrap().contains("uid"), "{malformed}");
    let (_, undecodable) = php_post(&server, "php-demo-key", "uid=g3&msg=%FF%FE".to_owned()).await;
    assert_eq!(undecodable["code"], 1);
    assert!(
        texts_of(&server.client, &server.base, "g3").await.is_empty(),
        "nothing half-stored"
    );
    server.shutdown().await;
}

pub(crate) async fn crm_post(
    server: &TestServer,
    body: &str,
    timestamp: i64,
    nonce: &str,
    secret: &str,
) -> (u16, Value) {
    let ts = timestamp.to_string();
    let signature = protofuse_legacy::auth::sign(secret, "POST", "/legacy/crm/messages", &ts, nonce, body.as_bytes());
    let response = server
        .client
        .post(server.url("/legacy/crm/messages"))
        .header("content-type", "application/json")
        .header("x-timestamp", ts)
        .header("x-nonce", nonce)
        .header("x-signature", signature)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn hmac_signed_json_valid_wrong_replayed_and_stale() {
    let server = with_adapters().await;
    let now = chrono::Utc::now().timestamp();
    let body = r#"{"header":{"requestId":"r-1"},"body":{"customerId":"h1","content":"where is my parcel"}}"#;
    let (status, ok) = crm_post(&server, body, now, "nonce-1", "crm-demo-secret").await;
    assert_eq!((status, &ok["success"]), (200, &Value::Bool(true)), "{ok}");
    assert!(ok["data"]["messageId"].is_string());
    let (status, wrong) = crm_post(&server, body, now, "nonce-2", "not-the-secret").await;
    assert_eq!((status, &wrong["errorCode"]), (401, &Value::from("UNAUTHORIZED")));
    let (status, replayed) = crm_post(&server, body, now, "nonce-1", "crm-demo-secret").await;
    assert_eq!(status, 401, "a replayed nonce is refused: {replayed}");
    let (status, _) = crm_post(&server, body, now - 3600, "nonce-3", "crm-demo-secret").await;
    assert_eq!(status, 401, "a stale timestamp is refused");
    let (status, malformed) = crm_post(&server, "{\"header\":", now, "nonce-4", "crm-demo-secret").await;
    assert_eq!((status, &malformed["errorCode"]), (400, &Value::from("malformed_body")));
    assert_eq!(
        texts_of(&server.client, &server.base, "h1").await,
        ["where is my parcel"]
    );
    server.shutdown().await;
}

#[tokio::test]
async fn dotnet_xml_call_and_malformed_xml() {
    let server = with_adapters().await;
    let post = |body: &'static str| {
        server
            .client
            .post(server.url("/legacy/dotnet/message"))
            .header("content-type", "application/xml; charset=utf-8")
            .header("authorization", "Bearer dotnet-demo-token")
            .body(body)
            .send()
    };
    let ok = post("<Message><Customer><Id>x1</Id></Customer><Text>App 闪退了</Text></Message>")
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let answer: Value = ok.json().await.unwrap();
    assert_eq!(
        (&answer["Code"], &answer["Message"]),
        (&Value::from(0), &Value::from("OK"))
    );
    let bad = post("<Message><Customer><Id>x2</Id></Customer><Text>unclosed")
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let bad: Value = bad.json().await.unwrap();
    assert_eq!(bad["Code"], 400);
    let xxe = post(
        r#"<!DOCTYPE m [<!ENTITY e SYSTEM "file:///etc/passwd">]><Message><Customer><Id>x3</Id></Customer><Text>&e;</Text></Message>"#,
    );
    assert_eq!(xxe.await.unwrap().status(), 400);
    assert_eq!(texts_of(&server.client, &server.base, "x1").await, ["App 闪退了"]);
    assert!(texts_of(&server.client, &server.base, "x3").await.is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn example_php_and_java_clients_against_protofuse_serve() {
    let cwd = tempfile::tempdir().unwrap();
    let binary = Binary::serve_default(cwd.path()).await;
    let php = Command::new("php")
        .arg(repo("examples/php_helpdesk_client.php"))
        .args([&binary.base, "php-example"])
        .output()
        .expect("php-cli is installed (CI installs it: apt-get install php-cli)");
    assert!(
        php.status.success(),
        "php client: {}",
        String::from_utf8_lossy(&php.stdout)
    );
    let java = Command::new("java")
        .arg(repo("examples/JavaCrmClient.java"))
        .args([&binary.base, "java-example"])
        .output()
        .expect("a JDK is installed");
    assert!(
        java.status.success(),
        "java client: {} {}",
        String::from_utf8_lossy(&java.stdout),
        String::from_utf8_lossy(&java.stderr)
    );
    let client = reqwest::Client::new();
    assert_eq!(
        texts_of(&client, &binary.base, "php-example").await,
        ["你好，我要退货，订单号 A-1001"]
    );
    // The nickname travels in GBK like the text; stored as UTF-8 it must read the same, not as mojibake.
    let list = get_json(
        &client,
        &format!("{}/v1/conversations?customer=php-example", binary.base),
    )
    .await;
    let id = list["items"][0]["id"].as_str().unwrap();
    let messages = get_json(&client, &format!("{}/v1/conversations/{id}/messages", binary.base)).await;
    assert_eq!(messages["items"][0]["sender"]["display_name"], "PHP 顾客");
    assert_eq!(
        texts_of(&client, &binary.base, "java-example").await,
        ["快递到哪了? where is my parcel"]
    );
}

/// A backend that records every request it receives, byte for byte.
async fn recording_backend() -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, Vec<u8>)>>>,
) {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = std::sync::Arc::clone(&seen);
    let app = axum::Router::new().route(
        "/helpdesk/notify.php",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: bytes::Bytes| async move {
            record.lock().unwrap().push((headers, body.to_vec()));
            "ok"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/helpdesk/notify.php"), seen)
}

#[tokio::test]
async fn outbound_webhook_delivers_exactly_the_documented_gbk_bytes_and_signature() {
    let server = with_adapters().await;
    let form = format!("uid=o1&msg={}&mid=o-1", gbk_percent("退货 & 换货"));
    let (_, answer) = php_post(&server, "php-demo-key", form).await;
    let conversation: Value = server.get_json("/v1/conversations?customer=o1").await;
    let id = conversation["items"][0]["id"].as_str().unwrap().to_owned();
    let page = server.get_json(&format!("/v1/conversations/{id}/messages")).await;
    let message: protofuse_model::Message = serde_json::from_value(page["items"][0].clone()).unwrap();
    assert_eq!(message.id.to_string(), answer["id"].as_str().unwrap());

    let (url, seen) = recording_backend().await;
    let text = std::fs::read_to_string(repo("config/adapters/php-helpdesk.toml")).unwrap();
    let text =
        text.replace("http://127.0.0.1:8081/helpdesk/notify.php", &url) + "sign_secret = \"php-outbound-secret\"\n";
    let adapter = protofuse_legacy::LegacyAdapter::from_toml(&text).unwrap();
    let request = adapter
        .outbound()
        .unwrap()
        .render(&message, 1_700_000_000, "nonce-o1")
        .unwrap();
    let status = protofuse::legacy::send_outbound(&reqwest::Client::new(), &request, Duration::from_secs(5)).await;
    assert_eq!(status.unwrap(), 200);

    let seen = seen.lock().unwrap();
    let (headers, body) = &seen[0];
    let expected = format!(
        "uid=o1&msg=%CD%CB%BB%F5+%26+%BB%BB%BB%F5&conv={}&mid={}",
        message.conversation_id, message.id
    );
    assert_eq!(body, expected.as_bytes(), "the documented GBK form bytes");
    assert_eq!(
        headers["content-type"],
        "application/x-www-form-urlencoded; charset=gbk"
    );
    let signature = protofuse_legacy::auth::sign(
        "php-outbound-secret",
        "POST",
        "/helpdesk/notify.php",
        "1700000000",
        "nonce-o1",
        body,
    );
    assert_eq!(headers["x-signature"], signature.as_str());
    assert_eq!(
        (&headers["x-timestamp"], &headers["x-nonce"]),
        (&"1700000000".parse().unwrap(), &"nonce-o1".parse().unwrap())
    );
}

/// The same outbound adapter as a dispatcher destination: a message arriving on another channel is rendered,
/// signed and delivered through the outbox, with the message id as the signed nonce (stable across retries).
#[tokio::test]
async fn the_outbound_adapter_is_a_dispatch_destination() {
    let (url, seen) = recording_backend().await;
    let dir = tempfile::tempdir().unwrap();
    let adapter_file = dir.path().join("php-helpdesk.toml");
    let text = std::fs::read_to_string(repo("config/adapters/php-helpdesk.toml")).unwrap();
    let text =
        text.replace("http://127.0.0.1:8081/helpdesk/notify.php", &url) + "sign_secret = \"php-outbound-secret\"\n";
    std::fs::write(&adapter_file, text).unwrap();
    let server = TestServer::sqlite(|c| {
        c.legacy.adapters = vec![adapter_file.clone()];
        c.dispatch.poll_interval = Duration::from_millis(50);
        c.dispatch.destinations = vec![protofuse::dispatch::DestinationConfig {
            name: "php-notify".to_owned(),
            kind: protofuse::dispatch::DestinationKind::Legacy,
            url: None,
            headers: Default::default(),
            adapter: Some("php-helpdesk".to_owned()),
            account: None,
            fuse: Default::default(),
            retry: Default::default(),
        }];
        c.dispatch.routes = vec![protofuse::dispatch::RouteConfig {
            channels: vec!["web".to_owned()],
            destinations: vec!["php-notify".to_owned()],
            ..Default::default()
        }];
    })
    .await;
    let body = serde_json::json!({"channel": "web", "sender": {"role": "customer", "external_id": "w1"},
                                  "content": {"type": "text", "text": "退货 & 换货"}});
    let sent: Value = server
        .client
        .post(server.url("/v1/messages"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (id, conversation) = (&sent["message"]["id"], &sent["message"]["conversation_id"]);
    for _ in 0..250 {
        if !seen.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seen = seen.lock().unwrap();
    let (headers, received) = seen.first().expect("the backend received the delivery");
    let expected = format!(
        "uid=w1&msg=%CD%CB%BB%F5+%26+%BB%BB%BB%F5&conv={}&mid={}",
        conversation.as_str().unwrap(),
        id.as_str().unwrap()
    );
    assert_eq!(received, expected.as_bytes());
    assert_eq!(headers["x-nonce"], id.as_str().unwrap());
    let timestamp = headers["x-timestamp"].to_str().unwrap();
    let signature = protofuse_legacy::auth::sign(
        "php-outbound-secret",
        "POST",
        "/helpdesk/notify.php",
        timestamp,
        id.as_str().unwrap(),
        received,
    );
    assert_eq!(headers["x-signature"], signature.as_str());
}
