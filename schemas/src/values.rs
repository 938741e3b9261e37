//! The plain value types the model's records share.

/// Instants in the model: UTC, serialized as RFC 3339.
pub type Timestamp = chrono::DateTime<chrono::Utc>;

/// Free-form key/value data carried along with a message.
pub type Metadata = serde_json::Map<String, serde_json::Value>;
