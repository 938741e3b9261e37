//! [`Authenticator`]: who is calling, what they may do, and whether they are within their rate.
//!
//! A presented key is hashed and compared with every configured digest in constant time, so neither timing nor
//! the order of keys tells a guesser anything. Each key has its own token bucket (`governor`), so one busy or
//! leaked key cannot starve the others. Owns no transport: HTTP and gRPC each extract the key and map
//! [`AuthError`] to their own refusals.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;

use super::config::{ApiConfig, Scope};

/// Why a call was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No key was presented.
    #[error("missing API key: send `Authorization: Bearer <key>` or `X-Api-Key: <key>`")]
    Missing,
    /// The key is not one of the configured keys.
    #[error("invalid API key")]
    Invalid,
    /// The key may not do this.
    #[error("this API key lacks the `{}` scope", .0.as_str())]
    Forbidden(Scope),
    /// The key made too many requests; retry after the given time.
    #[error("rate limit exceeded; retry in {}ms", .0.as_millis())]
    RateLimited(Duration),
}

/// The caller of a request, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The key's id (`anonymous` without authentication).
    pub id: Arc<str>,
    scopes: Arc<[Scope]>,
}

impl Caller {
    /// Refuses unless the caller has `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), AuthError> {
        if self.scopes.contains(&scope) {
            Ok(())
        } else {
            Err(AuthError::Forbidden(scope))
        }
    }
}

struct Key {
    digest: [u8; 32],
    caller: Caller,
    /// The rate and burst the limiter was built with, so a reload that keeps them keeps the bucket.
    quota: (NonZeroU32, NonZeroU32),
    limiter: DefaultDirectRateLimiter,
}

/// The configured keys. Share one per process; [`Authenticator::replace`] swaps them whole (a configuration
/// reload), and a request keeps the keys it was checked against.
pub struct Authenticator {
    keys: ArcSwap<Vec<Arc<Key>>>,
    clock: DefaultClock,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("keys", &self.keys.load().len())
            .finish()
    }
}

/// The SHA-256 of `key`, as configured (64 lowercase hex digits).
pub fn digest_hex(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn parse_hex(hex: &str) -> Option<[u8; 32]> {
    let mut out = [0_u8; 32];
    if hex.len() != 64 {
        return None;
    }
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

impl Authenticator {
    /// The keys of `config` (validated before, so every digest parses; one that does not is left out).
    pub fn new(config: &ApiConfig) -> Self {
        let this = Self {
            keys: ArcSwap::from_pointee(Vec::new()),
            clock: DefaultClock::default(),
        };
        this.replace(config);
        this
    }

    /// Puts the keys of `config` in force. A key whose digest, caller and rate are unchanged keeps its token
    /// bucket, so a reload does not hand every caller a fresh burst; a key no longer configured is refused from
    /// the next request on. Returns how many keys are in force.
    pub fn replace(&self, config: &ApiConfig) -> usize {
        let before = self.keys.load();
        let keys: Vec<Arc<Key>> = config
            .keys
            .iter()
            .filter_map(|k| {
                let rate = NonZeroU32::new(k.rate_per_second.unwrap_or(config.rate_per_second))?;
                let burst = NonZeroU32::new(k.burst.unwrap_or(config.burst))?;
                let digest = parse_hex(&k.sha256)?;
                let caller = Caller {
                    id: Arc::from(k.id.as_str()),
                    scopes: k.scopes.clone().into(),
                };
                let kept = before
                    .iter()
                    .find(|old| old.digest == digest && old.caller == caller && old.quota == (rate, burst));
                Some(kept.cloned().unwrap_or_else(|| {
                    Arc::new(Key {
                        digest,
                        caller,
                        quota: (rate, burst),
                        limiter: RateLimiter::direct(Quota::per_second(rate).allow_burst(burst)),
                    })
                }))
            })
            .collect();
        let count = keys.len();
        self.keys.store(Arc::new(keys));
        count
    }

    /// `true` when no keys are configured: every caller may do everything (allowed only on loopback).
    pub fn is_open(&self) -> bool {
        self.keys.load().is_empty()
    }

    /// The caller presenting `presented`, within its rate. Without configured keys every caller is an
    /// anonymous one with every scope.
    pub fn authenticate(&self, presented: Option<&str>) -> Result<Caller, AuthError> {
        let keys = self.keys.load();
        if keys.is_empty() {
            return Ok(Caller {
                id: Arc::from("anonymous"),
                scopes: vec![Scope::Read, Scope::Write, Scope::Admin].into(),
            });
        }
        let presented = presented.filter(|k| !k.is_empty()).ok_or(AuthError::Missing)?;
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        // Every key is compared, found or not, so the time taken does not depend on which key matched.
        let mut found = None;
        for key in keys.iter() {
            if bool::from(key.digest.ct_eq(&digest)) {
                found = Some(key);
            }
        }
        let key = found.ok_or(AuthError::Invalid)?;
        key.limiter
            .check()
            .map_err(|not_until| AuthError::RateLimited(not_until.wait_time_from(self.clock.now())))?;
        Ok(key.caller.clone())
    }
}

/// The key a request presents: `Authorization: Bearer <key>`, else `X-Api-Key: <key>`.
pub fn presented<'a>(authorization: Option<&'a str>, x_api_key: Option<&'a str>) -> Option<&'a str> {
    authorization
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .or(x_api_key.map(str::trim))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::config::ApiKeyConfig;

    fn config(rate: u32, burst: u32) -> ApiConfig {
        ApiConfig {
            keys: vec![ApiKeyConfig {
                id: "crm".to_owned(),
                sha256: digest_hex("k-crm"),
                scopes: vec![Scope::Read],
                rate_per_second: Some(rate),
                burst: Some(burst),
            }],
            ..ApiConfig::default()
        }
    }

    #[test]
    fn keys_are_checked_by_digest_scope_and_rate() {
        let auth = Authenticator::new(&config(1, 2));
        assert_eq!(auth.authenticate(None).unwrap_err(), AuthError::Missing);
        assert_eq!(auth.authenticate(Some("wrong")).unwrap_err(), AuthError::Invalid);
        let caller = auth.authenticate(Some("k-crm")).unwrap();
        assert_eq!(&*caller.id, "crm");
        assert!(caller.require(Scope::Read).is_ok());
        assert_eq!(caller.require(Scope::Write), Err(AuthError::Forbidden(Scope::Write)));
        assert!(
            auth.authenticate(Some("k-crm")).is_ok(),
            "the burst allows a second at once"
        );
        assert!(matches!(
            auth.authenticate(Some("k-crm")),
            Err(AuthError::RateLimited(wait)) if wait > Duration::ZERO && wait <= Duration::from_secs(1)
        ));
    }

    #[test]
    fn without_keys_everyone_may_do_everything() {
        let auth = Authenticator::new(&ApiConfig::default());
        let caller = auth.authenticate(None).unwrap();
        assert!(caller.require(Scope::Admin).is_ok());
    }

    #[test]
    fn the_key_comes_from_either_header() {
        assert_eq!(presented(Some("Bearer abc"), Some("def")), Some("abc"));
        assert_eq!(presented(None, Some("def")), Some("def"));
        assert_eq!(presented(Some("Basic xyz"), None), None);
    }
}
