//! The memory of passive answers given, so a retried delivery of the same message gets the same answer without
//! running the responder again. Kept in memory: WeChat retries within seconds, and after a restart a retry gets
//! `success`, which WeChat accepts.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use protofuse_model::MessageId;
use tokio::time::Instant;

use crate::respond::Answer;

/// WeChat re-sends within about 15 s; a minute covers that and slow networks.
const REMEMBER_FOR: Duration = Duration::from_secs(60);
/// Past this many remembered answers, expired ones are swept on the next insert.
const SWEEP_ABOVE: usize = 4096;

/// Passive answers given recently, by inbound message.
#[derive(Default)]
pub(crate) struct Answered(Mutex<HashMap<MessageId, (Instant, Answer)>>);

impl Answered {
    pub(crate) fn remember(&self, id: MessageId, answer: &Answer) {
        let mut map = self.lock();
        if map.len() > SWEEP_ABOVE {
            map.retain(|_, (at, _)| at.elapsed() < REMEMBER_FOR);
        }
        map.insert(id, (Instant::now(), answer.clone()));
    }

    pub(crate) fn recall(&self, id: MessageId) -> Option<Answer> {
        self.lock()
            .get(&id)
            .filter(|(at, _)| at.elapsed() < REMEMBER_FOR)
            .map(|(_, answer)| answer.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<MessageId, (Instant, Answer)>> {
        // The map is valid after any panic (inserts are atomic), so poisoning is ignored.
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
