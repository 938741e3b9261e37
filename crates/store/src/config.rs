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
}

/// Eight readers keep a two-core machine's request handlers busy; MySQL servers allow far more.
const DEFAULT_MAX_CONNECTIONS: u32 = 8;
/// Longer than any healthy wait for a pooled connection, shorter than the request timeout, so an exhausted
/// pool answers 503 instead of hanging the request.
const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://data/protofuse.db".to_owned(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            acquire_timeout: DEFAULT_ACQUIRE_TIMEOUT,
            sqlite_synchronous: Synchronous::Full,
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
        if !["sqlite:", "mysql:", "mariadb:"]
            .iter()
            .any(|s| self.url.starts_with(s))
        {
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
        issues
    }
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
