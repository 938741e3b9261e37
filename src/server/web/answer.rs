//! The bot on the web channel: a new visitor message goes through the responder chain (`[web]` hand-off
//! keywords and auto-replies, then triage when `web.triage`) in its own task, and the answer is stored as an
//! outbound message of the conversation, which the visitor's feed then delivers like any other. A hand-off
//! queues the conversation for a human and stores `web.handoff_notice` as a system message.
//!
//! Must never: answer while a human holds the conversation (queued, assigned), answer a resend, or deliver
//! anything itself: what reaches the visitor is only what the store holds.

use std::sync::Arc;
use std::time::Duration;

use protofuse_model::{
    Content, ConversationStatus, Direction, Envelope, IdempotencyKey, Message, Party, Protocol, Role, Source,
};
use protofuse_store::{Reply, StatusChange};
use serde_json::json;
use tokio_util::task::TaskTracker;

use crate::decisions::Decisions;
use crate::respond::{Answer, Responder};
use crate::service::Service;

/// The bots' sender id in stored replies (as on WeChat).
const BOT_ID: &str = "protofuse";

/// Runs the responder for new visitor messages and stores what it says.
pub(super) struct Answers {
    responder: Box<dyn Responder>,
    /// Triage's decisions when `web.triage`: a hand-off queues the conversation to the decided department.
    triage: Option<Arc<Decisions>>,
    service: Service,
    handoff_notice: String,
    tasks: TaskTracker,
}

impl Answers {
    pub(super) fn new(
        responder: Box<dyn Responder>,
        triage: Option<Arc<Decisions>>,
        service: Service,
        handoff_notice: String,
    ) -> Arc<Self> {
        Arc::new(Self {
            responder,
            triage,
            service,
            handoff_notice,
            tasks: TaskTracker::new(),
        })
    }

    /// Answers `inbound` in the background: the visitor's send is acknowledged without waiting for the bot.
    pub(super) fn spawn(self: &Arc<Self>, inbound: Message) {
        let answers = Arc::clone(self);
        self.tasks.spawn(async move { answers.answer(inbound).await });
    }

    /// Waits up to `deadline` for answers in flight, so a reply being stored at shutdown is not cut off.
    pub(super) async fn drain(&self, deadline: Duration) {
        self.tasks.close();
        if tokio::time::timeout(deadline, self.tasks.wait()).await.is_err() {
            tracing::warn!(
                in_flight = self.tasks.len(),
                "shutdown: web bot answers still in flight"
            );
        }
    }

    async fn answer(&self, inbound: Message) {
        match self.service.conversation(inbound.conversation_id).await {
            Ok(c) if c.status == ConversationStatus::Bot => {}
            // A human has it (or it is gone): the bot keeps quiet.
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(error = %e, "web: conversation unreadable; the bot does not answer");
                return;
            }
        }
        let answer = match self.responder.respond(&inbound).await {
            Ok(answer) => answer,
            Err(e) => {
                tracing::warn!(error = %e, cause = ?std::error::Error::source(&e), "web responder failed");
                None
            }
        };
        match answer {
            None => {}
            Some(Answer::Handoff { .. }) => self.hand_off(&inbound).await,
            Some(answer) => match text_of(&answer) {
                Some(text) => self.store(&inbound, Role::Bot, text, "web-reply", Some(&answer)).await,
                None => tracing::debug!("web: an answer with platform media cannot be shown on a web page"),
            },
        }
    }

    async fn hand_off(&self, inbound: &Message) {
        let change = StatusChange {
            status: ConversationStatus::Queued,
            department: self.department(inbound).await,
            assigned_agent: None,
            if_assignee: None,
        };
        if let Err(e) = self.service.change_status(inbound.conversation_id, change).await {
            tracing::warn!(error = %e, "web: hand-off not queued");
            return;
        }
        let notice = self.handoff_notice.clone();
        self.store(inbound, Role::System, notice, "web-handoff", None).await;
    }

    /// The department triage routes `inbound` to, when triage answers here; the decision is the one the
    /// responder chain already made (one per message), not a second one.
    async fn department(&self, inbound: &Message) -> Option<String> {
        let triage = self.triage.as_ref()?;
        let text = crate::decisions::triageable(inbound)?;
        match triage.decide(inbound, text).await {
            Ok(decision) => Some(decision.department.clone()),
            Err(e) => {
                tracing::warn!(error = %e, "web: no department for the hand-off");
                None
            }
        }
    }

    /// Stores `text` as an outbound message answering `inbound`, keyed on it so it is stored once whatever
    /// happens (a crash and a redelivery, a duplicate task).
    async fn store(&self, inbound: &Message, role: Role, text: String, scope: &'static str, answer: Option<&Answer>) {
        let mut source = Source::new(Protocol::Web);
        source.account.clone_from(&inbound.source.account);
        let mut metadata = serde_json::Map::new();
        if let Some(answer) = answer {
            metadata.insert("answer".to_owned(), json!(answer));
        }
        let reply = Envelope {
            conversation_id: None,
            channel: inbound.channel.clone(),
            direction: Direction::Outbound,
            sender: Party {
                role,
                external_id: BOT_ID.to_owned(),
                display_name: None,
            },
            content: Content::Text { text },
            sent_at: Some(chrono::Utc::now()),
            source,
            metadata,
            // Replaced by the reply's own key, derived from `inbound`'s id.
            idempotency_key: IdempotencyKey::derive(scope, &[]),
        };
        let (envelope, _) = Reply::new(reply, scope).complete(inbound);
        if let Err(e) = self.service.send(envelope).await {
            tracing::warn!(error = %e, "web: bot reply not stored");
        }
    }
}

/// What a web page can show of an answer: text, and article cards as their titles and links. Media answers
/// name WeChat media ids, which mean nothing here.
fn text_of(answer: &Answer) -> Option<String> {
    match answer {
        Answer::Text { text } => Some(text.clone()),
        Answer::News { articles } => Some(
            articles
                .iter()
                .map(|a| format!("{}\n{}", a.title, a.url))
                .collect::<Vec<_>>()
                .join("\n\n"),
        ),
        _ => None,
    }
}
