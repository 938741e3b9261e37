//! Issue 22, findings 6 and 7: DDL on a mapped column went unnoticed when written without the optional
//! `COLUMN` keyword (`DROP poster`, `CHANGE body body_html TEXT`), `MODIFY created DATE` rewrote every row
//! without row events while the target kept the old values, and a routine `ADD COLUMN … NOT NULL DEFAULT`
//! stopped following for good. Through the binary, on osTicket-shaped tables.

use std::time::Duration;

use protofuse_migrate::sink::Target;
use protofuse_testkit::mariadb;
use sqlx::MySqlPool;

use super::importer::{Finished, Importer};

/// The osTicket tables as the preset reads them, written out so that this test does not move with the preset.
const MAPPING: &str = r#"
name = "desk"
channel = "desk"

[[tables]]
table = "ost_thread"
kind = "conversation"
fields.customer_id = { column = "object_id" }
fields.created_at = { column = "created", transform = "datetime" }

[[tables]]
table = "ost_thread_entry"
kind = "message"
conversation_table = "ost_thread"
fields.conversation = { column = "thread_id" }
fields.role = { column = "type", map = { M = "customer", R = "agent", N = "agent" }, default = "customer" }
fields.sender_id = { column = "user_id" }
fields.sender_name = { column = "poster" }
fields.text = { column = "body" }
fields.sent_at = { column = "created", transform = "datetime" }

[[tables]]
table = "ost_staff"
kind = "agent"
key = "staff_id"
fields.external_id = { column = "username" }
"#;

/// A snapshotted osTicket source and its SQLite target.
struct Desk {
    source_url: String,
    pool: MySqlPool,
    target_url: String,
    importer: Importer,
    server_id: String,
    _dir: tempfile::TempDir,
}

impl Desk {
    async fn new(server_id: u32) -> Self {
        let url = mariadb::server().await.fresh_database().await;
        let pool = MySqlPool::connect(&url).await.unwrap();
        let (ddl, seed, _) = super::presets::OSTICKET;
        for statement in ddl.iter().chain(seed) {
            sqlx::raw_sql(statement).execute(&pool).await.unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let target_url = format!("sqlite://{}", dir.path().join("store.db").display());
        let importer = Importer::new(dir.path(), MAPPING, &url, &target_url);
        let snapshot = importer.run(&["snapshot"], Duration::from_secs(60)).await;
        assert!(snapshot.status.success(), "{snapshot}");
        Self {
            source_url: url,
            pool,
            target_url,
            importer,
            server_id: server_id.to_string(),
            _dir: dir,
        }
    }

    async fn sql(&self, statement: &str) {
        sqlx::raw_sql(statement).execute(&self.pool).await.unwrap();
    }

    async fn follow(&self) -> Finished {
        self.follow_with(&[]).await
    }

    async fn follow_with(&self, extra: &[&str]) -> Finished {
        let args = [
            "follow",
            "--until-caught-up",
            "--heartbeat-ms",
            "300",
            "--server-id",
            &self.server_id,
        ];
        self.importer
            .run(&[&args[..], extra].concat(), Duration::from_secs(60))
            .await
    }

    async fn assert_verified(&self) {
        let source = protofuse_migrate::source::Source::new(&self.source_url).unwrap();
        let mapper =
            protofuse_migrate::canonical::Mapper::new(protofuse_migrate::mapping::Mapping::parse(MAPPING).unwrap());
        let target = Target::open(&self.target_url).await.unwrap();
        for report in protofuse_migrate::verify::run(&source, &target, &mapper).await.unwrap() {
            assert!(report.ok(), "{report:?}");
        }
    }

    async fn stored(&self, text: &str) -> bool {
        super::importer::stored(&self.target_url, text).await
    }

    /// The change stops `follow`, which names the table, the column and the mapping key, applies nothing after
    /// it, and stops there again when restarted. (Where the column is gone from the source, a restart is refused
    /// by the check of the mapping against the source's schema before the stream is read, in the same terms.)
    async fn assert_stops(&self, ddl: &str, insert_after: &str, column: &str, key: &str) {
        self.sql(ddl).await;
        self.sql(insert_after).await;
        for _ in 0..2 {
            let out = self.follow().await;
            assert!(!out.status.success(), "{ddl}: {out}");
            for needle in ["ost_thread_entry", column, key, "update the mapping"] {
                assert!(out.stderr.contains(needle), "{ddl}: no {needle:?} in {out}");
            }
            assert!(!self.stored("after the change").await, "{ddl}: a later row was applied");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_mapped_column_without_the_column_keyword_stops_follow() {
    let desk = Desk::new(5111).await;
    desk.assert_stops(
        "ALTER TABLE ost_thread_entry DROP poster",
        "INSERT INTO ost_thread_entry (thread_id, user_id, type, body, created, updated) \
         VALUES (1, 1, 'M', 'after the change', NOW(), NOW())",
        "poster",
        "tables.ost_thread_entry.fields.sender_name",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renaming_a_mapped_column_with_change_stops_follow() {
    let desk = Desk::new(5112).await;
    desk.assert_stops(
        "ALTER TABLE ost_thread_entry CHANGE body body_html TEXT",
        "INSERT INTO ost_thread_entry (thread_id, user_id, type, poster, body_html, created, updated) \
         VALUES (1, 1, 'M', 'Zoë', 'after the change', NOW(), NOW())",
        "body",
        "tables.ost_thread_entry.fields.text",
    )
    .await;
}

/// MODIFY rewrites every row without a single row event: following on would leave the target's old values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retyping_a_mapped_column_with_modify_stops_follow() {
    let desk = Desk::new(5113).await;
    desk.assert_stops(
        "ALTER TABLE ost_thread_entry MODIFY created DATE",
        "INSERT INTO ost_thread_entry (thread_id, user_id, type, poster, body, created, updated) \
         VALUES (1, 1, 'M', 'Zoë', 'after the change', NOW(), NOW())",
        "created",
        "tables.ost_thread_entry.fields.sent_at",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_a_column_is_followed_and_later_rows_still_arrive() {
    let desk = Desk::new(5114).await;
    desk.sql("ALTER TABLE ost_thread_entry ADD COLUMN x INT NOT NULL DEFAULT 0")
        .await;
    desk.sql(
        "INSERT INTO ost_thread_entry (thread_id, user_id, type, poster, body, created, updated, x) \
         VALUES (1, 1, 'M', 'Zoë', 'first after the change', NOW(), NOW(), 7)",
    )
    .await;
    // Without the optional COLUMN keyword, and on an unmapped column: followed as well.
    desk.sql("ALTER TABLE ost_thread_entry ADD y VARCHAR(10) NULL, DROP COLUMN recipients")
        .await;
    // MariaDB forms the SQL parser does not know, read without what changes no row.
    desk.sql("ALTER TABLE ost_thread_entry ENGINE=InnoDB, ADD COLUMN IF NOT EXISTS z INT NULL")
        .await;
    let out = desk.follow().await;
    assert!(out.status.success(), "{out}");
    assert!(desk.stored("first after the change").await);
    assert!(
        out.stderr.contains("new columns fill every existing row") && out.stderr.contains("columns=x"),
        "{out}"
    );
    desk.sql(
        "INSERT INTO ost_thread_entry (thread_id, user_id, type, poster, body, created, updated, x, y) \
         VALUES (2, 2, 'M', '王小明', 'second after the change', NOW(), NOW(), 8, 'y')",
    )
    .await;
    let out = desk.follow().await;
    assert!(out.status.success(), "{out}");
    assert!(desk.stored("second after the change").await);
    // Rows imported before the change lack `x` in `source.raw` (the server gave it to them without row events),
    // which `verify` sees; every row written since matches its source row.
    let source = protofuse_migrate::source::Source::new(&desk.source_url).unwrap();
    let mapper =
        protofuse_migrate::canonical::Mapper::new(protofuse_migrate::mapping::Mapping::parse(MAPPING).unwrap());
    let target = Target::open(&desk.target_url).await.unwrap();
    for report in protofuse_migrate::verify::run(&source, &target, &mapper).await.unwrap() {
        assert_eq!(report.source_rows, report.target_rows, "{report:?}");
        let new_rows = [5, 6];
        assert!(report.source.ends_with("/message") || report.ok(), "{report:?}");
        assert!(!report.sample_keys.iter().any(|k| new_rows.contains(k)), "{report:?}");
    }
}

/// `--on-ddl resync-table`: a mapped column retyped by MODIFY (every row rewritten without row events) is put
/// right by copying the table again, and following goes on past the statement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modify_with_resync_table_copies_the_table_again_and_follows_on() {
    let desk = Desk::new(5115).await;
    desk.sql("ALTER TABLE ost_thread_entry MODIFY created DATE").await;
    desk.sql(
        "INSERT INTO ost_thread_entry (thread_id, user_id, type, poster, body, created, updated) \
         VALUES (1, 1, 'M', 'Zoë', 'after the change', NOW(), NOW())",
    )
    .await;
    let stopped = desk.follow().await;
    assert!(
        !stopped.status.success() && stopped.stderr.contains("--on-ddl resync-table"),
        "{stopped}"
    );
    let out = desk.follow_with(&["--on-ddl", "resync-table"]).await;
    assert!(
        out.status.success() && out.stderr.contains("table copied again"),
        "{out}"
    );
    assert!(desk.stored("after the change").await);
    // The rows copied before the change now carry their DATE, as the source does.
    desk.assert_verified().await;
    desk.sql(
        "INSERT INTO ost_thread_entry (thread_id, user_id, type, poster, body, created, updated) \
         VALUES (2, 2, 'M', '王小明', 'later still', NOW(), NOW())",
    )
    .await;
    let out = desk.follow().await;
    assert!(out.status.success(), "past the statement for good: {out}");
    assert!(desk.stored("later still").await);
    desk.assert_verified().await;
}

/// A new column filling every existing row (unmapped, so followed by default) leaves `source.raw` of rows
/// imported before without it; with `--on-ddl resync-table` the table is copied again and `verify` is clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filled_new_column_with_resync_table_leaves_nothing_for_verify_to_find() {
    let desk = Desk::new(5116).await;
    desk.sql("ALTER TABLE ost_thread_entry ADD COLUMN x INT NOT NULL DEFAULT 0")
        .await;
    desk.sql(
        "INSERT INTO ost_thread_entry (thread_id, user_id, type, poster, body, created, updated, x) \
         VALUES (1, 1, 'M', 'Zoë', 'after the change', NOW(), NOW(), 7)",
    )
    .await;
    let out = desk.follow_with(&["--on-ddl", "resync-table"]).await;
    assert!(
        out.status.success() && out.stderr.contains("table copied again"),
        "{out}"
    );
    assert!(desk.stored("after the change").await);
    desk.assert_verified().await;
}
