//! When to try again: exponential backoff with jitter, capped by attempts
//! and by total time.

use std::time::Duration;

use rand::Rng;

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_attempts: i64,
    /// No retry is scheduled later than this after the job was queued.
    pub max_age: Duration,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1`, after attempt `attempt` failed.
    /// "Equal jitter": a random point in the upper half of the exponential
    /// step, so that waits still grow while instances spread out.
    pub fn delay(&self, attempt: i64, retry_after: Option<Duration>) -> Duration {
        let exponent = (attempt - 1).clamp(0, 30) as u32;
        let step = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(exponent))
            .min(self.max_delay);
        let jittered = step / 2 + step.mul_f64(rand::thread_rng().gen_range(0.0..=0.5));
        // A receiver's Retry-After is honoured, within our own bounds.
        match retry_after {
            Some(asked) => asked.clamp(self.base_delay, self.max_delay),
            None => jittered,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 10,
            max_age: Duration::from_secs(3600),
            base_delay: Duration::from_secs(10),
            max_delay: Duration::from_secs(600),
        }
    }

    #[test]
    fn delays_grow_and_stay_within_their_step() {
        let p = policy();
        let mut previous_max = Duration::ZERO;
        for attempt in 1..=6 {
            let step = Duration::from_secs(10 * 2u64.pow(attempt as u32 - 1)).min(p.max_delay);
            for _ in 0..50 {
                let d = p.delay(attempt, None);
                assert!(d >= step / 2 && d <= step, "attempt {attempt}: {d:?}");
                assert!(d >= previous_max / 2);
            }
            previous_max = step;
        }
        assert!(p.delay(40, None) <= p.max_delay);
    }

    #[test]
    fn retry_after_is_honoured_within_bounds() {
        let p = policy();
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(30))),
            Duration::from_secs(30)
        );
        assert_eq!(p.delay(1, Some(Duration::from_secs(1))), p.base_delay);
        assert_eq!(p.delay(1, Some(Duration::from_secs(86400))), p.max_delay);
    }
}
