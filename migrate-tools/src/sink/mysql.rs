//! MySQL/MariaDB target: upserts with `ON DUPLICATE KEY UPDATE`, `foreign_key_checks` off on the importer's own
//! sessions (messages may arrive before their conversation row; a placeholder fills the gap in the same
//! transaction), READ COMMITTED like the store, so parallel batches take no gap locks on the unique keys they
//! probe and insert into; `sql_log_bin` off too when the operator asks for `--no-target-binlog`.

use std::str::FromStr as _;

use sqlx::Executor as _;
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};

const INSERT_IGNORE: &str = "INSERT IGNORE";

/// What `--no-target-binlog` runs on every importer session.
const SKIP_BINLOG: &str = "SET SESSION sql_log_bin = 0";

/// Parallel snapshot writers the pool allows (plus one connection for bookkeeping reads).
pub(super) const MAX_WRITERS: usize = 4;

const DDL: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS import_checkpoint (name VARCHAR(191) NOT NULL PRIMARY KEY, file VARCHAR(255), \
     pos BIGINT, gtid VARCHAR(1024), snapshot_done BIGINT NOT NULL, rows_applied BIGINT NOT NULL, \
     events_applied BIGINT NOT NULL, last_event_at BIGINT, errors BIGINT NOT NULL, last_error TEXT) \
     ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci",
    "CREATE TABLE IF NOT EXISTS import_snapshot (name VARCHAR(191) NOT NULL, source VARCHAR(191) NOT NULL, \
     last_pk BIGINT NOT NULL, PRIMARY KEY (name, source)) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin",
    "CREATE TABLE IF NOT EXISTS import_resync (name VARCHAR(191) NOT NULL, tbl VARCHAR(191) NOT NULL, \
     requested_at BIGINT NOT NULL, done_at BIGINT, copied BIGINT, PRIMARY KEY (name, tbl)) \
     ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin",
    "CREATE TABLE IF NOT EXISTS import_rows (source VARCHAR(191) NOT NULL, pk BIGINT NOT NULL, \
     canonical_id CHAR(36) CHARACTER SET ascii NOT NULL, PRIMARY KEY (source, pk)) \
     ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin",
    "CREATE TABLE IF NOT EXISTS import_parties (source VARCHAR(191) NOT NULL, pk BIGINT NOT NULL, \
     role VARCHAR(16) NOT NULL, external_id VARCHAR(191) NOT NULL, display_name VARCHAR(191), email VARCHAR(255), \
     raw LONGTEXT NOT NULL, PRIMARY KEY (source, pk)) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin",
    "CREATE TABLE IF NOT EXISTS import_lease (name VARCHAR(191) NOT NULL PRIMARY KEY, holder VARCHAR(255) NOT NULL, \
     expires_at BIGINT NOT NULL)",
];

fn upsert_tail(_conflict: &str, columns: &[&str]) -> String {
    let sets: Vec<String> = columns.iter().map(|c| format!("{c} = VALUES({c})")).collect();
    format!(" ON DUPLICATE KEY UPDATE {}", sets.join(", "))
}

fn greatest_tail(_conflict: &str, column: &str) -> String {
    format!(" ON DUPLICATE KEY UPDATE {column} = GREATEST({column}, VALUES({column}))")
}

pub(super) async fn open(url: &str, binlog: bool) -> Result<MySqlPool, super::error::TargetError> {
    let url = url.replacen("mariadb://", "mysql://", 1);
    let options = super::quiet::quiet_slow_statements(MySqlConnectOptions::from_str(&url)?.charset("utf8mb4"));
    if !binlog {
        // Checked on a connection of its own first, so that a missing privilege is reported as such and not
        // as a failure to connect.
        let mut conn = sqlx::ConnectOptions::connect(&options).await?;
        conn.execute(SKIP_BINLOG)
            .await
            .map_err(super::error::TargetError::BinlogOff)?;
        sqlx::Connection::close(conn).await?;
    }
    let pool = MySqlPoolOptions::new()
        .max_connections(MAX_WRITERS as u32 + 1)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                conn.execute("SET SESSION foreign_key_checks = 0").await?;
                conn.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
                    .await?;
                if !binlog {
                    conn.execute(SKIP_BINLOG).await?;
                }
                Ok(())
            })
        })
        .connect_with(options)
        .await?;
    for statement in DDL {
        sqlx::query(statement).execute(&pool).await?;
    }
    Ok(pool)
}

super::writer::impl_writer!(sqlx::MySql);
super::writer::impl_apply!(sqlx::MySql, mysql);
