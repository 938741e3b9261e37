//! Issue 20, one follower per mapping: a second `follow` of the same mapping refuses and names the first; one
//! started with `--wait-for-lease` waits, takes over when the first is killed (at once on the same host, where
//! it sees the process is gone; after the lease runs out for a holder on another host), and applies what the
//! source wrote after, so `verify` finds target and source equal.

use std::time::{Duration, Instant};

use super::importer::{Importer, stored};

/// Re-reads another process's log (which announces nothing) until it contains `what`, under a deadline.
async fn wait_for_log(err: &std::path::Path, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let log = std::fs::read_to_string(err).unwrap();
        if log.contains(what) {
            return;
        }
        assert!(Instant::now() < deadline, "no {what:?} within a minute: {log}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the target holds a message containing `text`.
async fn wait_stored(target_url: &str, text: &str, err: &std::path::Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !stored(target_url, text).await {
        assert!(
            Instant::now() < deadline,
            "{text:?} not applied within a minute: {}",
            std::fs::read_to_string(err).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn insert(pool: &sqlx::MySqlPool, text: &str) {
    sqlx::query("INSERT INTO message (kefu_id, visitor_id, content) VALUES ('agent1', 'v1', ?)")
        .bind(text)
        .execute(pool)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_follower_refuses_or_waits_and_takes_over_when_the_first_dies() {
    let f = super::fixture(20, 83).await;
    let dir = tempfile::tempdir().unwrap();
    let target_url = format!("sqlite://{}", dir.path().join("store.db").display());
    let importer = Importer::new(dir.path(), &super::gofly::mapping(), &f.source_url, &target_url);
    let snapshot = importer.run(&["snapshot"], Duration::from_secs(60)).await;
    assert!(snapshot.status.success(), "{snapshot}");
    let follow = |id: &'static str| {
        [
            "follow",
            "--server-id",
            id,
            "--heartbeat-ms",
            "300",
            "--lease-secs",
            "3",
        ]
    };

    let (first, _, first_err) = importer.spawn(&follow("5161"));
    wait_for_log(&first_err, "took the follow lease").await;
    let refused = importer.run(&follow("5162"), Duration::from_secs(60)).await;
    assert!(!refused.status.success(), "{refused}");
    assert!(
        refused.stderr.contains("mapping `gofly` is being followed by") && refused.stderr.contains("--wait-for-lease"),
        "{refused}"
    );
    let mut waiting_args = follow("5163").to_vec();
    waiting_args.push("--wait-for-lease");
    let (second, _, second_err) = importer.spawn(&waiting_args);
    wait_for_log(&second_err, "waiting for the follow lease").await;

    insert(&f.pool, "applied by the first").await;
    wait_stored(&target_url, "applied by the first", &first_err).await;
    std::process::Command::new("kill")
        .args(["-KILL", &first.id().to_string()])
        .status()
        .unwrap();
    insert(&f.pool, "applied by the second").await;
    wait_for_log(&second_err, "took the follow lease").await;
    wait_stored(&target_url, "applied by the second", &second_err).await;

    std::process::Command::new("kill")
        .args(["-TERM", &second.id().to_string()])
        .status()
        .unwrap();
    let status = super::importer::exit_of(second, Duration::from_secs(30))
        .await
        .expect("the second follower stops on SIGTERM");
    assert!(status.success(), "{}", std::fs::read_to_string(&second_err).unwrap());
    let verify = importer.run(&["verify"], Duration::from_secs(60)).await;
    assert!(verify.status.success(), "{verify}");
    // Released on SIGTERM: a follower started now does not wait. A holder on another host is waited for until
    // its lease runs out.
    let store = sqlx::SqlitePool::connect(&target_url).await.unwrap();
    let expires = chrono::Utc::now().timestamp_millis() + 2_000;
    sqlx::query("UPDATE import_lease SET holder = 'elsewhere:1:x', expires_at = ? WHERE name = 'gofly'")
        .bind(expires)
        .execute(&store)
        .await
        .unwrap();
    let mut args = follow("5164").to_vec();
    args.extend(["--until-caught-up", "--wait-for-lease"]);
    let next = importer.run(&args, Duration::from_secs(60)).await;
    assert!(next.status.success(), "{next}");
    assert!(next.stderr.contains("waiting for the follow lease"), "{next}");
    assert!(chrono::Utc::now().timestamp_millis() >= expires);
}
