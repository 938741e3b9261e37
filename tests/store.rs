//! One conversation-store suite, run against SQLite and against a real MariaDB started by the harness.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use protofuse_model::{
    Content, ConversationId, ConversationStatus, Direction, Envelope, IdempotencyKey, Party, Protocol, Role, Source,
};
use protofuse_store::{ConversationFilter, Order, PageRequest, Store, StoreConfig, StoreError, Synchronous};
use tempfile::TempDir;

use crate::support::mariadb;

/// A store and whatever must outlive it.
pub struct Opened {
    store: Arc<dyn Store>,
    _dir: Option<TempDir>,
}

impl Deref for Opened {
    type Target = dyn Store;
    fn deref(&self) -> &Self::Target {
        &*self.store
    }
}

fn settings(url: String) -> StoreConfig {
    StoreConfig {
        url,
        max_connections: 4,
        acquire_timeout: Duration::from_secs(10),
        sqlite_synchronous: Synchronous::Full,
        ..StoreConfig::default()
    }
}

pub async fn open_sqlite() -> Opened {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("nested/dir/store.db").display());
    let store = protofuse_store::open(&settings(url)).await.unwrap();
    Opened {
        store: Arc::from(store),
        _dir: Some(dir),
    }
}

pub async fn open_mysql() -> Opened {
    let url = mariadb::server().await.fresh_database().await;
    let store = protofuse_store::open(&settings(url)).await.unwrap();
    Opened {
        store: Arc::from(store),
        _dir: None,
    }
}

fn inbound(customer: &str, text: &str, key: &str) -> Envelope {
    Envelope {
        conversation_id: None,
        channel: "web".to_owned(),
        direction: Direction::Inbound,
        sender: Party {
            role: Role::Customer,
            external_id: customer.to_owned(),
            display_name: Some("顾客 😀".to_owned()),
        },
        content: Content::Text { text: text.to_owned() },
        sent_at: Some(Utc::now()),
        source: Source::new(Protocol::Rest),
        metadata: Default::default(),
        idempotency_key: IdempotencyKey::derive("test", &[key]),
    }
}

macro_rules! suite {
    ($backend:ident, $open:path, [$($case:ident),* $(,)?]) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let opened = $open().await;
                    super::$case(&*opened).await;
                }
            )*
        }
    };
}

macro_rules! both_backends {
    ($($case:ident),* $(,)?) => {
        suite!(sqlite, super::open_sqlite, [$($case),*]);
        suite!(mysql, super::open_mysql, [$($case),*]);
    };
}

both_backends!(
    first_message_opens_a_conversation,
    same_key_three_times_is_stored_once,
    reused_key_with_other_content_is_refused,
    concurrent_duplicates_store_one_row,
    customer_messages_share_the_open_conversation,
    unknown_conversation_is_not_found,
    messages_page_by_cursor_in_both_orders,
    conversations_filter_by_customer_and_status,
    a_burst_commits_and_a_bad_write_fails_alone,
    status_changes_keep_unset_fields_and_closing_frees_the_slot,
    taking_is_a_compare_and_set_on_the_assignee,
    outbox_writes_interleave_with_a_stream_of_messages,
    labelled_messages_are_the_customer_texts_of_conversations_with_a_department,
    importers_progress_is_empty_before_any_importer_wrote,
);

/// The dashboard's importer progress reads the importer's checkpoint table, which only the importer creates: a
/// store it never wrote to has no such table, and that is no importer rather than an error.
async fn importers_progress_is_empty_before_any_importer_wrote(store: &dyn Store) {
    assert_eq!(store.import_progress().await.unwrap(), Vec::new());
}

/// Issue 21: the router's training data is every customer text of a conversation that has a department, with
/// that department; not agents' replies, not pictures, not conversations nobody routed.
async fn labelled_messages_are_the_customer_texts_of_conversations_with_a_department(store: &dyn Store) {
    let first = store
        .insert_message(inbound("lea", "invoice please", "lea-1"), Utc::now())
        .await
        .unwrap()
        .message;
    let conversation = first.conversation_id;
    store
        .insert_message(inbound("lea", "the amount is wrong", "lea-2"), Utc::now())
        .await
        .unwrap();
    let mut picture = inbound("lea", "", "lea-3");
    picture.content = Content::Image {
        media: Default::default(),
    };
    store.insert_message(picture, Utc::now()).await.unwrap();
    let mut reply = inbound("agent7", "sent", "lea-4");
    reply.conversation_id = Some(conversation);
    reply.direction = Direction::Outbound;
    reply.sender.role = Role::Agent;
    store.insert_message(reply, Utc::now()).await.unwrap();
    store
        .insert_message(inbound("max", "where is my parcel", "max-1"), Utc::now())
        .await
        .unwrap();
    let change = protofuse_store::StatusChange {
        status: ConversationStatus::Queued,
        department: Some("billing".to_owned()),
        assigned_agent: None,
        if_assignee: None,
    };
    store.change_status(conversation, &change, Utc::now()).await.unwrap();

    let mut seen = Vec::new();
    let mut page = PageRequest {
        limit: 1,
        ..PageRequest::default()
    };
    loop {
        let read = store.labelled_messages(page).await.unwrap();
        for l in read.items {
            let Content::Text { text } = l.message.content else {
                panic!("not a text: {:?}", l.message.content)
            };
            seen.push((l.department, text));
        }
        match read.next_cursor {
            Some(after) => page.after = Some(after),
            None => break,
        }
    }
    let billing = |t: &str| ("billing".to_owned(), t.to_owned());
    assert_eq!(seen, [billing("invoice please"), billing("the amount is wrong")]);
}

async fn status_changes_keep_unset_fields_and_closing_frees_the_slot(store: &dyn Store) {
    let first = store
        .insert_message(inbound("ivy", "1", "ivy-1"), Utc::now())
        .await
        .unwrap()
        .message;
    let id = first.conversation_id;
    let change = |status, department: Option<&str>, agent: Option<&str>| protofuse_store::StatusChange {
        status,
        department: department.map(str::to_owned),
        assigned_agent: agent.map(str::to_owned),
        if_assignee: None,
    };
    let (before, after) = store
        .change_status(
            id,
            &change(ConversationStatus::Queued, Some("after-sales"), None),
            Utc::now(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (before.status, after.status),
        (ConversationStatus::Bot, ConversationStatus::Queued)
    );
    assert_eq!(after.department.as_deref(), Some("after-sales"));
    let (_, after) = store
        .change_status(
            id,
            &change(ConversationStatus::Assigned, None, Some("agent1")),
            Utc::now(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (after.department.as_deref(), after.assigned_agent.as_deref()),
        (Some("after-sales"), Some("agent1"))
    );
    let same = store
        .insert_message(inbound("ivy", "2", "ivy-2"), Utc::now())
        .await
        .unwrap()
        .message;
    assert_eq!(same.conversation_id, id, "still open: the customer's messages join it");
    store
        .change_status(id, &change(ConversationStatus::Closed, None, None), Utc::now())
        .await
        .unwrap()
        .unwrap();
    let next = store
        .insert_message(inbound("ivy", "3", "ivy-3"), Utc::now())
        .await
        .unwrap()
        .message;
    assert_ne!(next.conversation_id, id, "closing frees the open slot");
    let missing = ConversationId::new();
    assert!(
        store
            .change_status(missing, &change(ConversationStatus::Queued, None, None), Utc::now())
            .await
            .unwrap()
            .is_none()
    );
}

/// Two agents take the same waiting conversation, each expecting nobody: one wins, the other is told who did and
/// changes nothing; concurrently, exactly one of many wins.
async fn taking_is_a_compare_and_set_on_the_assignee(store: &dyn Store) {
    use protofuse_store::{Assignee, StatusChange, StoreError};
    let first = store
        .insert_message(inbound("kim", "help", "kim-1"), Utc::now())
        .await
        .unwrap()
        .message;
    let id = first.conversation_id;
    let take = |agent: &str, expected: Assignee| StatusChange {
        status: ConversationStatus::Assigned,
        department: None,
        assigned_agent: Some(agent.to_owned()),
        if_assignee: Some(expected),
    };
    let (_, after) = store
        .change_status(id, &take("agent1", Assignee::Nobody), Utc::now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.assigned_agent.as_deref(), Some("agent1"));
    match store
        .change_status(id, &take("agent2", Assignee::Nobody), Utc::now())
        .await
    {
        Err(StoreError::AssigneeChanged { current }) => assert_eq!(current.as_deref(), Some("agent1")),
        other => panic!("agent2 must not take agent1's conversation: {other:?}"),
    }
    let kept = store.conversation(id).await.unwrap().unwrap();
    assert_eq!(
        kept.assigned_agent.as_deref(),
        Some("agent1"),
        "the refused take changed nothing"
    );
    // Expecting the current assignee passes: a hand-over from agent1.
    let handed = take("agent2", Assignee::Agent("agent1".to_owned()));
    let (_, after) = store.change_status(id, &handed, Utc::now()).await.unwrap().unwrap();
    assert_eq!(after.assigned_agent.as_deref(), Some("agent2"));

    let contested = store
        .insert_message(inbound("lee", "help", "lee-1"), Utc::now())
        .await
        .unwrap()
        .message
        .conversation_id;
    let takes = (0..8).map(|i| {
        let change = take(&format!("racer{i}"), Assignee::Nobody);
        async move { store.change_status(contested, &change, Utc::now()).await }
    });
    let outcomes = futures::future::join_all(takes).await;
    let won = outcomes.iter().filter(|o| matches!(o, Ok(Some(_)))).count();
    let refused = outcomes
        .iter()
        .filter(|o| matches!(o, Err(StoreError::AssigneeChanged { .. })))
        .count();
    assert_eq!((won, refused), (1, 7), "{outcomes:?}");
}

async fn first_message_opens_a_conversation(store: &dyn Store) {
    let sent = inbound("alice", "我要退货 — with emoji 📦", "m1");
    let inserted = store.insert_message(sent.clone(), Utc::now()).await.unwrap();
    assert!(!inserted.duplicate);
    let message = inserted.message;
    assert_eq!(message.content, sent.content, "utf8mb4 text survives");
    assert_eq!(message.sender, sent.sender);
    let conversation = store
        .conversation(message.conversation_id)
        .await
        .unwrap()
        .expect("conversation exists");
    assert_eq!(conversation.customer_id, "alice");
    assert_eq!(conversation.channel, "web");
    assert_eq!(conversation.status, ConversationStatus::Bot);
    let page = store
        .messages(message.conversation_id, PageRequest::default())
        .await
        .unwrap();
    assert_eq!(page.items, vec![message]);
    assert!(page.next_cursor.is_none());
}

async fn same_key_three_times_is_stored_once(store: &dyn Store) {
    let sent = inbound("bob", "hello", "dup");
    let first = store.insert_message(sent.clone(), Utc::now()).await.unwrap();
    for _ in 0..2 {
        let again = store.insert_message(sent.clone(), Utc::now()).await.unwrap();
        assert!(again.duplicate, "a repeated key must be reported as a duplicate");
        assert_eq!(
            again.message, first.message,
            "the caller gets the first stored message back"
        );
    }
    let page = store
        .messages(first.message.conversation_id, PageRequest::default())
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
}

async fn reused_key_with_other_content_is_refused(store: &dyn Store) {
    store
        .insert_message(inbound("carol", "one", "reuse"), Utc::now())
        .await
        .unwrap();
    let err = store
        .insert_message(inbound("carol", "two", "reuse"), Utc::now())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::KeyReused), "{err:?}");
}

async fn concurrent_duplicates_store_one_row(store: &dyn Store) {
    let sent = inbound("dave", "racing", "race");
    let results = futures::future::join_all((0..8).map(|_| store.insert_message(sent.clone(), Utc::now()))).await;
    let stored: Vec<_> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        stored.iter().filter(|s| !s.duplicate).count(),
        1,
        "exactly one write wins"
    );
    assert!(stored.iter().all(|s| s.message.id == stored[0].message.id));
    let page = store
        .messages(stored[0].message.conversation_id, PageRequest::default())
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
}

async fn customer_messages_share_the_open_conversation(store: &dyn Store) {
    let a = store
        .insert_message(inbound("erin", "1", "e1"), Utc::now())
        .await
        .unwrap()
        .message;
    let b = store
        .insert_message(inbound("erin", "2", "e2"), Utc::now())
        .await
        .unwrap()
        .message;
    let other = store
        .insert_message(inbound("frank", "3", "f1"), Utc::now())
        .await
        .unwrap()
        .message;
    assert_eq!(a.conversation_id, b.conversation_id);
    assert_ne!(a.conversation_id, other.conversation_id);
    let mut reply = inbound("agent-7", "on it", "r1");
    reply.conversation_id = Some(a.conversation_id);
    reply.direction = Direction::Outbound;
    reply.sender.role = Role::Agent;
    let reply = store.insert_message(reply, Utc::now()).await.unwrap().message;
    assert_eq!(reply.conversation_id, a.conversation_id);
    let conversation = store.conversation(a.conversation_id).await.unwrap().unwrap();
    assert!(conversation.updated_at >= conversation.created_at);
}

async fn unknown_conversation_is_not_found(store: &dyn Store) {
    let missing = ConversationId::new();
    let mut sent = inbound("gina", "hi", "g1");
    sent.conversation_id = Some(missing);
    let err = store.insert_message(sent, Utc::now()).await.unwrap_err();
    assert!(
        matches!(err, StoreError::ConversationNotFound(id) if id == missing),
        "{err:?}"
    );
    assert!(store.conversation(missing).await.unwrap().is_none());
    assert!(
        store
            .messages(missing, PageRequest::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

async fn messages_page_by_cursor_in_both_orders(store: &dyn Store) {
    let mut stored = Vec::new();
    for i in 0..7 {
        let m = store
            .insert_message(inbound("hank", &format!("m{i}"), &format!("h{i}")), Utc::now())
            .await
            .unwrap();
        stored.push(m.message);
    }
    let conversation = stored[0].conversation_id;
    let ids: Vec<_> = stored.iter().map(|m| m.id).collect();
    for order in [Order::Ascending, Order::Descending] {
        let mut seen = Vec::new();
        let mut page = PageRequest {
            after: None,
            limit: 3,
            order,
        };
        loop {
            let got = store.messages(conversation, page).await.unwrap();
            assert!(got.items.len() <= 3);
            seen.extend(got.items.iter().map(|m| m.id));
            match got.next_cursor {
                Some(cursor) => page.after = Some(cursor),
                None => break,
            }
        }
        let mut expected = ids.clone();
        if order == Order::Descending {
            expected.reverse();
        }
        assert_eq!(seen, expected, "{order:?}: every message once, in order");
    }
}

async fn conversations_filter_by_customer_and_status(store: &dyn Store) {
    for customer in ["ivy", "jack", "ivy"] {
        store
            .insert_message(
                inbound(customer, "x", &format!("{customer}-{}", uuid::Uuid::now_v7())),
                Utc::now(),
            )
            .await
            .unwrap();
    }
    let ivy = ConversationFilter {
        customer_id: Some("ivy".to_owned()),
        status: None,
    };
    let page = store.conversations(&ivy, PageRequest::default()).await.unwrap();
    assert_eq!(
        page.items.len(),
        1,
        "both of ivy's messages went to one open conversation"
    );
    assert_eq!(page.items[0].customer_id, "ivy");
    let bot = ConversationFilter {
        customer_id: None,
        status: Some(ConversationStatus::Bot),
    };
    let all = store
        .conversations(
            &bot,
            PageRequest {
                after: None,
                limit: 1,
                order: Order::Descending,
            },
        )
        .await
        .unwrap();
    assert_eq!(all.items.len(), 1);
    let rest = store.conversations(
        &bot,
        PageRequest {
            after: all.next_cursor,
            limit: 10,
            order: Order::Descending,
        },
    );
    let rest = rest.await.unwrap();
    assert_eq!(rest.items.len(), 1);
    assert!(rest.items[0].id < all.items[0].id, "newest first");
    let queued = ConversationFilter {
        customer_id: None,
        status: Some(ConversationStatus::Queued),
    };
    assert!(
        store
            .conversations(&queued, PageRequest::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

async fn a_burst_commits_and_a_bad_write_fails_alone(store: &dyn Store) {
    store
        .insert_message(inbound("kim", "original", "kim-key"), Utc::now())
        .await
        .unwrap();
    let mut orphan = inbound("lee", "to nowhere", "lee-key");
    orphan.conversation_id = Some(ConversationId::new());
    let good = (0..100).map(|i| inbound(&format!("burst-{i}"), "hi", &format!("burst-{i}")));
    let bad = [orphan, inbound("kim", "changed", "kim-key")];
    let results = futures::future::join_all(good.chain(bad).map(|e| store.insert_message(e, Utc::now()))).await;
    let (ok, failed): (Vec<_>, Vec<_>) = results.into_iter().partition(Result::is_ok);
    assert_eq!(ok.len(), 100, "every good write of the burst is stored");
    assert!(ok.iter().all(|r| !r.as_ref().unwrap().duplicate));
    let failed: Vec<_> = failed.into_iter().map(Result::unwrap_err).collect();
    assert!(matches!(failed[0], StoreError::ConversationNotFound(_)), "{failed:?}");
    assert!(matches!(failed[1], StoreError::KeyReused), "{failed:?}");
    let everyone = ConversationFilter::default();
    let page = PageRequest {
        limit: 500,
        ..Default::default()
    };
    let all = store.conversations(&everyone, page).await.unwrap();
    assert_eq!(
        all.items.len(),
        101,
        "no conversation was left behind by the failed writes"
    );
}

/// The outbox's claims and settlements write while messages are being written (on SQLite through a second
/// connection that takes turns with the message writer): every delivery queued with its message is claimed
/// exactly once and settled, and none is lost or claimed twice.
async fn outbox_writes_interleave_with_a_stream_of_messages(store: &dyn Store) {
    use protofuse_store::outbox::{Settle, Settlement};
    const MESSAGES: usize = 300;
    let lease = chrono::Duration::seconds(600);
    let writes = futures::future::join_all((0..MESSAGES).map(|i| {
        let envelope = inbound(&format!("stream-{}", i % 7), &format!("m{i}"), &format!("stream-{i}"));
        store.insert_routed(envelope, Utc::now(), vec!["hook".to_owned()])
    }));
    let claims = async {
        let mut claimed = Vec::new();
        // A fixed number of rounds while the writes are in flight (what each finds depends on timing; the
        // totals checked below do not).
        for _ in 0..20 {
            let now = Utc::now();
            let batch = store.claim("hook", now, now + lease, 25).await.unwrap();
            let settle: Vec<_> = batch
                .iter()
                .map(|c| Settle {
                    id: c.id,
                    token: c.token,
                    outcome: Settlement::Delivered,
                })
                .collect();
            store.settle(&settle, Utc::now()).await.unwrap();
            claimed.extend(batch.into_iter().map(|c| c.message.id));
        }
        claimed
    };
    let (written, mut claimed) = futures::future::join(writes, claims).await;
    let written: Vec<_> = written.into_iter().map(|r| r.unwrap().message.id).collect();
    let now = Utc::now();
    claimed.extend(
        store
            .claim("hook", now, now + lease, 1000)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.message.id),
    );
    let distinct: std::collections::HashSet<_> = claimed.iter().collect();
    assert_eq!(distinct.len(), claimed.len(), "no delivery is claimed twice");
    assert_eq!(
        distinct,
        written.iter().collect(),
        "every stored message's delivery is claimed"
    );
}
