//! `verify --mode source` reads every mapped field from the source with plain SQL and compares it with the store.
//! Issue 22: the checksum mode maps the source again with the import's own mapping, so it agreed with a mapping
//! that stored the wrong column or the wrong author. Here an import is made with a deliberately broken osTicket
//! mapping (text from the subject line, staff entries authored by `user_id`, as the lost-authorship bug did).

use super::osticket;

fn broken_preset() -> String {
    let broken = osticket::preset()
        .replace(
            "fields.text = { column = \"body\" }",
            "fields.text = { column = \"title\" }",
        )
        .replace(
            "fields.agent_id = { column = \"staff_id\", map = { \"0\" = \"system\" } }",
            "fields.agent_id = { column = \"user_id\" }",
        );
    assert!(broken.contains("\"title\"") && broken.contains("{ column = \"user_id\" }\n"));
    broken
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test]
async fn verify_in_source_mode_names_each_field_a_broken_mapping_imported_wrongly() {
    let (source, _pool) = osticket::create().await;
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, broken_preset()).unwrap();
    let broken = broken.to_str().unwrap();
    let target = format!("sqlite://{}", dir.path().join("store.db").display());
    let out = osticket::migrate(broken, &source, &target, &["snapshot"]);
    assert!(out.status.success(), "{}", text(&out));

    // The checksum mode maps the source again with the same broken mapping, and agrees with it.
    let out = osticket::migrate(broken, &source, &target, &["verify"]);
    assert!(out.status.success(), "{}", text(&out));

    // Checked against the source with the intended preset, every wrong field is named with both values.
    let out = osticket::migrate("preset:osticket", &source, &target, &["verify", "--mode", "source"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "MISMATCH osticket:ost_thread_entry/message key 1 text: source \"<p>My printer is on fire</p>\" stored \"Printer\"",
        "MISMATCH osticket:ost_thread_entry/message key 2 text: source \"Unplug it.\" stored \"\"",
        "MISMATCH osticket:ost_thread_entry/message key 2 agent_id: source \"1\" stored \"0\"",
        "MISMATCH osticket:ost_thread_entry/message key 5 agent_id: source \"system\" stored \"0\"",
    ] {
        assert!(stdout.contains(expected), "missing {expected:?} in\n{stdout}");
    }
    // Customer entries were authored right, and the other tables were imported right.
    assert!(
        !stdout.contains("key 1 sender_id") && !stdout.contains("key 4 sender_id"),
        "{stdout}"
    );
    for table in ["ost_thread/conversation", "ost_user/customer", "ost_staff/agent"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&format!("osticket:{table}")) && l.ends_with(" ok")),
            "{table}: {stdout}"
        );
    }

    // A sample finds them too, and the JSON report carries key, field and both values.
    let out = osticket::migrate(
        "preset:osticket",
        &source,
        &target,
        &["verify", "--mode", "source", "--sample", "3", "--json"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let reports: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let entries = reports
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["source"] == "osticket:ost_thread_entry/message")
        .unwrap();
    assert_eq!(entries["rows"], 3, "{entries}");
    let mismatches = entries["mismatches"].as_array().unwrap();
    assert!(
        mismatches
            .iter()
            .any(|m| m["field"] == "text" && m["source"] != m["stored"]),
        "{entries}"
    );

    // A correct import is clean in source mode, into SQLite and into MariaDB (the target reads differ).
    let sqlite = format!("sqlite://{}", dir.path().join("fixed.db").display());
    let mariadb = protofuse_testkit::mariadb::server().await.fresh_database().await;
    for fixed in [sqlite, mariadb] {
        let out = osticket::migrate("preset:osticket", &source, &fixed, &["snapshot"]);
        assert!(out.status.success(), "{}", text(&out));
        let out = osticket::migrate("preset:osticket", &source, &fixed, &["verify", "--mode", "source"]);
        assert!(out.status.success(), "{}", text(&out));
        let out = osticket::migrate(broken, &source, &fixed, &["verify", "--mode", "source"]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.code() == Some(1) && stdout.contains("key 2 agent_id: source \"0\" stored \"1\""),
            "{}",
            text(&out)
        );
    }
}

const MOJIBAKE: &str = "CREATE TABLE conv (id int NOT NULL PRIMARY KEY, created datetime NOT NULL); \
    CREATE TABLE msg (id int NOT NULL PRIMARY KEY, conv_id int NOT NULL, \
      body varchar(100) CHARACTER SET latin1 NOT NULL, created datetime NOT NULL); \
    INSERT INTO conv VALUES (1, '2024-01-01 08:00:00'); \
    INSERT INTO msg VALUES (1, 1, _latin1 X'bfcdb7fe', '2024-01-01 08:00:01')";

/// GBK bytes stored in a latin1 column, repaired on import by `columns.body = { reinterpret = "gbk" }`.
const REPAIRED: &str = r#"
name = "moji"
channel = "web"
source_timezone = "+08:00"
[[tables]]
table = "conv"
kind = "conversation"
fields.customer_id = { template = "c-{id}" }
fields.created_at = { column = "created", transform = "datetime" }
[[tables]]
table = "msg"
kind = "message"
conversation_table = "conv"
fields.conversation = { column = "conv_id" }
fields.role = { constant = "customer" }
fields.sender_id = { template = "c-{conv_id}" }
fields.text = { column = "body" }
fields.sent_at = { column = "created", transform = "datetime" }
columns.body = { reinterpret = "gbk" }
"#;

#[tokio::test]
async fn verify_in_source_mode_checks_charset_repair_through_the_servers_own_conversion() {
    let source = protofuse_testkit::mariadb::server().await.fresh_database().await;
    let pool = sqlx::MySqlPool::connect(&source).await.unwrap();
    sqlx::raw_sql(MOJIBAKE).execute(&pool).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let repaired = dir.path().join("repaired.toml");
    std::fs::write(&repaired, REPAIRED).unwrap();
    let unrepaired = dir.path().join("unrepaired.toml");
    std::fs::write(
        &unrepaired,
        REPAIRED.replace("columns.body = { reinterpret = \"gbk\" }\n", ""),
    )
    .unwrap();
    let (repaired, unrepaired) = (repaired.to_str().unwrap(), unrepaired.to_str().unwrap());
    let target = format!("sqlite://{}", dir.path().join("store.db").display());
    let out = osticket::migrate(repaired, &source, &target, &["snapshot"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = osticket::migrate(repaired, &source, &target, &["verify", "--mode", "source"]);
    assert!(out.status.success(), "{}", text(&out));
    // Without the repair the source reads as cp1252 text, which is not what was stored.
    let out = osticket::migrate(unrepaired, &source, &target, &["verify", "--mode", "source"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.code() == Some(1)
            && stdout.contains("MISMATCH moji:msg/message key 1 text: source \"¿Í·þ\" stored \"客服\""),
        "{}",
        text(&out)
    );
}
