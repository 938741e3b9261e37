//! protofuse-triage: built-in triage, serving only. What does the customer want, which department handles it, can
//! the bot answer, must a human take over? Synchronous and pure after [`Triage::load`]: no I/O, no network, well
//! under a millisecond.
//!
//! Owns the one tokenizer ([`features`], which the training tool `protofuse-triage-train` calls too), loading and
//! running the ONNX intent model, the `[triage]` configuration and its validation, and the evaluation figures that
//! `protofuse triage eval` and training share ([`eval`]). Must never train, write a model, depend on the
//! `protofuse` server crate, or do I/O after [`Triage::load`] (reading an evaluation file is the caller's choice).
//!
//! # Layout
//! - [`features`]: the one tokenizer (normalisation, hashed n-grams) shared by training and serving.
//! - `model`: the ONNX intent model loaded by tract, returning calibrated probabilities ([`IntentModel`]);
//!   `linear`: its graph evaluated directly when it is the trainer's linear model (checked against tract).
//! - `rules`: operator rules from config, matched first ([`Rules`]).
//! - `routing`: intent → department, longest configured prefix.
//! - `router`: text → department, learned from the store's history (optional, before the intent's route).
//! - `knowledge`: the question/answer base and its similarity search.
//! - `mixed`: whether a message's clauses ask for different things (then the decision is unsure).
//! - `handoff`: when a human takes over, given the conversation's recent history ([`ConversationContext`]).
//! - `config`: `[triage]` ([`TriageConfig`], [`RuleConfig`]) and its validation ([`ConfigIssue`]).
//! - [`eval`]: labelled JSONL examples and the figures (accuracy, macro-F1, confusion, ECE).

mod config;
mod error;
pub mod eval;
pub mod features;
mod handoff;
mod knowledge;
mod linear;
mod mixed;
mod model;
mod router;
mod routing;
mod rules;

use protofuse_model::{HandoffReason, TriageDecision, TriageOutcome};
use serde::Serialize;

pub use config::{ConfigIssue, RouterConfig, RuleConfig, TriageConfig};
pub use error::TriageError;
pub use handoff::ConversationContext;
pub use model::{
    INPUT_IDS, INPUT_VALUES, IntentModel, META_DIM, META_FEATURES, META_LABELS, META_VERSION, ROUTER_ELSEWHERE,
};
pub use rules::{Rule, Rules};

use handoff::HandoffPolicy;
use knowledge::Knowledge;
use router::Router;
use routing::Routing;

/// An intent and its calibrated probability.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scored {
    /// Intent id.
    pub intent: String,
    /// Probability.
    pub score: f32,
}

/// What the bot does.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// Answer from the knowledge base.
    BotAnswer {
        /// The entry's id.
        entry: String,
        /// The answer.
        answer: String,
        /// How similar the closest question was.
        similarity: f32,
    },
    /// Offer similar questions.
    Suggest {
        /// The questions, best first.
        questions: Vec<String>,
    },
    /// Say the default reply.
    DefaultReply {
        /// The reply.
        text: String,
    },
    /// Hand the conversation to a human.
    Handoff {
        /// Why.
        reason: HandoffReason,
    },
}

/// What chose the department.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Routed {
    /// A configured rule named it.
    Rule,
    /// The router learned from the store's history, this confident.
    History {
        /// The router's calibrated probability.
        confidence: f32,
    },
    /// The intent's configured route (or the default department).
    Intent,
}

/// The decision about one message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// The intent.
    pub intent: String,
    /// Its calibrated probability (1.0 when a rule decided the intent).
    pub confidence: f32,
    /// The department path.
    pub department: String,
    /// What chose the department.
    pub routed_by: Routed,
    /// What happens next.
    pub decision: Action,
    /// `model` or `rule:<id>`.
    pub reason: String,
    /// When the message's clauses ask for different things, their intents (the decision is then unsure and its
    /// confidence the model's times the share of those clauses that agree with it); empty otherwise.
    pub mixed_intents: Vec<String>,
    /// The model's top intents, best first.
    pub top_intents: Vec<Scored>,
    /// The model's version.
    pub model_version: String,
}

impl Decision {
    /// The outcome stored on the message.
    pub fn outcome(&self) -> TriageOutcome {
        let (decision, handoff_reason) = match &self.decision {
            Action::BotAnswer { .. } => (TriageDecision::BotAnswer, None),
            Action::Suggest { .. } => (TriageDecision::Suggest, None),
            Action::DefaultReply { .. } => (TriageDecision::DefaultReply, None),
            Action::Handoff { reason } => (TriageDecision::Handoff, Some(*reason)),
        };
        TriageOutcome {
            intent: self.intent.clone(),
            confidence: self.confidence,
            department: self.department.clone(),
            decision,
            handoff_reason,
            reason: self.reason.clone(),
            model_version: self.model_version.clone(),
        }
    }
}

/// Top intents reported in a decision.
const TOP: usize = 3;

/// The loaded triage: model, rules, routing, knowledge base, hand-off policy. Share it behind an `Arc`.
#[derive(Debug)]
pub struct Triage {
    model: IntentModel,
    rules: Rules,
    routing: Routing,
    router: Option<Router>,
    knowledge: Knowledge,
    handoff: HandoffPolicy,
    answer_at: f32,
    suggest_at: f32,
    max_suggestions: usize,
    default_reply: String,
}

impl Triage {
    /// Loads the model and knowledge base named by `config`.
    pub fn load(config: &TriageConfig) -> Result<Self, TriageError> {
        let knowledge = match &config.knowledge {
            Some(path) => Knowledge::load(path)?,
            None => Knowledge::default(),
        };
        Ok(Self {
            model: IntentModel::load(&config.model)?,
            rules: Rules::compile(&config.rules)?,
            routing: Routing::new(config),
            router: config.router.as_ref().map(Router::load).transpose()?,
            knowledge,
            handoff: HandoffPolicy::new(config),
            answer_at: config.answer_at,
            suggest_at: config.suggest_at,
            max_suggestions: config.max_suggestions,
            default_reply: config.default_reply.clone(),
        })
    }

    /// The intent model.
    pub fn model(&self) -> &IntentModel {
        &self.model
    }

    /// The department router's version, when one is configured.
    pub fn router_version(&self) -> Option<&str> {
        self.router.as_ref().map(Router::version)
    }

    /// The model's intents with probabilities, best first. A failed inference yields an empty list (and is
    /// logged): triage then hands off for low confidence rather than guess.
    pub fn classify(&self, text: &str) -> Vec<Scored> {
        self.scored(&features::features(text, self.model.dim()))
    }

    fn scored(&self, x: &features::SparseVec) -> Vec<Scored> {
        let probs = self.model.predict(x).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "triage model failed");
            Vec::new()
        });
        let mut scored: Vec<Scored> = self
            .model
            .labels()
            .iter()
            .zip(probs)
            .map(|(intent, score)| Scored {
                intent: intent.clone(),
                score,
            })
            .collect();
        scored.sort_by(|a, b| b.score.total_cmp(&a.score));
        scored
    }

    /// Decides what to do with one customer message.
    pub fn triage(&self, text: &str, ctx: &ConversationContext) -> Decision {
        if features::is_blank(text) {
            // Nothing to judge: no intent is likelier than another, and nothing the customer said is unsure.
            return Decision {
                intent: "other".to_owned(),
                confidence: 0.0,
                department: self.routing.for_intent("other"),
                routed_by: Routed::Intent,
                decision: Action::DefaultReply {
                    text: self.default_reply.clone(),
                },
                reason: "no_text".to_owned(),
                mixed_intents: Vec::new(),
                top_intents: Vec::new(),
                model_version: self.model.version().to_owned(),
            };
        }
        // Normalised and hashed once for the rules, both models and the knowledge base.
        let analyzed = features::analyze(text);
        let normalized = analyzed.normalized.as_str();
        let mut top = self.scored(&analyzed.features(self.model.dim()));
        let rule = self.rules.first_match(text, normalized);
        let (intent, confidence) = match rule.and_then(|r| r.intent.clone()) {
            Some(intent) => (intent, 1.0),
            None => top
                .first()
                .map_or_else(|| ("other".to_owned(), 0.0), |s| (s.intent.clone(), s.score)),
        };
        let learned = || self.router.as_ref().and_then(|r| r.route(&analyzed));
        let (department, routed_by) = match rule.and_then(|r| r.department.as_deref()) {
            Some(target) => (self.routing.resolve(target), Routed::Rule),
            None => match learned() {
                Some((department, confidence)) => (department, Routed::History { confidence }),
                None => (self.routing.for_intent(&intent), Routed::Intent),
            },
        };
        let decided_by_model = rule.is_none_or(|r| r.intent.is_none());
        let (confidence, mixed_intents) = match decided_by_model.then(|| self.mixed(text, &intent)).flatten() {
            Some(mixed) => (confidence * mixed.share, mixed.intents),
            None => (confidence, Vec::new()),
        };
        let unsure = decided_by_model && (!mixed_intents.is_empty() || self.handoff.too_unsure(confidence));
        let decision = match self.handoff.before_answer(text, normalized, &intent, ctx) {
            Some(reason) => Action::Handoff { reason },
            None => self.answer(&analyzed, unsure),
        };
        top.truncate(TOP);
        Decision {
            intent,
            confidence,
            department,
            routed_by,
            decision,
            reason: rule.map_or_else(|| "model".to_owned(), |r| format!("rule:{}", r.id)),
            mixed_intents,
            top_intents: top,
            model_version: self.model.version().to_owned(),
        }
    }

    /// Whether `text`'s clauses ask for different things (each clause classified on its own).
    fn mixed(&self, text: &str, intent: &str) -> Option<mixed::Mixed> {
        let mut clauses = mixed::clauses(text);
        // The common message has one clause: nothing to compare, nothing to classify again.
        let (first, second) = (clauses.next()?, clauses.next()?);
        let tops: Vec<(&str, f32)> = [first, second]
            .into_iter()
            .chain(clauses)
            .map(features::analyze)
            .filter(|a| mixed::worth_classifying(a.units))
            .take(mixed::MAX_CLAUSES)
            .filter_map(|a| {
                let probs = self.model.predict(&a.features(self.model.dim())).ok()?;
                let (best, p) = probs.iter().enumerate().max_by(|x, y| x.1.total_cmp(y.1))?;
                Some((self.model.labels().get(best)?.as_str(), *p))
            })
            .collect();
        if tops.len() < 2 {
            return None;
        }
        mixed::judge(&tops, intent)
    }

    /// The degradation chain: knowledge-base answer → (hand-off when unsure) → suggestions → default reply.
    fn answer(&self, analyzed: &features::Analyzed, unsure: bool) -> Action {
        let matches = self.knowledge.best(analyzed, self.max_suggestions);
        match matches.first() {
            Some(best) if best.similarity >= self.answer_at => Action::BotAnswer {
                entry: best.entry.id.clone(),
                answer: best.entry.answer.clone(),
                similarity: best.similarity,
            },
            _ if unsure => Action::Handoff {
                reason: HandoffReason::LowConfidence,
            },
            _ => {
                let questions: Vec<String> = matches
                    .iter()
                    .filter(|m| m.similarity >= self.suggest_at)
                    .map(|m| m.entry.questions[0].clone())
                    .collect();
                if questions.is_empty() {
                    Action::DefaultReply {
                        text: self.default_reply.clone(),
                    }
                } else {
                    Action::Suggest { questions }
                }
            }
        }
    }
}
