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
mod error;
pub mod fuse;
mod gauges;
mod plan;
mod retry;
mod route;
mod triage_step;
mod worker;

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use protofuse_model::Envelope;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{
    BreakerSettings, DestinationConfig, DestinationKind, DispatchConfig, FuseSettings, RetrySettings, RouteConfig,
};
pub use destination::{Delivery, DeliveryError, Destination, LegacyOutbound, Webhook, WechatKf};
pub use fuse::{BreakerState, Fuse, FuseError, FuseSnapshot, Override, Trips};
pub use route::Routes;
pub use triage_step::TriageStep;

use plan::{Lanes, kf_client, legacy_outbound};
use protofuse_store::Store;
use protofuse_store::outbox::Outbox;
use worker::{Lane, Timing};

pub use error::DispatchError;
pub use plan::{DestinationChanges, Outbound, Plan};

/// The dispatcher. Build once, share with `Arc`; [`Dispatcher::plan`] and [`Dispatcher::apply`] change its
/// destinations and routes while it runs (a configuration reload).
pub struct Dispatcher {
    lanes: Arc<ArcSwap<Lanes>>,
    /// WeChat account → the destination sending its customer-service messages (configured or implicit).
    kf_destinations: ArcSwap<HashMap<String, String>>,
    routes: ArcSwap<Routes>,
    store: Arc<dyn Store>,
    /// The same store, seen only as the outbox the workers claim from and settle to.
    outbox: Arc<dyn Outbox>,
    workers: std::sync::Mutex<Workers>,
    /// Stops the gauges; each worker has its own stop (a reload stops one without the others).
    stop: watch::Sender<bool>,
}

/// The running workers, and those a reload retired, which shutdown still waits for.
#[derive(Default)]
struct Workers {
    started: bool,
    timing: Option<Timing>,
    running: HashMap<String, Running>,
    retired: Vec<JoinHandle<()>>,
}

/// A lane's worker, stopped on its own when a reload replaces or removes the lane.
struct Running {
    lane: Arc<Lane>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("destinations", &self.lanes.load().by_name.keys())
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
        let plan = Plan::build(config, outbound, &store, &Lanes::default())?;
        let (stop, _) = watch::channel(false);
        Ok(Self {
            lanes: Arc::new(ArcSwap::from_pointee(Lanes::default())),
            kf_destinations: ArcSwap::from_pointee(HashMap::new()),
            routes: ArcSwap::from_pointee(Routes::new(Vec::new())),
            outbox: store.clone(),
            store,
            workers: std::sync::Mutex::new(Workers::default()),
            stop,
        }
        .applied(plan))
    }

    fn applied(self, plan: Plan) -> Self {
        self.apply(plan);
        self
    }

    /// Builds what `config` asks for, reusing each destination whose settings did not change (its fuse, its
    /// worker, its queue); nothing changes until [`Dispatcher::apply`].
    pub fn plan(&self, config: &DispatchConfig, outbound: &Outbound<'_>) -> Result<Plan, DispatchError> {
        Plan::build(config, outbound, &self.store, &self.lanes.load())
    }

    /// Puts `plan` in force: new destinations first (their workers start), then the routes that may name them,
    /// then the destinations no longer wanted stop, so a message routed at any instant has a worker. A delivery
    /// in flight finishes with the destination and fuse it started with.
    pub fn apply(&self, plan: Plan) -> DestinationChanges {
        let mut workers = self.lock_workers();
        let old = self.lanes.load_full();
        let changes = plan.changes(&old);
        for (name, destination) in plan.swapped {
            if let Some(lane) = plan.lanes.by_name.get(&name) {
                lane.destination.store(Arc::new(destination));
            }
        }
        workers.timing = Some(plan.timing);
        self.lanes.store(Arc::new(plan.lanes));
        if workers.started {
            self.start_new_workers(&mut workers);
        }
        self.kf_destinations.store(Arc::new(plan.kf_destinations));
        self.routes.store(Arc::new(plan.routes));
        if workers.started {
            self.retire_old_workers(&mut workers);
        }
        changes
    }

    /// Starts one worker per destination and the outbox gauges; unfinished work from an earlier run is
    /// picked up at once (its leases were released at shutdown, or expire).
    pub fn start(&self) {
        let mut workers = self.lock_workers();
        if workers.started {
            return;
        }
        workers.started = true;
        self.start_new_workers(&mut workers);
        workers.retired.push(tokio::spawn(gauges::run(
            self.store.clone(),
            self.lanes.clone(),
            self.stop.subscribe(),
        )));
    }

    fn start_new_workers(&self, workers: &mut Workers) {
        let Some(timing) = workers.timing else { return };
        for (name, lane) in &self.lanes.load().by_name {
            let running = workers.running.get(name).is_some_and(|r| Arc::ptr_eq(&r.lane, lane));
            if running {
                continue;
            }
            let (stop, stopped) = watch::channel(false);
            let task = tokio::spawn(worker::run(lane.clone(), self.outbox.clone(), timing, stopped));
            let worker = Running {
                lane: lane.clone(),
                stop,
                task,
            };
            if let Some(old) = workers.running.insert(name.clone(), worker) {
                // Replaced: the old worker drains what it started while the new one claims the rest.
                let _ = old.stop.send(true);
                workers.retired.push(old.task);
            }
        }
    }

    fn retire_old_workers(&self, workers: &mut Workers) {
        let lanes = self.lanes.load();
        let gone: Vec<String> = workers
            .running
            .keys()
            .filter(|name| !lanes.by_name.contains_key(*name))
            .cloned()
            .collect();
        for name in gone {
            if let Some(old) = workers.running.remove(&name) {
                let _ = old.stop.send(true);
                workers.retired.push(old.task);
            }
        }
        workers.retired.retain(|task| !task.is_finished());
    }

    fn lock_workers(&self) -> std::sync::MutexGuard<'_, Workers> {
        // Every update leaves the bookkeeping whole: usable after a panic elsewhere.
        self.workers.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// WeChat account → the destination that sends its customer-service messages. The first `wechat_kf`
    /// destination configured for an account, else the implicit `wechat_kf:<account>`.
    pub fn kf_destinations(&self) -> Arc<HashMap<String, String>> {
        self.kf_destinations.load_full()
    }

    /// Tells the workers of `destinations` that new deliveries are waiting (new messages, replayed dead
    /// letters).
    pub fn wake(&self, destinations: &[String]) {
        let lanes = self.lanes.load();
        for name in destinations {
            if let Some(lane) = lanes.by_name.get(name) {
                lane.wake.notify_one();
            }
        }
    }

    /// Stops claiming, lets in-flight deliveries finish within the drain timeout, releases the rest.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let tasks: Vec<JoinHandle<()>> = {
            let mut workers = self.lock_workers();
            let running = std::mem::take(&mut workers.running);
            let mut tasks = std::mem::take(&mut workers.retired);
            for worker in running.into_values() {
                let _ = worker.stop.send(true);
                tasks.push(worker.task);
            }
            tasks
        };
        for task in tasks {
            let _ = task.await;
        }
    }

    /// Every destination's state.
    pub fn destinations(&self) -> Vec<DestinationStatus> {
        self.lanes
            .load()
            .by_name
            .values()
            .map(|l| DestinationStatus {
                name: l.name.clone(),
                fuse: l.fuse.snapshot(),
            })
            .collect()
    }

    /// A destination's fuse, for the admin API.
    pub fn fuse(&self, name: &str) -> Option<Arc<Fuse>> {
        self.lanes.load().by_name.get(name).map(|l| l.fuse.clone())
    }

    /// The store holding the outbox.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
}

impl crate::service::Deliveries for Dispatcher {
    fn route(&self, envelope: &Envelope) -> Vec<String> {
        self.routes.load().destinations(envelope)
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
