//! The MySQL/MariaDB backend, for production. One pool serves reads and writes; InnoDB handles concurrency.

use std::str::FromStr;

use protofuse_model::{Conversation, ConversationId, ConversationStatus, Envelope, Message, MessageId, Timestamp};
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};

use super::queries::{ConversationTuple, impl_store, split_page, tuple_to_row};
use super::{ConversationFilter, Inserted, Order, Page, PageRequest, Store, StoreError, StoreSettings, codec};

/// The MySQL/MariaDB store.
#[derive(Debug, Clone)]
pub struct MysqlStore {
    reader: MySqlPool,
    writer: MySqlPool,
}

impl MysqlStore {
    /// Connects to the database named by `settings.url` (`mysql://` or `mariadb://`) and migrates it.
    pub async fn open(settings: &StoreSettings) -> Result<Self, StoreError> {
        let url = settings.url.replacen("mariadb://", "mysql://", 1);
        let options = MySqlConnectOptions::from_str(&url)?.charset("utf8mb4");
        let pool = MySqlPoolOptions::new()
            .max_connections(settings.max_connections.max(1))
            .acquire_timeout(settings.acquire_timeout)
            .connect_with(options)
            .await?;
        sqlx::migrate!("src/store/migrations/mysql")
            .run(&pool)
            .await
            .map_err(StoreError::Migrate)?;
        Ok(Self {
            reader: pool.clone(),
            writer: pool,
        })
    }
}

impl_store!(MysqlStore, sqlx::MySql, "mysql");
