//! Wall-clock helpers without a date crate: ISO-8601 UTC timestamps for request bodies, and
//! the HTTP dates a `Retry-After` may carry.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Civil date (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's algorithm).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = year - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const LONG_DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `n` ASCII digits exactly, as a number.
fn digits(text: &str, n: usize) -> Option<i64> {
    (text.len() == n && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

/// `HH:MM:SS` -> (hour, minute, second), each two digits (range checked by the caller).
fn time_of_day(text: &str) -> Option<(i64, i64, i64)> {
    let mut parts = text.split(':');
    let h = digits(parts.next()?, 2)?;
    let m = digits(parts.next()?, 2)?;
    let s = digits(parts.next()?, 2)?;
    parts.next().is_none().then_some((h, m, s))
}

fn month_number(name: &str) -> Option<u32> {
    let index = MONTHS.iter().position(|m| *m == name)?;
    u32::try_from(index + 1).ok()
}

/// The Unix time (whole seconds) of an HTTP date (RFC 9110 section 5.6.7) in any of its three
/// forms: IMF-fixdate `Sun, 06 Nov 1994 08:49:37 GMT`, RFC 850 `Sunday, 06-Nov-94 08:49:37
/// GMT`, asctime `Sun Nov  6 08:49:37 1994`. Names are case-sensitive; the day is checked
/// against its month, the weekday is not checked against the date; a two-digit year more than
/// 50 years ahead of `now_unix` counts from the previous century. Mirrors `http_date` of
/// `harness/orders/retry_after.py`.
pub fn http_date(text: &str, now_unix: f64) -> Option<i64> {
    let (year, month, day, clock) = if let Some((name, rest)) = text.split_once(", ") {
        if DAYS.contains(&name) {
            // IMF-fixdate: `06 Nov 1994 08:49:37 GMT`
            let f: Vec<&str> = rest.split(' ').collect();
            match f.as_slice() {
                [d, m, y, t, "GMT"] => (digits(y, 4)?, month_number(m)?, digits(d, 2)?, *t),
                _ => return None,
            }
        } else if LONG_DAYS.contains(&name) {
            // RFC 850: `06-Nov-94 08:49:37 GMT`
            let f: Vec<&str> = rest.split(' ').collect();
            let [date, t, "GMT"] = f.as_slice() else {
                return None;
            };
            let d: Vec<&str> = date.split('-').collect();
            let [dd, mm, yy] = d.as_slice() else {
                return None;
            };
            let this_year = civil_from_days((now_unix / 86_400.0).floor() as i64).0;
            let mut year = this_year - this_year.rem_euclid(100) + digits(yy, 2)?;
            if year > this_year + 50 {
                year -= 100;
            }
            (year, month_number(mm)?, digits(dd, 2)?, *t)
        } else {
            return None;
        }
    } else {
        // asctime: `Sun Nov  6 08:49:37 1994` (the day is two digits or a space and one)
        let (name, rest) = text.split_at_checked(3)?;
        let rest = rest.strip_prefix(' ')?;
        if !DAYS.contains(&name) || rest.len() != 20 {
            return None;
        }
        let (m, rest) = rest.split_at_checked(3)?;
        let (sep, rest) = rest.split_at_checked(1)?;
        let (d, rest) = rest.split_at_checked(2)?;
        let (sep2, rest) = rest.split_at_checked(1)?;
        let (t, rest) = rest.split_at_checked(8)?;
        let (sep3, y) = rest.split_at_checked(1)?;
        if (sep, sep2, sep3) != (" ", " ", " ") {
            return None;
        }
        let day = match d.strip_prefix(' ') {
            Some(one) => digits(one, 1)?,
            None => digits(d, 2)?,
        };
        (digits(y, 4)?, month_number(m)?, day, t)
    };
    let (h, mi, s) = time_of_day(clock)?;
    let day = u32::try_from(day).ok()?;
    if !(1..=days_in_month(year, month)).contains(&day) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + h * 3600 + mi * 60 + s)
}

/// `YYYY-MM-DDTHH:MM:SS.ffffff+00:00` for a Unix time in seconds, the microseconds rounded as
/// Python's `datetime.fromtimestamp` rounds them (the fraction of the second times 1e6, half to
/// even), so both clients print the same text for the same time.
pub fn iso_utc(unix_s: f64) -> String {
    let whole = unix_s.trunc();
    let mut micros = ((unix_s - whole) * 1e6).round_ties_even();
    let mut secs = whole;
    if micros >= 1e6 {
        micros -= 1e6;
        secs += 1.0;
    } else if micros < 0.0 {
        micros += 1e6;
        secs -= 1.0;
    }
    // Both are whole numbers here; a time beyond i64 seconds saturates (no such request).
    let (secs, micros) = (secs as i64, micros as i64);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}+00:00",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(iso_utc(0.0), "1970-01-01T00:00:00.000000+00:00");
        assert_eq!(iso_utc(951_782_400.5), "2000-02-29T00:00:00.500000+00:00");
        assert_eq!(
            iso_utc(1_752_872_401.268_009),
            "2025-07-18T21:00:01.268009+00:00"
        );
        assert_eq!(iso_utc(-1.0), "1969-12-31T23:59:59.000000+00:00");
        // Half a microsecond rounds to even, as Python's datetime.fromtimestamp does.
        assert_eq!(iso_utc(0.0000005), "1970-01-01T00:00:00.000000+00:00");
        assert_eq!(iso_utc(0.0000015), "1970-01-01T00:00:00.000002+00:00");
        assert_eq!(iso_utc(-0.25), "1969-12-31T23:59:59.750000+00:00");
        assert_eq!(iso_utc(0.9999996), "1970-01-01T00:00:01.000000+00:00");
    }

    #[test]
    fn http_dates_in_their_three_forms() {
        let now = 1_800_000_000.0; // 2027
        for form in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "Sun Nov 06 08:49:37 1994",
        ] {
            assert_eq!(http_date(form, now), Some(784_111_777), "{form}");
        }
        assert_eq!(
            http_date("Tue, 29 Feb 2000 00:00:00 GMT", now),
            Some(951_782_400)
        );
        // Two-digit years: 70 is 2070 (43 years ahead), 99 is 1999 (2099 is 72 ahead).
        assert_eq!(
            http_date("Thursday, 01-Jan-70 00:00:00 GMT", now),
            Some(3_155_760_000)
        );
        assert_eq!(
            http_date("Thursday, 31-Dec-99 23:59:59 GMT", now),
            Some(946_684_799)
        );
        for bad in [
            "Sun, 31 Nov 2026 08:49:37 GMT",
            "Sun, 29 Feb 2026 08:49:37 GMT",
            "Sun, 06 Nov 2026 24:00:00 GMT",
            "Sun, 06 Nov 2026 08:49:37 UTC",
            "sun, 06 Nov 2026 08:49:37 GMT",
            "Sun, 6 Nov 2026 08:49:37 GMT",
            "Sunday, 06 Nov 2026 08:49:37 GMT",
            "Sun Nov 6 08:49:37 1994",
            "Sun Nov  6 08:49:37 1994 ",
            "Sun,06 Nov 2026 08:49:37 GMT",
            "",
        ] {
            assert_eq!(http_date(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn days_from_civil_inverts_civil_from_days() {
        for days in [-800_000, -1, 0, 11_016, 20_781, 2_000_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn civil_dates_round_the_leap_years() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_781), (2026, 11, 24));
    }
}
