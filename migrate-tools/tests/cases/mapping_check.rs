//! Issue 22: a mapping naming a column that does not exist was accepted (`fields.text = {column = "bodyy"}`: the
//! snapshot exited 0 and stored every text empty). The mapping is now checked against the source before anything
//! is written, and `check-mapping --source` lists every problem with its key.

use super::osticket;

/// The osTicket preset with four mistakes: a misspelt column, a role map that misses the note type the data
/// holds, and a staff name template over two nullable columns without fallbacks.
fn broken_preset() -> String {
    let preset = osticket::preset();
    let broken = preset
        .replace(
            "fields.text = { column = \"body\" }",
            "fields.text = { column = \"bodyy\" }",
        )
        .replace(
            "map = { M = \"customer\", R = \"agent\", N = \"agent\" }",
            "map = { M = \"customer\", R = \"agent\" }",
        )
        .replace("{firstname|} {lastname|}", "{firstname} {lastname}");
    assert_eq!(broken.matches("bodyy").count(), 1);
    assert!(!broken.contains("{firstname|}") && broken.contains("R = \"agent\" }"));
    broken
}

const BODYY: &str =
    "tables.ost_thread_entry.fields.text: column \"bodyy\" does not exist in ost_thread_entry (did you mean \"body\"?)";

#[tokio::test]
async fn check_mapping_with_a_source_lists_every_problem_with_its_key() {
    let (source, _pool) = osticket::create().await;
    let dir = tempfile::tempdir().unwrap();
    let mapping = dir.path().join("osticket.toml");
    std::fs::write(&mapping, broken_preset()).unwrap();
    let mapping = mapping.to_str().unwrap();

    // Offline, the mapping is well-formed: only the source can tell.
    let offline = std::process::Command::new(env!("CARGO_BIN_EXE_protofuse-migrate"))
        .args(["--mapping", mapping, "check-mapping"])
        .output()
        .unwrap();
    assert!(offline.status.success(), "{}", String::from_utf8_lossy(&offline.stderr));

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_protofuse-migrate"))
        .args(["--mapping", mapping, "check-mapping", "--source", &source])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert!(lines.contains(&BODYY), "{stdout}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("tables.ost_thread_entry.fields.role: column \"type\" holds \"N\"")),
        "{stdout}"
    );
    for column in ["firstname", "lastname"] {
        let expected = format!(
            "tables.ost_staff.fields.display_name: template placeholder {{{column}}}: column \"{column}\" is \
             nullable; declare a fallback, {{{column}|…}}, or a field default"
        );
        assert!(lines.contains(&expected.as_str()), "{stdout}");
    }

    // The shipped preset fits the upstream schema and its data.
    let out = osticket::migrate("preset:osticket", &source, "unused", &["check-mapping"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("ok against"), "{stdout}");
}

#[tokio::test]
async fn snapshot_run_and_follow_refuse_a_mapping_that_does_not_fit_before_writing_anything() {
    let (source, _pool) = osticket::create().await;
    let dir = tempfile::tempdir().unwrap();
    let mapping = dir.path().join("osticket.toml");
    std::fs::write(&mapping, broken_preset()).unwrap();
    for command in ["snapshot", "run", "follow"] {
        let store = dir.path().join(format!("{command}.db"));
        let target = format!("sqlite://{}?mode=rwc", store.display());
        let out = osticket::migrate(mapping.to_str().unwrap(), &source, &target, &[command]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{command}: {stderr}");
        assert!(
            stderr.contains(BODYY) && stderr.contains("nothing was written"),
            "{command}: {stderr}"
        );
        // Not even the target's bookkeeping tables: the target was never opened.
        assert!(!store.exists(), "{command} created {}", store.display());
    }
}
