//! When a human takes over: asked for, angry, repeated complaints, too many bot failures, or a model that is
//! not sure. Pure: the conversation's recent history comes in as [`ConversationContext`]; must never read the
//! store itself (the caller fills the context).

use protofuse_model::HandoffReason;

use crate::TriageConfig;

/// What triage needs to know about the conversation so far (the caller reads it from the store).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConversationContext {
    /// Intents triage gave the customer's earlier messages, oldest first.
    pub recent_intents: Vec<String>,
    /// Bot answers in this conversation that did not help (suggestions, default replies, repeated questions).
    pub bot_failures: u32,
}

/// The hand-off thresholds.
#[derive(Debug, Clone)]
pub(crate) struct HandoffPolicy {
    below: f32,
    max_bot_failures: u32,
    max_complaints: u32,
    angry_words: Vec<String>,
}

impl HandoffPolicy {
    /// From `[triage]`.
    pub(crate) fn new(config: &TriageConfig) -> Self {
        Self {
            below: config.handoff_below,
            max_bot_failures: config.max_bot_failures,
            max_complaints: config.max_complaints,
            angry_words: config
                .angry_words
                .iter()
                .map(|w| super::features::normalize(w))
                .collect(),
        }
    }

    /// The reason to hand off regardless of what the bot could answer, if any. Checked before the
    /// knowledge base: an angry customer does not want an FAQ.
    pub(crate) fn before_answer(
        &self,
        raw: &str,
        normalized: &str,
        intent: &str,
        ctx: &ConversationContext,
    ) -> Option<HandoffReason> {
        if intent == "human" {
            return Some(HandoffReason::Asked);
        }
        if self.is_angry(raw, normalized) {
            return Some(HandoffReason::Angry);
        }
        let complaints =
            ctx.recent_intents.iter().filter(|i| *i == "complaint").count() + usize::from(intent == "complaint");
        if self.max_complaints > 0 && complaints >= self.max_complaints as usize {
            return Some(HandoffReason::RepeatedComplaints);
        }
        if self.max_bot_failures > 0 && ctx.bot_failures >= self.max_bot_failures {
            return Some(HandoffReason::BotFailures);
        }
        None
    }

    /// Whether a model decision is too unsure for the bot to act on.
    pub(crate) fn too_unsure(&self, confidence: f32) -> bool {
        confidence < self.below
    }

    /// Angry words, an angry emoji, or shouting punctuation.
    fn is_angry(&self, raw: &str, normalized: &str) -> bool {
        self.angry_words
            .iter()
            .any(|w| !w.is_empty() && normalized.contains(w.as_str()))
            || raw.chars().any(|c| ANGRY_EMOJI.contains(&c))
            || shouts(raw)
    }
}

/// Emoji that say anger in any language, so they are not configured per deployment like words are.
const ANGRY_EMOJI: &[char] = &['😡', '😠', '🤬', '👿', '💢', '😤', '🖕'];

/// Three or more of `!` and `?` in a row (either width) with at least one `!`: "!!!", "?!?", "？！！". A run of
/// question marks alone is puzzlement, not anger.
fn shouts(raw: &str) -> bool {
    let mut run = 0;
    let mut bang = false;
    for c in raw.chars() {
        match c {
            '!' | '！' => {
                run += 1;
                bang = true;
            }
            '?' | '？' => run += 1,
            _ => {
                run = 0;
                bang = false;
            }
        }
        if run >= 3 && bang {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_in_order() {
        let policy = HandoffPolicy::new(&TriageConfig::default());
        let none = ConversationContext::default();
        let check = |raw: &str, intent: &str, ctx: &ConversationContext| {
            policy.before_answer(raw, &super::super::features::normalize(raw), intent, ctx)
        };
        assert_eq!(check("转人工", "human", &none), Some(HandoffReason::Asked));
        assert_eq!(check("WTF my refund", "refund", &none), Some(HandoffReason::Angry));
        assert_eq!(
            check("where is it！！！", "logistics", &none),
            Some(HandoffReason::Angry)
        );
        assert_eq!(check("太差了", "complaint", &none), None);
        assert_eq!(check("😡😡😡", "other", &none), Some(HandoffReason::Angry));
        assert_eq!(check("还没到？！？", "logistics", &none), Some(HandoffReason::Angry));
        assert_eq!(check("really?!!", "other", &none), Some(HandoffReason::Angry));
        assert_eq!(
            check("what??? when", "other", &none),
            None,
            "questions alone are not anger"
        );
        assert_eq!(check("ok! thanks! bye", "other", &none), None);
        let complained = ConversationContext {
            recent_intents: vec!["complaint".to_owned()],
            bot_failures: 0,
        };
        assert_eq!(
            check("太差了", "complaint", &complained),
            Some(HandoffReason::RepeatedComplaints)
        );
        let failed = ConversationContext {
            recent_intents: vec![],
            bot_failures: 2,
        };
        assert_eq!(check("发票", "payment", &failed), Some(HandoffReason::BotFailures));
        assert!(policy.too_unsure(0.2) && !policy.too_unsure(0.9));
    }
}
