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
    a_reply_is_stored_with_its_message_and_once,
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

/// A bot reply known before its message is stored (a WeChat keyword answer) is written with the message: in
/// its conversation, linked to it and keyed on it, with its own deliveries; a retried message writes neither
/// again. A burst of them commits together (on SQLite, in the writer's groups).
async fn a_reply_is_stored_with_its_message_and_once(store: &dyn Store) {
    use protofuse_store::Reply;
    fn reply(text: &str) -> Reply {
        let mut envelope = inbound("protofuse", text, "placeholder");
        envelope.direction = Direction::Outbound;
        envelope.sender.role = Role::Bot;
        Reply::new(envelope, "test-reply").with_destinations(vec!["bot-hook".to_owned()])
    }
    let sent = inbound("nora", "hours", "nora-1");
    let replied = store
        .insert_answered(sent.clone(), Utc::now(), Vec::new(), reply("9-18"))
        .await
        .unwrap();
    assert!(!replied.inserted.duplicate);
    let message = replied.inserted.message;
    let answer = replied.reply.unwrap().expect("a new message's reply is stored");
    assert_eq!(answer.conversation_id, message.conversation_id);
    assert_eq!(answer.metadata["in_reply_to"], serde_json::json!(message.id));
    assert_eq!(
        answer.idempotency_key,
        IdempotencyKey::answering("test-reply", message.id)
    );
    assert_eq!(answer.content, Content::Text { text: "9-18".into() });
    let page = store
        .messages(message.conversation_id, PageRequest::default())
        .await
        .unwrap();
    assert_eq!(
        page.items,
        vec![message.clone(), answer.clone()],
        "the reply follows its message"
    );

    let again = store
        .insert_answered(sent, Utc::now(), Vec::new(), reply("9-18"))
        .await
        .unwrap();
    assert!(again.inserted.duplicate);
    assert_eq!(again.inserted.message, message);
    assert!(
        matches!(again.reply, Ok(None)),
        "a duplicate writes no reply: {:?}",
        again.reply
    );

    let burst = futures::future::join_all((0..40).map(|i| {
        let sent = inbound(&format!("burst-{i}"), "hours", &format!("answered-{i}"));
        store.insert_answered(sent, Utc::now(), Vec::new(), reply(&format!("reply {i}")))
    }))
    .await;
    for (i, replied) in burst.into_iter().enumerate() {
        let replied = replied.unwrap();
        let answer = replied.reply.unwrap().unwrap();
        assert_eq!(answer.conversation_id, replied.inserted.message.conversation_id);
        assert_eq!(
            answer.content,
            Content::Text {
                text: format!("reply {i}")
            }
        );
    }

    let now = Utc::now();
    let lease = chrono::Duration::seconds(600);
    let claimed = store.claim("bot-hook", now, now + lease, 100).await.unwrap();
    assert_eq!(
        claimed.len(),
        41,
        "one delivery per stored reply, none for the duplicate"
    );
    assert!(claimed.iter().any(|c| c.message.id == answer.id));
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

/// MySQL writes messages in batches (`crates/store/src/mysql/batch.rs`), one transaction of set-based statements
/// per batch, falling back to a transaction per message for what a batch cannot settle in bulk. These tests
/// drive that path through the store's interface on the private MariaDB: many concurrent writers, duplicates
/// and reused keys inside one batch, a full queue, and two stores on one database (two server nodes).
mod mysql_batches {
    use std::collections::{HashMap, HashSet};
    use std::sync::atomic::{AtomicU64, Ordering};

    use protofuse_model::MessageId;

    use super::*;

    async fn open_at(url: &str, configure: impl FnOnce(&mut StoreConfig)) -> Arc<dyn Store> {
        let mut config = settings(url.to_owned());
        configure(&mut config);
        Arc::from(protofuse_store::open(&config).await.unwrap())
    }

    async fn open() -> Arc<dyn Store> {
        let url = mariadb::server().await.fresh_database().await;
        open_at(&url, |_| {}).await
    }

    /// Every delivery queued for `destination`, by message.
    async fn queued(store: &dyn Store, destination: &str) -> Vec<MessageId> {
        let now = Utc::now();
        let claimed = store
            .claim(destination, now, now + chrono::Duration::seconds(600), 10_000)
            .await
            .unwrap();
        claimed.into_iter().map(|c| c.message.id).collect()
    }

    /// The customer's conversations, whatever their status.
    async fn conversations_of(store: &dyn Store, customer: &str) -> Vec<ConversationId> {
        let filter = ConversationFilter {
            customer_id: Some(customer.to_owned()),
            ..ConversationFilter::default()
        };
        let page = PageRequest {
            limit: 100,
            ..PageRequest::default()
        };
        let found = store.conversations(&filter, page).await.unwrap();
        found.items.into_iter().map(|c| c.id).collect()
    }

    async fn messages_in(store: &dyn Store, conversation: ConversationId) -> Vec<protofuse_model::Message> {
        let page = PageRequest {
            limit: 500,
            ..PageRequest::default()
        };
        store.messages(conversation, page).await.unwrap().items
    }

    /// A current-thread runtime runs no other task while `join_all` first polls its writes, so every one of
    /// them is queued before a writer task wakes, and they reach MariaDB as one batch.
    #[tokio::test]
    async fn one_batch_settles_duplicates_reused_keys_and_unknown_conversations_write_by_write() {
        let store = open().await;
        let before = store
            .insert_message(inbound("ann", "hello", "before"), Utc::now())
            .await
            .unwrap()
            .message;
        let missing = ConversationId::new();
        let mut unknown = inbound("bob", "to nowhere", "unknown");
        unknown.conversation_id = Some(missing);
        let mut reply = inbound("agent-1", "on it", "reply");
        reply.conversation_id = Some(before.conversation_id);
        reply.direction = Direction::Outbound;
        reply.sender.role = Role::Agent;
        let writes = vec![
            inbound("ann", "hello", "before"),   // 0: a key stored before, same content
            inbound("ann", "changed", "before"), // 1: a key stored before, other content
            inbound("cat", "one", "twice"),      // 2: stored
            inbound("cat", "one", "twice"),      // 3: the same key again in the batch
            inbound("cat", "other", "twice"),    // 4: the same key in the batch, other content
            unknown,                             // 5: names a conversation that does not exist
            reply,                               // 6: names ann's conversation
            inbound("dan", "first", "dan-1"),    // 7-9: a new customer, three messages
            inbound("dan", "second", "dan-2"),
            inbound("dan", "third", "dan-3"),
        ];
        let hook = || vec!["hook".to_owned()];
        let results =
            futures::future::join_all(writes.into_iter().map(|e| store.insert_routed(e, Utc::now(), hook()))).await;

        let ok = |i: usize| results[i].as_ref().unwrap_or_else(|e| panic!("write {i}: {e:?}"));
        assert!(
            ok(0).duplicate && ok(0).message == before,
            "a stored key answers with its message"
        );
        assert!(matches!(results[1], Err(StoreError::KeyReused)), "{:?}", results[1]);
        assert!(!ok(2).duplicate);
        assert!(ok(3).duplicate && ok(3).message == ok(2).message);
        assert!(matches!(results[4], Err(StoreError::KeyReused)), "{:?}", results[4]);
        assert!(
            matches!(results[5], Err(StoreError::ConversationNotFound(id)) if id == missing),
            "{:?}",
            results[5]
        );
        assert!(
            store.conversation(missing).await.unwrap().is_none(),
            "nothing was created for it"
        );
        assert_eq!(ok(6).message.conversation_id, before.conversation_id);

        let dans = conversations_of(&*store, "dan").await;
        assert_eq!(dans.len(), 1, "one conversation opened for all of dan's messages");
        let stored: Vec<_> = messages_in(&*store, dans[0]).await.into_iter().map(|m| m.id).collect();
        let sent: Vec<_> = (7..10).map(|i| ok(i).message.id).collect();
        assert_eq!(stored, sent, "ids drawn in the batch's order");
        assert_eq!(messages_in(&*store, before.conversation_id).await.len(), 2);
        assert_eq!(conversations_of(&*store, "cat").await.len(), 1);

        let mut expected: Vec<_> = [2, 6, 7, 8, 9].into_iter().map(|i| ok(i).message.id).collect();
        let mut deliveries = queued(&*store, "hook").await;
        expected.sort();
        deliveries.sort();
        assert_eq!(
            deliveries, expected,
            "one delivery per stored message, none for the answered ones"
        );
    }

    /// Many writers at once, each message delivered twice concurrently, several in flight per customer: every
    /// key is stored exactly once, each customer has one conversation holding all of their messages, each
    /// stored message has its delivery, and a message acknowledged before another of its conversation was sent
    /// has the lower id.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writers_store_each_key_once_in_one_conversation_per_customer() {
        const CUSTOMERS: usize = 12;
        const SENDERS: usize = 3;
        const EACH: usize = 8;
        let store = open().await;
        // A logical clock: an acknowledgement numbered below a send happened before it.
        let clock = Arc::new(AtomicU64::new(0));
        let mut senders = Vec::new();
        for customer in 0..CUSTOMERS {
            for sender in 0..SENDERS {
                let (store, clock) = (Arc::clone(&store), Arc::clone(&clock));
                senders.push(tokio::spawn(async move {
                    let mut sent = Vec::new();
                    for n in 0..EACH {
                        let key = format!("c{customer}-s{sender}-{n}");
                        let envelope = inbound(&format!("crowd-{customer}"), &key, &key);
                        let issued = clock.fetch_add(1, Ordering::SeqCst);
                        let hook = vec!["hook".to_owned()];
                        let (a, b) = tokio::join!(
                            store.insert_routed(envelope.clone(), Utc::now(), hook.clone()),
                            store.insert_routed(envelope, Utc::now(), hook),
                        );
                        let acked = clock.fetch_add(1, Ordering::SeqCst);
                        let (a, b) = (a.unwrap(), b.unwrap());
                        assert_eq!(a.message, b.message, "{key}: both deliveries answer the same message");
                        assert!(
                            a.duplicate != b.duplicate,
                            "{key}: exactly one of two deliveries stores it"
                        );
                        sent.push((a.message, issued, acked));
                    }
                    sent
                }));
            }
        }
        let mut sent = Vec::new();
        for sender in senders {
            sent.extend(sender.await.unwrap());
        }

        let mut by_conversation: HashMap<ConversationId, Vec<_>> = HashMap::new();
        for (message, issued, acked) in &sent {
            by_conversation
                .entry(message.conversation_id)
                .or_default()
                .push((message.id, *issued, *acked));
        }
        assert_eq!(by_conversation.len(), CUSTOMERS, "one conversation per customer");
        for customer in 0..CUSTOMERS {
            let conversations = conversations_of(&*store, &format!("crowd-{customer}")).await;
            assert_eq!(conversations.len(), 1, "customer {customer}");
            let stored = messages_in(&*store, conversations[0]).await;
            assert_eq!(
                stored.len(),
                SENDERS * EACH,
                "customer {customer}: each key stored once"
            );
        }
        for writes in by_conversation.values() {
            for (first, _, acked) in writes {
                for (then, issued, _) in writes {
                    if acked < issued {
                        assert!(first < then, "{first} was acknowledged before {then} was sent");
                    }
                }
            }
        }
        let deliveries = queued(&*store, "hook").await;
        let distinct: HashSet<_> = deliveries.iter().collect();
        assert_eq!(distinct.len(), deliveries.len(), "no delivery queued twice");
        assert_eq!(
            distinct,
            sent.iter().map(|(m, _, _)| &m.id).collect(),
            "every message's delivery is queued"
        );
    }

    /// Two stores on one database are two server nodes: new customers' first messages arrive at both at once,
    /// and one key at both. The `open_key` unique key settles which node opens each conversation; the loser's
    /// batch falls back to the per-message path, which joins the winner's.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_nodes_racing_to_open_a_customers_conversation_open_one() {
        const CUSTOMERS: usize = 16;
        const EACH: usize = 4;
        let url = mariadb::server().await.fresh_database().await;
        let nodes = [open_at(&url, |_| {}).await, open_at(&url, |_| {}).await];
        let mut writes = Vec::new();
        for customer in 0..CUSTOMERS {
            let who = format!("racer-{customer}");
            for (n, node) in nodes.iter().enumerate() {
                for i in 0..EACH {
                    let key = format!("{who}-node{n}-{i}");
                    writes.push((Arc::clone(node), inbound(&who, &key, &key)));
                }
                let shared = format!("{who}-shared");
                writes.push((Arc::clone(node), inbound(&who, "both nodes", &shared)));
            }
        }
        let results = futures::future::join_all(writes.into_iter().map(|(node, envelope)| async move {
            node.insert_routed(envelope, Utc::now(), vec!["hook".to_owned()]).await
        }))
        .await;
        let stored: Vec<_> = results.into_iter().map(Result::unwrap).collect();

        for customer in 0..CUSTOMERS {
            let who = format!("racer-{customer}");
            let conversations = conversations_of(&*nodes[0], &who).await;
            assert_eq!(
                conversations.len(),
                1,
                "{who}: one conversation, whichever node opened it"
            );
            let messages = messages_in(&*nodes[1], conversations[0]).await;
            assert_eq!(
                messages.len(),
                2 * EACH + 1,
                "{who}: every key once, the shared one too"
            );
            let shared: Vec<_> = stored
                .iter()
                .filter(|s| s.message.idempotency_key == IdempotencyKey::derive("test", &[&format!("{who}-shared")]))
                .collect();
            assert_eq!(shared.len(), 2);
            assert_eq!(
                shared.iter().filter(|s| !s.duplicate).count(),
                1,
                "{who}: one node stored it"
            );
            assert_eq!(shared[0].message, shared[1].message);
        }
        let deliveries = queued(&*nodes[0], "hook").await;
        let distinct: HashSet<_> = deliveries.iter().collect();
        assert_eq!(
            deliveries.len(),
            CUSTOMERS * (2 * EACH + 1),
            "one delivery per stored message"
        );
        assert_eq!(distinct.len(), deliveries.len());
    }

    /// A writer keeps its connection from batch to batch. When the server drops it (here: every connection of
    /// the store killed; in production, a restart), the batch on it is written one by one on fresh pool
    /// connections and the writer reconnects: every write is answered and stored.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_go_on_after_the_server_kills_the_writers_connections() {
        use sqlx::Connection as _;
        let server = mariadb::server().await;
        let url = server.fresh_database().await;
        let store = open_at(&url, |_| {}).await;
        store
            .insert_message(inbound("kim", "before", "kill-0"), Utc::now())
            .await
            .unwrap();
        let database = url.rsplit('/').next().unwrap().to_owned();
        let mut admin = sqlx::MySqlConnection::connect(&server.admin_url()).await.unwrap();
        let ids: Vec<(i64,)> = sqlx::query_as("SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ?")
            .bind(&database)
            .fetch_all(&mut admin)
            .await
            .unwrap();
        assert!(!ids.is_empty(), "the store has connections to kill");
        for (id,) in ids {
            sqlx::raw_sql(&format!("KILL CONNECTION {id}"))
                .execute(&mut admin)
                .await
                .unwrap();
        }
        for round in 1..=3 {
            let writes = (0..8).map(|i| {
                let key = format!("kill-{round}-{i}");
                store.insert_message(inbound("kim", &key, &key), Utc::now())
            });
            for result in futures::future::join_all(writes).await {
                assert!(result.is_ok(), "round {round}: {result:?}");
            }
        }
        let conversations = conversations_of(&*store, "kim").await;
        assert_eq!(messages_in(&*store, conversations[0]).await.len(), 1 + 3 * 8);
    }

    /// A full queue refuses at once: with room for two writes, the two queued are stored and the rest are
    /// `Overloaded` without waiting (a current-thread runtime queues all of them before a writer task runs).
    #[tokio::test]
    async fn a_full_queue_refuses_at_once_and_stores_what_it_took() {
        let url = mariadb::server().await.fresh_database().await;
        let store = open_at(&url, |c| c.write_queue = 2).await;
        let writes = (0..6).map(|i| {
            let key = format!("flood-{i}");
            store.insert_message(inbound("flood", &key, &key), Utc::now())
        });
        let results = futures::future::join_all(writes).await;
        assert!(results[..2].iter().all(Result::is_ok), "{results:?}");
        assert!(
            results[2..].iter().all(|r| matches!(r, Err(StoreError::Overloaded))),
            "{results:?}"
        );
        let conversations = conversations_of(&*store, "flood").await;
        assert_eq!(messages_in(&*store, conversations[0]).await.len(), 2);
    }
}
