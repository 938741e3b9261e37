//! Issue 22, finding 8: `follow` logged nothing once running and exited silently on SIGTERM, and could only
//! start from its checkpoint.

use std::time::{Duration, Instant};

use protofuse_migrate::sink::Target;
use protofuse_migrate::source;

use super::importer::{Importer, stored};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_logs_progress_and_says_where_it_stopped_on_sigterm() {
    let f = super::fixture(50, 81).await;
    let dir = tempfile::tempdir().unwrap();
    let target_url = format!("sqlite://{}", dir.path().join("store.db").display());
    let importer = Importer::new(dir.path(), &super::gofly::mapping(), &f.source_url, &target_url);
    let snapshot = importer.run(&["snapshot"], Duration::from_secs(60)).await;
    assert!(snapshot.status.success(), "{snapshot}");
    // Progress counts committed rows the way `status` does (a go-fly visitor row is a conversation and a
    // customer), and prints its rate as a whole number.
    let target = Target::open(&target_url).await.unwrap();
    let applied = target.status("gofly").await.unwrap().rows_applied;
    assert!(applied > 0);
    assert!(
        snapshot.stderr.contains(&format!("snapshot finished rows={applied} ")),
        "status says {applied} rows: {snapshot}"
    );
    let rate = snapshot.stderr.split("rows_per_sec=").nth(1).unwrap_or_default();
    assert!(
        rate.split_whitespace().next().is_some_and(|r| r.parse::<u64>().is_ok()),
        "{snapshot}"
    );
    let args = [
        "follow",
        "--server-id",
        "5131",
        "--heartbeat-ms",
        "300",
        "--progress-secs",
        "1",
    ];
    let (mut child, _, err) = importer.spawn(&args);
    sqlx::raw_sql("INSERT INTO message (kefu_id, visitor_id, content) VALUES ('agent1', 'v1', 'while following')")
        .execute(&f.pool)
        .await
        .unwrap();
    // The log is a file another process writes, which announces nothing: it is re-read until the lines appear,
    // under a deadline.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let log = std::fs::read_to_string(&err).unwrap();
        if log.contains("rows_applied=1 ") && log.contains("caught up, waiting for changes") {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "follow exited: {log}");
        assert!(Instant::now() < deadline, "no progress lines within a minute: {log}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(stored(&target_url, "while following").await);

    let term = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let status = super::importer::exit_of(child, Duration::from_secs(30))
        .await
        .expect("follow stops on SIGTERM");
    let log = std::fs::read_to_string(&err).unwrap();
    assert!(status.success(), "{status}: {log}");
    let checkpoint = Target::open(&target_url).await.unwrap().status("gofly").await.unwrap();
    let at = format!(
        "stopped at position {}:{}",
        checkpoint.file.unwrap(),
        checkpoint.pos.unwrap()
    );
    assert!(log.contains(&at) && log.contains("SIGTERM"), "no {at:?} in {log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_from_a_given_start_position_skips_what_lies_before_it() {
    let f = super::fixture(50, 82).await;
    let dir = tempfile::tempdir().unwrap();
    let target_url = format!("sqlite://{}", dir.path().join("store.db").display());
    let importer = Importer::new(dir.path(), &super::gofly::mapping(), &f.source_url, &target_url);
    let snapshot = importer.run(&["snapshot"], Duration::from_secs(60)).await;
    assert!(snapshot.status.success(), "{snapshot}");
    let insert = |text: &'static str| {
        let pool = f.pool.clone();
        async move {
            sqlx::raw_sql(&format!(
                "INSERT INTO message (kefu_id, visitor_id, content) VALUES ('agent1', 'v1', '{text}')"
            ))
            .execute(&pool)
            .await
            .unwrap();
        }
    };
    insert("skipped over").await;
    let mut conn = f.source.connect().await.unwrap();
    let (file, pos) = source::master_position(&mut conn).await.unwrap();
    insert("after the start").await;

    let bad = importer
        .run(&["follow", "--start-position", "nonsense"], Duration::from_secs(30))
        .await;
    assert!(!bad.status.success() && bad.stderr.contains("FILE:POS"), "{bad}");
    let start = format!("{file}:{pos}");
    let args = [
        "follow",
        "--until-caught-up",
        "--server-id",
        "5132",
        "--heartbeat-ms",
        "300",
        "--start-position",
        &start,
    ];
    let out = importer.run(&args, Duration::from_secs(60)).await;
    assert!(out.status.success(), "{out}");
    assert!(stored(&target_url, "after the start").await, "{out}");
    assert!(!stored(&target_url, "skipped over").await, "{out}");
}

/// After a failover file names and offsets differ, GTIDs do not: `--gtid` starts after the given transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_from_a_gtid_starts_after_its_transaction() {
    let f = super::fixture(50, 84).await;
    let dir = tempfile::tempdir().unwrap();
    let target_url = format!("sqlite://{}", dir.path().join("store.db").display());
    let importer = Importer::new(dir.path(), &super::gofly::mapping(), &f.source_url, &target_url);
    let snapshot = importer.run(&["snapshot"], Duration::from_secs(60)).await;
    assert!(snapshot.status.success(), "{snapshot}");
    // One connection, so `@@last_gtid` is this session's last transaction, whatever other tests write.
    let mut conn = f.pool.acquire().await.unwrap();
    let mut insert = async |text: &str| {
        sqlx::query("INSERT INTO message (kefu_id, visitor_id, content) VALUES ('agent1', 'v1', ?)")
            .bind(text)
            .execute(&mut *conn)
            .await
            .unwrap();
        let gtid: String = sqlx::query_scalar("SELECT @@last_gtid")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        gtid
    };
    insert("before the gtid").await;
    let gtid = insert("the gtid's own").await;
    insert("after the gtid").await;

    let bad = importer
        .run(&["follow", "--gtid", "0-1-2,1-1-3"], Duration::from_secs(30))
        .await;
    assert!(!bad.status.success() && bad.stderr.contains("is not one GTID"), "{bad}");
    let args = [
        "follow",
        "--until-caught-up",
        "--server-id",
        "5134",
        "--heartbeat-ms",
        "300",
        "--gtid",
        &gtid,
    ];
    let out = importer.run(&args, Duration::from_secs(60)).await;
    assert!(out.status.success(), "{out}");
    assert!(stored(&target_url, "after the gtid").await, "{out}");
    assert!(!stored(&target_url, "the gtid's own").await, "{out}");
    assert!(!stored(&target_url, "before the gtid").await, "{out}");

    let unknown = importer
        .run(
            &["follow", "--until-caught-up", "--gtid", "0-1-999999999"],
            Duration::from_secs(30),
        )
        .await;
    assert!(
        !unknown.status.success() && unknown.stderr.contains("--start-position"),
        "{unknown}"
    );
}

/// `status` gave the time since the last applied event as lag, which grows while the source is idle (`lag 697 s`
/// for a follower one transaction behind): lag counts from when the first change not applied yet was written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_lag_counts_from_the_first_change_not_applied() {
    let f = super::fixture(50, 83).await;
    let dir = tempfile::tempdir().unwrap();
    let target_url = format!("sqlite://{}", dir.path().join("store.db").display());
    let importer = Importer::new(dir.path(), &super::gofly::mapping(), &f.source_url, &target_url);
    let snapshot = importer.run(&["snapshot"], Duration::from_secs(60)).await;
    assert!(snapshot.status.success(), "{snapshot}");
    let args = [
        "follow",
        "--until-caught-up",
        "--server-id",
        "5133",
        "--heartbeat-ms",
        "300",
    ];
    let out = importer.run(&args, Duration::from_secs(60)).await;
    assert!(out.status.success(), "{out}");
    let lag = || async {
        let out = importer.run(&["status", "--json"], Duration::from_secs(30)).await;
        assert!(out.status.success(), "{out}");
        let shown: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        (
            shown["lag_seconds"].as_i64().unwrap(),
            shown["lag_events"].as_u64().unwrap(),
        )
    };
    // Other tests may write to the same server meanwhile: caught up here means within seconds.
    let (seconds, _) = lag().await;
    assert!(seconds < 600, "{seconds}");
    // The last applied change was written an hour ago, as on a source idle since then...
    let store = sqlx::SqlitePool::connect(&target_url).await.unwrap();
    sqlx::query("UPDATE import_checkpoint SET last_event_at = last_event_at - 3600")
        .execute(&store)
        .await
        .unwrap();
    // ...and one change came in just now, not applied yet.
    sqlx::raw_sql("INSERT INTO message (kefu_id, visitor_id, content) VALUES ('agent1', 'v1', 'not yet')")
        .execute(&f.pool)
        .await
        .unwrap();
    let (seconds, events) = lag().await;
    assert!(events > 0, "{events}");
    assert!(
        seconds < 600,
        "lag {seconds} s counts from the last applied change, not the first unapplied one"
    );
}
