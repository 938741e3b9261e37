//! Row changes on their way from the stream to the writer. Most are ready [`Op`]s; a row whose mapping reads
//! lookups is mapped only when its batch is flushed, after the looked-up rows are read (one query per lookup
//! for the whole batch), and a change to a looked-up table becomes fresh upserts of the rows that read it.

use std::collections::BTreeMap;

use mysql_async::Conn;
use mysql_async::prelude::Queryable as _;

use super::error::FollowError;
use crate::canonical::Mapper;
use crate::lookup::Lookups;
use crate::mapping::Row;
use crate::sink::{Action, Op};
use crate::source::{Source, SourceError};

/// One change of a source transaction.
// Unboxed on purpose, like `Action`: most changes are ready upserts, the large variant.
#[allow(clippy::large_enum_variant)]
pub(super) enum Change {
    /// Mapped already.
    Ready(Op),
    /// The new image of a row whose table mapping (`mapping`, an index into the mapping's tables) reads lookups.
    Enrich {
        /// The table mapping.
        mapping: usize,
        /// The row's primary key.
        pk: i64,
        /// The decoded image, without its lookups yet.
        row: Row,
    },
    /// Images (before and after) of a changed row of a table that mappings look up.
    LookedUp {
        /// The looked-up table.
        table: String,
        /// The images.
        images: Vec<Row>,
    },
}

/// Turns a batch of changes into ops, reading what lookups need from the source.
pub(super) struct Resolver {
    source: Source,
    lookups: Lookups,
    conn: Option<Conn>,
}

impl Resolver {
    pub(super) fn new(source: &Source) -> Self {
        Self {
            source: source.clone(),
            lookups: Lookups::new(source.database()),
            conn: None,
        }
    }

    /// The ops of `changes`, in order; the rows that read a changed looked-up row come last, read from the
    /// source as it is now (at least as new as any image in the batch).
    pub(super) async fn resolve(&mut self, mapper: &Mapper, changes: Vec<Change>) -> Result<Vec<Op>, FollowError> {
        if changes.iter().all(|c| matches!(c, Change::Ready(_))) {
            return Ok(changes
                .into_iter()
                .filter_map(|c| match c {
                    Change::Ready(op) => Some(op),
                    _ => None,
                })
                .collect());
        }
        let conn = connection(&self.source, &mut self.conn).await?;
        let tables = &mapper.mapping().tables;
        // The rows of one table mapping are enriched together (one query per lookup); each slot remembers
        // where its row went.
        #[allow(clippy::large_enum_variant)]
        enum Slot {
            Op(Op),
            Enriched { mapping: usize, pk: i64, nth: usize },
        }
        let mut groups: BTreeMap<usize, Vec<Row>> = BTreeMap::new();
        let mut changed: BTreeMap<String, Vec<Row>> = BTreeMap::new();
        let mut slots = Vec::with_capacity(changes.len());
        for change in changes {
            match change {
                Change::Ready(op) => slots.push(Slot::Op(op)),
                Change::Enrich { mapping, pk, row } => {
                    let group = groups.entry(mapping).or_default();
                    slots.push(Slot::Enriched {
                        mapping,
                        pk,
                        nth: group.len(),
                    });
                    group.push(row);
                }
                Change::LookedUp { table, images } => changed.entry(table).or_default().extend(images),
            }
        }
        for (&mapping, rows) in &mut groups {
            self.lookups
                .enrich(conn, &tables[mapping], rows)
                .await
                .map_err(FollowError::Lookup)?;
        }
        let mut ops = Vec::with_capacity(slots.len());
        for slot in slots {
            match slot {
                Slot::Op(op) => ops.push(op),
                Slot::Enriched { mapping, pk, nth } => ops.push(upsert(mapper, mapping, pk, &groups[&mapping][nth])?),
            }
        }
        for (table, images) in changed {
            let dependents = self
                .lookups
                .dependents(conn, mapper.mapping(), &table, &images)
                .await
                .map_err(FollowError::Lookup)?;
            for (mapping, row) in dependents {
                let pk = tables[mapping].pk(&row)?;
                ops.push(upsert(mapper, mapping, pk, &row)?);
            }
        }
        Ok(ops)
    }
}

fn upsert(mapper: &Mapper, mapping: usize, pk: i64, row: &Row) -> Result<Op, FollowError> {
    let t = &mapper.mapping().tables[mapping];
    Ok(Op {
        source: mapper.source_name(t),
        kind: t.kind,
        pk,
        action: Action::Upsert(mapper.map(t, row)?),
    })
}

/// The lookup connection, opened on first use with the session settings the snapshot decodes with: raw column
/// bytes and TIMESTAMPs in UTC.
async fn connection<'c>(source: &Source, conn: &'c mut Option<Conn>) -> Result<&'c mut Conn, FollowError> {
    if conn.is_none() {
        let mut fresh = source.connect().await?;
        fresh
            .query_drop("SET time_zone = '+00:00', character_set_results = NULL")
            .await
            .map_err(SourceError::from)?;
        *conn = Some(fresh);
    }
    Ok(conn.as_mut().expect("connected above"))
}
