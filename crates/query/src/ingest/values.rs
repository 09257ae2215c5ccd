//! The value grammar shared by every text format: what reads as an int, a float, a bool, a
//! date or a timestamp, type inference over a sample, and the Arrow builders rows go into.

use std::borrow::Cow;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, StringArray, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use chrono::{DateTime, NaiveDate, NaiveDateTime};
use segmenta_core::ValueType;

use super::{BATCH_ROWS, TableSchema, quote};
use crate::{Error, Result};

/// Days from 0001-01-01 (day 1 of the common era) to 1970-01-01.
const UNIX_EPOCH_DAYS_FROM_CE: i32 = 719_163;

/// One parsed value, ready to append to its column's builder.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Cell<'a> {
    Null,
    Str(Cow<'a, str>),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// Days since 1970-01-01.
    Date(i32),
    /// Microseconds since 1970-01-01T00:00:00Z.
    Timestamp(i64),
}

/// Parses a text field (CSV, a JSON string, a Parquet string column) as `ty`.
///
/// An empty field is NULL for every type, including strings: CSV cannot tell an empty string
/// from a missing value, and segmenta treats both as missing so `is null` rules behave the
/// same across formats. Non-string values are trimmed first (so `" 12 "` is 12, and a
/// whitespace-only field is NULL); strings are kept as written. `declared` widens bool to
/// `yes`/`no` for columns whose type the user declared. The error is a message for the user.
pub(super) fn parse_text(text: &str, ty: ValueType, declared: bool) -> Result<Cell<'_>, String> {
    if ty == ValueType::String {
        return Ok(if text.is_empty() { Cell::Null } else { Cell::Str(Cow::Borrowed(text)) });
    }
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Ok(Cell::Null);
    }
    let parsed = match ty {
        ValueType::String => Some(Cell::Str(Cow::Borrowed(text))),
        ValueType::Int => trimmed.parse::<i64>().ok().map(Cell::Int),
        ValueType::Float => {
            return match trimmed.parse::<f64>() {
                // `+ 0.0` reads -0.0 as 0.0: segmenta holds no negative zero.
                Ok(f) if f.is_finite() => Ok(Cell::Float(f + 0.0)),
                Ok(_) => Err(format!("cannot read {} as float: not a finite number", quote(text))),
                Err(_) => Err(cannot_read(text, ty)),
            };
        }
        ValueType::Bool => parse_bool(trimmed, declared).map(Cell::Bool),
        ValueType::Date => parse_date(trimmed).map(Cell::Date),
        ValueType::Timestamp => parse_timestamp(trimmed).map(Cell::Timestamp),
    };
    parsed.ok_or_else(|| cannot_read(text, ty))
}

/// The message for a value that does not read as `ty`.
pub(super) fn cannot_read(text: &str, ty: ValueType) -> String {
    format!("cannot read {} as {ty}", quote(text))
}

/// `true`/`false`/`1`/`0` (any case), plus `yes`/`no` when `lenient`.
fn parse_bool(text: &str, lenient: bool) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        "yes" if lenient => Some(true),
        "no" if lenient => Some(false),
        _ => None,
    }
}

/// `YYYY-MM-DD`, as days since 1970-01-01.
pub(super) fn parse_date(text: &str) -> Option<i32> {
    naive_date(text).map(|d| chrono::Datelike::num_days_from_ce(&d) - UNIX_EPOCH_DAYS_FROM_CE)
}

fn naive_date(text: &str) -> Option<NaiveDate> {
    let bytes = text.as_bytes();
    // chrono accepts unpadded and signed years; segmenta's date grammar is exactly ISO 8601's.
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' || !bytes[0].is_ascii_digit() {
        return None;
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

/// A timestamp as microseconds since the epoch in UTC.
///
/// Accepted: RFC 3339 with `Z` or an offset (converted to UTC); `YYYY-MM-DD HH:MM:SS[.f]`
/// and `YYYY-MM-DDTHH:MM:SS[.f]` without an offset (read as UTC); `YYYY-MM-DD` (midnight
/// UTC).
pub(super) fn parse_timestamp(text: &str) -> Option<i64> {
    if text.len() < 10 || !text.as_bytes()[0].is_ascii_digit() {
        return None;
    }
    if text.len() == 10 {
        return naive_date(text).and_then(|d| d.and_hms_opt(0, 0, 0)).map(|t| t.and_utc().timestamp_micros());
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp_micros());
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%.f%#z"] {
        if let Ok(t) = DateTime::parse_from_str(text, format) {
            return Some(t.timestamp_micros());
        }
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Some(t.and_utc().timestamp_micros());
        }
    }
    None
}

/// How the text (or number) of a time column reads, when it is not ISO 8601 (`[events]
/// time_format`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeFormat {
    /// Seconds since 1970-01-01T00:00:00Z, an integer or a decimal (`1704067200`).
    EpochSeconds,
    /// Milliseconds since 1970-01-01T00:00:00Z (`1704067200000`).
    EpochMillis,
    /// A strftime pattern (`%Y%m%d`, `%d/%m/%Y %H:%M`): without a time of day it is midnight,
    /// without an offset UTC.
    Pattern(String),
}

impl TimeFormat {
    /// `epoch_seconds`, `epoch_millis` or a strftime pattern; the error says what is wrong.
    pub fn parse(text: &str) -> Result<TimeFormat, String> {
        match text {
            "epoch_seconds" => return Ok(TimeFormat::EpochSeconds),
            "epoch_millis" => return Ok(TimeFormat::EpochMillis),
            _ => {}
        }
        let items: Vec<chrono::format::Item<'_>> = chrono::format::StrftimeItems::new(text).collect();
        if items.iter().any(|i| matches!(i, chrono::format::Item::Error)) {
            return Err(format!("`{text}` is not a valid strftime pattern"));
        }
        let has = |spec: &[&str]| spec.iter().any(|s| text.contains(s));
        if !has(&["%Y", "%y", "%G", "%s", "%F", "%D", "%x", "%c", "%+"]) {
            return Err(format!("`{text}` has no year (%Y)"));
        }
        Ok(TimeFormat::Pattern(text.to_string()))
    }
}

/// Reads a time column's text with its declared format as UTC microseconds.
pub(super) fn parse_time<'a>(text: &str, format: &TimeFormat) -> Result<Cell<'a>, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Ok(Cell::Null);
    }
    let fail = || match format {
        TimeFormat::EpochSeconds => format!("cannot read {} as epoch seconds", quote(text)),
        TimeFormat::EpochMillis => format!("cannot read {} as epoch milliseconds", quote(text)),
        TimeFormat::Pattern(p) => format!("cannot read {} as a time in the format `{p}`", quote(text)),
    };
    let micros = match format {
        TimeFormat::EpochSeconds | TimeFormat::EpochMillis => {
            let scale = if *format == TimeFormat::EpochSeconds { 1e6 } else { 1e3 };
            match trimmed.parse::<i64>() {
                Ok(whole) => whole.checked_mul(scale as i64),
                Err(_) => trimmed
                    .parse::<f64>()
                    .ok()
                    .map(|v| (v * scale).round())
                    .filter(|v| v.is_finite() && v.abs() < 9.2e18)
                    .map(|v| v as i64),
            }
        }
        TimeFormat::Pattern(pattern) => DateTime::parse_from_str(trimmed, pattern)
            .map(|t| t.timestamp_micros())
            .ok()
            .or_else(|| {
                NaiveDateTime::parse_from_str(trimmed, pattern).ok().map(|t| t.and_utc().timestamp_micros())
            })
            .or_else(|| {
                NaiveDate::parse_from_str(trimmed, pattern)
                    .ok()
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
                    .map(|t| t.and_utc().timestamp_micros())
            }),
    };
    micros.map(Cell::Timestamp).ok_or_else(fail)
}

/// Type inference for one column: each candidate type stays possible while every non-empty
/// value seen so far reads as it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Inference {
    seen: bool,
    bool_ok: bool,
    int_ok: bool,
    float_ok: bool,
    date_ok: bool,
    timestamp_ok: bool,
}

impl Default for Inference {
    fn default() -> Self {
        Inference {
            seen: false,
            bool_ok: true,
            int_ok: true,
            float_ok: true,
            date_ok: true,
            timestamp_ok: true,
        }
    }
}

impl Inference {
    /// Observes a text value (CSV field); empty and whitespace-only values are skipped.
    ///
    /// Inferred bools are only `true`/`false`: a column of `1`/`0` is an int.
    pub(super) fn observe_text(&mut self, text: &str) {
        let text = text.trim();
        if text.is_empty() {
            return;
        }
        self.seen = true;
        self.bool_ok =
            self.bool_ok && (text.eq_ignore_ascii_case("true") || text.eq_ignore_ascii_case("false"));
        self.int_ok = self.int_ok && text.parse::<i64>().is_ok();
        self.float_ok = self.float_ok && text.parse::<f64>().is_ok_and(f64::is_finite);
        self.observe_temporal(text);
    }

    /// Observes a JSON string: only temporal types are inferred from strings, since a JSON
    /// writer that quotes a number (a zip code, an ID) means it as text.
    pub(super) fn observe_json_string(&mut self, text: &str) {
        if text.trim().is_empty() {
            return;
        }
        self.seen = true;
        self.bool_ok = false;
        self.int_ok = false;
        self.float_ok = false;
        self.observe_temporal(text.trim());
    }

    fn observe_temporal(&mut self, text: &str) {
        self.date_ok = self.date_ok && parse_date(text).is_some();
        self.timestamp_ok = self.timestamp_ok && parse_timestamp(text).is_some();
    }

    /// Observes a JSON bool.
    pub(super) fn observe_bool(&mut self) {
        self.seen = true;
        self.int_ok = false;
        self.float_ok = false;
        self.date_ok = false;
        self.timestamp_ok = false;
    }

    /// Observes a JSON number, integral or not.
    pub(super) fn observe_number(&mut self, integral: bool) {
        self.seen = true;
        self.bool_ok = false;
        self.int_ok = self.int_ok && integral;
        self.date_ok = false;
        self.timestamp_ok = false;
    }

    /// Observes a value only a string column can hold (a JSON object or array).
    pub(super) fn observe_other(&mut self) {
        self.seen = true;
        self.bool_ok = false;
        self.int_ok = false;
        self.float_ok = false;
        self.date_ok = false;
        self.timestamp_ok = false;
    }

    /// The narrowest type every observed value reads as; string when nothing was seen.
    pub(super) fn result(&self) -> ValueType {
        if !self.seen {
            ValueType::String
        } else if self.bool_ok {
            ValueType::Bool
        } else if self.int_ok {
            ValueType::Int
        } else if self.float_ok {
            ValueType::Float
        } else if self.date_ok {
            ValueType::Date
        } else if self.timestamp_ok {
            ValueType::Timestamp
        } else {
            ValueType::String
        }
    }
}

/// An Arrow builder of one canonical type.
enum ColumnBuilder {
    String(StringBuilder),
    Int(Int64Builder),
    Float(Float64Builder),
    Bool(BooleanBuilder),
    Date(Date32Builder),
    Timestamp(TimestampMicrosecondBuilder),
}

impl ColumnBuilder {
    fn new(ty: ValueType) -> Self {
        match ty {
            ValueType::String => {
                ColumnBuilder::String(StringBuilder::with_capacity(BATCH_ROWS, BATCH_ROWS * 8))
            }
            ValueType::Int => ColumnBuilder::Int(Int64Builder::with_capacity(BATCH_ROWS)),
            ValueType::Float => ColumnBuilder::Float(Float64Builder::with_capacity(BATCH_ROWS)),
            ValueType::Bool => ColumnBuilder::Bool(BooleanBuilder::with_capacity(BATCH_ROWS)),
            ValueType::Date => ColumnBuilder::Date(Date32Builder::with_capacity(BATCH_ROWS)),
            ValueType::Timestamp => ColumnBuilder::Timestamp(
                TimestampMicrosecondBuilder::with_capacity(BATCH_ROWS).with_timezone("UTC"),
            ),
        }
    }

    fn append(&mut self, cell: &Cell<'_>) -> Result<()> {
        match (self, cell) {
            (ColumnBuilder::String(b), Cell::Null) => b.append_null(),
            (ColumnBuilder::Int(b), Cell::Null) => b.append_null(),
            (ColumnBuilder::Float(b), Cell::Null) => b.append_null(),
            (ColumnBuilder::Bool(b), Cell::Null) => b.append_null(),
            (ColumnBuilder::Date(b), Cell::Null) => b.append_null(),
            (ColumnBuilder::Timestamp(b), Cell::Null) => b.append_null(),
            (ColumnBuilder::String(b), Cell::Str(s)) => b.append_value(s),
            (ColumnBuilder::Int(b), Cell::Int(v)) => b.append_value(*v),
            (ColumnBuilder::Float(b), Cell::Float(v)) => b.append_value(*v),
            (ColumnBuilder::Bool(b), Cell::Bool(v)) => b.append_value(*v),
            (ColumnBuilder::Date(b), Cell::Date(v)) => b.append_value(*v),
            (ColumnBuilder::Timestamp(b), Cell::Timestamp(v)) => b.append_value(*v),
            (_, cell) => {
                return Err(Error::Internal(format!(
                    "ingest produced {cell:?} for a column of another type"
                )));
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            ColumnBuilder::String(b) => Arc::new(b.finish()),
            ColumnBuilder::Int(b) => Arc::new(b.finish()),
            ColumnBuilder::Float(b) => Arc::new(b.finish()),
            ColumnBuilder::Bool(b) => Arc::new(b.finish()),
            ColumnBuilder::Date(b) => Arc::new(b.finish()),
            ColumnBuilder::Timestamp(b) => Arc::new(b.finish()),
        }
    }
}

/// Parses a string array (a Parquet text column declared as another type) as `ty`.
///
/// Values that do not parse become NULL and are listed, with their message, by index.
pub(super) fn parse_strings(
    strings: &StringArray,
    ty: ValueType,
    declared: bool,
) -> Result<(ArrayRef, Vec<(usize, String)>)> {
    let mut builder = ColumnBuilder::new(ty);
    let mut failures = Vec::new();
    for (i, value) in strings.iter().enumerate() {
        let cell = match value.map(|text| parse_text(text, ty, declared)) {
            None => Cell::Null,
            Some(Ok(cell)) => cell,
            Some(Err(message)) => {
                failures.push((i, message));
                Cell::Null
            }
        };
        builder.append(&cell)?;
    }
    Ok((builder.finish(), failures))
}

/// Appends parsed rows and cuts them into batches of [`BATCH_ROWS`].
pub(super) struct TableBuilder {
    schema: SchemaRef,
    columns: Vec<ColumnBuilder>,
    rows: usize,
    batches: Vec<RecordBatch>,
}

impl TableBuilder {
    pub(super) fn new(schema: &TableSchema) -> Self {
        TableBuilder {
            schema: schema.arrow_schema(),
            columns: schema.columns.iter().map(|(_, ty)| ColumnBuilder::new(*ty)).collect(),
            rows: 0,
            batches: Vec::new(),
        }
    }

    /// Appends one row; `cells` holds one value per column, already of the column's type.
    pub(super) fn push_row(&mut self, cells: &[Cell<'_>]) -> Result<()> {
        if cells.len() != self.columns.len() {
            return Err(Error::Internal(format!(
                "ingest produced a row of {} values for {} columns",
                cells.len(),
                self.columns.len()
            )));
        }
        for (builder, cell) in self.columns.iter_mut().zip(cells) {
            builder.append(cell)?;
        }
        self.rows += 1;
        if self.rows == BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let arrays: Vec<ArrayRef> = self.columns.iter_mut().map(ColumnBuilder::finish).collect();
        let options = RecordBatchOptions::new().with_row_count(Some(self.rows));
        self.batches.push(RecordBatch::try_new_with_options(self.schema.clone(), arrays, &options)?);
        self.rows = 0;
        Ok(())
    }

    /// The batches, the last one possibly short; none for no rows.
    pub(super) fn finish(mut self) -> Result<Vec<RecordBatch>> {
        self.flush()?;
        Ok(self.batches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn infer(values: &[&str]) -> ValueType {
        let mut inference = Inference::default();
        for v in values {
            inference.observe_text(v);
        }
        inference.result()
    }

    #[test]
    fn inference_picks_the_narrowest_type() {
        let cases: &[(&[&str], ValueType)] = &[
            (&["true", "FALSE", ""], ValueType::Bool),
            (&["1", "0", "1"], ValueType::Int),
            (&["1", " -20 ", ""], ValueType::Int),
            (&["1", "2.5", "1e3"], ValueType::Float),
            (&["1", "inf"], ValueType::String),
            (&["2024-01-05", "1999-12-31"], ValueType::Date),
            (&["2024-01-05", "2024-01-05T10:00:00Z"], ValueType::Timestamp),
            (&["2024-01-05 10:00:00", "2024-01-05T10:00:00.123456"], ValueType::Timestamp),
            (&["2024-1-5"], ValueType::String),
            (&["12", "12x"], ValueType::String),
            (&["", "  "], ValueType::String),
            (&[], ValueType::String),
        ];
        for (values, expected) in cases {
            assert_eq!(infer(values), *expected, "{values:?}");
        }
    }

    #[test]
    fn values_parse_per_type() {
        assert_eq!(parse_text("", ValueType::String, false), Ok(Cell::Null));
        assert_eq!(parse_text(" a ", ValueType::String, false), Ok(Cell::Str(" a ".into())));
        assert_eq!(parse_text(" 12 ", ValueType::Int, false), Ok(Cell::Int(12)));
        assert_eq!(parse_text("  ", ValueType::Int, false), Ok(Cell::Null));
        assert_eq!(parse_text("12x", ValueType::Int, false), Err("cannot read \"12x\" as int".to_string()));
        assert_eq!(
            parse_text("NaN", ValueType::Float, false),
            Err("cannot read \"NaN\" as float: not a finite number".to_string())
        );
        assert_eq!(parse_text("1", ValueType::Bool, false), Ok(Cell::Bool(true)));
        assert_eq!(parse_text("Yes", ValueType::Bool, true), Ok(Cell::Bool(true)));
        assert!(parse_text("yes", ValueType::Bool, false).is_err());
        assert_eq!(parse_text("1970-01-02", ValueType::Date, false), Ok(Cell::Date(1)));
        assert_eq!(parse_text("1969-12-31", ValueType::Date, false), Ok(Cell::Date(-1)));
    }

    #[test]
    fn a_leap_second_reads_as_the_first_instant_of_the_next_minute() {
        // 23:59:60 exists only in UTC's leap seconds; segmenta's times have none, so the leap
        // second is the instant that follows 23:59:59.999999 (chrono folds it the same way).
        let leap = parse_timestamp("2016-12-31T23:59:60Z").expect("a leap second parses");
        let next = parse_timestamp("2017-01-01T00:00:00Z").expect("parses");
        assert_eq!(leap, next);
        let leap_fraction = parse_timestamp("2016-12-31T23:59:60.5Z").expect("parses");
        assert_eq!(leap_fraction, next + 500_000);
        assert_eq!(parse_timestamp("2016-12-31T23:59:61Z"), None, "no second 61");
    }

    #[test]
    fn time_formats_read_patterns_and_epochs() {
        let micros = |text: &str, format: &TimeFormat| match parse_time(text, format) {
            Ok(Cell::Timestamp(t)) => Some(t),
            _ => None,
        };
        let day = TimeFormat::parse("%Y%m%d").expect("a pattern");
        assert_eq!(micros("19970101", &day), Some(852_076_800_000_000));
        assert_eq!(micros("1997-01-01", &day), None);
        assert_eq!(micros("1.5", &TimeFormat::EpochSeconds), Some(1_500_000));
        assert_eq!(micros("-1000", &TimeFormat::EpochMillis), Some(-1_000_000));
        assert_eq!(
            micros("99999999999999999999", &TimeFormat::EpochSeconds),
            None,
            "out of range, not wrapped"
        );
        assert!(matches!(parse_time("", &day), Ok(Cell::Null)));
        assert!(TimeFormat::parse("%H:%M").is_err(), "no year");
        assert!(TimeFormat::parse("%Q").is_err());
    }

    #[test]
    fn timestamps_convert_to_utc_micros() {
        let noon = 1_704_456_000_000_000; // 2024-01-05T12:00:00Z
        for text in [
            "2024-01-05T12:00:00Z",
            "2024-01-05T14:00:00+02:00",
            "2024-01-05T07:00:00-05:00",
            "2024-01-05 12:00:00",
            "2024-01-05T12:00:00",
            "2024-01-05 12:00:00.000000",
            "2024-01-05 14:00:00+02:00",
        ] {
            assert_eq!(parse_timestamp(text), Some(noon), "{text}");
        }
        assert_eq!(parse_timestamp("2024-01-05T12:00:00.5Z"), Some(noon + 500_000));
        assert_eq!(parse_timestamp("2024-01-05"), Some(noon - 12 * 3_600_000_000));
        for text in ["2024-01-05T25:00:00Z", "yesterday", "2024-13-01", "12"] {
            assert_eq!(parse_timestamp(text), None, "{text}");
        }
    }

    #[test]
    fn long_values_are_shortened_in_messages() {
        let long = "1".repeat(100);
        assert_eq!(
            parse_text(&format!("{long}x"), ValueType::Int, false),
            Err(format!("cannot read \"{}\"… (101 characters) as int", "1".repeat(80)))
        );
    }
}
