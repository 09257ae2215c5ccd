//! CSV files: a required header row, types inferred from a sample of rows, and rows read as
//! bytes so that one line of invalid UTF-8 is a bad row rather than a broken file.

use csv::ByteRecord;

use super::values::{Cell, Inference, TableBuilder, parse_text};
use super::{
    BadRow, BadRows, LoadedTable, Rejects, Resolved, SourceSpec, apply_overrides, csv_io, open, value_hint,
};
use crate::{Error, Location, Result};

type Reader = csv::Reader<std::fs::File>;

/// Opens the file and reads its header: the column names.
fn open_with_header(spec: &SourceSpec) -> Result<(Reader, Vec<String>)> {
    let file = open(spec)?;
    // Headers are read by hand so that positions, BOMs and empty files are ours to report;
    // `flexible` lets a row with the wrong field count reach us as a bad row.
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(file);
    let mut record = ByteRecord::new();
    if !read_record(spec, &mut reader, &mut record)? {
        return Err(Error::bad_input(
            Location { file: spec.display.clone(), line: None, column: None },
            "empty file, expected a header row",
            Some("add a header row naming the columns, such as `id,name,plan`".into()),
        ));
    }
    let line = record.position().map_or(1, |p| p.line());
    let location = |column: Option<String>| Location { file: spec.display.clone(), line: Some(line), column };
    let mut names: Vec<String> = Vec::with_capacity(record.len());
    for (i, field) in record.iter().enumerate() {
        let Ok(name) = std::str::from_utf8(field) else {
            return Err(Error::bad_input(
                location(None),
                format!("header field {} is not valid UTF-8", i + 1),
                Some("save the file as UTF-8".into()),
            ));
        };
        let name = name.strip_prefix('\u{feff}').unwrap_or(name).trim();
        if name.is_empty() {
            return Err(Error::bad_input(
                location(None),
                format!("header field {} is empty", i + 1),
                Some("name every column in the header row".into()),
            ));
        }
        if names.iter().any(|n| n == name) {
            return Err(Error::bad_input(
                location(Some(name.to_string())),
                "duplicate column name in the header",
                Some("rename one of the columns so every name is unique".into()),
            ));
        }
        names.push(name.to_string());
    }
    Ok((reader, names))
}

fn read_record(spec: &SourceSpec, reader: &mut Reader, record: &mut ByteRecord) -> Result<bool> {
    reader.read_byte_record(record).map_err(|e| Error::Io { path: spec.display.clone(), source: csv_io(e) })
}

/// The header plus types inferred from the first `infer_rows` rows, then the overrides.
///
/// Rows with the wrong field count or invalid UTF-8 are left out of inference; loading
/// reports them.
pub(super) fn resolve(spec: &SourceSpec) -> Result<Resolved> {
    let (mut reader, names) = open_with_header(spec)?;
    let mut inference = vec![Inference::default(); names.len()];
    let mut record = ByteRecord::new();
    let mut sampled = 0;
    while sampled < spec.infer_rows && read_record(spec, &mut reader, &mut record)? {
        sampled += 1;
        if record.len() != names.len() {
            continue;
        }
        for (column, field) in inference.iter_mut().zip(record.iter()) {
            if let Ok(text) = std::str::from_utf8(field) {
                column.observe_text(text);
            }
        }
    }
    let inferred = names.into_iter().zip(inference.iter().map(Inference::result)).collect();
    apply_overrides(spec, inferred)
}

/// Reads every row.
pub(super) fn load(spec: &SourceSpec, mode: BadRows) -> Result<LoadedTable> {
    let Resolved { schema, declared } = resolve(spec)?;
    let (mut reader, _) = open_with_header(spec)?;
    let mut builder = TableBuilder::new(&schema);
    let mut rejects = Rejects::new(spec, mode);
    let mut record = ByteRecord::new();
    let mut rows_read = 0u64;
    let expected = schema.columns.len();
    while read_record(spec, &mut reader, &mut record)? {
        rows_read += 1;
        let line = record.position().map_or(0, |p| p.line());
        if record.len() != expected {
            let bad = BadRow {
                line,
                column: None,
                message: format!("expected {expected} fields, found {}", record.len()),
                hint: format!(
                    "fix the row so it has {expected} fields (quote values that contain commas), or run with --on-bad-rows reject"
                ),
            };
            rejects.report(bad, || raw_text(&record))?;
            continue;
        }
        match parse_row(&record, &schema.columns, &declared, line) {
            Ok(cells) => builder.push_row(&cells)?,
            Err(bad) => rejects.report(bad, || raw_text(&record))?,
        }
    }
    Ok(LoadedTable { schema, batches: builder.finish()?, rows_read, rejected: rejects.rows })
}

fn parse_row<'r>(
    record: &'r ByteRecord,
    columns: &[(String, segmenta_core::ValueType)],
    declared: &[bool],
    line: u64,
) -> Result<Vec<Cell<'r>>, BadRow> {
    let mut cells = Vec::with_capacity(columns.len());
    for ((field, (name, ty)), declared) in record.iter().zip(columns).zip(declared) {
        let bad = |message: String, hint: String| BadRow { line, column: Some(name.clone()), message, hint };
        let Ok(text) = std::str::from_utf8(field) else {
            return Err(bad(
                "value is not valid UTF-8".into(),
                "save the file as UTF-8, or run with --on-bad-rows reject".into(),
            ));
        };
        match parse_text(text, *ty, *declared) {
            Ok(cell) => cells.push(cell),
            Err(message) => return Err(bad(message, value_hint(name, *declared))),
        }
    }
    Ok(cells)
}

/// The row as CSV text, re-encoded from its fields (quoting may differ from the file's).
fn raw_text(record: &ByteRecord) -> String {
    let mut writer =
        csv::WriterBuilder::new().terminator(csv::Terminator::Any(b'\n')).from_writer(Vec::new());
    if writer.write_byte_record(record).is_err() {
        return String::new();
    }
    let bytes = writer.into_inner().unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    text.strip_suffix('\n').unwrap_or(&text).to_string()
}

#[cfg(test)]
mod tests {
    use segmenta_core::ValueType;

    use super::super::test_util::*;
    use super::super::{BadRows, load_table, read_schema};
    use super::*;

    fn load(contents: &[u8], mode: BadRows) -> Result<LoadedTable> {
        let dir = tempfile::tempdir().expect("temp dir");
        let spec = spec_for(&dir, "accounts.csv", contents);
        let table = load_table(&spec, mode)?;
        check_invariants(&table);
        Ok(table)
    }

    fn bad_input(err: &Error) -> (String, Option<String>) {
        assert!(matches!(err, Error::BadInput { .. }), "{err:?}");
        (err.to_string(), err.hint().map(str::to_string))
    }

    #[test]
    fn infers_every_type() {
        let csv = "id,name,active,score,signup,seen_at,notes\n\
                   1,Ann,true,1.5,2024-01-05,2024-01-05T10:00:00Z,\n\
                   2,,False,2,2023-12-31,2024-01-05 11:00:00,\n\
                   3, Bob ,TRUE,,,,\n";
        let table = load(csv.as_bytes(), BadRows::Strict).expect("loads");
        use ValueType::*;
        let expected = [
            ("id", Int),
            ("name", String),
            ("active", Bool),
            ("score", Float),
            ("signup", Date),
            ("seen_at", Timestamp),
            ("notes", String),
        ];
        let got: Vec<(&str, ValueType)> =
            table.schema.columns.iter().map(|(n, t)| (n.as_str(), *t)).collect();
        assert_eq!(got, expected);
        assert_eq!(column_strings(&table, "name"), ["Ann", "null", " Bob "]);
        assert_eq!(column_strings(&table, "active"), ["true", "false", "true"]);
        assert_eq!(column_strings(&table, "signup"), ["2024-01-05", "2023-12-31", "null"]);
        assert_eq!(
            column_strings(&table, "seen_at"),
            ["2024-01-05T10:00:00Z", "2024-01-05T11:00:00Z", "null"]
        );
        assert_eq!(table.rows_read, 3);
    }

    #[test]
    fn overrides_replace_inference() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut spec = spec_for(&dir, "a.csv", b"zip,flag\n02134,yes\n10001,no\n");
        spec.overrides = vec![("zip".into(), ValueType::String), ("flag".into(), ValueType::Bool)];
        let table = load_table(&spec, BadRows::Strict).expect("loads");
        assert_eq!(
            table.schema.columns,
            [("zip".into(), ValueType::String), ("flag".into(), ValueType::Bool)]
        );
        assert_eq!(column_strings(&table, "zip"), ["02134", "10001"]);
        assert_eq!(column_strings(&table, "flag"), ["true", "false"]);
    }

    #[test]
    fn override_of_missing_column_suggests_a_name() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut spec = spec_for(&dir, "a.csv", b"id,employees\n1,2\n");
        spec.overrides = vec![("employes".into(), ValueType::Int)];
        let err = read_schema(&spec).expect_err("missing column");
        let (message, hint) = bad_input(&err);
        assert_eq!(message, "data/a.csv: declared column `employes` is not in the file");
        assert_eq!(
            hint.as_deref(),
            Some("did you mean `employees`? the file's columns are `id`, `employees`")
        );
    }

    #[test]
    fn header_only_and_empty_files() {
        let table = load(b"id,name\n", BadRows::Strict).expect("header only is valid");
        assert_eq!(
            table.schema.columns,
            [("id".into(), ValueType::String), ("name".into(), ValueType::String)]
        );
        assert!(table.batches.is_empty());
        assert_eq!(table.rows_read, 0);

        let err = load(b"", BadRows::Strict).expect_err("empty");
        let (message, hint) = bad_input(&err);
        assert_eq!(message, "data/accounts.csv: empty file, expected a header row");
        assert!(hint.is_some());
    }

    #[test]
    fn bad_headers() {
        let (message, _) = bad_input(&load(b"id,name,id\n", BadRows::Strict).expect_err("dup"));
        assert_eq!(message, "data/accounts.csv:1: column `id`: duplicate column name in the header");
        let (message, _) = bad_input(&load(b"id,,x\n", BadRows::Strict).expect_err("empty name"));
        assert_eq!(message, "data/accounts.csv:1: header field 2 is empty");
        let table = load(b"\xef\xbb\xbfid , name\n1,a\n", BadRows::Strict).expect("bom and spaces");
        assert_eq!(table.schema.columns[0].0, "id");
        assert_eq!(table.schema.columns[1].0, "name");
    }

    #[test]
    fn wrong_field_count() {
        let csv = b"id,name\n1,a\n2\n3,c,extra\n4,d\n";
        let (message, hint) = bad_input(&load(csv, BadRows::Strict).expect_err("strict"));
        assert_eq!(message, "data/accounts.csv:3: expected 2 fields, found 1");
        assert!(hint.is_some_and(|h| h.contains("--on-bad-rows reject")));

        let table = load(csv, BadRows::Reject).expect("reject");
        assert_eq!(table.rows_read, 4);
        assert_eq!(table.num_rows(), 2);
        let rejected: Vec<(u64, &str, &str)> =
            table.rejected.iter().map(|r| (r.line, r.reason.as_str(), r.raw.as_str())).collect();
        assert_eq!(
            rejected,
            [(3, "expected 2 fields, found 1", "2"), (4, "expected 2 fields, found 3", "3,c,extra")]
        );
        assert_eq!(column_strings(&table, "id"), ["1", "4"]);
    }

    #[test]
    fn bad_values_name_line_and_column() {
        let mut csv = String::from("id,employees\n");
        for i in 0..15 {
            csv.push_str(&format!("{i},{i}\n"));
        }
        csv.push_str("15,12x\n");
        let dir = tempfile::tempdir().expect("temp dir");
        let mut spec = spec_for(&dir, "accounts.csv", csv.as_bytes());
        spec.infer_rows = 10;
        let (message, hint) = bad_input(&load_table(&spec, BadRows::Strict).expect_err("strict"));
        assert_eq!(message, "data/accounts.csv:17: column `employees`: cannot read \"12x\" as int");
        assert_eq!(
            hint.as_deref(),
            Some(
                "fix the value, declare the column's type in columns = { employees = \"string\" }, or run with --on-bad-rows reject"
            )
        );
    }

    #[test]
    fn unparsable_timestamp_after_the_sample() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut spec = spec_for(
            &dir,
            "events.csv",
            b"id,ts\n1,2024-01-05T10:00:00Z\n2,\"2024-01-05\nT10\"\n3,2024-02-30\n",
        );
        spec.infer_rows = 1;
        let err = load_table(&spec, BadRows::Strict).expect_err("bad timestamp");
        assert_eq!(
            err.to_string(),
            "data/events.csv:3: column `ts`: cannot read \"2024-01-05\\nT10\" as timestamp"
        );
        let table = load_table(&spec, BadRows::Reject).expect("reject");
        check_invariants(&table);
        let lines: Vec<u64> = table.rejected.iter().map(|r| r.line).collect();
        assert_eq!(lines, [3, 5], "multi-line quoted fields count physical lines");
        assert_eq!(table.rejected[1].reason, "column `ts`: cannot read \"2024-02-30\" as timestamp");
        assert_eq!(table.rejected[0].raw, "2,\"2024-01-05\nT10\"");
    }

    #[test]
    fn timestamps_with_offsets_become_utc() {
        let csv = b"ts\n2024-01-05T12:00:00+02:00\n2024-01-05T05:00:00-05:00\n";
        let table = load(csv, BadRows::Strict).expect("loads");
        assert_eq!(table.schema.columns[0].1, ValueType::Timestamp);
        assert_eq!(column_strings(&table, "ts"), ["2024-01-05T10:00:00Z", "2024-01-05T10:00:00Z"]);
    }

    #[test]
    fn invalid_utf8_is_a_bad_row() {
        let csv = b"id,name\n1,ok\n2,caf\xe9\n3,fine\n";
        let (message, _) = bad_input(&load(csv, BadRows::Strict).expect_err("strict"));
        assert_eq!(message, "data/accounts.csv:3: column `name`: value is not valid UTF-8");
        let table = load(csv, BadRows::Reject).expect("reject");
        assert_eq!(column_strings(&table, "name"), ["ok", "fine"]);
        assert_eq!(table.rejected[0].raw, "2,caf\u{fffd}");
    }

    #[test]
    fn many_rows_are_batched() {
        let mut csv = String::from("n\n");
        for i in 0..20_000 {
            csv.push_str(&format!("{i}\n"));
        }
        let table = load(csv.as_bytes(), BadRows::Strict).expect("loads");
        let sizes: Vec<usize> = table.batches.iter().map(|b| b.num_rows()).collect();
        assert_eq!(sizes, [8192, 8192, 3616]);
    }
}
