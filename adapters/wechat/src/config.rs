//! One Official Account's callback settings: [`WechatConfig`] as written in the config file, and
//! [`WechatSettings`], the validated form the codec uses.
//!
//! This module owns the rules on those values and the defaults with their reasons. Validation is pure (no file
//! or network access) and reports every problem at once. Secrets (token, EncodingAESKey, derived key) never
//! appear in `Debug` output.

use serde::{Deserialize, Serialize};

use crate::crypto::AesKey;

/// Body limit when the config names none: real callbacks are a few KiB, a compatible-mode body about three
/// times its message, so 64 KiB leaves ample room without letting a client make us buffer much.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
/// Replay window when the config names none: WeChat retries within about 15 s and reuses the query, so five
/// minutes tolerates those and ordinary clock skew (PROTOCOL.md §4.4).
pub const DEFAULT_REPLAY_WINDOW_SECS: u64 = 300;
const MIN_BODY_BYTES: usize = 1024;
const MAX_ACCOUNT_LEN: usize = 64;

/// The message-encryption mode chosen in the WeChat console (消息加解密方式). It must match the console:
/// protofuse never guesses it from the request, since that would let a forger pick the weakest mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// 明文模式: the body is plain XML, authenticated by nothing (only the query is signed).
    Plaintext,
    /// 兼容模式: plain fields and `<Encrypt>` side by side; protofuse reads only the encrypted copy.
    Compatible,
    /// 安全模式: only `<Encrypt>`. The default, because it is the only mode that authenticates the body.
    #[default]
    Safe,
}

/// The settings of one Official Account, as deserialized from configuration.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WechatConfig {
    /// protofuse's name for the account: the `{account}` path segment and `Source::account`. Letters, digits,
    /// `-` and `_`.
    pub account: String,
    /// The Token from the console: 3 to 32 letters or digits.
    pub token: String,
    /// The encryption mode set in the console.
    #[serde(default)]
    pub mode: Mode,
    /// The account's AppID (`wx…`); required unless `mode = "plaintext"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// The 43-character EncodingAESKey; required unless `mode = "plaintext"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding_aes_key: Option<String>,
    /// Largest callback body accepted, in bytes.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Largest accepted distance between the query's `timestamp` and now, in seconds; 0 disables the check.
    #[serde(default = "default_replay_window_secs")]
    pub replay_window_secs: u64,
}

fn default_max_body_bytes() -> usize {
    DEFAULT_MAX_BODY_BYTES
}

fn default_replay_window_secs() -> u64 {
    DEFAULT_REPLAY_WINDOW_SECS
}

impl std::fmt::Debug for WechatConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WechatConfig")
            .field("account", &self.account)
            .field("token", &"<redacted>")
            .field("mode", &self.mode)
            .field("app_id", &self.app_id)
            .field(
                "encoding_aes_key",
                &self.encoding_aes_key.as_ref().map(|_| "<redacted>"),
            )
            .field("max_body_bytes", &self.max_body_bytes)
            .field("replay_window_secs", &self.replay_window_secs)
            .finish()
    }
}

/// One problem found by [`WechatConfig::validate`], naming the key it concerns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ConfigIssue {
    /// The key, relative to the account's table (e.g. `encoding_aes_key`).
    pub field: &'static str,
    /// What is wrong with its value.
    pub reason: &'static str,
}

/// What safe and compatible mode need to decrypt and encrypt.
#[derive(Debug, Clone)]
pub struct Cipher {
    /// The AppID every frame must end with.
    pub app_id: String,
    /// The key derived from the EncodingAESKey.
    pub key: AesKey,
}

/// Validated settings of one account. Holds a [`Cipher`] exactly when the mode is not plaintext.
#[derive(Clone)]
pub struct WechatSettings {
    account: String,
    token: String,
    mode: Mode,
    cipher: Option<Cipher>,
    max_body_bytes: usize,
    replay_window_secs: Option<u64>,
}

impl WechatConfig {
    /// Checks every rule and derives the AES key; returns all problems, not just the first.
    pub fn validate(&self) -> Result<WechatSettings, Vec<ConfigIssue>> {
        let mut issues = Vec::new();
        let mut issue = |field, reason| issues.push(ConfigIssue { field, reason });
        let account_ok = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        if self.account.is_empty() || self.account.len() > MAX_ACCOUNT_LEN || !self.account.chars().all(account_ok) {
            issue("account", "must be 1 to 64 letters, digits, '-' or '_'");
        }
        if !(3..=32).contains(&self.token.len()) || !self.token.chars().all(|c| c.is_ascii_alphanumeric()) {
            issue(
                "token",
                "must be 3 to 32 letters or digits, as the WeChat console requires",
            );
        }
        if !(MIN_BODY_BYTES..=crate::xml::MAX_DOCUMENT_BYTES).contains(&self.max_body_bytes) {
            issue("max_body_bytes", "must be between 1024 and 262144");
        }
        let key = match self.encoding_aes_key.as_deref().map(AesKey::from_encoding_aes_key) {
            Some(Ok(key)) => Some(key),
            Some(Err(_)) => {
                issue(
                    "encoding_aes_key",
                    "must be the 43-character key shown in the WeChat console",
                );
                None
            }
            None => None,
        };
        let app_id = self.app_id.as_deref().filter(|id| !id.trim().is_empty());
        let cipher = match (self.mode, app_id, key) {
            (Mode::Plaintext, _, _) => None,
            (_, Some(app_id), Some(key)) => Some(Cipher {
                app_id: app_id.to_owned(),
                key,
            }),
            (_, app_id, _) => {
                if app_id.is_none() {
                    issue("app_id", "is required unless mode is plaintext");
                }
                if self.encoding_aes_key.is_none() {
                    issue("encoding_aes_key", "is required unless mode is plaintext");
                }
                None
            }
        };
        if !issues.is_empty() {
            return Err(issues);
        }
        Ok(WechatSettings {
            account: self.account.clone(),
            token: self.token.clone(),
            mode: self.mode,
            cipher,
            max_body_bytes: self.max_body_bytes,
            replay_window_secs: (self.replay_window_secs > 0).then_some(self.replay_window_secs),
        })
    }
}

impl WechatSettings {
    /// protofuse's name for the account.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The console Token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The encryption mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// AppID and key; `Some` exactly when the mode is not plaintext.
    pub fn cipher(&self) -> Option<&Cipher> {
        self.cipher.as_ref()
    }

    /// Largest body accepted.
    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }

    /// The replay window in seconds, `None` when disabled.
    pub fn replay_window_secs(&self) -> Option<u64> {
        self.replay_window_secs
    }
}

impl std::fmt::Debug for WechatSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WechatSettings")
            .field("account", &self.account)
            .field("token", &"<redacted>")
            .field("mode", &self.mode)
            .field("cipher", &self.cipher)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("replay_window_secs", &self.replay_window_secs)
            .finish()
    }
}

#[cfg(test)]
mod tests;
