//! `[store]`: where conversations and messages are kept, and how hard SQLite works to keep them.
//!
//! Owns the section's fields, defaults (each with its reason) and the rules types cannot express. Must never
//! touch the database: [`StoreConfig::issues`] is pure, so `check-config` can run it.

use std::time::Duration;

use serde::Deserialize;

/// `[store]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite://data/protofuse.db` (relative to the working directory) or `mysql://user:pass@host:3306/db`.
    pub url: String,
    /// Connection pool size (SQLite: readers; there is always exactly one writer).
    pub max_connections: u32,
    /// How long a request waits for a free connection before failing with 503.
    #[serde(with = "humantime_serde")]
    pub acquire_timeout: Duration,
    /// SQLite only: `full` (fsync every commit; survives power loss) or `normal` (survives process crashes).
    pub sqlite_synchronous: Synchronous,
    /// Message writes that may wait for the store's writer (SQLite: the writer thread; MySQL: the batch
    /// writer tasks). When the queue is full a write is refused at once ([`crate::StoreError::Overloaded`],
    /// HTTP 503 with `Retry-After`) instead of piling up in memory.
    pub write_queue: usize,
}

/// Eight readers keep a two-core machine's request handlers busy; MySQL servers allow far more.
const DEFAULT_MAX_CONNECTIONS: u32 = 8;
/// Longer than any healthy wait for a pooled connection, shorter than the request timeout, so an exhausted
/// pool answers 503 instead of hanging the request.
const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// Sixteen full groups: about a second of writes at the rates SQLite sustains here, so a burst is absorbed and
/// a sustained overload is refused within a second rather than answered late.
const DEFAULT_WRITE_QUEUE: usize = 4096;

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://data/protofuse.db".to_owned(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            acquire_timeout: DEFAULT_ACQUIRE_TIMEOUT,
            sqlite_synchronous: Synchronous::Full,
            write_queue: DEFAULT_WRITE_QUEUE,
        }
    }
}

impl StoreConfig {
    /// A configuration for `url` with the defaults, as tools other than the server open the store.
    pub fn for_url(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            ..Self::default()
        }
    }

    /// Every broken rule, as (key inside `[store]`, message).
    pub fn issues(&self) -> Vec<(&'static str, String)> {
        let mut issues = Vec::new();
        if self.url.starts_with("sqlite:") {
            if let Err(e) = <sqlx::sqlite::SqliteConnectOptions as std::str::FromStr>::from_str(&self.url) {
                issues.push(("url", format!("is not a SQLite URL: {e}")));
            }
        } else if self.url.starts_with("mysql:") || self.url.starts_with("mariadb:") {
            let url = self.url.replacen("mariadb://", "mysql://", 1);
            // Parsing only: nothing connects. The message never echoes the URL, which may hold a password.
            let parses = <sqlx::mysql::MySqlConnectOptions as std::str::FromStr>::from_str(&url).is_ok();
            if !port_is_numeric(&url) || !parses {
                issues.push((
                    "url",
                    "is not a MySQL URL (mysql://user:password@host:port/database, the port a number)".to_owned(),
                ));
            }
        } else {
            issues.push(("url", "must start with sqlite:, mysql: or mariadb:".to_owned()));
        }
        if !(1..=1000).contains(&self.max_connections) {
            issues.push((
                "max_connections",
                format!("must be between 1 and 1000, got {}", self.max_connections),
            ));
        }
        if self.acquire_timeout.is_zero() {
            issues.push(("acquire_timeout", "must be greater than 0s".to_owned()));
        }
        if !(1..=1_000_000).contains(&self.write_queue) {
            issues.push((
                "write_queue",
                format!("must be between 1 and 1000000, got {}", self.write_queue),
            ));
        }
        issues
    }
}

/// Whether the port of `url`'s authority, if it names one, is a number: the URL parser accepts
/// `host:notaport` for schemes it does not know, and the connection would fail only at start.
fn port_is_numeric(url: &str) -> bool {
    let authority = url
        .split_once("://")
        .map_or("", |(_, rest)| rest.split(['/', '?']).next().unwrap_or_default());
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let port = match host_port.strip_prefix('[') {
        Some(v6) => v6.split_once("]:").map(|(_, p)| p),
        None => host_port.split_once(':').map(|(_, p)| p),
    };
    port.is_none_or(|p| p.parse::<u16>().is_ok())
}

/// How hard SQLite works to make a commit survive power loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Synchronous {
    /// fsync on every commit: an acknowledged message survives a power cut. The default, because protofuse
    /// acknowledges a message only after it is stored.
    #[default]
    Full,
    /// fsync at WAL checkpoints only: survives a process crash, may lose the last commits on power loss.
    Normal,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_parsed_without_connecting() {
        let mut config = StoreConfig::for_url("mysql://u:pw@db:notaport/x");
        assert_eq!(config.issues().len(), 1, "{:?}", config.issues());
        config.url = "mysql://u:pw@db:3306/x".to_owned();
        assert!(config.issues().is_empty());
        config.url = "postgres://x".to_owned();
        assert_eq!(config.issues().len(), 1);
    }
}
