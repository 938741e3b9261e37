//! Hostile input on the WeChat endpoint: every refusal is a clean 4xx, nothing is stored, and the server keeps
//! serving afterwards.

use crate::support::server::TestServer;
use crate::support::wechat::{Oa, text_xml};
use crate::wechat::{PLAIN_TOKEN, history, plain_account, post};

const ATTACKER: &str = "attacker";

/// A named hostile request: the account it targets, its query and body, and the status it must get.
type Case<'a> = (&'static str, &'a Oa, (Vec<(String, String)>, String), u16);

/// A valid safe-mode Encrypt text for a message from the attacker.
fn valid_encrypt(oa: &Oa) -> String {
    let (_, body) = oa.request(&text_xml(ATTACKER, 9001, &"x".repeat(200)));
    let start = body.find("<![CDATA[").map(|i| i + 9).unwrap();
    let start = body[start..].find("<![CDATA[").map(|i| start + i + 9).unwrap();
    let end = body[start..].find("]]>").map(|i| start + i).unwrap();
    body[start..end].to_owned()
}

#[tokio::test]
async fn hostile_requests_are_refused_cleanly_and_store_nothing() {
    let server = TestServer::sqlite(|c| c.wechat.accounts.push(plain_account("plain"))).await;
    let safe = Oa::demo();
    let plain = Oa::plaintext("plain", PLAIN_TOKEN);
    let good = valid_encrypt(&safe);
    let mut cases: Vec<Case<'_>> = Vec::new();

    let huge = format!("<xml>{}</xml>", " ".repeat(70_000));
    cases.push(("oversized body", &plain, (plain.signed_query(), huge), 413));
    let doctype = format!(
        "<!DOCTYPE xml [<!ENTITY boom \"boom\">]>{}",
        text_xml(ATTACKER, 9002, "&boom;")
    );
    cases.push(("doctype and entity", &plain, plain.request(&doctype), 400));
    cases.push(("garbage base64", &safe, safe.sealed_request("!!!not*base64!!!"), 401));
    cases.push((
        "wrong base64 padding",
        &safe,
        safe.sealed_request(&format!("{good}=")),
        401,
    ));
    // 96 bytes of a longer ciphertext: a whole number of blocks whose last byte is message text, not PKCS#7.
    cases.push(("wrong pkcs7 padding", &safe, safe.sealed_request(&good[..128]), 401));
    let other_app = Oa::safe(
        "demo",
        "spamtest",
        "wx0000000000000000",
        "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
    );
    cases.push((
        "wrong appid",
        &safe,
        other_app.request(&text_xml(ATTACKER, 9003, "hi")),
        401,
    ));

    let (mut query, body) = safe.request(&text_xml(ATTACKER, 9004, "hi"));
    query[0].1 = "f".repeat(40);
    cases.push(("bad signature", &safe, (query, body), 401));
    let (mut query, body) = safe.request(&text_xml(ATTACKER, 9005, "hi"));
    query.retain(|(k, _)| k != "signature");
    cases.push(("missing signature", &safe, (query, body), 401));
    let (mut query, body) = safe.request(&text_xml(ATTACKER, 9006, "hi"));
    query.last_mut().unwrap().1 = "0".repeat(40);
    cases.push(("bad msg_signature", &safe, (query, body), 401));
    // A plaintext body sent to a safe-mode account: the downgrade must not work.
    let downgrade = (safe.signed_query(), text_xml(ATTACKER, 9007, "hi"));
    cases.push(("plaintext to a safe account", &safe, downgrade, 401));
    let mut stale = Oa::plaintext("plain", PLAIN_TOKEN).signed_query();
    let old = (chrono::Utc::now().timestamp() - 3600).to_string();
    let nonce = stale[2].1.clone();
    stale[0].1 = protofuse_wechat::signature::signature(PLAIN_TOKEN, &old, &nonce);
    stale[1].1 = old;
    cases.push(("stale timestamp", &plain, (stale, text_xml(ATTACKER, 9008, "hi")), 401));
    let ghost = Oa::plaintext("ghost", PLAIN_TOKEN);
    cases.push((
        "unknown account",
        &ghost,
        ghost.request(&text_xml(ATTACKER, 9009, "hi")),
        401,
    ));

    for (name, oa, request, expected) in cases {
        let (status, body) = post(&server, oa, request).await;
        assert_eq!(status, expected, "{name}: {body}");
        let error: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{name}: {body}"));
        assert!(error["error"]["code"].is_string(), "{name}: {body}");
    }
    let conversations: serde_json::Value = server
        .client
        .get(server.url(&format!("/v1/conversations?customer={ATTACKER}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(conversations["items"], serde_json::json!([]), "nothing stored");

    // Still serving: a genuine message goes through.
    let (status, _) = post(&server, &safe, safe.request(&text_xml(ATTACKER, 9010, "legit"))).await;
    assert_eq!(status, 200);
    assert_eq!(history(&server, ATTACKER, 1).await.len(), 1);
    server.shutdown().await;
}
