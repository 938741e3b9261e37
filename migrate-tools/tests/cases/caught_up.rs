//! Issue 22, finding 7: `follow --until-caught-up` never returned after `FLUSH BINARY LOGS` with no transaction
//! after it: the new binlog file starts with events that carry no change, and the checkpoint never moved over
//! them to the source's end.
//!
//! Other tests writing to the same server at the same time may let the follower through without the fix (their
//! transactions move the checkpoint past the end it waits for); run alone, this one fails without it.

use std::time::Duration;

use protofuse_migrate::sink::Target;
use protofuse_migrate::source;

use super::importer::Importer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_until_caught_up_returns_after_a_rotation_with_nothing_after_it() {
    let f = super::fixture(50, 71).await;
    let dir = tempfile::tempdir().unwrap();
    let target_url = format!("sqlite://{}", dir.path().join("store.db").display());
    let importer = Importer::new(dir.path(), &super::gofly::mapping(), &f.source_url, &target_url);
    let snapshot = importer.run(&["snapshot"], Duration::from_secs(60)).await;
    assert!(snapshot.status.success(), "{snapshot}");
    sqlx::raw_sql("INSERT INTO message (kefu_id, visitor_id, content) VALUES ('agent1', 'v1', 'before the flush')")
        .execute(&f.pool)
        .await
        .unwrap();
    sqlx::raw_sql("FLUSH BINARY LOGS").execute(&f.pool).await.unwrap();
    let mut conn = f.source.connect().await.unwrap();
    let (file, pos) = source::master_position(&mut conn).await.unwrap();

    let args = [
        "follow",
        "--until-caught-up",
        "--server-id",
        "5121",
        "--heartbeat-ms",
        "300",
    ];
    let out = importer.run(&args, Duration::from_secs(60)).await;
    assert!(out.status.success(), "{out}");
    let target = Target::open(&target_url).await.unwrap();
    let status = target.status("gofly").await.unwrap();
    assert!(
        (status.file.as_deref(), status.pos) >= (Some(file.as_str()), Some(pos)),
        "checkpoint {status:?} short of the source end {file}:{pos}"
    );
    super::assert_verified(&f, &target).await;
}
