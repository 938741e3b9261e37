//! The importer binary, run the way an operator runs it: mapping, source and target from the environment, one
//! command per process, its output kept for the assertions.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

/// How one import is run: which mapping, source and target, and where its processes write their output.
pub(crate) struct Importer {
    mapping: PathBuf,
    source: String,
    target: String,
    logs: PathBuf,
    runs: std::cell::Cell<u32>,
}

/// A finished run.
pub(crate) struct Finished {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl std::fmt::Display for Finished {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}\n--- stdout\n{}\n--- stderr\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

impl Importer {
    /// Writes `mapping` (TOML) into `dir`, which also takes the runs' output.
    pub(crate) fn new(dir: &Path, mapping: &str, source: &str, target: &str) -> Self {
        let path = dir.join("mapping.toml");
        std::fs::write(&path, mapping).unwrap();
        Self {
            mapping: path,
            source: source.to_owned(),
            target: target.to_owned(),
            logs: dir.to_owned(),
            runs: std::cell::Cell::new(0),
        }
    }

    /// Starts `args`; returns the process and the files its stdout and stderr go to.
    pub(crate) fn spawn(&self, args: &[&str]) -> (Child, PathBuf, PathBuf) {
        let n = self.runs.get() + 1;
        self.runs.set(n);
        let (out, err) = (self.logs.join(format!("{n}.out")), self.logs.join(format!("{n}.err")));
        let child = Command::new(env!("CARGO_BIN_EXE_protofuse-migrate"))
            .args(args)
            .env("PROTOFUSE_MIGRATE_MAPPING", &self.mapping)
            .env("PROTOFUSE_MIGRATE_SOURCE", &self.source)
            .env("PROTOFUSE_MIGRATE_TARGET", &self.target)
            .env("RUST_LOG", "info,sqlx=warn")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        (child, out, err)
    }

    /// Runs `args` to the end; a run still going after `within` is killed and the test fails.
    pub(crate) async fn run(&self, args: &[&str], within: Duration) -> Finished {
        let (child, out, err) = self.spawn(args);
        let Ok(status) = exit_of(child, within).await else {
            panic!(
                "`protofuse-migrate {}` still running after {within:?} (killed); stderr:\n{}",
                args.join(" "),
                std::fs::read_to_string(&err).unwrap_or_default()
            );
        };
        Finished {
            status,
            stdout: std::fs::read_to_string(out).unwrap(),
            stderr: std::fs::read_to_string(err).unwrap(),
        }
    }
}

/// Waits for `child` to exit: the wait blocks a thread of its own, so the test wakes on the exit itself rather
/// than polling for it. A process still running after `within` is killed: `Err` with the status it then had.
pub(crate) async fn exit_of(mut child: Child, within: Duration) -> Result<ExitStatus, ExitStatus> {
    let pid = child.id().to_string();
    let mut waiting = tokio::task::spawn_blocking(move || child.wait().unwrap());
    match tokio::time::timeout(within, &mut waiting).await {
        Ok(status) => Ok(status.unwrap()),
        Err(_) => {
            Command::new("kill").args(["-KILL", &pid]).status().unwrap();
            Err(waiting.await.unwrap())
        }
    }
}

/// Whether the SQLite target at `target_url` holds a message whose stored body contains `text`.
pub(crate) async fn stored(target_url: &str, text: &str) -> bool {
    let store = sqlx::SqlitePool::connect(target_url).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages WHERE body LIKE ?")
        .bind(format!("%{text}%"))
        .fetch_one(&store)
        .await
        .unwrap();
    n > 0
}
