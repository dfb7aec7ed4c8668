//! When to try again: the backoff schedule, optional jitter and `Retry-After`.

use std::time::Duration;

/// The retry schedule: one delay per retry (so `delays.len() + 1` attempts at most).
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    delays: Vec<Duration>,
    jitter: bool,
}

impl Backoff {
    /// A schedule from delays in seconds (negative or non-finite delays read as zero).
    pub fn new(delays_s: &[f64], jitter: bool) -> Backoff {
        let delays = delays_s
            .iter()
            .map(|&s| Duration::from_secs_f64(if s.is_finite() && s > 0.0 { s } else { 0.0 }))
            .collect();
        Backoff { delays, jitter }
    }

    /// Most HTTP attempts one call may make.
    pub fn max_attempts(&self) -> u32 {
        u32::try_from(self.delays.len()).unwrap_or(u32::MAX - 1) + 1
    }

    /// Delay before attempt `attempts + 1`, after `attempts` failed ones; `None` when exhausted.
    ///
    /// `retry_after` (a 429's advice) replaces the scheduled delay when present.
    pub fn delay_after(&self, attempts: u32, retry_after: Option<f64>) -> Option<Duration> {
        let index = usize::try_from(attempts).ok()?.checked_sub(1)?;
        let scheduled = *self.delays.get(index)?;
        if let Some(advice) = retry_after.filter(|s| s.is_finite() && *s >= 0.0) {
            return Some(Duration::from_secs_f64(advice));
        }
        if self.jitter {
            // Full jitter in [50%, 150%) of the scheduled delay: spreads synchronized retries.
            let factor = 0.5 + rand::random::<f64>();
            return Some(scheduled.mul_f64(factor));
        }
        Some(scheduled)
    }
}

/// Parse a `Retry-After` header: delta-seconds (integer or decimal). HTTP dates are ignored.
pub fn parse_retry_after(value: &str) -> Option<f64> {
    let seconds: f64 = value.trim().parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then_some(seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_schedule_doubles_from_750_ms() {
        let b = Backoff::new(&[0.75, 1.5, 3.0], false);
        assert_eq!(b.max_attempts(), 4);
        assert_eq!(b.delay_after(1, None), Some(Duration::from_millis(750)));
        assert_eq!(b.delay_after(2, None), Some(Duration::from_millis(1500)));
        assert_eq!(b.delay_after(3, None), Some(Duration::from_millis(3000)));
        assert_eq!(b.delay_after(4, None), None);
        assert_eq!(b.delay_after(0, None), None);
    }

    #[test]
    fn retry_after_replaces_the_delay_but_not_the_budget() {
        let b = Backoff::new(&[0.75, 1.5], false);
        assert_eq!(b.delay_after(1, Some(2.0)), Some(Duration::from_secs(2)));
        assert_eq!(b.delay_after(3, Some(2.0)), None);
    }

    #[test]
    fn jitter_stays_within_half_and_one_and_a_half() {
        let b = Backoff::new(&[1.0], true);
        for _ in 0..200 {
            let d = b.delay_after(1, None).unwrap();
            assert!(d >= Duration::from_millis(500) && d < Duration::from_millis(1500));
        }
    }

    #[test]
    fn empty_schedule_means_one_attempt() {
        let b = Backoff::new(&[], false);
        assert_eq!(b.max_attempts(), 1);
        assert_eq!(b.delay_after(1, None), None);
        assert_eq!(
            Backoff::new(&[-1.0, f64::NAN], false).delay_after(2, None),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn retry_after_reads_seconds() {
        assert_eq!(parse_retry_after("3"), Some(3.0));
        assert_eq!(parse_retry_after(" 0.5 "), Some(0.5));
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
