//! The [`Responder`] seam and [`Chain`], which tries responders in order.

use async_trait::async_trait;
use protofuse_model::Message;

use super::answer::Answer;

/// Why a responder could not answer. The caller logs it and answers nothing; the customer's message is stored
/// regardless.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RespondError {
    /// The backend could not be reached or did not answer in time.
    #[error("responder backend unreachable")]
    Transport(#[source] reqwest::Error),
    /// The backend answered with an error status.
    #[error("responder backend answered {0}")]
    Status(u16),
    /// Triage could not read the conversation's history.
    #[error("triage could not decide")]
    Triage(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The backend's answer is not the documented JSON.
    #[error("responder backend answered malformed json")]
    Malformed(#[source] serde_json::Error),
}

/// Produces the answer to one stored inbound message.
///
/// May be called concurrently, and may take as long as it likes: the caller bounds it. Called at most once
/// per stored message (duplicates never reach it).
#[async_trait]
pub trait Responder: Send + Sync + 'static {
    /// The answer, or `None` when there is nothing to say.
    async fn respond(&self, message: &Message) -> Result<Option<Answer>, RespondError>;
}

/// Responders tried in order; the first answer wins, an error stops the chain.
pub struct Chain(pub Vec<Box<dyn Responder>>);

#[async_trait]
impl Responder for Chain {
    async fn respond(&self, message: &Message) -> Result<Option<Answer>, RespondError> {
        for responder in &self.0 {
            if let Some(answer) = responder.respond(message).await? {
                return Ok(Some(answer));
            }
        }
        Ok(None)
    }
}
