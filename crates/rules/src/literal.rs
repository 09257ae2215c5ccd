//! Reading and writing the text of date and timestamp literals, shared by the parser, the
//! printer and resolution (which coerces strings compared with dates).

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("1970-01-01 is a valid date")
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date, if it is a real calendar day.
pub(crate) fn parse_date(text: &str) -> Option<i32> {
    let text = text.trim();
    // chrono accepts one-digit months and days; the language asks for the ISO form.
    let bytes = text.as_bytes();
    if bytes.len() < 10 || bytes[bytes.len() - 3] != b'-' || bytes[bytes.len() - 6] != b'-' {
        return None;
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    i32::try_from(date.signed_duration_since(epoch()).num_days()).ok()
}

/// Microseconds since the epoch (UTC) of an RFC 3339 timestamp. A space may replace the `T`,
/// a missing offset means UTC, and a bare date means its midnight.
pub(crate) fn parse_timestamp(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Some(days) = parse_date(text) {
        return i64::from(days).checked_mul(segmenta_core::MICROS_PER_DAY);
    }
    let normalized = match text.char_indices().nth(10) {
        Some((i, ' ' | 't')) => format!("{}T{}", &text[..i], &text[i + 1..]),
        _ => text.to_string(),
    };
    if let Ok(instant) = DateTime::parse_from_rfc3339(&normalized) {
        return Some(instant.timestamp_micros());
    }
    let naive = NaiveDateTime::parse_from_str(&normalized, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(&normalized, "%Y-%m-%dT%H:%M"))
        .ok()?;
    Some(naive.and_utc().timestamp_micros())
}

/// `YYYY-MM-DD` for days since 1970-01-01.
pub fn format_date(days: i32) -> String {
    match epoch().checked_add_signed(chrono::TimeDelta::days(i64::from(days))) {
        Some(date) => date.format("%Y-%m-%d").to_string(),
        None => format!("{days} days after 1970-01-01"),
    }
}

/// RFC 3339 in UTC, with microseconds only when they are not zero.
pub fn format_timestamp(micros: i64) -> String {
    match DateTime::<Utc>::from_timestamp_micros(micros) {
        Some(instant) if micros % 1_000_000 == 0 => instant.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Some(instant) => instant.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        None => format!("{micros} microseconds after 1970-01-01T00:00:00Z"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Option<&str>) {
        let actual = parse_timestamp(input).map(format_timestamp);
        assert_eq!(actual.as_deref(), expected, "input: {input:?}");
    }

    #[test]
    fn timestamps() {
        check("2024-01-31T10:20:30Z", Some("2024-01-31T10:20:30Z"));
        check("2024-01-31 10:20:30", Some("2024-01-31T10:20:30Z"));
        check("2024-01-31T10:20:30.5+02:00", Some("2024-01-31T08:20:30.500000Z"));
        check("2024-01-31", Some("2024-01-31T00:00:00Z"));
        check("1969-12-31T23:59:59.999999Z", Some("1969-12-31T23:59:59.999999Z"));
        check("2024-02-30T00:00:00", None);
        check("yesterday", None);
    }

    #[test]
    fn dates() {
        assert_eq!(parse_date("1970-01-02"), Some(1));
        assert_eq!(parse_date("2024-02-30"), None);
        assert_eq!(parse_date("2024-2-3"), None);
        assert_eq!(format_date(-1), "1969-12-31");
        assert_eq!(format_date(parse_date("0001-01-01").expect("valid")), "0001-01-01");
    }
}
