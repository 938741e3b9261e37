//! The template language shared by responses and outbound webhooks: literal text with `{{ dotted.path }}`
//! placeholders, filled from a JSON context and escaped for the body's format.
//!
//! Templates are parsed once at start-up; [`Template::check`] renders against a sample context so a placeholder
//! that can never resolve is a configuration error, not a surprise at the first request.

use serde::Deserialize;
use serde_json::Value;

/// How placeholder values are escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Escape {
    /// Inside a JSON string (or as a bare number): `"` and control characters escaped.
    #[default]
    Json,
    /// XML text or attribute: `& < > " '` escaped.
    Xml,
    /// `application/x-www-form-urlencoded` value: percent-encoded (after charset encoding by the caller, the
    /// template sees UTF-8; non-ASCII is left for the charset step and encoded as its bytes there).
    Form,
    /// No escaping.
    Text,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Literal(String),
    Value(Vec<String>),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

/// Why a template cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `{{` without `}}`.
    #[error("unclosed placeholder at byte {0}")]
    Unclosed(usize),
    /// `{{ }}`.
    #[error("empty placeholder at byte {0}")]
    Empty(usize),
    /// The placeholder names nothing in the context.
    #[error("unknown placeholder {{{{{0}}}}}")]
    Unknown(String),
}

impl Template {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = text;
        let mut offset = 0;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_owned()));
            }
            let after = &rest[open + 2..];
            let close = after.find("}}").ok_or(TemplateError::Unclosed(offset + open))?;
            let name = after[..close].trim();
            if name.is_empty() {
                return Err(TemplateError::Empty(offset + open));
            }
            parts.push(Part::Value(name.split('.').map(str::to_owned).collect()));
            let consumed = open + 2 + close + 2;
            offset += consumed;
            rest = &rest[consumed..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_owned()));
        }
        Ok(Self { parts })
    }

    /// Renders with `context`. A placeholder whose path is absent renders empty (optional fields); use
    /// [`Template::check`] at start-up to catch paths that can never exist.
    pub fn render(&self, context: &Value, escape: Escape) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Value(path) => {
                    if let Some(value) = lookup(context, path) {
                        push_escaped(&mut out, value, escape);
                    }
                }
            }
        }
        out
    }

    /// Fails on the first placeholder that `sample` (a context with every optional field present) lacks,
    /// except below `open` prefixes (free-form maps such as `message.metadata`).
    pub fn check(&self, sample: &Value, open: &[&str]) -> Result<(), TemplateError> {
        for part in &self.parts {
            if let Part::Value(path) = part
                && lookup(sample, path).is_none()
                && !open.iter().any(|prefix| path.join(".").starts_with(prefix))
            {
                return Err(TemplateError::Unknown(path.join(".")));
            }
        }
        Ok(())
    }
}

fn lookup<'a>(context: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter()
        .try_fold(context, |value, key| value.get(key.as_str()))
        .filter(|v| !v.is_null())
}

fn push_escaped(out: &mut String, value: &Value, escape: Escape) {
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match escape {
        Escape::Text => out.push_str(&text),
        Escape::Json => {
            let quoted = Value::String(text).to_string();
            out.push_str(&quoted[1..quoted.len() - 1]);
        }
        Escape::Xml => {
            for ch in text.chars() {
                match ch {
                    '&' => out.push_str("&amp;"),
                    '<' => out.push_str("&lt;"),
                    '>' => out.push_str("&gt;"),
                    '"' => out.push_str("&quot;"),
                    '\'' => out.push_str("&apos;"),
                    c => out.push(c),
                }
            }
        }
        Escape::Form => {
            for ch in text.chars() {
                match ch {
                    'A'..='Z' | 'a'..='z' | '0'..='9' | '-' | '_' | '.' | '*' => out.push(ch),
                    ' ' => out.push('+'),
                    c if c.is_ascii() => out.push_str(&format!("%{:02X}", c as u32)),
                    // Left as is: the charset step encodes it and percent-escapes its bytes.
                    c => out.push(c),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_with_escaping() {
        let t = Template::parse(r#"{"msg":"{{ m.text }}","n":{{m.n}}}"#).unwrap();
        let ctx = json!({"m": {"text": "say \"hi\"\n", "n": 3}});
        assert_eq!(t.render(&ctx, Escape::Json), r#"{"msg":"say \"hi\"\n","n":3}"#);
        let x = Template::parse("<a>{{m.text}}</a>").unwrap();
        assert_eq!(
            x.render(&json!({"m": {"text": "<b>&"}}), Escape::Xml),
            "<a>&lt;b&gt;&amp;</a>"
        );
        let f = Template::parse("msg={{m}}").unwrap();
        assert_eq!(f.render(&json!({"m": "a b&c"}), Escape::Form), "msg=a+b%26c");
    }

    #[test]
    fn bad_templates_are_caught() {
        assert_eq!(Template::parse("x {{ y"), Err(TemplateError::Unclosed(2)));
        assert_eq!(Template::parse("{{}}"), Err(TemplateError::Empty(0)));
        let t = Template::parse("{{message.idd}}").unwrap();
        assert_eq!(
            t.check(&json!({"message": {"id": 1}}), &[]),
            Err(TemplateError::Unknown("message.idd".to_owned()))
        );
    }
}
