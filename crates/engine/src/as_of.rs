//! The instant an evaluation is as of: events at or after it are ignored, windows end there.
//! `--as-of` and `[project] as_of` are parsed here.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use segmenta_core::MICROS_PER_DAY;

use crate::error::{Error, Result};

/// When a run is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsOf {
    /// The instant, microseconds since the epoch, UTC: events at or after it are ignored.
    pub instant: i64,
}

impl AsOf {
    /// Now.
    pub fn now() -> AsOf {
        AsOf { instant: Utc::now().timestamp_micros() }
    }

    /// Parses `--as-of`: a date `D` means the instant `D+1 00:00:00 UTC` (the whole day counts);
    /// an RFC 3339 instant is taken as is; a date-time without offset is UTC.
    pub fn parse(value: &str) -> Result<AsOf> {
        let value = value.trim();
        if let Ok(date) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
            return Ok(AsOf::end_of(date));
        }
        if let Ok(instant) = DateTime::parse_from_rfc3339(value) {
            return Ok(AsOf { instant: instant.timestamp_micros() });
        }
        for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
            if let Ok(naive) = chrono::NaiveDateTime::parse_from_str(value, format) {
                return Ok(AsOf { instant: naive.and_utc().timestamp_micros() });
            }
        }
        Err(Error::AsOf { value: value.to_string() })
    }

    /// The end of `date` (the instant `date + 1` at 00:00 UTC), as a date given to `--as-of`
    /// means.
    pub fn end_of(date: NaiveDate) -> AsOf {
        let days = date.signed_duration_since(NaiveDate::default()).num_days();
        AsOf { instant: (days + 1) * MICROS_PER_DAY }
    }

    /// RFC 3339 text of the instant.
    pub fn to_rfc3339(self) -> String {
        DateTime::from_timestamp_micros(self.instant)
            .map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
            .unwrap_or_else(|| self.instant.to_string())
    }
}
