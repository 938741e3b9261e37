//! [`Cluster`]: a node's connection to NATS JetStream, and [`ClusterError`]. A leaf the other cluster modules
//! build on.

use std::time::Duration;

use async_nats::jetstream;

use super::ClusterConfig;

/// Why cluster mode could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// NATS did not answer.
    #[error("cannot connect to NATS at {url}")]
    Connect {
        /// The server, credentials removed.
        url: String,
        /// Why.
        #[source]
        source: async_nats::ConnectError,
    },
    /// A stream or bucket could not be created or opened.
    #[error("JetStream {what} `{name}`: {message}")]
    JetStream {
        /// `stream` or `key-value bucket`.
        what: &'static str,
        /// Its name.
        name: String,
        /// What JetStream said.
        message: String,
    },
}

/// A node's connection to the cluster.
#[derive(Clone)]
pub struct Cluster {
    pub(super) jetstream: jetstream::Context,
    pub(super) config: ClusterConfig,
}

impl Cluster {
    /// Connects to NATS and checks JetStream answers.
    pub async fn connect(config: &ClusterConfig) -> Result<Self, ClusterError> {
        let client = async_nats::ConnectOptions::new()
            .name(format!("protofuse {}", config.node))
            .connection_timeout(Duration::from_secs(5))
            .connect(config.nats.as_str())
            .await
            .map_err(|source| ClusterError::Connect {
                url: crate::redact::url(&config.nats),
                source,
            })?;
        Ok(Self {
            jetstream: jetstream::new(client),
            config: config.clone(),
        })
    }

    /// Creates the stream `config` describes, or opens it if it exists.
    pub(crate) async fn stream(
        &self,
        config: jetstream::stream::Config,
    ) -> Result<jetstream::stream::Stream, ClusterError> {
        let name = config.name.clone();
        self.jetstream
            .get_or_create_stream(config)
            .await
            .map_err(|e| ClusterError::JetStream {
                what: "stream",
                name,
                message: e.to_string(),
            })
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.config.node
    }
}
