//! Visitor tokens, both HS256 JWTs: the session token the server signs with `web.session_key` (the visitor's
//! id and site, what every `/web/…` call presents), and the user token a site signs with its own key
//! (`web.sites.<name>.key`) to say which of its logged-in users is chatting.
//!
//! Owns signing and verifying. Must never: accept another algorithm than HS256 (no `none`, no RSA/HMAC
//! confusion), accept a token without an expiry, or put a key or a whole token in an error or a log line.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::config::WebConfig;

/// The audience of session tokens: a site's user token is never mistaken for one, even if someone configured
/// the same key for both.
const SESSION_AUDIENCE: &str = "protofuse-web-session";
/// Anonymous visitor ids start with this; a site's user ids may not, so a site cannot speak for an anonymous
/// visitor of its own page either.
pub(super) const ANONYMOUS_PREFIX: &str = "anon-";
/// The canonical model's limit on a party's id (a MySQL index key).
const MAX_USER_ID_BYTES: usize = 191;
/// Clock difference tolerated between the site's signer and this server.
const LEEWAY_SECS: u64 = 30;

/// Why a token was refused. Every variant answers 401; the message tells an integrator what to fix and never
/// echoes the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum TokenError {
    /// No token was presented.
    #[error("a session token is required (?token= or Authorization: Bearer)")]
    Missing,
    /// Past its `exp`.
    #[error("token has expired")]
    Expired,
    /// The signature does not match the key (tampered, or signed with another key).
    #[error("token signature does not verify")]
    BadSignature,
    /// Not a compact HS256 JWT with the claims this use needs.
    #[error("token is malformed: {0}")]
    Malformed(&'static str),
}

impl From<jsonwebtoken::errors::Error> for TokenError {
    fn from(e: jsonwebtoken::errors::Error) -> Self {
        match e.kind() {
            ErrorKind::ExpiredSignature => Self::Expired,
            ErrorKind::InvalidSignature => Self::BadSignature,
            ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => Self::Malformed("only HS256 is accepted"),
            ErrorKind::MissingRequiredClaim(_) => Self::Malformed("exp and sub are required"),
            ErrorKind::InvalidAudience => Self::Malformed("wrong audience"),
            _ => Self::Malformed("not a compact JWT"),
        }
    }
}

/// Who is chatting: a site's visitor, anonymous or one of the site's users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Visitor {
    /// The `[web.sites.<name>]` the visitor chats on; the conversation's account.
    pub(crate) site: String,
    /// The visitor's id: the conversation's customer.
    pub(crate) id: String,
    /// A name to show agents, from the site's token.
    pub(crate) name: Option<String>,
}

/// A freshly signed session.
pub(super) struct Issued {
    pub(super) token: String,
    pub(super) expires_at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize)]
struct SessionClaims {
    sub: String,
    site: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    aud: String,
    iat: i64,
    exp: i64,
}

/// What a site's user token must carry: `sub` (the site's user id) and `exp`; `name` is optional.
#[derive(Deserialize)]
struct UserClaims {
    sub: String,
    #[serde(default)]
    name: Option<String>,
}

/// One site's verifying side.
struct Site {
    user_key: Option<DecodingKey>,
    anonymous: bool,
}

/// The keys of `[web]`: the server's session key and each site's user-token key.
pub(super) struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    ttl: Duration,
    sites: HashMap<String, Site>,
}

/// Why the keys could not be built (validation refuses these configurations first).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// `web.session_key` or a site's key is unset or empty.
    #[error("{0} is not set")]
    Missing(String),
}

fn secret<'a>(key: &str, value: Option<&'a super::config::Secret>) -> Result<&'a [u8], KeyError> {
    value
        .map(super::config::Secret::expose)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| KeyError::Missing(key.to_owned()))
}

impl Keys {
    pub(super) fn new(config: &WebConfig) -> Result<Self, KeyError> {
        let session = secret("web.session_key", config.session_key.as_ref())?;
        let missing = |_| KeyError::Missing("web.session_key".to_owned());
        let mut sites = HashMap::new();
        for (name, site) in &config.sites {
            let user_key = match &site.key {
                None => None,
                Some(key) => {
                    let bytes = secret(&format!("web.sites.{name}.key"), Some(key))?;
                    let key = DecodingKey::from_secret(bytes)
                        .map_err(|_| KeyError::Missing(format!("web.sites.{name}.key")))?;
                    Some(key)
                }
            };
            let anonymous = site.anonymous;
            sites.insert(name.clone(), Site { user_key, anonymous });
        }
        Ok(Self {
            encoding: EncodingKey::from_secret(session).map_err(missing)?,
            decoding: DecodingKey::from_secret(session).map_err(missing)?,
            ttl: config.session_ttl,
            sites,
        })
    }

    /// `true` when `site` is configured.
    pub(super) fn knows(&self, site: &str) -> bool {
        self.sites.contains_key(site)
    }

    /// `true` when `site` lets visitors chat without a user token.
    pub(super) fn allows_anonymous(&self, site: &str) -> bool {
        self.sites.get(site).is_some_and(|s| s.anonymous)
    }

    /// Signs a session for `visitor`, valid for `web.session_ttl` from `now`.
    pub(super) fn issue(&self, visitor: &Visitor, now: DateTime<Utc>) -> Issued {
        let ttl = chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::days(1));
        let expires_at = now + ttl;
        let claims = SessionClaims {
            sub: visitor.id.clone(),
            site: visitor.site.clone(),
            name: visitor.name.clone(),
            aud: SESSION_AUDIENCE.to_owned(),
            iat: now.timestamp(),
            exp: expires_at.timestamp(),
        };
        // HS256 over claims that always serialize cannot fail.
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).unwrap_or_default();
        Issued { token, expires_at }
    }

    /// The visitor a session token speaks for, if the server signed it, it has not expired and its site is still
    /// configured.
    pub(super) fn session(&self, token: &str) -> Result<Visitor, TokenError> {
        let mut validation = validation();
        validation.set_audience(&[SESSION_AUDIENCE]);
        let claims = jsonwebtoken::decode::<SessionClaims>(token, &self.decoding, &validation)?.claims;
        if !self.knows(&claims.site) {
            return Err(TokenError::Malformed("its site is no longer configured"));
        }
        Ok(Visitor {
            site: claims.site,
            id: claims.sub,
            name: claims.name,
        })
    }

    /// The site's user a user token signed with `site`'s key speaks for.
    pub(super) fn user(&self, site: &str, token: &str) -> Result<Visitor, TokenError> {
        let key = self
            .sites
            .get(site)
            .and_then(|s| s.user_key.as_ref())
            .ok_or(TokenError::Malformed("this site has no key for user tokens"))?;
        let mut validation = validation();
        // A site's token may carry an audience of the site's own choosing.
        validation.validate_aud = false;
        let claims = jsonwebtoken::decode::<UserClaims>(token, key, &validation)?.claims;
        let valid = !claims.sub.is_empty()
            && claims.sub.len() <= MAX_USER_ID_BYTES
            && !claims.sub.starts_with(ANONYMOUS_PREFIX);
        if !valid {
            return Err(TokenError::Malformed(
                "sub must be 1 to 191 bytes and must not start with `anon-`",
            ));
        }
        let name = claims.name.filter(|n| !n.is_empty() && n.len() <= 255);
        Ok(Visitor {
            site: site.to_owned(),
            id: claims.sub,
            name,
        })
    }
}

fn validation() -> Validation {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = LEEWAY_SECS;
    validation.set_required_spec_claims(&["exp", "sub"]);
    validation
}

/// A new anonymous visitor id: 128 random bits, so ids cannot be guessed or enumerated.
pub(super) fn anonymous_id() -> String {
    let bits: u128 = rand::random();
    format!("{ANONYMOUS_PREFIX}{bits:032x}")
}

#[cfg(test)]
mod tests {
    use super::super::config::{Secret, SiteConfig};
    use super::*;

    const SESSION_KEY: &str = "0123456789abcdef0123456789abcdef-session";
    const SITE_KEY: &str = "0123456789abcdef0123456789abcdef-site";

    fn keys() -> Keys {
        let mut config = WebConfig {
            session_key: Some(Secret::from(SESSION_KEY)),
            ..WebConfig::default()
        };
        config.sites.insert(
            "shop".to_owned(),
            SiteConfig {
                key: Some(Secret::from(SITE_KEY)),
                anonymous: true,
                origins: Vec::new(),
            },
        );
        Keys::new(&config).unwrap()
    }

    fn sign(key: &str, claims: &serde_json::Value) -> String {
        let key = EncodingKey::from_secret(key.as_bytes()).unwrap();
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key).unwrap()
    }

    fn visitor() -> Visitor {
        Visitor {
            site: "shop".to_owned(),
            id: anonymous_id(),
            name: None,
        }
    }

    #[test]
    fn a_session_verifies_until_it_expires() {
        let keys = keys();
        let visitor = visitor();
        let issued = keys.issue(&visitor, Utc::now());
        assert_eq!(keys.session(&issued.token), Ok(visitor.clone()));
        let old = keys.issue(&visitor, Utc::now() - chrono::Duration::days(2));
        assert_eq!(keys.session(&old.token), Err(TokenError::Expired));
    }

    #[test]
    fn a_tampered_session_is_refused() {
        let keys = keys();
        let issued = keys.issue(&visitor(), Utc::now());
        // Another visitor's id in the payload, the original signature kept.
        let forged_claims = serde_json::json!({"sub": "anon-0", "site": "shop", "aud": SESSION_AUDIENCE,
            "iat": 0, "exp": Utc::now().timestamp() + 60});
        let forged = sign("a-guessed-key", &forged_claims);
        let mut parts: Vec<&str> = forged.split('.').collect();
        parts[2] = issued.token.rsplit('.').next().unwrap();
        assert_eq!(keys.session(&parts.join(".")), Err(TokenError::BadSignature));
        assert!(matches!(keys.session("garbage"), Err(TokenError::Malformed(_))));
        // A site's user token is not a session, even with the right key.
        let as_site = sign(
            SESSION_KEY,
            &serde_json::json!({"sub": "u1", "exp": Utc::now().timestamp() + 60}),
        );
        assert!(matches!(keys.session(&as_site), Err(TokenError::Malformed(_))));
    }

    #[test]
    fn a_sites_user_token_names_its_user() {
        let keys = keys();
        let exp = Utc::now().timestamp() + 60;
        let token = sign(SITE_KEY, &serde_json::json!({"sub": "u-42", "name": "Ann", "exp": exp}));
        let user = keys.user("shop", &token).unwrap();
        assert_eq!((user.id.as_str(), user.name.as_deref()), ("u-42", Some("Ann")));
        let wrong_key = sign(SESSION_KEY, &serde_json::json!({"sub": "u-42", "exp": exp}));
        assert_eq!(keys.user("shop", &wrong_key), Err(TokenError::BadSignature));
        let no_exp = sign(SITE_KEY, &serde_json::json!({"sub": "u-42"}));
        assert!(matches!(keys.user("shop", &no_exp), Err(TokenError::Malformed(_))));
        let anon = sign(SITE_KEY, &serde_json::json!({"sub": "anon-1", "exp": exp}));
        assert!(matches!(keys.user("shop", &anon), Err(TokenError::Malformed(_))));
    }
}
