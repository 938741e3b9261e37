//! `verify`: for every mapped table, row counts and per-chunk checksums of the mapped data, source against
//! target. The source side maps each source row again (ids are derived, so the expected target row is known
//! exactly); the target side reads back what the store holds. A difference names the table, the key range and
//! the keys. This fast mode agrees with whatever the mapping did; [`fields`] (`--mode source`) checks every
//! mapped field against the source itself.

pub mod fields;

use std::collections::BTreeMap;

use mysql_async::prelude::Queryable as _;
use serde::Serialize;

use crate::canonical::Mapper;
use crate::lookup::Lookups;
use crate::sink::Target;
use crate::snapshot::{SnapshotError, decode_row, ident};
use crate::source::{self, Source};

/// Rows per compared chunk.
pub const CHUNK: usize = 2_000;

/// The result of `verify` for one mapped table.
#[derive(Debug, Clone, Serialize)]
pub struct TableReport {
    /// `<mapping>:<table>/<kind>`.
    pub source: String,
    /// Rows the source holds (mapped rows; `skip`ped ones excluded).
    pub source_rows: u64,
    /// Rows the target holds for this source.
    pub target_rows: u64,
    /// Chunks compared.
    pub chunks: u64,
    /// Chunks whose checksum differed.
    pub mismatched_chunks: u64,
    /// Up to 20 keys that differ, are missing, or are extra.
    pub sample_keys: Vec<i64>,
}

impl TableReport {
    /// Zero mismatches and equal counts.
    pub fn ok(&self) -> bool {
        self.mismatched_chunks == 0 && self.source_rows == self.target_rows
    }
}

/// Compares every mapped table. A consistent read on the source; the target should be quiescent (or the
/// follower caught up) for a clean result.
pub async fn run(source: &Source, target: &Target, mapper: &Mapper) -> Result<Vec<TableReport>, SnapshotError> {
    let mut conn = source.connect().await?;
    source::preflight(&mut conn).await?;
    conn.query_drop("SET time_zone = '+00:00', character_set_results = NULL")
        .await?;
    conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT").await?;
    let mut reports = Vec::new();
    let mut lookups = Lookups::new(source.database());
    for m in &mapper.mapping().tables {
        let columns = source::table_columns(&mut conn, source.database(), &m.table).await?;
        let name = mapper.source_name(m);
        let mut report = TableReport {
            source: name.clone(),
            source_rows: 0,
            target_rows: u64::try_from(target.count(&name, m.kind).await?).unwrap_or(0),
            chunks: 0,
            mismatched_chunks: 0,
            sample_keys: Vec::new(),
        };
        let sql = format!(
            "SELECT * FROM `{t}` WHERE `{k}` > ? ORDER BY `{k}` LIMIT {CHUNK}",
            t = ident(&m.table),
            k = ident(&m.key)
        );
        let mut last = i64::MIN;
        loop {
            let rows: Vec<mysql_async::Row> = conn.exec(&sql, (last,)).await?;
            let full = rows.len() == CHUNK;
            let lo = last.saturating_add(1);
            let mut expected = BTreeMap::new();
            let mut decoded = Vec::with_capacity(rows.len());
            for row in rows {
                decoded.push(decode_row(&row.unwrap(), &columns, Some(m), &m.table)?);
            }
            if !m.lookups.is_empty() {
                lookups.enrich(&mut conn, m, &mut decoded).await?;
            }
            for row in decoded {
                let pk = m.pk(&row)?;
                last = last.max(pk);
                if let Some(digest) = mapper.map(m, &row)?.digest() {
                    expected.insert(pk, digest);
                }
            }
            // The last chunk extends to the end of the key space, so extra target rows beyond it are seen.
            let hi = if full { last } else { i64::MAX };
            let actual: BTreeMap<i64, String> = target.digests(&name, m.kind, lo, hi).await?.into_iter().collect();
            report.source_rows += expected.len() as u64;
            report.chunks += 1;
            if expected != actual {
                report.mismatched_chunks += 1;
                let keys = expected
                    .keys()
                    .chain(actual.keys())
                    .filter(|k| expected.get(k) != actual.get(k));
                for k in keys {
                    if report.sample_keys.len() < 20 && !report.sample_keys.contains(k) {
                        report.sample_keys.push(*k);
                    }
                }
            }
            if !full {
                break;
            }
        }
        reports.push(report);
    }
    conn.query_drop("COMMIT").await?;
    Ok(reports)
}
