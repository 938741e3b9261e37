//! The event bus across nodes: every node publishes its conversation events to one JetStream stream (a subject
//! per conversation) and feeds its local subscribers from that stream, its own events included. So a subscriber
//! on any node sees every node's events, all in the stream's one order.
//!
//! A publish waits for JetStream's acknowledgement before the ingest that caused it answers: a client that sends
//! through node B, then through node C, finds B's event before C's in the stream. Must never lose an event
//! silently: if JetStream cannot take it, it is logged, counted and still given to this node's subscribers.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt as _;
use protofuse_model::{ConversationId, ConversationStatus, Message};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};

use super::connection::{Cluster, ClusterError};
use crate::events::Event;

/// Longest a publish waits for JetStream's acknowledgement before the event is given to local subscribers only.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(2);

/// An event as it travels between nodes.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Wire {
    MessageStored {
        message: Box<Message>,
        customer_id: String,
    },
    StatusChanged {
        conversation_id: ConversationId,
        customer_id: String,
        from: ConversationStatus,
        to: ConversationStatus,
    },
}

impl Wire {
    fn of(event: &Event) -> Self {
        match event {
            Event::MessageStored { message, customer_id } => Self::MessageStored {
                message: Box::new((**message).clone()),
                customer_id: customer_id.clone(),
            },
            Event::StatusChanged {
                conversation_id,
                customer_id,
                from,
                to,
            } => Self::StatusChanged {
                conversation_id: *conversation_id,
                customer_id: customer_id.clone(),
                from: *from,
                to: *to,
            },
        }
    }

    fn into_event(self) -> Event {
        match self {
            Self::MessageStored { message, customer_id } => Event::MessageStored {
                message: Arc::new(*message),
                customer_id,
            },
            Self::StatusChanged {
                conversation_id,
                customer_id,
                from,
                to,
            } => Event::StatusChanged {
                conversation_id,
                customer_id,
                from,
                to,
            },
        }
    }
}

/// The publishing side of the cross-node bus.
#[derive(Clone)]
pub(crate) struct StreamRelay {
    jetstream: jetstream::Context,
    cluster: super::ClusterConfig,
}

impl std::fmt::Debug for StreamRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamRelay")
            .field("stream", &self.cluster.event_stream())
            .finish()
    }
}

impl StreamRelay {
    /// Creates (or opens) the event stream, and feeds every event in it from now on into `local` until `stop`.
    pub(crate) async fn start(
        cluster: &Cluster,
        local: broadcast::Sender<Event>,
        mut stop: watch::Receiver<bool>,
    ) -> Result<Self, ClusterError> {
        let config = &cluster.config;
        let name = config.event_stream();
        let failed = |e: &dyn std::fmt::Display| ClusterError::JetStream {
            what: "stream",
            name: name.clone(),
            message: e.to_string(),
        };
        let stream = cluster
            .stream(stream::Config {
                name: name.clone(),
                subjects: vec![config.event_subject("*")],
                max_age: config.event_retention,
                ..stream::Config::default()
            })
            .await?;
        // An ordered consumer: no acknowledgements, in stream order, recreated by the client after a gap.
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                deliver_policy: consumer::DeliverPolicy::New,
                filter_subject: config.event_subject("*"),
                ..consumer::pull::OrderedConfig::default()
            })
            .await
            .map_err(|e| failed(&e))?;
        let mut messages = consumer.messages().await.map_err(|e| failed(&e))?;
        let node = config.node.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => return,
                    next = messages.next() => match next {
                        Some(Ok(message)) => match serde_json::from_slice::<Wire>(&message.payload) {
                            // An error only means no local subscriber right now.
                            Ok(wire) => drop(local.send(wire.into_event())),
                            Err(e) => tracing::warn!(error = %e, "cluster: an event in the stream does not decode; skipped"),
                        },
                        Some(Err(e)) => tracing::warn!(node = %node, error = %e, "cluster: event stream interrupted; resuming"),
                        None => {
                            tracing::error!(node = %node, "cluster: the event stream ended; this node's subscribers hear only its own events");
                            return;
                        }
                    }
                }
            }
        });
        Ok(Self {
            jetstream: cluster.jetstream.clone(),
            cluster: config.clone(),
        })
    }
}

#[async_trait::async_trait]
impl crate::events::Relay for StreamRelay {
    /// Publishes `event` and waits for the stream to hold it. `false` when it could not: the caller then gives
    /// it to this node's subscribers itself.
    async fn publish(&self, event: &Event) -> bool {
        let Ok(payload) = serde_json::to_vec(&Wire::of(event)) else {
            return false;
        };
        let subject = self.cluster.event_subject(&event.conversation_id().to_string());
        let published = async {
            self.jetstream
                .publish(subject, payload.into())
                .await
                .map_err(|e| e.to_string())?
                .await
                .map_err(|e| e.to_string())
        };
        match tokio::time::timeout(PUBLISH_TIMEOUT, published).await {
            Ok(Ok(_)) => true,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cluster: event not published; only this node's subscribers get it");
                metrics::counter!(crate::telemetry::metric::CLUSTER_EVENTS_UNPUBLISHED).increment(1);
                false
            }
            Err(_) => {
                tracing::warn!("cluster: event publish timed out; only this node's subscribers get it");
                metrics::counter!(crate::telemetry::metric::CLUSTER_EVENTS_UNPUBLISHED).increment(1);
                false
            }
        }
    }
}
