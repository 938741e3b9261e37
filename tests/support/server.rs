//! Starting protofuse for tests: in-process on a loopback port with a temporary SQLite store, or as the built
//! binary with the shipped configuration.

#![allow(dead_code)]

use std::path::Path;

use protofuse::app::{self, Running};
use protofuse::config::Config;
use tempfile::TempDir;

/// A server running in this process, with its data in a temporary directory.
pub struct TestServer {
    pub base: String,
    /// `http://127.0.0.1:<grpc port>`, for tonic clients.
    pub grpc: String,
    /// `127.0.0.1:<admin port>`.
    pub admin: std::net::SocketAddr,
    pub client: reqwest::Client,
    running: Option<Running>,
    /// The configuration it runs with, its listeners pinned to the ports they bound (for [`Self::start_again`]).
    config: Config,
    _dir: TempDir,
}

/// The default configuration with every listener on a free loopback port, so tests run side by side.
pub fn loopback_config() -> Config {
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config.grpc.listen = "127.0.0.1:0".parse().unwrap();
    config.admin.listen = "127.0.0.1:0".parse().unwrap();
    // Tests watch readiness themselves where they care; every other shutdown need not wait.
    config.server.drain_delay = std::time::Duration::ZERO;
    // As in config/default.toml: the demo account is on where a configuration names it.
    config.wechat.accounts = vec![protofuse::wechat::AccountConfig::demo()];
    config
}

impl TestServer {
    /// Starts a server on `127.0.0.1:0` storing into a fresh SQLite file; `tweak` adjusts the config first.
    pub async fn sqlite(tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = loopback_config();
        config.store.url = format!("sqlite://{}", dir.path().join("protofuse.db").display());
        tweak(&mut config);
        Self::start(&config, dir).await
    }

    /// Starts a server with `config` as given (e.g. a MySQL store).
    pub async fn start(config: &Config, dir: TempDir) -> Self {
        let running = app::start(config).await.expect("server starts");
        let base = format!("http://{}", running.local_addr());
        let mut config = config.clone();
        config.server.listen = running.local_addr();
        config.grpc.listen = running.grpc_addr();
        config.admin.listen = running.admin_addr();
        config.api.listen = config.api.listen.map(|_| running.api_addr());
        Self {
            base,
            grpc: format!("http://{}", running.grpc_addr()),
            admin: running.admin_addr(),
            client: reqwest::Client::new(),
            running: Some(running),
            config,
            _dir: dir,
        }
    }

    /// Starts a stopped server again on the same ports and the same store, with `tweak` applied to its
    /// configuration: a restart, as the clients connected to it see one.
    pub async fn start_again(&mut self, tweak: impl FnOnce(&mut Config)) {
        assert!(self.running.is_none(), "stop the server first");
        tweak(&mut self.config);
        self.running = Some(app::start(&self.config).await.expect("server starts again"));
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GETs `path` and parses the JSON answer, whatever its status.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        get_json(&self.client, &self.url(path)).await
    }

    /// The temporary directory holding the SQLite file (`protofuse.db`).
    pub fn dir(&self) -> &Path {
        self._dir.path()
    }

    pub async fn shutdown(mut self) {
        self.stop().await;
    }

    /// Shuts the server down but keeps its directory, so the store can be read afterwards.
    pub async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await;
        }
    }
}

pub use protofuse_testkit::http::{get_json, texts};

/// The built `protofuse` binary, run as a child process; killed on drop if still running.
pub struct Binary(pub protofuse_testkit::binary::Binary);

impl std::ops::Deref for Binary {
    type Target = protofuse_testkit::binary::Binary;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Binary {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Binary {
    /// Runs `protofuse serve --config <repo>/config/default.toml` in `cwd`, listening on free ports (through
    /// the documented environment overrides), and waits until `/readyz` answers 200.
    pub async fn serve_default(cwd: &Path) -> Self {
        let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default.toml");
        Self::serve(&config, cwd).await
    }

    /// Runs `protofuse serve --config <config>` in `cwd` on free ports, and waits until it is ready.
    pub async fn serve(config: &Path, cwd: &Path) -> Self {
        let exe = Path::new(env!("CARGO_BIN_EXE_protofuse"));
        Self(protofuse_testkit::binary::Binary::serve(exe, config, cwd, &[]).await)
    }

    /// SIGKILL: no shutdown, no flush; what survives is what was committed.
    pub fn kill(self) {
        self.0.kill();
    }
}
