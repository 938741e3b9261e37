//! The shipped example adapters (`config/adapters/*.toml`) validate and decode the requests their systems send.

use std::path::Path;

use protofuse_adapter::{IngestOutcome, Rejection};
use protofuse_legacy::auth::Presented;
use protofuse_legacy::{Class, LegacyAdapter, Reply};
use protofuse_model::{Content, Role};

fn example(name: &str) -> LegacyAdapter {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../config/adapters")
        .join(format!("{name}.toml"));
    let text = std::fs::read_to_string(&path).unwrap();
    LegacyAdapter::from_toml(&text).unwrap_or_else(|issues| panic!("{}: {issues:?}", path.display()))
}

fn gbk(text: &str) -> String {
    let (bytes, _, _) = encoding_rs::GBK.encode(text);
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

#[test]
fn php_gbk_form_maps_to_utf8_canonical_fields() {
    let php = example("php-helpdesk");
    let body = format!(
        "uid=42&msg={}&ts=1700000000&role=1&mid=9001&shop=7",
        gbk("我要退货，订单 A-1")
    );
    let envelope = php
        .decode(Some("application/x-www-form-urlencoded"), body.as_bytes())
        .unwrap();
    assert_eq!(
        envelope.content,
        Content::Text {
            text: "我要退货，订单 A-1".to_owned()
        }
    );
    assert_eq!(envelope.sender.external_id, "42");
    assert_eq!(envelope.sender.role, Role::Customer);
    assert_eq!(envelope.sent_at.unwrap().timestamp(), 1_700_000_000);
    assert_eq!(envelope.source.account.as_deref(), Some("php-helpdesk"));
    assert_eq!(
        envelope.source.raw.get("shop").and_then(|v| v.as_str()),
        Some("7"),
        "unmapped fields are kept"
    );
    assert!(!envelope.source.raw.contains_key("msg"));
    let again = php.decode(None, body.as_bytes()).unwrap();
    assert_eq!(
        envelope.idempotency_key, again.idempotency_key,
        "mid makes retries idempotent"
    );
}

#[test]
fn php_malformed_requests_are_invalid_not_half_mapped() {
    let php = example("php-helpdesk");
    let missing = php.decode(None, format!("msg={}", gbk("你好")).as_bytes()).unwrap_err();
    assert_eq!(missing.rejection(), Rejection::Unprocessable);
    assert!(missing.to_string().contains("uid"), "{missing}");
    let not_gbk = php.decode(None, b"uid=1&msg=%FF%FF").unwrap_err();
    assert!(not_gbk.to_string().contains("GBK"), "{not_gbk}");
    let agent_without_conversation = php.decode(None, b"uid=1&msg=hi&role=2").unwrap_err();
    assert!(
        agent_without_conversation.to_string().contains("conversation_id"),
        "{agent_without_conversation}"
    );
    let bad_role = php.decode(None, b"uid=1&msg=hi&role=9").unwrap_err();
    assert!(bad_role.to_string().contains("sender.role"), "{bad_role}");
}

#[test]
fn java_crm_json_with_hmac() {
    let crm = example("java-crm");
    let body = br#"{"header":{"appId":"crm","requestId":"r-1"},"body":{"customerId":"C9","customerName":"Li","content":"where is my parcel","sentAt":1700000000123,"orderNo":"SO-77"}}"#;
    let envelope = crm.decode(Some("application/json"), body).unwrap();
    assert_eq!(envelope.sender.display_name.as_deref(), Some("Li"));
    assert_eq!(
        envelope.metadata.get("order_no").and_then(|v| v.as_str()),
        Some("SO-77")
    );
    assert_eq!(envelope.sent_at.unwrap().timestamp_millis(), 1_700_000_000_123);
    let signature = protofuse_legacy::auth::sign(
        "crm-demo-secret",
        "POST",
        "/legacy/crm/messages",
        "1700000000",
        "n-1",
        body,
    );
    let headers = [
        ("X-Timestamp", "1700000000"),
        ("X-Nonce", "n-1"),
        ("X-Signature", signature.as_str()),
    ];
    let lookup = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    };
    let request = Presented {
        method: "POST",
        path: "/legacy/crm/messages",
        body,
        now: 1_700_000_010,
    };
    assert_eq!(crm.authenticate(request, lookup).unwrap().as_deref(), Some("n-1"));
    let malformed = crm.decode(None, b"{\"header\":").unwrap_err();
    assert_eq!(malformed.rejection(), Rejection::BadRequest);
}

#[test]
fn dotnet_xml_with_local_time_and_pascal_case_answers() {
    let dotnet = example("dotnet-service");
    let body = "<Message><MessageId>m-1</MessageId><Customer><Id>c-3</Id><FirstName>Ann</FirstName>\
        <LastName>Lee</LastName></Customer><Text>  App 闪退了 &amp; no refund </Text>\
        <SentAt>2024-05-01 08:00:00</SentAt></Message>";
    let envelope = dotnet
        .decode(Some("application/xml; charset=utf-8"), body.as_bytes())
        .unwrap();
    assert_eq!(
        envelope.content,
        Content::Text {
            text: "App 闪退了 & no refund".to_owned()
        }
    );
    assert_eq!(envelope.sender.display_name.as_deref(), Some("Ann Lee"));
    assert_eq!(envelope.sent_at.unwrap().to_rfc3339(), "2024-05-01T00:00:00+00:00");
    let hostile = "<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><Message><Text>&e;</Text></Message>";
    assert!(dotnet.decode(None, hostile.as_bytes()).is_err());

    let message = envelope.into_message(Default::default(), Default::default(), chrono::Utc::now());
    let outcome = IngestOutcome {
        message,
        duplicate: false,
    };
    let ok = dotnet.respond(Reply::Accepted(&outcome));
    assert_eq!(ok.status, 200);
    let body: serde_json::Value = serde_json::from_slice(&ok.body).unwrap();
    assert_eq!(body["Code"], 0);
    assert_eq!(body["Message"], "OK");
    let refused = dotnet.respond(Reply::Refused {
        class: Class::Invalid,
        code: "invalid_message",
        message: "a \"quote\"",
    });
    let body: serde_json::Value = serde_json::from_slice(&refused.body).unwrap();
    assert_eq!(
        (refused.status, body["Message"].as_str()),
        (400, Some("a \"quote\"")),
        "escaped into valid JSON"
    );
}

#[test]
fn bad_files_report_every_problem_with_its_key() {
    let text = r#"
        name = "bad one"
        path = "/v1/messages"
        format = "json"
        [fields]
        "content.txt" = { from = "msg" }
        "sender.external_id" = { from = "uid" }
        "sent_at" = { from = "/ts", transform = "datetime", utc_offset = "Beijing" }
        [response]
        stored = { status = 200, body = '{"id":"{{message.idd}}"}' }
    "#;
    let issues = LegacyAdapter::from_toml(text).unwrap_err();
    let keys: Vec<_> = issues.iter().map(|i| i.key.as_str()).collect();
    for expected in [
        "name",
        "path",
        "fields.\"content.txt\"",
        "fields.\"sender.external_id\".from",
        "fields.\"sent_at\".utc_offset",
        "fields.\"content.text\"",
        "response.stored.body",
    ] {
        assert!(keys.contains(&expected), "missing {expected} in {keys:?}");
    }
    let unknown_transform = LegacyAdapter::from_toml(
        "name='x'\npath='/x'\nformat='form'\n[fields]\n\"content.text\"={from='m',transform='rot13'}\n",
    )
    .unwrap_err();
    assert!(unknown_transform[0].message.contains("rot13"), "{unknown_transform:?}");
}
