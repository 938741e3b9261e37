//! What a callback answers, and when its message and the bot's reply are stored.
//!
//! The keyword table answers from the callback alone, so its answer is stored with the message in one write
//! (one commit, one fsync wait, instead of two one after the other). Any other responder needs the stored
//! message: it runs in its own task after the message is stored; whatever it says within the answer budget is
//! the passive reply, anything later goes out through the customer-service API. Either way the bot's reply is
//! stored as an outbound message in the same conversation, so the history is complete; a late one is stored
//! *with* a delivery to the account's customer-service destination in the same transaction, so the dispatcher
//! sends it behind that destination's fuse, retries it and dead-letters it like any delivery.
//!
//! This module owns that race. It never runs a responder for a duplicate (the memory of passive answers in
//! `memory.rs` answers those), never sends anything itself, and never lets an answer be lost between "too late
//! for the passive reply" and "sent later": the handler closes the channel before looking once more.

use std::sync::Arc;
use std::time::Duration;

use protofuse_adapter::IngestOutcome;
use protofuse_model::{Content, Direction, Envelope, IdempotencyKey, Message, Party, Protocol, Role, Source};
use protofuse_store::Reply;
use serde_json::json;
use tokio::sync::oneshot;

use super::accounts::{Account, Wechat};
use crate::respond::{Answer, Responder};
use crate::service::{Service, ServiceError};

/// Messages of the conversation searched for a retried message's stored passive answer: the reply follows its
/// message within seconds, and a customer writes a handful of messages in that time at most.
const RECENT_REPLIES: u32 = 20;

/// The bots' sender id in stored replies.
const BOT_ID: &str = "protofuse";

/// The scope of a bot reply's idempotency key, which is derived from the message it answers.
const REPLY_SCOPE: &str = "wechat-reply";

/// How a bot reply reaches the customer, recorded in the stored reply's metadata.
#[derive(Debug, Clone, Copy)]
enum Delivery {
    /// In the passive reply.
    Passive,
    /// Queued for the account's customer-service destination.
    CustomerServiceApi,
    /// Not sendable (a hand-off after the budget, or no customer-service credentials).
    Undelivered,
}

impl Delivery {
    fn as_str(self) -> &'static str {
        match self {
            Self::Passive => "passive",
            Self::CustomerServiceApi => "customer_service_api",
            Self::Undelivered => "undelivered",
        }
    }
}

impl Wechat {
    /// Stores a decoded callback message and decides its passive answer within the budget (`None` means
    /// `success`). A keyword answer is known from the callback alone, so it is stored with the message, in the
    /// same write; any other responder is asked about the stored message.
    pub async fn receive(
        &self,
        account: &Arc<Account>,
        envelope: Envelope,
    ) -> Result<(Message, Option<Answer>), ServiceError> {
        let instant = match &envelope.content {
            Content::Text { text } => account.keywords.answer(text),
            _ => None,
        };
        let Some(answer) = instant else {
            let outcome = self.service.send(envelope).await?;
            let message = outcome.message.clone();
            return Ok((message, self.answer(account, outcome).await));
        };
        let reply = reply_envelope(&envelope.channel, &envelope.source, &answer, Delivery::Passive);
        let (outcome, _) = self
            .service
            .send_answered(envelope, Reply::new(reply, REPLY_SCOPE))
            .await?;
        if outcome.duplicate {
            let answer = self.recall(&outcome.message).await;
            return Ok((outcome.message, answer));
        }
        self.answers.remember(outcome.message.id, &answer);
        Ok((outcome.message, Some(answer)))
    }

    /// The passive answer to a stored callback message the keywords did not answer, within the budget.
    async fn answer(&self, account: &Arc<Account>, outcome: IngestOutcome) -> Option<Answer> {
        if outcome.duplicate {
            return self.recall(&outcome.message).await;
        }
        let responder = account.responder.clone()?;
        let id = outcome.message.id;
        let (tx, mut rx) = oneshot::channel();
        let message = outcome.message;
        self.responders.spawn(respond(
            Arc::clone(account),
            responder,
            self.service.clone(),
            message.clone(),
            tx,
        ));
        let answer = match tokio::time::timeout(self.budget(), &mut rx).await {
            Ok(received) => received.ok().flatten(),
            Err(_) => {
                // From here on the task's send fails and it delivers late; an answer sent just before
                // the close is still ours.
                rx.close();
                rx.try_recv().ok().flatten()
            }
        };
        if let Some(answer) = &answer {
            // Stored before WeChat hears it: a retry that reaches another node (or this one after a restart)
            // once this reply is out finds it (`stored_answer`).
            store_reply(&self.service, &message, answer, Delivery::Passive, &[]).await;
            self.answers.remember(id, answer);
        }
        answer
    }

    /// The first delivery's passive answer, for a retried one.
    async fn recall(&self, inbound: &Message) -> Option<Answer> {
        match self.answers.recall(inbound.id) {
            Some(answer) => Some(answer),
            None => self.stored_answer(inbound).await,
        }
    }
}

impl Wechat {
    /// The passive answer stored for `inbound` (its bot reply, `delivery = passive`), when this node's memory has
    /// none: the first delivery was answered by another node of the cluster, or before a restart. The reply is
    /// stored before the passive answer goes out, so a retry sent after it finds it.
    async fn stored_answer(&self, inbound: &Message) -> Option<Answer> {
        let page = protofuse_store::PageRequest {
            after: None,
            limit: RECENT_REPLIES,
            order: protofuse_store::Order::Descending,
        };
        let recent = self
            .service
            .messages(inbound.conversation_id, page)
            .await
            .inspect_err(|e| tracing::warn!(error = %e, "stored passive answer not read"))
            .ok()?;
        let id = json!(inbound.id);
        let reply = recent.items.into_iter().find(|m| {
            m.direction == Direction::Outbound
                && m.metadata.get("in_reply_to") == Some(&id)
                && m.metadata.get("delivery") == Some(&json!(Delivery::Passive.as_str()))
        })?;
        let answer: Answer = serde_json::from_value(reply.metadata.get("answer")?.clone()).ok()?;
        self.answers.remember(inbound.id, &answer);
        Some(answer)
    }

    /// Waits up to `deadline` for responders in flight, once ingress is closed: an answer that missed the
    /// budget still goes out through the customer-service API and is stored, instead of dying with the process.
    pub async fn drain(&self, deadline: Duration) {
        self.responders.close();
        if tokio::time::timeout(deadline, self.responders.wait()).await.is_err() {
            tracing::warn!(
                in_flight = self.responders.len(),
                ?deadline,
                "shutdown: WeChat answers still in flight were not sent"
            );
        }
    }
}

/// Runs the responder, hands the answer to the waiting handler or delivers it late, and stores it.
async fn respond(
    account: Arc<Account>,
    responder: Arc<dyn Responder>,
    service: Service,
    message: Message,
    tx: oneshot::Sender<Option<Answer>>,
) {
    let answer = match responder.respond(&message).await {
        Ok(answer) => answer,
        Err(e) => {
            tracing::warn!(error = %e, cause = ?std::error::Error::source(&e), "responder failed; answering nothing");
            None
        }
    };
    // WeChat rejects a hand-off in answer to an event.
    let answer =
        answer.filter(|a| !(matches!(a, Answer::Handoff { .. }) && matches!(message.content, Content::Event { .. })));
    // In time: the handler stores the passive reply before answering WeChat.
    let Err(late) = tx.send(answer.clone()) else {
        return;
    };
    let Some(answer) = late else { return };
    let sendable = !matches!(answer, Answer::Handoff { .. });
    match account.kf_destination.as_deref().filter(|_| sendable) {
        Some(destination) => {
            let to = [destination.to_owned()];
            store_reply(&service, &message, &answer, Delivery::CustomerServiceApi, &to).await;
        }
        None => {
            tracing::warn!(
                account = account.settings().account(),
                "answer missed the budget and cannot be sent later (hand-off, or no app_secret configured)"
            );
            store_reply(&service, &message, &answer, Delivery::Undelivered, &[]).await;
        }
    }
}

/// Stores the bot's reply to a stored message in its conversation, with deliveries to `destinations` in the
/// same transaction; keyed on the inbound message, so it is stored (and sent) once whatever happens.
async fn store_reply(
    service: &Service,
    inbound: &Message,
    answer: &Answer,
    delivery: Delivery,
    destinations: &[String],
) {
    let reply = reply_envelope(&inbound.channel, &inbound.source, answer, delivery);
    let (envelope, _) = Reply::new(reply, REPLY_SCOPE).complete(inbound);
    if let Err(e) = service.send_with(envelope, destinations).await {
        tracing::warn!(error = %e, "bot reply not stored");
    }
}

/// The bot's reply on `channel` to a message that came in through `inbound`'s account, before the store links
/// it to that message ([`Reply::complete`]).
fn reply_envelope(channel: &str, inbound: &Source, answer: &Answer, delivery: Delivery) -> Envelope {
    let mut source = Source::new(Protocol::Wechat);
    source.account.clone_from(&inbound.account);
    let mut metadata = serde_json::Map::new();
    metadata.insert("delivery".to_owned(), json!(delivery.as_str()));
    metadata.insert("answer".to_owned(), json!(answer));
    Envelope {
        conversation_id: None,
        channel: channel.to_owned(),
        direction: Direction::Outbound,
        sender: Party {
            role: Role::Bot,
            external_id: BOT_ID.to_owned(),
            display_name: None,
        },
        content: super::render::stored_content(answer),
        sent_at: Some(chrono::Utc::now()),
        source,
        metadata,
        // Replaced by the reply's own key when it is completed.
        idempotency_key: IdempotencyKey::derive(REPLY_SCOPE, &[]),
    }
}
