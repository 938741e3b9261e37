//! Meaning: maps the [`Fields`] of one callback message or event onto the canonical [`Envelope`].
//!
//! This module owns the field-by-field mapping, the idempotency key and what goes to `Source::raw`. It never
//! rejects a message for being of an unknown kind (unknown `MsgType`s and `Event`s become [`Content::Event`]
//! with every field kept), and it never drops data: a field leaves `raw` only when the canonical form
//! reproduces its text exactly, so `qrscene_123` (key `123`), `SCAN` (kind `scan`) and `119.385040` keep their
//! original text in `raw`. An absent or empty `EventKey` gives `key: None`. It does not verify or decrypt
//! anything; [`crate::callback`] does that first.
//!
//! Idempotency keys: `(account, FromUserName, MsgId)` for messages; `(account, FromUserName, CreateTime, Event,
//! EventKey)` for events, plus `MsgID` for the job-finish events that carry one.

use chrono::{DateTime, Utc};
use protofuse_model::{Content, Direction, Envelope, IdempotencyKey, MediaRef, Party, Protocol, Role, Source};

use crate::xml::{Fields, Node};

/// The channel every WeChat envelope runs on.
pub const CHANNEL: &str = "wechat";
/// WeChat prefixes the scene of a parametric QR code with this on `subscribe` (not on `SCAN`).
const QR_SCENE_PREFIX: &str = "qrscene_";

/// Why a message's fields cannot become an envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FieldError {
    /// A field the message kind cannot do without is absent or empty.
    #[error("required field <{0}> is missing or empty")]
    Missing(&'static str),
    /// A field is present but its text is not of the expected form.
    #[error("field <{field}> is not {expected}")]
    Malformed {
        /// The field.
        field: &'static str,
        /// What it should be.
        expected: &'static str,
    },
}

/// Maps one parsed message or event of `account` (protofuse's account name) onto an envelope.
pub fn to_envelope(fields: &Fields, account: &str) -> Result<Envelope, FieldError> {
    let mut cur = Cursor::new(fields);
    let from = cur
        .take_nonempty("FromUserName")
        .ok_or(FieldError::Missing("FromUserName"))?;
    let msg_type = cur
        .peek("MsgType")
        .filter(|t| !t.is_empty())
        .ok_or(FieldError::Missing("MsgType"))?;
    let create_time = cur.peek("CreateTime").unwrap_or_default();
    let sent_at = cur.take_if("CreateTime", parse_unix_seconds);
    // Messages carry `MsgId`; template/mass-send events spell it `MsgID`.
    let external_id = cur.take_nonempty("MsgId").or_else(|| cur.take_nonempty("MsgID"));
    let is_event = msg_type == "event";

    let content = if is_event {
        cur.take("MsgType");
        event_content(&mut cur)?
    } else {
        message_content(&mut cur, msg_type)?
    };

    let idempotency_key = match (is_event, external_id.as_deref()) {
        (false, Some(msg_id)) => IdempotencyKey::derive(CHANNEL, &[account, &from, msg_id]),
        // Events have no id; `Event` and `EventKey` are part of the key because several events of one user can
        // share a `CreateTime` second (a LOCATION report next to a click). Job-finish events do carry `MsgID`,
        // and two template sends to one user can finish in the same second, so it is appended when present.
        (_, msg_id) => {
            let event = fields.text("Event").unwrap_or(msg_type);
            let event_key = fields.text("EventKey").unwrap_or_default();
            let mut parts = vec![account, from.as_str(), create_time, event, event_key];
            parts.extend(msg_id);
            IdempotencyKey::derive(CHANNEL, &parts)
        }
    };

    Ok(Envelope {
        conversation_id: None,
        channel: CHANNEL.to_owned(),
        direction: Direction::Inbound,
        sender: Party {
            role: Role::Customer,
            external_id: from,
            display_name: None,
        },
        content,
        sent_at,
        source: Source {
            protocol: Protocol::Wechat,
            account: Some(account.to_owned()),
            external_id,
            raw: cur.into_raw(),
        },
        metadata: serde_json::Map::new(),
        idempotency_key,
    })
}

fn message_content(cur: &mut Cursor<'_>, msg_type: &str) -> Result<Content, FieldError> {
    let content = match msg_type {
        "text" => Content::Text {
            text: cur.take("Content").ok_or(FieldError::Missing("Content"))?,
        },
        "image" => Content::Image {
            media: MediaRef {
                url: cur.take_nonempty("PicUrl"),
                media_id: cur.take_nonempty("MediaId"),
                mime_type: None,
            },
        },
        "voice" => Content::Voice {
            media: media_id(cur),
            format: cur.take_nonempty("Format"),
            recognition: cur.take_nonempty("Recognition"),
        },
        "video" | "shortvideo" => Content::Video {
            media: media_id(cur),
            thumb_media_id: cur.take_nonempty("ThumbMediaId"),
            short: msg_type == "shortvideo",
        },
        "location" => Content::Location {
            latitude: cur.take_f64("Location_X")?.ok_or(FieldError::Missing("Location_X"))?,
            longitude: cur.take_f64("Location_Y")?.ok_or(FieldError::Missing("Location_Y"))?,
            scale: cur.take_f64("Scale")?,
            label: cur.take_nonempty("Label"),
        },
        "link" => Content::Link {
            url: cur.take_nonempty("Url").ok_or(FieldError::Missing("Url"))?,
            title: cur.take_nonempty("Title"),
            description: cur.take_nonempty("Description"),
        },
        // Unknown kinds (WeCom's `file`, mini-program cards, future types) are kept, not refused: `MsgType`
        // stays in `raw` so consumers can tell them from events.
        other => {
            return Ok(Content::Event {
                kind: other.to_ascii_lowercase(),
                key: None,
            });
        }
    };
    cur.take("MsgType");
    Ok(content)
}

fn media_id(cur: &mut Cursor<'_>) -> MediaRef {
    MediaRef {
        media_id: cur.take_nonempty("MediaId"),
        ..MediaRef::default()
    }
}

fn event_content(cur: &mut Cursor<'_>) -> Result<Content, FieldError> {
    let event = cur
        .peek("Event")
        .filter(|e| !e.is_empty())
        .ok_or(FieldError::Missing("Event"))?;
    // Event names are mixed-case (`SCAN`, `subscribe`); the canonical kind is lower-case.
    let kind = event.to_ascii_lowercase();
    if kind == event {
        cur.take("Event");
    }
    let key = match kind.as_str() {
        "subscribe" => match cur.peek("EventKey").and_then(|k| k.strip_prefix(QR_SCENE_PREFIX)) {
            Some(scene) => Some(scene.to_owned()).filter(|s| !s.is_empty()),
            None => cur.take_nonempty("EventKey"),
        },
        "kf_create_session" | "kf_close_session" => cur.take_nonempty("KfAccount"),
        "kf_switch_session" => cur.take_nonempty("ToKfAccount"),
        _ => cur.take_nonempty("EventKey"),
    };
    Ok(Content::Event { kind, key })
}

fn parse_unix_seconds(text: &str) -> Option<DateTime<Utc>> {
    let secs: i64 = text.parse().ok()?;
    DateTime::from_timestamp(secs, 0).filter(|_| secs.to_string() == text)
}

/// Reads fields and remembers which were mapped, so the rest can go to `raw`.
struct Cursor<'a> {
    fields: &'a Fields,
    taken: Vec<&'a str>,
}

impl<'a> Cursor<'a> {
    fn new(fields: &'a Fields) -> Self {
        Self {
            fields,
            taken: Vec::new(),
        }
    }

    fn peek(&self, name: &str) -> Option<&'a str> {
        self.fields.text(name)
    }

    /// The field's text, marked as mapped.
    fn take(&mut self, name: &'a str) -> Option<String> {
        self.take_if(name, |t| Some(t.to_owned()))
    }

    /// Empty text means "absent" in WeChat's XML; an empty field stays in `raw` since `None` cannot say it was there.
    fn take_nonempty(&mut self, name: &'a str) -> Option<String> {
        self.take_if(name, |t| (!t.is_empty()).then(|| t.to_owned()))
    }

    /// Converts the field; marks it mapped only when the conversion succeeds.
    fn take_if<T>(&mut self, name: &'a str, convert: impl FnOnce(&str) -> Option<T>) -> Option<T> {
        let value = convert(self.peek(name)?)?;
        self.taken.push(name);
        Some(value)
    }

    /// A decimal field. It is marked mapped only when `f64`'s formatting gives the same text back, so
    /// `119.385040` keeps its trailing zero in `raw`.
    fn take_f64(&mut self, name: &'static str) -> Result<Option<f64>, FieldError> {
        let Some(text) = self.peek(name).filter(|t| !t.trim().is_empty()) else {
            return Ok(None);
        };
        let value: f64 = text.trim().parse().map_err(|_| FieldError::Malformed {
            field: name,
            expected: "a decimal number",
        })?;
        if !value.is_finite() {
            return Err(FieldError::Malformed {
                field: name,
                expected: "a finite decimal number",
            });
        }
        if value.to_string() == text {
            self.taken.push(name);
        }
        Ok(Some(value))
    }

    fn into_raw(self) -> serde_json::Map<String, serde_json::Value> {
        self.fields
            .iter()
            .filter(|(name, _)| !self.taken.contains(name))
            .map(|(name, node): (&str, &Node)| (name.to_owned(), node.to_json()))
            .collect()
    }
}

#[cfg(test)]
mod tests;
