//! The reverse direction: rendering a canonical message into the request a legacy backend expects (its
//! format, its charset, optionally signed like inbound HMAC calls). Pure: the dispatcher sends the request and
//! supplies the timestamp and nonce.

use std::collections::BTreeMap;

use encoding_rs::Encoding;
use protofuse_model::Message;
use serde::Deserialize;
use serde_json::json;

use crate::auth;
use crate::charset::{self, Charset, CharsetError};
use crate::issue::Issue;
use crate::template::{Escape, Template};

/// `[outbound]` of an adapter file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundConfig {
    /// Where to deliver, e.g. `http://crm.internal/hooks/protofuse`.
    pub url: String,
    /// HTTP method (default `POST`).
    #[serde(default = "default_method")]
    pub method: String,
    /// `Content-Type` of the request, without charset (appended from `charset`).
    pub content_type: String,
    /// How placeholder values are escaped: `json`, `xml`, `form` or `text`.
    pub escape: Escape,
    /// Charset of the body (not `declared`).
    #[serde(default)]
    pub charset: Charset,
    /// Body template; placeholders `message.*` and `adapter`.
    pub body: String,
    /// Extra static headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Sign requests with HMAC-SHA256 as inbound calls are verified (same canonical string).
    pub sign_secret: Option<String>,
}

fn default_method() -> String {
    "POST".to_owned()
}

impl OutboundConfig {
    pub(crate) fn issues(&self) -> Vec<Issue> {
        let mut issues = Vec::new();
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            issues.push(Issue {
                key: "url".to_owned(),
                message: "must be an http:// or https:// URL".to_owned(),
            });
        }
        if self.charset == Charset::Declared {
            issues.push(Issue {
                key: "charset".to_owned(),
                message: "must name a charset".to_owned(),
            });
        }
        if let Err(e) =
            Template::parse(&self.body).and_then(|t| t.check(&crate::sample::context(), crate::sample::OPEN))
        {
            issues.push(Issue {
                key: "body".to_owned(),
                message: e.to_string(),
            });
        }
        issues
    }
}

/// A request ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRequest {
    /// HTTP method.
    pub method: String,
    /// Target URL.
    pub url: String,
    /// Headers, including `Content-Type` and, when signing, `X-Timestamp`, `X-Nonce`, `X-Signature`.
    pub headers: Vec<(String, String)>,
    /// The body bytes, in the configured charset.
    pub body: Vec<u8>,
}

/// A validated outbound adapter.
#[derive(Debug, Clone)]
pub struct Outbound {
    config: OutboundConfig,
    body: Template,
    encoding: &'static Encoding,
    adapter: String,
}

impl Outbound {
    pub(crate) fn new(config: OutboundConfig, adapter: &str) -> Result<Self, Issue> {
        let issue = |key: &str, message: String| Issue {
            key: format!("outbound.{key}"),
            message,
        };
        let body = Template::parse(&config.body).map_err(|e| issue("body", e.to_string()))?;
        let encoding = config
            .charset
            .resolve(None)
            .map_err(|e| issue("charset", e.to_string()))?;
        Ok(Self {
            config,
            body,
            encoding,
            adapter: adapter.to_owned(),
        })
    }

    /// Renders `message`. `timestamp` (Unix seconds) and `nonce` are used only when signing.
    pub fn render(&self, message: &Message, timestamp: i64, nonce: &str) -> Result<OutboundRequest, CharsetError> {
        let context = json!({"message": message, "adapter": self.adapter});
        let text = self.body.render(&context, self.config.escape);
        let mut body = charset::encode(self.encoding, &text)?;
        if self.config.escape == Escape::Form {
            body = percent_escape_high_bytes(&body);
        }
        let mut headers: Vec<(String, String)> = self.config.headers.clone().into_iter().collect();
        let charset = self.encoding.name().to_ascii_lowercase();
        headers.push((
            "Content-Type".to_owned(),
            format!("{}; charset={charset}", self.config.content_type),
        ));
        if let Some(secret) = &self.config.sign_secret {
            let timestamp = timestamp.to_string();
            let signature = auth::sign(
                secret,
                &self.config.method,
                url_path(&self.config.url),
                &timestamp,
                nonce,
                &body,
            );
            headers.push(("X-Timestamp".to_owned(), timestamp));
            headers.push(("X-Nonce".to_owned(), nonce.to_owned()));
            headers.push(("X-Signature".to_owned(), signature));
        }
        Ok(OutboundRequest {
            method: self.config.method.clone(),
            url: self.config.url.clone(),
            headers,
            body,
        })
    }
}

/// Form values must carry non-ASCII as `%XX` of the charset's bytes; the template left them raw for this step.
fn percent_escape_high_bytes(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for &b in bytes {
        if b >= 0x80 {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        } else {
            out.push(b);
        }
    }
    out
}

/// The path of an absolute URL, without query (what the HMAC canonical string signs).
fn url_path(url: &str) -> &str {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = after_scheme.find('/').map_or("/", |i| &after_scheme[i..]);
    path.split('?').next().unwrap_or("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gbk_form_outbound_is_signed_over_the_exact_bytes() {
        let config: OutboundConfig = toml::from_str(
            r#"
            url = "http://127.0.0.1:9/hook?x=1"
            content_type = "application/x-www-form-urlencoded"
            escape = "form"
            charset = "gbk"
            body = "uid={{message.sender.external_id}}&msg={{message.content.text}}"
            sign_secret = "k"
            "#,
        )
        .unwrap();
        assert!(config.issues().is_empty(), "{:?}", config.issues());
        let outbound = Outbound::new(config, "php").unwrap();
        let mut message = crate::sample::message();
        message.content = protofuse_model::Content::Text {
            text: "退货 & 换货".to_owned(),
        };
        let request = outbound.render(&message, 1_700_000_000, "n").unwrap();
        assert_eq!(request.body, b"uid=u&msg=%CD%CB%BB%F5+%26+%BB%BB%BB%F5".to_vec());
        let signature = auth::sign("k", "POST", "/hook", "1700000000", "n", &request.body);
        assert!(request.headers.contains(&("X-Signature".to_owned(), signature)));
        assert!(request.headers.contains(&(
            "Content-Type".to_owned(),
            "application/x-www-form-urlencoded; charset=gbk".to_owned()
        )));
    }
}
