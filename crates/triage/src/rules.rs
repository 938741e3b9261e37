//! Operator rules from configuration: keywords or a regex → intent and/or department, matched before the model
//! so a misroute can be fixed today without retraining. Must never consult the model: a rule decides alone.

use regex::Regex;

use super::TriageError;
use super::features::normalize;
use crate::RuleConfig;

/// One compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Its id, named in decisions.
    pub id: String,
    keywords: Vec<String>,
    regex: Option<Regex>,
    /// The intent it decides.
    pub intent: Option<String>,
    /// The department it routes to.
    pub department: Option<String>,
    priority: i32,
}

/// Rules, highest priority first (ties keep configuration order).
#[derive(Debug, Clone, Default)]
pub struct Rules(Vec<Rule>);

impl Rules {
    /// Compiles `configs`; keywords are normalised like messages so "ＲＥＦＵＮＤ！" matches "refund".
    pub fn compile(configs: &[RuleConfig]) -> Result<Self, TriageError> {
        let mut rules = configs
            .iter()
            .map(|c| {
                let regex = c
                    .regex
                    .as_deref()
                    .map(Regex::new)
                    .transpose()
                    .map_err(|e| TriageError::Rule(c.id.clone(), e))?;
                Ok(Rule {
                    id: c.id.clone(),
                    keywords: c
                        .keywords
                        .iter()
                        .map(|k| normalize(k))
                        .filter(|k| !k.is_empty())
                        .collect(),
                    regex,
                    intent: c.intent.clone(),
                    department: c.department.clone(),
                    priority: c.priority,
                })
            })
            .collect::<Result<Vec<_>, TriageError>>()?;
        rules.sort_by_key(|r| std::cmp::Reverse(r.priority));
        Ok(Self(rules))
    }

    /// The winning rule for a message, given its raw and normalised text.
    pub fn first_match(&self, raw: &str, normalized: &str) -> Option<&Rule> {
        self.0.iter().find(|r| {
            r.keywords.iter().any(|k| normalized.contains(k.as_str()))
                || r.regex.as_ref().is_some_and(|re| re.is_match(raw))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(id: &str, keywords: &[&str], regex: Option<&str>, priority: i32) -> RuleConfig {
        RuleConfig {
            id: id.to_owned(),
            keywords: keywords.iter().map(|k| (*k).to_owned()).collect(),
            regex: regex.map(str::to_owned),
            intent: Some("x".to_owned()),
            department: None,
            priority,
        }
    }

    #[test]
    fn highest_priority_then_order_wins() {
        let rules = Rules::compile(&[
            rule("low", &["退货"], None, 1),
            rule("re", &[], Some(r"(?i)order\s*#\d+"), 5),
            rule("high", &["ＲＥＦＵＮＤ"], None, 9),
        ])
        .unwrap();
        let hit = |t: &str| rules.first_match(t, &normalize(t)).map(|r| r.id.clone());
        assert_eq!(hit("refund for Order #12 退货").as_deref(), Some("high"));
        assert_eq!(hit("Order #12 退货").as_deref(), Some("re"));
        assert_eq!(hit("我要退货").as_deref(), Some("low"));
        assert_eq!(hit("hello"), None);
    }
}
