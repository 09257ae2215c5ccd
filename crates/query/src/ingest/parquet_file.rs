//! Parquet files: types come from the file's Arrow schema (mapped to value types), columns of
//! types segmenta cannot use are skipped, and every batch is cast to the canonical types.

use std::collections::BTreeMap;
use std::fs::File;

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Float64Array};
use arrow::compute::{CastOptions, cast, cast_with_options, filter};
use arrow::datatypes::{DataType, Float64Type};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use segmenta_core::ValueType;

use super::values::parse_strings;
use super::{
    BATCH_ROWS, BadRow, BadRows, LoadedTable, Rejects, Resolved, SourceSpec, apply_overrides, arrow_type,
    open, value_hint,
};
use crate::{Error, Location, Result};

/// The value type of a Parquet column's Arrow type; `None` for types segmenta does not read
/// (binary, lists, structs, maps, times of day, durations, intervals).
fn value_type(data_type: &DataType) -> Option<ValueType> {
    use DataType::*;
    match data_type {
        Utf8 | LargeUtf8 | Utf8View | Null => Some(ValueType::String),
        Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 => Some(ValueType::Int),
        Float16 | Float32 | Float64 | Decimal32(..) | Decimal64(..) | Decimal128(..) | Decimal256(..) => {
            Some(ValueType::Float)
        }
        Boolean => Some(ValueType::Bool),
        Date32 | Date64 => Some(ValueType::Date),
        Timestamp(..) => Some(ValueType::Timestamp),
        Dictionary(_, values) => value_type(values),
        _ => None,
    }
}

/// True for string columns, which go through the text grammar when declared as another type.
fn is_text(data_type: &DataType) -> bool {
    match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, values) => is_text(values),
        _ => false,
    }
}

fn invalid_parquet(spec: &SourceSpec, error: impl std::fmt::Display) -> Error {
    Error::bad_input(
        Location { file: spec.display.clone(), line: None, column: None },
        format!("not a valid Parquet file: {error}"),
        Some(
            "check that the file is Parquet, or give it the extension of its real format (.csv, .jsonl)"
                .into(),
        ),
    )
}

/// A reader for the usable columns, their schema, and the source types of those columns.
type Opened = (ParquetRecordBatchReaderBuilder<File>, Resolved, Vec<DataType>);

fn open_reader(spec: &SourceSpec) -> Result<Opened> {
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(open(spec)?).map_err(|e| invalid_parquet(spec, e))?;
    let mut inferred = Vec::new();
    let mut sources = Vec::new();
    let mut roots = Vec::new();
    let mut unsupported = Vec::new();
    for (i, field) in builder.schema().fields().iter().enumerate() {
        match value_type(field.data_type()) {
            Some(ty) => {
                inferred.push((field.name().clone(), ty));
                sources.push(field.data_type().clone());
                roots.push(i);
            }
            None => unsupported.push((field.name().clone(), field.data_type().clone())),
        }
    }
    // Columns of unusable types are skipped rather than failing the file: rules cannot
    // reference them, and wide Parquet exports often carry a few. Declaring one is an error.
    for (name, _) in &spec.overrides {
        if let Some((_, data_type)) = unsupported.iter().find(|(n, _)| n == name) {
            return Err(Error::bad_input(
                Location { file: spec.display.clone(), line: None, column: Some(name.clone()) },
                format!("column has unsupported Parquet type {data_type}"),
                Some(format!(
                    "remove `{name}` from columns = {{ ... }}, or convert the column to a string or number"
                )),
            ));
        }
    }
    let resolved = apply_overrides(spec, inferred)?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let builder = builder.with_projection(mask).with_batch_size(BATCH_ROWS);
    Ok((builder, resolved, sources))
}

/// The schema from the footer, with overrides; no data is read.
pub(super) fn resolve(spec: &SourceSpec) -> Result<(Resolved, Vec<DataType>)> {
    let (_, resolved, sources) = open_reader(spec)?;
    Ok((resolved, sources))
}

/// Reads every row, cast to the canonical types.
pub(super) fn load(spec: &SourceSpec, mode: BadRows, limit: Option<u64>) -> Result<LoadedTable> {
    let (builder, Resolved { schema, declared }, sources) = open_reader(spec)?;
    let builder = match limit {
        Some(limit) => builder.with_limit(usize::try_from(limit).unwrap_or(usize::MAX)),
        None => builder,
    };
    let reader = builder.build().map_err(|e| invalid_parquet(spec, e))?;
    let arrow_schema = schema.arrow_schema();
    let mut rejects = Rejects::new(spec, mode);
    let mut batches = Vec::new();
    let mut rows_read = 0u64;
    for batch in reader {
        let batch = batch.map_err(|e| invalid_parquet(spec, e))?;
        let first_row = rows_read;
        rows_read += batch.num_rows() as u64;
        let mut arrays = Vec::with_capacity(schema.columns.len());
        // Row in the batch -> the first failing column and its message.
        let mut failures: BTreeMap<usize, (usize, String)> = BTreeMap::new();
        for (c, (((name, ty), source), declared)) in
            schema.columns.iter().zip(&sources).zip(&declared).enumerate()
        {
            let array = batch.column(c);
            let (converted, failed) = convert(spec, name, array, source, *ty, *declared)?;
            for (row, message) in failed {
                failures.entry(row).or_insert((c, message));
            }
            arrays.push(converted);
        }
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        let converted = RecordBatch::try_new_with_options(arrow_schema.clone(), arrays, &options)?;
        if failures.is_empty() {
            batches.push(converted);
            continue;
        }
        for (row, (c, message)) in &failures {
            let name = &schema.columns[*c].0;
            let bad = BadRow {
                line: first_row + *row as u64 + 1,
                column: Some(name.clone()),
                message: message.clone(),
                hint: value_hint(name, declared[*c]),
            };
            rejects.report(bad, || raw_row(&batch, *row))?;
        }
        let keep: BooleanArray =
            (0..batch.num_rows()).map(|row| Some(!failures.contains_key(&row))).collect();
        let kept = converted.columns().iter().map(|a| filter(a, &keep)).collect::<Result<Vec<_>, _>>()?;
        let kept_rows = batch.num_rows() - failures.len();
        if kept_rows > 0 {
            let options = RecordBatchOptions::new().with_row_count(Some(kept_rows));
            batches.push(RecordBatch::try_new_with_options(arrow_schema.clone(), kept, &options)?);
        }
    }
    // Parquet has no lines: its "lines" are its rows.
    Ok(LoadedTable { schema, batches, rows_read, lines_read: rows_read, rejected: rejects.rows })
}

/// Casts one column to its canonical type; failing values become NULL and are listed.
fn convert(
    spec: &SourceSpec,
    name: &str,
    array: &ArrayRef,
    source: &DataType,
    ty: ValueType,
    declared: bool,
) -> Result<(ArrayRef, Vec<(usize, String)>)> {
    let cast_error = |e: arrow::error::ArrowError| {
        Error::bad_input(
            Location { file: spec.display.clone(), line: None, column: Some(name.to_string()) },
            format!("cannot convert Parquet type {source} to {ty}: {e}"),
            Some(format!("declare another type in columns = {{ {name} = \"...\" }}")),
        )
    };
    if is_text(source) && ty != ValueType::String {
        let strings = cast(array, &DataType::Utf8).map_err(cast_error)?;
        return parse_strings(strings.as_string::<i32>(), ty, declared);
    }
    let target = arrow_type(ty);
    let options = CastOptions { safe: true, ..CastOptions::default() };
    let converted = cast_with_options(array, &target, &options).map_err(cast_error)?;
    let source_nulls = array.logical_null_count();
    let mut failures = Vec::new();
    if converted.null_count() > source_nulls {
        // A safe cast turns values it cannot convert (an out-of-range UInt64, say) into NULL.
        let formatter = ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default())?;
        let source_valid = array.logical_nulls();
        failures = (0..array.len())
            .filter(|&i| source_valid.as_ref().is_none_or(|n| n.is_valid(i)) && converted.is_null(i))
            .map(|i| (i, format!("cannot read {} as {ty}", formatter.value(i))))
            .collect();
    }
    if ty != ValueType::Float {
        return Ok((converted, failures));
    }
    // Floats as the text formats read them: NaN and infinities are bad values, -0.0 is 0.0.
    let floats: Float64Array = converted
        .as_primitive::<Float64Type>()
        .iter()
        .enumerate()
        .map(|(i, value)| match value {
            Some(f) if f.is_finite() => Some(f + 0.0),
            Some(f) => {
                failures.push((i, format!("cannot read {f} as float: not a finite number")));
                None
            }
            None => None,
        })
        .collect();
    failures.sort_by_key(|(i, _)| *i);
    Ok((Arc::new(floats), failures))
}

/// A row's original values, joined by commas, for the rejects file.
fn raw_row(batch: &RecordBatch, row: usize) -> String {
    let options = FormatOptions::default();
    let values: Vec<String> = batch
        .columns()
        .iter()
        .map(|array| {
            ArrayFormatter::try_new(array.as_ref(), &options)
                .map_or_else(|_| String::new(), |f| f.value(row).to_string())
        })
        .collect();
    values.join(",")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{
        DictionaryArray, Int32Array, ListArray, StringArray, TimestampMillisecondArray, UInt64Array,
    };
    use arrow::datatypes::{Field, Int32Type, Schema};
    use parquet::arrow::ArrowWriter;

    use super::super::test_util::*;
    use super::super::{load_table, read_schema};
    use super::*;

    fn write_parquet(dir: &tempfile::TempDir, name: &str, batch: &RecordBatch) -> SourceSpec {
        let spec = spec_for(dir, name, b"");
        let file = File::create(&spec.path).expect("temp folder is writable");
        let mut writer = ArrowWriter::try_new(file, batch.schema(), None).expect("writer");
        writer.write(batch).expect("written");
        writer.close().expect("closed");
        spec
    }

    fn sample() -> RecordBatch {
        let plan: DictionaryArray<Int32Type> = vec![Some("pro"), None, Some("free")].into_iter().collect();
        let ts =
            TimestampMillisecondArray::from(vec![Some(1_704_456_000_000), Some(1_704_456_000_500), None]);
        let ids = Int32Array::from(vec![1, 2, 3]);
        let big = UInt64Array::from(vec![1, u64::MAX, 3]);
        let codes = StringArray::from(vec![Some("10"), Some(" 20 "), Some("x")]);
        let tags = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![Some(vec![Some(1)]), None, None]);
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int32, false),
            Field::new("plan", plan.data_type().clone(), true),
            Field::new("ts", ts.data_type().clone(), true),
            Field::new("tags", tags.data_type().clone(), true),
            Field::new("big", DataType::UInt64, true),
            Field::new("code", DataType::Utf8, true),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![Arc::new(ids), Arc::new(plan), Arc::new(ts), Arc::new(tags), Arc::new(big), Arc::new(codes)],
        )
        .expect("valid batch")
    }

    #[test]
    fn round_trip_maps_to_canonical_types() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut spec = write_parquet(&dir, "events.parquet", &sample());
        let schema = read_schema(&spec).expect("footer");
        use ValueType::*;
        let expected = [("id", Int), ("plan", String), ("ts", Timestamp), ("big", Int), ("code", String)];
        let got: Vec<(&str, ValueType)> = schema.columns.iter().map(|(n, t)| (n.as_str(), *t)).collect();
        assert_eq!(got, expected, "the list column is skipped");

        spec.overrides = vec![("code".into(), Int)];
        let err = load_table(&spec, BadRows::Strict).expect_err("u64::MAX does not fit");
        assert_eq!(
            err.to_string(),
            "data/events.parquet:2: column `big`: cannot read 18446744073709551615 as int"
        );

        let table = load_table(&spec, BadRows::Reject).expect("reject");
        check_invariants(&table);
        let rejected: Vec<(u64, &str)> = table.rejected.iter().map(|r| (r.line, r.reason.as_str())).collect();
        assert_eq!(
            rejected,
            [
                (2, "column `big`: cannot read 18446744073709551615 as int"),
                (3, "column `code`: cannot read \"x\" as int"),
            ]
        );
        assert_eq!(table.rejected[1].raw, "3,free,,3,x");
        assert_eq!(column_strings(&table, "plan"), ["pro"]);
        assert_eq!(column_strings(&table, "ts"), ["2024-01-05T12:00:00Z"]);
        assert_eq!(column_strings(&table, "code"), ["10"]);
    }

    #[test]
    fn timestamps_and_dictionaries_become_canonical() {
        let dir = tempfile::tempdir().expect("temp dir");
        let spec = write_parquet(&dir, "events.parquet", &sample().project(&[0, 1, 2, 5]).expect("columns"));
        let table = load_table(&spec, BadRows::Strict).expect("loads");
        check_invariants(&table);
        let batch = &table.batches[0];
        assert_eq!(batch.column(1).data_type(), &DataType::Utf8);
        assert_eq!(batch.column(2).data_type(), &arrow_type(ValueType::Timestamp));
        assert_eq!(column_strings(&table, "plan"), ["pro", "null", "free"]);
        assert_eq!(
            column_strings(&table, "ts"),
            ["2024-01-05T12:00:00Z", "2024-01-05T12:00:00.500Z", "null"]
        );
    }

    #[test]
    fn declaring_a_skipped_column_is_an_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut spec = write_parquet(&dir, "events.parquet", &sample());
        spec.overrides = vec![("tags".into(), ValueType::String)];
        let err = read_schema(&spec).expect_err("unsupported");
        assert!(
            err.to_string()
                .starts_with("data/events.parquet: column `tags`: column has unsupported Parquet type List("),
            "{err}"
        );
    }

    #[test]
    fn corrupt_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let bytes: Vec<u8> = (0..200u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let spec = spec_for(&dir, "x.parquet", &bytes);
        let err = read_schema(&spec).expect_err("corrupt");
        assert!(err.to_string().starts_with("data/x.parquet: not a valid Parquet file: "), "{err}");
        assert!(err.hint().is_some());
        assert!(load_table(&spec, BadRows::Reject).is_err());
    }
}
