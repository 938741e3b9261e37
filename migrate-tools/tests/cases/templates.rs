//! Issue 22: templates rendered NULL as the text "null": `preset:generic` gave every ticket without a customer
//! `customer_id = "cust-null"`, merging all unknown customers into one. A placeholder now takes its declared
//! fallback (the generic preset derives a per-ticket key), and no NULL is ever rendered as text.

use protofuse_migrate::canonical::Mapper;

const TABLES: &str = "CREATE TABLE tickets (id int NOT NULL PRIMARY KEY, customer_id int NULL, \
    state varchar(16) NOT NULL DEFAULT 'open', agent_login varchar(32) NULL, created int NOT NULL) \
    DEFAULT CHARSET=utf8mb4; \
    CREATE TABLE replies (id int NOT NULL PRIMARY KEY, ticket_id int NOT NULL, author_type tinyint NOT NULL, \
    customer_id int NULL, agent_login varchar(32) NULL, body text NOT NULL, kind varchar(8) NULL, \
    file_url varchar(255) NULL, file_name varchar(255) NULL, created_at datetime NOT NULL) DEFAULT CHARSET=utf8mb4; \
    INSERT INTO tickets (id, customer_id, state, agent_login, created) VALUES \
      (1, 7, 'open', 'emma', 1700000000), (2, NULL, 'closed', NULL, 1700000100), (3, NULL, 'closed', NULL, 1700000200); \
    INSERT INTO replies (id, ticket_id, author_type, customer_id, agent_login, body, created_at) VALUES \
      (1, 2, 0, NULL, NULL, 'where is my parcel', '2023-11-15 06:15:00'), \
      (2, 3, 0, NULL, NULL, 'refund please', '2023-11-15 06:16:40'), \
      (3, 1, 0, 7, NULL, 'hello', '2023-11-15 06:13:20'), \
      (4, 2, 1, NULL, 'emma', 'on its way', '2023-11-15 06:20:00')";

#[tokio::test]
async fn a_null_placeholder_takes_its_fallback_and_distinct_unknown_customers_stay_distinct() {
    let source = protofuse_testkit::mariadb::server().await.fresh_database().await;
    let pool = sqlx::MySqlPool::connect(&source).await.unwrap();
    sqlx::raw_sql(TABLES).execute(&pool).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let target = format!("sqlite://{}", dir.path().join("store.db").display());
    let out = super::osticket::migrate("preset:generic", &source, &target, &["snapshot"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let store = sqlx::SqlitePool::connect(&target).await.unwrap();
    let mapper = Mapper::new(protofuse_migrate::cli::load_mapping("preset:generic").unwrap());
    for (ticket, customer) in [
        ("1", "cust-7"),
        ("2", "cust-anonymous-ticket-2"),
        ("3", "cust-anonymous-ticket-3"),
    ] {
        let id = mapper.conversation_id("tickets", ticket).to_string();
        let (stored,): (String,) = sqlx::query_as("SELECT customer_id FROM conversations WHERE id = ?")
            .bind(&id)
            .fetch_one(&store)
            .await
            .unwrap();
        assert_eq!(stored, customer, "ticket {ticket}");
    }
    for (reply, role, sender) in [
        (1, "customer", "cust-anonymous-ticket-2"),
        (2, "customer", "cust-anonymous-ticket-3"),
        (3, "customer", "cust-7"),
        (4, "agent", "emma"),
    ] {
        let (body,): (String,) = sqlx::query_as("SELECT body FROM messages WHERE idempotency_key = ?")
            .bind(format!("import:legacy:replies:{reply}"))
            .fetch_one(&store)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["sender"]["role"], role, "reply {reply}");
        assert_eq!(body["sender"]["external_id"], sender, "reply {reply}");
    }
    let (nulls,): (i64,) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM conversations WHERE customer_id LIKE '%null%') + \
         (SELECT COUNT(*) FROM messages WHERE body LIKE '%-null%')",
    )
    .fetch_one(&store)
    .await
    .unwrap();
    assert_eq!(nulls, 0);

    // Templates, the unix_seconds transform and the GBK reinterpretation, re-derived by the source's own SQL.
    let out = super::osticket::migrate("preset:generic", &source, &target, &["verify", "--mode", "source"]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
