//! The web channel's limits on visitors: open connections (in total and per visitor) and the rate of messages a
//! visitor may send, whichever transport carries them.
//!
//! Owns the counts and the token buckets; a connection's slot is an RAII guard, so a socket that ends any way
//! at all (closed, evicted, panicked task) gives its slot back.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::config::WebConfig;
use super::token::Visitor;

/// Why a connection or a message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum LimitError {
    /// `web.max_connections` are open.
    #[error("the web channel is at its connection limit; retry shortly")]
    Full,
    /// The visitor holds `web.max_connections_per_visitor` connections.
    #[error("this visitor has too many open connections ({0}); close a tab or wait for an old one to close")]
    VisitorFull(usize),
    /// The client's address was issued `web.anonymous_sessions_per_minute` anonymous sessions (after the burst).
    #[error("too many new visitor sessions from this address; retry in {}s", .retry_after.as_secs().max(1))]
    SessionsRateLimited {
        /// When the next session would be issued.
        retry_after: Duration,
    },
    /// The visitor sent more than `web.messages_per_minute` (after the burst).
    #[error("too many messages; retry in {}s", .retry_after.as_secs().max(1))]
    RateLimited {
        /// When the next message would pass.
        retry_after: Duration,
    },
}

/// Connection counts and message buckets. Cheap to share behind an `Arc`.
pub(super) struct Limits {
    max_total: usize,
    max_per_visitor: usize,
    open: Mutex<Open>,
    rate: DefaultKeyedRateLimiter<String>,
    /// Anonymous sessions by client address; `None` when `web.anonymous_sessions_per_minute` is 0.
    sessions: Option<DefaultKeyedRateLimiter<IpAddr>>,
}

#[derive(Default)]
struct Open {
    total: usize,
    per_visitor: HashMap<String, usize>,
}

/// One open connection; dropping it frees the slot.
pub(super) struct Slot {
    limits: Arc<Limits>,
    key: String,
}

fn key(visitor: &Visitor) -> String {
    format!("{}\u{0}{}", visitor.site, visitor.id)
}

impl Limits {
    pub(super) fn new(config: &WebConfig) -> Arc<Self> {
        let per_minute = NonZeroU32::new(config.messages_per_minute).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(config.message_burst).unwrap_or(NonZeroU32::MIN);
        Arc::new(Self {
            max_total: config.max_connections,
            max_per_visitor: config.max_connections_per_visitor,
            open: Mutex::default(),
            rate: RateLimiter::keyed(Quota::per_minute(per_minute).allow_burst(burst)),
            sessions: NonZeroU32::new(config.anonymous_sessions_per_minute).map(|per_minute| {
                let burst = NonZeroU32::new(config.anonymous_session_burst).unwrap_or(NonZeroU32::MIN);
                RateLimiter::keyed(Quota::per_minute(per_minute).allow_burst(burst))
            }),
        })
    }

    /// A connection slot for `visitor`, or why there is none.
    pub(super) fn connect(self: &Arc<Self>, visitor: &Visitor) -> Result<Slot, LimitError> {
        let key = key(visitor);
        // Never held across an await; a poisoned lock only means a panic elsewhere, the counts are still whole.
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.total >= self.max_total {
            return Err(LimitError::Full);
        }
        let mine = open.per_visitor.get(&key).copied().unwrap_or(0);
        if mine >= self.max_per_visitor {
            return Err(LimitError::VisitorFull(self.max_per_visitor));
        }
        open.total += 1;
        open.per_visitor.insert(key.clone(), mine + 1);
        metrics::gauge!(crate::telemetry::metric::WEB_CONNECTIONS).set(open.total as f64);
        Ok(Slot {
            limits: Arc::clone(self),
            key,
        })
    }

    /// Takes one message from `visitor`'s bucket.
    pub(super) fn message(&self, visitor: &Visitor) -> Result<(), LimitError> {
        self.rate
            .check_key(&key(visitor))
            .map_err(|not_until| LimitError::RateLimited {
                retry_after: not_until.wait_time_from(DefaultClock::default().now()),
            })
    }

    /// Takes one anonymous session from `address`'s allowance, or says when the next would be issued.
    pub(super) fn anonymous_session(&self, address: IpAddr) -> Result<(), LimitError> {
        let Some(sessions) = &self.sessions else {
            return Ok(());
        };
        sessions
            .check_key(&address)
            .map_err(|not_until| LimitError::SessionsRateLimited {
                retry_after: not_until.wait_time_from(DefaultClock::default().now()),
            })
    }

    /// Forgets the buckets of visitors (and addresses) whose bucket is full again, so the tables hold only
    /// recent senders.
    pub(super) fn forget_quiet_visitors(&self) {
        self.rate.retain_recent();
        self.rate.shrink_to_fit();
        if let Some(sessions) = &self.sessions {
            sessions.retain_recent();
            sessions.shrink_to_fit();
        }
    }

    fn release(&self, key: &str) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.total = open.total.saturating_sub(1);
        if let Some(count) = open.per_visitor.get_mut(key) {
            *count -= 1;
            if *count == 0 {
                open.per_visitor.remove(key);
            }
        }
        metrics::gauge!(crate::telemetry::metric::WEB_CONNECTIONS).set(open.total as f64);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.limits.release(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn visitor(id: &str) -> Visitor {
        Visitor {
            site: "shop".to_owned(),
            id: id.to_owned(),
            name: None,
        }
    }

    #[test]
    fn slots_are_counted_in_total_and_per_visitor_and_freed_on_drop() {
        let config = WebConfig {
            max_connections: 3,
            max_connections_per_visitor: 2,
            ..WebConfig::default()
        };
        let limits = Limits::new(&config);
        let a1 = limits.connect(&visitor("a")).unwrap();
        let _a2 = limits.connect(&visitor("a")).unwrap();
        assert_eq!(limits.connect(&visitor("a")).err(), Some(LimitError::VisitorFull(2)));
        let _b = limits.connect(&visitor("b")).unwrap();
        assert_eq!(limits.connect(&visitor("c")).err(), Some(LimitError::Full));
        drop(a1);
        assert!(limits.connect(&visitor("a")).is_ok());
    }

    #[test]
    fn the_rate_applies_per_visitor_after_the_burst() {
        let config = WebConfig {
            messages_per_minute: 1,
            message_burst: 2,
            ..WebConfig::default()
        };
        let limits = Limits::new(&config);
        assert!(limits.message(&visitor("a")).is_ok());
        assert!(limits.message(&visitor("a")).is_ok());
        match limits.message(&visitor("a")) {
            Err(LimitError::RateLimited { retry_after }) => assert!(retry_after > Duration::from_secs(1)),
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert!(limits.message(&visitor("b")).is_ok());
    }
}
