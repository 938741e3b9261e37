//! [`Prompts`]: one subscription to the event bus for the whole channel, turned into a prompt for the
//! connections of the visitor each event is about. A connection registers before it first reads the store;
//! every message stored for its visitor from then on prompts it to read the store again (`replay.rs`).
//!
//! Why not a bus subscription per connection: every subscriber wakes for every event, so 20,000 idle visitors
//! would cost 20,000 wake-ups per message; here an event costs one map lookup, and an idle connection holds
//! only a `Notify`. Prompts coalesce (a connection prompted twice before it reads reads once) and are never
//! lost: `Notify` keeps a permit for a connection that is not waiting yet.
//!
//! Must never: carry a message (what a visitor is sent is read from the store), or block the bus.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::events::{Event, Received, Subscription};

/// The registered connections, by visitor id (the conversations' customer).
#[derive(Default)]
pub(super) struct Prompts {
    visitors: Mutex<HashMap<String, Vec<Arc<Notify>>>>,
}

/// One connection's registration; dropping it unregisters.
pub(super) struct Registration {
    prompts: Arc<Prompts>,
    visitor: String,
    notify: Arc<Notify>,
}

impl Prompts {
    pub(super) fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Registers a connection of `visitor`: from now on, every message stored for the visitor prompts it.
    pub(super) fn register(self: &Arc<Self>, visitor: &str) -> Registration {
        let notify = Arc::new(Notify::new());
        // Never held across an await; a poisoned lock only means a panic elsewhere, the map is still whole.
        let mut visitors = self.visitors.lock().unwrap_or_else(PoisonError::into_inner);
        visitors
            .entry(visitor.to_owned())
            .or_default()
            .push(Arc::clone(&notify));
        Registration {
            prompts: Arc::clone(self),
            visitor: visitor.to_owned(),
            notify,
        }
    }

    fn prompt(&self, visitor: &str) {
        let visitors = self.visitors.lock().unwrap_or_else(PoisonError::into_inner);
        for notify in visitors.get(visitor).into_iter().flatten() {
            notify.notify_one();
        }
    }

    fn prompt_everyone(&self) {
        let visitors = self.visitors.lock().unwrap_or_else(PoisonError::into_inner);
        for notify in visitors.values().flatten() {
            notify.notify_one();
        }
    }
}

impl Registration {
    /// Resolves once a message was stored for the visitor since the last prompt. Cancel-safe.
    pub(super) async fn prompted(&self) {
        self.notify.notified().await;
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut visitors = self.prompts.visitors.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(list) = visitors.get_mut(&self.visitor) {
            list.retain(|n| !Arc::ptr_eq(n, &self.notify));
            if list.is_empty() {
                visitors.remove(&self.visitor);
            }
        }
    }
}

/// Prompts the connections of each stored message's customer until `stop`. Falling behind the bus prompts
/// everyone: what they missed is in the store.
pub(super) async fn run(prompts: Arc<Prompts>, mut subscription: Subscription, stop: CancellationToken) {
    loop {
        let received = tokio::select! {
            () = stop.cancelled() => return,
            received = subscription.next() => received,
        };
        match received {
            None => return,
            Some(Received::Lagged(_)) => prompts.prompt_everyone(),
            Some(Received::Event(Event::MessageStored { customer_id, .. })) => prompts.prompt(&customer_id),
            Some(Received::Event(_)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    async fn is_prompted(registration: &Registration) -> bool {
        tokio::time::timeout(Duration::from_millis(50), registration.prompted())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn prompts_reach_the_visitors_connections_coalesce_and_stop_at_unregistration() {
        let prompts = Prompts::new();
        let (a1, a2, b) = (prompts.register("a"), prompts.register("a"), prompts.register("b"));
        prompts.prompt("a");
        prompts.prompt("a");
        assert!(is_prompted(&a1).await && is_prompted(&a2).await);
        assert!(!is_prompted(&a1).await, "two prompts before a read are one");
        assert!(!is_prompted(&b).await);
        prompts.prompt_everyone();
        assert!(is_prompted(&b).await);
        drop((a1, a2));
        assert!(prompts.visitors.lock().unwrap().get("a").is_none());
    }
}
