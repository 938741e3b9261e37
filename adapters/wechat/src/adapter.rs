//! [`WechatAdapter`]: the [`Adapter`] implementation the transport mounts on `/wechat/{account}`, and the
//! mapping of this crate's errors onto the shared [`DecodeError`] classes.
//!
//! This module owns only the glue: account lookup and error classification. It never reveals, through the
//! class or text of a [`DecodeError`], which decryption check failed (padding, length, AppID), so a client
//! cannot use the endpoint as a padding oracle; the typed cause stays available to logs via
//! [`crate::callback::open`].

use bytes::Bytes;
use protofuse_adapter::{Adapter, DecodeCx, DecodeError, IngestOutcome};
use protofuse_model::{Envelope, Protocol};

use crate::callback::{self, CallbackError, CallbackQuery};
use crate::config::WechatSettings;
use crate::reply::SUCCESS;
use crate::xml::XmlError;

/// One POST to the callback URL, as the transport received it.
#[derive(Debug, Clone, Default)]
pub struct WechatCallback {
    /// The parsed query string.
    pub query: CallbackQuery,
    /// The raw body.
    pub body: Bytes,
}

/// The WeChat Official Account codec for a fixed set of accounts, chosen per request by
/// [`DecodeCx::account`].
///
/// The acknowledgement is always [`SUCCESS`]: WeChat retries anything else it does not understand, and a
/// duplicate must be acknowledged exactly like the original. Passive replies with content are rendered by the
/// caller with [`crate::reply`] (and sealed with [`crate::secure`]) since they depend on more than the
/// ingest outcome.
#[derive(Debug, Clone, Default)]
pub struct WechatAdapter {
    accounts: Vec<WechatSettings>,
}

impl WechatAdapter {
    /// An adapter serving `accounts`. Names should be unique (the root config checks); if not, the first wins.
    pub fn new(accounts: impl IntoIterator<Item = WechatSettings>) -> Self {
        Self {
            accounts: accounts.into_iter().collect(),
        }
    }

    /// The settings of the account named `name`.
    pub fn account(&self, name: &str) -> Option<&WechatSettings> {
        self.accounts.iter().find(|a| a.account() == name)
    }

    /// The GET URL verification for `cx.account`: the `echostr` to answer with, once the signature holds.
    pub fn verify_url(&self, query: &CallbackQuery, cx: &DecodeCx<'_>) -> Result<String, DecodeError> {
        let settings = self.settings_for(cx)?;
        callback::verify_url(settings, query, cx.now.timestamp())
            .map(str::to_owned)
            .map_err(classify)
    }

    fn settings_for(&self, cx: &DecodeCx<'_>) -> Result<&WechatSettings, DecodeError> {
        let name = cx
            .account
            .ok_or(DecodeError::Unauthenticated("no wechat account in the request path"))?;
        self.account(name)
            .ok_or(DecodeError::Unauthenticated("unknown wechat account"))
    }
}

impl Adapter for WechatAdapter {
    type Inbound = WechatCallback;
    type Ack = &'static str;

    fn protocol(&self) -> Protocol {
        Protocol::Wechat
    }

    fn decode(&self, request: WechatCallback, cx: &DecodeCx<'_>) -> Result<Vec<Envelope>, DecodeError> {
        let settings = self.settings_for(cx)?;
        let envelope = callback::decode(settings, &request.query, &request.body, cx.now).map_err(classify)?;
        Ok(vec![envelope])
    }

    fn ack(&self, _outcome: &IngestOutcome) -> &'static str {
        SUCCESS
    }
}

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
    use serde_json::json;

    use super::*;
    use crate::config::WechatConfig;
    use crate::vectors::{crypto, field};

    fn adapter() -> WechatAdapter {
        let v4 = crypto("v4_official_decrypt");
        let config: WechatConfig = serde_json::from_value(json!({
            "account": "main", "token": field(&v4, "token"),
            "app_id": field(&v4, "appid"), "encoding_aes_key": field(&v4, "encoding_aes_key"),
        }))
        .unwrap();
        WechatAdapter::new([config.validate().unwrap()])
    }

    fn request(msg_signature: &str) -> WechatCallback {
        let v4 = crypto("v4_official_decrypt");
        let query = CallbackQuery {
            signature: Some(field(&v4, "signature")),
            timestamp: Some(field(&v4, "timestamp")),
            nonce: Some(field(&v4, "nonce")),
            encrypt_type: Some("aes".into()),
            msg_signature: Some(msg_signature.into()),
            ..CallbackQuery::default()
        };
        WechatCallback {
            query,
            body: Bytes::from(field(&v4, "compat_body")),
        }
    }

    fn cx(account: Option<&str>) -> DecodeCx<'_> {
        DecodeCx {
            now: chrono::Utc.timestamp_opt(1_409_735_669, 0).unwrap(),
            account,
        }
    }

    #[test]
    fn decodes_the_official_sample_through_the_trait() {
        let good = field(&crypto("v4_official_decrypt"), "msg_signature");
        let envelopes = adapter().decode(request(&good), &cx(Some("main"))).unwrap();
        assert_eq!(envelopes.len(), 1);
        assert_eq!(envelopes[0].source.account.as_deref(), Some("main"));
        assert_eq!(adapter().protocol(), Protocol::Wechat);
    }

    #[test]
    fn refusals_are_classified() {
        let good = field(&crypto("v4_official_decrypt"), "msg_signature");
        let err = adapter()
            .decode(request(&"0".repeat(40)), &cx(Some("main")))
            .unwrap_err();
        assert_eq!(err.rejection(), Rejection::Unauthorized);
        let err = adapter().decode(request(&good), &cx(Some("other"))).unwrap_err();
        assert_eq!(err.rejection(), Rejection::Unauthorized);
        let err = adapter().decode(request(&good), &cx(None)).unwrap_err();
        assert_eq!(err.rejection(), Rejection::Unauthorized);
        let mut big = request(&good);
        big.body = Bytes::from(vec![b' '; 70_000]);
        assert_eq!(
            adapter().decode(big, &cx(Some("main"))).unwrap_err().rejection(),
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
