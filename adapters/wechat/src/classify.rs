//! [`classify`]: a callback failure mapped onto the refusal class every transport answers alike.
//!
//! Never reveals, through the class or text of a [`DecodeError`], which decryption check failed (padding,
//! length, AppID), so a client cannot use the endpoint as a padding oracle; the typed [`CallbackError`] stays
//! available to the caller's logs.

use protofuse_adapter::DecodeError;

use crate::callback::CallbackError;
use crate::xml::XmlError;

/// Maps a callback failure onto the class every transport answers alike.
pub fn classify(error: CallbackError) -> DecodeError {
    match error {
        CallbackError::TooLarge { limit, .. } => DecodeError::TooLarge { limit },
        CallbackError::Xml(XmlError::TooLarge { limit, .. }) => DecodeError::TooLarge { limit },
        CallbackError::MissingParam(_) => DecodeError::Unauthenticated("signature parameters missing"),
        CallbackError::Signature(_) => DecodeError::Unauthenticated("signature check failed"),
        CallbackError::ModeMismatch { .. } | CallbackError::MissingEncrypt => {
            DecodeError::Unauthenticated("request does not use the account's encryption mode")
        }
        CallbackError::Crypto(_) => DecodeError::Unauthenticated("message decryption failed"),
        CallbackError::Xml(e) => DecodeError::Malformed {
            format: "XML",
            reason: e.to_string(),
        },
        CallbackError::Fields(e) => DecodeError::Invalid(e.to_string()),
        CallbackError::Validation(e) => DecodeError::Validation(e),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use protofuse_adapter::Rejection;
    use protofuse_model::Protocol;
    use serde_json::json;

    use super::*;
    use crate::callback::{self, CallbackQuery};
    use crate::config::{WechatConfig, WechatSettings};
    use crate::vectors::{crypto, field};

    fn settings() -> WechatSettings {
        let v4 = crypto("v4_official_decrypt");
        let config: WechatConfig = serde_json::from_value(json!({
            "account": "main", "token": field(&v4, "token"),
            "app_id": field(&v4, "appid"), "encoding_aes_key": field(&v4, "encoding_aes_key"),
        }))
        .unwrap();
        config.validate().unwrap()
    }

    fn query(msg_signature: &str) -> CallbackQuery {
        let v4 = crypto("v4_official_decrypt");
        CallbackQuery {
            signature: Some(field(&v4, "signature")),
            timestamp: Some(field(&v4, "timestamp")),
            nonce: Some(field(&v4, "nonce")),
            encrypt_type: Some("aes".into()),
            msg_signature: Some(msg_signature.into()),
            ..CallbackQuery::default()
        }
    }

    fn decode(msg_signature: &str, body: &[u8]) -> Result<protofuse_model::Envelope, DecodeError> {
        let now = chrono::Utc.timestamp_opt(1_409_735_669, 0).unwrap();
        callback::decode(&settings(), &query(msg_signature), body, now).map_err(classify)
    }

    #[test]
    fn decodes_the_official_sample() {
        let good = field(&crypto("v4_official_decrypt"), "msg_signature");
        let envelope = decode(&good, field(&crypto("v4_official_decrypt"), "compat_body").as_bytes()).unwrap();
        assert_eq!(envelope.source.account.as_deref(), Some("main"));
        assert_eq!(envelope.source.protocol, Protocol::Wechat);
    }

    #[test]
    fn refusals_are_classified() {
        let body = field(&crypto("v4_official_decrypt"), "compat_body");
        let err = decode(&"0".repeat(40), body.as_bytes()).unwrap_err();
        assert_eq!(err.rejection(), Rejection::Unauthorized);
        let good = field(&crypto("v4_official_decrypt"), "msg_signature");
        assert_eq!(
            decode(&good, &vec![b' '; 70_000]).unwrap_err().rejection(),
            Rejection::PayloadTooLarge
        );
    }

    #[test]
    fn decryption_failures_all_look_alike() {
        let a = classify(CallbackError::Crypto(crate::crypto::CryptoError::Padding)).to_string();
        let b = classify(CallbackError::Crypto(crate::crypto::CryptoError::AppIdMismatch)).to_string();
        assert_eq!(a, b);
    }
}
