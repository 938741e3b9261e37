//! The answers an adapter gives, in its caller's convention: a status and a body template per outcome class.

use serde::Deserialize;
use serde_json::Value;

use crate::issue::Issue;
use crate::template::{Escape, Template};

/// The outcome classes a caller can be told apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Stored now.
    Stored,
    /// Stored before (same idempotency key); nothing new was written.
    Duplicate,
    /// The request could not be read or mapped, or breaks a rule.
    Invalid,
    /// Authentication failed or a nonce was replayed.
    Unauthorized,
    /// The store is unavailable; the caller should retry.
    Unavailable,
}

/// One answer: HTTP status and body template.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Body template; placeholders: `message.*` (the stored message), `duplicate`, `error.code`,
    /// `error.message`, `adapter`.
    pub body: String,
}

/// `[response]` of an adapter file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResponseConfig {
    /// How placeholder values are escaped: `json`, `xml` or `text`.
    pub escape: Escape,
    /// `Content-Type` of answers; by default from `escape`, with the adapter's charset.
    pub content_type: Option<String>,
    /// Answer for a newly stored message.
    pub stored: Answer,
    /// Answer for a duplicate; the `stored` answer when absent.
    pub duplicate: Option<Answer>,
    /// Answer for a request that cannot be accepted.
    pub invalid: Answer,
    /// Answer for failed authentication.
    pub unauthorized: Answer,
    /// Answer when the store is unavailable.
    pub unavailable: Answer,
}

impl Default for ResponseConfig {
    fn default() -> Self {
        let error = |status| Answer {
            status,
            body: r#"{"ok":false,"error":"{{error.code}}","message":"{{error.message}}"}"#.to_owned(),
        };
        Self {
            escape: Escape::Json,
            content_type: None,
            stored: Answer {
                status: 200,
                body: r#"{"ok":true,"id":"{{message.id}}","duplicate":{{duplicate}}}"#.to_owned(),
            },
            duplicate: None,
            invalid: error(400),
            unauthorized: error(401),
            unavailable: error(503),
        }
    }
}

impl ResponseConfig {
    fn answers(&self) -> [(&'static str, &Answer); 5] {
        [
            ("stored", &self.stored),
            ("duplicate", self.duplicate.as_ref().unwrap_or(&self.stored)),
            ("invalid", &self.invalid),
            ("unauthorized", &self.unauthorized),
            ("unavailable", &self.unavailable),
        ]
    }

    pub(crate) fn issues(&self) -> Vec<Issue> {
        let sample = crate::sample::context();
        let mut issues = Vec::new();
        for (name, answer) in self.answers() {
            if !(100..=599).contains(&answer.status) {
                issues.push(Issue {
                    key: format!("{name}.status"),
                    message: "must be an HTTP status".to_owned(),
                });
            }
            match Template::parse(&answer.body).and_then(|t| t.check(&sample, crate::sample::OPEN)) {
                Ok(()) => {}
                Err(e) => issues.push(Issue {
                    key: format!("{name}.body"),
                    message: e.to_string(),
                }),
            }
        }
        issues
    }
}

/// The parsed answers, ready to render.
#[derive(Debug, Clone)]
pub(crate) struct Responses {
    escape: Escape,
    content_type: String,
    answers: Vec<(u16, Template)>,
}

impl Responses {
    /// Parses validated configuration; `charset` is the label appended to the default content type.
    pub(crate) fn new(config: &ResponseConfig, charset: &str) -> Result<Self, Issue> {
        let mut answers = Vec::new();
        for (name, answer) in config.answers() {
            let template = Template::parse(&answer.body).map_err(|e| Issue {
                key: format!("response.{name}.body"),
                message: e.to_string(),
            })?;
            answers.push((answer.status, template));
        }
        let mime = match config.escape {
            Escape::Json => "application/json",
            Escape::Xml => "application/xml",
            Escape::Form => "application/x-www-form-urlencoded",
            Escape::Text => "text/plain",
        };
        let content_type = config
            .content_type
            .clone()
            .unwrap_or_else(|| format!("{mime}; charset={charset}"));
        Ok(Self {
            escape: config.escape,
            content_type,
            answers,
        })
    }

    /// Status, content type and body text for `class` with `context`.
    pub(crate) fn render(&self, class: Class, context: &Value) -> (u16, &str, String) {
        let index = match class {
            Class::Stored => 0,
            Class::Duplicate => 1,
            Class::Invalid => 2,
            Class::Unauthorized => 3,
            Class::Unavailable => 4,
        };
        let (status, template) = &self.answers[index];
        (*status, &self.content_type, template.render(context, self.escape))
    }
}
