//! One triage decision per message. Built-in triage is consulted in two places: a WeChat account's responder
//! (which needs the answer within the passive-reply budget) and the dispatcher's triage step (which records the
//! outcome and queues hand-offs). Both ask [`Decisions::decide`], which computes the decision once per message,
//! from the conversation's recent history, and gives every caller the same one, so the answer the customer got
//! and the outcome stored (and the hand-off queued) can never disagree.
//!
//! Owns the single-flight, the history read that builds the context, and the triage models in force: a reload
//! (`POST /admin/triage/reload`, SIGHUP) loads them again from the files `[triage]` names and swaps them in
//! whole, so a decision already started finishes on the models it started with and a broken file changes
//! nothing. Must never write the store (the triage step records the outcome) or answer anyone (responders do).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use protofuse_model::{Content, Message, MessageId, TriageDecision};
use protofuse_store::{Order, PageRequest, Store, StoreError};
use protofuse_triage::{ConversationContext, Decision, Triage, TriageConfig, TriageError};
use serde::Serialize;
use tokio::sync::OnceCell;
use tokio::time::Instant;

/// Messages of the conversation read to judge repeated complaints and bot failures.
const HISTORY: u32 = 20;
/// How long a decision is kept for the other caller: the responder and the triage step both run within
/// moments of the message being stored; a minute covers a busy dispatcher queue.
const KEEP_FOR: Duration = Duration::from_secs(60);
/// Past this many kept decisions, expired ones are swept on the next insert.
const SWEEP_ABOVE: usize = 4096;

type Slot = Arc<OnceCell<Arc<Decision>>>;

/// The text triage would judge in `message`: a text message that says something. Whitespace or invisible
/// characters alone are no text, like an image: nothing to triage, no default reply.
pub fn triageable(message: &Message) -> Option<&str> {
    match &message.content {
        Content::Text { text } if !protofuse_triage::features::is_blank(text) => Some(text),
        _ => None,
    }
}

/// The versions of the triage models in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Models {
    /// The intent model's.
    pub intent: String,
    /// The department router's, when one is configured.
    pub router: Option<String>,
}

impl Models {
    fn of(triage: &Triage) -> Self {
        Self {
            intent: triage.model().version().to_owned(),
            router: triage.router_version().map(str::to_owned),
        }
    }
}

/// `error` and its causes, `: `-separated: a reload's error names the file, its cause says what is wrong with it.
pub(crate) fn error_chain(error: &TriageError) -> String {
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// Triage decisions, one per message. Share one per process.
pub struct Decisions {
    triage: ArcSwap<Triage>,
    /// What [`Decisions::reload`] loads again; a configuration reload replaces it with the models.
    config: ArcSwap<TriageConfig>,
    store: Arc<dyn Store>,
    recent: Mutex<HashMap<MessageId, (Instant, Slot)>>,
}

impl Decisions {
    /// Decisions made by `triage` (loaded from `config`), with history read from `store`.
    pub fn new(triage: Arc<Triage>, config: TriageConfig, store: Arc<dyn Store>) -> Self {
        Self {
            triage: ArcSwap::new(triage),
            config: ArcSwap::from_pointee(config),
            store,
            recent: Mutex::new(HashMap::new()),
        }
    }

    /// The versions of the models in force.
    pub fn models(&self) -> Models {
        Models::of(&self.triage.load())
    }

    /// Loads the intent model, the router and the knowledge base again from the files `[triage]` names and
    /// swaps them in; on any error the models in force stay. Blocking (reads files, optimises the graphs):
    /// call it off the async workers.
    pub fn reload(&self) -> Result<Models, TriageError> {
        let triage = Triage::load(&self.config.load())?;
        let models = Models::of(&triage);
        self.triage.store(Arc::new(triage));
        tracing::info!(intent = %models.intent, router = ?models.router, "triage models reloaded");
        Ok(models)
    }

    /// Puts `triage`, loaded from `config`, in force (a configuration reload: rules, routing, the knowledge
    /// base and the models change together); later [`Decisions::reload`]s read `config`'s files.
    pub fn replace(&self, triage: Triage, config: TriageConfig) -> Models {
        let models = Models::of(&triage);
        self.config.store(Arc::new(config));
        self.triage.store(Arc::new(triage));
        models
    }

    /// The decision for `message`, whose text is `text`: computed by the first caller, shared with the rest.
    pub async fn decide(&self, message: &Message, text: &str) -> Result<Arc<Decision>, StoreError> {
        let slot = self.slot(message.id);
        let decision = slot
            .get_or_try_init(|| async {
                let context = self.context(message).await?;
                let decision = self.triage.load().triage(text, &context);
                tracing::info!(
                    message = %message.id,
                    intent = %decision.intent,
                    confidence = decision.confidence,
                    department = %decision.department,
                    reason = %decision.reason,
                    "triaged"
                );
                Ok::<_, StoreError>(Arc::new(decision))
            })
            .await?;
        Ok(decision.clone())
    }

    fn slot(&self, id: MessageId) -> Slot {
        // The map is valid after any panic (inserts are atomic), so poisoning is ignored.
        let mut recent = self.recent.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if recent.len() > SWEEP_ABOVE {
            recent.retain(|_, (at, _)| at.elapsed() < KEEP_FOR);
        }
        recent
            .entry(id)
            .or_insert_with(|| (Instant::now(), Arc::new(OnceCell::new())))
            .1
            .clone()
    }

    /// What earlier triage outcomes of this conversation say: the customer's intents, oldest first, and how
    /// often the bot could only suggest or give the default reply.
    async fn context(&self, message: &Message) -> Result<ConversationContext, StoreError> {
        let page = PageRequest {
            after: None,
            limit: HISTORY,
            order: Order::Descending,
        };
        let recent = self.store.messages(message.conversation_id, page).await?;
        let mut ctx = ConversationContext::default();
        for earlier in recent.items.iter().rev().filter(|m| m.id != message.id) {
            if let Some(outcome) = &earlier.triage {
                ctx.recent_intents.push(outcome.intent.clone());
                if matches!(outcome.decision, TriageDecision::Suggest | TriageDecision::DefaultReply) {
                    ctx.bot_failures += 1;
                }
            }
        }
        Ok(ctx)
    }
}
