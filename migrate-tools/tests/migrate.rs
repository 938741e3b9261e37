//! Integration tests against the private MariaDB of `tests/support/mariadb.rs` (row binlog, FULL metadata).

#[path = "cases/binlog_values.rs"]
mod binlog_values;
#[path = "cases/caught_up.rs"]
mod caught_up;
#[path = "cases/ddl_policy.rs"]
mod ddl_policy;
#[path = "cases/follow_lease.rs"]
mod follow_lease;
#[path = "cases/freescout_preset.rs"]
mod freescout_preset;
#[path = "support/gofly.rs"]
mod gofly;
#[path = "cases/gofly_preset.rs"]
mod gofly_preset;
#[path = "cases/history_routing.rs"]
mod history_routing;
#[path = "support/importer.rs"]
mod importer;
#[path = "cases/mapping_check.rs"]
mod mapping_check;
#[path = "cases/operator.rs"]
mod operator;
#[path = "support/osticket.rs"]
mod osticket;
#[path = "cases/osticket_departments.rs"]
mod osticket_departments;
#[path = "cases/osticket_preset.rs"]
mod osticket_preset;
#[path = "support/presets.rs"]
mod presets;
#[path = "cases/resync_table.rs"]
mod resync_table;
#[path = "cases/server_seam.rs"]
mod server_seam;
#[path = "cases/templates.rs"]
mod templates;
#[path = "cases/unfinished_snapshot.rs"]
mod unfinished_snapshot;
#[path = "cases/verify_source.rs"]
mod verify_source;

use protofuse_testkit::mariadb;
use std::time::{Duration, Instant};

use protofuse_migrate::canonical::Mapper;
use protofuse_migrate::follow::{self, FollowOptions};
use protofuse_migrate::mapping::Mapping;
use protofuse_migrate::sink::{Target, TargetOptions};
use protofuse_migrate::snapshot::{self, SnapshotOptions};
use protofuse_migrate::source::{self, Source};
use protofuse_migrate::verify;
use protofuse_store::PageRequest;
use rand::SeedableRng as _;
use rand::rngs::StdRng;
use serde_json::json;
use sqlx::MySqlPool;

const VISITORS: u32 = 40;

struct Fixture {
    source_url: String,
    pool: MySqlPool,
    mapper: Mapper,
    source: Source,
}

/// Snapshots `f`'s source into `target`: `chunk` rows per source query, `batch_rows` per target transaction.
async fn copy(f: &Fixture, target: &Target, chunk: usize, batch_rows: usize) {
    let options = SnapshotOptions {
        chunk,
        batch_rows,
        ..SnapshotOptions::default()
    };
    snapshot::run(&f.source, target, &f.mapper, &options).await.unwrap();
}

async fn fixture(messages: u32, seed: u64) -> Fixture {
    let server = mariadb::server().await;
    let source_url = server.fresh_database().await;
    let pool = MySqlPool::connect(&source_url).await.unwrap();
    gofly::create(&pool).await;
    let mut rng = StdRng::seed_from_u64(seed);
    gofly::seed(&pool, VISITORS, messages, &mut rng).await;
    Fixture {
        source: Source::new(&source_url).unwrap(),
        mapper: Mapper::new(Mapping::parse(&gofly::mapping()).unwrap()),
        source_url,
        pool,
    }
}

/// Waits until the target's checkpoint reaches the source's binlog end.
async fn wait_caught_up(f: &Fixture, target: &Target, within: Duration) {
    let deadline = Instant::now() + within;
    let mut conn = f.source.connect().await.unwrap();
    let (file, pos) = source::master_position(&mut conn).await.unwrap();
    loop {
        let status = target.status(&f.mapper.mapping().name).await.unwrap();
        if status.file.as_deref().is_some_and(|f| f > file.as_str())
            || (status.file.as_deref() == Some(file.as_str()) && status.pos >= Some(pos))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "follower did not catch up with {file}:{pos}: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn assert_verified(f: &Fixture, target: &Target) {
    let reports = verify::run(&f.source, target, &f.mapper).await.unwrap();
    for r in &reports {
        assert!(r.ok(), "verify mismatch: {r:?}");
    }
    assert!(reports.iter().any(|r| r.source_rows > 0));
}

fn options(server_id: u32) -> FollowOptions {
    FollowOptions {
        server_id,
        heartbeat: Duration::from_millis(300),
        batch_delay: Duration::from_millis(50),
        ..FollowOptions::default()
    }
}

/// Reads the special message (every type, mojibake repaired) back through protofuse's own `Store`.
async fn assert_special_message(store_url: &str, mapper: &Mapper, visitor: &str) {
    let store = protofuse_store::open(&protofuse_store::StoreConfig {
        url: store_url.to_owned(),
        max_connections: 1,
        acquire_timeout: Duration::from_secs(10),
        sqlite_synchronous: protofuse_store::Synchronous::Normal,
        ..protofuse_store::StoreConfig::default()
    })
    .await
    .unwrap();
    let id = mapper.conversation_id("visitor", visitor);
    let found = store
        .conversation(id)
        .await
        .unwrap()
        .expect("conversation readable through the store");
    assert_eq!(found.customer_id, visitor);
    let all = PageRequest {
        limit: PageRequest::MAX_LIMIT,
        ..PageRequest::default()
    };
    let page = store.messages(id, all).await.unwrap();
    let special = page
        .items
        .iter()
        .find(|m| m.source.raw.get("n_ubig").is_some_and(|v| !v.is_null()))
        .expect("the special message");
    let raw = &special.source.raw;
    let expect = json!({
        "n_tiny": -128, "n_uint": 4_294_967_295_u64, "n_big": i64::MIN, "n_ubig": u64::MAX,
        "amount": "-12345.678", "ratio": 1.1, "score": 2.5e-300, "day": "0000-00-00",
        "at6": "2024-02-29 23:59:59.123456", "ts3": "2023-12-31T16:00:00.500000Z", "dur": "-838:59:58.999999",
        "yr": 0, "t_latin1": "café", "t_gbk": "客服", "t_utf8": "中文", "moji_gbk": "客服", "moji_utf8": "你好",
        "blob_data": {"hex": "00ff10"}, "bin4": {"hex": "61000000"}, "tags": "a,c", "flags": 21,
        "doc": "{\"k\": [1, \"é\"]}", "mes_type": "kefu",
    });
    for (key, want) in expect.as_object().unwrap() {
        assert_eq!(raw.get(key), Some(want), "column {key}");
    }
    assert!(!raw.contains_key("deleted_at"), "NULL columns are left out of raw");
    assert_eq!(special.sender.external_id, "agent1");
    assert!(matches!(&special.content, protofuse_model::Content::Text { text } if text.starts_with("你好😀")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_then_follow_a_live_writer_into_sqlite_verifies_clean() {
    let f = fixture(1_500, 7).await;
    let dir = tempfile::tempdir().unwrap();
    let target_url = format!("sqlite://{}", dir.path().join("store.db").display());
    let target = Target::open(&target_url).await.unwrap();
    copy(&f, &target, 400, 1_200).await;
    assert_verified(&f, &target).await;
    assert_special_message(&target_url, &f.mapper, "v1").await;

    let follower = {
        let (source, target, mapper) = (f.source.clone(), target.clone(), f.mapper.clone());
        tokio::spawn(async move { follow::run(&source, &target, &mapper, &options(5001)).await })
    };
    let mut rng = StdRng::seed_from_u64(8);
    for _ in 0..300 {
        gofly::random_change(&f.pool, VISITORS, &mut rng).await;
    }
    sqlx::raw_sql(&gofly::special_message(2))
        .execute(&f.pool)
        .await
        .unwrap();
    wait_caught_up(&f, &target, Duration::from_secs(60)).await;
    assert!(!follower.is_finished(), "follower stopped: {:?}", follower.await);
    follower.abort();
    assert_verified(&f, &target).await;
    assert_special_message(&target_url, &f.mapper, "v2").await;
    let status = target.status("gofly").await.unwrap();
    assert!(status.snapshot_done && status.events_applied > 0, "{status:?}");
    assert_verify_sees_tampering(&f, &target, &target_url).await;
}

/// `verify` reports a stored message whose content differs from its source row, and a stored message no source
/// row accounts for.
async fn assert_verify_sees_tampering(f: &Fixture, target: &Target, target_url: &str) {
    let store = sqlx::SqlitePool::connect(target_url).await.unwrap();
    let prefix = "import:gofly:message:";
    let (key,): (String,) = sqlx::query_as("SELECT idempotency_key FROM messages WHERE idempotency_key LIKE ? LIMIT 1")
        .bind(format!("{prefix}%"))
        .fetch_one(&store)
        .await
        .unwrap();
    let changed: i64 = key[prefix.len()..].parse().unwrap();
    sqlx::query("UPDATE messages SET body = REPLACE(body, 'visitor', 'vandal') WHERE idempotency_key = ?")
        .bind(&key)
        .execute(&store)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO messages (id, conversation_id, idempotency_key, fingerprint, direction, sender_role, \
         content_type, received_at, body) SELECT '00000000-0000-7000-8000-000000000000', conversation_id, ?, \
         fingerprint, direction, sender_role, content_type, received_at, body FROM messages WHERE idempotency_key = ?",
    )
    .bind(format!("{prefix}999999999"))
    .bind(&key)
    .execute(&store)
    .await
    .unwrap();
    let reports = verify::run(&f.source, target, &f.mapper).await.unwrap();
    let messages = reports.iter().find(|r| r.source.ends_with("/message")).unwrap();
    assert!(!messages.ok(), "{messages:?}");
    assert_eq!(messages.target_rows, messages.source_rows + 1, "{messages:?}");
    assert!(
        messages.mismatched_chunks >= 1 && messages.sample_keys.contains(&changed),
        "{messages:?}"
    );
    assert!(
        reports
            .iter()
            .filter(|r| !r.source.ends_with("/message"))
            .all(verify::TableReport::ok),
        "{reports:?}"
    );
}

/// The importer binary, killed with SIGKILL at random points while a writer keeps changing the source, and
/// restarted each time, ends with the target equal to the source (MariaDB target).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_then_restart_converges_into_mariadb() {
    let f = fixture(3_000, 11).await;
    let target_url = mariadb::server().await.fresh_database().await;
    // The store's own migrations are DDL, which MySQL cannot roll back: apply them before the kills start, as
    // an operator's first run would.
    Target::open(&target_url).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mapping_path = dir.path().join("gofly.toml");
    std::fs::write(&mapping_path, gofly::mapping()).unwrap();
    let spawn = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_protofuse-migrate"))
            .args(args)
            .args([
                "--server-id",
                "5002",
                "--heartbeat-ms",
                "300",
                "--chunk",
                "250",
                "--snapshot-batch-rows",
                "750",
            ])
            .env("PROTOFUSE_MIGRATE_MAPPING", &mapping_path)
            .env("PROTOFUSE_MIGRATE_SOURCE", &f.source_url)
            .env("PROTOFUSE_MIGRATE_TARGET", &target_url)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let writer = async {
        let mut rng = StdRng::seed_from_u64(12);
        for _ in 0..400 {
            gofly::random_change(&f.pool, VISITORS, &mut rng).await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let killer = async {
        let mut rng = StdRng::seed_from_u64(13);
        for _ in 0..5 {
            let mut child = spawn(&["run"]);
            let alive = Duration::from_millis(rand::Rng::random_range(&mut rng, 150..1_500));
            tokio::time::sleep(alive).await;
            assert!(child.try_wait().unwrap().is_none(), "importer exited early");
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
        }
    };
    tokio::join!(writer, killer);
    let last = spawn(&["run", "--until-caught-up"]);
    let status = importer::exit_of(last, Duration::from_secs(90))
        .await
        .expect("catch-up run finishes");
    assert!(status.success(), "catch-up run failed: {status}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_protofuse-migrate"))
        .args(["status", "--json"])
        .env("PROTOFUSE_MIGRATE_MAPPING", &mapping_path)
        .env("PROTOFUSE_MIGRATE_SOURCE", &f.source_url)
        .env("PROTOFUSE_MIGRATE_TARGET", &target_url)
        .output()
        .unwrap();
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(shown["checkpoint"]["rows_applied"].as_i64() > Some(3_000), "{shown}");
    assert!(shown["checkpoint"]["snapshot_done"].as_bool().unwrap(), "{shown}");
    assert!(shown["lag_events"].is_u64() && shown["lag_seconds"].is_i64(), "{shown}");
    let target = Target::open(&target_url).await.unwrap();
    assert_verified(&f, &target).await;
    assert_special_message(&target_url, &f.mapper, "v1").await;
}

/// `--no-target-binlog` keeps the importer's rows out of the target server's binlog (without it they are
/// there), and a target user who may not turn binary logging off is told so before anything is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_target_binlog_keeps_the_import_out_of_the_binlog_and_needs_the_privilege() {
    let f = fixture(300, 41).await;
    let server = mariadb::server().await;
    let logged_url = server.fresh_database().await;
    let unlogged_url = server.fresh_database().await;
    let unlogged_options = TargetOptions { binlog: false };
    let logged = Target::open(&logged_url).await.unwrap();
    let unlogged = Target::open_with(&unlogged_url, unlogged_options).await.unwrap();
    copy(&f, &logged, 100, 200).await;
    copy(&f, &unlogged, 100, 200).await;
    assert_verified(&f, &logged).await;
    assert_verified(&f, &unlogged).await;

    let database = |url: &str| url.rsplit('/').next().unwrap().to_owned();
    let (logged_db, unlogged_db) = (database(&logged_url), database(&unlogged_url));
    let tables = binlogged_tables(&f.pool).await;
    for table in ["messages", "conversations", "import_rows", "import_checkpoint"] {
        assert!(
            tables.contains(&format!("{logged_db}.{table}")),
            "{table} not in the binlog: {tables:?}"
        );
        assert!(
            !tables.contains(&format!("{unlogged_db}.{table}")),
            "{table} in the binlog"
        );
    }

    let admin = MySqlPool::connect(&server.admin_url()).await.unwrap();
    for statement in [
        "CREATE USER IF NOT EXISTS 'plain_writer'@'%' IDENTIFIED BY 'pw'".to_owned(),
        format!("GRANT ALL PRIVILEGES ON `{unlogged_db}`.* TO 'plain_writer'@'%'"),
    ] {
        sqlx::raw_sql(&statement).execute(&admin).await.unwrap();
    }
    let plain_url = format!("mysql://plain_writer:pw@127.0.0.1:{}/{unlogged_db}", server.port());
    let refused = Target::open_with(&plain_url, unlogged_options)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("--no-target-binlog") && refused.contains("BINLOG ADMIN"),
        "{refused}"
    );
    Target::open(&plain_url).await.unwrap();
    // The same through the binary's flag, before it reads anything; the password is not printed.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_protofuse-migrate"))
        .args(["--mapping", "preset:gofly", "--no-target-binlog", "snapshot"])
        .env("PROTOFUSE_MIGRATE_SOURCE", &f.source_url)
        .env("PROTOFUSE_MIGRATE_TARGET", &plain_url)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("--no-target-binlog"),
        "{stderr}"
    );
    assert!(!stderr.contains(":pw@"), "{stderr}");
}

/// `db.table` of every table a row event in the server's binlogs touched (from the TABLE_MAP events).
async fn binlogged_tables(pool: &MySqlPool) -> std::collections::BTreeSet<String> {
    use sqlx::Row as _;
    let logs = sqlx::raw_sql("SHOW BINARY LOGS").fetch_all(pool).await.unwrap();
    let mut tables = std::collections::BTreeSet::new();
    for log in logs {
        let name: String = log.get(0);
        let events = sqlx::raw_sql(&format!("SHOW BINLOG EVENTS IN '{name}'"))
            .fetch_all(pool)
            .await
            .unwrap();
        for event in events {
            // Info may end inside a multi-byte character (it is cut to a width).
            let info: Vec<u8> = event.try_get_unchecked("Info").unwrap();
            let (kind, info): (String, String) = (event.get("Event_type"), String::from_utf8_lossy(&info).into());
            if let (true, Some((_, rest))) = (kind == "Table_map", info.split_once('(')) {
                tables.insert(rest.trim_end_matches(')').to_owned());
            }
        }
    }
    tables
}

/// Four writers committing 200-row batches out of order, twice over the same rows (a resumed snapshot copies
/// again from its watermark), leave the MariaDB target equal to the source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_snapshot_writers_into_mariadb_verify_clean_and_record_a_safe_watermark() {
    let f = fixture(2_000, 31).await;
    let target_url = mariadb::server().await.fresh_database().await;
    let target = Target::open(&target_url).await.unwrap();
    let options = SnapshotOptions {
        chunk: 100,
        batch_rows: 200,
        writers: 4,
    };
    snapshot::run(&f.source, &target, &f.mapper, &options).await.unwrap();
    assert_verified(&f, &target).await;
    // A resume point was recorded, and it lies within the table (it may trail the end by the batches that were
    // still in flight when the last ones began; the unit tests of `snapshot::writers` check it never passes an
    // uncommitted batch).
    let (max_pk,): (i64,) = sqlx::query_as("SELECT MAX(id) FROM message")
        .fetch_one(&f.pool)
        .await
        .unwrap();
    let recorded = target.snapshot_progress("gofly", "table:message").await.unwrap();
    assert!(
        recorded.is_some_and(|pk| pk > 0 && pk <= max_pk),
        "{recorded:?} of {max_pk}"
    );

    // Copy everything again over the finished import, as a resumed snapshot would: nothing doubles.
    let pool = MySqlPool::connect(&target_url).await.unwrap();
    let (before,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM messages")
        .fetch_one(&pool)
        .await
        .unwrap();
    sqlx::raw_sql("UPDATE import_checkpoint SET snapshot_done = 0; DELETE FROM import_snapshot")
        .execute(&pool)
        .await
        .unwrap();
    snapshot::run(&f.source, &target, &f.mapper, &options).await.unwrap();
    let (after,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM messages")
        .fetch_one(&pool)
        .await
        .unwrap();
    let (source,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM message")
        .fetch_one(&f.pool)
        .await
        .unwrap();
    assert_eq!((before, after), (source, source));
    assert_verified(&f, &target).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddl_on_a_mapped_table_is_followed_or_stops_with_a_clear_message() {
    let f = fixture(50, 21).await;
    let dir = tempfile::tempdir().unwrap();
    let target_url = format!("sqlite://{}", dir.path().join("store.db").display());
    let target = Target::open(&target_url).await.unwrap();
    copy(&f, &target, 1_000, 1_000).await;
    // A new column the mapping does not read: rows before and after it decode, the import goes on.
    sqlx::raw_sql("ALTER TABLE message ADD COLUMN extra_note VARCHAR(20) NULL")
        .execute(&f.pool)
        .await
        .unwrap();
    sqlx::raw_sql(
        "INSERT INTO message (kefu_id, visitor_id, content, extra_note) VALUES ('agent1', 'v3', 'after', 'n')",
    )
    .execute(&f.pool)
    .await
    .unwrap();
    // The same table name in another database is none of this import's business.
    let other = MySqlPool::connect(&mariadb::server().await.fresh_database().await)
        .await
        .unwrap();
    sqlx::raw_sql("CREATE TABLE message (id INT PRIMARY KEY, content TEXT); ALTER TABLE message DROP COLUMN content")
        .execute(&other)
        .await
        .unwrap();
    let mut caught_up = options(5003);
    caught_up.until_caught_up = true;
    follow::run(&f.source, &target, &f.mapper, &caught_up).await.unwrap();
    assert_verified(&f, &target).await;
    // Dropping a mapped column must stop the importer, naming the table and column.
    sqlx::raw_sql("ALTER TABLE message DROP COLUMN content")
        .execute(&f.pool)
        .await
        .unwrap();
    let err = follow::run(&f.source, &target, &f.mapper, &caught_up)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("message") && text.contains("content"), "{text}");
    sqlx::raw_sql("TRUNCATE TABLE visitor").execute(&f.pool).await.unwrap();
}

/// A command's help lists its own options apart from the global ones every command shares.
#[test]
fn command_help_separates_global_options_from_the_commands_own() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_protofuse-migrate"))
        .args(["follow", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    let (own, global) = help.split_once("Global options:").expect("a global options heading");
    assert!(own.contains("--until-caught-up") && !own.contains("--source"), "{help}");
    assert!(global.contains("--source") && global.contains("--mapping") && !global.contains("--until-caught-up"));
}

#[test]
fn bad_mapping_and_unreachable_source_fail_fast_without_printing_credentials() {
    let bin = env!("CARGO_BIN_EXE_protofuse-migrate");
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "name = \"x\"\nchannel = \"c\"\n[[tables]]\ntable = \"t\"\nkind = \"message\"\nfields = {}\n",
    )
    .unwrap();
    let out = std::process::Command::new(bin)
        .args(["--mapping", bad.to_str().unwrap(), "check-mapping"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("conversation"), "{stderr}");

    // Nothing listens on port 1.
    let started = Instant::now();
    let target = format!("sqlite://{}", dir.path().join("t.db").display());
    let out = std::process::Command::new(bin)
        .args(["--mapping", "preset:gofly", "--target", &target, "snapshot"])
        .env(
            "PROTOFUSE_MIGRATE_SOURCE",
            "mysql://importer:Sup3rSecret@127.0.0.1:1/gofly",
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(started.elapsed() < Duration::from_secs(15));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains("cannot connect to the source"), "{all}");
    assert!(!all.contains("Sup3rSecret"), "{all}");
}

#[test]
fn presets_parse() {
    for (name, text) in protofuse_migrate::cli::PRESETS {
        Mapping::parse(text).unwrap_or_else(|e| panic!("preset {name}: {e}"));
    }
}

/// The osTicket and FreeScout presets on databases shaped like the real ones: snapshot, live changes, verify.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn osticket_and_freescout_presets_import_and_follow() {
    for (preset, (ddl, seed, live), server_id) in [
        ("osticket", presets::OSTICKET, 5004),
        ("freescout", presets::FREESCOUT, 5005),
    ] {
        let url = mariadb::server().await.fresh_database().await;
        let pool = MySqlPool::connect(&url).await.unwrap();
        for statement in ddl.iter().chain(seed) {
            sqlx::raw_sql(statement).execute(&pool).await.unwrap();
        }
        let mapping = protofuse_migrate::cli::load_mapping(&format!("preset:{preset}")).unwrap();
        let f = Fixture {
            source: Source::new(&url).unwrap(),
            mapper: Mapper::new(mapping),
            source_url: url,
            pool,
        };
        let dir = tempfile::tempdir().unwrap();
        let target_url = format!("sqlite://{}", dir.path().join("store.db").display());
        let target = Target::open(&target_url).await.unwrap();
        copy(&f, &target, 1_000, 1_000).await;
        assert_verified(&f, &target).await;
        for statement in live {
            sqlx::raw_sql(statement).execute(&f.pool).await.unwrap();
        }
        let mut caught_up = options(server_id);
        caught_up.until_caught_up = true;
        follow::run(&f.source, &target, &f.mapper, &caught_up).await.unwrap();
        assert_verified(&f, &target).await;
    }
}
