//! Issue 22, labels for triage: the osTicket preset labels each conversation with its ticket's department
//! (`ost_thread.object_id` → `ost_ticket.dept_id`, a lookup), on the snapshot and while following, where a
//! ticket transferred to another department relabels its conversation. `verify` in both modes reads the same
//! join from the source, so a label the importer got wrong is a named mismatch.

use std::time::Duration;

use protofuse_migrate::canonical::Mapper;
use protofuse_migrate::mapping::Mapping;

use super::importer::Importer;
use super::osticket;

/// The stored department of each thread's conversation.
async fn departments(target: &str, threads: &[&str]) -> Vec<Option<String>> {
    let mapper = Mapper::new(Mapping::parse(osticket::preset()).unwrap());
    let pool = sqlx::SqlitePool::connect(target).await.unwrap();
    let mut out = Vec::new();
    for thread in threads {
        let id = mapper.conversation_id("ost_thread", thread).to_string();
        let department: Option<Option<String>> =
            sqlx::query_scalar("SELECT department FROM conversations WHERE id = ?")
                .bind(&id)
                .fetch_optional(&pool)
                .await
                .unwrap();
        out.push(department.expect("conversation stored"));
    }
    out
}

#[tokio::test]
async fn tickets_label_their_conversations_with_their_department_and_a_transfer_relabels() {
    let (source, pool) = osticket::create().await;
    let dir = tempfile::tempdir().unwrap();
    let target = format!("sqlite://{}", dir.path().join("store.db").display());
    let importer = Importer::new(dir.path(), osticket::preset(), &source, &target);
    let sql = |statement: &'static str| {
        let pool = pool.clone();
        async move { sqlx::raw_sql(statement).execute(&pool).await.unwrap() }
    };

    let snapshot = importer.run(&["snapshot"], Duration::from_secs(60)).await;
    assert!(snapshot.status.success(), "{snapshot}");
    assert_eq!(
        departments(&target, &["1", "2"]).await,
        [Some("1".to_owned()), Some("2".to_owned())],
        "ticket 1 is in Support (1), ticket 2 in Billing (2)"
    );

    // Ticket 2 moves to Support; a new ticket arrives in Billing (osTicket writes the ticket before its thread);
    // a task's thread (object_type 'A') names task 1, not ticket 1.
    sql("UPDATE ost_ticket SET dept_id = 1 WHERE ticket_id = 2").await;
    sql(
        "INSERT INTO ost_ticket (ticket_id, number, user_id, status_id, dept_id, topic_id, created, updated) \
         VALUES (3, '100003', 1, 1, 2, 2, '2023-05-04 09:00:00', '2023-05-04 09:00:00')",
    )
    .await;
    sql("INSERT INTO ost_thread (id, object_id, object_type, created) VALUES \
         (3, 3, 'T', '2023-05-04 09:00:00'), (4, 1, 'A', '2023-05-04 10:00:00')")
    .await;
    sql(
        "INSERT INTO ost_thread_entry (id, thread_id, staff_id, type, poster, body, created, updated) VALUES \
         (7, 4, 1, 'N', 'Emma', 'task note', '2023-05-04 10:05:00', '2023-05-04 10:05:00')",
    )
    .await;
    let follow = importer
        .run(
            &[
                "follow",
                "--until-caught-up",
                "--heartbeat-ms",
                "300",
                "--server-id",
                "5121",
            ],
            Duration::from_secs(60),
        )
        .await;
    assert!(follow.status.success(), "{follow}");
    assert_eq!(
        departments(&target, &["1", "2", "3"]).await,
        [Some("1".to_owned()), Some("1".to_owned()), Some("2".to_owned())]
    );
    // A task's thread is staff work, not a customer conversation: neither it nor its entries are imported.
    let store = sqlx::SqlitePool::connect(&target).await.unwrap();
    let task = Mapper::new(Mapping::parse(osticket::preset()).unwrap())
        .conversation_id("ost_thread", "4")
        .to_string();
    let imported: i64 = sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM conversations WHERE id = ?1) + \
         (SELECT COUNT(*) FROM messages WHERE body LIKE '%task note%')",
    )
    .bind(&task)
    .fetch_one(&store)
    .await
    .unwrap();
    assert_eq!(imported, 0, "the task's thread or its entry was imported");

    for mode in ["checksums", "source"] {
        let verify = importer.run(&["verify", "--mode", mode], Duration::from_secs(60)).await;
        assert!(verify.status.success(), "verify --mode {mode}: {verify}");
    }

    // Changed after the import, with nothing following: both verify modes name the conversation.
    sql("UPDATE ost_ticket SET dept_id = 7 WHERE ticket_id = 3").await;
    for mode in ["checksums", "source"] {
        let verify = importer.run(&["verify", "--mode", mode], Duration::from_secs(60)).await;
        assert!(
            !verify.status.success(),
            "verify --mode {mode} missed the changed department: {verify}"
        );
        assert!(verify.stdout.contains("ost_thread"), "verify --mode {mode}: {verify}");
    }
    let source_mode = importer
        .run(&["verify", "--mode", "source"], Duration::from_secs(60))
        .await;
    assert!(
        source_mode.stdout.contains("department") && source_mode.stdout.contains('7'),
        "{source_mode}"
    );
}
