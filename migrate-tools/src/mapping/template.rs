//! Field templates: text with `{column}` placeholders, each with an optional fallback, `{column|fallback}`, that
//! is itself a template (`{customer_id|anonymous-ticket-{id}}`).
//!
//! A placeholder whose column is NULL, empty or a zero date takes its fallback; without one the whole template is
//! NULL. A NULL is never rendered as text: "Emma null" or `cust-null` would merge distinct customers into one id.
//! The result is trimmed (`{firstname|} {lastname|}` with no last name is "Emma"), and an empty result is NULL.

use serde_json::Value as Json;

use super::value::{Row, is_empty, text_of};

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(Vec<Segment>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Column { name: String, fallback: Option<Template> },
}

/// One placeholder: its column and whether it declares a fallback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    /// The column.
    pub column: String,
    /// `{column|…}`.
    pub has_fallback: bool,
}

impl Template {
    /// Parses template text; the error says what is malformed.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut chars = text.char_indices().peekable();
        parse_sequence(text, &mut chars, false)
    }

    /// Renders the template over a row: `None` when a placeholder without fallback is NULL or the result is empty.
    pub fn render(&self, row: &Row) -> Option<String> {
        let text = self.render_untrimmed(row)?;
        let trimmed = text.trim();
        (!trimmed.is_empty()).then(|| trimmed.to_owned())
    }

    fn render_untrimmed(&self, row: &Row) -> Option<String> {
        let mut out = String::new();
        for segment in &self.0 {
            match segment {
                Segment::Literal(text) => out.push_str(text),
                Segment::Column { name, fallback } => {
                    let value = row.get(name).unwrap_or(&Json::Null);
                    if is_empty(value) {
                        out.push_str(&fallback.as_ref()?.render_untrimmed(row)?);
                    } else {
                        out.push_str(&text_of(value));
                    }
                }
            }
        }
        Some(out)
    }

    /// Every placeholder, fallbacks' included, in order.
    pub fn variables(&self) -> Vec<Variable> {
        let mut out = Vec::new();
        for segment in &self.0 {
            if let Segment::Column { name, fallback } = segment {
                out.push(Variable {
                    column: name.clone(),
                    has_fallback: fallback.is_some(),
                });
                if let Some(fallback) = fallback {
                    out.extend(fallback.variables());
                }
            }
        }
        out
    }

    /// The same template as a SQL expression over the source row, for checking stored values against the source
    /// without this module's code: `column` gives the SQL text of a column. `CONCAT` is NULL when any part is, as
    /// a placeholder without fallback is.
    pub fn to_sql(&self, column: &dyn Fn(&str) -> String) -> String {
        format!("NULLIF(TRIM({}), '')", self.sql_untrimmed(column))
    }

    fn sql_untrimmed(&self, column: &dyn Fn(&str) -> String) -> String {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|segment| match segment {
                Segment::Literal(text) => sql_string(text),
                Segment::Column { name, fallback } => {
                    let value = format!("NULLIF({}, '')", column(name));
                    match fallback {
                        Some(fallback) => format!("COALESCE({value}, {})", fallback.sql_untrimmed(column)),
                        None => value,
                    }
                }
            })
            .collect();
        if parts.is_empty() {
            return "''".to_owned();
        }
        format!("CONCAT({})", parts.join(", "))
    }
}

/// A SQL string literal (the connection runs without `NO_BACKSLASH_ESCAPES` assumptions: both are escaped).
pub fn sql_string(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

type Chars<'a> = std::iter::Peekable<std::str::CharIndices<'a>>;

/// Parses until the end of the text (top level) or an unmatched `}` (inside a fallback, left for the caller).
fn parse_sequence(text: &str, chars: &mut Chars<'_>, nested: bool) -> Result<Template, String> {
    let mut segments = Vec::new();
    let mut literal = String::new();
    while let Some(&(at, c)) = chars.peek() {
        match c {
            '{' => {
                chars.next();
                if !literal.is_empty() {
                    segments.push(Segment::Literal(std::mem::take(&mut literal)));
                }
                segments.push(parse_placeholder(text, chars, at)?);
            }
            '}' if nested => break,
            '}' => return Err(format!("unmatched '}}' at byte {at} in {text:?}")),
            c => {
                chars.next();
                literal.push(c);
            }
        }
    }
    if !literal.is_empty() {
        segments.push(Segment::Literal(literal));
    }
    Ok(Template(segments))
}

/// After a `{`: the column name, then `}` or `|fallback}`.
fn parse_placeholder(text: &str, chars: &mut Chars<'_>, open: usize) -> Result<Segment, String> {
    let mut name = String::new();
    loop {
        match chars.next() {
            None => return Err(format!("unclosed '{{' at byte {open} in {text:?}")),
            Some((_, '}')) => {
                return column(&name, None, text, open);
            }
            Some((_, '|')) => {
                let fallback = parse_sequence(text, chars, true)?;
                if chars.next().is_none() {
                    return Err(format!("unclosed '{{' at byte {open} in {text:?}"));
                }
                return column(&name, Some(fallback), text, open);
            }
            Some((_, '{')) => return Err(format!("'{{' inside a column name at byte {open} in {text:?}")),
            Some((_, c)) => name.push(c),
        }
    }
}

fn column(name: &str, fallback: Option<Template>, text: &str, open: usize) -> Result<Segment, String> {
    let name = name.trim().to_owned();
    if name.is_empty() {
        return Err(format!("empty column name at byte {open} in {text:?}"));
    }
    Ok(Segment::Column { name, fallback })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(json: &str) -> Row {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn null_is_never_rendered_as_text() {
        let name = Template::parse("{firstname} {lastname}").unwrap();
        assert_eq!(name.render(&row(r#"{"firstname": "Emma", "lastname": null}"#)), None);
        let name = Template::parse("{firstname|} {lastname|}").unwrap();
        assert_eq!(
            name.render(&row(r#"{"firstname": "Emma", "lastname": null}"#))
                .as_deref(),
            Some("Emma")
        );
        assert_eq!(name.render(&row(r#"{"firstname": null, "lastname": ""}"#)), None);
        let key = Template::parse("cust-{customer_id|anonymous-ticket-{id}}").unwrap();
        assert_eq!(
            key.render(&row(r#"{"customer_id": null, "id": 7}"#)).as_deref(),
            Some("cust-anonymous-ticket-7")
        );
        assert_eq!(
            key.render(&row(r#"{"customer_id": 3, "id": 7}"#)).as_deref(),
            Some("cust-3")
        );
        assert_eq!(
            key.variables(),
            [
                Variable {
                    column: "customer_id".to_owned(),
                    has_fallback: true
                },
                Variable {
                    column: "id".to_owned(),
                    has_fallback: false
                }
            ]
        );
    }

    #[test]
    fn malformed_templates_are_refused() {
        for bad in ["{a", "a}", "{}", "{a|b", "{a{b}}"] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sql_form_follows_the_same_rules() {
        let key = Template::parse("cust-{customer_id|anon-{id}}").unwrap();
        let sql = key.to_sql(&|c| format!("`{c}`"));
        assert_eq!(
            sql,
            "NULLIF(TRIM(CONCAT('cust-', COALESCE(NULLIF(`customer_id`, ''), CONCAT('anon-', NULLIF(`id`, ''))))), '')"
        );
    }
}
