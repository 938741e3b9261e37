//! Logs and metrics. Logs go through `tracing` (human-readable or JSON lines on stderr); metrics through the
//! `metrics` facade into a Prometheus recorder rendered at `/metrics`.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde::Deserialize;
use tracing_subscriber::EnvFilter;

/// Metric names. Kept here as constants so names and their labels are reviewed in one place.
pub mod metric {
    /// Counter, labels `method`, `route`, `status`.
    pub const HTTP_REQUESTS: &str = "protofuse_http_requests_total";
    /// Histogram, labels `method`, `route`.
    pub const HTTP_DURATION: &str = "protofuse_http_request_duration_seconds";
    /// Counter, labels `protocol`, `outcome` (`stored` | `duplicate`).
    pub const MESSAGES_INGESTED: &str = "protofuse_messages_ingested_total";
    /// Gauge, labels `destination`, `state` (`closed` | `open` | `half_open`): 1 for the current state, else 0.
    pub const BREAKER_STATE: &str = "protofuse_breaker_state";
    /// Counter, labels `destination`, `to`.
    pub const BREAKER_TRANSITIONS: &str = "protofuse_breaker_transitions_total";
    /// Counter, labels `destination`, `outcome` (`success` | `failure` | `timeout` | `slow` | `rejected_open` |
    /// `rejected_full`).
    pub const DESTINATION_CALLS: &str = "protofuse_destination_calls_total";
    /// Histogram, label `destination`: duration of calls that ran.
    pub const DESTINATION_CALL_SECONDS: &str = "protofuse_destination_call_duration_seconds";
    /// Counter, labels `destination`, `outcome` (`delivered` | `retry` | `deferred` | `dead`).
    pub const DELIVERIES: &str = "protofuse_deliveries_total";
    /// Gauge, label `destination`: deliveries waiting in the outbox.
    pub const OUTBOX_DEPTH: &str = "protofuse_outbox_depth";
    /// Gauge, label `destination`: age of the oldest waiting delivery.
    pub const OUTBOX_OLDEST_AGE_SECONDS: &str = "protofuse_outbox_oldest_age_seconds";
    /// Gauge, label `destination`: dead letters.
    pub const DEAD_LETTERS: &str = "protofuse_dead_letters";
    /// Counter, label `listener`: connections closed at once because a connection limit was reached.
    pub const CONNECTIONS_REFUSED: &str = "protofuse_connections_refused_total";
    /// Counter: writes refused at once because the store's write queue was full (answered 503 / UNAVAILABLE).
    pub const WRITES_SHED: &str = "protofuse_store_writes_shed_total";
    /// Counter, labels `key`, `outcome` (`unauthenticated` | `forbidden` | `rate_limited`): API refusals.
    pub const API_REFUSALS: &str = "protofuse_api_refusals_total";
    /// Counter, labels `method`, `code` (the gRPC status code number).
    pub const GRPC_CALLS: &str = "protofuse_grpc_calls_total";
    /// Histogram, label `method`: time to the response head.
    pub const GRPC_DURATION: &str = "protofuse_grpc_call_duration_seconds";
    /// Gauge, labels `version`, `commit`: always 1, names the running build.
    pub const BUILD_INFO: &str = "protofuse_build_info";
    /// Gauge: web channel connections open (WebSockets and event streams).
    pub const WEB_CONNECTIONS: &str = "protofuse_web_connections";
    /// Counter, label `code`: visitor requests, frames and connections the web channel refused.
    pub const WEB_REFUSALS: &str = "protofuse_web_refusals_total";
    /// Counter: conversation events JetStream did not take (cluster mode); only this node's subscribers got them.
    pub const CLUSTER_EVENTS_UNPUBLISHED: &str = "protofuse_cluster_events_unpublished_total";
}

/// Latency buckets in seconds: fine below 10 ms where a healthy ingest lands, coarse up to request timeouts.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// `[log]`: what is logged and how.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` (human-readable) or `json` (one object per line).
    pub format: LogFormat,
    /// Which events to log, in `RUST_LOG` syntax.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            filter: "info,sqlx=warn".to_owned(),
        }
    }
}

impl LogConfig {
    /// Every broken rule of `[log]`.
    pub(crate) fn issues(&self) -> Vec<crate::config::ConfigIssue> {
        match EnvFilter::try_new(&self.filter) {
            Ok(_) => Vec::new(),
            Err(e) => vec![crate::config::ConfigIssue::new(
                "log.filter",
                format!("is not a valid filter: {e}"),
            )],
        }
    }
}

/// Installs the global tracing subscriber. `filter` uses `RUST_LOG` syntax (e.g. `info,sqlx=warn`); the
/// `RUST_LOG` environment variable, when set, wins.
pub fn init_logging(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(filter));
    // Colour codes only for a person at a terminal; in a file or a journal they are noise.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    // A second initialisation (tests start several servers in one process) is not an error worth failing on.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// The version and commit of this build, as `--version` prints them.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("PROTOFUSE_COMMIT"), ")");

/// `# HELP` text for every metric, and the build's identity.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        metric::HTTP_REQUESTS,
        "HTTP requests answered, by method, route template and status."
    );
    describe_histogram!(
        metric::HTTP_DURATION,
        metrics::Unit::Seconds,
        "HTTP request duration, by method and route template."
    );
    describe_counter!(
        metric::MESSAGES_INGESTED,
        "Messages accepted, by protocol and outcome (stored or duplicate)."
    );
    describe_gauge!(
        metric::BREAKER_STATE,
        "1 for each destination's current breaker state (closed, open, half_open), else 0."
    );
    describe_counter!(
        metric::BREAKER_TRANSITIONS,
        "Breaker state changes, by destination and new state."
    );
    describe_counter!(
        metric::DESTINATION_CALLS,
        "Calls through a destination's fuse, by outcome."
    );
    describe_histogram!(
        metric::DESTINATION_CALL_SECONDS,
        metrics::Unit::Seconds,
        "Duration of calls that ran, by destination."
    );
    describe_counter!(
        metric::DELIVERIES,
        "Delivery attempts settled, by destination and outcome."
    );
    describe_gauge!(
        metric::OUTBOX_DEPTH,
        "Deliveries waiting in the outbox, by destination."
    );
    describe_gauge!(
        metric::OUTBOX_OLDEST_AGE_SECONDS,
        metrics::Unit::Seconds,
        "Age of the oldest waiting delivery, by destination."
    );
    describe_gauge!(metric::DEAD_LETTERS, "Dead letters, by destination.");
    describe_counter!(
        metric::CONNECTIONS_REFUSED,
        "Connections closed at once because a connection limit was reached, by listener."
    );
    describe_counter!(
        metric::WRITES_SHED,
        "Writes refused at once because the store's write queue was full (answered 503 / UNAVAILABLE)."
    );
    describe_counter!(
        metric::API_REFUSALS,
        "API requests refused, by reason (unauthenticated, forbidden, rate_limited)."
    );
    describe_counter!(metric::GRPC_CALLS, "gRPC calls answered, by method and status code.");
    describe_histogram!(
        metric::GRPC_DURATION,
        metrics::Unit::Seconds,
        "gRPC time to the response head, by method."
    );
    describe_gauge!(metric::BUILD_INFO, "Always 1; the labels name the running build.");
    metrics::gauge!(metric::BUILD_INFO, "version" => env!("CARGO_PKG_VERSION"), "commit" => env!("PROTOFUSE_COMMIT"))
        .set(1.0);
    process_collector().describe();
}

/// The process metrics collector (CPU seconds, resident memory, open descriptors, threads).
pub fn process_collector() -> &'static metrics_process::Collector {
    static COLLECTOR: OnceLock<metrics_process::Collector> = OnceLock::new();
    COLLECTOR.get_or_init(metrics_process::Collector::default)
}

/// The process-wide Prometheus recorder, installed on first use.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), LATENCY_BUCKETS)
                .expect("bucket list is non-empty")
                .build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder was installed first, in which case ours simply stays empty.
            let _ = metrics::set_global_recorder(recorder);
            describe();
            handle
        })
        .clone()
}
