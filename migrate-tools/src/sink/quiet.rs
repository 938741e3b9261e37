//! Connection options both target backends share.

/// The importer's statements are batches of thousands of rows, so sqlx's slow-statement warning would print
/// tens of kilobytes of SQL (and row data) per line; its own progress lines report the rate instead. Slow
/// statements stay visible at debug level (`RUST_LOG=sqlx=debug`).
pub(super) fn quiet_slow_statements<O: sqlx::ConnectOptions>(options: O) -> O {
    options.log_slow_statements(log::LevelFilter::Debug, std::time::Duration::from_secs(1))
}
