//! The business-day calendar of the review process: Monday to Friday in UTC, without holidays.
//! A rule of the process rather than of one aggregate, so the deadlines and an audit that
//! recomputes them share it.

use chrono::{DateTime, Datelike, Days, Utc, Weekday};

fn is_weekend(at: DateTime<Utc>) -> bool {
    matches!(at.weekday(), Weekday::Sat | Weekday::Sun)
}

/// The same time of day, `days` business days (Monday to Friday, UTC, no holidays) after `at`:
/// Friday 15:00 + 1 is Monday 15:00; Saturday or Sunday 10:00 + 1 is Monday 10:00. `None` when
/// out of range.
pub fn add_business_days(at: DateTime<Utc>, days: u32) -> Option<DateTime<Utc>> {
    let one = Days::new(1);
    let mut at = at;
    let mut left = days;
    if left == 0 {
        return Some(at);
    }
    if is_weekend(at) {
        while is_weekend(at) {
            at = at.checked_add_days(one)?;
        }
        left -= 1;
    }
    // From a weekday, every 5 business days are one calendar week.
    at = at.checked_add_days(Days::new(u64::from(left / 5) * 7))?;
    for _ in 0..left % 5 {
        at = at.checked_add_days(one)?;
        while is_weekend(at) {
            at = at.checked_add_days(one)?;
        }
    }
    Some(at)
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    #[test]
    fn business_days_skip_weekends() {
        let at = |d: u32, hour: u32| Utc.with_ymd_and_hms(2024, 3, d, hour, 30, 0).unwrap();
        // March 2024: Fri 15, Sat 16, Sun 17, Mon 18, Tue 19, … Fri 22, Mon 25.
        for (from, days, expected) in [
            (at(13, 9), 0, at(13, 9)),
            (at(13, 9), 1, at(14, 9)),
            (at(15, 15), 1, at(18, 15)),
            (at(16, 10), 1, at(18, 10)),
            (at(17, 10), 1, at(18, 10)),
            (at(16, 10), 0, at(16, 10)),
            (at(15, 15), 2, at(19, 15)),
            (at(18, 8), 5, at(25, 8)),
            (at(15, 8), 5, at(22, 8)),
            (at(16, 8), 5, at(22, 8)),
            (at(14, 8), 6, at(22, 8)),
            (at(13, 8), 10, at(27, 8)),
        ] {
            assert_eq!(
                add_business_days(from, days),
                Some(expected),
                "{from} + {days}"
            );
        }
        // The arithmetic shortcut agrees with stepping one day at a time.
        for start in 0..14 {
            let from = at(11, 12) + Duration::days(start);
            for days in 0..23 {
                let mut slow = from;
                for i in 0..days {
                    if i == 0 && is_weekend(slow) {
                        while is_weekend(slow) {
                            slow += Duration::days(1);
                        }
                        continue;
                    }
                    slow += Duration::days(1);
                    while is_weekend(slow) {
                        slow += Duration::days(1);
                    }
                }
                assert_eq!(add_business_days(from, days), Some(slow), "{from} + {days}");
            }
        }
        assert_eq!(add_business_days(DateTime::<Utc>::MAX_UTC, 1), None);
    }
}
