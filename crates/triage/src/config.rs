//! `[triage]`: the built-in intent model, rules, routing, knowledge base and hand-off policy, and its validation.
//!
//! Paths in a configuration file are resolved against that file's directory by the server's loader; the built-in defaults
//! are relative to the working directory, so they work from a checkout.
//! Validation here is pure and never reads a file; the model and knowledge-base files are read (and their errors
//! named) by `Triage::load`. The server embeds this section in its configuration and turns each [`ConfigIssue`]
//! into its own issue type, keys unchanged.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

/// One broken rule of `[triage]`, with the full key path it concerns (`triage.handoff_below`,
/// `triage.rules[0].regex`), as the server reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// Dotted key path, starting at `triage`.
    pub key: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl ConfigIssue {
    /// An issue with `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Under this calibrated confidence a model decision goes to a human. Calibrated means a confidence of 0.45 is
/// right about 45% of the time (held-out test ECE 0.022 en, 0.021 zh, with a temperature fitted on a calibration
/// split nothing else uses; `config/triage/metrics.json`): more often wrong than right, though well above the 10%
/// of a guess among 10 intents. On the test split 3.5 % of the predictions fall under 0.5, and about a third of
/// those are right (the model card's reliability table).
const DEFAULT_HANDOFF_BELOW: f32 = 0.45;
/// A knowledge-base match at least this similar (cosine of hashed n-grams) is answered outright.
const DEFAULT_ANSWER_AT: f32 = 0.6;
/// Matches at least this similar are offered as "did you mean" suggestions.
const DEFAULT_SUGGEST_AT: f32 = 0.3;
/// Three suggestions fit one chat bubble.
const DEFAULT_MAX_SUGGESTIONS: usize = 3;
/// After two unhelpful bot answers a customer is better served by a person.
const DEFAULT_MAX_BOT_FAILURES: u32 = 2;
/// A second complaint in one conversation goes to a person.
const DEFAULT_MAX_COMPLAINTS: u32 = 2;

/// `[triage]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TriageConfig {
    /// The ONNX intent model written by `protofuse-triage-train`.
    pub model: PathBuf,
    /// The knowledge base (TOML `[[entries]]` with `questions` and `answer`); none when unset.
    pub knowledge: Option<PathBuf>,
    /// Model confidence under which the conversation is handed to a human.
    pub handoff_below: f32,
    /// Knowledge-base similarity at which the bot answers.
    pub answer_at: f32,
    /// Knowledge-base similarity at which a question is suggested.
    pub suggest_at: f32,
    /// Most suggestions offered at once.
    pub max_suggestions: usize,
    /// Bot failures in a conversation after which a human takes over.
    pub max_bot_failures: u32,
    /// Complaints in a conversation (this message included) after which a human takes over.
    pub max_complaints: u32,
    /// Words that make a message angry (matched on normalised text); angry messages go to a human.
    pub angry_words: Vec<String>,
    /// What the bot says when it has nothing better.
    pub default_reply: String,
    /// The department when no route applies.
    pub default_department: String,
    /// Known departments; a route or rule target resolves to the longest known prefix.
    pub departments: Vec<String>,
    /// Intent → department path.
    pub routes: BTreeMap<String, String>,
    /// Rules, matched before the model; the highest priority wins, then the earliest.
    pub rules: Vec<RuleConfig>,
    /// The department router learned from the store's history; none when unset.
    pub router: Option<RouterConfig>,
}

/// A learned router is taken when it is more likely right than wrong: its confidence is calibrated on a split
/// of the history nothing else used, so 0.5 means right about half the time. Below, the intent's configured
/// route is the better guess.
const DEFAULT_ROUTER_MIN_CONFIDENCE: f32 = 0.5;

/// `[triage.router]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouterConfig {
    /// `router.onnx` written by `protofuse triage train --from-store`.
    pub model: PathBuf,
    /// Router confidence at which its department replaces the intent's route.
    #[serde(default = "default_router_min_confidence")]
    pub min_confidence: f32,
    /// Learned department → the department path to use (the history's labels are what the helpdesk stored,
    /// such as osTicket's department id `2`); labels not listed are used as they are.
    #[serde(default)]
    pub departments: BTreeMap<String, String>,
}

fn default_router_min_confidence() -> f32 {
    DEFAULT_ROUTER_MIN_CONFIDENCE
}

/// `[[triage.rules]]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Named in decisions (`rule:<id>`).
    pub id: String,
    /// Matches when the normalised text contains one of these (normalised the same way).
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Matches when this regular expression matches the raw text.
    #[serde(default)]
    pub regex: Option<String>,
    /// The intent to decide, if any.
    #[serde(default)]
    pub intent: Option<String>,
    /// The department to route to, if any (overrides the intent's route).
    #[serde(default)]
    pub department: Option<String>,
    /// Higher wins.
    #[serde(default)]
    pub priority: i32,
}

impl Default for TriageConfig {
    fn default() -> Self {
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        Self {
            model: PathBuf::from("config/triage/model.onnx"),
            knowledge: Some(PathBuf::from("config/triage/knowledge.toml")),
            handoff_below: DEFAULT_HANDOFF_BELOW,
            answer_at: DEFAULT_ANSWER_AT,
            suggest_at: DEFAULT_SUGGEST_AT,
            max_suggestions: DEFAULT_MAX_SUGGESTIONS,
            max_bot_failures: DEFAULT_MAX_BOT_FAILURES,
            max_complaints: DEFAULT_MAX_COMPLAINTS,
            angry_words: s(&[
                "垃圾",
                "骗子",
                "气死",
                "滚",
                "妈的",
                "wtf",
                "scam",
                "furious",
                "ridiculous",
                "disgusting",
            ]),
            default_reply: "您好，请问有什么可以帮您？/ Hi, how can we help?".to_owned(),
            default_department: "service-desk".to_owned(),
            departments: s(&[
                "service-desk",
                "after-sales",
                "after-sales/returns",
                "after-sales/complaints",
                "logistics",
                "billing",
                "accounts",
                "tech-support",
                "pre-sales",
            ]),
            routes: [
                ("refund", "after-sales/returns"),
                ("logistics", "logistics"),
                ("payment", "billing"),
                ("account", "accounts"),
                ("technical", "tech-support"),
                ("complaint", "after-sales/complaints"),
                ("product", "pre-sales"),
                ("human", "service-desk"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into(),
            rules: vec![RuleConfig {
                id: "ask-for-human".to_owned(),
                keywords: s(&[
                    "转人工",
                    "人工客服",
                    "真人客服",
                    "real person",
                    "human agent",
                    "live agent",
                ]),
                regex: None,
                intent: Some("human".to_owned()),
                department: None,
                priority: 100,
            }],
            router: None,
        }
    }
}

impl TriageConfig {
    /// Every broken rule of the section, keys named like `triage.rules[0].regex`.
    pub fn issues(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        let mut issue = |key: String, message: &str| issues.push(ConfigIssue::new(key, message));
        for (key, value) in [
            ("handoff_below", self.handoff_below),
            ("answer_at", self.answer_at),
            ("suggest_at", self.suggest_at),
        ] {
            if !(0.0..=1.0).contains(&value) {
                issue(format!("triage.{key}"), "must be between 0 and 1");
            }
        }
        if self.suggest_at > self.answer_at {
            issue("triage.suggest_at".to_owned(), "must not exceed triage.answer_at");
        }
        if !valid_path(&self.default_department) {
            issue(
                "triage.default_department".to_owned(),
                "must be a path like `after-sales/returns`",
            );
        }
        for (i, d) in self.departments.iter().enumerate() {
            if !valid_path(d) {
                issue(
                    format!("triage.departments[{i}]"),
                    "must be a path like `after-sales/returns`",
                );
            }
        }
        for (intent, d) in &self.routes {
            if !valid_path(d) {
                issue(
                    format!("triage.routes.{intent}"),
                    "must be a path like `after-sales/returns`",
                );
            }
        }
        if let Some(router) = &self.router {
            if !(0.0..=1.0).contains(&router.min_confidence) {
                issue("triage.router.min_confidence".to_owned(), "must be between 0 and 1");
            }
            for (label, d) in &router.departments {
                if !valid_path(d) {
                    issue(
                        format!("triage.router.departments.{label}"),
                        "must be a path like `after-sales/returns`",
                    );
                }
            }
        }
        for (i, rule) in self.rules.iter().enumerate() {
            rule_issues(rule, &format!("triage.rules[{i}]"), &mut issue);
            if self.rules[..i].iter().any(|r| r.id == rule.id) {
                issue(
                    format!("triage.rules[{i}].id"),
                    "is used by an earlier rule; ids must be unique",
                );
            }
        }
        issues
    }
}

fn rule_issues(rule: &RuleConfig, key: &str, issue: &mut impl FnMut(String, &str)) {
    if rule.id.trim().is_empty() {
        issue(format!("{key}.id"), "must not be empty");
    }
    if rule.keywords.iter().all(|k| k.trim().is_empty()) && rule.regex.is_none() {
        issue(format!("{key}.keywords"), "a rule needs non-empty keywords or a regex");
    }
    if let Some(Err(_)) = rule.regex.as_deref().map(regex::Regex::new) {
        issue(format!("{key}.regex"), "is not a valid regular expression");
    }
    if rule.intent.is_none() && rule.department.is_none() {
        issue(
            format!("{key}.intent"),
            "a rule must set an intent, a department or both",
        );
    }
    if rule.department.as_deref().is_some_and(|d| !valid_path(d)) {
        issue(format!("{key}.department"), "must be a path like `after-sales/returns`");
    }
}

/// Non-empty segments separated by single slashes.
fn valid_path(path: &str) -> bool {
    !path.is_empty() && path.split('/').all(|s| !s.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issues_name_the_key() {
        let mut config = TriageConfig {
            answer_at: 0.2,
            ..TriageConfig::default()
        };
        config.routes.insert("refund".to_owned(), "a//b".to_owned());
        config.rules.push(RuleConfig {
            id: "ask-for-human".to_owned(),
            keywords: vec![],
            regex: Some("(".to_owned()),
            intent: None,
            department: None,
            priority: 0,
        });
        let keys: Vec<String> = config.issues().into_iter().map(|i| i.key).collect();
        assert_eq!(
            keys,
            [
                "triage.suggest_at",
                "triage.routes.refund",
                "triage.rules[1].regex",
                "triage.rules[1].intent",
                "triage.rules[1].id"
            ]
        );
        assert!(TriageConfig::default().issues().is_empty());
    }
}
