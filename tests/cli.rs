//! The `protofuse` binary as an operator runs it: the shipped configuration, `serve` with SIGTERM, and
//! `check-config`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use protofuse::config::{self, Config};
use serde_json::{Value, json};

use crate::support::server::{Binary, get_json};

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Files a configuration names resolve against its directory; the built-in defaults name the same files relative
/// to the checkout's root, where the README's command runs.
fn as_from_the_checkout(mut config: Config) -> Config {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let relative = |path: &mut std::path::PathBuf| {
        if let Ok(inside) = path.strip_prefix(root) {
            *path = inside.to_owned();
        }
    };
    relative(&mut config.triage.model);
    config.triage.knowledge.as_mut().map(relative);
    config
}

#[test]
fn shipped_config_files_parse_and_match_the_defaults() {
    let reference = as_from_the_checkout(config::load(Some(&repo("config/reference.toml"))).unwrap());
    assert_eq!(
        reference,
        Config::default(),
        "reference.toml must state the built-in defaults"
    );
    // The sample differs from the defaults only by the example integrations it ships enabled: the legacy
    // adapters and the demo WeChat account.
    let mut sample = as_from_the_checkout(config::load(Some(&repo("config/default.toml"))).unwrap());
    let adapters = std::mem::take(&mut sample.legacy.adapters);
    let accounts = std::mem::take(&mut sample.wechat.accounts);
    assert_eq!(accounts, [protofuse::wechat::AccountConfig::demo()]);
    assert_eq!(
        sample,
        Config::default(),
        "default.toml must state the built-in defaults"
    );
    assert_eq!(adapters.len(), 3);
    assert!(
        adapters.iter().all(|a| a.starts_with(repo("config"))),
        "relative to the file: {adapters:?}"
    );
    protofuse::legacy::load_adapters(&adapters).expect("the shipped adapters are valid");
}

#[test]
fn check_config_names_every_bad_key() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[server]\nbody_limit_bytes = 10\n[store]\nurl = \"postgres://x\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_protofuse"))
        .arg("check-config")
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("server.body_limit_bytes") && stderr.contains("store.url"),
        "{stderr}"
    );

    std::fs::write(&bad, "[server]\nlisten_addr = \"x\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_protofuse"))
        .arg("check-config")
        .arg(&bad)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("listen_addr"),
        "unknown keys are errors: {stderr}"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_protofuse"))
        .arg("check-config")
        .arg(repo("config/default.toml"))
        .env("PROTOFUSE__STORE__MAX_CONNECTIONS", "0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("store.max_connections"),
        "env overrides apply: {stderr}"
    );

    let ok = Command::new(env!("CARGO_BIN_EXE_protofuse"))
        .arg("check-config")
        .arg(repo("config/default.toml"))
        .output();
    assert!(ok.unwrap().status.success());
}

#[tokio::test]
async fn serve_with_the_shipped_config_round_trips_and_stops_on_sigterm() {
    let cwd = tempfile::tempdir().unwrap();
    let mut binary = Binary::serve_default(cwd.path()).await;
    let client = reqwest::Client::new();
    let body =
        json!({"sender": {"role": "customer", "external_id": "u1"}, "content": {"type": "text", "text": "你好"}});
    let sent: Value = client
        .post(format!("{}/v1/messages", binary.base))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let conversation = sent["message"]["conversation_id"].as_str().unwrap();
    let page: Value = get_json(
        &client,
        &format!("{}/v1/conversations/{conversation}/messages", binary.base),
    )
    .await;
    assert_eq!(page["items"][0]["content"]["text"], "你好");
    assert!(
        cwd.path().join("data/protofuse.db").exists(),
        "SQLite file under ./data as documented"
    );

    binary.terminate();
    let mut exited = None;
    for _ in 0..100 {
        if let Some(status) = binary.child.try_wait().unwrap() {
            exited = Some(status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = exited.expect("exits within 5 s of SIGTERM");
    assert!(status.success(), "clean exit on SIGTERM: {status}");
}
