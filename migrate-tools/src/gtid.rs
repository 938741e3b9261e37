//! `follow --gtid`: where, in the source's binlogs, the transaction of a given GTID ends, so following starts
//! with the next one. Operators keep GTIDs across a failover to another server, where file names and offsets
//! differ.
//!
//! Found by reading `SHOW BINLOG EVENTS`, newest file first: slow on large binlogs, but it runs once, on the
//! operator's request, and works the same on MariaDB (`BEGIN GTID 0-1-42`) and MySQL
//! (`SET @@SESSION.GTID_NEXT= '3e11fa47-…:42'`).

use mysql_async::Conn;
use mysql_async::prelude::Queryable as _;

use crate::source::SourceError;

/// Events read per `SHOW BINLOG EVENTS` page.
const PAGE: usize = 10_000;

/// Checks the shape of one GTID: MariaDB `domain-server-seq` or MySQL `uuid:seq`.
pub fn parse(text: &str) -> Result<String, String> {
    let text = text.trim();
    let mariadb = text.split('-').count() == 3 && text.split('-').all(|n| n.parse::<u64>().is_ok());
    let mysql = text
        .split_once(':')
        .is_some_and(|(uuid, seq)| uuid.len() == 36 && seq.parse::<u64>().is_ok());
    if mariadb || mysql {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "{text:?} is not one GTID: MariaDB domain-server-seq (0-1-42) or MySQL uuid:seq; give the last \
             transaction already applied"
        ))
    }
}

/// The binlog position just after the transaction of `gtid`.
pub async fn position_after(conn: &mut Conn, gtid: &str) -> Result<(String, u64), SourceError> {
    let logs: Vec<mysql_async::Row> = conn.query("SHOW BINARY LOGS").await?;
    let names: Vec<String> = logs.iter().filter_map(|r| r.get::<String, _>(0)).collect();
    for name in names.iter().rev() {
        let mut transaction = Transaction::default();
        let mut offset = 0;
        loop {
            let events: Vec<mysql_async::Row> = conn
                .query(format!(
                    "SHOW BINLOG EVENTS IN '{}' LIMIT {offset}, {PAGE}",
                    name.replace('\'', "")
                ))
                .await?;
            for event in &events {
                // Read as bytes: a statement's text (Info) may hold any bytes a client sent, not UTF-8.
                let text = |i: usize| {
                    event
                        .get_opt::<Vec<u8>, _>(i)
                        .and_then(Result::ok)
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default()
                };
                let end = event.get_opt::<u64, _>(4).and_then(Result::ok).unwrap_or_default();
                if transaction.ends_with(gtid, &text(2), &text(5)) {
                    return Ok((name.clone(), end));
                }
            }
            if events.len() < PAGE {
                break;
            }
            offset += PAGE;
        }
    }
    Err(SourceError::Config(format!(
        "GTID {gtid} is not in the source's binlogs (purged, or not written there); follow from a position with \
         --start-position FILE:POS instead"
    )))
}

/// Where a scan stands: before the wanted GTID's event, or inside its transaction.
#[derive(Debug, Default)]
struct Transaction {
    found: bool,
    /// `BEGIN` seen (MariaDB puts it in the GTID event, MySQL in a Query event of its own).
    begun: bool,
}

impl Transaction {
    /// Takes the next event; true when it is the last of the wanted transaction.
    fn ends_with(&mut self, gtid: &str, kind: &str, info: &str) -> bool {
        if !self.found {
            // Whole words only: 0-1-4 must not match 0-1-42.
            let words = info.split(|c: char| c.is_whitespace() || c == '\'' || c == '=');
            self.found = kind.eq_ignore_ascii_case("gtid") && words.clone().any(|w| w == gtid);
            self.begun = self.found && info.starts_with("BEGIN");
            return false;
        }
        match kind {
            "Xid" => true,
            "Query" if info == "BEGIN" => {
                self.begun = true;
                false
            }
            // COMMIT ends a transaction; any other statement outside BEGIN is a standalone one (DDL).
            "Query" => info == "COMMIT" || !self.begun,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Transaction, parse};

    #[test]
    fn gtids_are_checked_and_found_by_whole_word() {
        assert!(parse("0-1-42").is_ok());
        assert!(parse("3E11FA47-71CA-11E1-9E33-C80AA9429562:23").is_ok());
        assert!(parse("0-1-42,1-1-7").is_err());
        assert!(parse("mariadb-bin.000001:4").is_err());

        let mut t = Transaction::default();
        assert!(!t.ends_with("0-1-4", "Gtid", "BEGIN GTID 0-1-42"));
        assert!(!t.ends_with("0-1-4", "Xid", "COMMIT /* xid=9 */"));
        assert!(!t.ends_with("0-1-4", "Gtid", "BEGIN GTID 0-1-4"));
        assert!(!t.ends_with("0-1-4", "Write_rows_v1", "table_id: 31 flags: STMT_END_F"));
        assert!(t.ends_with("0-1-4", "Xid", "COMMIT /* xid=10 */"));

        // MySQL DDL: a GTID event, then the statement itself.
        let mut t = Transaction::default();
        let mysql = "3e11fa47-71ca-11e1-9e33-c80aa9429562:23";
        assert!(!t.ends_with(mysql, "Gtid", &format!("SET @@SESSION.GTID_NEXT= '{mysql}'")));
        assert!(t.ends_with(mysql, "Query", "ALTER TABLE t ADD COLUMN c INT"));
    }
}
