//! When to try again: the backoff schedule, optional jitter and `Retry-After`.
//!
//! No `Duration` here is built by a call that can panic: delays come from the caller's settings
//! and `Retry-After` from the network, and either may be any number.

use std::time::Duration;

use super::clock;

/// The longest delay a schedule holds (longer ones are cut to it): about 31 years.
const LONGEST_DELAY: Duration = Duration::from_secs(1 << 30);

/// `seconds` as a `Duration`: negative or NaN -> zero, beyond `LONGEST_DELAY` -> that.
pub fn saturating_duration(seconds: f64) -> Duration {
    if seconds.is_nan() || seconds <= 0.0 {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(seconds)
        .unwrap_or(LONGEST_DELAY)
        .min(LONGEST_DELAY)
}

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
            .map(|&s| saturating_duration(if s.is_finite() { s } else { 0.0 }))
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
            return Some(saturating_duration(advice));
        }
        if self.jitter {
            // Full jitter in [50%, 150%) of the scheduled delay: spreads synchronized retries.
            let factor = 0.5 + rand::random::<f64>();
            return Some(saturating_duration(scheduled.as_secs_f64() * factor));
        }
        Some(scheduled)
    }
}

/// Seconds to wait from a `Retry-After` value (RFC 9110 section 10.2.3), read exactly as
/// `harness/orders/retry_after.py` reads it (its docstring has the rules):
/// surrounding spaces and tabs ignored; ASCII digits with an optional decimal fraction read as
/// a double (too many digits: infinity); else an HTTP date in one of its three forms, as the
/// seconds from `now_unix` until then (0 if past); anything else is no advice (`None`).
pub fn parse_retry_after(value: &str, now_unix: f64) -> Option<f64> {
    let text = value.trim_matches(|c| c == ' ' || c == '\t');
    if is_delay_seconds(text) {
        return text.parse().ok();
    }
    let when = clock::http_date(text, now_unix)?;
    Some((when as f64 - now_unix).max(0.0))
}

/// `1*DIGIT [ "." 1*DIGIT ]`.
fn is_delay_seconds(text: &str) -> bool {
    let (whole, fraction) = match text.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (text, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(whole) && fraction.is_none_or(digits)
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
    fn retry_after_reads_seconds_and_refuses_other_numbers() {
        let now = 1_800_000_000.5;
        assert_eq!(parse_retry_after("3", now), Some(3.0));
        assert_eq!(parse_retry_after(" 0.5\t", now), Some(0.5));
        assert_eq!(parse_retry_after("9999999999", now), Some(9_999_999_999.0));
        assert_eq!(parse_retry_after("100000000000000000000", now), Some(1e20));
        assert_eq!(
            parse_retry_after(&"9".repeat(400), now),
            Some(f64::INFINITY)
        );
        for bad in [
            "-1", "+5", "1e20", "inf", "Infinity", "NaN", "0x10", "5.", ".5", "5 s", "", "1_0",
        ] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn retry_after_reads_http_dates_as_seconds_from_now() {
        let now = 784_111_777.0 - 90.25; // 90.25 s before Sun, 06 Nov 1994 08:49:37 GMT
        for form in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "Sun Nov 06 08:49:37 1994",
        ] {
            assert_eq!(parse_retry_after(form, now), Some(90.25), "{form}");
        }
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now + 1000.0),
            Some(0.0),
            "a date in the past means now"
        );
        assert_eq!(
            parse_retry_after("sun, 06 nov 1994 08:49:37 gmt", now),
            None
        );
    }

    #[test]
    fn no_delay_of_any_size_panics() {
        let b = Backoff::new(&[1e300, f64::INFINITY, f64::MAX], true);
        assert_eq!(
            b.delay_after(1, None).map(|d| d <= LONGEST_DELAY),
            Some(true)
        );
        assert_eq!(b.delay_after(1, Some(1e20)), Some(LONGEST_DELAY));
        assert_eq!(saturating_duration(f64::NAN), Duration::ZERO);
        assert_eq!(saturating_duration(-3.0), Duration::ZERO);
        assert_eq!(saturating_duration(1.5), Duration::from_millis(1500));
    }
}
