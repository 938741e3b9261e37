//! The DDL policy: what a statement found in the binlog (a Query event) means for the mapping. Statements are
//! read with a SQL parser (sqlparser, MySQL dialect), not by matching words: MySQL's `COLUMN` keyword is optional
//! (`ALTER TABLE t DROP poster`), and a column name may also be a word anywhere else in a statement.
//!
//! The policy is conservative, because the importer must never store a value it did not read faithfully:
//! changes that keep every mapped column readable are followed (FULL row metadata makes each later row image
//! self-describing); what removes, renames, or retypes a mapped column, or changes mapped rows without row
//! events (TRUNCATE, a filled new column the mapping reads), stops the importer; so does a statement that
//! names a mapped table and does not parse. Statements on other tables and databases are ignored.
//! Pure: no I/O.

use std::collections::BTreeMap;

use sqlparser::ast::{
    AlterColumnOperation, AlterTableOperation, ColumnOption, ObjectName, ObjectType, Statement as Sql,
};
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer};

use crate::mapping::{Mapping, split_lookup};

/// The longest statement quoted in a message.
const QUOTE_CHARS: usize = 300;

/// What a Query event means for the import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Statement {
    /// Starts a transaction.
    Begin,
    /// Ends a transaction (non-transactional engines, XA).
    Commit,
    /// Nothing for us: a comment, or a statement on unmapped tables or columns.
    Ignore,
    /// DDL on a mapped table that keeps every mapped column readable: the import goes on.
    Follow {
        /// The mapped table.
        table: String,
        /// New columns that give every existing row a value without row events. The mapping reads none of
        /// them, but `source.raw` of rows imported before keeps the old row image until they change.
        filled: Vec<String>,
    },
    /// DDL that makes going on unsafe.
    Stop(DdlStop),
}

/// Why a statement stops the importer, naming what the mapping would lose.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} on mapped table `{table}`{uses}: {statement}")]
pub struct DdlStop {
    /// The mapped table.
    pub table: String,
    /// The mapped column concerned, if one is.
    pub column: Option<String>,
    /// What the statement does to it.
    pub what: String,
    /// The mapping still reads the table as it now is, and only its rows changed without row events (a column
    /// retyped, a new mapped column filled): copying the table again puts the import right.
    pub resyncable: bool,
    /// The mapping keys that read the column (`tables.ost_thread_entry.fields.text`, the form `check-mapping` uses), rendered for the message.
    uses: String,
    /// The statement, quoted and truncated.
    statement: String,
}

/// Every source column the mapping reads, by table, with the mapping keys that read it.
#[derive(Debug, Clone, Default)]
pub struct MappedColumns {
    /// Lower-cased table name to (lower-cased column, key) pairs.
    tables: BTreeMap<String, Vec<(String, String)>>,
}

impl MappedColumns {
    /// Collects the columns read by keys, fields (column or template placeholders) and column options.
    pub fn new(mapping: &Mapping) -> Self {
        let mut tables: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        for m in &mapping.tables {
            // `<alias>.<column>` is a column of the lookup's table.
            let mut add = |column: &str, key: String| {
                let (table, column) = match split_lookup(column) {
                    Some((alias, column)) => match m.lookups.get(alias) {
                        Some(lookup) => (lookup.table.as_str(), column),
                        None => return,
                    },
                    None => (m.table.as_str(), column),
                };
                tables
                    .entry(table.to_ascii_lowercase())
                    .or_default()
                    .push((column.to_ascii_lowercase(), key));
            };
            add(&m.key, format!("tables.{}.key", m.table));
            for (name, field) in &m.fields {
                if let Some(column) = &field.column {
                    add(column, format!("tables.{}.fields.{name}", m.table));
                }
                for placeholder in field.template.iter().flat_map(|t| placeholders(t)) {
                    add(placeholder, format!("tables.{}.fields.{name}", m.table));
                }
            }
            for column in m.columns.keys() {
                add(column, format!("tables.{}.columns.{column}", m.table));
            }
            for (alias, lookup) in &m.lookups {
                for column in lookup.owner_columns() {
                    add(column, format!("tables.{}.lookups.{alias}", m.table));
                }
                add(
                    &format!("{alias}.{}", lookup.key),
                    format!("tables.{}.lookups.{alias}.key", m.table),
                );
            }
        }
        Self { tables }
    }

    fn is_mapped(&self, table: &str) -> bool {
        self.tables.contains_key(&table.to_ascii_lowercase())
    }

    /// The keys that read `column` of `table`, empty when none does.
    fn keys(&self, table: &str, column: &str) -> Vec<&str> {
        let column = column.to_ascii_lowercase();
        self.tables
            .get(&table.to_ascii_lowercase())
            .into_iter()
            .flatten()
            .filter(|(c, _)| *c == column)
            .map(|(_, key)| key.as_str())
            .collect()
    }

    fn table_names(&self) -> impl Iterator<Item = &str> {
        self.tables.keys().map(String::as_str)
    }
}

fn placeholders(template: &str) -> impl Iterator<Item = &str> {
    template
        .split('{')
        .skip(1)
        .filter_map(|part| part.split_once('}').map(|(name, _)| name))
}

/// Where a statement runs: the database of the import, and the default database of the statement's session.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// The source database the mapping reads.
    pub database: &'a str,
    /// The Query event's default database (`USE`), which unqualified names belong to.
    pub schema: &'a str,
}

impl Scope<'_> {
    /// The table name of `name` if it is a table of the import's database.
    fn ours(&self, name: &ObjectName) -> Option<String> {
        let parts: Vec<&str> = name
            .0
            .iter()
            .filter_map(|p| p.as_ident().map(|i| i.value.as_str()))
            .collect();
        match parts.as_slice() {
            [table] if self.schema == self.database => Some((*table).to_owned()),
            [db, table] if *db == self.database => Some((*table).to_owned()),
            _ => None,
        }
    }
}

/// Classifies one Query event.
pub fn classify(query: &str, scope: Scope<'_>, mapped: &MappedColumns) -> Statement {
    let q = query.trim();
    let upper = q.to_ascii_uppercase();
    if upper == "BEGIN" || upper.starts_with("XA START") || upper.starts_with("XA BEGIN") {
        return Statement::Begin;
    }
    if upper == "COMMIT" || upper == "ROLLBACK" || upper.starts_with("XA COMMIT") || upper.starts_with("XA END") {
        return Statement::Commit;
    }
    let first = upper.split_whitespace().next().unwrap_or_default();
    // Comments (MariaDB's annotate dummies), savepoints, and maintenance that keeps every row as it is.
    if q.starts_with('#')
        || matches!(
            first,
            "SAVEPOINT" | "RELEASE" | "ANALYZE" | "OPTIMIZE" | "REPAIR" | "CHECK" | "FLUSH" | "GRANT" | "REVOKE"
        )
        || upper.starts_with("ROLLBACK TO")
    {
        return Statement::Ignore;
    }
    match Parser::parse_sql(&MySqlDialect {}, q) {
        Ok(statements) => {
            for statement in &statements {
                let verdict = classify_parsed(statement, scope, mapped, q);
                if verdict != Statement::Ignore {
                    return verdict;
                }
            }
            Statement::Ignore
        }
        Err(_) => {
            if let Some(verdict) = simplified_alter(q, scope, mapped) {
                return verdict;
            }
            match mentioned_table(q, scope, mapped) {
                Some(table) => stop(&table, None, "a statement the importer cannot parse", mapped, q),
                None => Statement::Ignore,
            }
        }
    }
}

/// Table options of MySQL/MariaDB's ALTER TABLE that change no row, which the parser does not know.
const ROW_KEEPING_OPTIONS: &[&str] = &[
    "ENGINE",
    "FORCE",
    "COMMENT",
    "ROW_FORMAT",
    "KEY_BLOCK_SIZE",
    "STATS_PERSISTENT",
    "STATS_AUTO_RECALC",
    "STATS_SAMPLE_PAGES",
    "CHECKSUM",
    "PAGE_CHECKSUM",
    "DELAY_KEY_WRITE",
    "PACK_KEYS",
    "TRANSACTIONAL",
    "PAGE_COMPRESSED",
    "PAGE_COMPRESSION_LEVEL",
    "AVG_ROW_LENGTH",
    "MAX_ROWS",
    "MIN_ROWS",
    "ENCRYPTED",
    "ENCRYPTION_KEY_ID",
    "CHARSET",
    "CHARACTER",
    "COLLATE",
    "DEFAULT",
];

/// An ALTER TABLE the parser refused, read again without what it does not know: `ONLINE` / `IGNORE`, `IF [NOT]
/// EXISTS`, and table options that keep every row (`ENGINE=InnoDB`, a default charset, `RENAME INDEX`).
/// `CONVERT TO CHARACTER SET` rewrites text columns without row events. `None` when it still does not parse.
fn simplified_alter(q: &str, scope: Scope<'_>, mapped: &MappedColumns) -> Option<Statement> {
    let tokens = Tokenizer::new(&MySqlDialect {}, q).tokenize().ok()?;
    let words: Vec<&Token> = tokens.iter().filter(|t| !matches!(t, Token::Whitespace(_))).collect();
    let upper = |t: &Token| match t {
        Token::Word(w) if w.quote_style.is_none() => w.value.to_ascii_uppercase(),
        _ => String::new(),
    };
    let mut rest = words.iter().copied().peekable();
    if upper(rest.next()?) != "ALTER" {
        return None;
    }
    rest.next_if(|t| matches!(upper(t).as_str(), "ONLINE" | "IGNORE"));
    if upper(rest.next()?) != "TABLE" {
        return None;
    }
    let mut name = vec![rest.next()?.to_string()];
    while rest.next_if(|t| **t == Token::Period).is_some() {
        name.push(rest.next()?.to_string());
    }
    let specs = split_specs(rest);
    let mut kept = Vec::new();
    let mut converts = false;
    for spec in specs.into_iter().filter(|s| !s.is_empty()) {
        let first = spec.first().map(|t| upper(t)).unwrap_or_default();
        let second = spec.get(1).map(|t| upper(t)).unwrap_or_default();
        if first == "CONVERT" {
            converts = true;
        } else if ROW_KEEPING_OPTIONS.contains(&first.as_str())
            || (first == "RENAME" && matches!(second.as_str(), "INDEX" | "KEY"))
        {
            // No row changes.
        } else {
            kept.push(without_if_exists(&spec));
        }
    }
    let table_name = ObjectName::from(
        name.iter()
            .map(|part| sqlparser::ast::Ident::new(part.trim_matches('`')))
            .collect::<Vec<_>>(),
    );
    let table = scope.ours(&table_name).filter(|t| mapped.is_mapped(t));
    if converts {
        return Some(match table {
            Some(table) => resyncable(stop(
                &table,
                None,
                "CONVERT TO CHARACTER SET (text columns rewritten without row events)",
                mapped,
                q,
            )),
            None => Statement::Ignore,
        });
    }
    if kept.is_empty() {
        return Some(table.map_or(Statement::Ignore, |table| Statement::Follow {
            table,
            filled: Vec::new(),
        }));
    }
    let again = format!("ALTER TABLE {} {}", name.join("."), kept.join(", "));
    let statements = Parser::parse_sql(&MySqlDialect {}, &again).ok()?;
    let verdicts: Vec<Statement> = statements
        .iter()
        .map(|s| classify_parsed(s, scope, mapped, q))
        .collect();
    Some(
        verdicts
            .into_iter()
            .find(|v| *v != Statement::Ignore)
            .unwrap_or(Statement::Ignore),
    )
}

/// The comma-separated specifications of an ALTER TABLE (commas inside parentheses belong to their spec).
fn split_specs<'t>(tokens: impl Iterator<Item = &'t Token>) -> Vec<Vec<&'t Token>> {
    let mut specs: Vec<Vec<&Token>> = vec![Vec::new()];
    let mut depth = 0_u32;
    for token in tokens {
        match token {
            Token::LParen => depth += 1,
            Token::RParen => depth = depth.saturating_sub(1),
            Token::Comma if depth == 0 => {
                specs.push(Vec::new());
                continue;
            }
            _ => {}
        }
        if let Some(spec) = specs.last_mut() {
            spec.push(token);
        }
    }
    specs
}

/// The spec's text without `IF EXISTS` / `IF NOT EXISTS`, which MariaDB allows on column and index changes.
fn without_if_exists(spec: &[&Token]) -> String {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(token) = spec.get(i) {
        let word = |j: usize| match spec.get(j) {
            Some(Token::Word(w)) if w.quote_style.is_none() => w.value.to_ascii_uppercase(),
            _ => String::new(),
        };
        if word(i) == "IF" && word(i + 1) == "EXISTS" {
            i += 2;
        } else if word(i) == "IF" && word(i + 1) == "NOT" && word(i + 2) == "EXISTS" {
            i += 3;
        } else {
            out.push(token.to_string());
            i += 1;
        }
    }
    out.join(" ")
}

fn classify_parsed(statement: &Sql, scope: Scope<'_>, mapped: &MappedColumns, q: &str) -> Statement {
    let mapped_table = |name: &ObjectName| scope.ours(name).filter(|t| mapped.is_mapped(t));
    match statement {
        Sql::AlterTable(alter) => match mapped_table(&alter.name) {
            Some(table) => alter_table(&table, &alter.operations, mapped, q),
            None => Statement::Ignore,
        },
        Sql::Truncate(truncate) => truncate
            .table_names
            .iter()
            .find_map(|t| mapped_table(&t.name))
            .map_or(Statement::Ignore, |table| {
                stop(&table, None, "TRUNCATE (rows removed without row events)", mapped, q)
            }),
        Sql::Drop {
            object_type: ObjectType::Table,
            names,
            ..
        } => names
            .iter()
            .find_map(mapped_table)
            .map_or(Statement::Ignore, |table| stop(&table, None, "DROP TABLE", mapped, q)),
        Sql::RenameTable(renames) => renames
            .iter()
            .find_map(|r| mapped_table(&r.old_name).or_else(|| mapped_table(&r.new_name)))
            .map_or(Statement::Ignore, |table| stop(&table, None, "RENAME TABLE", mapped, q)),
        Sql::CreateTable(create) => match mapped_table(&create.name) {
            Some(table) if create.or_replace => stop(&table, None, "CREATE OR REPLACE TABLE", mapped, q),
            _ => Statement::Ignore,
        },
        // Nothing here changes a row of any table.
        Sql::CreateIndex(_)
        | Sql::CreateView(_)
        | Sql::Drop { .. }
        | Sql::Analyze(_)
        | Sql::OptimizeTable { .. }
        | Sql::Set(_)
        | Sql::Use(_)
        | Sql::CreateUser(_)
        | Sql::Grant(_)
        | Sql::Revoke(_)
        | Sql::CreateDatabase { .. }
        | Sql::CreateSchema { .. }
        | Sql::CreateTrigger(_)
        | Sql::DropTrigger(_)
        | Sql::CreateFunction(_)
        | Sql::DropFunction(_)
        | Sql::CreateProcedure { .. }
        | Sql::DropProcedure { .. }
        | Sql::Flush { .. }
        | Sql::LockTables { .. }
        | Sql::UnlockTables
        | Sql::Savepoint { .. } => Statement::Ignore,
        // Statement-based DML and anything else on a mapped table: its row changes are not in the binlog.
        _ => match mentioned_table(q, scope, mapped) {
            Some(table) => stop(&table, None, "a statement without row events", mapped, q),
            None => Statement::Ignore,
        },
    }
}

fn alter_table(table: &str, operations: &[AlterTableOperation], mapped: &MappedColumns, q: &str) -> Statement {
    use AlterTableOperation as Op;
    let mut filled = Vec::new();
    for op in operations {
        let verdict = match op {
            Op::AddColumn { column_def, .. } => {
                // Existing rows take the new column's value without row events: harmless unless the mapping
                // reads it.
                let fills = column_def.options.iter().any(|o| {
                    matches!(
                        o.option,
                        ColumnOption::NotNull | ColumnOption::Default(_) | ColumnOption::Generated { .. }
                    )
                });
                let name = &column_def.name.value;
                if fills && !mapped.keys(table, name).is_empty() {
                    resyncable(stop(
                        table,
                        Some(name),
                        "ADD COLUMN filling existing rows without row events",
                        mapped,
                        q,
                    ))
                } else {
                    if fills {
                        filled.push(name.clone());
                    }
                    Statement::Ignore
                }
            }
            Op::DropColumn { column_names, .. } => column_names
                .iter()
                .find(|c| !mapped.keys(table, &c.value).is_empty())
                .map_or(Statement::Ignore, |c| {
                    stop(table, Some(&c.value), "DROP COLUMN", mapped, q)
                }),
            Op::ChangeColumn { old_name, new_name, .. } => {
                let verdict = column_stop(table, &old_name.value, "CHANGE COLUMN (renamed or retyped)", mapped, q);
                if old_name.value.eq_ignore_ascii_case(&new_name.value) {
                    resyncable(verdict)
                } else {
                    verdict
                }
            }
            Op::RenameColumn {
                old_column_name: column,
                ..
            } => column_stop(table, &column.value, "RENAME COLUMN", mapped, q),
            Op::ModifyColumn { col_name: column, .. } => resyncable(column_stop(
                table,
                &column.value,
                "MODIFY COLUMN (existing rows may be rewritten without row events)",
                mapped,
                q,
            )),
            Op::AlterColumn {
                op: AlterColumnOperation::SetDefault { .. } | AlterColumnOperation::DropDefault,
                ..
            } => Statement::Ignore,
            Op::AlterColumn { column_name, .. } => {
                resyncable(column_stop(table, &column_name.value, "ALTER COLUMN", mapped, q))
            }
            Op::RenameTable { .. } => stop(table, None, "RENAME TO", mapped, q),
            // Keys, indexes and how the server runs the ALTER: no row changes.
            Op::AddConstraint { .. }
            | Op::DropConstraint { .. }
            | Op::DropPrimaryKey { .. }
            | Op::DropForeignKey { .. }
            | Op::DropIndex { .. }
            | Op::RenameConstraint { .. }
            | Op::Algorithm { .. }
            | Op::Lock { .. }
            | Op::AutoIncrement { .. } => Statement::Ignore,
            other => stop(table, None, &format!("ALTER TABLE … {other}"), mapped, q),
        };
        if verdict != Statement::Ignore {
            return verdict;
        }
    }
    Statement::Follow {
        table: table.to_owned(),
        filled,
    }
}

fn resyncable(verdict: Statement) -> Statement {
    match verdict {
        Statement::Stop(stop) => Statement::Stop(DdlStop {
            resyncable: true,
            ..stop
        }),
        other => other,
    }
}

fn column_stop(table: &str, column: &str, what: &str, mapped: &MappedColumns, q: &str) -> Statement {
    if mapped.keys(table, column).is_empty() {
        Statement::Ignore
    } else {
        stop(table, Some(column), what, mapped, q)
    }
}

fn stop(table: &str, column: Option<&str>, what: &str, mapped: &MappedColumns, q: &str) -> Statement {
    let uses = match column {
        Some(column) => format!(
            ", column `{column}`, which the mapping reads as {}",
            mapped.keys(table, column).join(", ")
        ),
        None => String::new(),
    };
    Statement::Stop(DdlStop {
        table: table.to_owned(),
        column: column.map(str::to_owned),
        what: what.to_owned(),
        resyncable: false,
        uses,
        statement: quote(q),
    })
}

/// `q` in quotes, cut at [`QUOTE_CHARS`] characters: a statement may be megabytes long.
pub fn quote(q: &str) -> String {
    let mut chars = q.chars();
    let head: String = chars.by_ref().take(QUOTE_CHARS).collect();
    if chars.next().is_some() {
        format!("{head:?}…")
    } else {
        format!("{head:?}")
    }
}

/// A mapped table a statement that did not parse seems to name: conservative word matching, only used to decide
/// whether to stop.
fn mentioned_table(q: &str, scope: Scope<'_>, mapped: &MappedColumns) -> Option<String> {
    let qualified = q.contains(&format!("{}.", scope.database)) || q.contains(&format!("`{}`.", scope.database));
    if scope.schema != scope.database && !qualified {
        return None;
    }
    let words: Vec<String> = q
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    mapped
        .table_names()
        .find(|t| words.iter().any(|w| w == t))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests;
