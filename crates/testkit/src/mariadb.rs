//! A private, throwaway MariaDB server for integration tests.
//!
//! This module owns the whole life of one `mariadbd` per test process: it
//! initialises a data directory inside a fresh temp dir, starts the server on a
//! spare `127.0.0.1` port plus its own unix socket, provisions the `protofuse`
//! user, hands out empty databases, and makes sure the server and its files are
//! gone once the test process exits, however it exits. It never reads the
//! machine's `/etc/mysql` configuration and never talks to the shared server on
//! port 3306.
//!
//! The binlog is on, in row format with full metadata, so tests of binlog
//! consumers can use the same server.
//!
//! Teardown: the server lives in a static, and statics are never dropped. So
//! cleanup belongs to a tiny `sh` watchdog whose stdin is a pipe that only this
//! process can write to. The kernel closes that pipe when the process ends for
//! any reason (normal exit, panic, abort, `SIGKILL`), and the watchdog then
//! kills the server's process group and deletes the temp dir. The watchdog and
//! the server run in process groups of their own, so a Ctrl-C aimed at the test
//! run cannot take the watchdog down before it has cleaned up.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::Write as _;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sqlx::mysql::{MySqlConnectOptions, MySqlConnection};
use sqlx::{ConnectOptions as _, Connection as _};
use tokio::sync::OnceCell;

/// The account tests connect as; it has every privilege, including replication.
pub const USER: &str = "protofuse";
pub const PASSWORD: &str = "protofuse";
/// `root` over the unix socket needs no password; over TCP it uses this one.
const ADMIN_PASSWORD: &str = "protofuse";

const INSTALL_HINT: &str = "install the `mariadb-server` package \
     (Debian/Ubuntu: `apt-get install mariadb-server`; CI installs it)";
/// Beyond `PATH`: distributions put the server in `sbin` or `libexec`, which
/// are often missing from a normal user's `PATH`.
const SEARCH_DIRS: &[&str] = &[
    "/usr/sbin",
    "/usr/libexec",
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/bin",
];
const INSTALL_TIMEOUT: Duration = Duration::from_secs(120);
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// Another process can grab the spare port between our probe and the
/// server's bind; a handful of retries makes that race irrelevant.
const PORT_ATTEMPTS: u32 = 5;
/// `sun_path` holds 108 bytes including the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;

/// Shared by bootstrap and the real server: InnoDB sizes its files at
/// bootstrap, and equal settings spare the server from resizing them at start.
/// Tuning options are `--loose-` so that a MariaDB release which renamed one
/// merely warns instead of refusing to start.
const COMMON_OPTIONS: &[&str] = &[
    "--skip-name-resolve",
    "--character-set-server=utf8mb4",
    "--collation-server=utf8mb4_unicode_ci",
    "--loose-performance-schema=OFF",
    "--loose-innodb-buffer-pool-size=16M",
    "--loose-innodb-log-file-size=8M",
    "--loose-innodb-log-buffer-size=2M",
    "--loose-innodb-temp-data-file-path=ibtmp1:1M:autoextend",
    // Durability is pointless for a database deleted at exit; fsyncs are slow.
    "--loose-innodb-flush-log-at-trx-commit=0",
    "--loose-innodb-doublewrite=0",
    "--loose-sync-binlog=0",
    // Containers often forbid io_uring/libaio; the fallback is fine for tests.
    "--loose-innodb-use-native-aio=0",
    "--loose-aria-pagecache-buffer-size=8M",
    "--loose-key-buffer-size=1M",
];

/// Reads process-group ids from stdin, one per line (an empty line clears it);
/// the latest is the process that must not outlive the test process. EOF on
/// stdin means the test process is gone: kill that group, wait (boundedly) for
/// its leader to die so it cannot recreate files, then delete the temp dir
/// (`$1`). A killed but unreaped (zombie) process holds no files, and init may
/// take a second or two to reap it, hence the look at its state in `/proc`.
const WATCHDOG_SCRIPT: &str = r#"
dir=$1
pg=
while IFS= read -r line; do pg=$line; done
if [ -n "$pg" ]; then
  kill -9 "-$pg" 2>/dev/null
  n=0
  while [ "$n" -lt 100 ] && kill -0 "$pg" 2>/dev/null; do
    state=
    [ -r "/proc/$pg/stat" ] && read -r _ _ state _ < "/proc/$pg/stat"
    [ "$state" = Z ] && break
    sleep 0.05
    n=$((n + 1))
  done
fi
rm -rf -- "$dir"
"#;

static SERVER: OnceCell<MariaDb> = OnceCell::const_new();

/// The private `mariadbd` shared by every test in this process, started on
/// first use (about a second on a 2-core machine).
///
/// Async so that concurrent first callers wait without blocking a runtime
/// thread. Callable from any tokio runtime (every `#[tokio::test]` has its
/// own): nothing kept here is tied to the runtime that started the server.
/// The runtime needs its time and IO drivers, as `#[tokio::test]` provides.
///
/// Panics, with what to do about it, if the server cannot be started.
pub async fn server() -> &'static MariaDb {
    SERVER.get_or_init(MariaDb::start).await
}

/// A running private server; see [`server`].
pub struct MariaDb {
    port: u16,
    dir: PathBuf,
    socket: PathBuf,
    next_database: AtomicU64,
    // Never waited on unless restarted: the watchdog kills it when the process
    // exits. Behind an async lock so that [`MariaDb::restart`] can replace it.
    server: tokio::sync::Mutex<Child>,
    // Must stay open for the whole process: closing it is the signal to tear
    // the server down.
    watchdog: tokio::sync::Mutex<Watchdog>,
    launcher: Launcher,
}

impl MariaDb {
    /// The TCP port on `127.0.0.1`.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's own unix socket (`root` connects here without a password).
    pub fn socket_path(&self) -> &Path {
        &self.socket
    }

    /// The data directory, where the binlog (`mariadb-bin.*`) lives.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Creates a fresh, empty database with a unique name and returns a URL
    /// for it usable by sqlx and `mysql_async`, e.g.
    /// `mysql://protofuse:protofuse@127.0.0.1:PORT/t_3`.
    pub async fn fresh_database(&self) -> String {
        let name = format!("t_{}", self.next_database.fetch_add(1, Ordering::Relaxed));
        let mut conn = self.root_connection().await;
        sqlx::raw_sql(&format!("CREATE DATABASE `{name}`"))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("test MariaDB: cannot create database {name}: {e}"));
        // The database exists either way; a failed goodbye does not matter.
        let _ = conn.close().await;
        format!("mysql://{USER}:{PASSWORD}@127.0.0.1:{}/{name}", self.port)
    }

    /// A URL for `root` over TCP, for what the test user may not do, such as
    /// granting privileges. It names no database.
    pub fn admin_url(&self) -> String {
        format!("mysql://root:{ADMIN_PASSWORD}@127.0.0.1:{}", self.port)
    }

    /// Shuts the server down cleanly (`SHUTDOWN`) and starts it again on the
    /// same port and data directory, for tests of clients that must survive a
    /// server restart. Connections open at the time get errors; the binlog
    /// continues in a new file. Other tests in the same process see the
    /// restart too, so keep restarting tests in a test binary of their own.
    pub async fn restart(&self) {
        let mut server = self.server.lock().await;
        let mut conn = self.root_connection().await;
        // The server closes the connection as it goes down; the answer may be an error.
        let _ = sqlx::raw_sql("SHUTDOWN").execute(&mut conn).await;
        if wait_for_exit(&mut server, READY_TIMEOUT).await.is_none() {
            panic!("test MariaDB: the server did not shut down within {READY_TIMEOUT:?}");
        }
        let attempt = self.launcher.restarts.fetch_add(1, Ordering::Relaxed) + 1;
        let log = self.dir.join(format!("mariadbd-restart-{attempt}.err"));
        let mut child = self
            .launcher
            .server_command(self.port, &log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "test MariaDB: cannot restart {}: {e}",
                    self.launcher.programs.mariadbd.display()
                )
            });
        self.watchdog.lock().await.track(Some(child.id()));
        match wait_until_ready(&mut child, &self.socket).await {
            Startup::Ready(conn) => {
                let _ = conn.close().await;
            }
            Startup::Exited(status) => panic!(
                "test MariaDB: mariadbd exited during restart ({status}). Its error log ends with:\n{}",
                tail(&log)
            ),
            Startup::TimedOut(error) => panic!("test MariaDB: no connection after restart: {error}"),
        }
        *server = child;
    }

    async fn root_connection(&self) -> MySqlConnection {
        root_socket_options(&self.socket).connect().await.unwrap_or_else(|e| {
            panic!(
                "test MariaDB: cannot connect as root over {}: {e}; did the server die? Its log is in {}",
                self.socket.display(),
                self.dir.display(),
            )
        })
    }

    async fn start() -> Self {
        let started = Instant::now();
        let programs = Programs::locate();
        let (dir, mut watchdog) = Watchdog::with_temp_dir();
        let socket = dir.join("mariadbd.sock");
        assert!(
            socket.as_os_str().len() <= MAX_SOCKET_PATH,
            "test MariaDB: the socket path {} is too long for a unix socket; \
             point TMPDIR at a shorter directory such as /tmp",
            socket.display()
        );
        // mariadbd refuses to run as root unless told `--user=root`.
        let as_root = fs::metadata(&dir).is_ok_and(|meta| meta.uid() == 0);
        let launcher = Launcher {
            programs,
            dir: dir.clone(),
            socket: socket.clone(),
            as_root,
            restarts: AtomicU64::new(0),
        };
        launcher.install(&mut watchdog).await;
        let (server, port, conn) = launcher.launch(&mut watchdog).await;
        provision(conn).await;
        eprintln!(
            "test MariaDB ready on 127.0.0.1:{port} (socket {}) in {:.1?}",
            socket.display(),
            started.elapsed()
        );
        Self {
            port,
            dir,
            socket,
            next_database: AtomicU64::new(1),
            server: tokio::sync::Mutex::new(server),
            watchdog: tokio::sync::Mutex::new(watchdog),
            launcher,
        }
    }
}

/// The installed server binaries.
struct Programs {
    mariadbd: PathBuf,
    install_db: PathBuf,
}

impl Programs {
    fn locate() -> Self {
        let mariadbd = find_program(&["mariadbd", "mysqld"]).unwrap_or_else(|| {
            panic!("test MariaDB: no `mariadbd` or `mysqld` on PATH or in {SEARCH_DIRS:?}; {INSTALL_HINT}")
        });
        let install_db =
            find_program(&["mariadb-install-db", "mysql_install_db"]).unwrap_or_else(|| {
                panic!(
                    "test MariaDB: no `mariadb-install-db` or `mysql_install_db` on PATH or in {SEARCH_DIRS:?}; {INSTALL_HINT}"
                )
            });
        // A `mysqld` may be Oracle MySQL, whose options differ; say so up
        // front rather than fail obscurely later.
        let version = Command::new(&mariadbd)
            .arg("--version")
            .output()
            .unwrap_or_else(|e| panic!("test MariaDB: cannot run {}: {e}", mariadbd.display()));
        let version = String::from_utf8_lossy(&version.stdout);
        assert!(
            version.contains("MariaDB"),
            "test MariaDB: {} is not MariaDB (it says {:?}); {INSTALL_HINT}",
            mariadbd.display(),
            version.trim(),
        );
        Self { mariadbd, install_db }
    }
}

/// The first of `names` (in order of preference) found as an executable on
/// `PATH` or in [`SEARCH_DIRS`].
fn find_program(names: &[&str]) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect())
        .unwrap_or_default();
    dirs.extend(SEARCH_DIRS.iter().map(PathBuf::from));
    names.iter().find_map(|name| {
        dirs.iter().map(|dir| dir.join(name)).find(|candidate| {
            fs::metadata(candidate).is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        })
    })
}

/// Everything needed to bootstrap and start the server in one temp dir.
struct Launcher {
    programs: Programs,
    dir: PathBuf,
    socket: PathBuf,
    as_root: bool,
    restarts: AtomicU64,
}

impl Launcher {
    /// Creates the system tables, with a password-less `root@localhost`.
    async fn install(&self, watchdog: &mut Watchdog) {
        let log_path = self.dir.join("install-db.log");
        let log = File::create(&log_path)
            .unwrap_or_else(|e| panic!("test MariaDB: cannot create {}: {e}", log_path.display()));
        let stderr = log
            .try_clone()
            .unwrap_or_else(|e| panic!("test MariaDB: cannot duplicate a file handle: {e}"));
        let mut command = Command::new(&self.programs.install_db);
        // `--no-defaults` only counts as the very first argument.
        command
            .arg("--no-defaults")
            .arg(path_option("--datadir=", &self.dir.join("data")))
            .arg(path_option("--tmpdir=", &self.dir))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
            .args(COMMON_OPTIONS)
            .args(self.as_root.then_some("--user=root"))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            // Its own group, so the watchdog can also kill the bootstrap
            // `mariadbd` the script starts.
            .process_group(0);
        let mut child = command.spawn().unwrap_or_else(|e| {
            panic!(
                "test MariaDB: cannot run {}: {e}; {INSTALL_HINT}",
                self.programs.install_db.display()
            )
        });
        watchdog.track(Some(child.id()));
        let status = wait_for_exit(&mut child, INSTALL_TIMEOUT).await;
        watchdog.track(None);
        match status {
            Some(status) if status.success() => {}
            Some(status) => panic!(
                "test MariaDB: {} failed ({status}); check that `mariadb-server` is installed completely. Its output:\n{}",
                self.programs.install_db.display(),
                tail(&log_path),
            ),
            None => panic!(
                "test MariaDB: {} did not finish within {INSTALL_TIMEOUT:?}; is the machine overloaded or the disk full? Its output:\n{}",
                self.programs.install_db.display(),
                tail(&log_path),
            ),
        }
    }

    /// Starts the server on a spare port, retrying when someone else took the
    /// port first, and returns it with a ready `root` connection.
    async fn launch(&self, watchdog: &mut Watchdog) -> (Child, u16, MySqlConnection) {
        for attempt in 1..=PORT_ATTEMPTS {
            let port = spare_port();
            let log = self.dir.join(format!("mariadbd-{attempt}.err"));
            let mut child = self.server_command(port, &log).spawn().unwrap_or_else(|e| {
                panic!(
                    "test MariaDB: cannot run {}: {e}; {INSTALL_HINT}",
                    self.programs.mariadbd.display()
                )
            });
            watchdog.track(Some(child.id()));
            match wait_until_ready(&mut child, &self.socket).await {
                Startup::Ready(conn) => return (child, port, conn),
                Startup::Exited(_) if port_was_taken(&log) => watchdog.track(None),
                Startup::Exited(status) => panic!(
                    "test MariaDB: mariadbd exited during startup ({status}). Its error log ends with:\n{}",
                    tail(&log),
                ),
                Startup::TimedOut(error) => {
                    // The watchdog would get it at exit; no reason to wait.
                    let _ = child.kill();
                    panic!(
                        "test MariaDB: mariadbd did not accept connections on {} within {READY_TIMEOUT:?} \
                         (last error: {error}); is the machine overloaded? Its error log ends with:\n{}",
                        self.socket.display(),
                        tail(&log),
                    );
                }
            }
        }
        panic!(
            "test MariaDB: the spare port was taken by another process {PORT_ATTEMPTS} times in a row; \
             is something grabbing every free port?"
        )
    }

    fn server_command(&self, port: u16, log: &Path) -> Command {
        let mut command = Command::new(&self.programs.mariadbd);
        command
            .arg("--no-defaults")
            .arg(path_option("--datadir=", &self.dir.join("data")))
            .arg(path_option("--tmpdir=", &self.dir))
            .arg(path_option("--socket=", &self.socket))
            .arg(path_option("--pid-file=", &self.dir.join("mariadbd.pid")))
            .arg(path_option("--log-error=", log))
            .arg(format!("--port={port}"))
            .arg("--bind-address=127.0.0.1")
            // What a binlog importer needs from its source.
            .args([
                "--log-bin=mariadb-bin",
                "--binlog-format=ROW",
                "--binlog-row-metadata=FULL",
                "--server-id=1",
            ])
            .args(COMMON_OPTIONS)
            .args(self.as_root.then_some("--user=root"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Out of the test run's process group, so only the watchdog
            // decides when it dies.
            .process_group(0);
        command
    }
}

/// Creates the test account and a password-protected TCP `root`.
async fn provision(mut conn: MySqlConnection) {
    let mut statements = Vec::new();
    // `localhost` too: over the socket an anonymous `''@localhost`, which
    // some releases create, would otherwise win over `protofuse@%`.
    for host in ["%", "localhost"] {
        statements.push(format!("CREATE USER '{USER}'@'{host}' IDENTIFIED BY '{PASSWORD}'"));
        statements.push(format!("GRANT ALL PRIVILEGES ON *.* TO '{USER}'@'{host}'"));
        statements.push(format!(
            "GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '{USER}'@'{host}'"
        ));
    }
    statements.push(format!(
        "CREATE OR REPLACE USER 'root'@'127.0.0.1' IDENTIFIED BY '{ADMIN_PASSWORD}'"
    ));
    statements.push("GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION".to_owned());
    for statement in &statements {
        sqlx::raw_sql(statement)
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("test MariaDB: provisioning failed at `{statement}`: {e}"));
    }
    let _ = conn.close().await;
}

enum Startup {
    Ready(MySqlConnection),
    Exited(ExitStatus),
    TimedOut(String),
}

/// Polls a `root` connection until one succeeds, the server exits, or
/// [`READY_TIMEOUT`] passes.
async fn wait_until_ready(child: &mut Child, socket: &Path) -> Startup {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Some(status) = try_wait(child) {
            return Startup::Exited(status);
        }
        let error = match tokio::time::timeout(CONNECT_TIMEOUT, root_socket_options(socket).connect()).await {
            Ok(Ok(conn)) => return Startup::Ready(conn),
            Ok(Err(error)) => error.to_string(),
            Err(_) => format!("no handshake within {CONNECT_TIMEOUT:?}"),
        };
        if Instant::now() >= deadline {
            return Startup::TimedOut(error);
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Polls rather than blocks, so the runtime thread stays free; `None` on
/// timeout, after killing the child.
async fn wait_for_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = try_wait(child) {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            return None;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

fn try_wait(child: &mut Child) -> Option<ExitStatus> {
    child
        .try_wait()
        .unwrap_or_else(|e| panic!("test MariaDB: cannot check on process {}: {e}", child.id()))
}

fn root_socket_options(socket: &Path) -> MySqlConnectOptions {
    MySqlConnectOptions::new()
        .socket(socket)
        .username("root")
        .disable_statement_logging()
}

/// A port the kernel just considered free. The listener is released at once
/// so mariadbd can bind it; [`Launcher::launch`] retries if that races.
fn spare_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or_else(|e| panic!("test MariaDB: cannot bind a spare port on 127.0.0.1: {e}"))
}

fn port_was_taken(log: &Path) -> bool {
    fs::read_to_string(log)
        .is_ok_and(|text| text.contains("Address already in use") || text.contains("Bind on TCP/IP port"))
}

/// The last lines of a log, for panic messages (the whole temp dir is
/// deleted at exit, so the file itself will be gone).
fn tail(path: &Path) -> String {
    const LINES: usize = 40;
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(LINES)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// `--name=` followed by a path, without assuming the path is UTF-8.
fn path_option(name: &str, path: &Path) -> OsString {
    let mut option = OsString::from(name);
    option.push(path);
    option
}

/// The cleanup process described in the module docs.
struct Watchdog {
    stdin: ChildStdin,
    // Never waited on: it outlives this process by design.
    _process: Child,
}

impl Watchdog {
    /// Creates the temp dir and hands its removal to a new watchdog.
    fn with_temp_dir() -> (PathBuf, Self) {
        let temp = tempfile::Builder::new()
            .prefix("protofuse-mariadb-")
            .tempdir()
            .unwrap_or_else(|e| {
                panic!("test MariaDB: cannot create a temp dir (is TMPDIR writable and not full?): {e}")
            });
        let mut process = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG_SCRIPT)
            .arg("protofuse-mariadb-watchdog")
            .arg(temp.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Out of the test run's process group: Ctrl-C must not kill it.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("test MariaDB: cannot start the cleanup watchdog `sh`: {e}"));
        let stdin = process
            .stdin
            .take()
            .unwrap_or_else(|| panic!("test MariaDB: the watchdog has no stdin pipe"));
        // From here on the watchdog deletes the directory.
        (
            temp.keep(),
            Self {
                stdin,
                _process: process,
            },
        )
    }

    /// Tells the watchdog which process group to kill at exit (`None`: none).
    /// The group is always a process we spawned as its group leader.
    fn track(&mut self, process_group: Option<u32>) {
        let line = process_group.map_or_else(String::new, |group| group.to_string());
        writeln!(self.stdin, "{line}").unwrap_or_else(|e| {
            panic!(
                "test MariaDB: the cleanup watchdog died ({e}), so the server could outlive the tests; is `sh` working?"
            )
        });
    }
}
