//! [`open`]: picks the backend from the URL, creates what is missing and applies pending migrations.

use crate::config::StoreConfig;
use crate::error::StoreError;
use crate::mysql::MysqlStore;
use crate::sqlite::SqliteStore;
use crate::store::Store;

/// Opens the store named by `config.url`, creating the SQLite file and its directory if needed, and applies
/// pending migrations.
pub async fn open(config: &StoreConfig) -> Result<Box<dyn Store>, StoreError> {
    if config.url.starts_with("sqlite:") {
        Ok(Box::new(SqliteStore::open(config).await?))
    } else if config.url.starts_with("mysql:") || config.url.starts_with("mariadb:") {
        Ok(Box::new(MysqlStore::open(config).await?))
    } else {
        Err(StoreError::UnsupportedUrl)
    }
}
