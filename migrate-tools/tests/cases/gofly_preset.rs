//! The go-fly preset on go-fly's own tables, imported by the binary, compared field by field with a canonical form
//! written by hand: visitor vs agent authorship (`mes_type`, `kefu_id` as the agent's login), a soft-deleted
//! message left out, empty strings and NULL timestamps.
//!
//! `user` and `visitor` are `support/gofly.rs`'s upstream definitions; `message` is written here after
//! taoshihan1991/go-fly `import.sql` (ea2fdcd, per /work/shared/legacy/SCHEMAS.md) without the fidelity columns
//! the other tests add.

use protofuse_migrate::canonical::Mapper;
use serde_json::Value;

const MESSAGE: &str = "CREATE TABLE `message` (`id` int(11) NOT NULL AUTO_INCREMENT PRIMARY KEY, \
    `kefu_id` varchar(100) NOT NULL DEFAULT '', `visitor_id` varchar(100) NOT NULL DEFAULT '', \
    `content` varchar(2048) NOT NULL DEFAULT '', `created_at` timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP, \
    `updated_at` timestamp NULL DEFAULT NULL, `deleted_at` timestamp NULL DEFAULT NULL, \
    `mes_type` enum('kefu','visitor') NOT NULL DEFAULT 'visitor', `status` enum('read','unread') NOT NULL DEFAULT \
    'unread', KEY `kefu_id` (`kefu_id`), KEY `visitor_id` (`visitor_id`)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";

const ROWS: &str = "INSERT INTO `user` (id, name, password, nickname, created_at) VALUES \
      (1, 'kefu2', MD5('x'), '小王', '2024-04-01 00:00:00'); \
    INSERT INTO visitor (id, name, visitor_id, to_id, status, created_at, updated_at) VALUES \
      (1, '访客A', 'v-a', 'kefu2', 1, '2024-05-01 10:00:00', NULL), \
      (2, '', 'v-b', '', 0, '2024-05-01 09:00:00', '2024-05-01 09:30:00'); \
    INSERT INTO message (id, kefu_id, visitor_id, content, created_at, deleted_at, mes_type, status) VALUES \
      (1, 'kefu2', 'v-a', '你好', '2024-05-01 10:00:05', NULL, 'visitor', 'read'), \
      (2, 'kefu2', 'v-a', 'face[微笑] 在的', '2024-05-01 10:00:10', NULL, 'kefu', 'unread'), \
      (3, 'kefu2', 'v-a', 'img[/static/upload/a.png]', '2024-05-01 10:00:20', '2024-05-01 11:00:00', 'visitor', \
       'unread'), \
      (4, 'kefu2', 'v-b', '谢谢', '2024-05-01 09:00:05', NULL, 'visitor', 'read')";

#[tokio::test]
async fn gofly_preset_on_the_upstream_schema_matches_the_hand_written_canonical_form() {
    let source = protofuse_testkit::mariadb::server().await.fresh_database().await;
    let pool = sqlx::MySqlPool::connect(&source).await.unwrap();
    for statement in [super::gofly::SCHEMA[0], super::gofly::SCHEMA[1], MESSAGE, ROWS] {
        sqlx::raw_sql(statement).execute(&pool).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let target = format!("sqlite://{}", dir.path().join("store.db").display());
    let out = super::osticket::migrate("preset:gofly", &source, &target, &["snapshot"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let store = sqlx::SqlitePool::connect(&target).await.unwrap();
    let mapper = Mapper::new(protofuse_migrate::cli::load_mapping("preset:gofly").unwrap());
    let mut diffs = Vec::new();
    compare_conversations(&store, &mapper, &mut diffs).await;
    compare_messages(&store, &mapper, &mut diffs).await;
    let (deleted,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM messages WHERE idempotency_key = ?")
        .bind("import:gofly:message:3")
        .fetch_one(&store)
        .await
        .unwrap();
    assert_eq!(deleted, 0, "a soft-deleted message is not imported");
    let parties: Vec<(String, String, Option<String>)> =
        sqlx::query_as("SELECT source, external_id, display_name FROM import_parties ORDER BY source, pk")
            .fetch_all(&store)
            .await
            .unwrap();
    assert_eq!(
        parties,
        [
            (
                "gofly:user/agent".to_owned(),
                "kefu2".to_owned(),
                Some("小王".to_owned())
            ),
            (
                "gofly:visitor/customer".to_owned(),
                "v-a".to_owned(),
                Some("访客A".to_owned())
            ),
            ("gofly:visitor/customer".to_owned(), "v-b".to_owned(), None),
        ]
    );
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));

    let out = super::osticket::migrate("preset:gofly", &source, &target, &["verify", "--mode", "source"]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn same(diffs: &mut Vec<String>, what: &str, expected: Option<&str>, got: Option<&str>) {
    if expected != got {
        diffs.push(format!("{what}: expected {expected:?}, stored {got:?}"));
    }
}

async fn compare_conversations(store: &sqlx::SqlitePool, mapper: &Mapper, diffs: &mut Vec<String>) {
    // (visitor, status, assigned agent, created, updated): an empty `to_id` is no agent; a NULL updated_at is
    // the creation time.
    for (visitor, status, agent, created, updated) in [
        (
            "v-a",
            "queued",
            Some("kefu2"),
            1_714_557_600_000_000_i64,
            1_714_557_600_000_000_i64,
        ),
        ("v-b", "closed", None, 1_714_554_000_000_000, 1_714_555_800_000_000),
    ] {
        let id = mapper.conversation_id("visitor", visitor).to_string();
        let row: (String, String, Option<String>, i64, i64) = sqlx::query_as(
            "SELECT customer_id, status, assigned_agent, created_at, updated_at FROM conversations WHERE id = ?",
        )
        .bind(&id)
        .fetch_one(store)
        .await
        .unwrap();
        same(diffs, &format!("{visitor} customer_id"), Some(visitor), Some(&row.0));
        same(diffs, &format!("{visitor} status"), Some(status), Some(&row.1));
        same(diffs, &format!("{visitor} assigned_agent"), agent, row.2.as_deref());
        let (created, updated) = (created.to_string(), updated.to_string());
        same(
            diffs,
            &format!("{visitor} created_at"),
            Some(&created),
            Some(&row.3.to_string()),
        );
        same(
            diffs,
            &format!("{visitor} updated_at"),
            Some(&updated),
            Some(&row.4.to_string()),
        );
    }
}

async fn compare_messages(store: &sqlx::SqlitePool, mapper: &Mapper, diffs: &mut Vec<String>) {
    // (id, visitor, role, author, text, sent at); message 3 is soft-deleted and must not be stored.
    for (id, visitor, role, author, text, sent) in [
        (1, "v-a", "customer", "v-a", "你好", "2024-05-01T10:00:05Z"),
        (2, "v-a", "agent", "kefu2", "face[微笑] 在的", "2024-05-01T10:00:10Z"),
        (4, "v-b", "customer", "v-b", "谢谢", "2024-05-01T09:00:05Z"),
    ] {
        let (body,): (String,) = sqlx::query_as("SELECT body FROM messages WHERE idempotency_key = ?")
            .bind(format!("import:gofly:message:{id}"))
            .fetch_one(store)
            .await
            .unwrap();
        let body: Value = serde_json::from_str(&body).unwrap();
        let at = |pointer: &str| body.pointer(pointer).and_then(Value::as_str);
        let conversation = mapper.conversation_id("visitor", visitor).to_string();
        same(
            diffs,
            &format!("message {id} conversation"),
            Some(&conversation),
            at("/conversation_id"),
        );
        same(diffs, &format!("message {id} role"), Some(role), at("/sender/role"));
        same(
            diffs,
            &format!("message {id} author"),
            Some(author),
            at("/sender/external_id"),
        );
        same(diffs, &format!("message {id} text"), Some(text), at("/content/text"));
        same(diffs, &format!("message {id} sent_at"), Some(sent), at("/sent_at"));
    }
}
