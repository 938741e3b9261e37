//! When to try a failed delivery again: jittered exponential backoff, and a retry budget so that retries stay a
//! bounded share of traffic while a destination struggles (a retry storm is what keeps a sick backend down).

use std::sync::Mutex;
use std::time::Duration;

use rand::Rng as _;
use tokio::time::Instant;

use crate::dispatch::RetrySettings;

/// The delay before retry number `attempts` (1 = first retry): `initial * 2^(attempts-1)` capped at `max`, then
/// "equal jitter" (half fixed, half random) so that deliveries failed together do not retry together.
pub(super) fn backoff(settings: &RetrySettings, attempts: u32) -> Duration {
    jittered(
        settings.backoff_initial,
        settings.backoff_max,
        attempts.saturating_sub(1),
        random_jitter,
    )
}

/// Draws the random half of an equal-jitter delay: given that half's length, how much of it to add. Passed in
/// so that the breaker's policy stays free of randomness its tests cannot pin.
pub(super) type Jitter = fn(Duration) -> Duration;

/// Anything from zero to `half`, at millisecond resolution.
pub(super) fn random_jitter(half: Duration) -> Duration {
    let most = u64::try_from(half.as_millis()).unwrap_or(u64::MAX).max(1);
    Duration::from_millis(rand::rng().random_range(0..=most))
}

/// `initial * 2^step` capped at `max`, with equal jitter.
fn jittered(initial: Duration, max: Duration, step: u32, jitter: Jitter) -> Duration {
    let base = initial.saturating_mul(1u32 << step.min(30)).min(max);
    let half = base / 2;
    half + jitter(half)
}

/// The breaker's open periods: the same jittered doubling as retries, at millisecond precision (tests and fast
/// local backends want sub-second open periods).
#[derive(Debug, Clone)]
pub(super) struct OpenPeriods {
    initial: Duration,
    max: Duration,
    step: u32,
    jitter: Jitter,
}

impl OpenPeriods {
    /// Starting at `initial`, doubling up to `max`.
    pub(super) fn new(initial: Duration, max: Duration, jitter: Jitter) -> Self {
        Self {
            initial,
            max,
            step: 0,
            jitter,
        }
    }

    /// The next open period: each is twice the last, until `max`.
    pub(super) fn next_period(&mut self) -> Duration {
        let period = jittered(self.initial, self.max, self.step, self.jitter);
        self.step = self.step.saturating_add(1);
        period
    }

    /// Back to `initial` (the destination recovered).
    pub(super) fn reset(&mut self) {
        self.step = 0;
    }
}

/// A token bucket: each first attempt deposits `ratio` tokens, each retry takes one; a floor of
/// `min_per_second` refills it even without traffic.
#[derive(Debug)]
pub(super) struct RetryBudget {
    ratio: f64,
    min_per_second: f64,
    cap: f64,
    state: Mutex<(f64, Instant)>,
}

impl RetryBudget {
    /// A full budget.
    pub(super) fn new(settings: &RetrySettings) -> Self {
        // Room for a burst of retries after a blip, bounded so a long healthy spell cannot bank an unlimited storm.
        let cap = (settings.budget_min_per_second * 10.0).max(100.0);
        Self {
            ratio: settings.budget_ratio,
            min_per_second: settings.budget_min_per_second,
            cap,
            state: Mutex::new((cap, Instant::now())),
        }
    }

    /// Records a first attempt.
    pub(super) fn deposit(&self) {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        state.0 = (state.0 + self.ratio).min(self.cap);
    }

    /// Takes a token for a retry; `false` when the budget is spent (the retry is deferred, not dropped).
    pub(super) fn try_retry(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let refill = now.duration_since(state.1).as_secs_f64() * self.min_per_second;
        state.0 = (state.0 + refill).min(self.cap);
        state.1 = now;
        if state.0 >= 1.0 {
            state.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let s = RetrySettings {
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(8),
            ..RetrySettings::default()
        };
        let d1 = backoff(&s, 1);
        assert!(
            d1 >= Duration::from_millis(500) && d1 <= Duration::from_secs(1),
            "{d1:?}"
        );
        let d3 = backoff(&s, 3);
        assert!(d3 >= Duration::from_secs(2) && d3 <= Duration::from_secs(4), "{d3:?}");
        let d10 = backoff(&s, 10);
        assert!(
            d10 >= Duration::from_secs(4) && d10 <= Duration::from_secs(8),
            "{d10:?}"
        );
    }

    #[test]
    fn budget_limits_retries_to_a_share_of_traffic() {
        let s = RetrySettings {
            budget_ratio: 0.2,
            budget_min_per_second: 0.0,
            ..RetrySettings::default()
        };
        let budget = RetryBudget::new(&s);
        // Drain the initial allowance.
        while budget.try_retry() {}
        for _ in 0..100 {
            budget.deposit();
        }
        let allowed = (0..100).filter(|_| budget.try_retry()).count();
        assert!((19..=20).contains(&allowed), "{allowed}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_spent_budget_refills_at_its_floor_on_tokio_time() {
        let s = RetrySettings {
            budget_ratio: 0.0,
            budget_min_per_second: 10.0,
            ..RetrySettings::default()
        };
        let budget = RetryBudget::new(&s);
        while budget.try_retry() {}
        tokio::time::advance(Duration::from_secs(1)).await;
        let allowed = std::iter::from_fn(|| budget.try_retry().then_some(())).count();
        assert_eq!(allowed, 10);
    }

    #[test]
    fn open_periods_double_up_to_the_max_and_start_again_on_reset() {
        let full = |half: Duration| half;
        let mut periods = OpenPeriods::new(Duration::from_millis(300), Duration::from_secs(1), full);
        let ms = |periods: &mut OpenPeriods| periods.next_period().as_millis();
        assert_eq!([ms(&mut periods), ms(&mut periods), ms(&mut periods)], [300, 600, 1000]);
        periods.reset();
        assert_eq!(ms(&mut periods), 300);
        let mut random = OpenPeriods::new(Duration::from_secs(2), Duration::from_secs(2), random_jitter);
        for _ in 0..100 {
            let p = random.next_period();
            assert!(p >= Duration::from_secs(1) && p <= Duration::from_secs(2), "{p:?}");
        }
    }
}
