//! The osTicket preset on the upstream schema (`support/osticket.rs`), imported by the binary and read back
//! through protofuse's own `Store`, compared field by field with a canonical form written by hand.
//!
//! Issue 22: `agent_id = {column = "staff_id", map = {"0" = ""}}` turned every staff id the map did not list into
//! NULL, so staff replies and notes were stored as written by the customer; staff names with a NULL part read
//! "Emma null".

use std::time::Duration;

use protofuse_migrate::mapping::Mapping;
use protofuse_model::{Content, ConversationStatus};
use protofuse_store::PageRequest;

use super::osticket;

/// (entry id, thread, role, author, display name, text, sent at, internal).
type Entry = (
    i64,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    bool,
);

const ENTRIES: &[Entry] = &[
    (
        1,
        "1",
        "customer",
        "1",
        "Zoë Müller",
        "<p>My printer is on fire</p>",
        "2023-05-01T09:00:00+00:00",
        false,
    ),
    (
        2,
        "1",
        "agent",
        "1",
        "Emma",
        "Unplug it.",
        "2023-05-01T09:30:00+00:00",
        false,
    ),
    (
        3,
        "1",
        "agent",
        "2",
        "Smith",
        "call the fire brigade",
        "2023-05-01T09:31:00+00:00",
        true,
    ),
    (
        4,
        "2",
        "customer",
        "2",
        "王小明",
        "请开发票",
        "2023-05-02T09:00:00+00:00",
        false,
    ),
    // osTicket's own note: staff_id 0, poster SYSTEM.
    (
        5,
        "2",
        "agent",
        "system",
        "SYSTEM",
        "Ticket flagged as overdue by the system.",
        "2023-05-03T00:00:00+00:00",
        true,
    ),
    (
        6,
        "2",
        "agent",
        "2",
        "J Smith",
        "Invoice sent.",
        "2023-05-02T10:00:00+00:00",
        false,
    ),
];

/// (thread, customer id, department, created, updated): thread 2's `lastmessage` is a zero date, so updated =
/// created. The department is the ticket's (`ost_ticket.dept_id`: Support 1, Billing 2).
const THREADS: &[(&str, &str, &str, &str, &str)] = &[
    (
        "1",
        "ost-ticket-1",
        "1",
        "2023-05-01T09:00:00+00:00",
        "2023-05-01T10:00:00+00:00",
    ),
    (
        "2",
        "ost-ticket-2",
        "2",
        "2023-05-02T09:00:00+00:00",
        "2023-05-02T09:00:00+00:00",
    ),
];

/// (source, pk, role, external id, display name, email) as `import_parties` holds them.
type Party = (
    &'static str,
    i64,
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
);

const PARTIES: &[Party] = &[
    (
        "osticket:ost_staff/agent",
        1,
        "agent",
        "1",
        Some("Emma"),
        Some("emma@example.com"),
    ),
    ("osticket:ost_staff/agent", 2, "agent", "2", Some("Smith"), None),
    (
        "osticket:ost_user/customer",
        1,
        "customer",
        "1",
        Some("Zoë Müller"),
        None,
    ),
    ("osticket:ost_user/customer", 2, "customer", "2", Some("王小明"), None),
];

/// Field-by-field comparison: every difference is kept, so a failure lists them all.
#[derive(Default)]
struct Fields {
    diffs: Vec<String>,
    compared: usize,
}

impl Fields {
    fn same(&mut self, what: &str, expected: &str, got: &str) {
        self.compared += 1;
        if expected != got {
            self.diffs
                .push(format!("{what}: expected {expected:?}, stored {got:?}"));
        }
    }
}

type StoredParty = (String, i64, String, String, Option<String>, Option<String>);

#[tokio::test]
async fn osticket_preset_on_the_upstream_schema_matches_the_hand_written_canonical_form() {
    let (source, _pool) = osticket::create().await;
    let dir = tempfile::tempdir().unwrap();
    let target = format!("sqlite://{}", dir.path().join("store.db").display());
    let out = osticket::migrate("preset:osticket", &source, &target, &["snapshot"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let mut fields = Fields::default();
    compare_threads_and_entries(&target, &mut fields).await;
    compare_parties(&target, &mut fields).await;
    assert!(
        fields.diffs.is_empty(),
        "{} of {} fields differ:\n{}",
        fields.diffs.len(),
        fields.compared,
        fields.diffs.join("\n")
    );
    assert_eq!(
        fields.compared,
        4 * THREADS.len() + 7 * ENTRIES.len() + 5 * PARTIES.len()
    );

    // Both verify modes agree with the import.
    for mode in ["checksums", "source"] {
        let out = osticket::migrate("preset:osticket", &source, &target, &["verify", "--mode", mode]);
        assert!(
            out.status.success(),
            "verify --mode {mode}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Conversations and messages, read through protofuse's own `Store`.
async fn compare_threads_and_entries(target: &str, fields: &mut Fields) {
    let store = protofuse_store::open(&protofuse_store::StoreConfig {
        url: target.to_owned(),
        max_connections: 1,
        acquire_timeout: Duration::from_secs(10),
        sqlite_synchronous: protofuse_store::Synchronous::Normal,
        ..protofuse_store::StoreConfig::default()
    })
    .await
    .unwrap();
    let mapper = protofuse_migrate::canonical::Mapper::new(Mapping::parse(osticket::preset()).unwrap());
    let mut seen = 0;
    for (thread, customer, department, created, updated) in THREADS {
        let id = mapper.conversation_id("ost_thread", thread);
        let c = store.conversation(id).await.unwrap().expect("conversation stored");
        fields.same(&format!("thread {thread} customer_id"), customer, &c.customer_id);
        fields.same(
            &format!("thread {thread} department"),
            department,
            c.department.as_deref().unwrap_or("NULL"),
        );
        fields.same(
            &format!("thread {thread} created_at"),
            created,
            &c.created_at.to_rfc3339(),
        );
        fields.same(
            &format!("thread {thread} updated_at"),
            updated,
            &c.updated_at.to_rfc3339(),
        );
        assert_eq!(c.status, ConversationStatus::Closed);
        let all = PageRequest {
            limit: PageRequest::MAX_LIMIT,
            ..PageRequest::default()
        };
        for m in store.messages(id, all).await.unwrap().items {
            seen += 1;
            let key = m.idempotency_key.as_str().to_owned();
            let pk: i64 = key.rsplit(':').next().unwrap().parse().unwrap();
            let (_, entry_thread, role, author, name, text, sent, internal) = *ENTRIES
                .iter()
                .find(|e| e.0 == pk)
                .unwrap_or_else(|| panic!("unexpected {key}"));
            let at = |f: &str| format!("entry {pk} {f}");
            fields.same(&at("thread"), entry_thread, thread);
            let stored_role = serde_json::to_value(m.sender.role).unwrap();
            fields.same(&at("role"), role, stored_role.as_str().unwrap());
            fields.same(&at("author"), author, &m.sender.external_id);
            fields.same(&at("name"), name, m.sender.display_name.as_deref().unwrap_or("NULL"));
            let Content::Text { text: stored_text } = &m.content else {
                panic!("entry {pk}: {:?}", m.content);
            };
            fields.same(&at("text"), text, stored_text);
            let stored_sent = m.sent_at.map(|t| t.to_rfc3339()).unwrap_or_default();
            fields.same(&at("sent_at"), sent, &stored_sent);
            let stored_internal = m
                .metadata
                .get("internal")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false);
            fields.same(&at("internal"), &internal.to_string(), &stored_internal.to_string());
        }
    }
    assert_eq!(seen, ENTRIES.len(), "every entry imported once");
}

/// Customers and agents, as the importer's `import_parties` holds them.
async fn compare_parties(target: &str, fields: &mut Fields) {
    let pool = sqlx::SqlitePool::connect(target).await.unwrap();
    let parties: Vec<StoredParty> = sqlx::query_as(
        "SELECT source, pk, role, external_id, display_name, email FROM import_parties ORDER BY source, pk",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(parties.len(), PARTIES.len(), "{parties:?}");
    let show = |v: Option<&str>| v.unwrap_or("NULL").to_owned();
    for (expected, got) in PARTIES.iter().zip(&parties) {
        let at = |f: &str| format!("{} {} {f}", expected.0, expected.1);
        fields.same(&at("source"), expected.0, &got.0);
        fields.same(&at("role"), expected.2, &got.2);
        fields.same(&at("external_id"), expected.3, &got.3);
        fields.same(&at("display_name"), &show(expected.4), &show(got.4.as_deref()));
        fields.same(&at("email"), &show(expected.5), &show(got.5.as_deref()));
    }
}
