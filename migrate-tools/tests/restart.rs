//! Following survives a source restart, a killed replication connection and binlog rotation. A test binary of
//! its own: it restarts the (per-process) private MariaDB.

#[path = "support/gofly.rs"]
mod gofly;

use protofuse_testkit::mariadb;
use std::time::{Duration, Instant};

use protofuse_migrate::canonical::Mapper;
use protofuse_migrate::follow::{self, FollowOptions};
use protofuse_migrate::mapping::Mapping;
use protofuse_migrate::sink::Target;
use protofuse_migrate::snapshot::{self, SnapshotOptions};
use protofuse_migrate::source::{self, Source};
use protofuse_migrate::verify;
use rand::SeedableRng as _;
use rand::rngs::StdRng;
use sqlx::MySqlPool;

const VISITORS: u32 = 30;

async fn changes(url: &str, n: usize, rng: &mut StdRng) {
    let pool = MySqlPool::connect(url).await.unwrap();
    for _ in 0..n {
        gofly::random_change(&pool, VISITORS, rng).await;
    }
    pool.close().await;
}

async fn kill_dump_threads(admin_url: &str) {
    let pool = MySqlPool::connect(admin_url).await.unwrap();
    let ids: Vec<(i64,)> =
        sqlx::query_as("SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(!ids.is_empty(), "the follower has a dump thread");
    for (id,) in ids {
        let _ = sqlx::raw_sql(&format!("KILL {id}")).execute(&pool).await;
    }
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_survives_restart_killed_connection_and_rotation() {
    let server = mariadb::server().await;
    let url = server.fresh_database().await;
    let pool = MySqlPool::connect(&url).await.unwrap();
    gofly::create(&pool).await;
    let mut rng = StdRng::seed_from_u64(31);
    gofly::seed(&pool, VISITORS, 300, &mut rng).await;
    pool.close().await;
    let source = Source::new(&url).unwrap();
    let mapper = Mapper::new(Mapping::parse(&gofly::mapping()).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let target = Target::open(&format!("sqlite://{}", dir.path().join("s.db").display()))
        .await
        .unwrap();
    snapshot::run(
        &source,
        &target,
        &mapper,
        &SnapshotOptions {
            chunk: 100,
            batch_rows: 100,
            ..SnapshotOptions::default()
        },
    )
    .await
    .unwrap();
    let options = FollowOptions {
        server_id: 5101,
        heartbeat: Duration::from_millis(300),
        batch_delay: Duration::from_millis(50),
        max_backoff: Duration::from_secs(1),
        ..FollowOptions::default()
    };
    let follower = {
        let (source, target, mapper) = (source.clone(), target.clone(), mapper.clone());
        tokio::spawn(async move { follow::run(&source, &target, &mapper, &options).await })
    };
    changes(&url, 60, &mut rng).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    kill_dump_threads(&server.admin_url()).await;
    changes(&url, 60, &mut rng).await;
    let admin = MySqlPool::connect(&server.admin_url()).await.unwrap();
    sqlx::raw_sql("FLUSH BINARY LOGS").execute(&admin).await.unwrap();
    admin.close().await;
    changes(&url, 60, &mut rng).await;
    server.restart().await;
    changes(&url, 60, &mut rng).await;

    let mut conn = source.connect().await.unwrap();
    let (file, pos) = source::master_position(&mut conn).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = target.status("gofly").await.unwrap();
        if s.file.as_deref() == Some(file.as_str()) && s.pos >= Some(pos) {
            break;
        }
        assert!(!follower.is_finished(), "follower stopped");
        assert!(Instant::now() < deadline, "no catch-up to {file}:{pos}: {s:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    follower.abort();
    let status = target.status("gofly").await.unwrap();
    assert!(status.errors >= 2, "the lost connections were recorded: {status:?}");
    for report in verify::run(&source, &target, &mapper).await.unwrap() {
        assert!(report.ok(), "{report:?}");
    }
}
