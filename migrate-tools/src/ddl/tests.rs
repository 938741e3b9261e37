use super::*;

/// The osTicket tables as the preset reads them, written out so that these tests do not move with the preset.
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
fields.display_name = { template = "{firstname} {lastname}", default = "" }
"#;

fn osticket() -> MappedColumns {
    MappedColumns::new(&Mapping::parse(MAPPING).unwrap())
}

const HERE: Scope<'static> = Scope {
    database: "helpdesk",
    schema: "helpdesk",
};

fn verdict(q: &str) -> Statement {
    classify(q, HERE, &osticket())
}

/// The stop's table, column and message, or a panic naming what came instead.
fn stopped(q: &str) -> (String, Option<String>, String) {
    match verdict(q) {
        Statement::Stop(stop) => {
            let text = stop.to_string();
            (stop.table, stop.column, text)
        }
        other => panic!("{q}: {other:?}"),
    }
}

/// The table followed and the new columns that fill existing rows, or a panic naming what came instead.
fn followed(q: &str) -> (String, Vec<String>) {
    match verdict(q) {
        Statement::Follow { table, filled } => (table, filled),
        other => panic!("{q}: {other:?}"),
    }
}

#[test]
fn transaction_bounds_and_comments() {
    assert_eq!(verdict("BEGIN"), Statement::Begin);
    assert_eq!(verdict("COMMIT"), Statement::Commit);
    assert_eq!(verdict("XA START X'31'"), Statement::Begin);
    assert_eq!(verdict("# Dummy event replacing event type 160"), Statement::Ignore);
    assert_eq!(verdict("SAVEPOINT `s1`"), Statement::Ignore);
    assert_eq!(verdict("OPTIMIZE TABLE ost_thread_entry"), Statement::Ignore);
}

#[test]
fn column_changes_with_or_without_the_column_keyword_stop_naming_column_and_key() {
    let (table, column, text) = stopped("ALTER TABLE ost_thread_entry DROP poster");
    assert_eq!(
        (table.as_str(), column.as_deref()),
        ("ost_thread_entry", Some("poster"))
    );
    assert!(text.contains("tables.ost_thread_entry.fields.sender_name"), "{text}");
    assert!(text.contains("ALTER TABLE ost_thread_entry DROP poster"), "{text}");
    let (_, column, text) = stopped("ALTER TABLE `ost_thread_entry` CHANGE body body_html TEXT");
    assert_eq!(column.as_deref(), Some("body"));
    assert!(text.contains("tables.ost_thread_entry.fields.text"), "{text}");
    let (_, column, text) = stopped("alter table ost_thread_entry modify created DATE");
    assert_eq!(column.as_deref(), Some("created"));
    assert!(
        text.contains("tables.ost_thread_entry.fields.sent_at") && text.contains("MODIFY"),
        "{text}"
    );
    let (_, column, _) = stopped("ALTER TABLE ost_thread_entry RENAME COLUMN body TO body_html");
    assert_eq!(column.as_deref(), Some("body"));
    let (_, column, _) = stopped("ALTER TABLE ost_thread_entry DROP COLUMN IF EXISTS extra, DROP COLUMN `type`");
    assert_eq!(column.as_deref(), Some("type"));
    // Which of them copying the table again puts right: those that keep the column's name.
    for (q, resyncable) in [
        ("ALTER TABLE ost_thread_entry MODIFY created DATE", true),
        ("ALTER TABLE ost_thread_entry CHANGE `body` body MEDIUMTEXT", true),
        ("ALTER TABLE ost_thread_entry CHANGE body body_html TEXT", false),
        ("ALTER TABLE ost_thread_entry DROP poster", false),
        ("TRUNCATE ost_thread_entry", false),
    ] {
        match verdict(q) {
            Statement::Stop(stop) => assert_eq!(stop.resyncable, resyncable, "{q}"),
            other => panic!("{q}: {other:?}"),
        }
    }
    // A template placeholder is a read too.
    let (_, column, text) = stopped("ALTER TABLE ost_staff DROP lastname");
    assert_eq!(column.as_deref(), Some("lastname"));
    assert!(text.contains("tables.ost_staff.fields.display_name"), "{text}");
}

#[test]
fn changes_that_keep_mapped_columns_readable_are_followed() {
    for (q, filled) in [
        (
            "ALTER TABLE ost_thread_entry ADD COLUMN x INT NOT NULL DEFAULT 0",
            &["x"][..],
        ),
        (
            "ALTER TABLE ost_thread_entry ADD x INT NOT NULL DEFAULT 0 AFTER body, ADD z INT NULL",
            &["x"],
        ),
    ] {
        assert_eq!(
            followed(q),
            ("ost_thread_entry".to_owned(), vec![filled[0].to_owned()]),
            "{q}"
        );
    }
    for q in [
        "ALTER TABLE ost_thread_entry DROP COLUMN recipients",
        "ALTER TABLE ost_thread_entry MODIFY extra MEDIUMTEXT, ADD INDEX (created)",
        "ALTER TABLE ost_thread_entry ALTER COLUMN poster SET DEFAULT 'x'",
        "ALTER TABLE helpdesk.ost_thread_entry ADD y INT",
    ] {
        assert_eq!(followed(q), ("ost_thread_entry".to_owned(), Vec::new()), "{q}");
    }
}

#[test]
fn a_new_column_the_mapping_reads_stops_when_it_fills_existing_rows() {
    // The preset reads `ost_staff.firstname`; a source that lacked it gains it with a value in every row.
    let (_, column, _) = stopped("ALTER TABLE ost_staff ADD COLUMN firstname VARCHAR(32) NOT NULL DEFAULT 'n'");
    assert_eq!(column.as_deref(), Some("firstname"));
    assert_eq!(
        followed("ALTER TABLE ost_staff ADD COLUMN firstname VARCHAR(32) NULL"),
        ("ost_staff".to_owned(), Vec::new())
    );
}

#[test]
fn statements_that_change_mapped_rows_without_row_events_stop() {
    assert_eq!(stopped("TRUNCATE TABLE ost_thread").0, "ost_thread");
    assert_eq!(
        stopped("DROP TABLE `ost_staff` /* generated by server */").0,
        "ost_staff"
    );
    assert_eq!(stopped("RENAME TABLE ost_thread TO t2, x TO y").0, "ost_thread");
    assert_eq!(stopped("ALTER TABLE ost_thread RENAME TO t2").0, "ost_thread");
    assert_eq!(
        stopped("INSERT INTO ost_thread_entry (body) VALUES ('x')").0,
        "ost_thread_entry"
    );
    let (table, column, text) = stopped("ALTER TABLE ost_thread_entry FROBNICATE poster");
    assert_eq!((table.as_str(), column), ("ost_thread_entry", None));
    assert!(text.contains("cannot parse") && text.contains("FROBNICATE"), "{text}");
    let long = format!("ALTER TABLE ost_thread_entry FROBNICATE {}", "x".repeat(1_000));
    assert!(stopped(&long).2.len() < 500);
}

#[test]
fn other_tables_and_databases_are_ignored() {
    for q in [
        "ALTER TABLE other DROP poster",
        "DROP TABLE other",
        "TRUNCATE other",
        "CREATE TABLE t2 (id INT PRIMARY KEY, body TEXT)",
        "CREATE INDEX i ON ost_thread_entry (created)",
        "ALTER TABLE elsewhere.ost_thread_entry DROP poster",
        "FROBNICATE other",
    ] {
        assert_eq!(verdict(q), Statement::Ignore, "{q}");
    }
    let elsewhere = Scope {
        database: "helpdesk",
        schema: "elsewhere",
    };
    let mapped = osticket();
    assert_eq!(
        classify("ALTER TABLE ost_thread_entry DROP poster", elsewhere, &mapped),
        Statement::Ignore
    );
    assert!(matches!(
        classify("ALTER TABLE helpdesk.ost_thread_entry DROP poster", elsewhere, &mapped),
        Statement::Stop(_)
    ));
}

#[test]
fn mysql_alter_forms_the_parser_does_not_know_are_read_without_them() {
    for q in [
        "ALTER TABLE ost_thread_entry ENGINE=InnoDB",
        "ALTER TABLE ost_thread_entry FORCE",
        "ALTER TABLE ost_thread_entry COMMENT 'x', ROW_FORMAT=DYNAMIC",
        "ALTER TABLE ost_thread_entry DEFAULT CHARACTER SET = utf8mb4",
        "ALTER TABLE ost_thread_entry RENAME INDEX a TO b",
        "ALTER ONLINE TABLE ost_thread_entry ADD COLUMN x INT",
        "ALTER IGNORE TABLE ost_thread_entry ADD INDEX (created)",
    ] {
        assert_eq!(followed(q), ("ost_thread_entry".to_owned(), Vec::new()), "{q}");
    }
    assert_eq!(
        followed("ALTER TABLE `ost_thread_entry` ADD COLUMN IF NOT EXISTS x INT NOT NULL DEFAULT 0, ENGINE=InnoDB"),
        ("ost_thread_entry".to_owned(), vec!["x".to_owned()])
    );
    let (_, column, text) = stopped("ALTER TABLE ost_thread_entry ENGINE=InnoDB, DROP COLUMN IF EXISTS poster");
    assert_eq!(column.as_deref(), Some("poster"));
    assert!(text.contains("ENGINE=InnoDB, DROP COLUMN IF EXISTS poster"), "{text}");
    match verdict("ALTER TABLE ost_thread_entry CONVERT TO CHARACTER SET utf8mb4") {
        Statement::Stop(stop) => assert!(stop.resyncable && stop.what.contains("CONVERT"), "{stop:?}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(verdict("ALTER TABLE other ENGINE=InnoDB"), Statement::Ignore);
    assert_eq!(
        verdict("ALTER TABLE other CONVERT TO CHARACTER SET utf8mb4"),
        Statement::Ignore
    );
    // Still unknown: stopped, quoted.
    assert!(
        stopped("ALTER TABLE ost_thread_entry DROP PARTITION p0")
            .2
            .contains("cannot parse")
    );
}
