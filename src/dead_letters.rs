//! `protofuse dead-letters`: the operator's view of deliveries that gave up, read and changed directly in the
//! store (the same operations as the admin API, for when the server is down or not reachable).

use std::io::Write;

use crate::cli::DeadLetterAction;
use protofuse_store::outbox::{DeadLetter, DeadLetterFilter};
use protofuse_store::{Store, StoreError};

/// Why a dead-letter command failed.
#[derive(Debug, thiserror::Error)]
pub enum DeadLetterCommandError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No dead letter has that id.
    #[error("no dead letter {0}")]
    NotFound(i64),
    /// Writing the output failed.
    #[error("writing output failed")]
    Io(#[from] std::io::Error),
}

/// Runs `action` against `store`, printing to `out`.
pub async fn run(
    store: &dyn Store,
    action: DeadLetterAction,
    out: &mut dyn Write,
) -> Result<(), DeadLetterCommandError> {
    match action {
        DeadLetterAction::List {
            destination,
            limit,
            json,
        } => {
            let items = store.dead_letters(destination.as_deref(), 0, limit).await?;
            if !json {
                writeln!(
                    out,
                    "{:>8}  {:<20} {:>8}  {:<25} {:<36}  last error",
                    "id", "destination", "attempts", "dead at", "message"
                )?;
            }
            for d in items {
                if json {
                    writeln!(out, "{}", view(&d))?;
                } else {
                    let dead_at = d.dead_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                    writeln!(
                        out,
                        "{:>8}  {:<20} {:>8}  {:<25} {:<36}  {}",
                        d.id, d.destination, d.attempts, dead_at, d.message_id, d.last_error
                    )?;
                }
            }
        }
        DeadLetterAction::Show { id } => {
            let found = store
                .dead_letter(id)
                .await?
                .ok_or(DeadLetterCommandError::NotFound(id))?;
            writeln!(out, "{:#}", view(&found))?;
        }
        DeadLetterAction::Replay { ids, destination, all } => {
            let filter = DeadLetterFilter {
                ids: (!all && !ids.is_empty()).then_some(ids),
                destination: if all { None } else { destination },
            };
            let moved = store.replay_dead_letters(&filter, chrono::Utc::now()).await?;
            writeln!(out, "replayed {moved} dead letter(s)")?;
        }
        DeadLetterAction::Discard { ids } => {
            let filter = DeadLetterFilter {
                ids: Some(ids),
                destination: None,
            };
            let gone = store.discard_dead_letters(&filter).await?;
            writeln!(out, "discarded {gone} dead letter(s)")?;
        }
    }
    Ok(())
}

fn view(d: &DeadLetter) -> serde_json::Value {
    let mut v = serde_json::json!({
        "id": d.id,
        "message_id": d.message_id,
        "destination": d.destination,
        "attempts": d.attempts,
        "last_error": d.last_error,
        "created_at": d.created_at.to_rfc3339(),
        "dead_at": d.dead_at.to_rfc3339(),
    });
    if let Some(m) = &d.message {
        v["message"] = serde_json::to_value(m).unwrap_or_default();
    }
    v
}
