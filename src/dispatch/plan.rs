//! A [`Plan`]: the destinations, routes and worker timing one `[dispatch]` section asks for, built before
//! anything changes, so a configuration that cannot be built leaves the dispatcher as it was. A destination
//! whose settings are unchanged keeps its lane (fuse state, retry budget, worker); only what it delivers
//! through is rebuilt (an adapter file or a WeChat client may have changed under the same settings).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use protofuse_store::Store;
use tokio::sync::Notify;

use super::config::{DestinationConfig, DestinationKind, DispatchConfig};
use super::destination::SharedDestination;
use super::destination::{LegacyOutbound, Webhook, WechatKf};
use super::error::DispatchError;
use super::fuse::Fuse;
use super::retry;
use super::route::Routes;
use super::triage_step::TriageStep;
use super::worker::{Lane, Timing};
use crate::wechat::kf::KfClient;

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

/// What a reload changed among the destinations, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DestinationChanges {
    /// New destinations.
    pub added: Vec<String>,
    /// Destinations whose settings changed: a new fuse and worker; the old worker finishes what it started.
    pub replaced: Vec<String>,
    /// Destinations no longer configured: their worker stops; their queued deliveries stay in the outbox.
    pub removed: Vec<String>,
}

/// The destinations in force, by name, with the settings each was built from.
#[derive(Default)]
pub(super) struct Lanes {
    pub(super) by_name: BTreeMap<String, Arc<Lane>>,
    configs: BTreeMap<String, DestinationConfig>,
}

/// What one `[dispatch]` section asks for, built and not yet in force.
pub struct Plan {
    pub(super) lanes: Lanes,
    /// Kept lanes and what they deliver through from now on.
    pub(super) swapped: Vec<(String, SharedDestination)>,
    pub(super) kf_destinations: HashMap<String, String>,
    pub(super) routes: Routes,
    pub(super) timing: Timing,
}

impl Plan {
    pub(super) fn build(
        config: &DispatchConfig,
        outbound: &Outbound<'_>,
        store: &Arc<dyn Store>,
        current: &Lanes,
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
        let mut lanes = Lanes::default();
        let mut swapped = Vec::new();
        for d in &destinations {
            let destination = make_destination(d, outbound, &http, store)?;
            let kept = current
                .by_name
                .get(&d.name)
                .filter(|_| current.configs.get(&d.name) == Some(d));
            let lane = match kept {
                Some(lane) => {
                    swapped.push((d.name.clone(), destination));
                    lane.clone()
                }
                None => Arc::new(Lane {
                    name: d.name.clone(),
                    destination: arc_swap::ArcSwap::from_pointee(destination),
                    fuse: Arc::new(Fuse::new(&d.name, d.fuse.clone())),
                    budget: retry::RetryBudget::new(&d.retry),
                    retry: d.retry.clone(),
                    wake: Notify::new(),
                }),
            };
            lanes.by_name.insert(d.name.clone(), lane);
            lanes.configs.insert(d.name.clone(), d.clone());
        }
        let max_timeout = destinations.iter().map(|d| d.fuse.timeout).max().unwrap_or_default();
        Ok(Self {
            lanes,
            swapped,
            kf_destinations,
            routes: Routes::new(config.routes.clone()),
            timing: Timing {
                poll: config.poll_interval,
                // Longer than any call (bounded by its timeout) plus settling, so a live worker settles first; short
                // enough that a crashed process's claims come back soon. Expiring early only risks a duplicate
                // delivery, which the idempotency key covers.
                lease: max_timeout * 2 + Duration::from_secs(2),
                drain: config.drain_timeout,
            },
        })
    }

    /// WeChat account → the destination that will send its customer-service messages under this plan.
    pub fn kf_destinations(&self) -> &HashMap<String, String> {
        &self.kf_destinations
    }

    /// What putting this plan in force changes, compared with `old`.
    pub(super) fn changes(&self, old: &Lanes) -> DestinationChanges {
        let mut changes = DestinationChanges::default();
        for (name, lane) in &self.lanes.by_name {
            match old.by_name.get(name) {
                None => changes.added.push(name.clone()),
                Some(before) if !Arc::ptr_eq(before, lane) => changes.replaced.push(name.clone()),
                Some(_) => {}
            }
        }
        changes.removed = old
            .by_name
            .keys()
            .filter(|name| !self.lanes.by_name.contains_key(*name))
            .cloned()
            .collect();
        changes
    }
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

pub(super) fn kf_client(
    d: &DestinationConfig,
    kf: &HashMap<String, Arc<KfClient>>,
) -> Result<Arc<crate::wechat::kf::KfClient>, DispatchError> {
    let account = d.account.clone().unwrap_or_default();
    kf.get(&account).cloned().ok_or_else(|| DispatchError::NoWechatApi {
        destination: d.name.clone(),
        account,
    })
}

pub(super) fn legacy_outbound<'a>(
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
) -> Result<SharedDestination, DispatchError> {
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
