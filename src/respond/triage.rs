//! [`TriageResponder`]: built-in triage as a responder. A hand-off becomes [`Answer::Handoff`]
//! (`transfer_customer_service` on WeChat), a knowledge-base answer or suggestions become text, the default
//! reply becomes text unless it is configured empty (then the next responder in the chain, e.g. a webhook,
//! gets its turn).
//!
//! The conversation's history is not read here (a responder never touches the store), so hand-off on repeated
//! complaints or bot failures needs the caller to pass a context; this responder sees each message alone.

use std::sync::Arc;

use async_trait::async_trait;
use protofuse_model::{Content, Message};
use protofuse_triage::{Action, ConversationContext, Decision, Triage};

use super::answer::Answer;
use super::responder::{RespondError, Responder};

/// Triage answering text messages.
#[derive(Debug, Clone)]
pub struct TriageResponder {
    triage: Arc<Triage>,
    kf_account: Option<String>,
}

impl TriageResponder {
    /// Hands off to `kf_account` when set.
    pub fn new(triage: Arc<Triage>, kf_account: Option<String>) -> Self {
        Self { triage, kf_account }
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
        let Content::Text { text } = &message.content else {
            return Ok(None);
        };
        let decision = self.triage.triage(text, &ConversationContext::default());
        tracing::info!(
            message = %message.id,
            intent = %decision.intent,
            confidence = decision.confidence,
            department = %decision.department,
            reason = %decision.reason,
            "triaged"
        );
        Ok(self.answer(&decision))
    }
}
