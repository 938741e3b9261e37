//! [`TriageResponder`]: built-in triage as a responder. A hand-off becomes [`Answer::Handoff`]
//! (`transfer_customer_service` on WeChat), a knowledge-base answer or suggestions become text, the default
//! reply becomes text unless it is configured empty (then the next responder in the chain, e.g. a webhook,
//! gets its turn).
//!
//! The decision comes from `crate::decisions`: made once per message, from the conversation's recent history
//! (so repeated complaints and bot failures hand off here too), and the same one the dispatcher's triage step
//! records.

use std::sync::Arc;

use async_trait::async_trait;
use protofuse_model::Message;
use protofuse_triage::{Action, Decision};

use super::answer::Answer;
use super::responder::{RespondError, Responder};
use crate::decisions::Decisions;

/// Triage answering text messages.
#[derive(Clone)]
pub struct TriageResponder {
    decisions: Arc<Decisions>,
    kf_account: Option<String>,
}

impl TriageResponder {
    /// Answers from `decisions`; hands off to `kf_account` when set.
    pub fn new(decisions: Arc<Decisions>, kf_account: Option<String>) -> Self {
        Self { decisions, kf_account }
    }

    /// The answer for a decision.
    pub fn answer(&self, decision: &Decision) -> Option<Answer> {
        let text = match &decision.decision {
            Action::Handoff { .. } => {
                return Some(Answer::Handoff {
                    kf_account: self.kf_account.clone(),
                });
            }
            Action::BotAnswer { answer, .. } => answer.clone(),
            Action::Suggest { questions } => {
                let list: Vec<String> = questions.iter().map(|q| format!("· {q}")).collect();
                format!("您是不是想问 / Did you mean:\n{}", list.join("\n"))
            }
            Action::DefaultReply { text } if text.is_empty() => return None,
            Action::DefaultReply { text } => text.clone(),
        };
        Some(Answer::Text { text })
    }
}

#[async_trait]
impl Responder for TriageResponder {
    async fn respond(&self, message: &Message) -> Result<Option<Answer>, RespondError> {
        let Some(text) = crate::decisions::triageable(message) else {
            return Ok(None);
        };
        let decision = self
            .decisions
            .decide(message, text)
            .await
            .map_err(|e| RespondError::Triage(Box::new(e)))?;
        Ok(self.answer(&decision))
    }
}
