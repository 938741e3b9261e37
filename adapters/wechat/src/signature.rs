//! Callback signatures: `signature` over (token, timestamp, nonce), `msg_signature` over the same plus the
//! `Encrypt` text, and the freshness check on `timestamp`.
//!
//! This module owns only the arithmetic. It never reads the clock (the caller passes `now`) and never compares
//! signatures with `==`: a byte-by-byte early exit would tell an attacker how much of a guess was right.

use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

/// Why a signature or timestamp was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The presented signature is not the one the token produces.
    #[error("signature mismatch")]
    Mismatch,
    /// The `timestamp` parameter is not a whole number of seconds.
    #[error("timestamp is not an integer")]
    MalformedTimestamp,
    /// The `timestamp` parameter is further from `now` than the replay window allows.
    #[error("timestamp is {skew_secs} s away from now, outside the {window_secs} s window")]
    Stale {
        /// How far the timestamp is from `now`, in seconds, either way.
        skew_secs: u64,
        /// The window that was applied.
        window_secs: u64,
    },
}

/// SHA-1 over the byte-wise sorted concatenation of `parts`, as lowercase hex.
///
/// WeChat sorts the strings themselves, not their numeric values, so `"9" > "10"`; `str` ordering is byte-wise,
/// which is exactly that.
pub fn sorted_sha1_hex(parts: &[&str]) -> String {
    let mut sorted = parts.to_vec();
    sorted.sort_unstable();
    let mut hasher = Sha1::new();
    for part in sorted {
        hasher.update(part.as_bytes());
    }
    to_hex(&hasher.finalize())
}

/// The `signature` query parameter: authenticates the query only, never the body.
pub fn signature(token: &str, timestamp: &str, nonce: &str) -> String {
    sorted_sha1_hex(&[token, timestamp, nonce])
}

/// The `msg_signature` query parameter (and the reply's `MsgSignature`): covers the `Encrypt` text as well.
pub fn msg_signature(token: &str, timestamp: &str, nonce: &str, encrypt: &str) -> String {
    sorted_sha1_hex(&[token, timestamp, nonce, encrypt])
}

/// Compares a presented signature with the expected one in constant time.
///
/// Case is folded first because hex digests are case-insensitive and some proxies upper-case query values; the
/// fold runs over every byte regardless of content, so it leaks nothing either.
pub fn verify(expected: &str, presented: &str) -> Result<(), SignatureError> {
    let presented = presented.trim().to_ascii_lowercase();
    let expected = expected.to_ascii_lowercase();
    // `ct_eq` on slices of unequal length returns false without looking at contents; the length of a SHA-1 hex
    // digest is public, so that shortcut reveals nothing.
    if bool::from(expected.as_bytes().ct_eq(presented.as_bytes())) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Checks that `timestamp` (Unix seconds, as received) lies within `window_secs` of `now_unix`, either way.
///
/// The protocol itself defines no window; this is protofuse's replay defence. WeChat retries reuse the original
/// query for about 15 s, so any window of a minute or more accepts them.
pub fn check_timestamp(timestamp: &str, now_unix: i64, window_secs: u64) -> Result<(), SignatureError> {
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::MalformedTimestamp)?;
    let skew_secs = now_unix.abs_diff(ts);
    if skew_secs > window_secs {
        return Err(SignatureError::Stale { skew_secs, window_secs });
    }
    Ok(())
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_as_strings_not_numbers() {
        // Official example: ["1514711492", "1714036504", "AAAAA"] sorted as text.
        let expected = sorted_sha1_hex(&["15147114921714036504AAAAA"]);
        assert_eq!(signature("AAAAA", "1714036504", "1514711492"), expected);
    }

    #[test]
    fn verify_folds_case_and_rejects_wrong_length() {
        let sig = signature("test", "1410685589", "test");
        assert!(verify(&sig, &sig.to_ascii_uppercase()).is_ok());
        assert_eq!(verify(&sig, &sig[..39]), Err(SignatureError::Mismatch));
        assert_eq!(verify(&sig, ""), Err(SignatureError::Mismatch));
    }

    #[test]
    fn timestamp_window() {
        assert!(check_timestamp("1000", 1300, 300).is_ok());
        assert!(check_timestamp("1300", 1000, 300).is_ok());
        assert_eq!(
            check_timestamp("1000", 1301, 300),
            Err(SignatureError::Stale {
                skew_secs: 301,
                window_secs: 300
            })
        );
        assert_eq!(check_timestamp("abc", 0, 300), Err(SignatureError::MalformedTimestamp));
        assert_eq!(check_timestamp("", 0, 300), Err(SignatureError::MalformedTimestamp));
        assert!(check_timestamp(&i64::MIN.to_string(), i64::MAX, u64::MAX).is_ok());
    }
}
