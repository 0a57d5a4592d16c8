//! Retry with jittered exponential backoff, for requests declared safe to repeat.
//!
//! ## Guarantees
//! - Only a request sent with [`Safety::Idempotent`] is ever sent twice; a create (a POST that
//!   makes something) is [`Safety::Once`] and gets exactly one attempt whatever the answer.
//! - Only 429, 502, 503 and 504 are retried: answers that say the server (or a proxy in front
//!   of it) did not do the work. Transport failures are returned at once (the caller's own
//!   loop, e.g. the engine's polling, decides).
//! - At most [`Retry::attempts`] attempts, and no wait starts that would end after
//!   [`Retry::max_total`] from the first attempt: the last answer is returned instead.
//! - A `Retry-After` (seconds or an HTTP date) is honoured: the next attempt is never earlier;
//!   without it the wait is `base * 2^n` capped at `max_delay`, jittered into its upper half so
//!   that many clients do not retry in step.
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};

/// Whether a request may be sent again after an answer that says it was not served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Safety {
    /// Repeating it changes nothing (a GET, a status look-up): retried under [`Retry`].
    Idempotent,
    /// Sent once, never repeated here (a create POST, a kill).
    Once,
}

/// How often and how long to retry [`Safety::Idempotent`] requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Attempts in all, the first included (1: no retry).
    pub attempts: u32,
    /// Wait before the second attempt (doubled for each further one).
    pub base: Duration,
    /// Longest computed wait (a `Retry-After` may ask for more, within `max_total`).
    pub max_delay: Duration,
    /// No wait is started that would end later than this after the first attempt.
    pub max_total: Duration,
}

impl Retry {
    /// One attempt: no retry at all.
    pub const fn never() -> Retry {
        Retry {
            attempts: 1,
            base: Duration::ZERO,
            max_delay: Duration::ZERO,
            max_total: Duration::ZERO,
        }
    }
}

impl Default for Retry {
    /// 4 attempts, 200 ms doubling up to 5 s, 30 s in all.
    fn default() -> Retry {
        Retry {
            attempts: 4,
            base: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
            max_total: Duration::from_secs(30),
        }
    }
}

/// True for the statuses that say "not served, try again".
pub fn retryable(status: u16) -> bool {
    matches!(status, 429 | 502 | 503 | 504)
}

/// The wait a `Retry-After` header asks for, as of `now`: delta seconds or an HTTP date (a
/// date in the past is zero). `None`: absent or unreadable.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(text).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

impl Retry {
    /// The wait before attempt `attempt + 1` (after `attempt` attempts, 1-based), given the
    /// server's `Retry-After` and the time `spent` since the first attempt; `None`: stop.
    pub fn next_wait(
        &self,
        attempt: u32,
        server: Option<Duration>,
        spent: Duration,
    ) -> Option<Duration> {
        if attempt >= self.attempts {
            return None;
        }
        let exp = self
            .base
            .saturating_mul(1u32.checked_shl(attempt - 1).unwrap_or(u32::MAX))
            .min(self.max_delay);
        // Upper half jitter: at least half the backoff, so waits still grow.
        let jittered = exp / 2 + exp.mul_f64(jitter() / 2.0);
        let wait = server.map_or(jittered, |s| s.max(jittered));
        (spent.saturating_add(wait) <= self.max_total).then_some(wait)
    }
}

/// A number in [0, 1).
fn jitter() -> f64 {
    // A failing OS random source only loses the spreading, never the retry.
    let r = getrandom::u64().unwrap_or(0);
    (r >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(90));
        h.insert(RETRY_AFTER, later.parse().unwrap());
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(90)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(90));
        h.insert(RETRY_AFTER, past.parse().unwrap());
        assert_eq!(retry_after(&h, now), Some(Duration::ZERO));
        h.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h, now), None);
    }

    #[test]
    fn waits_grow_jittered_and_stop_at_the_bounds() {
        let r = Retry {
            attempts: 4,
            base: Duration::from_millis(100),
            max_delay: Duration::from_millis(300),
            max_total: Duration::from_secs(10),
        };
        for _ in 0..50 {
            let w1 = r.next_wait(1, None, Duration::ZERO).unwrap();
            assert!(
                w1 >= Duration::from_millis(50) && w1 <= Duration::from_millis(100),
                "{w1:?}"
            );
            let w3 = r.next_wait(3, None, Duration::ZERO).unwrap();
            assert!(
                w3 >= Duration::from_millis(150) && w3 <= Duration::from_millis(300),
                "{w3:?}"
            );
        }
        assert_eq!(r.next_wait(4, None, Duration::ZERO), None, "attempts bound");
        let s = Some(Duration::from_secs(2));
        assert_eq!(r.next_wait(1, s, Duration::ZERO), s, "Retry-After wins");
        assert_eq!(
            r.next_wait(1, s, Duration::from_secs(9)),
            None,
            "total bound"
        );
        assert_eq!(Retry::never().next_wait(1, None, Duration::ZERO), None);
    }
}
