//! The operators' view and commands across nodes, over plain NATS subjects (nothing here needs to outlive a
//! message): each node announces itself and its breakers every [`HEARTBEAT`] on `<prefix>.control.heartbeat`,
//! so any node's admin API lists the nodes it sees with their breakers; a breaker override set on one node is
//! published on `<prefix>.control.breaker` and applied by every node (the sender included, idempotently); a
//! reload is a request on `<prefix>.control.reload` that every node answers with its own outcome (each reads its
//! own configuration file), gathered until every node listed has answered or [`RELOAD_ANSWER_WITHIN`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::time::Instant;

use super::connection::{Cluster, ClusterError};
use crate::dispatch::{Dispatcher, Override};
use crate::reload::Reloader;

/// How often a node announces itself: often enough that a list is seconds old at most, rare enough to be noise.
const HEARTBEAT: Duration = Duration::from_secs(2);
/// A node not heard from for three heartbeats is no longer listed.
const GONE_AFTER: Duration = Duration::from_secs(6);
/// How long a cluster-wide reload waits for the nodes' answers: a reload reads files and may load triage
/// models, which takes seconds at most; a node silent past this is reported as not answering.
pub(crate) const RELOAD_ANSWER_WITHIN: Duration = Duration::from_secs(30);

#[derive(Serialize, Deserialize)]
struct Heartbeat {
    node: String,
    destinations: serde_json::Value,
}

#[derive(Serialize, Deserialize)]
struct BreakerCommand {
    destination: String,
    r#override: Override,
    by: String,
}

/// One node's answer to a cluster-wide reload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct NodeReload {
    /// Its `cluster.node`.
    pub node: String,
    /// `true` when it put its configuration in force.
    pub ok: bool,
    /// What changed (see [`crate::reload::Reloaded`]), or the refusal with every problem.
    pub outcome: serde_json::Value,
}

/// A node as the admin API lists it.
#[derive(Debug, Clone, Serialize)]
pub struct NodeView {
    /// Its `cluster.node`.
    pub node: String,
    /// Milliseconds since its last heartbeat.
    pub last_seen_ms: u64,
    /// Its destinations with breaker state and override, as it last announced them.
    pub destinations: serde_json::Value,
}

/// This node's side of the control subjects.
pub(crate) struct Control {
    client: async_nats::Client,
    config: super::ClusterConfig,
    reloader: Arc<Reloader>,
    seen: Mutex<HashMap<String, (Instant, serde_json::Value)>>,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control")
            .field("node", &self.config.node)
            .finish_non_exhaustive()
    }
}

impl Control {
    /// Subscribes to the control subjects and starts announcing this node, until `stop`.
    pub(crate) async fn start(
        cluster: &Cluster,
        dispatcher: Arc<Dispatcher>,
        reloader: Arc<Reloader>,
        mut stop: watch::Receiver<bool>,
    ) -> Result<Arc<Self>, ClusterError> {
        let client = cluster.jetstream.client();
        let config = cluster.config.clone();
        let failed = |e: &dyn std::fmt::Display| ClusterError::JetStream {
            what: "subject",
            name: config.control_subject("*"),
            message: e.to_string(),
        };
        let mut commands = client
            .subscribe(config.control_subject("*"))
            .await
            .map_err(|e| failed(&e))?;
        let control = Arc::new(Self {
            client,
            config: config.clone(),
            reloader,
            seen: Mutex::new(HashMap::new()),
        });
        let this = Arc::clone(&control);
        tokio::spawn(async move {
            let mut beat = tokio::time::interval(HEARTBEAT);
            // `wait_for`'s guard is not `Send`: dropped inside this block, never held across the select.
            let stopped = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            tokio::pin!(stopped);
            loop {
                tokio::select! {
                    () = &mut stopped => return,
                    _ = beat.tick() => this.announce(&dispatcher).await,
                    message = commands.next() => match message {
                        Some(message) => this.handle(&dispatcher, &message),
                        None => return,
                    },
                }
            }
        });
        Ok(control)
    }

    async fn announce(&self, dispatcher: &Dispatcher) {
        let heartbeat = Heartbeat {
            node: self.config.node.clone(),
            destinations: serde_json::to_value(dispatcher.destinations()).unwrap_or_default(),
        };
        let payload = serde_json::to_vec(&heartbeat).unwrap_or_default();
        if let Err(e) = self
            .client
            .publish(self.config.control_subject("heartbeat"), payload.into())
            .await
        {
            tracing::warn!(error = %e, "cluster: heartbeat not sent");
        }
    }

    fn handle(self: &Arc<Self>, dispatcher: &Dispatcher, message: &async_nats::Message) {
        let (subject, payload) = (message.subject.as_str(), &message.payload[..]);
        if subject == self.config.control_subject("reload")
            && let Some(reply) = message.reply.clone()
        {
            // Off the control loop: heartbeats go on while the node reads its files.
            tokio::spawn(Arc::clone(self).reload_here(reply));
        } else if subject == self.config.control_subject("heartbeat") {
            if let Ok(beat) = serde_json::from_slice::<Heartbeat>(payload) {
                self.lock().insert(beat.node, (Instant::now(), beat.destinations));
            }
        } else if subject == self.config.control_subject("breaker")
            && let Ok(command) = serde_json::from_slice::<BreakerCommand>(payload)
        {
            match dispatcher.fuse(&command.destination) {
                Some(fuse) => {
                    fuse.set_override(command.r#override);
                    tracing::info!(destination = %command.destination, r#override = ?command.r#override, by = %command.by, "breaker override from the cluster");
                }
                None => {
                    tracing::warn!(destination = %command.destination, "cluster: breaker override for a destination this node does not have");
                }
            }
        }
    }

    /// Tells every node (this one included) to set `destination`'s override.
    pub(crate) async fn set_breaker(&self, destination: &str, r#override: Override) -> Result<(), String> {
        let command = BreakerCommand {
            destination: destination.to_owned(),
            r#override,
            by: self.config.node.clone(),
        };
        let payload = serde_json::to_vec(&command).map_err(|e| e.to_string())?;
        self.client
            .publish(self.config.control_subject("breaker"), payload.into())
            .await
            .map_err(|e| e.to_string())?;
        self.client.flush().await.map_err(|e| e.to_string())
    }

    async fn reload_here(self: Arc<Self>, reply: async_nats::Subject) {
        let answer = match self.reloader.reload().await {
            Ok(reloaded) => NodeReload {
                node: self.config.node.clone(),
                ok: true,
                outcome: serde_json::to_value(reloaded).unwrap_or_default(),
            },
            Err(e) => {
                tracing::error!(error = %e, problems = ?e.issues().iter().map(ToString::to_string).collect::<Vec<_>>(), "cluster: configuration not reloaded; the running one stays");
                NodeReload {
                    node: self.config.node.clone(),
                    ok: false,
                    outcome: e.detail(),
                }
            }
        };
        let payload = serde_json::to_vec(&answer).unwrap_or_default();
        if let Err(e) = self.client.publish(reply, payload.into()).await {
            tracing::warn!(error = %e, "cluster: reload answer not sent");
        }
    }

    /// Tells every node (this one included) to reload its configuration, and gathers their answers: every
    /// node listed by [`Control::nodes`] answers, or is reported as not answering after
    /// [`RELOAD_ANSWER_WITHIN`]. Answers from nodes not yet listed are kept too.
    pub(crate) async fn reload_all(&self) -> Result<Vec<NodeReload>, String> {
        let mut expected: Vec<String> = self.nodes().into_iter().map(|n| n.node).collect();
        if !expected.contains(&self.config.node) {
            expected.push(self.config.node.clone());
        }
        let inbox = self.client.new_inbox();
        let mut answers = self.client.subscribe(inbox.clone()).await.map_err(|e| e.to_string())?;
        self.client
            .publish_with_reply(self.config.control_subject("reload"), inbox, Vec::new().into())
            .await
            .map_err(|e| e.to_string())?;
        self.client.flush().await.map_err(|e| e.to_string())?;
        let mut nodes: Vec<NodeReload> = Vec::new();
        let deadline = tokio::time::sleep(RELOAD_ANSWER_WITHIN);
        tokio::pin!(deadline);
        while !expected.iter().all(|e| nodes.iter().any(|n| &n.node == e)) {
            tokio::select! {
                () = &mut deadline => break,
                answer = answers.next() => match answer {
                    Some(message) => match serde_json::from_slice::<NodeReload>(&message.payload) {
                        Ok(answer) => nodes.push(answer),
                        Err(e) => tracing::warn!(error = %e, "cluster: an unreadable reload answer"),
                    },
                    None => break,
                },
            }
        }
        for node in expected {
            if !nodes.iter().any(|n| n.node == node) {
                let message = format!("no answer within {RELOAD_ANSWER_WITHIN:?}");
                nodes.push(NodeReload {
                    node,
                    ok: false,
                    outcome: serde_json::json!({ "code": "no_answer", "message": message }),
                });
            }
        }
        nodes.sort_by(|a, b| a.node.cmp(&b.node));
        Ok(nodes)
    }

    /// The nodes heard from recently, by name.
    pub(crate) fn nodes(&self) -> Vec<NodeView> {
        let mut seen = self.lock();
        seen.retain(|_, (at, _)| at.elapsed() < GONE_AFTER);
        let mut nodes: Vec<NodeView> = seen
            .iter()
            .map(|(node, (at, destinations))| NodeView {
                node: node.clone(),
                last_seen_ms: u64::try_from(at.elapsed().as_millis()).unwrap_or(u64::MAX),
                destinations: destinations.clone(),
            })
            .collect();
        nodes.sort_by(|a, b| a.node.cmp(&b.node));
        nodes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, serde_json::Value)>> {
        // The map holds whole entries only: usable after a panic elsewhere.
        self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
