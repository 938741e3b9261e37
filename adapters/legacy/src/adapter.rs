//! [`LegacyAdapter`]: one validated adapter file, turning its route's requests into canonical envelopes and
//! outcomes into its caller's answers.

use encoding_rs::Encoding;
use protofuse_adapter::{DecodeError, IngestOutcome};
use protofuse_model::{Envelope, NewMessage, Protocol};
use serde_json::{Map, Value, json};

use crate::auth::{self, AuthError, Presented};
use crate::body::{BodyError, Document};
use crate::config::AdapterConfig;
use crate::issue::Issue;
use crate::outbound::Outbound;
use crate::response::{Class, Responses};

/// A ready adapter.
#[derive(Debug, Clone)]
pub struct LegacyAdapter {
    config: AdapterConfig,
    responses: Responses,
    outbound: Option<Outbound>,
}

/// What a caller is answered: the outcome class and, for refusals, a code and message.
#[derive(Debug, Clone, Copy)]
pub enum Reply<'a> {
    /// Stored (or a duplicate of something stored).
    Accepted(&'a IngestOutcome),
    /// Refused.
    Refused {
        /// The class of refusal.
        class: Class,
        /// A stable code, e.g. `invalid_message`.
        code: &'a str,
        /// Human-readable detail.
        message: &'a str,
    },
}

/// An answer ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type` header.
    pub content_type: String,
    /// Body bytes in the adapter's charset.
    pub body: Vec<u8>,
}

impl LegacyAdapter {
    /// Parses and validates one adapter file; every problem is reported with its key.
    pub fn from_toml(text: &str) -> Result<Self, Vec<Issue>> {
        let config: AdapterConfig = toml_parse(text).map_err(|message| {
            vec![Issue {
                key: "(file)".to_owned(),
                message,
            }]
        })?;
        Self::from_config(config)
    }

    /// Validates a parsed configuration.
    pub fn from_config(config: AdapterConfig) -> Result<Self, Vec<Issue>> {
        let issues = config.issues();
        if !issues.is_empty() {
            return Err(issues);
        }
        let charset = config
            .charset
            .resolve(None)
            .map_or("utf-8", Encoding::name)
            .to_ascii_lowercase();
        let responses = Responses::new(&config.response, &charset).map_err(|i| vec![i])?;
        let outbound = config
            .outbound
            .clone()
            .map(|o| Outbound::new(o, &config.name))
            .transpose()
            .map_err(|i| vec![i])?;
        Ok(Self {
            config,
            responses,
            outbound,
        })
    }

    /// The adapter's name (the `account` of its messages).
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The route's method.
    pub fn method(&self) -> &str {
        &self.config.method
    }

    /// The route's path.
    pub fn path(&self) -> &str {
        &self.config.path
    }

    /// Whether requests carry their fields in the query string rather than the body.
    pub fn reads_query(&self) -> bool {
        self.config.format == crate::body::Format::Query
    }

    /// The outbound renderer, when the adapter has one.
    pub fn outbound(&self) -> Option<&Outbound> {
        self.outbound.as_ref()
    }

    /// Checks the caller's credentials; returns the nonce to remember for HMAC.
    pub fn authenticate<'h>(
        &self,
        request: Presented<'_>,
        header: impl Fn(&str) -> Option<&'h str>,
    ) -> Result<Option<String>, AuthError> {
        auth::verify(&self.config.auth, request, header)
    }

    /// How long a nonce must be remembered (the HMAC window), if the adapter uses nonces.
    pub fn nonce_window(&self) -> Option<std::time::Duration> {
        match &self.config.auth {
            auth::AuthConfig::Hmac { window, .. } => Some(*window),
            _ => None,
        }
    }

    /// Decodes a request body (or the query string for `format = "query"`) into an envelope.
    pub fn decode(&self, content_type: Option<&str>, bytes: &[u8]) -> Result<Envelope, DecodeError> {
        let encoding = self
            .config
            .charset
            .resolve(content_type)
            .map_err(|e| DecodeError::Invalid(e.to_string()))?;
        let doc = Document::parse(self.config.format, encoding, bytes).map_err(|e| match e {
            BodyError::Syntax { format, reason } => DecodeError::Malformed { format, reason },
            other => DecodeError::Invalid(other.to_string()),
        })?;
        let mut message = json!({"channel": self.config.name, "account": self.config.name, "content": {}});
        let mut used = Vec::new();
        for (target, spec) in &self.config.fields {
            used.extend(spec.selectors());
            if let Some(value) = spec
                .apply(target, &doc)
                .map_err(|e| DecodeError::Invalid(e.to_string()))?
            {
                set_path(&mut message, target, value);
            }
        }
        // Unmapped, a legacy caller is a customer writing text: the common case needs no configuration.
        if let Some(content) = message.get_mut("content").and_then(Value::as_object_mut) {
            content
                .entry("type")
                .or_insert_with(|| Value::String("text".to_owned()));
        }
        if let Some(sender) = message.get_mut("sender").and_then(Value::as_object_mut) {
            sender
                .entry("role")
                .or_insert_with(|| Value::String("customer".to_owned()));
        }
        let posted: NewMessage = serde_json::from_value(message).map_err(|e| DecodeError::Invalid(e.to_string()))?;
        let mut envelope = posted.into_envelope(Protocol::LegacyRest, None)?;
        envelope.source.raw = doc.leaves().into_iter().filter(|(k, _)| !used.contains(k)).collect();
        Ok(envelope)
    }

    /// The caller's answer for `reply`.
    pub fn respond(&self, reply: Reply<'_>) -> Rendered {
        let (class, context) = match reply {
            Reply::Accepted(outcome) => (
                if outcome.duplicate {
                    Class::Duplicate
                } else {
                    Class::Stored
                },
                json!({"message": outcome.message, "duplicate": outcome.duplicate, "adapter": self.config.name}),
            ),
            Reply::Refused { class, code, message } => (
                class,
                json!({"error": {"code": code, "message": message}, "adapter": self.config.name}),
            ),
        };
        let (status, content_type, text) = self.responses.render(class, &context);
        let encoding = self.config.charset.resolve(None).unwrap_or(encoding_rs::UTF_8);
        // Answers are best effort in the caller's charset: a character it cannot carry becomes a numeric
        // reference rather than failing the answer.
        let (bytes, _, _) = encoding.encode(&text);
        Rendered {
            status,
            content_type: content_type.to_owned(),
            body: bytes.into_owned(),
        }
    }
}

fn set_path(root: &mut Value, target: &str, value: Value) {
    let mut node = root;
    let mut keys = target.split('.').peekable();
    while let Some(key) = keys.next() {
        let Some(object) = node.as_object_mut() else { return };
        if keys.peek().is_none() {
            object.insert(key.to_owned(), value);
            return;
        }
        node = object
            .entry(key.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

fn toml_parse(text: &str) -> Result<AdapterConfig, String> {
    toml::from_str(text).map_err(|e| e.to_string())
}
