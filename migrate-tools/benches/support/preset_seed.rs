//! Source databases shaped like osTicket and FreeScout (the presets' test tables, `tests/support/presets.rs`),
//! filled with generated rows by the server itself (MariaDB's `seq_1_to_N` tables), for the presets' snapshot
//! rates. Per ten messages: one ticket or conversation; a third of the messages by customers, the rest agent
//! replies and internal notes by 20 agents, 1,000 customers.

use sqlx::MySqlPool;

#[path = "../../tests/support/presets.rs"]
#[allow(dead_code)]
mod presets;

/// Rows per generating statement (one statement per range keeps each transaction and its binlog event small).
const STEP: u64 = 100_000;

/// Creates the preset's tables in the (fresh) database behind `pool` and fills them with `messages` messages;
/// returns the message table, for the bare scan baseline.
pub(crate) async fn seed(pool: &MySqlPool, preset: &str, messages: u64) -> &'static str {
    let (ddl, statements, table) = match preset {
        "osticket" => (presets::OSTICKET.0, osticket(messages), "ost_thread_entry"),
        "freescout" => (presets::FREESCOUT.0, freescout(messages), "threads"),
        other => panic!("no seed for preset {other}"),
    };
    for statement in ddl.iter().map(|s| s.to_string()).chain(statements) {
        sqlx::raw_sql(&statement).execute(pool).await.unwrap();
    }
    table
}

/// `INSERT … SELECT … FROM seq_a_to_b` over `1..=n` in ranges of [`STEP`].
fn ranges(n: u64, statement: impl Fn(u64, u64) -> String) -> Vec<String> {
    (0..n.div_ceil(STEP))
        .map(|i| statement(i * STEP + 1, ((i + 1) * STEP).min(n)))
        .collect()
}

fn osticket(messages: u64) -> Vec<String> {
    let tickets = (messages / 10).max(1);
    let mut out = vec![
        "INSERT INTO ost_user (org_id, default_email_id, name, created, updated) \
         SELECT 0, seq, CONCAT('客户', seq), NOW(), NOW() FROM seq_1_to_1000"
            .to_owned(),
        "INSERT INTO ost_staff (username, firstname, lastname, email, created) \
         SELECT CONCAT('agent', seq), 'Agent', CONCAT('No', seq), CONCAT('a', seq, '@example.com'), NOW() \
         FROM seq_1_to_20"
            .to_owned(),
    ];
    out.extend(ranges(tickets, |a, b| {
        format!(
            "INSERT INTO ost_ticket (ticket_id, number, user_id, status_id, dept_id, topic_id, created, updated) \
             SELECT seq, seq, 1 + seq % 1000, 1, 1 + seq % 5, 1 + seq % 8, FROM_UNIXTIME(1600000000 + seq * 10), \
             NOW() FROM seq_{a}_to_{b}"
        )
    }));
    out.extend(ranges(tickets, |a, b| {
        format!(
            "INSERT INTO ost_thread (id, object_id, object_type, created, lastmessage) \
             SELECT seq, seq, 'T', FROM_UNIXTIME(1600000000 + seq * 10), FROM_UNIXTIME(1600003600 + seq * 10) \
             FROM seq_{a}_to_{b}"
        )
    }));
    out.extend(ranges(messages, |a, b| {
        format!(
            "INSERT INTO ost_thread_entry (thread_id, staff_id, user_id, type, poster, body, format, created, updated) \
             SELECT 1 + seq % {tickets}, IF(seq % 3 = 0, 0, 1 + seq % 20), IF(seq % 3 = 0, 1 + seq % 1000, 0), \
             ELT(1 + seq % 3, 'M', 'R', 'N'), IF(seq % 3 = 0, CONCAT('客户', 1 + seq % 1000), 'Agent'), \
             CONCAT('<p>您好，请问订单 ', seq, ' 什么时候发货？</p>'), 'html', FROM_UNIXTIME(1600000000 + seq), NOW() \
             FROM seq_{a}_to_{b}"
        )
    }));
    out
}

fn freescout(messages: u64) -> Vec<String> {
    let conversations = (messages / 10).max(1);
    let mut out = vec![
        "INSERT INTO customers (first_name, last_name, created_at) SELECT CONCAT('客', seq), 'Li', NOW() \
         FROM seq_1_to_1000"
            .to_owned(),
        "INSERT INTO users (first_name, last_name, email, created_at) \
         SELECT 'Sam', CONCAT('No', seq), CONCAT('u', seq, '@example.com'), NOW() FROM seq_1_to_20"
            .to_owned(),
    ];
    out.extend(ranges(conversations, |a, b| {
        format!(
            "INSERT INTO conversations (id, number, type, folder_id, status, subject, customer_email, mailbox_id, \
             user_id, customer_id, created_at, updated_at) SELECT seq, seq, 1, 1, 1 + seq % 4, CONCAT('Order ', seq), \
             CONCAT('c', seq % 1000, '@example.com'), 1 + seq % 3, 1 + seq % 20, 1 + seq % 1000, \
             FROM_UNIXTIME(1600000000 + seq * 10), FROM_UNIXTIME(1600003600 + seq * 10) FROM seq_{a}_to_{b}"
        )
    }));
    out.extend(ranges(messages, |a, b| {
        format!(
            "INSERT INTO threads (conversation_id, type, state, body, customer_id, created_by_customer_id, \
             created_by_user_id, created_at) SELECT 1 + seq % {conversations}, ELT(1 + seq % 3, 1, 2, 3), 2, \
             CONCAT('<div>您好，请问订单 ', seq, ' 什么时候发货？</div>'), 1 + seq % 1000, \
             IF(seq % 3 = 0, 1 + seq % 1000, NULL), IF(seq % 3 = 0, NULL, 1 + seq % 20), \
             FROM_UNIXTIME(1600000000 + seq) FROM seq_{a}_to_{b}"
        )
    }));
    out
}
