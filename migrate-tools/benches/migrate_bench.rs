//! Snapshot and follow throughput at 1M+ source rows, into SQLite and into MariaDB. Not run in CI:
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-binlog cargo bench -p protofuse-migrate --bench migrate_bench
//! MIGRATE_BENCH_ROWS=1000000 MIGRATE_BENCH_FOLLOW_ROWS=200000 MIGRATE_BENCH_TARGETS=sqlite,mariadb (defaults)
//! MIGRATE_BENCH_PRESETS=osticket,freescout first measures those presets' snapshot into SQLite, each from its own
//! generated source of MIGRATE_BENCH_ROWS messages (MIGRATE_BENCH_TARGETS=none then skips the go-fly runs)
//! MIGRATE_BENCH_CHUNK, _BATCH_ROWS and _FOLLOW_BATCH override the CLI's defaults; MIGRATE_BENCH_WRITERS=1,2 measures
//! the MariaDB target once per writer count; MIGRATE_BENCH_NO_TARGET_BINLOG=1 opens the target as
//! `--no-target-binlog` does; MIGRATE_BENCH_SERVER_SET="binlog_cache_size = 268435456" sets server variables
//! ```
//!
//! Uses the tests' private MariaDB (row binlog, FULL metadata) as the source and, for the MariaDB target, a
//! second database on the same server: both share the machine's two cores, so the figures are conservative.

use protofuse_testkit::mariadb;
use std::time::{Duration, Instant};

use protofuse_migrate::canonical::Mapper;
use protofuse_migrate::follow::{self, FollowOptions};
use protofuse_migrate::mapping::Mapping;
use protofuse_migrate::sink::{Target, TargetOptions};
use protofuse_migrate::snapshot::{self, SnapshotOptions};
use protofuse_migrate::source::Source;
use sqlx::MySqlPool;

#[path = "support/preset_seed.rs"]
mod preset_seed;

/// The allocator the `protofuse-migrate` binary runs with (`src/main.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SCHEMA: &[&str] = &[
    "CREATE TABLE `visitor` (`id` int(11) NOT NULL AUTO_INCREMENT PRIMARY KEY, `name` varchar(50) NOT NULL DEFAULT '', \
     `to_id` varchar(50) NOT NULL DEFAULT '', `created_at` timestamp NULL DEFAULT NULL, \
     `updated_at` timestamp NULL DEFAULT NULL, `visitor_id` varchar(100) NOT NULL DEFAULT '', \
     `status` tinyint(4) NOT NULL DEFAULT '0', UNIQUE KEY `visitor_id` (`visitor_id`)) ENGINE=InnoDB DEFAULT CHARSET=utf8",
    "CREATE TABLE `user` (`id` int(11) NOT NULL AUTO_INCREMENT PRIMARY KEY, `name` varchar(50) NOT NULL DEFAULT '', \
     `nickname` varchar(50) NOT NULL DEFAULT '') ENGINE=InnoDB DEFAULT CHARSET=utf8",
    "CREATE TABLE `message` (`id` int(11) NOT NULL AUTO_INCREMENT PRIMARY KEY, `kefu_id` varchar(100) NOT NULL DEFAULT '', \
     `visitor_id` varchar(100) NOT NULL DEFAULT '', `content` varchar(2048) NOT NULL DEFAULT '', \
     `created_at` timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP, `updated_at` timestamp NULL DEFAULT NULL, \
     `deleted_at` timestamp NULL DEFAULT NULL, `mes_type` enum('kefu','visitor') NOT NULL DEFAULT 'visitor', \
     `status` enum('read','unread') NOT NULL DEFAULT 'unread', KEY `visitor_id` (`visitor_id`)) \
     ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
];

fn env_rows(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn insert_messages(pool: &MySqlPool, from: u64, count: u64, per_statement: u64) {
    let mut done = 0;
    while done < count {
        let n = per_statement.min(count - done);
        let rows: Vec<String> = (0..n)
            .map(|i| {
                let k = from + done + i;
                format!(
                    "('agent{}', 'v{}', '您好，请问订单 {k} 什么时候发货？img[/static/upload/{k}.png]', FROM_UNIXTIME({}), '{}')",
                    k % 7,
                    k % 5000,
                    1_600_000_000 + k,
                    if k.is_multiple_of(2) { "kefu" } else { "visitor" }
                )
            })
            .collect();
        sqlx::raw_sql(&format!(
            "INSERT INTO message (kefu_id, visitor_id, content, created_at, mes_type) VALUES {}",
            rows.join(", ")
        ))
        .execute(pool)
        .await
        .unwrap();
        done += n;
    }
}

async fn seed(pool: &MySqlPool, rows: u64) {
    for statement in SCHEMA {
        sqlx::raw_sql(statement).execute(pool).await.unwrap();
    }
    let visitors: Vec<String> = (0..5000)
        .map(|v| {
            format!(
                "('访客{v}', 'v{v}', 'agent{}', FROM_UNIXTIME({}))",
                v % 7,
                1_600_000_000 + v
            )
        })
        .collect();
    sqlx::raw_sql(&format!(
        "INSERT INTO visitor (name, visitor_id, to_id, created_at) VALUES {}",
        visitors.join(", ")
    ))
    .execute(pool)
    .await
    .unwrap();
    insert_messages(pool, 0, rows, 2_000).await;
}

/// `MIGRATE_BENCH_CHUNK` / `_BATCH_ROWS` override the CLI's defaults.
fn snapshot_options(writers: usize) -> SnapshotOptions {
    let defaults = SnapshotOptions::default();
    SnapshotOptions {
        chunk: env_rows("MIGRATE_BENCH_CHUNK", defaults.chunk as u64) as usize,
        batch_rows: env_rows("MIGRATE_BENCH_BATCH_ROWS", defaults.batch_rows as u64) as usize,
        writers,
    }
}

/// `MIGRATE_BENCH_WRITERS=1,2`: the MariaDB target is measured once per count, each into a fresh database, so
/// the counts compare within one run.
fn writer_counts() -> Vec<usize> {
    let list = std::env::var("MIGRATE_BENCH_WRITERS").unwrap_or_default();
    let counts: Vec<usize> = list.split(',').filter_map(|w| w.trim().parse().ok()).collect();
    if counts.is_empty() {
        vec![SnapshotOptions::default().writers]
    } else {
        counts
    }
}

/// The baseline: the same chunked primary-key scan the snapshot does, rows fetched and dropped. The snapshot's
/// rate as a fraction of this is what mapping and writing cost, on the same machine in the same run.
async fn source_scan(source: &Source, table: &str) -> f64 {
    use mysql_async::prelude::Queryable as _;
    let mut conn = source.connect().await.unwrap();
    let started = Instant::now();
    let (mut last, mut rows) = (0_i64, 0_u64);
    loop {
        let chunk: Vec<mysql_async::Row> = conn
            .exec(
                format!("SELECT * FROM `{table}` WHERE id > ? ORDER BY id LIMIT 5000"),
                (last,),
            )
            .await
            .unwrap();
        let Some(tail) = chunk.last() else { break };
        last = tail.get(0).unwrap();
        rows += chunk.len() as u64;
    }
    let rate = rows as f64 / started.elapsed().as_secs_f64();
    println!("baseline: source scan alone {rows} rows = {rate:.0} rows/s");
    rate
}

/// CPU time (user + system) a process has used so far, from `/proc/PID/stat`; `None` where that is unreadable.
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the parenthesised command name start with the state (field 3); utime and stime are
    // fields 14 and 15, in clock ticks (100 per second on Linux).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// What every target's run shares.
struct Run<'a> {
    source: &'a Source,
    source_pool: &'a MySqlPool,
    mapper: &'a Mapper,
    /// The server's process id, to charge its CPU time to the rows copied.
    server_pid: Option<String>,
}

/// CPU microseconds per row of the importer (this process) and the server since `before`. Wall-clock rates
/// swing with whatever else the machine runs; CPU time per row barely does, so it compares builds on a busy
/// machine.
fn cpu_per_row(run: &Run<'_>, before: (Option<f64>, Option<f64>), rows: i64) -> String {
    let per_row = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if rows > 0 => format!("{:.1}", (b - a) * 1e6 / rows as f64),
        _ => "?".to_owned(),
    };
    let after = cpu_clocks(run);
    format!(
        "CPU per row: importer {} µs, server {} µs",
        per_row(before.0, after.0),
        per_row(before.1, after.1)
    )
}

fn cpu_clocks(run: &Run<'_>) -> (Option<f64>, Option<f64>) {
    (cpu_seconds("self"), run.server_pid.as_deref().and_then(cpu_seconds))
}

async fn bench_target(run: &Run<'_>, label: &str, target_url: &str, rows: u64, writers: usize) {
    let (source, source_pool, mapper) = (run.source, run.source_pool, run.mapper);
    // `MIGRATE_BENCH_NO_TARGET_BINLOG=1`: the importer's `--no-target-binlog`.
    let options = TargetOptions {
        binlog: std::env::var("MIGRATE_BENCH_NO_TARGET_BINLOG").is_err(),
    };
    let target = Target::open_with(target_url, options).await.unwrap();
    let scan = source_scan(source, "message").await;
    let clocks = cpu_clocks(run);
    let started = Instant::now();
    snapshot::run(source, &target, mapper, &snapshot_options(writers))
        .await
        .unwrap();
    let secs = started.elapsed().as_secs_f64();
    let copied = target.status("gofly").await.unwrap().rows_applied;
    let rate = copied as f64 / secs;
    println!(
        "{label}: snapshot {copied} rows in {secs:.1} s = {rate:.0} rows/s ({:.2}x the bare source scan, {:.1}x the \
         3,600 rows/s yardstick; {})",
        rate / scan,
        rate / 3_600.0,
        cpu_per_row(run, clocks, copied)
    );

    // Follow: changes written while the follower is stopped, then caught up: bulk inserts (1,000-row
    // transactions) and single-row autocommit updates, the two shapes of a live helpdesk.
    let follow_rows = env_rows("MIGRATE_BENCH_FOLLOW_ROWS", 200_000);
    let updates = follow_rows / 10;
    insert_messages(source_pool, 10_000_000 + rows, follow_rows, 1_000).await;
    for i in 0..updates {
        sqlx::raw_sql(&format!("UPDATE message SET status = 'read' WHERE id = {}", i * 7 + 1))
            .execute(source_pool)
            .await
            .unwrap();
    }
    let before = target.status("gofly").await.unwrap();
    let clocks = cpu_clocks(run);
    let started = Instant::now();
    let options = FollowOptions {
        server_id: 6000 + label.bytes().map(u32::from).sum::<u32>() % 1000,
        until_caught_up: true,
        batch_rows: env_rows("MIGRATE_BENCH_FOLLOW_BATCH", FollowOptions::default().batch_rows as u64) as usize,
        ..FollowOptions::default()
    };
    follow::run(source, &target, mapper, &options).await.unwrap();
    let secs = started.elapsed().as_secs_f64();
    let after = target.status("gofly").await.unwrap();
    let events = after.events_applied - before.events_applied;
    let applied = after.rows_applied - before.rows_applied;
    let lag = after.last_event_at.map_or(0, |t| chrono::Utc::now().timestamp() - t);
    println!(
        "{label}: follow {events} events ({applied} row changes, {updates} one-row transactions) in {secs:.1} s = \
         {:.0} events/s, {:.0} rows/s; backlog drained, lag behind the last source event {lag} s; {}",
        events as f64 / secs,
        applied as f64 / secs,
        cpu_per_row(run, clocks, applied)
    );
}

/// One preset's snapshot into SQLite from a generated source of `messages` messages, against the same run's bare
/// scan of its message table.
async fn bench_preset(server: &mariadb::MariaDb, preset: &str, messages: u64, server_pid: Option<String>) {
    let source_url = server.fresh_database().await;
    let pool = MySqlPool::connect(&source_url).await.unwrap();
    let started = Instant::now();
    let table = preset_seed::seed(&pool, preset, messages).await;
    println!(
        "{preset}: seeded {messages} messages in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let text = protofuse_migrate::cli::PRESETS
        .iter()
        .find(|(n, _)| *n == preset)
        .unwrap()
        .1;
    let mapper = Mapper::new(Mapping::parse(text).unwrap());
    let source = Source::new(&source_url).unwrap();
    let run = Run {
        source: &source,
        source_pool: &pool,
        mapper: &mapper,
        server_pid,
    };
    let dir = tempfile::tempdir().unwrap();
    let target = Target::open(&format!("sqlite://{}", dir.path().join("bench.db").display()))
        .await
        .unwrap();
    let scan = source_scan(&source, table).await;
    let clocks = cpu_clocks(&run);
    let started = Instant::now();
    snapshot::run(&source, &target, &mapper, &snapshot_options(1))
        .await
        .unwrap();
    let secs = started.elapsed().as_secs_f64();
    let copied = target.status(preset).await.unwrap().rows_applied;
    let rate = copied as f64 / secs;
    println!(
        "{preset} -> sqlite: snapshot {copied} rows (all tables) in {secs:.1} s = {rate:.0} rows/s ({:.2}x the bare \
         scan of {table}; {})",
        rate / scan,
        cpu_per_row(&run, clocks, copied)
    );
}

#[tokio::main]
async fn main() {
    let rows = env_rows("MIGRATE_BENCH_ROWS", 1_000_000);
    let server = mariadb::server().await;
    // The tests' server is sized for many small tests (16 MB buffer pool, 8 MB redo log); a helpdesk's
    // production database, source or target, has a buffer pool that holds its working set. Both are dynamic
    // in MariaDB 10.9+.
    let admin = MySqlPool::connect(&server.admin_url()).await.unwrap();
    let mut settings = vec![
        "SET GLOBAL innodb_buffer_pool_size = 1024 * 1024 * 1024".to_owned(),
        "SET GLOBAL innodb_log_file_size = 512 * 1024 * 1024".to_owned(),
    ];
    // `MIGRATE_BENCH_SERVER_SET="binlog_cache_size = 67108864; ..."`: more server variables, to measure tuning.
    let extra = std::env::var("MIGRATE_BENCH_SERVER_SET").unwrap_or_default();
    settings.extend(
        extra
            .split(';')
            .filter(|s| !s.trim().is_empty())
            .map(|s| format!("SET GLOBAL {}", s.trim())),
    );
    for setting in &settings {
        println!("server: {setting}");
        if let Err(e) = sqlx::raw_sql(setting).execute(&admin).await {
            println!("note: {setting} failed ({e}); figures are for the small test server");
        }
    }
    let server_pid = std::fs::read_to_string(server.data_dir().with_file_name("mariadbd.pid"))
        .ok()
        .map(|pid| pid.trim().to_owned());
    let presets = std::env::var("MIGRATE_BENCH_PRESETS").unwrap_or_default();
    for preset in presets.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        bench_preset(server, preset, rows, server_pid.clone()).await;
    }
    let targets = std::env::var("MIGRATE_BENCH_TARGETS").unwrap_or_else(|_| "sqlite,mariadb".to_owned());
    if targets == "none" {
        return;
    }
    let source_url = server.fresh_database().await;
    let pool = MySqlPool::connect(&source_url).await.unwrap();
    let started = Instant::now();
    seed(&pool, rows).await;
    println!("seeded {rows} messages in {:.1} s", started.elapsed().as_secs_f64());
    let preset = protofuse_migrate::cli::PRESETS
        .iter()
        .find(|(n, _)| *n == "gofly")
        .unwrap()
        .1;
    let mapper = Mapper::new(Mapping::parse(preset).unwrap());
    let source = Source::new(&source_url).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("bench.db").display());
    let run = Run {
        source: &source,
        source_pool: &pool,
        mapper: &mapper,
        server_pid,
    };
    if targets.contains("sqlite") {
        bench_target(&run, "sqlite", &sqlite, rows, 1).await;
    }
    if !targets.contains("mariadb") {
        return;
    }
    // A second copy of the changes would double the follow backlog for the MariaDB run; it is measured on the
    // same (now longer) binlog from its own snapshot position, which is what an operator's run sees.
    for (i, writers) in writer_counts().into_iter().enumerate() {
        let mysql_target = server.fresh_database().await;
        let label = format!("mariadb ({writers} writers)");
        let from = rows + 20_000_000 * (i as u64 + 1);
        bench_target(&run, &label, &mysql_target, from, writers).await;
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
}
