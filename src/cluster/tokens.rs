//! One WeChat access_token per account for the whole cluster: each fetch from WeChat invalidates the token
//! before it, so nodes fetching on their own would keep breaking each other's (errcode 40001). The current token,
//! or a claim that a node is fetching one, is the last message on the account's subject of `<prefix>_tokens`;
//! a node claims the fetch by publishing with the sequence it read as the expected last one (JetStream checks it
//! atomically), so exactly one node fetches and the others read what it publishes.
//!
//! The token travels through NATS: keep NATS private to the cluster, as the store is.

use std::time::Duration;

use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{self, LastRawMessageErrorKind};
use async_nats::jetstream::{self};
use serde::{Deserialize, Serialize};

use super::connection::{Cluster, ClusterError};

/// A claim to fetch is honoured this long; a node that died while fetching is then taken over.
const CLAIM_FOR: Duration = Duration::from_secs(15);

/// What the account's subject holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Entry {
    /// A token, to be refreshed at `refresh_at` (ms since the epoch).
    Token {
        /// The access_token.
        value: String,
        /// When it should be replaced.
        refresh_at: i64,
    },
    /// `node` is fetching a token until `until` (ms since the epoch).
    Fetching {
        /// Who.
        node: String,
        /// Until when the claim holds.
        until: i64,
    },
}

/// What a node should do next.
pub(crate) enum Next {
    /// Use this token until `refresh_at` (ms since the epoch).
    Use {
        /// The access_token.
        value: String,
        /// When to ask again.
        refresh_at: i64,
    },
    /// Fetch one and [`SharedTokens::publish`] it with this sequence (the claim won).
    Fetch(u64),
    /// Another node is fetching: look again shortly.
    Wait,
}

/// The shared access_tokens.
#[derive(Clone)]
pub(crate) struct SharedTokens {
    jetstream: jetstream::Context,
    stream: stream::Stream,
    config: super::ClusterConfig,
}

impl std::fmt::Debug for SharedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedTokens")
            .field("stream", &self.config.token_stream())
            .finish()
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl SharedTokens {
    /// Opens (or creates) the stream.
    pub(crate) async fn open(cluster: &Cluster) -> Result<Self, ClusterError> {
        let config = &cluster.config;
        let stream = cluster
            .stream(stream::Config {
                name: config.token_stream(),
                subjects: vec![config.token_subject("*")],
                max_messages_per_subject: 1,
                ..stream::Config::default()
            })
            .await?;
        Ok(Self {
            jetstream: cluster.jetstream.clone(),
            stream,
            config: config.clone(),
        })
    }

    /// The next step for `app_id`: a usable token (not `rejected`, which WeChat just refused), a won claim to
    /// fetch one, or wait for the node that is fetching.
    pub(crate) async fn next(&self, app_id: &str, rejected: Option<&str>) -> Result<Next, String> {
        let subject = self.config.token_subject(app_id);
        let (seq, entry) = match self.stream.get_last_raw_message_by_subject(&subject).await {
            Ok(message) => (message.sequence, serde_json::from_slice::<Entry>(&message.payload).ok()),
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => (0, None),
            Err(e) => return Err(e.to_string()),
        };
        let now = now_ms();
        match entry {
            Some(Entry::Token { value, refresh_at }) if refresh_at > now && Some(value.as_str()) != rejected => {
                return Ok(Next::Use { value, refresh_at });
            }
            Some(Entry::Fetching { until, .. }) if until > now => return Ok(Next::Wait),
            _ => {}
        }
        let claim = Entry::Fetching {
            node: self.config.node.clone(),
            until: now + i64::try_from(CLAIM_FOR.as_millis()).unwrap_or(i64::MAX / 2),
        };
        match self.put(&subject, &claim, seq).await {
            Ok(claimed) => Ok(Next::Fetch(claimed)),
            // Another node claimed (or published) first.
            Err(Some(PublishErrorKind::WrongLastSequence)) => Ok(Next::Wait),
            Err(_) => Err("the token stream did not take the claim".to_owned()),
        }
    }

    /// Publishes the token this node fetched under the claim `claimed`.
    pub(crate) async fn publish(&self, app_id: &str, value: &str, refresh_at: i64, claimed: u64) {
        let entry = Entry::Token {
            value: value.to_owned(),
            refresh_at,
        };
        if self
            .put(&self.config.token_subject(app_id), &entry, claimed)
            .await
            .is_err()
        {
            tracing::warn!("cluster: the fetched access_token was not shared; other nodes fetch their own");
        }
    }

    async fn put(&self, subject: &str, entry: &Entry, expected: u64) -> Result<u64, Option<PublishErrorKind>> {
        let payload = serde_json::to_vec(entry).map_err(|_| None)?;
        let publish = PublishMessage::build()
            .payload(payload.into())
            .expected_last_subject_sequence(expected);
        let ack = self
            .jetstream
            .send_publish(subject.to_owned(), publish)
            .await
            .map_err(|e| Some(e.kind()))?
            .await
            .map_err(|e| Some(e.kind()))?;
        Ok(ack.sequence)
    }
}
