//! Safe-mode reply envelopes: [`seal`] encrypts a rendered reply and wraps it with its `MsgSignature`,
//! `TimeStamp` and `Nonce`; [`unseal`] does what WeChat does with it (for simulators and tests).
//!
//! This module owns the envelope layout. It never draws the random prefix or the nonce and never reads the
//! clock; the caller supplies all three. It never decrypts before the signature has been checked.

use crate::config::Cipher;
use crate::crypto::{self, CryptoError, RANDOM_PREFIX_LEN};
use crate::reply::push_cdata;
use crate::signature::{self, SignatureError};
use crate::xml::{self, XmlError};

/// Why a sealed envelope could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The envelope is not acceptable XML.
    #[error("envelope is not acceptable xml")]
    Xml(#[source] XmlError),
    /// The envelope lacks one of `Encrypt`, `MsgSignature`, `TimeStamp`, `Nonce`.
    #[error("envelope has no <{0}>")]
    Missing(&'static str),
    /// `MsgSignature` does not match.
    #[error("envelope signature check failed")]
    Signature(#[source] SignatureError),
    /// The encrypted reply could not be decrypted.
    #[error("envelope decryption failed")]
    Crypto(#[source] CryptoError),
}

/// Encrypts `reply_xml` and renders the envelope WeChat expects in safe (or, optionally, compatible) mode.
///
/// `timestamp` (Unix seconds) and `nonce` are usually the request's own; `random` must come from a CSPRNG.
/// The layout, including the line breaks, is the one the official samples produce.
pub fn seal(
    cipher: &Cipher,
    token: &str,
    reply_xml: &str,
    random: &[u8; RANDOM_PREFIX_LEN],
    timestamp: i64,
    nonce: &str,
) -> Result<String, CryptoError> {
    let encrypt = crypto::encrypt(&cipher.key, &cipher.app_id, random, reply_xml.as_bytes())?;
    let timestamp = timestamp.to_string();
    let msg_signature = signature::msg_signature(token, &timestamp, nonce, &encrypt);
    let mut out = String::with_capacity(encrypt.len() + 200);
    out.push_str("<xml>\n<Encrypt>");
    push_cdata(&mut out, &encrypt);
    out.push_str("</Encrypt>\n<MsgSignature>");
    push_cdata(&mut out, &msg_signature);
    out.push_str("</MsgSignature>\n<TimeStamp>");
    out.push_str(&timestamp);
    out.push_str("</TimeStamp>\n<Nonce>");
    push_cdata(&mut out, nonce);
    out.push_str("</Nonce>\n</xml>");
    Ok(out)
}

/// Checks a sealed envelope's signature and returns the reply XML inside.
pub fn unseal(cipher: &Cipher, token: &str, envelope: &str) -> Result<Vec<u8>, SealError> {
    let fields = xml::parse(envelope.as_bytes()).map_err(SealError::Xml)?;
    let get = |name| fields.text(name).ok_or(SealError::Missing(name));
    let encrypt = get("Encrypt")?.trim_ascii();
    let expected = signature::msg_signature(token, get("TimeStamp")?, get("Nonce")?, encrypt);
    signature::verify(&expected, get("MsgSignature")?).map_err(SealError::Signature)?;
    crypto::decrypt(&cipher.key, &cipher.app_id, encrypt).map_err(SealError::Crypto)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::AesKey;
    use crate::vectors::{crypto, field};

    fn official() -> (Cipher, String) {
        let v4 = crypto("v4_official_decrypt");
        let key = AesKey::from_encoding_aes_key(&field(&v4, "encoding_aes_key")).unwrap();
        (
            Cipher {
                app_id: field(&v4, "appid"),
                key,
            },
            field(&v4, "token"),
        )
    }

    #[test]
    fn sealed_reply_has_the_official_layout_and_signature() {
        let (cipher, token) = official();
        let v4 = crypto("v4_official_decrypt");
        let random: [u8; 16] = field(&v4, "random_prefix").as_bytes().try_into().unwrap();
        let sealed = seal(
            &cipher,
            &token,
            &field(&v4, "expected_plaintext"),
            &random,
            1_409_735_669,
            "1320562132",
        )
        .unwrap();
        let expected = format!(
            "<xml>\n<Encrypt><![CDATA[{}]]></Encrypt>\n<MsgSignature><![CDATA[{}]]></MsgSignature>\n\
             <TimeStamp>1409735669</TimeStamp>\n<Nonce><![CDATA[1320562132]]></Nonce>\n</xml>",
            field(&v4, "encrypt"),
            field(&v4, "msg_signature"),
        );
        assert_eq!(sealed, expected);
    }

    #[test]
    fn seal_then_unseal_round_trips() {
        let (cipher, token) = official();
        let reply = "<xml><Content><![CDATA[你好]]></Content></xml>";
        let sealed = seal(&cipher, &token, reply, &[7; 16], 1_700_000_000, "42").unwrap();
        assert_eq!(unseal(&cipher, &token, &sealed).unwrap(), reply.as_bytes());
    }

    #[test]
    fn tampered_envelopes_are_refused() {
        let (cipher, token) = official();
        let sealed = seal(&cipher, &token, "<xml/>", &[7; 16], 1_700_000_000, "42").unwrap();
        let retimed = sealed.replace("1700000000", "1700000001");
        assert!(matches!(
            unseal(&cipher, &token, &retimed),
            Err(SealError::Signature(_))
        ));
        assert!(matches!(
            unseal(&cipher, "other", &sealed),
            Err(SealError::Signature(_))
        ));
        let no_nonce = sealed.replace("<Nonce><![CDATA[42]]></Nonce>", "");
        assert!(matches!(
            unseal(&cipher, &token, &no_nonce),
            Err(SealError::Missing("Nonce"))
        ));
        assert!(matches!(
            unseal(&cipher, &token, "<!DOCTYPE x><xml/>"),
            Err(SealError::Xml(_))
        ));
    }
}
