//! Identifiers. Message and conversation ids are UUIDv7, so sorting them sorts by creation time; that is what
//! cursor pagination relies on.

use std::fmt::{self, Write as _};
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new id for the current instant (UUIDv7, monotonic within this process).
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Wraps an existing UUID.
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The underlying UUID.
            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

uuid_id!(
    /// Identifies a stored message. Time-ordered (UUIDv7).
    MessageId
);
uuid_id!(
    /// Identifies a conversation. Time-ordered (UUIDv7).
    ConversationId
);

/// The namespace of keys the importer assigns (`import:<mapping>:<table>:<pk>`).
const IMPORT_SCOPE: &str = "import:";

/// The key that makes storing a message idempotent: the same key is stored once.
///
/// Adapters derive it from what identifies a delivery at its source (for WeChat: the account, the sender and
/// `MsgId`), so a retried delivery maps to the same key. [`IdempotencyKey::derive`] hashes the parts so keys have
/// a fixed length and parts containing separators cannot collide.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Longest key accepted from outside; derived keys are always shorter.
    pub const MAX_LEN: usize = 200;

    /// Derives a key from a scope (usually the protocol name) and the parts that identify a delivery there.
    /// Each part is length-prefixed before hashing, so `("ab", "c")` and `("a", "bc")` differ.
    pub fn derive(scope: &str, parts: &[&str]) -> Self {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part.as_bytes());
        }
        let digest = hasher.finalize();
        let mut key = String::with_capacity(scope.len() + 33);
        key.push_str(scope);
        key.push(':');
        for b in digest.iter().take(16) {
            let _ = write!(key, "{b:02x}");
        }
        Self(key)
    }

    /// The key of the one message answering `message` in `scope` (a bot's reply): `<scope>:<message id>`. Not
    /// hashed, unlike [`IdempotencyKey::derive`]: a message id is fixed-length and time-ordered, so the keys of
    /// replies written together sort together and share the key index's pages instead of each landing on a
    /// random one.
    pub fn answering(scope: &str, message: MessageId) -> Self {
        Self(format!("{scope}:{}", message.as_uuid().simple()))
    }

    /// The key of the message imported from row `pk` of `table` by the importer's mapping `mapping`:
    /// `import:<mapping>:<table>:<pk>`. Readable, so an operator can name it: during a cut-over, the legacy system
    /// posting the same message through an API with this key gets a duplicate instead of a second copy (keys in
    /// this namespace are matched as stored, not scoped by protocol; see [`IdempotencyKey::is_imported`]).
    pub fn imported(mapping: &str, table: &str, pk: i64) -> Self {
        Self(format!("{IMPORT_SCOPE}{mapping}:{table}:{pk}"))
    }

    /// Whether `key`, as a caller presented it, names a message of the importer's namespace.
    pub fn is_imported(key: &str) -> bool {
        key.starts_with(IMPORT_SCOPE)
    }

    /// A key that never collides: for deliveries whose source offers nothing to deduplicate on.
    pub fn unique() -> Self {
        Self(format!("unique:{}", Uuid::now_v7().simple()))
    }

    /// Accepts a key as given (e.g. from storage); rejects empty or over-long keys.
    pub fn parse(key: &str) -> Option<Self> {
        (!key.is_empty() && key.len() <= Self::MAX_LEN).then(|| Self(key.to_owned()))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_creation() {
        let a = MessageId::new();
        let b = MessageId::new();
        assert!(a < b);
        assert!(a.to_string() < b.to_string(), "text order must match creation order");
    }

    #[test]
    fn derived_keys_are_stable_and_unambiguous() {
        let k1 = IdempotencyKey::derive("wechat", &["gh_1", "oUser", "123"]);
        assert_eq!(k1, IdempotencyKey::derive("wechat", &["gh_1", "oUser", "123"]));
        assert_ne!(
            IdempotencyKey::derive("x", &["ab", "c"]),
            IdempotencyKey::derive("x", &["a", "bc"])
        );
        assert!(k1.as_str().starts_with("wechat:"));
        assert!(k1.as_str().len() < IdempotencyKey::MAX_LEN);
    }

    #[test]
    fn parse_rejects_empty_and_long() {
        assert!(IdempotencyKey::parse("").is_none());
        assert!(IdempotencyKey::parse(&"k".repeat(201)).is_none());
        assert!(IdempotencyKey::parse("order-42").is_some());
    }
}
