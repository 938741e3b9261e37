use chrono::TimeZone;
use protofuse_model::Content;
use serde_json::json;

use super::*;
use crate::config::WechatConfig;
use crate::vectors::{self, crypto, field};

fn settings(value: serde_json::Value) -> WechatSettings {
    serde_json::from_value::<WechatConfig>(value)
        .unwrap()
        .validate()
        .unwrap()
}

fn query(pairs: &[(&str, &str)]) -> CallbackQuery {
    let map: serde_json::Map<String, serde_json::Value> =
        pairs.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect();
    serde_json::from_value(serde_json::Value::Object(map)).unwrap()
}

/// The official safe-mode sample: account, query and the safe-mode body.
fn safe_sample(mode: &str, app_id: &str) -> (WechatSettings, CallbackQuery, String) {
    let v4 = crypto("v4_official_decrypt");
    let s = settings(json!({
        "account": "main", "token": field(&v4, "token"), "mode": mode,
        "app_id": app_id, "encoding_aes_key": field(&v4, "encoding_aes_key"),
    }));
    let q = query(&[
        ("signature", &field(&v4, "signature")),
        ("timestamp", &field(&v4, "timestamp")),
        ("nonce", &field(&v4, "nonce")),
        ("encrypt_type", "aes"),
        ("msg_signature", &field(&v4, "msg_signature")),
    ]);
    let body = format!(
        "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><Encrypt><![CDATA[{}]]></Encrypt></xml>",
        field(&v4, "encrypt")
    );
    (s, q, body)
}

const V4_NOW: i64 = 1_409_735_669;

#[test]
fn get_verification_echoes_after_checking_the_signature() {
    let v2 = crypto("v2_get_verification");
    let s = settings(json!({"account": "a", "token": field(&v2, "token"), "mode": "plaintext"}));
    let mut q = query(&[
        ("signature", &field(&v2, "signature")),
        ("timestamp", &field(&v2, "timestamp")),
        ("nonce", &field(&v2, "nonce")),
        ("echostr", &field(&v2, "echostr")),
    ]);
    assert_eq!(
        verify_url(&s, &q, 1_714_036_504).unwrap(),
        field(&v2, "expected_response_body")
    );
    q.signature = Some("0".repeat(40));
    assert!(matches!(
        verify_url(&s, &q, 1_714_036_504),
        Err(CallbackError::Signature(SignatureError::Mismatch))
    ));
}

#[test]
fn plaintext_post_is_verified_and_decoded() {
    let v3 = crypto("v3_post_signature");
    let s = settings(json!({"account": "a", "token": field(&v3, "token"), "mode": "plaintext"}));
    let q = query(&[
        ("signature", &field(&v3, "signature")),
        ("timestamp", &field(&v3, "timestamp")),
        ("nonce", &field(&v3, "nonce")),
    ]);
    let now = Utc.timestamp_opt(1_714_037_059, 0).unwrap();
    for doc in vectors::inbound() {
        let env = decode(&s, &q, doc.as_bytes(), now).unwrap();
        assert_eq!(env.source.account.as_deref(), Some("a"));
    }
    let stale = Utc.timestamp_opt(1_714_037_059 + 301, 0).unwrap();
    let err = decode(&s, &q, vectors::inbound()[0].as_bytes(), stale).unwrap_err();
    assert!(matches!(
        err,
        CallbackError::Signature(SignatureError::Stale { skew_secs: 301, .. })
    ));
}

#[test]
fn safe_and_compatible_bodies_decrypt_to_the_official_message() {
    let (s, q, body) = safe_sample("safe", "wx2c2769f8efd9abc2");
    let fields = open(&s, &q, body.as_bytes(), V4_NOW).unwrap();
    assert_eq!(fields.text("Content"), Some("abcdteT"));
    let compat_body = field(&crypto("v4_official_decrypt"), "compat_body");
    let (compat, _, _) = safe_sample("compatible", "wx2c2769f8efd9abc2");
    let env = decode(
        &compat,
        &q,
        compat_body.as_bytes(),
        Utc.timestamp_opt(V4_NOW, 0).unwrap(),
    )
    .unwrap();
    assert_eq!(env.content, Content::Text { text: "abcdteT".into() });
    assert_eq!(env.source.external_id.as_deref(), Some("6054768590064713728"));
}

#[test]
fn compatible_mode_ignores_the_unauthenticated_plaintext_copy() {
    let (s, q, _) = safe_sample("compatible", "wx2c2769f8efd9abc2");
    let forged = field(&crypto("v4_official_decrypt"), "compat_body").replace("abcdteT", "send me money");
    assert_eq!(
        open(&s, &q, forged.as_bytes(), V4_NOW).unwrap().text("Content"),
        Some("abcdteT")
    );
}

#[test]
fn downgrades_and_mode_mix_ups_are_refused() {
    let (s, mut q, _) = safe_sample("safe", "wx2c2769f8efd9abc2");
    q.encrypt_type = None;
    let plain = vectors::inbound()[0];
    assert!(matches!(
        open(&s, &q, plain.as_bytes(), V4_NOW),
        Err(CallbackError::ModeMismatch { found: "plaintext", .. })
    ));
    let (_, q, body) = safe_sample("safe", "wx2c2769f8efd9abc2");
    let plaintext_account = settings(json!({"account": "a", "token": "spamtest", "mode": "plaintext"}));
    assert!(matches!(
        open(&plaintext_account, &q, body.as_bytes(), V4_NOW),
        Err(CallbackError::ModeMismatch { found: "encrypted", .. })
    ));
}

#[test]
fn every_signature_and_parameter_is_required() {
    let (s, q, body) = safe_sample("safe", "wx2c2769f8efd9abc2");
    for (name, clear) in [
        (
            "signature",
            (|q: &mut CallbackQuery| q.signature = None) as fn(&mut CallbackQuery),
        ),
        ("timestamp", |q| q.timestamp = None),
        ("nonce", |q| q.nonce = None),
        ("msg_signature", |q| q.msg_signature = None),
    ] {
        let mut q = q.clone();
        clear(&mut q);
        assert!(matches!(open(&s, &q, body.as_bytes(), V4_NOW), Err(CallbackError::MissingParam(p)) if p == name));
    }
    let mut bad = q.clone();
    bad.msg_signature = Some("5d197aaffba7e9b25a30732f161a50dee96bd5fb".into());
    assert!(matches!(
        open(&s, &bad, body.as_bytes(), V4_NOW),
        Err(CallbackError::Signature(SignatureError::Mismatch))
    ));
    let mut bad = q;
    bad.nonce = Some("1320562133".into());
    assert!(matches!(
        open(&s, &bad, body.as_bytes(), V4_NOW),
        Err(CallbackError::Signature(SignatureError::Mismatch))
    ));
}

#[test]
fn signed_but_undecryptable_bodies_are_typed_errors() {
    let (wrong_app, q, body) = safe_sample("safe", "wx0000000000000000");
    assert!(matches!(
        open(&wrong_app, &q, body.as_bytes(), V4_NOW),
        Err(CallbackError::Crypto(CryptoError::AppIdMismatch))
    ));
    let (s, mut q, _) = safe_sample("safe", "wx2c2769f8efd9abc2");
    let garbage = "%%%not-base64%%%";
    let (ts, nonce) = (q.timestamp.clone().unwrap(), q.nonce.clone().unwrap());
    q.msg_signature = Some(signature::msg_signature("spamtest", &ts, &nonce, garbage));
    let body = format!("<xml><Encrypt>{garbage}</Encrypt></xml>");
    assert!(matches!(
        open(&s, &q, body.as_bytes(), V4_NOW),
        Err(CallbackError::Crypto(CryptoError::CiphertextBase64))
    ));
    assert!(matches!(
        open(&s, &q, b"<xml><ToUserName>x</ToUserName></xml>", V4_NOW),
        Err(CallbackError::MissingEncrypt)
    ));
}

#[test]
fn hostile_bodies_are_refused_before_or_at_parsing() {
    let (s, q, _) = safe_sample("safe", "wx2c2769f8efd9abc2");
    let xxe = br#"<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><Encrypt>&e;</Encrypt></xml>"#;
    assert!(matches!(
        open(&s, &q, xxe, V4_NOW),
        Err(CallbackError::Xml(XmlError::Doctype))
    ));
    let huge = vec![b' '; s.max_body_bytes() + 1];
    assert!(matches!(
        open(&s, &q, &huge, V4_NOW),
        Err(CallbackError::TooLarge { .. })
    ));
    // An unsigned request is refused before its body is even looked at.
    let mut unsigned = q;
    unsigned.signature = Some("0".repeat(40));
    assert!(matches!(
        open(&s, &unsigned, b"\xff\xfe", V4_NOW),
        Err(CallbackError::Signature(_))
    ));
}
