//! What a message says. A tagged union: the JSON form carries `"type"` next to the variant's fields.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where a media item can be fetched. Sources differ: WeChat gives a `media_id` valid for a few days, web
/// channels give a URL. At least one of the two is present.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MediaRef {
    /// A URL the media can be downloaded from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The source platform's media identifier (e.g. WeChat `MediaId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_id: Option<String>,
    /// MIME type when known, e.g. `image/jpeg`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
}

impl MediaRef {
    fn is_resolvable(&self) -> bool {
        self.url.as_deref().is_some_and(|u| !u.is_empty()) || self.media_id.as_deref().is_some_and(|m| !m.is_empty())
    }
}

/// The content of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Content {
    /// Plain text.
    Text {
        /// The text, UTF-8.
        text: String,
    },
    /// A picture.
    Image {
        /// Where the picture is.
        #[serde(flatten)]
        media: MediaRef,
    },
    /// A voice clip.
    Voice {
        /// Where the clip is.
        #[serde(flatten)]
        media: MediaRef,
        /// Audio format as the source names it (e.g. `amr`, `speex`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        format: Option<String>,
        /// Speech recognized by the source platform, when it provides it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        recognition: Option<String>,
    },
    /// A video clip (including WeChat short videos).
    Video {
        /// Where the clip is.
        #[serde(flatten)]
        media: MediaRef,
        /// The source's id of a thumbnail image.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        thumb_media_id: Option<String>,
        /// `true` for short videos (WeChat `shortvideo`).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        short: bool,
    },
    /// A geographic location shared by the sender.
    Location {
        /// Latitude in degrees (WGS-84 unless the source says otherwise).
        latitude: f64,
        /// Longitude in degrees.
        longitude: f64,
        /// Map zoom level, when the source gives one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scale: Option<f64>,
        /// A human-readable place name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
    },
    /// A link to a page.
    Link {
        /// The page's URL.
        url: String,
        /// The link's title.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title: Option<String>,
        /// The link's description.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
    },
    /// An attached file.
    File {
        /// Where the file is.
        #[serde(flatten)]
        media: MediaRef,
        /// The file's name as the sender gave it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// Size in bytes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        size: Option<u64>,
    },
    /// Something that happened rather than something said: a follow, a menu click, a session switch.
    Event {
        /// The event's kind as the source names it, lower-cased (e.g. `subscribe`, `click`, `kf_close_session`).
        kind: String,
        /// The event's key or argument (e.g. the menu key, the QR scene), when there is one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
    },
}

impl Content {
    /// The variant's tag as it appears in JSON (`"text"`, `"image"`, ...). Stored as an indexed column.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Text { .. } => "text",
            Self::Image { .. } => "image",
            Self::Voice { .. } => "voice",
            Self::Video { .. } => "video",
            Self::Location { .. } => "location",
            Self::Link { .. } => "link",
            Self::File { .. } => "file",
            Self::Event { .. } => "event",
        }
    }

    /// Checks what the type system cannot: non-empty text, resolvable media, coordinates in range.
    pub fn validate(&self) -> Result<(), &'static str> {
        match self {
            Self::Text { text } if text.is_empty() => Err("content.text must not be empty"),
            Self::Image { media }
            | Self::Voice { media, .. }
            | Self::Video { media, .. }
            | Self::File { media, .. }
                if !media.is_resolvable() =>
            {
                Err("media content needs a url or a media_id")
            }
            Self::Location {
                latitude, longitude, ..
            } if !(-90.0..=90.0).contains(latitude) || !(-180.0..=180.0).contains(longitude) => {
                Err("content.latitude/longitude out of range")
            }
            Self::Link { url, .. } if url.is_empty() => Err("content.url must not be empty"),
            Self::Event { kind, .. } if kind.is_empty() => Err("content.kind must not be empty"),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tagged_json_round_trips() {
        let voice = Content::Voice {
            media: MediaRef {
                media_id: Some("m1".into()),
                ..MediaRef::default()
            },
            format: Some("amr".into()),
            recognition: Some("你好".into()),
        };
        let value = serde_json::to_value(&voice).unwrap();
        assert_eq!(
            value,
            json!({"type": "voice", "media_id": "m1", "format": "amr", "recognition": "你好"})
        );
        assert_eq!(serde_json::from_value::<Content>(value).unwrap(), voice);
    }

    #[test]
    fn unknown_type_is_an_error() {
        assert!(serde_json::from_value::<Content>(json!({"type": "hologram"})).is_err());
    }

    #[test]
    fn validation_catches_what_types_cannot() {
        assert!(Content::Text { text: String::new() }.validate().is_err());
        assert!(
            Content::Image {
                media: MediaRef::default()
            }
            .validate()
            .is_err()
        );
        let far = Content::Location {
            latitude: 91.0,
            longitude: 0.0,
            scale: None,
            label: None,
        };
        assert!(far.validate().is_err());
        assert!(Content::Text { text: "hi".into() }.validate().is_ok());
    }
}
