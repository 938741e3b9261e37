//! Starting protofuse for tests: in-process on a loopback port with a temporary SQLite store, or as the built
//! binary with the shipped configuration.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use protofuse::config::Config;
use protofuse::server::{self, Running};
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
    _dir: TempDir,
}

/// The default configuration with every listener on a free loopback port, so tests run side by side.
pub fn loopback_config() -> Config {
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config.grpc.listen = "127.0.0.1:0".parse().unwrap();
    config.admin.listen = "127.0.0.1:0".parse().unwrap();
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
        let running = server::start(config).await.expect("server starts");
        let base = format!("http://{}", running.local_addr());
        Self {
            base,
            grpc: format!("http://{}", running.grpc_addr()),
            admin: running.admin_addr(),
            client: reqwest::Client::new(),
            running: Some(running),
            _dir: dir,
        }
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

/// GETs `url` and parses the JSON answer, whatever its status.
pub async fn get_json(client: &reqwest::Client, url: &str) -> serde_json::Value {
    client.get(url).send().await.unwrap().json().await.unwrap()
}

/// The text of every message in a page of the native API.
pub fn texts(page: &serde_json::Value) -> Vec<String> {
    let items = page["items"].as_array().expect("a page has items");
    items
        .iter()
        .map(|m| m["content"]["text"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The built `protofuse` binary, run as a child process; killed on drop if still running.
pub struct Binary {
    pub child: Child,
    pub base: String,
}

impl Binary {
    /// Runs `protofuse serve --config <repo>/config/default.toml` in `cwd`, listening on a free port (through
    /// the documented environment override), and waits until `/readyz` answers 200.
    pub async fn serve_default(cwd: &Path) -> Self {
        let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default.toml");
        Self::serve(&config, cwd).await
    }

    /// Runs `protofuse serve --config <config>` in `cwd` on free ports, and waits until it is ready.
    pub async fn serve(config: &Path, cwd: &Path) -> Self {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_protofuse"))
            .args(["serve", "--config"])
            .arg(config)
            .env("PROTOFUSE__SERVER__LISTEN", format!("127.0.0.1:{port}"))
            .env("PROTOFUSE__GRPC__LISTEN", format!("127.0.0.1:{}", free_port()))
            .env("PROTOFUSE__ADMIN__LISTEN", format!("127.0.0.1:{}", free_port()))
            .current_dir(cwd)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("protofuse binary starts");
        let mut binary = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        binary.wait_ready().await;
        binary
    }

    /// Waits for `/readyz`; a generous limit because CI machines may be busy, but an early exit fails at once
    /// with the server's own words.
    async fn wait_ready(&mut self) {
        let client = reqwest::Client::new();
        for _ in 0..600 {
            if let Ok(r) = client.get(format!("{}/readyz", self.base)).send().await
                && r.status() == 200
            {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                let mut stderr = String::new();
                if let Some(mut pipe) = self.child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
                }
                panic!("protofuse serve exited with {status} before it was ready:\n{stderr}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("protofuse serve did not become ready within 30 s");
    }

    /// SIGKILL: no shutdown, no flush; what survives is what was committed.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
