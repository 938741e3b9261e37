//! Issue 22, finding 1: `follow` after an interrupted snapshot exited 0, and the rows the snapshot had not
//! reached were never imported (the binlog only holds changes made after the snapshot began).

use std::time::{Duration, Instant};

use protofuse_migrate::sink::Target;
use protofuse_testkit::mariadb;
use sqlx::MySqlPool;

use super::importer::Importer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_refuses_an_interrupted_snapshot_and_run_resumes_it() {
    let f = super::fixture(2_000, 51).await;
    let target_url = mariadb::server().await.fresh_database().await;
    // The store's and the importer's tables exist before the snapshot starts, so they can be watched.
    Target::open(&target_url).await.unwrap();
    let target = MySqlPool::connect(&target_url).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let importer = Importer::new(dir.path(), &super::gofly::mapping(), &f.source_url, &target_url);
    let follow_args = ["--server-id", "5101", "--heartbeat-ms", "300", "--until-caught-up"];

    let (mut snapshot, _, _) = importer.spawn(&[
        "snapshot",
        "--chunk",
        "50",
        "--snapshot-batch-rows",
        "50",
        "--writers",
        "1",
    ]);
    // InnoDB announces no commit to another session: the batch counter is read again until it moves, under a
    // deadline.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let batches: Option<i64> = sqlx::query_scalar("SELECT COUNT(*) FROM import_snapshot")
            .fetch_one(&target)
            .await
            .ok();
        if batches > Some(0) {
            break;
        }
        assert!(
            snapshot.try_wait().unwrap().is_none(),
            "the snapshot ended before its first batch was seen"
        );
        assert!(Instant::now() < deadline, "no snapshot batch committed within a minute");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Every batch also updates the checkpoint row: holding it keeps the snapshot from finishing until the kill.
    // InnoDB may pick this lock as a deadlock victim against a batch in flight; then it is taken again.
    let (hold, done) = loop {
        let mut hold = target.begin().await.unwrap();
        let sql = "SELECT snapshot_done FROM import_checkpoint WHERE name = 'gofly' FOR UPDATE";
        match sqlx::query_scalar::<_, i64>(sql).fetch_one(&mut *hold).await {
            Ok(done) => break (hold, done),
            Err(e) if e.as_database_error().and_then(|d| d.code()).as_deref() == Some("40001") => {
                hold.rollback().await.unwrap();
                assert!(Instant::now() < deadline, "the checkpoint row could not be held: {e}");
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(done, 0, "the snapshot finished before it could be interrupted");
    snapshot.kill().unwrap(); // SIGKILL
    snapshot.wait().unwrap();
    hold.rollback().await.unwrap();
    let count = |pool: &MySqlPool, table: &str| {
        let (pool, sql) = (pool.clone(), format!("SELECT COUNT(*) FROM {table}"));
        async move { sqlx::query_scalar::<_, i64>(&sql).fetch_one(&pool).await.unwrap() }
    };
    let source_rows = count(&f.pool, "message").await;
    let copied = count(&target, "messages").await;
    assert!(copied < source_rows, "{copied} of {source_rows} messages copied");

    let refused = importer
        .run(&[&["follow"], &follow_args[..]].concat(), Duration::from_secs(60))
        .await;
    assert!(!refused.status.success(), "{refused}");
    assert!(
        refused
            .stderr
            .contains("the snapshot is not finished: run `snapshot` or `run` to resume it"),
        "{refused}"
    );
    assert_eq!(count(&target, "messages").await, copied, "follow wrote nothing");

    let resumed = importer
        .run(&[&["run"], &follow_args[..]].concat(), Duration::from_secs(120))
        .await;
    assert!(resumed.status.success(), "{resumed}");
    assert_eq!(count(&target, "messages").await, source_rows);
    super::assert_verified(&f, &Target::open(&target_url).await.unwrap()).await;
}
