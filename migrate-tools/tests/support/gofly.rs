//! A go-fly source database (the real `message`/`visitor`/`user` DDL from go-fly's import.sql) widened with one
//! column of every type the importer must carry, plus a writer that changes it like a live system.

use rand::Rng as _;
use rand::rngs::StdRng;
use sqlx::MySqlPool;

/// The go-fly tables as shipped, plus fidelity columns on `message`.
pub(crate) const SCHEMA: &[&str] = &[
    "CREATE TABLE `user` (`id` int(11) NOT NULL AUTO_INCREMENT PRIMARY KEY, `name` varchar(50) NOT NULL DEFAULT '', \
     `password` varchar(50) NOT NULL DEFAULT '', `nickname` varchar(50) NOT NULL DEFAULT '', \
     `created_at` timestamp NULL DEFAULT NULL, `updated_at` timestamp NULL DEFAULT NULL, \
     `deleted_at` timestamp NULL DEFAULT NULL, `avator` varchar(100) NOT NULL DEFAULT '', UNIQUE KEY `name` (`name`)) \
     ENGINE=InnoDB DEFAULT CHARSET=utf8",
    "CREATE TABLE `visitor` (`id` int(11) NOT NULL AUTO_INCREMENT PRIMARY KEY, `name` varchar(50) NOT NULL DEFAULT '', \
     `avator` varchar(500) NOT NULL DEFAULT '', `source_ip` varchar(50) NOT NULL DEFAULT '', \
     `to_id` varchar(50) NOT NULL DEFAULT '', `created_at` timestamp NULL DEFAULT NULL, \
     `updated_at` timestamp NULL DEFAULT NULL, `deleted_at` timestamp NULL DEFAULT NULL, \
     `visitor_id` varchar(100) NOT NULL DEFAULT '', `status` tinyint(4) NOT NULL DEFAULT '0', \
     `refer` varchar(500) NOT NULL DEFAULT '', `city` varchar(100) NOT NULL DEFAULT '', \
     `client_ip` varchar(100) NOT NULL DEFAULT '', `extra` varchar(2048) NOT NULL DEFAULT '', \
     UNIQUE KEY `visitor_id` (`visitor_id`)) ENGINE=InnoDB DEFAULT CHARSET=utf8",
    "CREATE TABLE `message` (`id` int(11) NOT NULL AUTO_INCREMENT PRIMARY KEY, `kefu_id` varchar(100) NOT NULL DEFAULT '', \
     `visitor_id` varchar(100) NOT NULL DEFAULT '', `content` varchar(2048) NOT NULL DEFAULT '', \
     `created_at` timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP, `updated_at` timestamp NULL DEFAULT NULL, \
     `deleted_at` timestamp NULL DEFAULT NULL, `mes_type` enum('kefu','visitor') NOT NULL DEFAULT 'visitor', \
     `status` enum('read','unread') NOT NULL DEFAULT 'unread', \
     `n_tiny` tinyint, `n_uint` int unsigned, `n_big` bigint, `n_ubig` bigint unsigned, `amount` decimal(12,3), \
     `ratio` float, `score` double, `day` date, `at6` datetime(6), `ts3` timestamp(3) NULL DEFAULT NULL, \
     `dur` time(6), `yr` year, `t_latin1` varchar(50) CHARACTER SET latin1, `t_gbk` varchar(50) CHARACTER SET gbk, \
     `t_utf8` varchar(50) CHARACTER SET utf8mb3, `moji_gbk` varchar(100) CHARACTER SET latin1, \
     `moji_utf8` varchar(100) CHARACTER SET latin1, `blob_data` blob, `bin4` binary(4), `tags` set('a','b','c'), \
     `flags` bit(5), `doc` json, KEY `kefu_id` (`kefu_id`), KEY `visitor_id` (`visitor_id`)) \
     ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
];

/// The go-fly preset with the mojibake columns declared.
pub(crate) fn mapping() -> String {
    let preset = protofuse_migrate::cli::PRESETS
        .iter()
        .find(|(n, _)| *n == "gofly")
        .map(|(_, t)| *t)
        .unwrap();
    preset.replace(
        "[[tables]]\ntable = \"message\"\n",
        "[[tables]]\ntable = \"message\"\ncolumns.moji_gbk = { reinterpret = \"gbk\" }\n\
         columns.moji_utf8 = { reinterpret = \"utf8\" }\n",
    )
}

/// Creates the tables.
pub(crate) async fn create(pool: &MySqlPool) {
    for statement in SCHEMA {
        sqlx::raw_sql(statement).execute(pool).await.unwrap();
    }
}

/// One message with every fidelity column set to an edge value (`seq` varies the keys).
pub(crate) fn special_message(seq: u32) -> String {
    format!(
        "INSERT INTO message (kefu_id, visitor_id, content, created_at, mes_type, n_tiny, n_uint, n_big, n_ubig, \
         amount, ratio, score, day, at6, ts3, dur, yr, t_latin1, t_gbk, t_utf8, moji_gbk, moji_utf8, blob_data, bin4, \
         tags, flags, doc) VALUES ('agent1', 'v{seq}', '你好😀 special {seq}', '2024-01-02 03:04:05', 'kefu', -128, \
         4294967295, -9223372036854775808, 18446744073709551615, -12345.678, 1.1, 2.5e-300, '0000-00-00', \
         '2024-02-29 23:59:59.123456', '2023-12-31 16:00:00.500', '-838:59:58.999999', 0, _latin1 X'636166e9', \
         _gbk X'bfcdb7fe', '中文', _latin1 X'bfcdb7fe', _latin1 X'e4bda0e5a5bd', X'00ff10', X'61000000', 'a,c', \
         b'10101', '{{\"k\": [1, \"é\"]}}')"
    )
}

/// A plain message row for visitor `v`.
pub(crate) fn message(v: u32, rng: &mut StdRng) -> String {
    let agent = rng.random_range(1..=5);
    let kind = if rng.random_bool(0.5) { "kefu" } else { "visitor" };
    let secs = rng.random_range(1_600_000_000_u32..1_700_000_000);
    let n: i64 = rng.random();
    format!(
        "INSERT INTO message (kefu_id, visitor_id, content, created_at, mes_type, n_big, amount, ratio, at6, dur, \
         yr, t_gbk, moji_gbk) VALUES ('agent{agent}', 'v{v}', '消息 {n} img[/static/upload/{agent}.png]', \
         FROM_UNIXTIME({secs}), '{kind}', {n}, {}.{:03}, {}, FROM_UNIXTIME({secs}.25), '{}:00:01.5', {}, '客服{agent}', \
         _latin1 X'c4e3bac3')",
        n % 100_000,
        (n.unsigned_abs() % 1000),
        f64::from(rng.random_range(0..1000_u32)) / 8.0,
        n.rem_euclid(800) - 400,
        1901 + n.rem_euclid(250),
    )
}

/// Seeds `visitors` visitors, 5 agents and `messages` messages (plus one special message per visitor 1).
pub(crate) async fn seed(pool: &MySqlPool, visitors: u32, messages: u32, rng: &mut StdRng) {
    for a in 1..=5 {
        sqlx::raw_sql(&format!(
            "INSERT INTO `user` (name, password, nickname, created_at) VALUES ('agent{a}', MD5('x'), '客服{a}', NOW())"
        ))
        .execute(pool)
        .await
        .unwrap();
    }
    let rows: Vec<String> = (1..=visitors)
        .map(|v| {
            format!(
                "('访客{v}', 'v{v}', 'agent{}', {}, FROM_UNIXTIME({}))",
                v % 5 + 1,
                v % 2,
                1_600_000_000 + v
            )
        })
        .collect();
    for chunk in rows.chunks(500) {
        sqlx::raw_sql(&format!(
            "INSERT INTO visitor (name, visitor_id, to_id, status, created_at) VALUES {}",
            chunk.join(", ")
        ))
        .execute(pool)
        .await
        .unwrap();
    }
    sqlx::raw_sql(&special_message(1)).execute(pool).await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    for _ in 0..messages {
        let v = rng.random_range(1..=visitors);
        sqlx::raw_sql(&message(v, rng)).execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
}

/// One random change: insert, update, soft delete, delete, or a multi-statement transaction.
pub(crate) async fn random_change(pool: &MySqlPool, visitors: u32, rng: &mut StdRng) {
    let max_id: Option<i32> = sqlx::query_scalar("SELECT MAX(id) FROM message")
        .fetch_one(pool)
        .await
        .unwrap();
    let id = rng.random_range(1..=max_id.unwrap_or(1));
    let v = rng.random_range(1..=visitors);
    let sql = match rng.random_range(0..10) {
        0..=3 => message(v, rng),
        4 => format!("UPDATE message SET content = CONCAT(content, ' edited'), status = 'read' WHERE id = {id}"),
        5 => format!("UPDATE message SET created_at = created_at + INTERVAL 1 HOUR WHERE id = {id}"),
        6 => format!("UPDATE message SET deleted_at = NOW() WHERE id = {id}"),
        7 => format!("DELETE FROM message WHERE id = {id}"),
        8 => format!("UPDATE visitor SET status = 1 - status, name = CONCAT('改', name) WHERE id = {v}"),
        _ => {
            let mut tx = pool.begin().await.unwrap();
            for _ in 0..3 {
                sqlx::raw_sql(&message(v, rng)).execute(&mut *tx).await.unwrap();
            }
            sqlx::raw_sql(&format!("DELETE FROM message WHERE id = {id}"))
                .execute(&mut *tx)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            return;
        }
    };
    sqlx::raw_sql(&sql).execute(pool).await.unwrap();
}
