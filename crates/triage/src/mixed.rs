//! Mixed requests: a message whose clauses ask for different things ("退款还是换货好呢，物流也慢": a return and a
//! late parcel). One intent cannot cover it, yet a linear model scores the whole message as one and is sure of its
//! loudest part. Each clause is classified on its own; when two clauses confidently ask for different intents the
//! decision is unsure, whatever the whole message scored.
//!
//! Must never split a message into more than `MAX_CLAUSES` model runs: the common short message has one clause
//! and costs nothing extra.

/// Clauses classified at most; a longer message is judged on its first ones.
pub(crate) const MAX_CLAUSES: usize = 4;
/// A clause of one unit ("好", "ok") says too little to disagree with anything.
const MIN_UNITS: usize = 2;
/// A clause counts as a request when the model gives its intent at least this (calibrated) probability. At 0.6,
/// 0.55 % of the 92,906 single-intent training messages came out mixed, mostly a context clause ("returned it on
/// monday") beside the request; at 0.8, 0.31 % (`protofuse triage eval` ECE on that file 0.0133 without the
/// check, 0.0149 with it).
const CLAUSE_CONFIDENT: f32 = 0.8;
/// Intents that ask for nothing: a greeting or small talk beside a request does not make it mixed.
const NOT_A_REQUEST: [&str; 2] = ["other", "greeting"];

/// The clauses of `text`: split at sentence and clause punctuation (full- and half-width) and line breaks.
/// Clauses of fewer than [`MIN_UNITS`] units are for the caller to skip ([`worth_classifying`]).
pub(crate) fn clauses(text: &str) -> impl Iterator<Item = &str> {
    text.split(['，', ',', '。', '.', '!', '！', '?', '？', ';', '；', '\n'])
        .map(str::trim)
        .filter(|c| !c.is_empty())
}

/// Whether a clause of `units` units says enough to disagree with anything.
pub(crate) fn worth_classifying(units: usize) -> bool {
    units >= MIN_UNITS
}

/// A message whose clauses request different intents.
#[derive(Debug, PartialEq)]
pub(crate) struct Mixed {
    /// The share of requesting clauses whose intent is the decision's.
    pub(crate) share: f32,
    /// The intents requested, in clause order, each once.
    pub(crate) intents: Vec<String>,
}

/// Judges the clauses' best intents and probabilities (`tops`, one per clause) against the decision's `intent`:
/// mixed when the clauses that make a request name two or more intents.
pub(crate) fn judge(tops: &[(&str, f32)], intent: &str) -> Option<Mixed> {
    let requests: Vec<&str> = tops
        .iter()
        .filter(|(i, p)| *p >= CLAUSE_CONFIDENT && !NOT_A_REQUEST.contains(i))
        .map(|(i, _)| *i)
        .collect();
    let mut intents: Vec<String> = Vec::new();
    for r in &requests {
        if !intents.iter().any(|i| i == r) {
            intents.push((*r).to_owned());
        }
    }
    if intents.len() < 2 {
        return None;
    }
    let agreeing = requests.iter().filter(|r| **r == intent).count();
    Some(Mixed {
        share: agreeing as f32 / requests.len() as f32,
        intents,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clauses_split_at_punctuation() {
        let split = |t| clauses(t).collect::<Vec<_>>();
        assert_eq!(split("退款还是换货好呢，物流也慢"), ["退款还是换货好呢", "物流也慢"]);
        assert_eq!(
            split("I want a refund. ok? Also my parcel is late!"),
            ["I want a refund", "ok", "Also my parcel is late"]
        );
        assert!(!worth_classifying(1) && worth_classifying(2));
    }

    #[test]
    fn different_requests_are_mixed_and_small_talk_is_not() {
        let t = |i: &'static str, p: f32| (i, p);
        let (ret, late, hello, vague) = (
            t("refund", 0.9),
            t("logistics", 0.8),
            t("greeting", 0.99),
            t("complaint", 0.3),
        );
        let mixed = judge(&[ret, late], "refund").unwrap();
        assert_eq!(
            (mixed.share, mixed.intents),
            (0.5, vec!["refund".to_owned(), "logistics".to_owned()])
        );
        assert_eq!(judge(&[ret, late, late], "logistics").unwrap().share, 2.0 / 3.0);
        assert_eq!(judge(&[hello, ret], "refund"), None);
        assert_eq!(judge(&[ret, vague], "refund"), None);
        assert_eq!(judge(&[ret], "refund"), None);
    }
}
