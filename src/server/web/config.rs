//! `[web]`: the web channel's switches, keys, limits and bot answers, each default with its reason, and the
//! section's validation (every problem with its key).
//!
//! Owns what the operator can set about the web channel; must never open a socket or read a key file.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use crate::config::ConfigIssue;
use crate::respond::AutoReply;
use crate::server::ServerConfig;

/// `[web]`: visitors chatting from a site's page over WebSocket, or Server-Sent Events plus HTTP POST.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    /// Serve `/web/…` on the public listener.
    pub enabled: bool,
    /// The server's key for signing visitor session tokens (HMAC-SHA256). Set it through
    /// `PROTOFUSE__WEB__SESSION_KEY` rather than in a file; it is never logged.
    pub session_key: Option<Secret>,
    /// How long a session token stays valid; the widget asks for a fresh one with the old token before then.
    #[serde(with = "humantime_serde")]
    pub session_ttl: Duration,
    /// Accept WebSocket upgrades on `/web/ws`. Off: the upgrade is refused and clients use `/web/events` (SSE)
    /// plus `POST /web/messages`, as behind a proxy that strips `Upgrade`.
    pub websocket: bool,
    /// Largest text a visitor may send, in UTF-8 bytes.
    pub max_message_bytes: usize,
    /// Messages one visitor may send per minute, sustained.
    pub messages_per_minute: u32,
    /// Messages one visitor may send at once before the per-minute rate applies.
    pub message_burst: u32,
    /// Anonymous sessions one client address may be issued per minute, sustained; 0 turns the limit off.
    /// Without it a script could take a new visitor id for every message and escape every per-visitor limit.
    /// Behind a reverse proxy every visitor shares the proxy's address: raise it, or limit at the proxy.
    pub anonymous_sessions_per_minute: u32,
    /// Anonymous sessions one address may be issued at once before the per-minute rate applies.
    pub anonymous_session_burst: u32,
    /// Most web connections (WebSockets and event streams) open at once.
    pub max_connections: usize,
    /// Most web connections one visitor may hold at once.
    pub max_connections_per_visitor: usize,
    /// How often an open WebSocket is pinged.
    #[serde(with = "humantime_serde")]
    pub ping_interval: Duration,
    /// A WebSocket whose visitor sends nothing (no pong, no frame) for this long is closed.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// How often an event stream carries a comment line when nothing else is sent.
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    /// Words that hand a conversation to a human when a visitor's text contains one.
    pub handoff_keywords: Vec<String>,
    /// What the visitor is told (stored as a system message) when the conversation is handed to a human.
    pub handoff_notice: String,
    /// The bot's first line, shown by the widget when it connects; never stored. Empty: no greeting.
    pub greeting: String,
    /// Built-in triage answers visitors (and hands off) after the keywords.
    pub triage: bool,
    /// Fixed answers, tried before triage.
    pub auto_replies: Vec<AutoReply>,
    /// The sites whose pages carry the widget, by name (`[web.sites.<name>]`).
    pub sites: BTreeMap<String, SiteConfig>,
}

/// `[web.sites.<name>]`: one site embedding the chat.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SiteConfig {
    /// The key the site signs its logged-in users' tokens with (HS256). Unset: the site has no signed users.
    pub key: Option<Secret>,
    /// Visitors who are not logged in get an anonymous id issued by the server.
    pub anonymous: bool,
    /// The origins (`https://shop.example`) whose pages may call `/web/…` from a browser (CORS). Empty: only
    /// pages served from protofuse's own origin.
    pub origins: Vec<String>,
}

impl Default for SiteConfig {
    fn default() -> Self {
        Self {
            key: None,
            anonymous: true,
            origins: Vec::new(),
        }
    }
}

/// A key that must never reach a log: `Debug` prints `<redacted>`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The key's bytes.
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl From<&str> for Secret {
    fn from(key: &str) -> Self {
        Self(key.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Off: the channel is an unauthenticated entry on the public listener; an operator opens it deliberately, with
/// a site and a key.
const DEFAULT_ENABLED: bool = false;
/// A visitor returning within a day keeps their conversation; a leaked token is worth a day at most.
const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// About 1,300 Chinese characters or 4,000 Latin ones: longer than any chat line (WeChat stops at 2,048
/// characters), far below what would let a visitor fill the store.
const DEFAULT_MAX_MESSAGE_BYTES: usize = 4096;
/// A person types a few lines in ten seconds; twenty a minute leaves room for that and stops a script from
/// flooding triage and the agents.
const DEFAULT_MESSAGES_PER_MINUTE: u32 = 20;
/// A pasted paragraph split into a few lines, or a resend after a reconnect, passes at once.
const DEFAULT_MESSAGE_BURST: u32 = 5;
/// A new visitor takes one session when the widget first loads (returning visitors renew theirs, which is not
/// counted): a minute's new visitors behind one office NAT stay well under this, a script minting identities
/// does not.
const DEFAULT_ANONYMOUS_SESSIONS_PER_MINUTE: u32 = 60;
/// A page opened in several tabs at once, or an office arriving together.
const DEFAULT_ANONYMOUS_SESSION_BURST: u32 = 30;
/// Below `server.max_connections` (768), so visitors leave room for WeChat callbacks and API calls on the same
/// listener.
const DEFAULT_MAX_CONNECTIONS: usize = 512;
/// A few open tabs, plus a reconnect overlapping the old socket's close.
const DEFAULT_MAX_CONNECTIONS_PER_VISITOR: usize = 8;
/// Below common proxies' 60 s idle cut-off and `server.idle_timeout` (75 s), so a quiet socket is neither cut by
/// a proxy nor by the listener.
const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(25);
/// Two missed pings: a visitor whose browser answers neither is gone (a closed laptop, a dropped network).
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Well within proxies' read timeouts (nginx: 60 s); a vanished visitor's stream fails on the next write.
const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(15);
/// The bilingual notice the seed systems show on hand-off.
const DEFAULT_HANDOFF_NOTICE: &str = "正在为您转接人工客服，请稍候。/ Connecting you to an agent, please wait.";
/// Bilingual like the notice: the server does not know the page's language, the widget's `data-lang` does.
const DEFAULT_GREETING: &str = "您好，请问有什么可以帮您？/ Hello! How can we help you?";

/// HMAC-SHA256 keys shorter than its 32-byte output are weaker than the hash.
const MIN_KEY_BYTES: usize = 32;
/// A chat line, not a document: the canonical model allows 256 KiB for legacy systems' email bodies.
const MAX_MESSAGE_BYTES: usize = 64 * 1024;

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            enabled: DEFAULT_ENABLED,
            session_key: None,
            session_ttl: DEFAULT_SESSION_TTL,
            websocket: true,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            messages_per_minute: DEFAULT_MESSAGES_PER_MINUTE,
            message_burst: DEFAULT_MESSAGE_BURST,
            anonymous_sessions_per_minute: DEFAULT_ANONYMOUS_SESSIONS_PER_MINUTE,
            anonymous_session_burst: DEFAULT_ANONYMOUS_SESSION_BURST,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_visitor: DEFAULT_MAX_CONNECTIONS_PER_VISITOR,
            ping_interval: DEFAULT_PING_INTERVAL,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL,
            handoff_keywords: ["人工", "转人工", "human"].map(str::to_owned).to_vec(),
            handoff_notice: DEFAULT_HANDOFF_NOTICE.to_owned(),
            greeting: DEFAULT_GREETING.to_owned(),
            triage: false,
            auto_replies: Vec::new(),
            sites: BTreeMap::new(),
        }
    }
}

impl WebConfig {
    /// Every broken rule of `[web]`, keyed `web.…`. The limits are checked whether or not the channel is on;
    /// the keys, the sites and the limits' relation to `server` (the listener the channel shares) only when it
    /// is, so a channel that is off never refuses a `[server]` setting.
    pub(crate) fn issues(&self, server: &ServerConfig) -> Vec<ConfigIssue> {
        let mut issues = self.limit_issues(server);
        if self.enabled {
            issues.extend(self.key_issues());
        }
        issues
    }

    fn limit_issues(&self, server: &ServerConfig) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        let listener = self.enabled.then_some(server);
        let mut check = |ok: bool, key: &str, message: String| {
            if !ok {
                issues.push(ConfigIssue::new(format!("web.{key}"), message));
            }
        };
        let minute = Duration::from_secs(60);
        check(
            (minute..=Duration::from_secs(30 * 24 * 60 * 60)).contains(&self.session_ttl),
            "session_ttl",
            "must be between 1m and 30days".to_owned(),
        );
        check(
            (1..=MAX_MESSAGE_BYTES).contains(&self.max_message_bytes),
            "max_message_bytes",
            format!("must be between 1 and {MAX_MESSAGE_BYTES}"),
        );
        check(
            self.messages_per_minute >= 1,
            "messages_per_minute",
            "must be at least 1".to_owned(),
        );
        check(
            self.message_burst >= 1,
            "message_burst",
            "must be at least 1".to_owned(),
        );
        check(
            self.anonymous_sessions_per_minute == 0 || self.anonymous_session_burst >= 1,
            "anonymous_session_burst",
            "must be at least 1 while anonymous_sessions_per_minute is on".to_owned(),
        );
        check(
            self.max_connections >= 1 && listener.is_none_or(|s| self.max_connections < s.max_connections),
            "max_connections",
            format!(
                "must be at least 1 and below server.max_connections ({}), so visitors cannot take every \
                 connection of the listener they share with WeChat callbacks and the API",
                server.max_connections
            ),
        );
        check(
            (1..=self.max_connections).contains(&self.max_connections_per_visitor),
            "max_connections_per_visitor",
            "must be between 1 and web.max_connections".to_owned(),
        );
        let second = Duration::from_secs(1);
        check(
            self.ping_interval >= second && listener.is_none_or(|s| self.ping_interval < s.idle_timeout),
            "ping_interval",
            format!(
                "must be at least 1s and below server.idle_timeout ({:?}), which closes a socket that moves no bytes",
                server.idle_timeout
            ),
        );
        check(
            self.idle_timeout > self.ping_interval,
            "idle_timeout",
            "must be longer than web.ping_interval, or every socket is closed before its first pong".to_owned(),
        );
        check(
            self.heartbeat_interval >= second && listener.is_none_or(|s| self.heartbeat_interval < s.idle_timeout),
            "heartbeat_interval",
            "must be at least 1s and below server.idle_timeout".to_owned(),
        );
        issues
    }

    fn key_issues(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        match &self.session_key {
            None => issues.push(ConfigIssue::new(
                "web.session_key",
                "required while web.enabled = true (set PROTOFUSE__WEB__SESSION_KEY to 32 or more random bytes)",
            )),
            Some(key) if key.expose().len() < MIN_KEY_BYTES => issues.push(ConfigIssue::new(
                "web.session_key",
                format!("must be at least {MIN_KEY_BYTES} bytes"),
            )),
            Some(_) => {}
        }
        if self.sites.is_empty() {
            issues.push(ConfigIssue::new(
                "web.sites",
                "at least one site is required while web.enabled = true ([web.sites.<name>])",
            ));
        }
        for (name, site) in &self.sites {
            let key = format!("web.sites.{name}");
            let valid_name = !name.is_empty()
                && name.len() <= 64
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !valid_name {
                issues.push(ConfigIssue::new(
                    key.clone(),
                    "a site name is 1 to 64 ASCII letters, digits, '-' or '_'",
                ));
            }
            match &site.key {
                Some(k) if k.expose().len() < MIN_KEY_BYTES => issues.push(ConfigIssue::new(
                    format!("{key}.key"),
                    format!("must be at least {MIN_KEY_BYTES} bytes"),
                )),
                Some(k) if self.session_key.as_ref() == Some(k) => issues.push(ConfigIssue::new(
                    format!("{key}.key"),
                    "must differ from web.session_key, or the site could sign session tokens",
                )),
                None if !site.anonymous => issues.push(ConfigIssue::new(
                    format!("{key}.key"),
                    "required when anonymous = false: the site would accept no visitor at all",
                )),
                _ => {}
            }
            for (i, origin) in site.origins.iter().enumerate() {
                if !is_origin(origin) {
                    issues.push(ConfigIssue::new(
                        format!("{key}.origins[{i}]"),
                        "must be an origin: http:// or https://, a host and an optional port, no path (\"*\" is \
                         not accepted)",
                    ));
                }
            }
        }
        issues
    }
}

/// `scheme://host[:port]`, as a browser sends it in `Origin`.
fn is_origin(origin: &str) -> bool {
    let Some((scheme, rest)) = origin.split_once("://") else {
        return false;
    };
    matches!(scheme, "http" | "https")
        && !rest.is_empty()
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_enabling_asks_for_a_key_and_a_site() {
        let server = ServerConfig::default();
        assert_eq!(WebConfig::default().issues(&server), []);
        // Off, the channel refuses no [server] setting (tests run the server with a 1 s idle timeout).
        let short = ServerConfig {
            idle_timeout: Duration::from_secs(1),
            max_connections: 16,
            ..ServerConfig::default()
        };
        assert_eq!(WebConfig::default().issues(&short), []);
        let enabled = WebConfig {
            enabled: true,
            ..WebConfig::default()
        };
        let keys: Vec<_> = enabled.issues(&server).into_iter().map(|i| i.key).collect();
        assert_eq!(keys, ["web.session_key", "web.sites"]);
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let mut config = WebConfig {
            enabled: true,
            session_key: Some(Secret::from("short")),
            max_message_bytes: 0,
            max_connections: 10_000,
            idle_timeout: Duration::from_secs(1),
            ..WebConfig::default()
        };
        config.sites.insert(
            "bad name".to_owned(),
            SiteConfig {
                key: None,
                anonymous: false,
                origins: vec!["https://shop.example".to_owned(), "https://shop.example/".to_owned()],
            },
        );
        let keys: Vec<_> = config
            .issues(&ServerConfig::default())
            .into_iter()
            .map(|i| i.key)
            .collect();
        assert_eq!(
            keys,
            [
                "web.max_message_bytes",
                "web.max_connections",
                "web.idle_timeout",
                "web.session_key",
                "web.sites.bad name",
                "web.sites.bad name.key",
                "web.sites.bad name.origins[1]"
            ]
        );
    }

    #[test]
    fn secrets_never_print() {
        let config = SiteConfig {
            key: Some(Secret::from("a-site-key-that-must-not-be-logged")),
            anonymous: true,
            origins: Vec::new(),
        };
        assert!(!format!("{config:?}").contains("must-not"));
    }
}
