//! The dispatcher ("the fuse"): moves stored messages out to their destinations without letting any one of
//! them slow ingress or the others.
//!
//! The path: [`crate::service::Service::send`] asks [`Dispatcher::route`] for the message's destinations; the
//! store writes one outbox row per destination in the message's own transaction and only then is the message
//! acknowledged; [`Dispatcher::wake`] nudges the destinations' workers ([`worker`]), which claim the rows, call
//! the destination through its [`fuse::Fuse`] (breaker, probes, timeout, slow calls, bulkhead), and settle the
//! rows: delivered, retried later ([`retry`]), deferred (breaker open, no budget), or dead-lettered. Ingress only
//! ever waits for the store, so a hanging destination costs ingress nothing.

mod config;
pub mod destination;
pub mod fuse;
mod retry;
mod route;
mod triage_step;
mod worker;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use protofuse_model::Envelope;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

pub use config::{
    BreakerSettings, DestinationConfig, DestinationKind, DispatchConfig, FuseSettings, RetrySettings, RouteConfig,
};
pub use destination::{Delivery, DeliveryError, Destination, LegacyOutbound, Webhook, WechatKf};
pub use fuse::{BreakerState, Fuse, FuseError, FuseSnapshot, Override, Trips};
pub use route::Routes;
pub use triage_step::TriageStep;

use crate::telemetry::metric;
use crate::wechat::kf::KfClient;
use protofuse_store::Store;
use protofuse_store::outbox::Outbox;
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
    /// WeChat account → the destination sending its customer-service messages (configured or implicit).
    kf_destinations: HashMap<String, String>,
    routes: Routes,
    store: Arc<dyn Store>,
    /// The same store, seen only as the outbox the workers claim from and settle to.
    outbox: Arc<dyn Outbox>,
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
        let destinations = with_implicit_kf(&config.destinations, outbound.kf);
        let kf_destinations = destinations
            .iter()
            .filter(|d| d.kind == DestinationKind::WechatKf)
            .filter_map(|d| Some((d.account.clone()?, d.name.clone())))
            .collect();
        let mut lanes = BTreeMap::new();
        for d in &destinations {
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
        let max_timeout = destinations.iter().map(|d| d.fuse.timeout).max().unwrap_or_default();
        let (stop, _) = watch::channel(false);
        Ok(Self {
            lanes,
            kf_destinations,
            routes: Routes::new(config.routes.clone()),
            outbox: store.clone(),
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
            let task = worker::run(lane.clone(), self.outbox.clone(), self.timing, self.stop.subscribe());
            tasks.push(tokio::spawn(task));
        }
        let names = self.lanes.keys().cloned().collect();
        tasks.push(tokio::spawn(gauges(self.store.clone(), names, self.stop.subscribe())));
    }

    /// WeChat account → the destination that sends its customer-service messages. The first `wechat_kf`
    /// destination configured for an account, else the implicit `wechat_kf:<account>`.
    pub fn kf_destinations(&self) -> &HashMap<String, String> {
        &self.kf_destinations
    }

    /// Tells the workers of `destinations` that new deliveries are waiting (new messages, replayed dead
    /// letters).
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

impl crate::service::Deliveries for Dispatcher {
    fn route(&self, envelope: &Envelope) -> Vec<String> {
        self.routes.destinations(envelope)
    }

    fn wake(&self, destinations: &[String]) {
        Dispatcher::wake(self, destinations);
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
/// (when loaded) and the conversation rules (for triage's hand-offs).
#[derive(Clone, Copy)]
pub struct Outbound<'a> {
    /// Legacy adapters (their `[outbound]` sections).
    pub adapters: &'a [protofuse_legacy::LegacyAdapter],
    /// Customer-service API clients by WeChat account.
    pub kf: &'a HashMap<String, Arc<KfClient>>,
    /// Built-in triage's decisions, if triage is loaded.
    pub triage: Option<&'a Arc<crate::decisions::Decisions>>,
    /// Status changes (triage's hand-offs), announced on the service's event bus.
    pub conversations: Option<&'a crate::conversation::Conversations>,
}

/// The configured destinations, plus `wechat_kf:<account>` for each account with a customer-service client
/// that no configured `wechat_kf` destination serves.
fn with_implicit_kf(configured: &[DestinationConfig], kf: &HashMap<String, Arc<KfClient>>) -> Vec<DestinationConfig> {
    let mut all = configured.to_vec();
    let mut accounts: Vec<&String> = kf.keys().collect();
    accounts.sort();
    for account in accounts {
        let served = configured
            .iter()
            .any(|d| d.kind == DestinationKind::WechatKf && d.account.as_deref() == Some(account.as_str()));
        let name_taken = configured.iter().any(|d| d.name == format!("wechat_kf:{account}"));
        if !served && !name_taken {
            all.push(DestinationConfig::implicit_wechat_kf(account));
        }
    }
    all
}

fn kf_client(
    d: &DestinationConfig,
    kf: &HashMap<String, Arc<KfClient>>,
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
            let (Some(triage), Some(conversations)) = (outbound.triage, outbound.conversations) else {
                return Err(DispatchError::TriageNotLoaded(d.name.clone()));
            };
            Ok(Arc::new(TriageStep::new(
                triage.clone(),
                store.clone(),
                conversations.clone(),
            )))
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
