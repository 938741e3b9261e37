//! [`Web`]: the channel as built from `[web]`: its settings, keys, limits and bot over the service, and the
//! signal that closes every visitor connection at shutdown. Every handler of the channel reaches it.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::answer::Answers;
use super::config::WebConfig;
use super::limits::Limits;
use super::prompts::{self, Prompts};
use super::token::{KeyError, Keys};
use crate::decisions::Decisions;
use crate::events::EventFilter;
use crate::respond::{Chain, Keywords, Responder, TriageResponder};
use crate::service::Service;

/// How often the rate limiter forgets visitors who have been quiet long enough for a full bucket.
const FORGET_QUIET_EVERY: Duration = Duration::from_secs(60);

/// Why the web channel could not be set up (validation refuses these configurations first).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebSetupError {
    /// A key is missing.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// `web.triage = true` but triage was not loaded.
    #[error("web.triage = true but triage was not loaded")]
    TriageNotLoaded,
}

/// The web channel: its settings, keys, limits and bot, over the service.
pub(crate) struct Web {
    pub(super) settings: WebConfig,
    pub(super) keys: Keys,
    pub(super) service: Service,
    pub(super) limits: Arc<Limits>,
    pub(super) answers: Arc<Answers>,
    /// What tells each connection that its visitor has a new message.
    pub(super) prompts: Arc<Prompts>,
    /// Cancelled at shutdown: sockets close (1001) and event streams end, so clients reconnect elsewhere.
    pub(super) stop: CancellationToken,
}

impl Web {
    /// Checks what `config` needs beyond validation (the keys), as `check-config` does.
    pub(crate) fn check(config: &WebConfig) -> Result<(), WebSetupError> {
        Keys::new(config)?;
        Ok(())
    }

    /// The channel from `[web]`, storing through `service`; `triage` answers visitors when `web.triage`.
    /// Starts the limiter's upkeep, so it needs a runtime.
    pub(crate) fn build(
        config: &WebConfig,
        service: Service,
        triage: Option<&Arc<Decisions>>,
    ) -> Result<Arc<Self>, WebSetupError> {
        let mut chain: Vec<Box<dyn Responder>> = vec![Box::new(Keywords::new(
            &config.handoff_keywords,
            None,
            &config.auto_replies,
        ))];
        let triage = match (config.triage, triage) {
            (false, _) => None,
            (true, None) => return Err(WebSetupError::TriageNotLoaded),
            (true, Some(decisions)) => {
                chain.push(Box::new(TriageResponder::new(Arc::clone(decisions), None)));
                Some(Arc::clone(decisions))
            }
        };
        let web = Arc::new(Self {
            settings: config.clone(),
            keys: Keys::new(config)?,
            answers: Answers::new(
                Box::new(Chain(chain)),
                triage,
                service.clone(),
                config.handoff_notice.clone(),
            ),
            service,
            limits: Limits::new(config),
            prompts: Prompts::new(),
            stop: CancellationToken::new(),
        });
        tokio::spawn(forget_quiet_visitors(Arc::clone(&web.limits), web.stop.clone()));
        // Subscribed before the first connection registers, so every connection hears of everything stored
        // after it registered.
        let events = web.service.subscribe(EventFilter::default());
        tokio::spawn(prompts::run(Arc::clone(&web.prompts), events, web.stop.clone()));
        Ok(web)
    }

    /// Closes every socket (1001) and event stream; clients reconnect and resume from their last sequence.
    pub(crate) fn close(&self) {
        self.stop.cancel();
    }

    /// Waits up to `grace` for bot answers in flight to be stored, once ingress is closed.
    pub(crate) async fn drain(&self, grace: Duration) {
        self.answers.drain(grace).await;
    }
}

async fn forget_quiet_visitors(limits: Arc<Limits>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(FORGET_QUIET_EVERY);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => limits.forget_quiet_visitors(),
        }
    }
}
