//! When to retry and how long to wait: 429 header interpretation, exponential backoff with jitter, and the
//! adaptive (AIMD) concurrency limit shared by every request of one client.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::config::RetryPolicy;

/// How long to wait before retrying a 429.
///
/// `Retry-After` (seconds) wins, then `X-Ratelimit-Reset` (epoch ms; a past or negative reset means a short
/// backoff). A 429 naming neither waits [`RetryPolicy::bare_rate_limit_wait`] (10 s by default, a full window),
/// never a short backoff: with nothing to say when the window resets, a quick retry would only be refused again.
/// Every wait gets jitter on top, so concurrent requests do not come back in lockstep.
pub(crate) fn rate_limit_delay(
    retry_after: Option<&str>,
    reset: Option<&str>,
    now_ms: i64,
    attempt: u32,
    policy: &RetryPolicy,
    rng: &mut impl Rng,
) -> Duration {
    if let Some(secs) = retry_after.and_then(parse_seconds) {
        return with_jitter(secs, rng);
    }
    if let Some(reset_ms) = reset.and_then(parse_millis) {
        let wait = reset_ms.saturating_sub(now_ms);
        return if wait > 0 {
            with_jitter(Duration::from_millis(wait.unsigned_abs()), rng)
        } else {
            // The window already rolled over (or the clock is skewed): come back soon, not at once.
            let short = policy.past_reset_delay.saturating_mul(attempt.saturating_add(1)).min(policy.max_delay);
            with_jitter(short, rng)
        };
    }
    let wait = policy.bare_rate_limit_wait;
    wait + random_up_to(wait / 5, rng)
}

/// The wait a 429's headers name, when they name a positive one: `Retry-After` (seconds) first, as in
/// [`rate_limit_delay`], else a future `X-Ratelimit-Reset` (epoch ms). No jitter: the route gate releases the
/// waiters one by one in order, which is what jitter only approximates. `None` means the wait is a guess.
pub(crate) fn told_wait(retry_after: Option<&str>, reset: Option<&str>, now_ms: i64) -> Option<Duration> {
    if let Some(secs) = retry_after.and_then(parse_seconds) {
        return (!secs.is_zero()).then_some(secs);
    }
    let wait = reset.and_then(parse_millis)?.saturating_sub(now_ms);
    (wait > 0).then(|| Duration::from_millis(wait.unsigned_abs()))
}

/// Exponential backoff with "equal jitter": half the step fixed, half random.
pub(crate) fn backoff(attempt: u32, policy: &RetryPolicy, rng: &mut impl Rng) -> Duration {
    let step = policy.backoff_cap(attempt);
    let half = step / 2;
    half + random_up_to(step - half, rng)
}

/// `wait` plus up to 10% (at least 50 ms, at most 1 s) of random extra.
fn with_jitter(wait: Duration, rng: &mut impl Rng) -> Duration {
    let cap = (wait / 10).clamp(Duration::from_millis(50), Duration::from_secs(1));
    wait + random_up_to(cap, rng)
}

fn random_up_to(max: Duration, rng: &mut impl Rng) -> Duration {
    let micros = u64::try_from(max.as_micros()).unwrap_or(u64::MAX);
    Duration::from_micros(rng.random_range(0..=micros))
}

fn parse_seconds(s: &str) -> Option<Duration> {
    let v: f64 = s.trim().parse().ok()?;
    (v.is_finite() && v >= 0.0).then(|| Duration::from_secs_f64(v.min(86_400.0)))
}

fn parse_millis(s: &str) -> Option<i64> {
    let t = s.trim();
    t.parse::<i64>().ok().or_else(|| {
        let f: f64 = t.parse().ok()?;
        // Truncation is fine: the value is a wall-clock instant in ms.
        #[allow(clippy::cast_possible_truncation)]
        f.is_finite().then_some(f as i64)
    })
}

/// A concurrency limit that halves on 429 and grows by one after a full window of successes (AIMD).
///
/// Built on a semaphore holding `max` permits; lowering the limit forgets idle permits at once and the busy
/// ones as they are released (`debt`), raising it returns permits.
#[derive(Debug)]
pub(crate) struct AdaptiveLimit {
    sem: Arc<Semaphore>,
    max: usize,
    state: Mutex<LimitState>,
}

#[derive(Debug)]
struct LimitState {
    limit: usize,
    debt: usize,
    successes: usize,
    last_decrease: Option<Instant>,
}

/// One slot; released on drop.
#[derive(Debug)]
pub(crate) struct Slot<'a> {
    permit: Option<OwnedSemaphorePermit>,
    owner: &'a AdaptiveLimit,
}

impl AdaptiveLimit {
    /// A 429 storm from one burst of concurrent requests counts as one signal within this window.
    const DECREASE_COOLDOWN: Duration = Duration::from_millis(500);

    pub(crate) fn new(max: usize) -> Self {
        let max = max.max(1);
        AdaptiveLimit {
            sem: Arc::new(Semaphore::new(max)),
            max,
            state: Mutex::new(LimitState { limit: max, debt: 0, successes: 0, last_decrease: None }),
        }
    }

    pub(crate) async fn acquire(&self) -> Slot<'_> {
        // The semaphore is never closed, so acquiring only fails in theory; run unbounded rather than panic.
        let permit = Arc::clone(&self.sem).acquire_owned().await.ok();
        Slot { permit, owner: self }
    }

    /// The current limit.
    pub(crate) fn limit(&self) -> usize {
        self.lock().limit
    }

    pub(crate) fn on_rate_limited(&self) {
        let mut st = self.lock();
        if st.last_decrease.is_some_and(|t| t.elapsed() < Self::DECREASE_COOLDOWN) {
            return;
        }
        st.last_decrease = Some(Instant::now());
        st.successes = 0;
        let target = (st.limit / 2).max(1);
        let mut remove = st.limit - target;
        st.limit = target;
        while remove > 0 {
            match Arc::clone(&self.sem).try_acquire_owned() {
                Ok(p) => {
                    p.forget();
                    remove -= 1;
                }
                Err(_) => break,
            }
        }
        st.debt += remove;
    }

    pub(crate) fn on_success(&self) {
        let mut st = self.lock();
        st.successes += 1;
        if st.successes >= st.limit && st.limit < self.max {
            st.successes = 0;
            st.limit += 1;
            if st.debt > 0 {
                st.debt -= 1;
            } else {
                self.sem.add_permits(1);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LimitState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if let Some(p) = self.permit.take() {
            let mut st = self.owner.lock();
            if st.debt > 0 {
                st.debt -= 1;
                p.forget();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_retries: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            past_reset_delay: Duration::from_millis(200),
            bare_rate_limit_wait: Duration::from_secs(1),
            max_rate_limit_wait: Duration::from_secs(60),
            max_timeout_retries: 1,
        }
    }

    fn ms(d: Duration) -> u128 {
        d.as_millis()
    }

    #[test]
    fn retry_after_seconds_wins_with_bounded_jitter() {
        let mut rng = SmallRng::seed_from_u64(1);
        for _ in 0..200 {
            let d = rate_limit_delay(Some("3"), Some("99999999999999"), 0, 0, &policy(), &mut rng);
            assert!((3000..=3300).contains(&ms(d)), "{d:?}");
        }
    }

    #[test]
    fn future_reset_waits_until_it() {
        let mut rng = SmallRng::seed_from_u64(2);
        for _ in 0..200 {
            let d = rate_limit_delay(None, Some("1700000001500"), 1_700_000_000_000, 0, &policy(), &mut rng);
            assert!((1500..=1650).contains(&ms(d)), "{d:?}");
        }
    }

    #[test]
    fn past_or_negative_reset_is_a_short_backoff() {
        let mut rng = SmallRng::seed_from_u64(3);
        for reset in ["1600000000000", "-5", "0"] {
            let d = rate_limit_delay(None, Some(reset), 1_700_000_000_000, 0, &policy(), &mut rng);
            assert!((200..=250).contains(&ms(d)), "{reset}: {d:?}");
            let d = rate_limit_delay(None, Some(reset), 1_700_000_000_000, 2, &policy(), &mut rng);
            assert!((600..=660).contains(&ms(d)), "{reset}: {d:?}");
        }
    }

    #[test]
    fn no_headers_waits_a_whole_window_with_jitter_at_every_attempt() {
        let mut rng = SmallRng::seed_from_u64(4);
        let mut seen = std::collections::BTreeSet::new();
        // The default policy: 10 s plus up to 2 s, never the short exponential backoff of other retries.
        let p = RetryPolicy::default();
        for attempt in 0..6u32 {
            for _ in 0..50 {
                let d = ms(rate_limit_delay(None, None, 0, attempt, &p, &mut rng));
                assert!((10_000..=12_000).contains(&d), "attempt {attempt}: {d}");
                seen.insert(d);
            }
        }
        assert!(seen.len() > 20, "jitter must vary the waits");
        let d = rate_limit_delay(None, None, 0, 0, &policy(), &mut rng);
        assert!((1_000..=1_200).contains(&ms(d)), "the policy's own wait: {d:?}");
    }

    #[test]
    fn garbage_headers_count_as_none() {
        let mut rng = SmallRng::seed_from_u64(5);
        let d = rate_limit_delay(Some("soon"), Some("later"), 0, 0, &policy(), &mut rng);
        assert!((1_000..=1_200).contains(&ms(d)), "{d:?}");
    }

    #[test]
    fn told_wait_is_the_servers_wait_or_nothing() {
        let now = 1_700_000_000_000;
        assert_eq!(told_wait(Some("3"), Some("1700000001500"), now), Some(Duration::from_secs(3)));
        assert_eq!(told_wait(Some("0.5"), None, now), Some(Duration::from_millis(500)));
        assert_eq!(told_wait(None, Some("1700000001500"), now), Some(Duration::from_millis(1500)));
        assert_eq!(told_wait(Some("later"), Some("1700000000250.0"), now), Some(Duration::from_millis(250)));
        // Zero, past, negative or missing: the caller has to guess, and such guesses are counted.
        assert_eq!(told_wait(Some("0"), Some("1700000001500"), now), None);
        assert_eq!(told_wait(None, Some("1600000000000"), now), None);
        assert_eq!(told_wait(None, Some("-5"), now), None);
        assert_eq!(told_wait(None, Some(&now.to_string()), now), None);
        assert_eq!(told_wait(None, None, now), None);
    }

    #[tokio::test]
    async fn limit_halves_on_429_and_recovers_one_per_window() {
        let l = AdaptiveLimit::new(8);
        let held: Vec<_> = futures::future::join_all((0..3).map(|_| l.acquire())).await;
        l.on_rate_limited();
        assert_eq!(l.limit(), 4);
        // A burst of 429s within the cooldown is one signal.
        l.on_rate_limited();
        assert_eq!(l.limit(), 4);
        drop(held);
        assert_eq!(l.sem.available_permits(), 4);
        for _ in 0..4 {
            l.on_success();
        }
        assert_eq!(l.limit(), 5);
        assert_eq!(l.sem.available_permits(), 5);
        for _ in 0..100 {
            l.on_success();
        }
        assert_eq!(l.limit(), 8);
        assert_eq!(l.sem.available_permits(), 8);
    }

    #[tokio::test]
    async fn busy_permits_are_forgotten_when_released() {
        let l = AdaptiveLimit::new(4);
        let held: Vec<_> = futures::future::join_all((0..4).map(|_| l.acquire())).await;
        l.on_rate_limited();
        assert_eq!(l.limit(), 2);
        assert_eq!(l.sem.available_permits(), 0);
        drop(held);
        assert_eq!(l.sem.available_permits(), 2);
    }
}
