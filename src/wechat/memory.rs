//! The memory of passive answers given, so a retried delivery of the same message gets the same answer without
//! running the responder again. Kept in memory because WeChat retries within seconds; when it misses (the first
//! delivery went to another node, or came before a restart) the answer is read from the stored bot reply
//! (`answer.rs`).
//!
//! Expiry walks an insertion-ordered queue from its old end, so each insert drops only what expired since the
//! last one. (Sweeping the whole map whenever it held more than a few thousand answers made every callback scan
//! a minute's worth of answers once the rate passed ~70/s: half of all CPU in the WeChat bench, BENCHMARKS.md.)

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use protofuse_model::MessageId;
use tokio::time::Instant;

use crate::respond::Answer;

/// WeChat re-sends within about 15 s; a minute covers that and slow networks.
const REMEMBER_FOR: Duration = Duration::from_secs(60);

/// Passive answers given recently, by inbound message.
#[derive(Default)]
pub(crate) struct Answered(Mutex<Memory>);

#[derive(Default)]
struct Memory {
    answers: HashMap<MessageId, (Instant, Answer)>,
    /// When each answer was remembered, oldest first (times only grow, so expiry is a prefix).
    order: VecDeque<(Instant, MessageId)>,
}

impl Answered {
    pub(crate) fn remember(&self, id: MessageId, answer: &Answer) {
        let now = Instant::now();
        let mut memory = self.lock();
        let Memory { answers, order } = &mut *memory;
        while let Some(&(at, old)) = order.front() {
            if now.saturating_duration_since(at) < REMEMBER_FOR {
                break;
            }
            order.pop_front();
            // Only if not remembered again since (then a later queue entry covers it).
            if answers.get(&old).is_some_and(|(current, _)| *current == at) {
                answers.remove(&old);
            }
        }
        answers.insert(id, (now, answer.clone()));
        order.push_back((now, id));
    }

    pub(crate) fn recall(&self, id: MessageId) -> Option<Answer> {
        self.lock()
            .answers
            .get(&id)
            .filter(|(at, _)| at.elapsed() < REMEMBER_FOR)
            .map(|(_, answer)| answer.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Memory> {
        // The memory is valid after any panic (each insert updates both parts before anything can fail), so
        // poisoning is ignored.
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(t: &str) -> Answer {
        Answer::Text { text: t.to_owned() }
    }

    #[tokio::test(start_paused = true)]
    async fn answers_expire_in_order_and_are_dropped_on_later_inserts() {
        let answered = Answered::default();
        let (a, b) = (MessageId::new(), MessageId::new());
        answered.remember(a, &text("a"));
        tokio::time::advance(Duration::from_secs(30)).await;
        answered.remember(b, &text("b"));
        tokio::time::advance(Duration::from_secs(31)).await;
        assert_eq!(answered.recall(a), None, "a minute old");
        assert_eq!(answered.recall(b), Some(text("b")));
        let c = MessageId::new();
        answered.remember(c, &text("c"));
        assert_eq!(answered.lock().answers.len(), 2, "the expired answer was dropped");
        assert_eq!(answered.lock().order.len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn remembering_again_keeps_the_newer_answer_past_the_older_ones_expiry() {
        let answered = Answered::default();
        let a = MessageId::new();
        answered.remember(a, &text("first"));
        tokio::time::advance(Duration::from_secs(40)).await;
        answered.remember(a, &text("second"));
        tokio::time::advance(Duration::from_secs(30)).await;
        answered.remember(MessageId::new(), &text("other"));
        assert_eq!(answered.recall(a), Some(text("second")));
    }
}
