//! The dispatcher ("the fuse"): moves stored messages out to their destinations without letting any one of
//! them slow ingress or the others.
//!
//! The path: [`crate::service::Service::send`] asks [`Dispatcher::route`] for the message's destinations; the
//! store writes one outbox row per destination in the message's own transaction and only then is the message
//! acknowledged; [`Dispatcher::wake`] nudges the destinations' workers ([`worker`]), which claim the rows, call
//! the destination through its [`fuse::Fuse`] (breaker, probes, timeout, slow calls, bulkhead), and settle the
//! rows: delivered, retried later ([`retry`]), deferred (breaker open, no budget), or dead-lettered. Ingress only
//! ever waits for the store, so a hanging destination costs ingress nothing.

pub mod destination;
pub mod fuse;
mod retry;
mod route;
mod triage_step;
mod worker;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use protofuse_model::Envelope;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

pub use destination::{Delivery, DeliveryError, Destination, LegacyOutbound, Webhook, WechatKf};
pub use fuse::{BreakerState, Fuse, FuseError, FuseSnapshot, Override, Trips};
pub use route::Routes;
pub use triage_step::TriageStep;

use crate::config::{DestinationConfig, DestinationKind, DispatchConfig};
use crate::store::Store;
use crate::telemetry::metric;
use worker::{Lane, Timing};

/// Why the dispatcher could not be built.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// A legacy destination names an adapter that is not loaded or has no `[outbound]` section.
    #[error("dispatch.destinations `{destination}`: no legacy adapter `{adapter}` with an [outbound] section")]
    UnknownAdapter {
        /// The destination.
        destination: String,
        /// The adapter named.
        adapter: String,
    },
    /// A `wechat_kf` destination names an account without an AppID and AppSecret.
    #[error("dispatch.destinations `{destination}`: wechat account `{account}` has no app_id/app_secret")]
    NoWechatApi {
        /// The destination.
        destination: String,
        /// The account named.
        account: String,
    },
    /// A `triage` destination was configured but triage was not loaded.
    #[error("dispatch.destinations `{0}`: triage is not loaded")]
    TriageNotLoaded(String),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client")]
    Http(#[source] reqwest::Error),
}

/// The dispatcher. Build once, share with `Arc`.
pub struct Dispatcher {
    lanes: BTreeMap<String, Arc<Lane>>,
    routes: Routes,
    store: Arc<dyn Store>,
    timing: Timing,
    stop: watch::Sender<bool>,
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("destinations", &self.lanes.keys())
            .finish()
    }
}

/// A destination as operators see it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DestinationStatus {
    /// Its name.
    pub name: String,
    /// Its fuse.
    #[serde(flatten)]
    pub fuse: FuseSnapshot,
}

impl Dispatcher {
    /// Builds the destinations of `config` (not started) from the loaded legacy adapters and WeChat
    /// customer-service clients.
    pub fn build(
        config: &DispatchConfig,
        outbound: &Outbound<'_>,
        store: Arc<dyn Store>,
    ) -> Result<Self, DispatchError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(DispatchError::Http)?;
        let mut lanes = BTreeMap::new();
        for d in &config.destinations {
            let destination = make_destination(d, outbound, &http, &store)?;
            let lane = Lane {
                name: d.name.clone(),
                destination,
                fuse: Arc::new(Fuse::new(&d.name, d.fuse.clone())),
                budget: retry::RetryBudget::new(&d.retry),
                retry: d.retry.clone(),
                wake: Notify::new(),
            };
            lanes.insert(d.name.clone(), Arc::new(lane));
        }
        let max_timeout = config
            .destinations
            .iter()
            .map(|d| d.fuse.timeout)
            .max()
            .unwrap_or_default();
        let (stop, _) = watch::channel(false);
        Ok(Self {
            lanes,
            routes: Routes::new(config.routes.clone()),
            store,
            timing: Timing {
                poll: config.poll_interval,
                // Longer than any call (bounded by its timeout) plus settling, so a live worker settles first; short
                // enough that a crashed process's claims come back soon. Expiring early only risks a duplicate
                // delivery, which the idempotency key covers.
                lease: max_timeout * 2 + Duration::from_secs(2),
                drain: config.drain_timeout,
            },
            stop,
            tasks: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Starts one worker per destination and the outbox gauges; unfinished work from an earlier run is
    /// picked up at once (its leases were released at shutdown, or expire).
    pub fn start(&self) {
        let mut tasks = self.tasks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for lane in self.lanes.values() {
            let task = worker::run(lane.clone(), self.store.clone(), self.timing, self.stop.subscribe());
            tasks.push(tokio::spawn(task));
        }
        let names = self.lanes.keys().cloned().collect();
        tasks.push(tokio::spawn(gauges(self.store.clone(), names, self.stop.subscribe())));
    }

    /// The destinations a message goes to.
    pub fn route(&self, envelope: &Envelope) -> Vec<String> {
        self.routes.destinations(envelope)
    }

    /// Tells the workers of `destinations` that new deliveries are waiting.
    pub fn wake(&self, destinations: &[String]) {
        for name in destinations {
            if let Some(lane) = self.lanes.get(name) {
                lane.wake.notify_one();
            }
        }
    }

    /// Stops claiming, lets in-flight deliveries finish within the drain timeout, releases the rest.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        for task in tasks {
            let _ = task.await;
        }
    }

    /// Every destination's state.
    pub fn destinations(&self) -> Vec<DestinationStatus> {
        self.lanes
            .values()
            .map(|l| DestinationStatus {
                name: l.name.clone(),
                fuse: l.fuse.snapshot(),
            })
            .collect()
    }

    /// A destination's fuse, for the admin API.
    pub fn fuse(&self, name: &str) -> Option<&Arc<Fuse>> {
        self.lanes.get(name).map(|l| &l.fuse)
    }

    /// The store holding the outbox.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
}

/// Checks what configuration validation cannot see: that every legacy destination names a loaded adapter with
/// an `[outbound]` section. `protofuse check-config` runs it; start-up fails the same way.
pub fn check_destinations(config: &DispatchConfig, outbound: &Outbound<'_>) -> Result<(), DispatchError> {
    for d in &config.destinations {
        match d.kind {
            DestinationKind::Legacy => drop(legacy_outbound(d, outbound.adapters)?),
            DestinationKind::WechatKf => drop(kf_client(d, outbound.kf)?),
            DestinationKind::Webhook | DestinationKind::Triage => {}
        }
    }
    Ok(())
}

/// What destinations are built from: the loaded legacy adapters, the WeChat customer-service clients, triage
/// (when loaded) and the event bus (for triage's status changes).
#[derive(Clone, Copy)]
pub struct Outbound<'a> {
    /// Legacy adapters (their `[outbound]` sections).
    pub adapters: &'a [protofuse_legacy::LegacyAdapter],
    /// Customer-service API clients by WeChat account.
    pub kf: &'a std::collections::HashMap<String, Arc<crate::wechat::kf::KfClient>>,
    /// Built-in triage, if loaded.
    pub triage: Option<&'a Arc<protofuse_triage::Triage>>,
    /// The conversation event bus.
    pub events: Option<&'a crate::events::EventBus>,
}

fn kf_client(
    d: &DestinationConfig,
    kf: &std::collections::HashMap<String, Arc<crate::wechat::kf::KfClient>>,
) -> Result<Arc<crate::wechat::kf::KfClient>, DispatchError> {
    let account = d.account.clone().unwrap_or_default();
    kf.get(&account).cloned().ok_or_else(|| DispatchError::NoWechatApi {
        destination: d.name.clone(),
        account,
    })
}

fn legacy_outbound<'a>(
    d: &DestinationConfig,
    adapters: &'a [protofuse_legacy::LegacyAdapter],
) -> Result<&'a protofuse_legacy::Outbound, DispatchError> {
    let name = d.adapter.as_deref().unwrap_or_default();
    adapters
        .iter()
        .find(|a| a.name() == name)
        .and_then(|a| a.outbound())
        .ok_or_else(|| DispatchError::UnknownAdapter {
            destination: d.name.clone(),
            adapter: name.to_owned(),
        })
}

fn make_destination(
    d: &DestinationConfig,
    outbound: &Outbound<'_>,
    http: &reqwest::Client,
    store: &Arc<dyn Store>,
) -> Result<destination::SharedDestination, DispatchError> {
    match d.kind {
        DestinationKind::Webhook => {
            let url = d.url.clone().unwrap_or_default();
            let headers = d.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            Ok(Arc::new(Webhook::new(http.clone(), url, headers)))
        }
        DestinationKind::Legacy => {
            let rendering = legacy_outbound(d, outbound.adapters)?;
            Ok(Arc::new(LegacyOutbound::new(
                http.clone(),
                rendering.clone(),
                d.fuse.timeout,
            )))
        }
        DestinationKind::WechatKf => {
            let client = kf_client(d, outbound.kf)?;
            let account = d.account.clone().unwrap_or_default();
            Ok(Arc::new(WechatKf::new(account, client, store.clone())))
        }
        DestinationKind::Triage => {
            let (Some(triage), Some(events)) = (outbound.triage, outbound.events) else {
                return Err(DispatchError::TriageNotLoaded(d.name.clone()));
            };
            Ok(Arc::new(TriageStep::new(triage.clone(), store.clone(), events.clone())))
        }
    }
}

/// Outbox depth, age and dead letters as gauges, refreshed every few seconds (a query per scrape would let
/// scrapers load the database).
async fn gauges(store: Arc<dyn Store>, names: Vec<String>, mut stop: watch::Receiver<bool>) {
    const EVERY: Duration = Duration::from_secs(5);
    while !*stop.borrow() {
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
