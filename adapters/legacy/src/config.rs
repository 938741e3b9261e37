//! One adapter's configuration file (`config/adapters/<name>.toml`) and its validation into a ready
//! [`LegacyAdapter`](crate::LegacyAdapter).
//!
//! Validation is pure and reports every problem with its key, e.g. `fields."content.txt": unknown canonical
//! field`; the caller prefixes the file name.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::auth::AuthConfig;
use crate::body::Format;
use crate::charset::Charset;
use crate::issue::Issue;
use crate::mapping::{self, FieldSpec, Transform};
use crate::outbound::OutboundConfig;
use crate::response::ResponseConfig;

/// An inbound adapter: a route, how to read its requests, and how to answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdapterConfig {
    /// The adapter's name: the `account` of the messages it accepts and the default channel.
    pub name: String,
    /// HTTP method of the route (`POST` or `GET`).
    #[serde(default = "default_method")]
    pub method: String,
    /// Path of the route, e.g. `/legacy/php/message`; must not start with `/v1/`, `/wechat/` or `/rpc`.
    pub path: String,
    /// Body syntax (`json`, `form`, `xml`) or `query` for GET-style calls.
    pub format: Format,
    /// Body charset (`utf-8`, `gbk`, `gb18030`, `big5`, `latin1`, `declared`).
    #[serde(default)]
    pub charset: Charset,
    /// Caller authentication.
    #[serde(default = "default_auth")]
    pub auth: AuthConfig,
    /// Canonical field → how to fill it.
    pub fields: BTreeMap<String, FieldSpec>,
    /// The answers, in the caller's convention.
    #[serde(default)]
    pub response: ResponseConfig,
    /// The reverse direction: how to deliver canonical messages to this system, if it wants them.
    pub outbound: Option<OutboundConfig>,
}

fn default_method() -> String {
    "POST".to_owned()
}

fn default_auth() -> AuthConfig {
    AuthConfig::None
}

const RESERVED_PREFIXES: &[&str] = &["/v1/", "/wechat/", "/web/", "/rpc", "/healthz", "/readyz", "/metrics"];

impl AdapterConfig {
    /// Every rule the types cannot express.
    pub(crate) fn issues(&self) -> Vec<Issue> {
        let mut issues = Vec::new();
        let mut push = |key: String, message: String| issues.push(Issue { key, message });
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            push(
                "name".to_owned(),
                "must be non-empty ASCII letters, digits, - or _".to_owned(),
            );
        }
        if !matches!(self.method.as_str(), "POST" | "GET" | "PUT") {
            push("method".to_owned(), "must be POST, PUT or GET".to_owned());
        }
        let plain = self
            .path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/-_.".contains(c));
        if !plain || !self.path.starts_with('/') || RESERVED_PREFIXES.iter().any(|p| self.path.starts_with(p)) {
            push(
                "path".to_owned(),
                format!("must be / followed by letters, digits, /-_. and not start with any of {RESERVED_PREFIXES:?}"),
            );
        }
        for (target, spec) in &self.fields {
            for (key, message) in self.field_issues(target, spec) {
                push(key, message);
            }
        }
        if !self.fields.contains_key("sender.external_id") {
            push("fields.\"sender.external_id\"".to_owned(), "must be mapped".to_owned());
        }
        if !self.fields.contains_key("content.text") && !self.fields.contains_key("content.type") {
            push(
                "fields.\"content.text\"".to_owned(),
                "must be mapped (or content.type for other content)".to_owned(),
            );
        }
        for issue in self.response.issues() {
            push(format!("response.{}", issue.key), issue.message);
        }
        if let Some(outbound) = &self.outbound {
            for issue in outbound.issues() {
                push(format!("outbound.{}", issue.key), issue.message);
            }
        }
        issues
    }

    /// Problems of one field mapping, as (key, message).
    fn field_issues(&self, target: &str, spec: &FieldSpec) -> Vec<(String, String)> {
        let mut issues = Vec::new();
        let mut push = |key: String, message: String| issues.push((key, message));
        let key = format!("fields.{target:?}");
        if !mapping::is_target(target) {
            push(
                key.clone(),
                format!(
                    "unknown canonical field; expected one of {:?} or metadata.<key>",
                    mapping::TARGETS
                ),
            );
        }
        let sources = [spec.from.is_some(), spec.value.is_some(), spec.concat.is_some()];
        if sources.iter().filter(|s| **s).count() > 1 {
            push(key.clone(), "set only one of from, value, concat".to_owned());
        }
        if sources.iter().all(|s| !s) && spec.default.is_none() {
            push(key.clone(), "needs from, value, concat or default".to_owned());
        }
        if let (Format::Json, Some(from)) = (self.format, &spec.from)
            && !from.starts_with('/')
        {
            push(
                format!("{key}.from"),
                format!("{from:?} is not a JSON pointer (they start with /)"),
            );
        }
        if spec.transform == Some(Transform::Datetime)
            && let Some(offset) = &spec.utc_offset
            && let Err(e) = mapping::parse_offset(offset)
        {
            push(format!("{key}.utc_offset"), e);
        }
        if spec.transform != Some(Transform::Datetime) && (spec.format.is_some() || spec.utc_offset.is_some()) {
            push(
                key,
                "format and utc_offset apply only to transform = \"datetime\"".to_owned(),
            );
        }
        issues
    }
}
