//! The FreeScout preset on FreeScout's own tables, imported by the binary, compared field by field with a
//! canonical form written by hand: customer vs agent authorship, notes, drafts left out, line items, a chat without
//! a customer (its own anonymous key, not a shared "unknown"), the mailbox as the department label.
//!
//! Tables written after freescout-help-desk/freescout `database/migrations/` (Laravel; connection
//! `utf8mb4_unicode_ci`): `2018_07_11_010333_create_conversations_table.php` at 45f3ad0880a0,
//! `2018_07_12_003318_create_threads_table.php` at 26e3acd283a1, `2018_07_09_053559_create_customers_table.php` at
//! c95ceebdd141, `2018_06_10_000000_create_users_table.php` at ab707bd3659f, then
//! `2019_11_08_143000_change_number_column_to_string…` (8965bc8) and `2020_11_04_140000_change_foreign_keys_types`
//! (aebf33c) applied. Later migrations that add unmapped columns (threads `meta`/`subtype`/`imported`/
//! `send_status_data`, conversations `channel`/`meta`/`last_customer_reply_at`) are left out. Laravel's column
//! types: `increments` int(10) unsigned, `integer` int(11), `unsignedTinyInteger` tinyint(3) unsigned, `boolean`
//! tinyint(1), `timestamps()` two nullable TIMESTAMPs. `users.email` length is `User::EMAIL_MAX_LENGTH`, not read:
//! 191 here (the unique-index limit).

use protofuse_migrate::canonical::Mapper;
use serde_json::Value;

const SCHEMA: &[&str] = &[
    "CREATE TABLE `conversations` (`id` int(10) unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY, `number` varchar(7), \
     `threads_count` int(10) unsigned NOT NULL DEFAULT 0, `type` tinyint(3) unsigned NOT NULL, `folder_id` int(10) \
     unsigned NOT NULL, `status` tinyint(3) unsigned NOT NULL DEFAULT 1, `state` tinyint(3) unsigned NOT NULL \
     DEFAULT 1, `subject` varchar(998) NULL, `customer_email` varchar(191) NULL, `cc` text NULL, `bcc` text NULL, \
     `preview` varchar(255) NOT NULL, `imported` tinyint(1) NOT NULL DEFAULT 0, `has_attachments` tinyint(1) NOT \
     NULL DEFAULT 0, `mailbox_id` int(10) unsigned NOT NULL, `user_id` int(10) unsigned NULL, `customer_id` int(10) \
     unsigned NULL, `created_by_user_id` int(10) unsigned NULL, `created_by_customer_id` int(10) unsigned NULL, \
     `source_via` tinyint(3) unsigned NOT NULL, `source_type` tinyint(3) unsigned NOT NULL, `closed_by_user_id` \
     int(10) unsigned NULL, `closed_at` timestamp NULL DEFAULT NULL, `user_updated_at` timestamp NULL DEFAULT NULL, \
     `last_reply_at` timestamp NULL DEFAULT NULL, `last_reply_from` tinyint(3) unsigned NULL, `read_by_user` \
     tinyint(1) NOT NULL DEFAULT 0, `created_at` timestamp NULL DEFAULT NULL, `updated_at` timestamp NULL DEFAULT \
     NULL, KEY (`folder_id`, `status`), KEY (`mailbox_id`, `customer_id`), UNIQUE KEY `idx_number` (`number`)) \
     DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci",
    "CREATE TABLE `threads` (`id` int(10) unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY, `conversation_id` int(10) \
     unsigned NOT NULL, `user_id` int(10) unsigned NULL, `type` tinyint(3) unsigned NOT NULL, `status` tinyint(3) \
     unsigned NOT NULL DEFAULT 1, `state` tinyint(3) unsigned NOT NULL DEFAULT 1, `action_type` tinyint(3) unsigned \
     NULL, `action_text` varchar(255) NULL, `body` text NULL, `body_original` text NULL, `to` text NULL, `cc` text \
     NULL, `bcc` text NULL, `message_id` varchar(998) NULL, `source_via` tinyint(3) unsigned NOT NULL, \
     `source_type` tinyint(3) unsigned NOT NULL, `customer_id` int(10) unsigned NULL, `created_by_user_id` int(10) \
     unsigned NULL, `created_by_customer_id` int(10) unsigned NULL, `saved_reply_id` int(11) NULL, `send_status` \
     tinyint(3) unsigned NOT NULL DEFAULT 1, `send_status_text` varchar(255) NULL, `opened_at` timestamp NULL \
     DEFAULT NULL, `created_at` timestamp NULL DEFAULT NULL, `updated_at` timestamp NULL DEFAULT NULL) \
     DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci",
    "CREATE TABLE `customers` (`id` int(10) unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY, `first_name` varchar(255) \
     NULL, `last_name` varchar(255) NULL, `company` varchar(255) NULL, `job_title` varchar(255) NULL, `photo_type` \
     varchar(13) NULL, `photo_url` varchar(255) NULL, `age` varchar(7) NULL, `gender` varchar(7) NULL, `phones` \
     text NULL, `websites` text NULL, `social_profiles` text NULL, `chats` text NULL, `background` text NULL, \
     `address` text NULL, `city` varchar(255) NULL, `state` varchar(255) NULL, `zip` varchar(12) NULL, `country` \
     varchar(2) NULL, `created_at` timestamp NULL DEFAULT NULL, `updated_at` timestamp NULL DEFAULT NULL) \
     DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci",
    "CREATE TABLE `users` (`id` int(10) unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY, `first_name` varchar(20) NOT \
     NULL, `last_name` varchar(30) NOT NULL, `email` varchar(191) NOT NULL, `password` varchar(255) NOT NULL, \
     `role` tinyint(3) unsigned NOT NULL DEFAULT 1, `timezone` varchar(255) NOT NULL DEFAULT 'UTC', `photo_url` \
     varchar(255) NULL, `type` tinyint(3) unsigned NOT NULL DEFAULT 1, `invite_state` tinyint(3) unsigned NOT NULL \
     DEFAULT 0, `invite_hash` varchar(100) NULL, `emails` varchar(100) NULL, `job_title` varchar(100) NULL, \
     `phone` varchar(60) NULL, `time_format` tinyint(3) unsigned NOT NULL DEFAULT 2, `enable_kb_shortcuts` \
     tinyint(1) NOT NULL DEFAULT 1, `locked` tinyint(1) NOT NULL DEFAULT 0, `remember_token` varchar(100) NULL, \
     `created_at` timestamp NULL DEFAULT NULL, `updated_at` timestamp NULL DEFAULT NULL, UNIQUE KEY (`email`), \
     KEY (`role`)) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci",
];

const ROWS: &str = "INSERT INTO users (id, first_name, last_name, email, password) VALUES \
      (1, 'Sam', 'Agent', 'sam@example.com', 'x'); \
    INSERT INTO customers (id, first_name, last_name) VALUES (1, 'Ana', NULL), (2, NULL, NULL); \
    INSERT INTO conversations (id, number, type, folder_id, status, state, subject, preview, mailbox_id, user_id, \
      customer_id, source_via, source_type, created_at, updated_at) VALUES \
      (1, '1', 1, 1, 1, 2, 'Refund 😀', '', 1, 1, 1, 1, 1, '2024-03-01 10:00:00', '2024-03-01 11:00:00'), \
      (2, '2', 3, 2, 3, 2, 'Chat', '', 2, NULL, NULL, 1, 2, '2024-03-02 10:00:00', NULL); \
    INSERT INTO threads (id, conversation_id, type, state, body, source_via, source_type, customer_id, \
      created_by_user_id, created_by_customer_id, created_at) VALUES \
      (1, 1, 1, 2, '<div>I want a refund 😀</div>', 1, 1, 1, NULL, 1, '2024-03-01 10:00:00'), \
      (2, 1, 2, 2, 'Done.', 2, 1, 1, 1, NULL, '2024-03-01 10:30:00'), \
      (3, 1, 3, 2, 'note to self', 2, 1, 1, 1, NULL, '2024-03-01 10:31:00'), \
      (4, 1, 2, 1, 'draft reply', 2, 1, 1, 1, NULL, '2024-03-01 10:32:00'), \
      (5, 1, 4, 2, NULL, 2, 1, 1, 1, NULL, '2024-03-01 10:33:00'), \
      (6, 2, 8, 2, '在吗？', 1, 2, NULL, NULL, NULL, '2024-03-02 10:00:00')";

fn same(diffs: &mut Vec<String>, what: &str, expected: Option<&str>, got: Option<&str>) {
    if expected != got {
        diffs.push(format!("{what}: expected {expected:?}, stored {got:?}"));
    }
}

#[tokio::test]
async fn freescout_preset_on_the_upstream_schema_matches_the_hand_written_canonical_form() {
    let source = protofuse_testkit::mariadb::server().await.fresh_database().await;
    let pool = sqlx::MySqlPool::connect(&source).await.unwrap();
    for statement in SCHEMA.iter().chain([&ROWS]) {
        sqlx::raw_sql(statement).execute(&pool).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let target = format!("sqlite://{}", dir.path().join("store.db").display());
    let out = super::osticket::migrate("preset:freescout", &source, &target, &["snapshot"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let store = sqlx::SqlitePool::connect(&target).await.unwrap();
    let mapper = Mapper::new(protofuse_migrate::cli::load_mapping("preset:freescout").unwrap());
    let mut diffs = Vec::new();
    compare_conversations(&store, &mapper, &mut diffs).await;
    compare_threads(&store, &mapper, &mut diffs).await;
    let (drafts,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM messages WHERE idempotency_key = ?")
        .bind("import:freescout:threads:4")
        .fetch_one(&store)
        .await
        .unwrap();
    assert_eq!(drafts, 0, "a draft is not imported");
    let parties: Vec<(String, String, Option<String>, Option<String>)> =
        sqlx::query_as("SELECT source, external_id, display_name, email FROM import_parties ORDER BY source, pk")
            .fetch_all(&store)
            .await
            .unwrap();
    let owned = |s: &str| Some(s.to_owned());
    assert_eq!(
        parties,
        [
            (
                "freescout:customers/customer".to_owned(),
                "1".to_owned(),
                owned("Ana"),
                None
            ),
            ("freescout:customers/customer".to_owned(), "2".to_owned(), None, None),
            (
                "freescout:users/agent".to_owned(),
                "1".to_owned(),
                owned("Sam Agent"),
                owned("sam@example.com")
            ),
        ]
    );
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));

    let out = super::osticket::migrate("preset:freescout", &source, &target, &["verify", "--mode", "source"]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn compare_conversations(store: &sqlx::SqlitePool, mapper: &Mapper, diffs: &mut Vec<String>) {
    // (id, customer, status, department, agent, created, updated): a NULL updated_at is the creation time.
    for (id, customer, status, department, agent, created, updated) in [
        (
            "1",
            "1",
            "queued",
            "mailbox-1",
            Some("1"),
            1_709_287_200_000_000_i64,
            1_709_290_800_000_000_i64,
        ),
        (
            "2",
            "anonymous-conversation-2",
            "closed",
            "mailbox-2",
            None,
            1_709_373_600_000_000,
            1_709_373_600_000_000,
        ),
    ] {
        let key = mapper.conversation_id("conversations", id).to_string();
        let row: (String, String, Option<String>, Option<String>, i64, i64) = sqlx::query_as(
            "SELECT customer_id, status, department, assigned_agent, created_at, updated_at FROM conversations \
             WHERE id = ?",
        )
        .bind(&key)
        .fetch_one(store)
        .await
        .unwrap();
        same(
            diffs,
            &format!("conversation {id} customer_id"),
            Some(customer),
            Some(&row.0),
        );
        same(diffs, &format!("conversation {id} status"), Some(status), Some(&row.1));
        same(
            diffs,
            &format!("conversation {id} department"),
            Some(department),
            row.2.as_deref(),
        );
        same(
            diffs,
            &format!("conversation {id} assigned_agent"),
            agent,
            row.3.as_deref(),
        );
        let times = (
            created.to_string(),
            updated.to_string(),
            row.4.to_string(),
            row.5.to_string(),
        );
        same(
            diffs,
            &format!("conversation {id} created_at"),
            Some(&times.0),
            Some(&times.2),
        );
        same(
            diffs,
            &format!("conversation {id} updated_at"),
            Some(&times.1),
            Some(&times.3),
        );
    }
}

async fn compare_threads(store: &sqlx::SqlitePool, mapper: &Mapper, diffs: &mut Vec<String>) {
    // (id, conversation, role, author, text, internal): a line item is a system message by the agent who acted;
    // the chat without any customer id is authored by its conversation's anonymous key.
    for (id, conversation, role, author, text, internal) in [
        (1, "1", "customer", "1", "<div>I want a refund 😀</div>", false),
        (2, "1", "agent", "1", "Done.", false),
        (3, "1", "agent", "1", "note to self", true),
        (5, "1", "system", "1", "", false),
        (6, "2", "customer", "anonymous-conversation-2", "在吗？", false),
    ] {
        let (body,): (String,) = sqlx::query_as("SELECT body FROM messages WHERE idempotency_key = ?")
            .bind(format!("import:freescout:threads:{id}"))
            .fetch_one(store)
            .await
            .unwrap();
        let body: Value = serde_json::from_str(&body).unwrap();
        let at = |pointer: &str| body.pointer(pointer).and_then(Value::as_str);
        let expected = mapper.conversation_id("conversations", conversation).to_string();
        same(
            diffs,
            &format!("thread {id} conversation"),
            Some(&expected),
            at("/conversation_id"),
        );
        same(diffs, &format!("thread {id} role"), Some(role), at("/sender/role"));
        same(
            diffs,
            &format!("thread {id} author"),
            Some(author),
            at("/sender/external_id"),
        );
        same(diffs, &format!("thread {id} text"), Some(text), at("/content/text"));
        let stored_internal = body
            .pointer("/metadata/internal")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        same(
            diffs,
            &format!("thread {id} internal"),
            Some(&internal.to_string()),
            Some(&stored_internal.to_string()),
        );
    }
}
