//! Reading entity and event files into typed Arrow data: schema discovery (header plus
//! inference plus overrides), row validation with precise locations, and rejects.
//!
//! API (implemented by the ingest modules):
//! - [`SourceSpec`]: which file, its format, the type overrides.
//! - [`read_schema`]: the typed schema, reading only the header and a sample (used by
//!   `validate` before any data is scanned).
//! - [`load_table`]: every row, typed, with rejected rows set aside.
//! - [`write_rejects`]: rejected rows as a CSV file next to the outputs.
//!
//! Every loaded batch uses the canonical Arrow type of each column ([`arrow_type`]), so the
//! query layer never sees file-specific physical types (dictionaries, milliseconds, views).
//!
//! The formats live in `csv_file`, `json_lines` and `parquet_file`; the value grammar (what
//! text reads as an int, a date, a timestamp) and type inference live in `values`, so every
//! format agrees on them.
//!
//! Messages never echo unbounded input: user text (a value, a column name, a JSON snippet) is
//! quoted through `shorten` or `quote`, at most [`MESSAGE_TEXT_CHARS`] characters of it, and a
//! rejected row's raw text keeps at most [`MAX_RAW_BYTES`].

mod csv_file;
mod json_lines;
mod parquet_file;
mod values;

pub use values::TimeFormat;

use std::borrow::Cow;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use segmenta_core::ValueType;
use segmenta_core::config::SourceFormat;

use crate::{Error, Location, Result};

/// The number of rows sampled for type inference unless a spec says otherwise.
pub const DEFAULT_INFER_ROWS: usize = 10_000;

/// The number of rows per loaded batch.
pub const BATCH_ROWS: usize = 8192;

/// The most bytes one CSV record (a row, or the header) may hold, from its first byte to its
/// line end.
///
/// A longer record, such as one whose quoted field is never closed, is a bad row: strict mode
/// stops at it; reject mode sets its first line aside and reads on from the next line.
pub const MAX_RECORD_BYTES: u64 = 1 << 20;

/// The most physical lines one CSV record may span (quoted fields may hold line breaks); past
/// them, the record is a bad row as for [`MAX_RECORD_BYTES`].
pub const MAX_RECORD_LINES: u64 = 1_000;

/// The most characters of user text (a value, a column name, a JSON snippet) one message
/// quotes; longer text is cut there, followed by `…` and its length in characters.
pub const MESSAGE_TEXT_CHARS: usize = 80;

/// The most bytes of a row's text kept in [`RejectedRow::raw`]; longer text is cut there (on a
/// character boundary) and followed by `…`.
pub const MAX_RAW_BYTES: usize = 64 * 1024;

/// How to treat rows that do not fit the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BadRows {
    /// The first bad row fails the load with its location.
    #[default]
    Strict,
    /// Bad rows are set aside in [`LoadedTable::rejected`] and the load goes on.
    Reject,
}

/// A data file to read: where it is, how the user named it, its format and declared types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSpec {
    /// The path to open.
    pub path: PathBuf,
    /// The path as the user wrote it, used in every message.
    pub display: String,
    /// The file's format.
    pub format: SourceFormat,
    /// Declared column types (`columns = { name = "type" }`); they replace inference.
    pub overrides: Vec<(String, ValueType)>,
    /// The number of leading rows sampled for type inference (CSV, JSON Lines).
    pub infer_rows: usize,
    /// Time columns read with a declared format (CSV and JSON Lines; Parquet times are typed).
    pub time_formats: Vec<(String, TimeFormat)>,
}

impl SourceSpec {
    /// The declared time format of each column of `schema` (by position).
    pub(crate) fn formats_of(&self, schema: &TableSchema) -> Vec<Option<&TimeFormat>> {
        schema
            .columns
            .iter()
            .map(|(name, _)| self.time_formats.iter().find(|(c, _)| c == name).map(|(_, f)| f))
            .collect()
    }
}

/// The typed columns of a data file, in file order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TableSchema {
    /// Column names and types, in file order.
    pub columns: Vec<(String, ValueType)>,
}

impl TableSchema {
    /// The Arrow schema of loaded batches: canonical types, every field nullable.
    pub fn arrow_schema(&self) -> SchemaRef {
        let fields: Vec<Field> =
            self.columns.iter().map(|(name, ty)| Field::new(name, arrow_type(*ty), true)).collect();
        Arc::new(Schema::new(fields))
    }

    /// The type of a column, if the table has it.
    pub fn get(&self, name: &str) -> Option<ValueType> {
        self.columns.iter().find(|(n, _)| n == name).map(|(_, ty)| *ty)
    }

    /// The column names, in file order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.columns.iter().map(|(name, _)| name.as_str())
    }
}

/// A row set aside in [`BadRows::Reject`] mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedRow {
    /// 1-based physical line (CSV, JSON Lines) or 1-based row number (Parquet).
    pub line: u64,
    /// Why, as in the strict-mode message without the file prefix
    /// (``column `employees`: cannot read "12x" as int``).
    pub reason: String,
    /// The row's text (CSV re-encoded from its fields, or only its first line for a record cut
    /// off at a bound; the JSON line as written; Parquet values joined by commas), with invalid
    /// UTF-8 replaced, at most [`MAX_RAW_BYTES`] of it.
    pub raw: String,
}

/// A fully loaded file.
#[derive(Debug, Clone)]
pub struct LoadedTable {
    /// The typed columns; every batch uses exactly `schema.arrow_schema()`.
    pub schema: TableSchema,
    /// The rows, in batches of about [`BATCH_ROWS`] (none for a file without rows).
    pub batches: Vec<RecordBatch>,
    /// Data rows read: rows in `batches` plus `rejected.len()`.
    pub rows_read: u64,
    /// Physical lines read, the header and blank lines included (CSV, JSON Lines; a `\r\n`
    /// ends one line, a last line without a line end counts; [`load_head`] counts up to the
    /// last row it read); for Parquet, which has no lines, the rows read.
    pub lines_read: u64,
    /// Rows set aside ([`BadRows::Reject`] only), in file order.
    pub rejected: Vec<RejectedRow>,
}

impl LoadedTable {
    /// The number of rows in `batches`.
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

/// The canonical Arrow type of a value type.
pub fn arrow_type(ty: ValueType) -> DataType {
    match ty {
        ValueType::String => DataType::Utf8,
        ValueType::Int => DataType::Int64,
        ValueType::Float => DataType::Float64,
        ValueType::Bool => DataType::Boolean,
        ValueType::Date => DataType::Date32,
        ValueType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
    }
}

/// Reads a file's typed schema from its header (or footer) and a sample of rows.
///
/// Bad rows in the sample are not errors here (they are skipped for inference and reported
/// by [`load_table`]); an unreadable file, a bad header or an override naming a missing
/// column are.
pub fn read_schema(spec: &SourceSpec) -> Result<TableSchema> {
    Ok(resolve(spec)?.schema)
}

/// Reads every row of a file into canonical Arrow batches.
pub fn load_table(spec: &SourceSpec, bad_rows: BadRows) -> Result<LoadedTable> {
    load_rows(spec, bad_rows, None)
}

/// Reads the first `rows` data rows (bad ones included in the count) into canonical batches:
/// what `validate` checks of a file's values without reading it all.
pub fn load_head(spec: &SourceSpec, bad_rows: BadRows, rows: u64) -> Result<LoadedTable> {
    load_rows(spec, bad_rows, Some(rows))
}

fn load_rows(spec: &SourceSpec, bad_rows: BadRows, limit: Option<u64>) -> Result<LoadedTable> {
    match spec.format {
        SourceFormat::Csv => csv_file::load(spec, bad_rows, limit),
        SourceFormat::JsonLines => json_lines::load(spec, bad_rows, limit),
        SourceFormat::Parquet => parquet_file::load(spec, bad_rows, limit),
    }
}

/// Rows posted as JSON objects, checked against the events' schema: the accepted ones as
/// typed batches and as the lines the event log keeps, the others with their reasons.
#[derive(Debug, Clone, Default)]
pub struct CheckedRows {
    /// One JSON object per accepted row, in the canonical form [`load_log`] reads.
    pub lines: Vec<String>,
    /// The accepted rows, typed.
    pub batches: Vec<RecordBatch>,
    /// The rejected rows, in order.
    pub rejected: Vec<RowProblem>,
}

/// Why a posted row was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowProblem {
    /// 0-based position of the row in what was posted.
    pub index: usize,
    /// The column at fault, when one is.
    pub column: Option<String>,
    /// What is wrong, for a person.
    pub message: String,
}

/// Checks rows posted as JSON object texts against `schema`: every key must be a column, every
/// value must read as its column's type (time columns through `spec`'s declared formats) and
/// every column of `required` must hold a value.
pub fn check_rows(
    spec: &SourceSpec,
    schema: &TableSchema,
    rows: &[String],
    required: &[&str],
) -> Result<CheckedRows> {
    json_lines::check_rows(spec, schema, rows, required)
}

/// How a line of an event log that records a batch (not an event) begins: `{"$batch": ID, …}`.
/// [`load_log`] skips such lines.
pub const BATCH_MARKER: &str = "{\"$batch\":";

/// Reads an event log of [`CheckedRows::lines`] typed by `schema`; `display` names it in
/// messages. A last line without its line end (a write cut short) is left out, and so are the
/// lines that record batches ([`BATCH_MARKER`]).
pub fn load_log(path: &Path, display: &str, schema: &TableSchema) -> Result<LoadedTable> {
    json_lines::load_log(path, display, schema)
}

/// Writes rejected rows as CSV with the columns `line,reason,raw`.
///
/// The file is written to a temporary file in the same folder and renamed into place, so a
/// reader never sees half a file. `source_display` names the data file in I/O errors.
pub fn write_rejects(path: &Path, source_display: &str, rejected: &[RejectedRow]) -> Result<()> {
    let io_error = |source: std::io::Error| Error::Io {
        path: format!("{} (rejected rows of {source_display})", path.display()),
        source,
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let written = (|| -> std::io::Result<()> {
        let file = File::create(&temp)?;
        let mut writer = csv::Writer::from_writer(std::io::BufWriter::new(file));
        writer.write_record(["line", "reason", "raw"]).map_err(csv_io)?;
        for row in rejected {
            writer.write_record([row.line.to_string().as_str(), &row.reason, &row.raw]).map_err(csv_io)?;
        }
        let buffered = writer.into_inner().map_err(|e| e.into_error())?;
        let file = buffered.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if let Err(e) = written {
        // Best effort: the temporary file is ours and useless after a failure.
        let _ = std::fs::remove_file(&temp);
        return Err(io_error(e));
    }
    Ok(())
}

/// A schema plus, per column, whether its type was declared by an override.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub(crate) schema: TableSchema,
    /// Declared columns accept more spellings (`yes`/`no` for bool).
    pub(crate) declared: Vec<bool>,
}

fn resolve(spec: &SourceSpec) -> Result<Resolved> {
    match spec.format {
        SourceFormat::Csv => csv_file::resolve(spec),
        SourceFormat::JsonLines => json_lines::resolve(spec),
        SourceFormat::Parquet => Ok(parquet_file::resolve(spec)?.0),
    }
}

/// Applies overrides to inferred columns; an override naming a column the file lacks is an
/// error with a did-you-mean hint.
fn apply_overrides(spec: &SourceSpec, inferred: Vec<(String, ValueType)>) -> Result<Resolved> {
    let mut declared = vec![false; inferred.len()];
    let mut columns = inferred;
    for (name, ty) in &spec.overrides {
        match columns.iter().position(|(n, _)| n == name) {
            Some(i) => {
                columns[i].1 = *ty;
                declared[i] = true;
            }
            None => {
                return Err(missing_column(spec, name, columns.iter().map(|(n, _)| n.as_str())));
            }
        }
    }
    Ok(Resolved { schema: TableSchema { columns }, declared })
}

/// The error for a declared column that is not in the file.
fn missing_column<'a>(spec: &SourceSpec, name: &str, available: impl Iterator<Item = &'a str>) -> Error {
    /// The most column names the hint lists.
    const LISTED: usize = 20;
    let available: Vec<&str> = available.collect();
    let mut hint = String::new();
    if let Some(close) = did_you_mean(name, &available) {
        hint.push_str(&format!("did you mean `{}`? ", shorten(close)));
    }
    if available.is_empty() {
        hint.push_str("the file has no columns");
    } else {
        let listed: Vec<String> =
            available.iter().take(LISTED).map(|n| format!("`{}`", shorten(n))).collect();
        hint.push_str(&format!("the file's columns are {}", listed.join(", ")));
        if available.len() > LISTED {
            hint.push_str(&format!(", … ({} in all)", available.len()));
        }
    }
    Error::bad_input(
        Location { file: spec.display.clone(), line: None, column: None },
        format!("declared column `{}` is not in the file", shorten(name)),
        Some(hint),
    )
}

/// The closest name, if it is close enough to be a likely typo ([`segmenta_core::suggest::closest`],
/// the rule every "did you mean" of segmenta follows).
fn did_you_mean<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    segmenta_core::suggest::closest(name, candidates.iter().copied())
}

/// Opens a data file, mapping failures (missing, a folder, unreadable) to [`Error::Io`].
fn open(spec: &SourceSpec) -> Result<File> {
    let io_error = |source| Error::Io { path: spec.display.clone(), source };
    let file = File::open(&spec.path).map_err(io_error)?;
    if file.metadata().map_err(io_error)?.is_dir() {
        return Err(io_error(std::io::Error::new(
            std::io::ErrorKind::IsADirectory,
            "is a folder, not a file",
        )));
    }
    Ok(file)
}

fn csv_io(e: csv::Error) -> std::io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => e,
        other => std::io::Error::other(format!("{other:?}")),
    }
}

/// A row that does not fit the schema.
#[derive(Debug, Clone)]
struct BadRow {
    line: u64,
    column: Option<String>,
    message: String,
    hint: String,
}

impl BadRow {
    /// The reason as written to the rejects file: the message, prefixed by the column.
    fn reason(&self) -> String {
        match &self.column {
            Some(column) => format!("column `{column}`: {}", self.message),
            None => self.message.clone(),
        }
    }
}

/// Collects bad rows according to the [`BadRows`] mode.
struct Rejects<'a> {
    mode: BadRows,
    display: &'a str,
    rows: Vec<RejectedRow>,
}

impl<'a> Rejects<'a> {
    fn new(spec: &'a SourceSpec, mode: BadRows) -> Self {
        Rejects { mode, display: &spec.display, rows: Vec::new() }
    }

    /// Fails in strict mode; records the row (with its raw text, bounded) in reject mode.
    ///
    /// The column name is shortened here, for every format; messages and hints shorten the
    /// user text they quote where they are written.
    fn report(&mut self, bad: BadRow, raw: impl FnOnce() -> String) -> Result<()> {
        let bad = BadRow { column: bad.column.map(|c| shorten(&c).into_owned()), ..bad };
        match self.mode {
            BadRows::Strict => Err(Error::bad_input(
                Location { file: self.display.to_string(), line: Some(bad.line), column: bad.column },
                bad.message,
                Some(bad.hint),
            )),
            BadRows::Reject => {
                self.rows.push(RejectedRow { line: bad.line, reason: bad.reason(), raw: bound_raw(raw()) });
                Ok(())
            }
        }
    }
}

/// The hint for a value that does not parse as its column's type.
fn value_hint(column: &str, declared: bool) -> String {
    let column = shorten(column);
    if declared {
        format!(
            "fix the value, change the type declared in columns = {{ {column} = \"...\" }}, or run with --on-bad-rows reject"
        )
    } else {
        format!(
            "fix the value, declare the column's type in columns = {{ {column} = \"string\" }}, or run with --on-bad-rows reject"
        )
    }
}

/// User text as a message shows it: whole when short, else its first [`MESSAGE_TEXT_CHARS`]
/// characters, `…` and its length in characters.
fn shorten(text: &str) -> Cow<'_, str> {
    match head(text) {
        None => Cow::Borrowed(text),
        Some(head) => Cow::Owned(format!("{head}… ({} characters)", text.chars().count())),
    }
}

/// User text in double quotes (escaped as Rust escapes strings), shortened like `shorten`:
/// `"12x"`, or `"1234"… (1000000 characters)`.
fn quote(text: &str) -> String {
    match head(text) {
        None => format!("{text:?}"),
        Some(head) => format!("{head:?}… ({} characters)", text.chars().count()),
    }
}

/// A parser's message that may quote the input (serde_json's `invalid type: string "…",
/// expected a JSON object`): the text between its first and last double quote is shortened
/// like `shorten`, the rest kept; a message without quotes is shortened whole.
fn shorten_quoted(message: &str) -> Cow<'_, str> {
    let (Some(open), Some(close)) = (message.find('"'), message.rfind('"')) else {
        return shorten(message);
    };
    let Some(head) = message.get(open + 1..close).and_then(head) else {
        return if open < close { Cow::Borrowed(message) } else { shorten(message) };
    };
    let total = message[open + 1..close].chars().count();
    Cow::Owned(format!("{}{head}…\"{} ({total} characters)", &message[..=open], &message[close + 1..]))
}

/// The first [`MESSAGE_TEXT_CHARS`] characters of a longer text.
fn head(text: &str) -> Option<&str> {
    if text.len() <= MESSAGE_TEXT_CHARS {
        return None;
    }
    text.char_indices().nth(MESSAGE_TEXT_CHARS).map(|(end, _)| &text[..end])
}

/// A rejected row's text, cut at [`MAX_RAW_BYTES`] on a character boundary.
fn bound_raw(mut raw: String) -> String {
    if raw.len() > MAX_RAW_BYTES {
        raw.truncate(raw.floor_char_boundary(MAX_RAW_BYTES));
        raw.push('…');
    }
    raw
}

#[cfg(test)]
pub(crate) mod test_util {
    //! Helpers shared by the format tests.

    use super::*;

    /// A spec for a file in a temporary folder.
    pub(crate) fn spec_for(dir: &tempfile::TempDir, name: &str, contents: &[u8]) -> SourceSpec {
        let path = dir.path().join(name);
        std::fs::write(&path, contents).expect("temp folder is writable");
        SourceSpec {
            path,
            display: format!("data/{name}"),
            format: SourceFormat::from_path(name).expect("test files have known extensions"),
            overrides: Vec::new(),
            infer_rows: DEFAULT_INFER_ROWS,
            time_formats: Vec::new(),
        }
    }

    /// The single column of a loaded table, as display strings (nulls as `null`).
    pub(crate) fn column_strings(table: &LoadedTable, name: &str) -> Vec<String> {
        use arrow::util::display::{ArrayFormatter, FormatOptions};
        let options = FormatOptions::default().with_null("null");
        let mut out = Vec::new();
        for batch in &table.batches {
            let array = batch.column_by_name(name).expect("column exists");
            let formatter = ArrayFormatter::try_new(array.as_ref(), &options).expect("formattable");
            for i in 0..array.len() {
                out.push(formatter.value(i).to_string());
            }
        }
        out
    }

    /// Checks the invariants every loaded table keeps.
    pub(crate) fn check_invariants(table: &LoadedTable) {
        let schema = table.schema.arrow_schema();
        for batch in &table.batches {
            assert_eq!(batch.schema(), schema);
        }
        assert_eq!(table.rows_read, table.num_rows() as u64 + table.rejected.len() as u64);
        assert!(table.lines_read >= table.rows_read, "every row takes at least one line");
        assert!(table.rejected.iter().all(|r| r.raw.len() <= MAX_RAW_BYTES + '…'.len_utf8()));
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::*;
    use super::*;

    #[test]
    fn canonical_types() {
        let schema =
            TableSchema { columns: vec![("ts".into(), ValueType::Timestamp), ("n".into(), ValueType::Int)] };
        let arrow = schema.arrow_schema();
        assert_eq!(
            arrow.field(0).data_type(),
            &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        );
        assert!(arrow.field(0).is_nullable());
        assert_eq!(schema.get("n"), Some(ValueType::Int));
        assert_eq!(schema.get("x"), None);
    }

    #[test]
    fn did_you_mean_finds_typos_only() {
        assert_eq!(did_you_mean("employes", &["id", "employees"]), Some("employees"));
        assert_eq!(did_you_mean("Plan", &["plan"]), Some("plan"));
        assert_eq!(did_you_mean("revenue", &["id", "plan"]), None);
    }

    #[test]
    fn missing_file_is_io_error_with_display_path() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut spec = spec_for(&dir, "a.csv", b"id\n1\n");
        spec.path = dir.path().join("missing.csv");
        spec.display = "data/missing.csv".into();
        let err = read_schema(&spec).expect_err("missing");
        assert!(matches!(&err, Error::Io { path, .. } if path == "data/missing.csv"), "{err}");
        spec.path = dir.path().to_path_buf();
        let err = load_table(&spec, BadRows::Strict).expect_err("folder");
        assert!(matches!(&err, Error::Io { .. }), "{err}");
    }

    #[test]
    fn rejects_file_round_trips() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("rejects.csv");
        let rows = vec![RejectedRow {
            line: 3,
            reason: "column `a`: cannot read \"x\" as int".into(),
            raw: "1,x".into(),
        }];
        write_rejects(&path, "data/a.csv", &rows).expect("written");
        let text = std::fs::read_to_string(&path).expect("readable");
        assert_eq!(text, "line,reason,raw\n3,\"column `a`: cannot read \"\"x\"\" as int\",\"1,x\"\n");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).expect("listable").collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn long_user_text_is_shortened_on_a_char_boundary() {
        assert_eq!(shorten("plan"), "plan");
        let exact = "é".repeat(MESSAGE_TEXT_CHARS);
        assert_eq!(shorten(&exact), exact, "80 two-byte characters are not cut");
        let long = format!("{exact}x");
        assert_eq!(shorten(&long), format!("{exact}… (81 characters)"));
        assert_eq!(quote("a\"b"), "\"a\\\"b\"");
        assert_eq!(quote(&"x".repeat(100)), format!("{:?}… (100 characters)", "x".repeat(80)));

        let serde = format!("invalid type: string \"{}\", expected a JSON object", "s".repeat(1000));
        assert_eq!(
            shorten_quoted(&serde),
            format!("invalid type: string \"{}…\", expected a JSON object (1000 characters)", "s".repeat(80))
        );
        assert_eq!(shorten_quoted("trailing comma"), "trailing comma");
        let short = "invalid type: string \"a\", expected a JSON object";
        assert_eq!(shorten_quoted(short), short);
        assert_eq!(shorten_quoted(&"q".repeat(200)), format!("{}… (200 characters)", "q".repeat(80)));
    }

    #[test]
    fn raw_text_is_bounded_on_a_char_boundary() {
        assert_eq!(bound_raw("1,x".into()), "1,x");
        let raw = bound_raw(format!("a{}", "é".repeat(MAX_RAW_BYTES)));
        assert_eq!(raw.len(), MAX_RAW_BYTES - 1 + '…'.len_utf8(), "the cut falls before a half character");
        assert!(raw.ends_with("é…"));
    }

    #[test]
    fn a_missing_column_hint_lists_a_bounded_number_of_names() {
        let dir = tempfile::tempdir().expect("temp dir");
        let header: Vec<String> = (0..50).map(|i| format!("column_{i}")).collect();
        let mut spec = spec_for(&dir, "a.csv", format!("{}\n", header.join(",")).as_bytes());
        spec.overrides = vec![("x".repeat(500), ValueType::Int)];
        let err = read_schema(&spec).expect_err("missing column");
        assert_eq!(
            err.to_string(),
            format!("data/a.csv: declared column `{}… (500 characters)` is not in the file", "x".repeat(80))
        );
        let hint = err.hint().expect("a hint");
        assert!(hint.starts_with("the file's columns are `column_0`, `column_1`"), "{hint}");
        assert!(hint.ends_with("`column_19`, … (50 in all)"), "{hint}");
    }
}
