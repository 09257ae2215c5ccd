//! Trait windows: which events before the as-of instant a trait reads. A window is a length
//! back from the instant (`within 90d`), a number of calendar months or years back from it
//! (`within 6mo`, `within 1y`), or a range of whole UTC days (`between 2025-01-01 and
//! 2025-03-31`). Every consumer (the scan, the DataFusion lowering, the reference folds) asks
//! [`Within::bounds`] for the same half-open interval of instants, so the calendar arithmetic
//! exists once.

use std::fmt;

use crate::types::{MICROS_PER_DAY, Window};

/// The most calendar years (`Ny`, or `N*12` months as `Nmo`) a window may span: far past any
/// event, and short enough that no bound overflows an instant.
pub const MAX_CALENDAR_YEARS: u32 = 200_000;

/// The window of a trait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Within {
    /// `within 90d`: events at or after `as_of - length`.
    Last(Window),
    /// `within 6mo`: events at or after the as-of instant moved back by this many calendar
    /// months, the day clamped to the end of a shorter month (as SQL's `TIMESTAMP - INTERVAL
    /// 'N months'`).
    Months(u32),
    /// `within 1y`: as [`Within::Months`] with twelve months a year.
    Years(u32),
    /// `between FIRST and LAST`: events on the UTC days `first` to `last` (days since the epoch),
    /// both inclusive.
    Days {
        /// The first day.
        first: i32,
        /// The last day.
        last: i32,
    },
}

/// The instants a window keeps: `start <= ts < end`, microseconds since the epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Bounds {
    /// The first instant inside (inclusive).
    pub start: i64,
    /// The first instant after (exclusive); never after the as-of instant.
    pub end: i64,
}

impl Bounds {
    /// Everything before the as-of instant: no window.
    pub fn all(as_of: i64) -> Bounds {
        Bounds { start: i64::MIN, end: as_of }
    }
}

/// How to write a trait window, for hints.
pub const WITHIN_HINT: &str = "write a whole number followed by h, d, w, mo or y, e.g. 90d or 6mo";

impl Within {
    /// Parses the length after `within`: `Nh`, `Nd`, `Nw` (see [`Window`]), `Nmo` or `Ny`
    /// (units case-insensitive). The error is a message naming the text.
    pub fn parse_length(text: &str) -> Result<Within, String> {
        let lower = text.to_ascii_lowercase();
        let (digits, years) = if let Some(digits) = lower.strip_suffix("mo") {
            (digits, false)
        } else if let Some(digits) = lower.strip_suffix('y') {
            (digits, true)
        } else {
            return text.parse::<Window>().map(Within::Last);
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("invalid window `{text}`"));
        }
        let too_long = || format!("window `{text}` is too long");
        let amount: u32 = digits.parse().map_err(|_| too_long())?;
        if amount == 0 {
            return Err(format!("window `{text}` is empty"));
        }
        let limit = if years { MAX_CALENDAR_YEARS } else { MAX_CALENDAR_YEARS * 12 };
        if amount > limit {
            return Err(too_long());
        }
        Ok(if years { Within::Years(amount) } else { Within::Months(amount) })
    }

    /// The instants the window keeps as of `as_of` (microseconds, UTC). A range that lies
    /// after the instant keeps nothing (`start >= end`).
    pub fn bounds(self, as_of: i64) -> Bounds {
        let start = match self {
            Within::Last(window) => as_of.saturating_sub(window.micros()),
            Within::Months(months) => months_before(as_of, i64::from(months)),
            Within::Years(years) => months_before(as_of, 12 * i64::from(years)),
            Within::Days { first, .. } => i64::from(first).saturating_mul(MICROS_PER_DAY),
        };
        let end = match self {
            Within::Days { last, .. } => (i64::from(last) + 1).saturating_mul(MICROS_PER_DAY).min(as_of),
            _ => as_of,
        };
        Bounds { start, end }
    }

    /// Optional bounds: `None` (no window) keeps everything before the instant.
    pub fn bounds_of(within: Option<Within>, as_of: i64) -> Bounds {
        within.map_or(Bounds::all(as_of), |w| w.bounds(as_of))
    }
}

/// The instant `months` calendar months before `instant`, at the same time of day, the day of
/// the month clamped to the target month's last day; `i64::MIN` when that is before every
/// representable instant.
fn months_before(instant: i64, months: i64) -> i64 {
    let (days, time_of_day) = (instant.div_euclid(MICROS_PER_DAY), instant.rem_euclid(MICROS_PER_DAY));
    let (year, month, day) = civil_from_days(days);
    let index = year * 12 + (month - 1) - months;
    let (year, month) = (index.div_euclid(12), index.rem_euclid(12) + 1);
    let day = day.min(days_in_month(year, month));
    days_from_civil(year, month, day)
        .checked_mul(MICROS_PER_DAY)
        .and_then(|micros| micros.checked_add(time_of_day))
        .unwrap_or(i64::MIN)
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The proleptic Gregorian date of a day since 1970-01-01 (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 };
    (year_of_era + era * 400 + i64::from(month <= 2), month, day)
}

/// Writes a day since the epoch as `YYYY-MM-DD`.
struct Day(i32);

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (year, month, day) = civil_from_days(i64::from(self.0));
        write!(f, "{year:04}-{month:02}-{day:02}")
    }
}

impl fmt::Display for Within {
    /// The window as written in a trait, keyword included: `within 90d`, `within 6mo`,
    /// `within 1y`, `between 2025-01-01 and 2025-03-31`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Within::Last(window) => write!(f, "within {window}"),
            Within::Months(months) => write!(f, "within {months}mo"),
            Within::Years(years) => write!(f, "within {years}y"),
            Within::Days { first, last } => write!(f, "between {} and {}", Day(*first), Day(*last)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::WindowUnit;

    /// Microseconds of a UTC instant written `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SS.ffffff`.
    fn instant(text: &str) -> i64 {
        let (date, time) = text.split_once('T').unwrap_or((text, "00:00:00.000000"));
        let part = |s: &str| s.parse::<i64>().expect("test instants are numbers");
        let d: Vec<i64> = date.split('-').map(part).collect();
        let (hms, fraction) = time.split_once('.').unwrap_or((time, "0"));
        let t: Vec<i64> = hms.split(':').map(part).collect();
        let seconds = t[0] * 3600 + t[1] * 60 + t[2];
        days_from_civil(d[0], d[1], d[2]) * MICROS_PER_DAY + seconds * 1_000_000 + part(fraction)
    }

    fn check_start(within: &str, as_of: &str, expected: &str) {
        let window = Within::parse_length(within).expect("test windows parse");
        let bounds = window.bounds(instant(as_of));
        assert_eq!(bounds.start, instant(expected), "{within} as of {as_of}");
        assert_eq!(bounds.end, instant(as_of), "{within} as of {as_of}");
    }

    #[test]
    fn calendar_windows_clamp_the_day_to_the_end_of_a_shorter_month() {
        check_start("1mo", "2024-03-31", "2024-02-29");
        check_start("1mo", "2023-03-31", "2023-02-28");
        check_start("1mo", "2024-03-31T12:30:00.000001", "2024-02-29T12:30:00.000001");
        check_start("1mo", "2024-05-31", "2024-04-30");
        check_start("3mo", "2024-05-31", "2024-02-29");
        check_start("1y", "2024-02-29", "2023-02-28");
        check_start("4y", "2024-02-29", "2020-02-29");
        check_start("6mo", "2025-01-15T08:00:00", "2024-07-15T08:00:00");
        check_start("13mo", "2024-01-31", "2022-12-31");
        check_start("12mo", "2024-07-01", "2023-07-01");
        check_start("1y", "1970-01-01", "1969-01-01");
        check_start("90d", "2024-07-01", "2024-04-02");
    }

    #[test]
    fn calendar_windows_far_back_saturate() {
        let window = Within::Years(MAX_CALENDAR_YEARS);
        assert!(window.bounds(0).start < days_from_civil(-198_000, 1, 1) * MICROS_PER_DAY);
        assert_eq!(Within::Years(1).bounds(i64::MIN + 1).start, i64::MIN);
    }

    #[test]
    fn day_ranges_keep_whole_days_and_end_at_the_as_of_instant() {
        let range = Within::Days { first: 20_089, last: 20_178 }; // 2025-01-01 to 2025-03-31
        assert_eq!(range.to_string(), "between 2025-01-01 and 2025-03-31");
        let bounds = range.bounds(instant("2026-01-01"));
        assert_eq!(bounds, Bounds { start: instant("2025-01-01"), end: instant("2025-04-01") });
        let cut = range.bounds(instant("2025-02-10T06:00:00"));
        assert_eq!(cut, Bounds { start: instant("2025-01-01"), end: instant("2025-02-10T06:00:00") });
    }

    #[test]
    fn civil_dates_round_trip() {
        for days in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_905), (2024, 7, 1));
    }

    #[test]
    fn trait_windows_parse() {
        let check = |text: &str, expected: Result<&str, &str>| {
            let parsed = Within::parse_length(text).map(|w| w.to_string());
            assert_eq!(parsed.as_deref().map_err(String::as_str), expected, "{text}");
        };
        check("6mo", Ok("within 6mo"));
        check("6MO", Ok("within 6mo"));
        check("1y", Ok("within 1y"));
        check("90d", Ok("within 90d"));
        check("0mo", Err("window `0mo` is empty"));
        check("0y", Err("window `0y` is empty"));
        check("mo", Err("invalid window `mo`"));
        check("1.5y", Err("invalid window `1.5y`"));
        check("200001y", Err("window `200001y` is too long"));
        check("2400001mo", Err("window `2400001mo` is too long"));
        check("99999999999y", Err("window `99999999999y` is too long"));
        check("6m", Err("invalid window `6m`"));
        assert_eq!(
            Within::parse_length("2w"),
            Ok(Within::Last(Window { amount: 2, unit: WindowUnit::Week }))
        );
    }
}
