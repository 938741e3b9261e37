//! What every protofuse protocol adapter shares.
//!
//! An adapter is a pure codec between one protocol's wire form and the canonical model in `protofuse-model`:
//! bytes in, an `Envelope` out, and an acknowledgement in the protocol's own terms back. Adapters never do
//! I/O, never read the clock and never draw random numbers; the transport passes the time and the account in,
//! so decoding is deterministic, testable without sockets and fuzzable.
//!
//! There is deliberately no `Adapter` trait: the four ingress protocols have four different shapes (WeChat's
//! answer depends on a responder racing a budget, gRPC and JSON-RPC decode through their frameworks), and a
//! trait they could all implement would say nothing a reader does not see in the transport. What they share is
//! here: one refusal vocabulary and one ingest result. The recipe every transport follows is in ARCHITECTURE.md
//! ("Adding a protocol"): limit the body → decode with the protocol's codec (refusals as [`DecodeError`]) →
//! `Service::send` → encode the [`IngestOutcome`] as the protocol's acknowledgement.
//!
//! # Layout
//! - [`DecodeError`] and [`Rejection`]: why input was refused, and the HTTP-level class every transport maps it to.
//! - [`IngestOutcome`]: what storing a decoded envelope produced, for the acknowledgement.
//! - [`native`]: the canonical model's own JSON form, spoken by `POST /v1/messages`.

#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod native;

use protofuse_model::{Message, ValidationError};

/// The result of storing a decoded envelope, which the adapter turns into its protocol's acknowledgement.
#[derive(Debug, Clone)]
pub struct IngestOutcome {
    /// The stored message (the earlier one, for a duplicate).
    pub message: Message,
    /// `true` when the idempotency key had been stored before and nothing new was written.
    pub duplicate: bool,
}

/// The class of a refusal, shared by every transport so they answer alike (HTTP status, gRPC code, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// The bytes are not well-formed in the protocol (HTTP 400).
    BadRequest,
    /// The caller could not be authenticated (HTTP 401).
    Unauthorized,
    /// The body exceeds the configured limit (HTTP 413).
    PayloadTooLarge,
    /// The body's media type is not one the endpoint speaks (HTTP 415).
    UnsupportedMediaType,
    /// Well-formed, but not a valid message (HTTP 422).
    Unprocessable,
}

impl Rejection {
    /// The HTTP status code for this class.
    pub fn http_status(self) -> u16 {
        match self {
            Self::BadRequest => 400,
            Self::Unauthorized => 401,
            Self::PayloadTooLarge => 413,
            Self::UnsupportedMediaType => 415,
            Self::Unprocessable => 422,
        }
    }
}

/// Why an adapter refused input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes do not parse in the protocol's syntax.
    #[error("malformed {format}: {reason}")]
    Malformed {
        /// The syntax expected (`JSON`, `XML`, ...).
        format: &'static str,
        /// What the parser said.
        reason: String,
    },
    /// The request parses, but a field has the wrong type, an unknown variant or is missing.
    #[error("invalid message: {0}")]
    Invalid(String),
    /// The decoded message breaks a rule of the canonical model.
    #[error("invalid message: {0}")]
    Validation(#[from] ValidationError),
    /// Signature, key or credentials are missing or wrong.
    #[error("authentication failed: {0}")]
    Unauthenticated(&'static str),
    /// The body exceeds the configured limit.
    #[error("body exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body's media type is not accepted here.
    #[error("unsupported media type: expected {expected}")]
    UnsupportedMediaType {
        /// What the endpoint accepts.
        expected: &'static str,
    },
}

impl DecodeError {
    /// The class of this refusal.
    pub fn rejection(&self) -> Rejection {
        match self {
            Self::Malformed { .. } => Rejection::BadRequest,
            Self::Invalid(_) | Self::Validation(_) => Rejection::Unprocessable,
            Self::Unauthenticated(_) => Rejection::Unauthorized,
            Self::TooLarge { .. } => Rejection::PayloadTooLarge,
            Self::UnsupportedMediaType { .. } => Rejection::UnsupportedMediaType,
        }
    }

    /// A stable, machine-readable code for error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed { .. } => "malformed_body",
            Self::Invalid(_) | Self::Validation(_) => "invalid_message",
            Self::Unauthenticated(_) => "unauthenticated",
            Self::TooLarge { .. } => "payload_too_large",
            Self::UnsupportedMediaType { .. } => "unsupported_media_type",
        }
    }
}
