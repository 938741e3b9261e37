//! HMAC nonces seen by any node, as a JetStream stream with one subject per nonce and messages that expire: a
//! nonce is accepted by the node whose publish finds its subject empty (`Nats-Expected-Last-Subject-Sequence: 0`,
//! which JetStream checks atomically), so two nodes offered the same nonce at once cannot both accept it. This is
//! a key-value "create"; the KV API itself is not used because its bucket setup does not parse against the NATS
//! 2.9 servers still common in Debian (measured here with 2.9.10).

use std::time::Duration;

use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, stream};
use sha2::{Digest as _, Sha256};

use super::connection::{Cluster, ClusterError};

/// The shared memory of nonces.
#[derive(Clone)]
pub(crate) struct SharedNonces {
    jetstream: jetstream::Context,
    config: super::ClusterConfig,
}

impl std::fmt::Debug for SharedNonces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedNonces")
            .field("stream", &self.config.nonce_stream())
            .finish()
    }
}

impl SharedNonces {
    /// Opens (or creates) the stream; a nonce is remembered for `keep` (twice the longest signature window: a
    /// timestamp may be that far in the past or the future).
    pub(crate) async fn open(cluster: &Cluster, keep: Duration) -> Result<Self, ClusterError> {
        let config = &cluster.config;
        cluster
            .stream(stream::Config {
                name: config.nonce_stream(),
                subjects: vec![config.nonce_subject("*")],
                max_age: keep,
                max_messages_per_subject: 1,
                ..stream::Config::default()
            })
            .await?;
        Ok(Self {
            jetstream: cluster.jetstream.clone(),
            config: config.clone(),
        })
    }

    /// `Ok(true)` the first time `nonce` is offered for `scope` anywhere in the cluster, `Ok(false)` for a replay;
    /// `Err` when JetStream did not answer (the caller refuses the request: accepting could admit a replay).
    pub(crate) async fn first_use(&self, scope: &str, nonce: &str) -> Result<bool, String> {
        // Subjects allow a small alphabet; the digest also keeps a hostile nonce's bytes out of them.
        let key = format!("{:x}", Sha256::digest(format!("{scope}\n{nonce}").as_bytes()));
        let publish = PublishMessage::build().expected_last_subject_sequence(0);
        let acked = async {
            self.jetstream
                .send_publish(self.config.nonce_subject(&key), publish)
                .await?
                .await
        };
        match acked.await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => Ok(false),
            Err(e) => Err(e.to_string()),
        }
    }
}
