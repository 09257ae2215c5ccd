//! JSON Lines files: one object per non-blank line, keys as columns in order of first
//! appearance, types inferred from the JSON kinds (and, for strings, dates and timestamps).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::io::{BufRead, BufReader};

use segmenta_core::ValueType;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use super::values::{Cell, Inference, TableBuilder, parse_text, parse_time};
use super::{
    BadRow, BadRows, CheckedRows, LoadedTable, MAX_RECORD_BYTES, Rejects, Resolved, RowProblem, SourceSpec,
    TableSchema, apply_overrides, did_you_mean, open, shorten, shorten_quoted, value_hint,
};
use crate::{Error, Result};

/// A JSON object with its keys in file order (`serde_json::Map` sorts them).
struct Object(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Object {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ObjectVisitor)
    }
}

struct ObjectVisitor;

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = Object;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Object, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(8));
        while let Some(entry) = map.next_entry::<String, Value>()? {
            entries.push(entry);
        }
        Ok(Object(entries))
    }
}

/// One non-blank line of the file.
struct Line {
    /// 1-based physical line.
    number: u64,
    /// The line, or its first [`MAX_RECORD_BYTES`] when it is longer (`cut`).
    bytes: Vec<u8>,
    /// The line was longer than [`MAX_RECORD_BYTES`]: a bad row, whatever it holds.
    cut: bool,
}

/// One physical line read with a bound on what is kept, so that a file without line ends
/// cannot fill the memory.
struct Bounded {
    /// Bytes read, the line end included (0 at the end of the file).
    read: usize,
    /// The line ended with `\n` (not the end of the file).
    ended: bool,
    /// More than [`MAX_RECORD_BYTES`] were on the line; `bytes` holds the first of them.
    cut: bool,
}

fn read_bounded(reader: &mut impl BufRead, bytes: &mut Vec<u8>) -> std::io::Result<Bounded> {
    let limit = MAX_RECORD_BYTES as usize;
    let mut line = Bounded { read: 0, ended: false, cut: false };
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok(line);
        }
        let (chunk, ended) = match available.iter().position(|b| *b == b'\n') {
            Some(i) => (&available[..=i], true),
            None => (available, false),
        };
        let room = limit.saturating_sub(bytes.len());
        let content = if ended { &chunk[..chunk.len() - 1] } else { chunk };
        if content.len() > room {
            line.cut = true;
        }
        bytes.extend_from_slice(&content[..content.len().min(room)]);
        let used = chunk.len();
        reader.consume(used);
        line.read += used;
        if ended {
            line.ended = true;
            return Ok(line);
        }
    }
}

impl Line {
    fn raw(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    /// The line parsed as an object, or why it is a bad row.
    fn parse(&self) -> Result<Object, BadRow> {
        let bad = |message: String, hint: &str| BadRow {
            line: self.number,
            column: None,
            message,
            hint: hint.into(),
        };
        if self.cut {
            return Err(bad(
                format!("line is longer than {} MiB", MAX_RECORD_BYTES >> 20),
                "write one JSON object per line (a file without line ends is one line), or run with --on-bad-rows reject",
            ));
        }
        let Ok(text) = std::str::from_utf8(&self.bytes) else {
            return Err(bad(
                "line is not valid UTF-8".into(),
                "save the file as UTF-8, or run with --on-bad-rows reject",
            ));
        };
        serde_json::from_str::<Object>(text).map_err(|e| {
            // serde's message ends with "at line 1 column N"; every line is parsed alone, so
            // only the column means anything. It may quote the line (`invalid type: string
            // "..."`), so the quoted part is shortened.
            let full = e.to_string();
            let message = full.rfind(" at line ").map_or(full.as_str(), |i| &full[..i]);
            bad(
                format!("invalid JSON at column {}: {}", e.column().max(1), shorten_quoted(message)),
                "write one JSON object per line, or run with --on-bad-rows reject",
            )
        })
    }
}

/// Yields the non-blank lines of a file.
struct Lines<'a> {
    spec: &'a SourceSpec,
    reader: BufReader<std::fs::File>,
    number: u64,
    /// An event log ([`load_log`]): a last line without its line end is left out (a write cut
    /// short, never acknowledged), and so are the lines that record batches.
    log: bool,
}

impl<'a> Lines<'a> {
    fn open(spec: &'a SourceSpec) -> Result<Self> {
        Ok(Lines { spec, reader: BufReader::with_capacity(1 << 16, open(spec)?), number: 0, log: false })
    }

    fn next_line(&mut self) -> Result<Option<Line>> {
        loop {
            let mut bytes = Vec::new();
            let line = read_bounded(&mut self.reader, &mut bytes)
                .map_err(|source| Error::Io { path: self.spec.display.clone(), source })?;
            if line.read == 0 || (self.log && !line.ended) {
                return Ok(None);
            }
            self.number += 1;
            if line.cut {
                return Ok(Some(Line { number: self.number, bytes, cut: true }));
            }
            if self.log && bytes.starts_with(super::BATCH_MARKER.as_bytes()) {
                continue;
            }
            while bytes.last().is_some_and(|b| *b == b'\r') {
                bytes.pop();
            }
            if self.number == 1 && bytes.starts_with(b"\xef\xbb\xbf") {
                bytes.drain(..3);
            }
            if bytes.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Ok(Some(Line { number: self.number, bytes, cut: false }));
        }
    }
}

/// Keys and types inferred from the first `infer_rows` non-blank lines, then the overrides.
///
/// An override naming a key absent from the sample makes the rest of the file be searched
/// for it, since JSON keys may be sparse; only a key that appears nowhere is an error.
pub(super) fn resolve(spec: &SourceSpec) -> Result<Resolved> {
    let mut lines = Lines::open(spec)?;
    let mut names: Vec<String> = Vec::new();
    let mut inference: Vec<Inference> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut sampled = 0;
    while sampled < spec.infer_rows {
        let Some(line) = lines.next_line()? else {
            break;
        };
        sampled += 1;
        // Bad lines are left out of inference; loading reports them.
        let Ok(Object(entries)) = line.parse() else {
            continue;
        };
        for (key, value) in &entries {
            let i = *index.entry(key.clone()).or_insert_with(|| {
                names.push(key.clone());
                inference.push(Inference::default());
                names.len() - 1
            });
            observe(&mut inference[i], value);
        }
    }
    let mut inferred: Vec<(String, ValueType)> =
        names.into_iter().zip(inference.iter().map(Inference::result)).collect();
    let mut unseen: Vec<&(String, ValueType)> =
        spec.overrides.iter().filter(|(name, _)| !index.contains_key(name)).collect();
    while !unseen.is_empty() {
        let Some(line) = lines.next_line()? else {
            break;
        };
        let Ok(text) = std::str::from_utf8(&line.bytes) else {
            continue;
        };
        if !unseen.iter().any(|(name, _)| text.contains(name.as_str())) {
            continue;
        }
        let Ok(Object(entries)) = line.parse() else {
            continue;
        };
        for (key, _) in &entries {
            if let Some(pos) = unseen.iter().position(|(name, _)| name == key) {
                inferred.push(unseen.swap_remove(pos).clone());
            }
        }
    }
    apply_overrides(spec, inferred)
}

fn observe(inference: &mut Inference, value: &Value) {
    match value {
        Value::Null => {}
        Value::Bool(_) => inference.observe_bool(),
        Value::Number(n) => inference.observe_number(n.is_i64()),
        Value::String(s) => inference.observe_json_string(s),
        Value::Array(_) | Value::Object(_) => inference.observe_other(),
    }
}

/// Reads every line.
pub(super) fn load(spec: &SourceSpec, mode: BadRows, limit: Option<u64>) -> Result<LoadedTable> {
    let resolved = resolve(spec)?;
    read_rows(spec, resolved, Lines::open(spec)?, mode, limit)
}

/// Reads `lines` as rows typed by `resolved`.
fn read_rows(
    spec: &SourceSpec,
    Resolved { schema, declared }: Resolved,
    mut lines: Lines<'_>,
    mode: BadRows,
    limit: Option<u64>,
) -> Result<LoadedTable> {
    let index: HashMap<&str, usize> =
        schema.columns.iter().enumerate().map(|(i, (n, _))| (n.as_str(), i)).collect();
    let mut builder = TableBuilder::new(&schema);
    let mut rejects = Rejects::new(spec, mode);
    let mut rows_read = 0u64;
    while let Some(line) = lines.next_line()? {
        if limit.is_some_and(|limit| rows_read >= limit) {
            break;
        }
        rows_read += 1;
        let object = match line.parse() {
            Ok(object) => object,
            Err(bad) => {
                rejects.report(bad, || line.raw())?;
                continue;
            }
        };
        match row_cells(&object, &schema, &declared, &index, spec, line.number) {
            Ok(cells) => builder.push_row(&cells)?,
            Err(bad) => rejects.report(bad, || line.raw())?,
        }
    }
    Ok(LoadedTable {
        schema,
        batches: builder.finish()?,
        rows_read,
        lines_read: lines.number,
        rejected: rejects.rows,
    })
}

/// One value per column from an object's entries; missing keys are NULL.
fn row_cells<'o>(
    Object(entries): &'o Object,
    schema: &TableSchema,
    declared: &[bool],
    index: &HashMap<&str, usize>,
    spec: &SourceSpec,
    line: u64,
) -> Result<Vec<Cell<'o>>, BadRow> {
    let mut cells = vec![Cell::Null; schema.columns.len()];
    for (key, value) in entries {
        let Some(&i) = index.get(key.as_str()) else {
            return Err(BadRow {
                line,
                column: Some(key.clone()),
                message: format!("unexpected key, not seen in the first {} rows", spec.infer_rows),
                hint: format!(
                    "declare it in columns = {{ {} = \"string\" }} so it is read, or run with --on-bad-rows reject",
                    shorten(key)
                ),
            });
        };
        let (name, ty) = &schema.columns[i];
        let parsed = match spec.time_formats.iter().find(|(c, _)| c == name) {
            Some((_, format)) => match value {
                Value::Null => Ok(Cell::Null),
                Value::String(text) => parse_time(text, format),
                Value::Number(n) => parse_time(&n.to_string(), format),
                other => Err(format!("cannot read {} as a time", shorten(&other.to_string()))),
            },
            None => json_cell(value, *ty, declared[i]),
        };
        cells[i] = parsed.map_err(|message| BadRow {
            line,
            column: Some(name.clone()),
            message,
            hint: value_hint(name, declared[i]),
        })?;
    }
    Ok(cells)
}

/// A JSON value as `ty`: strings go through the text grammar; numbers, bools, arrays and
/// objects become strings in string columns (as JSON text), and numbers/bools convert where
/// they mean the same thing (an integral float as int, 0/1 as bool).
fn json_cell(value: &Value, ty: ValueType, declared: bool) -> Result<Cell<'_>, String> {
    let fail = || format!("cannot read {} as {ty}", shorten(&value.to_string()));
    match (value, ty) {
        (Value::Null, _) => Ok(Cell::Null),
        (Value::String(s), _) => parse_text(s, ty, declared),
        (Value::Bool(b), ValueType::String) => {
            Ok(Cell::Str(Cow::Borrowed(if *b { "true" } else { "false" })))
        }
        (_, ValueType::String) => Ok(Cell::Str(Cow::Owned(value.to_string()))),
        (Value::Bool(b), ValueType::Bool) => Ok(Cell::Bool(*b)),
        (Value::Number(n), ValueType::Int) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Ok(Cell::Int(i)),
            (None, Some(f)) if f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 => {
                Ok(Cell::Int(f as i64))
            }
            _ => Err(fail()),
        },
        (Value::Number(n), ValueType::Float) => n.as_f64().map(|f| Cell::Float(f + 0.0)).ok_or_else(fail),
        (Value::Number(n), ValueType::Bool) => match n.as_i64() {
            Some(1) => Ok(Cell::Bool(true)),
            Some(0) => Ok(Cell::Bool(false)),
            _ => Err(fail()),
        },
        _ => Err(fail()),
    }
}

/// Rows posted as JSON objects (`POST /v1/events`), checked against a known schema.
pub(super) fn check_rows(
    spec: &SourceSpec,
    schema: &TableSchema,
    rows: &[String],
    required: &[&str],
) -> Result<CheckedRows> {
    let index: HashMap<&str, usize> =
        schema.columns.iter().enumerate().map(|(i, (n, _))| (n.as_str(), i)).collect();
    let declared: Vec<bool> =
        schema.columns.iter().map(|(name, _)| spec.overrides.iter().any(|(n, _)| n == name)).collect();
    let names: Vec<&str> = schema.names().collect();
    let mut builder = TableBuilder::new(schema);
    let mut checked = CheckedRows { lines: Vec::new(), batches: Vec::new(), rejected: Vec::new() };
    for (position, text) in rows.iter().enumerate() {
        let line = Line { number: position as u64 + 1, bytes: text.as_bytes().to_vec(), cut: false };
        let problem = |column: Option<&str>, message: String| RowProblem {
            index: position,
            column: column.map(|c| shorten(c).into_owned()),
            message,
        };
        let object = match line.parse() {
            Ok(object) => object,
            Err(bad) => {
                // What was posted is JSON (the server parsed it); what fails is its shape.
                let message = match text.trim_start().chars().next() {
                    Some('{') | None => bad.message,
                    Some(first) => format!(
                        "an event is a JSON object of column values, not {}",
                        match first {
                            '[' => "an array",
                            '"' => "a string",
                            't' | 'f' => "a boolean",
                            'n' => "null",
                            _ => "a number",
                        }
                    ),
                };
                checked.rejected.push(problem(None, message));
                continue;
            }
        };
        if let Some((key, _)) = object.0.iter().find(|(key, _)| !index.contains_key(key.as_str())) {
            let mut message = "no such column in the events".to_string();
            if let Some(close) = did_you_mean(key, &names) {
                message.push_str(&format!("; did you mean `{}`?", shorten(close)));
            }
            checked.rejected.push(problem(Some(key), message));
            continue;
        }
        let cells = match row_cells(&object, schema, &declared, &index, spec, line.number) {
            Ok(cells) => cells,
            Err(bad) => {
                let mut message = bad.message;
                let ty = bad.column.as_deref().and_then(|c| schema.get(c));
                if let (Some(ValueType::Timestamp | ValueType::Date), Some(column)) =
                    (ty, bad.column.as_deref())
                {
                    message.push_str(&time_hint(spec, column));
                }
                checked.rejected.push(problem(bad.column.as_deref(), message));
                continue;
            }
        };
        if let Some(missing) =
            required.iter().find(|c| index.get(**c).is_none_or(|&i| matches!(cells[i], Cell::Null)))
        {
            checked.rejected.push(problem(Some(missing), "missing: every event needs it".into()));
            continue;
        }
        if let Some(i) = cells.iter().position(|c| matches!(c, Cell::Float(f) if !f.is_finite())) {
            checked.rejected.push(problem(Some(&schema.columns[i].0), "not a finite number".into()));
            continue;
        }
        checked.lines.push(canonical_line(schema, &cells));
        builder.push_row(&cells)?;
    }
    checked.batches = builder.finish()?;
    Ok(checked)
}

/// How posted times of `column` are written.
fn time_hint(spec: &SourceSpec, column: &str) -> String {
    let rfc = "; write an RFC 3339 instant, such as 2025-03-10T09:00:00Z";
    match spec.time_formats.iter().find(|(name, _)| name == column) {
        None => rfc.into(),
        Some((_, format)) => {
            let format = match format {
                super::values::TimeFormat::EpochSeconds => "epoch_seconds",
                super::values::TimeFormat::EpochMillis => "epoch_millis",
                super::values::TimeFormat::Pattern(pattern) => pattern.as_str(),
            };
            format!("; write it as the events' time_format `{format}` says")
        }
    }
}

/// A row as the event log stores it: one JSON object, NULLs left out, dates and timestamps as
/// ISO 8601 text (what [`load_log`] reads back without any declared format).
fn canonical_line(schema: &TableSchema, cells: &[Cell<'_>]) -> String {
    let mut object = serde_json::Map::new();
    for ((name, _), cell) in schema.columns.iter().zip(cells) {
        let value = match cell {
            Cell::Null => continue,
            Cell::Str(s) => Value::String(s.to_string()),
            Cell::Int(i) => Value::from(*i),
            Cell::Float(f) => Value::from(*f),
            Cell::Bool(b) => Value::Bool(*b),
            Cell::Date(days) => Value::String(segmenta_rules::format_date(*days)),
            Cell::Timestamp(micros) => Value::String(
                chrono::DateTime::from_timestamp_micros(*micros)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
                    .unwrap_or_default(),
            ),
        };
        object.insert(name.clone(), value);
    }
    Value::Object(object).to_string()
}

/// Reads an event log written from [`CheckedRows::lines`]: every complete line (a last line
/// without its line end was never acknowledged and is left out) typed by `schema`.
pub(super) fn load_log(path: &std::path::Path, display: &str, schema: &TableSchema) -> Result<LoadedTable> {
    let spec = SourceSpec {
        path: path.to_path_buf(),
        display: display.to_string(),
        format: segmenta_core::config::SourceFormat::JsonLines,
        overrides: schema.columns.clone(),
        infer_rows: 0,
        time_formats: Vec::new(),
    };
    let resolved = Resolved { schema: schema.clone(), declared: vec![true; schema.columns.len()] };
    let lines = Lines { log: true, ..Lines::open(&spec)? };
    read_rows(&spec, resolved, lines, BadRows::Reject, None)
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::super::{load_table, read_schema};
    use super::*;

    #[test]
    fn infers_keys_in_order_of_appearance() {
        let dir = tempfile::tempdir().expect("temp dir");
        let jsonl = "{\"id\": 1, \"zip\": \"02134\", \"day\": \"2024-01-05\"}\n\
                     \n\
                     {\"id\": 2, \"score\": 1.5, \"ok\": true, \"at\": \"2024-01-05T12:00:00+02:00\", \"tags\": [1]}\n\
                     {\"id\": 3, \"score\": 2, \"ok\": null, \"day\": null, \"zip\": \"\"}\n";
        let spec = spec_for(&dir, "events.jsonl", jsonl.as_bytes());
        let table = load_table(&spec, BadRows::Strict).expect("loads");
        check_invariants(&table);
        use ValueType::*;
        let expected = [
            ("id", Int),
            ("zip", String),
            ("day", Date),
            ("score", Float),
            ("ok", Bool),
            ("at", Timestamp),
            ("tags", String),
        ];
        let got: Vec<(&str, ValueType)> =
            table.schema.columns.iter().map(|(n, t)| (n.as_str(), *t)).collect();
        assert_eq!(got, expected);
        assert_eq!(column_strings(&table, "zip"), ["02134", "null", "null"]);
        assert_eq!(column_strings(&table, "score"), ["null", "1.5", "2.0"]);
        assert_eq!(column_strings(&table, "at"), ["null", "2024-01-05T10:00:00Z", "null"]);
        assert_eq!(column_strings(&table, "tags"), ["null", "[1]", "null"]);
        assert_eq!(table.rows_read, 3, "blank lines are not rows");
        assert_eq!(table.lines_read, 4, "blank lines are lines");
    }

    #[test]
    fn bad_lines() {
        let dir = tempfile::tempdir().expect("temp dir");
        let jsonl =
            b"{\"id\": 1}\n{\"id\": 2,}\n[1]\n{\"id\": \"x\"}\n{\"id\": 5, \"late\": 1}\n{\"id\": 6}\n";
        let mut spec = spec_for(&dir, "events.jsonl", jsonl);
        spec.infer_rows = 1;
        let err = load_table(&spec, BadRows::Strict).expect_err("strict");
        assert_eq!(err.to_string(), "data/events.jsonl:2: invalid JSON at column 10: trailing comma");
        let table = load_table(&spec, BadRows::Reject).expect("reject");
        check_invariants(&table);
        let rejected: Vec<(u64, &str)> = table.rejected.iter().map(|r| (r.line, r.reason.as_str())).collect();
        assert_eq!(
            rejected,
            [
                (2, "invalid JSON at column 10: trailing comma"),
                (3, "invalid JSON at column 1: invalid type: sequence, expected a JSON object"),
                (4, "column `id`: cannot read \"x\" as int"),
                (5, "column `late`: unexpected key, not seen in the first 1 rows"),
            ]
        );
        assert_eq!(table.rejected[1].raw, "[1]");
        assert_eq!(column_strings(&table, "id"), ["1", "6"]);
    }

    #[test]
    fn overrides_find_keys_after_the_sample() {
        let dir = tempfile::tempdir().expect("temp dir");
        let jsonl = b"{\"id\": 1}\n{\"id\": 2, \"plan\": \"pro\", \"paid\": \"yes\"}\n";
        let mut spec = spec_for(&dir, "events.jsonl", jsonl);
        spec.infer_rows = 1;
        spec.overrides = vec![("paid".into(), ValueType::Bool)];
        let schema = read_schema(&spec).expect("found later");
        assert_eq!(schema.columns, [("id".into(), ValueType::Int), ("paid".into(), ValueType::Bool)]);
        spec.overrides = vec![("pland".into(), ValueType::String)];
        let err = read_schema(&spec).expect_err("nowhere");
        assert_eq!(err.to_string(), "data/events.jsonl: declared column `pland` is not in the file");
    }

    #[test]
    fn json_values_convert() {
        assert_eq!(json_cell(&serde_json::json!(3.0), ValueType::Int, false), Ok(Cell::Int(3)));
        assert_eq!(
            json_cell(&serde_json::json!(3.5), ValueType::Int, false),
            Err("cannot read 3.5 as int".into())
        );
        assert_eq!(json_cell(&serde_json::json!(1), ValueType::Bool, false), Ok(Cell::Bool(true)));
        assert_eq!(
            json_cell(&serde_json::json!(true), ValueType::String, false),
            Ok(Cell::Str("true".into()))
        );
        assert_eq!(
            json_cell(&serde_json::json!("2024-01-05"), ValueType::Date, false),
            Ok(Cell::Date(19727))
        );
        assert!(json_cell(&serde_json::json!(19727), ValueType::Date, false).is_err());
    }

    #[test]
    fn long_json_text_gives_short_messages() {
        let dir = tempfile::tempdir().expect("temp dir");
        // Just under the bound on a line (a longer line is a bad row whatever it holds).
        let long = "s".repeat((1 << 20) - 64);
        let jsonl = format!(
            "{{\"id\": 1}}\n\"{long}\"\n{{\"id\": [{}0]}}\n{{\"id\": 4, \"{long}\": 1}}\n",
            "1,".repeat(1000)
        );
        let mut spec = spec_for(&dir, "events.jsonl", jsonl.as_bytes());
        spec.infer_rows = 1;
        let err = load_table(&spec, BadRows::Strict).expect_err("strict");
        let message = err.to_string();
        assert!(message.starts_with("data/events.jsonl:2: invalid JSON at column "), "{message}");
        assert!(
            message.ends_with(&format!(
                ": invalid type: string \"{}…\", expected a JSON object (1048512 characters)",
                "s".repeat(80)
            )),
            "{message}"
        );
        let table = load_table(&spec, BadRows::Reject).expect("reject");
        check_invariants(&table);
        let reasons: Vec<&str> = table.rejected.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(
            reasons[1],
            format!("column `id`: cannot read [{}… (2003 characters) as int", "1,".repeat(39) + "1")
        );
        assert_eq!(
            reasons[2],
            format!(
                "column `{}… (1048512 characters)`: unexpected key, not seen in the first 1 rows",
                "s".repeat(80)
            )
        );
        assert!(reasons.iter().all(|r| r.len() < 200), "{reasons:?}");
        assert!(table.rejected[0].raw.ends_with('…'));
        assert_eq!(table.lines_read, 4);
    }

    #[test]
    fn posted_rows_are_checked_in_the_files_formats_and_read_back_from_the_log() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut spec =
            spec_for(&dir, "events.jsonl", b"{\"k\": \"a\", \"day\": \"05/01/2024\", \"n\": 1.5}\n");
        spec.overrides = vec![("day".into(), ValueType::Timestamp), ("n".into(), ValueType::Float)];
        spec.time_formats =
            vec![("day".into(), super::super::values::TimeFormat::Pattern("%d/%m/%Y".into()))];
        let schema = read_schema(&spec).expect("a schema");
        let rows: Vec<String> = [
            r#"{"k": "b", "day": "06/01/2024", "n": 2}"#,
            r#"{"k": "c", "day": "2024-01-06"}"#,
            r#"{"k": "d", "n": -0.0, "day": "07/01/2024"}"#,
            r#"{"day": "07/01/2024"}"#,
            r#"{"k": "e", "day": "07/01/2024", "m": 1}"#,
        ]
        .map(String::from)
        .to_vec();
        let checked = check_rows(&spec, &schema, &rows, &["k", "day"]).expect("checks");
        let problems: Vec<(usize, Option<&str>)> =
            checked.rejected.iter().map(|p| (p.index, p.column.as_deref())).collect();
        assert_eq!(problems, [(1, Some("day")), (3, Some("k")), (4, Some("m"))], "{:?}", checked.rejected);
        assert!(checked.rejected[0].message.contains("time_format `%d/%m/%Y`"), "{:?}", checked.rejected[0]);
        assert_eq!(checked.lines.len(), 2);
        assert_eq!(checked.lines[0], r#"{"day":"2024-01-06T00:00:00.000000Z","k":"b","n":2.0}"#);

        // The lines read back (without the file's formats) as the same rows; a record of a
        // batch and a torn last line are left out.
        let log = dir.path().join("ingested.jsonl");
        let text = format!(
            "{}\n{{\"$batch\":\"x\",\"events\":1}}\n{}\n{{\"k\": \"torn",
            checked.lines[0], checked.lines[1]
        );
        assert!(text.lines().nth(1).is_some_and(|l| l.starts_with(super::super::BATCH_MARKER)));
        std::fs::write(&log, text).expect("writes");
        let loaded = load_log(&log, "log", &schema).expect("loads");
        check_invariants(&loaded);
        assert_eq!((loaded.rows_read, loaded.rejected.len()), (2, 0));
        let expected =
            arrow::compute::concat_batches(&schema.arrow_schema(), &checked.batches).expect("concat");
        let got = arrow::compute::concat_batches(&schema.arrow_schema(), &loaded.batches).expect("concat");
        assert_eq!(got, expected);
        assert_eq!(column_strings(&loaded, "n"), ["2.0", "0.0"]);
    }

    #[test]
    fn a_line_past_the_bound_is_one_bad_row_and_reading_goes_on() {
        let dir = tempfile::tempdir().expect("temp dir");
        let long = format!("{{\"id\": 2, \"note\": \"{}\"}}", "x".repeat(MAX_RECORD_BYTES as usize + 10));
        let text = format!("{{\"id\": 1, \"note\": \"a\"}}\n{long}\n{{\"id\": 3, \"note\": \"c\"}}\n{long}");
        let spec = spec_for(&dir, "t.jsonl", text.as_bytes());
        let strict = load_table(&spec, BadRows::Strict).expect_err("strict stops");
        assert!(strict.to_string().contains("line is longer than 1 MiB"), "{strict}");
        let table = load_table(&spec, BadRows::Reject).expect("reject mode");
        check_invariants(&table);
        assert_eq!(column_strings(&table, "id"), ["1", "3"]);
        let lines: Vec<u64> = table.rejected.iter().map(|r| r.line).collect();
        assert_eq!(lines, [2, 4]);
        assert!(table.rejected.iter().all(|r| r.raw.len() <= super::super::MAX_RAW_BYTES + '…'.len_utf8()));
    }
}
