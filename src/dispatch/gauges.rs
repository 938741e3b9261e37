//! The outbox's gauges (depth, oldest age, dead letters per destination), refreshed every few seconds by one
//! task; never writes.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use protofuse_store::Store;
use tokio::sync::watch;

use super::plan::Lanes;
use crate::telemetry::metric;

/// Outbox depth, age and dead letters as gauges, refreshed every few seconds (a query per scrape would let
/// scrapers load the database).
pub(super) async fn run(store: Arc<dyn Store>, lanes: Arc<ArcSwap<Lanes>>, mut stop: watch::Receiver<bool>) {
    const EVERY: Duration = Duration::from_secs(5);
    while !*stop.borrow() {
        // Read each round: a reload adds and removes destinations.
        let names: Vec<String> = lanes.load().by_name.keys().cloned().collect();
        let now = chrono::Utc::now();
        match store.outbox_depth(now).await {
            Ok(depths) => {
                // A destination whose queue emptied has no row; its gauges must drop to zero, not stick.
                let idle = names.iter().filter(|n| !depths.iter().any(|d| &d.destination == *n));
                for name in idle {
                    metrics::gauge!(metric::OUTBOX_DEPTH, "destination" => name.clone()).set(0.0);
                    metrics::gauge!(metric::OUTBOX_OLDEST_AGE_SECONDS, "destination" => name.clone()).set(0.0);
                }
                for d in depths {
                    let age = d.oldest.map_or(0.0, |t| (now - t).as_seconds_f64().max(0.0));
                    let name = d.destination;
                    metrics::gauge!(metric::OUTBOX_DEPTH, "destination" => name.clone()).set(d.pending as f64);
                    metrics::gauge!(metric::OUTBOX_OLDEST_AGE_SECONDS, "destination" => name.clone()).set(age);
                    metrics::gauge!(metric::DEAD_LETTERS, "destination" => name).set(d.dead as f64);
                }
            }
            Err(e) => tracing::debug!(error = %e, "reading outbox depth failed"),
        }
        tokio::select! {
            () = tokio::time::sleep(EVERY) => {}
            _ = stop.changed() => {}
        }
    }
}
