use serde_json::json;

use super::*;

const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

fn config(value: serde_json::Value) -> WechatConfig {
    serde_json::from_value(value).unwrap()
}

#[test]
fn minimal_safe_account_takes_defaults() {
    let c = config(
        json!({"account": "main-oa", "token": "spamtest", "app_id": "wx2c2769f8efd9abc2", "encoding_aes_key": KEY}),
    );
    let s = c.validate().unwrap();
    assert_eq!(s.mode(), Mode::Safe);
    assert_eq!(s.max_body_bytes(), DEFAULT_MAX_BODY_BYTES);
    assert_eq!(s.replay_window_secs(), Some(DEFAULT_REPLAY_WINDOW_SECS));
    assert_eq!(s.cipher().unwrap().app_id, "wx2c2769f8efd9abc2");
}

#[test]
fn plaintext_needs_no_key_and_zero_disables_the_window() {
    let c = config(json!({"account": "a", "token": "abc", "mode": "plaintext", "replay_window_secs": 0}));
    let s = c.validate().unwrap();
    assert!(s.cipher().is_none());
    assert_eq!(s.replay_window_secs(), None);
}

#[test]
fn every_issue_is_reported_at_once() {
    let c = config(json!({"account": "a/b", "token": "x", "mode": "compatible", "max_body_bytes": 10}));
    let fields: Vec<&str> = c.validate().unwrap_err().iter().map(|i| i.field).collect();
    assert_eq!(
        fields,
        ["account", "token", "max_body_bytes", "app_id", "encoding_aes_key"]
    );
    let bad_key = config(json!({"account": "a", "token": "abc", "app_id": "wx1", "encoding_aes_key": "short"}));
    let issues = bad_key.validate().unwrap_err();
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].field, "encoding_aes_key");
}

#[test]
fn unknown_keys_are_refused() {
    let parsed = serde_json::from_value::<WechatConfig>(json!({"account": "a", "token": "abc", "tokne": "x"}));
    assert!(parsed.is_err());
}

#[test]
fn secrets_stay_out_of_debug() {
    let c = config(json!({"account": "a", "token": "sekrittoken", "app_id": "wx1", "encoding_aes_key": KEY}));
    let shown = format!("{c:?} {:?}", c.validate().unwrap());
    assert!(!shown.contains("sekrittoken"), "{shown}");
    assert!(!shown.contains(KEY), "{shown}");
}
