//! Routes: which destinations a message goes to, decided from the envelope before it is stored (so the outbox
//! rows are written in the message's own transaction).

use protofuse_model::Envelope;

use crate::dispatch::RouteConfig;

/// The configured routes, in order.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    routes: Vec<RouteConfig>,
}

impl Routes {
    /// Routes from config (validated: every destination exists).
    pub fn new(routes: Vec<RouteConfig>) -> Self {
        Self { routes }
    }

    /// The destinations of every route matching `envelope`, each once, in configuration order.
    pub fn destinations(&self, envelope: &Envelope) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let account = envelope.source.account.as_deref();
        for route in &self.routes {
            let matches = accepts(&route.channels, Some(envelope.channel.as_str()))
                && accepts(&route.accounts, account)
                && accepts(&route.directions, Some(envelope.direction.as_str()))
                && accepts(&route.roles, Some(envelope.sender.role.as_str()));
            if matches {
                for d in &route.destinations {
                    if !out.contains(d) {
                        out.push(d.clone());
                    }
                }
            }
        }
        out
    }
}

/// An empty filter accepts anything; otherwise the value must be listed.
fn accepts(filter: &[String], value: Option<&str>) -> bool {
    filter.is_empty() || value.is_some_and(|v| filter.iter().any(|f| f == v))
}
