//! [`WebError`]: every refusal of the web channel, with its stable code, its HTTP status, and its form as a
//! WebSocket error frame, so a visitor is told the same thing whichever transport carried the request.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use protofuse_adapter::{DecodeError, Rejection};
use serde_json::{Value, json};

use super::limits::LimitError;
use super::token::TokenError;
use crate::server::error::ApiError;
use crate::service::{ErrorClass, ServiceError};
use crate::telemetry::metric;

/// Why the web channel refused a request, a frame or a connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum WebError {
    /// The token is missing, tampered with, expired or malformed.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The site is not configured.
    #[error("unknown site `{0}`")]
    UnknownSite(String),
    /// The site accepts only its signed users.
    #[error("this site accepts only signed-in users (user_token)")]
    AnonymousNotAllowed,
    /// `web.websocket = false`.
    #[error("WebSocket is turned off here; use GET /web/events and POST /web/messages")]
    WebsocketDisabled,
    /// A connection or rate limit.
    #[error(transparent)]
    Limit(#[from] LimitError),
    /// The visitor's text is over `web.max_message_bytes`.
    #[error("message is {size} bytes; the limit is {limit}")]
    TooLarge {
        /// The text's size.
        size: usize,
        /// `web.max_message_bytes`.
        limit: usize,
    },
    /// Not the JSON this endpoint or frame expects.
    #[error("{0}")]
    Invalid(String),
    /// `after` or `Last-Event-ID` is not a sequence this channel issued.
    #[error("after / Last-Event-ID must be a sequence this channel sent (a message id)")]
    InvalidCursor,
    /// The request body could not be read (too large, wrong type).
    #[error(transparent)]
    Body(#[from] DecodeError),
    /// The service refused or failed.
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl WebError {
    /// A stable, machine-readable code, documented in the README.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            Self::Token(TokenError::Missing) => "token_required",
            Self::Token(TokenError::Expired) => "token_expired",
            Self::Token(_) => "invalid_token",
            Self::UnknownSite(_) => "unknown_site",
            Self::AnonymousNotAllowed => "anonymous_not_allowed",
            Self::WebsocketDisabled => "websocket_disabled",
            Self::Limit(LimitError::Full) => "channel_full",
            Self::Limit(LimitError::VisitorFull(_)) => "too_many_connections",
            Self::Limit(LimitError::RateLimited { .. } | LimitError::SessionsRateLimited { .. }) => "rate_limited",
            Self::TooLarge { .. } => "message_too_large",
            Self::Invalid(_) => "invalid_request",
            Self::InvalidCursor => "invalid_cursor",
            Self::Body(e) => e.code(),
            Self::Service(e) => e.code(),
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::Token(_) => StatusCode::UNAUTHORIZED,
            Self::UnknownSite(_) | Self::Invalid(_) | Self::InvalidCursor => StatusCode::BAD_REQUEST,
            Self::AnonymousNotAllowed | Self::WebsocketDisabled => StatusCode::FORBIDDEN,
            Self::Limit(LimitError::Full) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Limit(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Body(e) => match e.rejection() {
                Rejection::BadRequest => StatusCode::BAD_REQUEST,
                Rejection::Unauthorized => StatusCode::UNAUTHORIZED,
                Rejection::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                Rejection::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Rejection::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
            },
            Self::Service(e) => match e.class() {
                ErrorClass::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
                ErrorClass::NotFound => StatusCode::NOT_FOUND,
                ErrorClass::AlreadyExists | ErrorClass::FailedPrecondition => StatusCode::CONFLICT,
                ErrorClass::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            },
        }
    }

    /// Seconds after which a retry may pass, for rate limits and a full channel.
    fn retry_after(&self) -> Option<u64> {
        match self {
            Self::Limit(LimitError::RateLimited { retry_after } | LimitError::SessionsRateLimited { retry_after }) => {
                Some(retry_after.as_secs().max(1))
            }
            Self::Limit(LimitError::Full) => Some(1),
            _ => None,
        }
    }

    /// The WebSocket frame telling the visitor about it; `client_id` names the message refused, if any.
    pub(super) fn frame(&self, client_id: Option<&str>) -> Value {
        let mut error = json!({"code": self.code(), "message": self.to_string()});
        if let Some(after) = self.retry_after() {
            error["retry_after"] = json!(after);
        }
        let mut frame = json!({"type": "error", "error": error});
        if let Some(id) = client_id {
            frame["client_id"] = json!(id);
        }
        frame
    }

    /// Counts the refusal by code (bounded: the codes are constants).
    pub(super) fn count(&self) {
        metrics::counter!(metric::WEB_REFUSALS, "code" => self.code()).increment(1);
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        self.count();
        let retry_after = self.retry_after();
        let mut response = ApiError::new(self.status(), self.code(), self.to_string()).into_response();
        if let Some(secs) = retry_after
            && let Ok(value) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}
