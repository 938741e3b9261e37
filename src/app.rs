//! The one place the application is assembled from its configuration. `protofuse serve` runs [`start`];
//! `protofuse check-config` runs [`check`], which builds every part that can be built without opening the store
//! or binding a port, so both commands refuse a configuration for the same reasons.
//!
//! The order: metrics recorder → legacy adapter files → WeChat customer-service clients → triage → store →
//! event bus, conversation rules and triage decisions → dispatcher → service → WeChat accounts → listeners (HTTP, gRPC, admin).
//! Shutdown runs it backwards: ingress closes, late WeChat answers finish, deliveries drain.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use protofuse_store::{Store, StoreError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::auth::Authenticator;
use crate::config::Config;
use crate::conversation::Conversations;
use crate::decisions::Decisions;
use crate::dispatch::{DispatchError, Dispatcher, Outbound};
use crate::events::{DEFAULT_CAPACITY, EventBus};
use crate::legacy::AdapterFilesError;
use crate::reload::{Reloader, Swappable};
use crate::server::web::{Web, WebSetupError};
use crate::server::{self, AppState};
use crate::service::Service;
use crate::wechat::kf::KfClient;
use crate::wechat::{Wechat, WechatError};
use protofuse_triage::{Triage, TriageError};

/// Why the application could not start (or its configuration cannot work).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The store could not be opened or migrated.
    #[error("cannot open the conversation store")]
    Store(#[from] StoreError),
    /// A legacy adapter file is missing or invalid.
    #[error(transparent)]
    Adapters(#[from] AdapterFilesError),
    /// The listen address is taken or not allowed.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The configured address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The WeChat accounts could not be set up.
    #[error("cannot set up the wechat accounts")]
    Wechat(#[from] WechatError),
    /// Triage is configured but its model or knowledge base could not be loaded.
    #[error("cannot load triage")]
    Triage(#[source] TriageError),
    /// A dispatch destination could not be built.
    #[error(transparent)]
    Dispatch(#[from] DispatchError),
    /// `[server.tls]` names a certificate or key that cannot serve.
    #[error(transparent)]
    Tls(#[from] server::TlsError),
    /// The web channel could not be set up.
    #[error("cannot set up the web channel")]
    Web(#[from] WebSetupError),
    /// `[cluster]` is set but NATS JetStream could not be reached or set up.
    #[error("cannot join the cluster")]
    Cluster(#[from] crate::cluster::ClusterError),
}

/// What is built from the configuration alone, before the store opens.
struct Parts {
    adapters: Vec<protofuse_legacy::LegacyAdapter>,
    kf: HashMap<String, Arc<KfClient>>,
    triage: Option<Arc<Triage>>,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl Parts {
    fn build(config: &Config) -> Result<Self, StartError> {
        Ok(Self {
            adapters: crate::legacy::load_adapters(&config.legacy.adapters)?,
            kf: crate::wechat::kf_clients(&config.wechat)?,
            triage: load_triage(config)?,
            tls: config.server.tls.as_ref().map(server::tls_acceptor).transpose()?,
        })
    }

    fn outbound<'a>(
        &'a self,
        decisions: Option<&'a Arc<Decisions>>,
        conversations: Option<&'a Conversations>,
    ) -> Outbound<'a> {
        Outbound {
            adapters: &self.adapters,
            kf: &self.kf,
            triage: decisions,
            conversations,
        }
    }
}

/// Everything `serve` would refuse before opening the store or binding: the configuration's rules (checked
/// when it was loaded), the legacy adapter files, the WeChat clients, the triage model and knowledge base, and
/// that every destination names something that exists.
pub fn check(config: &Config) -> Result<(), StartError> {
    let parts = Parts::build(config)?;
    crate::dispatch::check_destinations(&config.dispatch, &parts.outbound(None, None))?;
    if config.web.enabled {
        Web::check(&config.web)?;
    }
    Ok(())
}

/// Loads triage once if a WeChat account, the web channel or a dispatch destination uses it.
fn load_triage(config: &Config) -> Result<Option<Arc<Triage>>, StartError> {
    if !config.wants_triage() {
        return Ok(None);
    }
    let triage = Triage::load(&config.triage).map_err(StartError::Triage)?;
    Ok(Some(Arc::new(triage)))
}

/// Builds the application from `config`, opens the store, binds every listener and serves in the background.
/// Without a file to read again, a configuration reload is refused; see [`start_from`].
pub async fn start(config: &Config) -> Result<Running, StartError> {
    start_from(config, None).await
}

/// [`start`] for `config` read from `file`, which `SIGHUP` and `POST /admin/reload` read again
/// ([`crate::reload`]).
pub async fn start_from(config: &Config, file: Option<&Path>) -> Result<Running, StartError> {
    // Installs the recorder first: metric handles taken before it exists (the fuses take theirs when built)
    // would record nothing.
    let metrics = crate::telemetry::metrics_handle();
    let parts = Parts::build(config)?;
    let store: Arc<dyn Store> = Arc::from(protofuse_store::open(&config.store).await?);
    let (stop, stopping) = watch::channel(false);
    let (cluster, events, shared_nonces, tokens) = join_cluster(config, &parts, &stopping).await?;
    let Core {
        conversations,
        decisions,
        dispatcher,
        service,
        wechat,
    } = Core::build(config, &parts, store, events)?;
    let web = config
        .web
        .enabled
        .then(|| Web::build(&config.web, service.clone(), decisions.as_ref()))
        .transpose()?;
    let (rpc_stop_handle, rpc_stop) = jsonrpsee::server::stop_channel();
    let auth = Arc::new(Authenticator::new(&config.api));
    let legacy = Arc::new(server::LegacyRoutes::new(parts.adapters.clone()));
    let swappable = Swappable {
        dispatcher: dispatcher.clone(),
        wechat: wechat.clone(),
        decisions: decisions.clone(),
        legacy: legacy.clone(),
        auth: auth.clone(),
        conversations: conversations.clone(),
        tokens,
    };
    let reloader = Arc::new(Reloader::new(file, config, &parts.kf, swappable));
    let state = AppState::new(server::AppParts {
        service: service.clone(),
        metrics,
        body_limit: config.server.body_limit_bytes,
        rpc: server::jsonrpc::Endpoint::new(&config.jsonrpc, service.clone(), rpc_stop_handle),
        wechat: Arc::clone(&wechat),
        auth: auth.clone(),
        legacy,
        shared_nonces,
    });
    let bind = |addr| move |source| StartError::Bind { addr, source };
    let (draining_tx, draining) = watch::channel(false);
    let (grpc_addr, grpc_task) = server::grpc::spawn(&config.grpc, service.clone(), auth, draining, stopping.clone())
        .await
        .map_err(bind(config.grpc.listen))?;
    let admin = Admin {
        dispatcher: &dispatcher,
        decisions: decisions.as_ref(),
        reloader: &reloader,
        cluster: cluster.as_ref(),
    };
    let (admin_addr, admin_task) = spawn_admin(config, admin, &state, &stopping).await?;
    let listeners = spawn_http(config, &state, web.as_ref(), parts.tls, &stopping).await?;
    let reloads = tokio::spawn(reload_on_hangup(reloader, stopping.clone()));
    let upkeep = tokio::spawn(server::observe::upkeep(crate::telemetry::metrics_handle(), stopping));
    dispatcher.start();
    tracing::info!(addr = %listeners.public, api = %listeners.api, store = service.store_backend(), "serving");
    Ok(Running {
        addr: listeners.public,
        api_addr: listeners.api,
        service,
        stop,
        draining: draining_tx,
        tasks: listeners
            .tasks
            .into_iter()
            .chain([grpc_task, admin_task, upkeep, reloads])
            .collect(),
        grpc_addr,
        admin_addr,
        rpc_stop,
        grace: config.server.shutdown_grace,
        drain_delay: config.server.drain_delay,
        dispatcher,
        wechat,
        web,
    })
}

/// The application's core: conversation rules, triage decisions, the dispatcher, the service and the WeChat
/// accounts, in the order each needs the one before.
struct Core {
    conversations: Conversations,
    decisions: Option<Arc<Decisions>>,
    dispatcher: Arc<Dispatcher>,
    service: Service,
    wechat: Arc<Wechat>,
}

impl Core {
    fn build(config: &Config, parts: &Parts, store: Arc<dyn Store>, events: EventBus) -> Result<Self, StartError> {
        let conversations = Conversations::new(store.clone(), events.clone());
        let decisions =
            (parts.triage.clone()).map(|t| Arc::new(Decisions::new(t, config.triage.clone(), store.clone())));
        let dispatcher = Arc::new(Dispatcher::build(
            &config.dispatch,
            &parts.outbound(decisions.as_ref(), Some(&conversations)),
            store.clone(),
        )?);
        let service = Service::new(store, events).with_deliveries(dispatcher.clone());
        let wechat = Arc::new(Wechat::build(
            &config.wechat,
            decisions.as_ref(),
            service.clone(),
            &dispatcher.kf_destinations(),
        )?);
        Ok(Self {
            conversations,
            decisions,
            dispatcher,
            service,
            wechat,
        })
    }
}

/// The event bus, through the cluster's stream in cluster mode, and the cluster's memory of HMAC nonces when a
/// legacy adapter checks them (none on a single node: each route keeps its own); in cluster mode the WeChat
/// customer-service clients take their access_tokens from the cluster.
async fn join_cluster(
    config: &Config,
    parts: &Parts,
    stopping: &watch::Receiver<bool>,
) -> Result<
    (
        Option<crate::cluster::Cluster>,
        EventBus,
        Option<crate::cluster::SharedNonces>,
        Option<crate::cluster::SharedTokens>,
    ),
    StartError,
> {
    let adapters = &parts.adapters;
    let events = EventBus::new(DEFAULT_CAPACITY);
    let Some(cluster_config) = &config.cluster else {
        return Ok((None, events, None, None));
    };
    let cluster = crate::cluster::Cluster::connect(cluster_config).await?;
    let relay = crate::cluster::StreamRelay::start(&cluster, events.local_sender(), stopping.clone()).await?;
    // A timestamp may be a window in the past or the future, so a nonce must be remembered for twice it.
    let window = adapters.iter().filter_map(|a| a.nonce_window()).max();
    let nonces = match window {
        Some(window) => Some(crate::cluster::SharedNonces::open(&cluster, window * 2).await?),
        None => None,
    };
    // Opened even without a customer-service client yet: a reload may add an account with one.
    let tokens = crate::cluster::SharedTokens::open(&cluster).await?;
    parts.kf.values().for_each(|kf| kf.share_tokens(tokens.clone()));
    tracing::info!(node = cluster.node(), "joined the cluster");
    Ok((Some(cluster), events.with_relay(Arc::new(relay)), nonces, Some(tokens)))
}

/// What the admin API commands.
struct Admin<'a> {
    dispatcher: &'a Arc<Dispatcher>,
    decisions: Option<&'a Arc<Decisions>>,
    reloader: &'a Arc<Reloader>,
    cluster: Option<&'a crate::cluster::Cluster>,
}

/// The admin listener; in cluster mode with the control subjects (other nodes, shared breaker overrides,
/// reloads of every node).
async fn spawn_admin(
    config: &Config,
    admin: Admin<'_>,
    state: &AppState,
    stopping: &watch::Receiver<bool>,
) -> Result<(SocketAddr, JoinHandle<()>), StartError> {
    let control = match admin.cluster {
        Some(cluster) => Some(
            crate::cluster::Control::start(
                cluster,
                admin.dispatcher.clone(),
                admin.reloader.clone(),
                stopping.clone(),
            )
            .await?,
        ),
        None => None,
    };
    server::admin::spawn(
        &config.admin,
        server::admin::Commands {
            dispatcher: admin.dispatcher.clone(),
            decisions: admin.decisions.cloned(),
            reloader: admin.reloader.clone(),
            control,
        },
        state.clone(),
        stopping.clone(),
    )
    .await
    .map_err(|source| StartError::Bind {
        addr: config.admin.listen,
        source,
    })
}

/// SIGHUP reloads the configuration on this node (the same as `POST /admin/reload` on a single node); a
/// configuration that cannot be put in force is logged with every problem and the running one stays.
async fn reload_on_hangup(reloader: Arc<Reloader>, mut stopping: watch::Receiver<bool>) {
    let Ok(mut hangups) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP: the configuration reloads only through the admin API");
        return;
    };
    // The guard `wait_for` returns is not `Send`: it is dropped inside this block, never held across a select.
    let stopped = async move {
        let _ = stopping.wait_for(|s| *s).await;
    };
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            () = &mut stopped => return,
            Some(()) = hangups.recv() => {
                if let Err(e) = reloader.reload().await {
                    let problems: Vec<String> = e.issues().iter().map(ToString::to_string).collect();
                    tracing::error!(error = %e, problems = ?problems, "SIGHUP: configuration not reloaded; the running one stays");
                }
            }
        }
    }
}

/// The HTTP listeners as bound.
struct HttpListeners {
    public: SocketAddr,
    api: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

/// The public listener and, when `[api] listen` is set, the API's own; otherwise the API is served on the
/// public listener.
async fn spawn_http(
    config: &Config,
    state: &AppState,
    web: Option<&Arc<Web>>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    stopping: &watch::Receiver<bool>,
) -> Result<HttpListeners, StartError> {
    use server::http;
    let server = &config.server;
    let limits = server::Limits {
        header_read_timeout: server.header_read_timeout,
        idle_timeout: server.idle_timeout,
        max_connections: server.max_connections,
        max_connections_per_client: server.max_connections_per_client,
    };
    let bind = |addr| move |source| StartError::Bind { addr, source };
    let app = |routes, listener| http::application(routes, state.clone(), server.request_timeout, listener);
    let grace = server.shutdown_grace;
    let public_routes = http::public_routes(web);
    let Some(api_listen) = config.api.listen else {
        let routes = http::health_routes(true)
            .merge(public_routes)
            .merge(http::api_routes(state));
        let (public, task) = http::spawn(
            server.listen,
            app(routes, http::Listener::Public),
            http::public_streams(web),
            limits,
            tls,
            stopping.clone(),
            grace,
            "http",
        )
        .await
        .map_err(bind(server.listen))?;
        return Ok(HttpListeners {
            public,
            api: public,
            tasks: vec![task],
        });
    };
    let routes = http::health_routes(false).merge(public_routes);
    let (public, public_task) = http::spawn(
        server.listen,
        app(routes, http::Listener::Public),
        http::public_streams(web),
        limits,
        tls.clone(),
        stopping.clone(),
        grace,
        "public",
    )
    .await
    .map_err(bind(server.listen))?;
    let routes = http::health_routes(true).merge(http::api_routes(state));
    let (api, api_task) = http::spawn(
        api_listen,
        app(routes, http::Listener::Api),
        server::Streams::NONE,
        limits,
        tls,
        stopping.clone(),
        grace,
        "api",
    )
    .await
    .map_err(bind(api_listen))?;
    Ok(HttpListeners {
        public,
        api,
        tasks: vec![public_task, api_task],
    })
}

/// The application serving in the background.
pub struct Running {
    addr: SocketAddr,
    api_addr: SocketAddr,
    service: Service,
    /// Stops every listener and live subscriptions.
    stop: watch::Sender<bool>,
    /// Turns gRPC health to NOT_SERVING for the drain delay.
    draining: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    grpc_addr: SocketAddr,
    admin_addr: SocketAddr,
    rpc_stop: jsonrpsee::server::ServerHandle,
    grace: Duration,
    drain_delay: Duration,
    dispatcher: Arc<Dispatcher>,
    wechat: Arc<Wechat>,
    web: Option<Arc<Web>>,
}

impl Running {
    /// The bound public HTTP address (useful with port 0); the API's too unless `[api] listen` is set.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bound API address (`/v1`, `/rpc`): `[api] listen`, or the public listener's.
    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    /// The application service the listeners call, for in-process use (tests, embedding).
    pub fn service(&self) -> &Service {
        &self.service
    }

    /// The bound gRPC address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// The bound admin (health, metrics) address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// Drains and stops: readiness (`/readyz`, gRPC health) turns not-serving while requests are still served
    /// for the drain delay, so load balancers stop sending; then the listeners stop accepting and requests in
    /// flight finish within the grace period; then late WeChat answers are stored and deliveries drain.
    pub async fn shutdown(self) {
        self.service.start_draining();
        let _ = self.draining.send(true);
        if !self.drain_delay.is_zero() {
            tracing::info!(delay = ?self.drain_delay, "draining: not ready, still serving");
            tokio::time::sleep(self.drain_delay).await;
        }
        let _ = self.stop.send(true);
        let _ = self.rpc_stop.stop();
        // Visitors' sockets and streams close now (they reconnect and resume elsewhere), so the listeners'
        // drain does not wait the whole grace period for streams that never end.
        if let Some(web) = &self.web {
            web.close();
        }
        for task in self.tasks {
            let abort = task.abort_handle();
            // Each listener bounds its own drain by the grace period; this only guards against one that hangs.
            if tokio::time::timeout(self.grace + Duration::from_secs(1), task)
                .await
                .is_err()
            {
                tracing::warn!("a listener did not stop within the grace period; closing it");
                abort.abort();
            }
        }
        // Ingress is closed: late WeChat answers finish (they store replies, which queue deliveries), then
        // in-flight deliveries drain and the rest stays queued.
        let web = async {
            if let Some(web) = &self.web {
                web.drain(self.grace).await;
            }
        };
        tokio::join!(self.wechat.drain(self.grace), web);
        self.dispatcher.shutdown().await;
    }
}
