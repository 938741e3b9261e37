use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use proptest::prelude::*;

use super::*;
use crate::vectors::{crypto, field};

fn official() -> (AesKey, String, serde_json::Value) {
    let v4 = crypto("v4_official_decrypt");
    let key = AesKey::from_encoding_aes_key(&field(&v4, "encoding_aes_key")).unwrap();
    (key, field(&v4, "appid"), v4)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Encrypts a raw frame as-is, to build ciphertexts a well-behaved encryptor would never produce.
fn encrypt_frame(key: &AesKey, frame: &[u8]) -> String {
    let ct = Aes256CbcEnc::new(key.as_bytes().into(), &key.iv().into()).encrypt_padded_vec_mut::<NoPadding>(frame);
    STANDARD.encode(ct)
}

#[test]
fn key_with_trailing_bits_decodes_to_the_official_bytes() {
    let (key, _, v4) = official();
    assert_eq!(hex(key.as_bytes()), field(&v4, "aes_key_hex"));
    assert_eq!(hex(&key.iv()), field(&v4, "iv_hex"));
    assert_eq!(format!("{key:?}"), "AesKey(<redacted>)");
}

#[test]
fn bad_keys_are_typed_errors() {
    assert_eq!(
        AesKey::from_encoding_aes_key("short"),
        Err(CryptoError::KeyLength { len: 5 })
    );
    let bad_char = format!("{}!", "a".repeat(42));
    assert_eq!(AesKey::from_encoding_aes_key(&bad_char), Err(CryptoError::KeyBase64));
    let multibyte = format!("{}é", "a".repeat(42));
    assert_eq!(AesKey::from_encoding_aes_key(&multibyte), Err(CryptoError::KeyBase64));
}

#[test]
fn official_sample_decrypts_to_the_exact_plaintext() {
    let (key, app_id, v4) = official();
    let msg = decrypt(&key, &app_id, &field(&v4, "encrypt")).unwrap();
    assert_eq!(msg.len(), 280);
    assert_eq!(String::from_utf8(msg).unwrap(), field(&v4, "expected_plaintext"));
}

#[test]
fn official_sample_encrypts_byte_for_byte_with_its_prefix() {
    let (key, app_id, v4) = official();
    let random: [u8; 16] = field(&v4, "random_prefix").as_bytes().try_into().unwrap();
    let text = encrypt(&key, &app_id, &random, field(&v4, "expected_plaintext").as_bytes()).unwrap();
    assert_eq!(text, field(&v4, "encrypt"));
}

#[test]
fn surrounding_whitespace_is_ignored() {
    let (key, app_id, v4) = official();
    let padded = format!("\n  {}\t\n", field(&v4, "encrypt"));
    assert!(decrypt(&key, &app_id, &padded).is_ok());
}

#[test]
fn wrong_appid_is_refused() {
    let (key, _, v4) = official();
    assert_eq!(
        decrypt(&key, "wx0000000000000000", &field(&v4, "encrypt")),
        Err(CryptoError::AppIdMismatch)
    );
    assert_eq!(
        decrypt(&key, "", &field(&v4, "encrypt")),
        Err(CryptoError::AppIdMismatch)
    );
}

#[test]
fn garbage_base64_and_bad_lengths_are_refused() {
    let (key, app_id, _) = official();
    assert_eq!(
        decrypt(&key, &app_id, "not base64 at all!"),
        Err(CryptoError::CiphertextBase64)
    );
    assert_eq!(
        decrypt(&key, &app_id, ""),
        Err(CryptoError::CiphertextLength { len: 0 })
    );
    let sixteen = STANDARD.encode([0u8; 16]);
    assert_eq!(
        decrypt(&key, &app_id, &sixteen),
        Err(CryptoError::CiphertextLength { len: 16 })
    );
}

#[test]
fn bad_padding_is_refused() {
    let (key, app_id, _) = official();
    let mut frame = [7u8; 64];
    frame[63] = 0;
    assert_eq!(
        decrypt(&key, &app_id, &encrypt_frame(&key, &frame)),
        Err(CryptoError::Padding)
    );
    frame[63] = 33;
    assert_eq!(
        decrypt(&key, &app_id, &encrypt_frame(&key, &frame)),
        Err(CryptoError::Padding)
    );
    // A 16-byte PKCS#7 pad is not a 32-byte one: the pad bytes disagree.
    frame[63] = 3;
    frame[62] = 3;
    frame[61] = 9;
    assert_eq!(
        decrypt(&key, &app_id, &encrypt_frame(&key, &frame)),
        Err(CryptoError::Padding)
    );
}

#[test]
fn short_frames_and_lying_length_fields_are_refused() {
    let (key, app_id, _) = official();
    // 32 bytes of pad 32: nothing left, not even the header.
    assert_eq!(
        decrypt(&key, &app_id, &encrypt_frame(&key, &[32u8; 32])),
        Err(CryptoError::FrameTooShort { len: 0 })
    );
    let mut frame = vec![0u8; 16];
    frame.extend_from_slice(&1000u32.to_be_bytes());
    frame.extend_from_slice(b"hello");
    frame.resize(32, 7);
    assert_eq!(
        decrypt(&key, &app_id, &encrypt_frame(&key, &frame)),
        Err(CryptoError::MessageLength {
            declared: 1000,
            available: 5
        })
    );
}

#[test]
fn length_field_counts_utf8_bytes() {
    let (key, app_id, _) = official();
    let msg = "<xml><Content><![CDATA[你好，世界]]></Content></xml>";
    let text = encrypt(&key, &app_id, &[9u8; 16], msg.as_bytes()).unwrap();
    let frame = Aes256CbcDec::new(key.as_bytes().into(), &key.iv().into())
        .decrypt_padded_vec_mut::<NoPadding>(&STANDARD.decode(&text).unwrap())
        .unwrap();
    assert_eq!(frame[16..20], u32::try_from(msg.len()).unwrap().to_be_bytes());
    assert_eq!(decrypt(&key, &app_id, &text).unwrap(), msg.as_bytes());
}

#[test]
fn every_pad_length_round_trips() {
    let (key, app_id, _) = official();
    for len in 0..=64 {
        let msg = vec![b'x'; len];
        let text = encrypt(&key, &app_id, &[0xA5; 16], &msg).unwrap();
        assert_eq!(decrypt(&key, &app_id, &text).unwrap(), msg, "len {len}");
    }
}

proptest! {
    #[test]
    fn round_trips_with_any_prefix(
        key in any::<[u8; 32]>(),
        random in any::<[u8; 16]>(),
        app_id in "[a-z0-9]{0,24}",
        msg in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let key = AesKey::from_bytes(key);
        let text = encrypt(&key, &app_id, &random, &msg).unwrap();
        prop_assert_eq!(decrypt(&key, &app_id, &text).unwrap(), msg);
    }

    #[test]
    fn decrypt_never_panics(text in "\\PC{0,200}", blocks in proptest::collection::vec(any::<[u8; 32]>(), 0..6)) {
        let key = AesKey::from_bytes([3; 32]);
        let _ = decrypt(&key, "wx", &text);
        let _ = decrypt(&key, "wx", &STANDARD.encode(blocks.concat()));
    }
}
