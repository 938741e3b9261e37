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
