//! A workspace binary run as a child process: `protofuse serve` on free ports, ready when `/readyz` answers.
//!
//! A package's own integration tests get their binaries from cargo (`env!("CARGO_BIN_EXE_<name>")`); another
//! package's tests find them with [`workspace_binary`], which builds the binary if the test run did not.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use crate::http::free_port;

/// The path of binary `bin` of workspace package `package`, in the same target directory and profile as the
/// running test, built (once per test process) with `cargo build`: a test run of one package alone does not
/// build another package's binaries, and a binary left from an earlier build may be stale. When the workspace's
/// tests built it already, this is a no-op of about a second.
pub fn workspace_binary(package: &str, bin: &str) -> PathBuf {
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let exe = std::env::current_exe().expect("the test binary knows its path");
    // target/<profile>/deps/<test> → target/<profile>/<bin>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("tests run from target/<profile>/deps");
    let mut built = BUILT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if !built.iter().any(|b| b == bin) {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "--quiet", "--locked", "--package", package, "--bin", bin]);
        if profile_dir.file_name().is_some_and(|p| p == "release") {
            build.arg("--release");
        }
        let status = build.status().expect("cargo runs");
        assert!(status.success(), "cargo build --package {package} --bin {bin} failed");
        built.push(bin.to_owned());
    }
    profile_dir.join(bin)
}

/// `protofuse serve`, run as a child process; killed on drop if still running.
pub struct Binary {
    /// The process.
    pub child: Child,
    /// `http://127.0.0.1:<port>` of its HTTP listener.
    pub base: String,
    /// `http://127.0.0.1:<port>` of its admin listener.
    pub admin: String,
}

impl Binary {
    /// Runs `<exe> serve --config <config>` in `cwd`, with the HTTP, gRPC and admin listeners on free loopback
    /// ports (through the documented environment overrides) plus `env`, and waits until `/readyz` answers 200.
    pub async fn serve(exe: &Path, config: &Path, cwd: &Path, env: &[(&str, &str)]) -> Self {
        let (port, admin) = (free_port(), free_port());
        let child = Command::new(exe)
            .args(["serve", "--config"])
            .arg(config)
            .env("PROTOFUSE__SERVER__LISTEN", format!("127.0.0.1:{port}"))
            .env("PROTOFUSE__GRPC__LISTEN", format!("127.0.0.1:{}", free_port()))
            .env("PROTOFUSE__ADMIN__LISTEN", format!("127.0.0.1:{admin}"))
            .env("PROTOFUSE__SERVER__DRAIN_DELAY", "0s")
            .envs(env.iter().copied())
            .current_dir(cwd)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("protofuse binary starts");
        let mut binary = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            admin: format!("http://127.0.0.1:{admin}"),
        };
        binary.wait_ready().await;
        binary
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
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
        self.signal("TERM");
    }

    /// Sends the signal named `name` (`HUP`, `TERM`, ...).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
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
