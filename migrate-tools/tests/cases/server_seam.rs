//! The seam between the importer and the server: both write the conversation store through `protofuse-store`,
//! so what the importer writes is what the server's own ingest would have written. Driven through the real
//! binaries: `protofuse-migrate snapshot`, then `protofuse serve` on the same SQLite file and its REST API.

use std::path::Path;

use protofuse_migrate::canonical::Mapper;
use protofuse_migrate::mapping::Mapping;
use protofuse_testkit::binary::{Binary, workspace_binary};
use protofuse_testkit::http::get_json;
use protofuse_testkit::mariadb;
use serde_json::{Value, json};
use sqlx::MySqlPool;

/// A go-fly source with one visitor still waiting (`status = 1`, imported as `queued`) and one long done, each
/// with one message; imported into a fresh SQLite store by the importer binary. Returns the store's URL.
async fn imported_gofly(dir: &Path) -> String {
    let source_url = mariadb::server().await.fresh_database().await;
    let pool = MySqlPool::connect(&source_url).await.unwrap();
    super::gofly::create(&pool).await;
    sqlx::raw_sql(
        "INSERT INTO visitor (id, name, visitor_id, to_id, status, created_at) VALUES \
         (1, '等待中', 'v-open', 'agent1', 1, '2024-05-01 10:00:00'), \
         (2, '已结束', 'v-done', 'agent1', 0, '2024-05-01 09:00:00'); \
         INSERT INTO message (id, kefu_id, visitor_id, content, created_at, mes_type) VALUES \
         (1, 'agent1', 'v-open', '我的包裹到哪了', '2024-05-01 10:00:05', 'visitor'), \
         (2, 'agent1', 'v-done', '谢谢', '2024-05-01 09:00:05', 'visitor')",
    )
    .execute(&pool)
    .await
    .unwrap();
    let target = format!("sqlite://{}", dir.join("protofuse.db").display());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_protofuse-migrate"))
        .args(["--mapping", "preset:gofly", "snapshot"])
        .env("PROTOFUSE_MIGRATE_SOURCE", &source_url)
        .env("PROTOFUSE_MIGRATE_TARGET", &target)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    target
}

async fn serve(dir: &Path, store_url: &str) -> Binary {
    let config = dir.join("protofuse.toml");
    std::fs::write(&config, format!("[store]\nurl = \"{store_url}\"\n")).unwrap();
    Binary::serve(&workspace_binary("protofuse", "protofuse"), &config, dir, &[]).await
}

async fn post(client: &reqwest::Client, server: &Binary, body: &Value, key: Option<&str>) -> (u16, Value) {
    let mut request = client.post(server.url("/v1/messages")).json(body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// Issue 16: the importer never set `open_key`, so an imported open conversation was invisible to the
/// customer's next message, which opened a second one.
#[tokio::test]
async fn a_conversation_imported_open_receives_the_customers_next_message() {
    let dir = tempfile::tempdir().unwrap();
    let store = imported_gofly(dir.path()).await;
    let server = serve(dir.path(), &store).await;
    let client = reqwest::Client::new();
    let mapper = Mapper::new(Mapping::parse(&super::gofly::mapping()).unwrap());
    let imported = mapper.conversation_id("visitor", "v-open").to_string();

    let next = json!({"channel": "gofly", "account": "gofly",
                      "sender": {"role": "customer", "external_id": "v-open"},
                      "content": {"type": "text", "text": "还在吗？"}});
    let (status, stored) = post(&client, &server, &next, None).await;
    assert_eq!(status, 201, "{stored}");
    assert_eq!(
        stored["message"]["conversation_id"],
        imported.as_str(),
        "joined the imported conversation"
    );
    let listed = get_json(&client, &server.url("/v1/conversations?customer=v-open")).await;
    assert_eq!(
        listed["items"].as_array().unwrap().len(),
        1,
        "no second conversation: {listed}"
    );
    assert_eq!(listed["items"][0]["status"], "queued");

    // A customer whose imported conversation is closed gets a new one, as after any close.
    let done = json!({"channel": "gofly", "account": "gofly",
                      "sender": {"role": "customer", "external_id": "v-done"},
                      "content": {"type": "text", "text": "又是我"}});
    let (status, stored) = post(&client, &server, &done, None).await;
    assert_eq!(status, 201, "{stored}");
    let closed = mapper.conversation_id("visitor", "v-done").to_string();
    assert_ne!(stored["message"]["conversation_id"], closed.as_str());
}

/// Issue 16: the importer and the server computed the fingerprint from different inputs, so an imported message
/// posted again through the API with its idempotency key was refused as a reused key (409).
#[tokio::test]
async fn an_imported_message_posted_again_with_its_key_is_a_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let store = imported_gofly(dir.path()).await;
    let server = serve(dir.path(), &store).await;
    let client = reqwest::Client::new();
    let conversation = Mapper::new(Mapping::parse(&super::gofly::mapping()).unwrap())
        .conversation_id("visitor", "v-open")
        .to_string();
    let page = get_json(
        &client,
        &server.url(&format!("/v1/conversations/{conversation}/messages")),
    )
    .await;
    let imported = &page["items"][0];
    assert_eq!(imported["idempotency_key"], "import:gofly:message:1");

    let again = json!({"channel": "gofly", "account": "gofly",
                       "sender": {"role": "customer", "external_id": "v-open"},
                       "content": {"type": "text", "text": "我的包裹到哪了"}});
    let (status, replayed) = post(&client, &server, &again, Some("import:gofly:message:1")).await;
    assert_eq!(status, 200, "{replayed}");
    assert_eq!(replayed["duplicate"], true);
    assert_eq!(replayed["message"]["id"], imported["id"]);

    let changed = json!({"channel": "gofly", "account": "gofly",
                         "sender": {"role": "customer", "external_id": "v-open"},
                         "content": {"type": "text", "text": "something else"}});
    let (status, refused) = post(&client, &server, &changed, Some("import:gofly:message:1")).await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (409, Some("idempotency_key_reused"))
    );
}
