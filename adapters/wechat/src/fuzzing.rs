//! The entry point the cargo-fuzz target (`fuzz/fuzz_targets/callback.rs`) and the corpus replay test share, so
//! that CI on stable checks every kept input through exactly the code the fuzzer ran.
//!
//! The harness plays WeChat: it signs whatever it sends (a fuzzer cannot forge SHA-1, and would never get past
//! the signature check otherwise) and, in the AES cases, encrypts with the account's key, so the fuzzer reaches
//! the XML parser, the AES frame checks and the field mapping. Compiled only for tests and the `fuzzing` feature.

use aes::cipher::{BlockEncryptMut, KeyIvInit, block_padding::NoPadding};
use base64::Engine;
use base64::engine::general_purpose;
use chrono::DateTime;

use crate::callback::{self, CallbackQuery};
use crate::classify::classify;
use crate::config::{WechatConfig, WechatSettings};
use crate::crypto;
use crate::signature;

const TOKEN: &str = "fuzztoken";
const APP_ID: &str = "wx2c2769f8efd9abc2";
const ENCODING_AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const TIMESTAMP: &str = "1409735669";
const NOW: i64 = 1_409_735_669;
const NONCE: &str = "1320562132";

/// Runs one fuzz input through [`callback::decode`]. The first byte picks how the rest is delivered:
/// - `0`: the body of a plaintext-mode request;
/// - `1`: the outer document of a safe-mode request, its `<Encrypt>` text signed as found (any ciphertext);
/// - `2`: a raw AES frame (`random16 ‖ len ‖ msg ‖ appid`, lengths free), padded, encrypted and signed;
/// - `3`: the message of a compatible-mode request, framed by [`crypto::encrypt`].
///
/// Panics only where an invariant breaks: never on hostile input.
pub fn callback(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let (settings, query, body) = match selector % 4 {
        0 => (account("plaintext"), signed_query(None), rest.to_vec()),
        1 => {
            let encrypt = crate::xml::parse(rest)
                .ok()
                .and_then(|fields| fields.text("Encrypt").map(|t| t.trim_ascii().to_owned()));
            let query = signed_query(Some(encrypt.as_deref().unwrap_or_default()));
            (account("safe"), query, rest.to_vec())
        }
        2 => {
            let settings = account("safe");
            let encrypt = encrypt_frame(&settings, rest);
            (settings, signed_query(Some(&encrypt)), envelope(&encrypt))
        }
        _ => {
            let settings = account("compatible");
            let Some(cipher) = settings.cipher() else {
                unreachable!("compatible mode always has a cipher");
            };
            let Ok(encrypt) = crypto::encrypt(&cipher.key, &cipher.app_id, &[7; 16], rest) else {
                return;
            };
            let opened = crypto::decrypt(&cipher.key, &cipher.app_id, &encrypt);
            assert_eq!(
                opened.as_deref().ok(),
                Some(rest),
                "an encrypted frame must decrypt to its message"
            );
            (settings, signed_query(Some(&encrypt)), envelope(&encrypt))
        }
    };
    let now = DateTime::from_timestamp(NOW, 0).unwrap_or_default();
    match callback::decode(&settings, &query, &body, now) {
        Ok(envelope) => assert_eq!(envelope.source.account.as_deref(), Some(settings.account())),
        Err(error) => {
            // Every refusal must map onto a class the transports know how to answer.
            let _ = classify(error).rejection();
        }
    }
}

fn account(mode: &str) -> WechatSettings {
    let config = WechatConfig {
        account: "fuzz".to_owned(),
        token: TOKEN.to_owned(),
        mode: serde_json::from_value(serde_json::Value::String(mode.to_owned())).unwrap_or_default(),
        app_id: Some(APP_ID.to_owned()).filter(|_| mode != "plaintext"),
        encoding_aes_key: Some(ENCODING_AES_KEY.to_owned()).filter(|_| mode != "plaintext"),
        max_body_bytes: crate::xml::MAX_DOCUMENT_BYTES,
        replay_window_secs: 300,
    };
    match config.validate() {
        Ok(settings) => settings,
        Err(issues) => panic!("the fuzz account is valid: {issues:?}"),
    }
}

fn signed_query(encrypt: Option<&str>) -> CallbackQuery {
    CallbackQuery {
        signature: Some(signature::signature(TOKEN, TIMESTAMP, NONCE)),
        timestamp: Some(TIMESTAMP.to_owned()),
        nonce: Some(NONCE.to_owned()),
        encrypt_type: encrypt.map(|_| "aes".to_owned()),
        msg_signature: encrypt.map(|e| signature::msg_signature(TOKEN, TIMESTAMP, NONCE, e)),
        ..CallbackQuery::default()
    }
}

/// PKCS#7 to 32 bytes and AES-256-CBC, as WeChat would, but around a frame the fuzzer wrote byte for byte.
fn encrypt_frame(settings: &WechatSettings, frame: &[u8]) -> String {
    let Some(cipher) = settings.cipher() else {
        unreachable!("safe mode always has a cipher");
    };
    let key = cipher.key.as_bytes();
    let mut iv = [0u8; 16];
    iv.copy_from_slice(&key[..16]);
    let pad = 32 - frame.len() % 32;
    let mut padded = frame.to_vec();
    padded.resize(frame.len() + pad, u8::try_from(pad).unwrap_or(32));
    let ciphertext =
        cbc::Encryptor::<aes::Aes256>::new(key.into(), &iv.into()).encrypt_padded_vec_mut::<NoPadding>(&padded);
    general_purpose::STANDARD.encode(ciphertext)
}

fn envelope(encrypt: &str) -> Vec<u8> {
    format!("<xml><ToUserName><![CDATA[gh_fuzz]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>")
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Replays the kept corpus (seeds and minimised findings) through the fuzz target's entry, on stable.
    #[test]
    fn kept_corpus_replays_without_panicking() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/callback");
        let mut replayed = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            callback(&std::fs::read(&path).unwrap());
            replayed += 1;
        }
        assert!(replayed >= 10, "{} holds only {replayed} inputs", dir.display());
    }

    #[test]
    fn the_harness_reaches_a_decoded_message_in_every_mode() {
        // If signing or encryption in the harness drifted from the codec, the fuzzer would only ever see
        // refusals; this pins that each delivery path can produce a stored message.
        let message =
            b"<xml><ToUserName>gh</ToUserName><FromUserName>u</FromUserName><CreateTime>1409735669</CreateTime>\
<MsgType>text</MsgType><Content>hi</Content><MsgId>1</MsgId></xml>";
        let now = DateTime::from_timestamp(NOW, 0).unwrap();
        let plain = account("plaintext");
        assert!(callback::decode(&plain, &signed_query(None), message, now).is_ok());

        let safe = account("safe");
        let cipher = safe.cipher().unwrap();
        let encrypt = crypto::encrypt(&cipher.key, APP_ID, &[1; 16], message).unwrap();
        let outer = envelope(&encrypt);
        assert!(callback::decode(&safe, &signed_query(Some(&encrypt)), &outer, now).is_ok());

        let mut frame = vec![1u8; 16];
        frame.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
        frame.extend_from_slice(message);
        frame.extend_from_slice(APP_ID.as_bytes());
        let raw = encrypt_frame(&safe, &frame);
        assert_eq!(raw, encrypt, "a hand-built frame encrypts as the codec's own");
    }
}
