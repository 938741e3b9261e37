//! Issue 22: `resync --table T` copies one table again, consistently, through the running `follow`, which goes on
//! following: the repair for rows `verify` reports as different, without a fresh import.

use std::time::{Duration, Instant};

use super::importer::Importer;

async fn count(target_url: &str, sql: &str) -> i64 {
    let store = sqlx::SqlitePool::connect(target_url).await.unwrap();
    sqlx::query_scalar(sql).fetch_one(&store).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resync_repairs_a_table_while_follow_goes_on() {
    let f = super::fixture(50, 91).await;
    let dir = tempfile::tempdir().unwrap();
    let target_url = format!("sqlite://{}", dir.path().join("store.db").display());
    let importer = Importer::new(dir.path(), &super::gofly::mapping(), &f.source_url, &target_url);
    let snapshot = importer.run(&["snapshot"], Duration::from_secs(60)).await;
    assert!(snapshot.status.success(), "{snapshot}");

    // The target's messages damaged behind the importer's back; verify sees it.
    let store = sqlx::SqlitePool::connect(&target_url).await.unwrap();
    sqlx::query("UPDATE messages SET body = 'corrupted'")
        .execute(&store)
        .await
        .unwrap();
    let verify = importer.run(&["verify"], Duration::from_secs(60)).await;
    assert!(!verify.status.success(), "{verify}");

    let unknown = importer
        .run(&["resync", "--table", "mesage"], Duration::from_secs(60))
        .await;
    assert!(!unknown.status.success());
    assert!(
        unknown.stderr.contains("\"mesage\" is not read by mapping") && unknown.stderr.contains("message"),
        "{unknown}"
    );

    // No `follow` running: the request stands.
    let queued = importer
        .run(
            &["resync", "--table", "message", "--wait-secs", "1"],
            Duration::from_secs(60),
        )
        .await;
    assert_eq!(queued.status.code(), Some(1), "{queued}");
    assert!(queued.stdout.contains("the request stands"), "{queued}");

    let (follow, _, err) = importer.spawn(&["follow", "--server-id", "5141", "--heartbeat-ms", "300"]);
    let resync = importer
        .run(
            &["resync", "--table", "message", "--wait-secs", "60"],
            Duration::from_secs(90),
        )
        .await;
    assert!(
        resync.status.success(),
        "{resync}\nfollow: {}",
        std::fs::read_to_string(&err).unwrap()
    );
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM message")
        .fetch_one(&f.pool)
        .await
        .unwrap();
    assert!(
        resync.stdout.contains(&format!("message copied again: {rows} rows")),
        "{resync}"
    );
    assert_eq!(
        count(&target_url, "SELECT COUNT(*) FROM messages WHERE body = 'corrupted'").await,
        0
    );

    // Following went on: a change made now arrives. The store is another process's output, which announces
    // nothing: it is read again until the row is there, under a deadline.
    sqlx::raw_sql("INSERT INTO message (kefu_id, visitor_id, content) VALUES ('agent1', 'v1', 'after the copy')")
        .execute(&f.pool)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(
        &target_url,
        "SELECT COUNT(*) FROM messages WHERE body LIKE '%after the copy%'",
    )
    .await
        == 0
    {
        assert!(Instant::now() < deadline, "{}", std::fs::read_to_string(&err).unwrap());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let term = std::process::Command::new("kill")
        .args(["-TERM", &follow.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let stopped = super::importer::exit_of(follow, Duration::from_secs(30)).await;
    assert!(stopped.is_ok_and(|s| s.success()));
    let verify = importer.run(&["verify"], Duration::from_secs(60)).await;
    assert!(verify.status.success(), "{verify}");
}
