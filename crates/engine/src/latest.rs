//! Reads of the project's latest run: a segment's members (with chosen columns, in one of the
//! export formats) and the run's summary.

use std::cmp::Ordering;
use std::path::Path;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray, UInt32Array};
use arrow::compute::take;
use arrow::datatypes::{DataType, Field, Schema};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use segmenta_store::Store;
use segmenta_store::formats::RunSummary;

use crate::error::{Error, Result};
use crate::project::Project;

/// The id column of every output file.
const ID: &str = segmenta_query::ENTITY_ID;

/// How [`members_export`] writes the members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MembersFormat {
    /// One id per line.
    Lines,
    /// CSV with a header: `entity_id` and the chosen columns; NULL is an empty field.
    Csv,
    /// One JSON object per line: `entity_id` and the chosen columns, typed (numbers, booleans,
    /// strings, `null`; dates and timestamps as their ISO 8601 text).
    JsonLines,
    /// A Parquet file with the columns' own types.
    Parquet,
}

/// A segment's members with chosen columns of the latest run's evaluation table.
#[derive(Debug, Clone, Default)]
pub struct MembersQuery {
    /// The segment.
    pub segment: String,
    /// Attributes, traits, scores, schemes, RFM values to add after `entity_id`, in order.
    pub with: Vec<String>,
    /// The snapshot to read (its id or as-of date); default: the latest run.
    pub at: Option<String>,
}

/// Compares ids in natural order: runs of digits by their value (`c2` before `c10`), the rest
/// by character; ids that compare equal so (`c01`, `c1`) by their text.
pub fn natural_order(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    while let (Some(&p), Some(&q)) = (x.first(), y.first()) {
        if p.is_ascii_digit() && q.is_ascii_digit() {
            let run = |s: &[u8]| s.iter().take_while(|c| c.is_ascii_digit()).count();
            let (m, n) = (run(x), run(y));
            fn trim(s: &[u8]) -> &[u8] {
                let zeros = s.iter().take_while(|c| **c == b'0').count();
                &s[zeros..]
            }
            let (u, v) = (trim(&x[..m]), trim(&y[..n]));
            let order = u.len().cmp(&v.len()).then_with(|| u.cmp(v));
            if order != Ordering::Equal {
                return order;
            }
            (x, y) = (&x[m..], &y[n..]);
        } else {
            if p != q {
                return p.cmp(&q);
            }
            (x, y) = (&x[1..], &y[1..]);
        }
    }
    x.len().cmp(&y.len()).then_with(|| a.cmp(b))
}

pub(crate) fn check_declared(project: &Project, segment: &str) -> Result<()> {
    let names = project.config.segment_names();
    if names.iter().any(|n| n == segment) {
        return Ok(());
    }
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let hint = match segmenta_core::config::did_you_mean(segment, names.iter().copied()) {
        Some(best) => Some(format!("did you mean `{best}`?")),
        None if names.is_empty() => Some("the project declares no segments".into()),
        None => Some(format!("declared segments: {}", names.join(", "))),
    };
    Err(Error::UnknownSegment { name: segment.to_string(), hint })
}

/// The latest run's folder, checked to hold `segment` (a segment added to the project after
/// the run has no members there yet, which is not the same as none).
fn latest_with(project: &Project, segment: &str, at: Option<&str>) -> Result<std::path::PathBuf> {
    check_declared(project, segment)?;
    let latest = match at {
        Some(at) => crate::stored::run_at(project, at)?,
        None => Store::new(project.store_dir()).latest()?,
    };
    let summary = segmenta_store::read_run_summary(&latest)?;
    if !summary.segments.iter().any(|s| s.name == segment) {
        return Err(Error::SegmentNotInRun { name: segment.to_string(), run: latest, as_of: summary.as_of });
    }
    Ok(latest)
}

/// The members of a segment in the project's latest run, in natural order of their ids.
pub fn members(project: &Project, segment: &str) -> Result<Vec<String>> {
    members_at(project, segment, None)
}

/// The members of a segment in the snapshot `at` (its id or as-of date; `None`: the latest
/// run), in natural order of their ids.
pub fn members_at(project: &Project, segment: &str, at: Option<&str>) -> Result<Vec<String>> {
    sorted_members(&latest_with(project, segment, at)?, segment)
}

/// The members of a segment in a run folder, in natural order of their ids.
fn sorted_members(run: &Path, segment: &str) -> Result<Vec<String>> {
    let mut ids = segmenta_store::read_members(run, segment)?;
    ids.sort_by(|a, b| natural_order(a, b));
    Ok(ids)
}

/// The members of a segment with the chosen columns, in natural order of their ids, as the
/// bytes of `format`.
pub fn members_export(project: &Project, query: &MembersQuery, format: MembersFormat) -> Result<Vec<u8>> {
    let latest = latest_with(project, &query.segment, query.at.as_deref())?;
    let ids = sorted_members(&latest, &query.segment)?;
    if format == MembersFormat::Lines {
        if !query.with.is_empty() {
            return Err(Error::Usage {
                message: "one id per line cannot hold the columns of --with".into(),
                hint: Some("choose --format csv, jsonl or parquet".into()),
            });
        }
        return Ok(ids.iter().flat_map(|id| [id.as_bytes(), b"\n"]).flatten().copied().collect());
    }
    let batch = members_batch(&latest, &ids, &query.with)?;
    match format {
        MembersFormat::Lines => Err(Error::Internal("lines handled above".into())),
        MembersFormat::Csv => csv_bytes(&batch),
        MembersFormat::JsonLines => json_lines_bytes(&batch),
        MembersFormat::Parquet => Ok(segmenta_store::parquet_bytes(&batch)?),
    }
}

/// `entity_id` and the `with` columns of the members, from the run's evaluation table.
fn members_batch(run: &Path, ids: &[String], with: &[String]) -> Result<RecordBatch> {
    let path = run.join(segmenta_store::files::TABLE);
    let mut wanted = vec![ID.to_string()];
    wanted.extend(with.iter().cloned());
    let table = segmenta_store::read_parquet_columns(&path, &wanted)?;
    let visible: Vec<String> = segmenta_store::read_parquet_schema(&path)?
        .into_iter()
        .filter(|n| n != ID && !segmenta_core::hidden::is_reserved(n))
        .collect();
    let mut seen = std::collections::HashSet::new();
    for name in with {
        if !seen.insert(name) {
            return Err(Error::Usage { message: format!("--with names `{name}` twice"), hint: None });
        }
        if name == ID || !visible.contains(name) {
            let hint = match segmenta_core::config::did_you_mean(name, visible.iter().map(String::as_str)) {
                Some(best) => format!("did you mean `{best}`? the run's columns are: {}", visible.join(", ")),
                None => format!("the run's columns are: {}", visible.join(", ")),
            };
            let message = if name == ID {
                format!("`{ID}` is always the first column; leave it out of --with")
            } else {
                format!("--with: `{name}` is not a column of the latest run")
            };
            return Err(Error::UnknownColumn { message, hint: Some(hint) });
        }
    }
    let table_ids = table
        .column_by_name(ID)
        .and_then(|c| c.as_string_opt::<i32>())
        .ok_or_else(|| Error::Internal(format!("{} has no text `{ID}`", path.display())))?;
    let row: std::collections::HashMap<&str, u32> =
        table_ids.iter().enumerate().filter_map(|(i, id)| id.map(|id| (id, i as u32))).collect();
    let indices = ids
        .iter()
        .map(|id| {
            row.get(id.as_str())
                .copied()
                .ok_or_else(|| Error::Internal(format!("member `{id}` is not in the run's table")))
        })
        .collect::<Result<Vec<u32>>>()?;
    let indices = UInt32Array::from(indices);
    let mut fields = vec![Field::new(ID, DataType::Utf8, false)];
    let mut columns: Vec<ArrayRef> = vec![std::sync::Arc::new(StringArray::from_iter_values(ids))];
    for name in with {
        let column =
            table.column_by_name(name).ok_or_else(|| Error::Internal(format!("`{name}` was not read")))?;
        fields.push(Field::new(name, column.data_type().clone(), true));
        columns.push(take(column.as_ref(), &indices, None).map_err(segmenta_query::Error::from)?);
    }
    RecordBatch::try_new(std::sync::Arc::new(Schema::new(fields)), columns)
        .map_err(|e| Error::Query(segmenta_query::Error::from(e)))
}

fn formatters(batch: &RecordBatch) -> Result<Vec<ArrayFormatter<'_>>> {
    let options = FormatOptions::default();
    batch
        .columns()
        .iter()
        .map(|c| {
            ArrayFormatter::try_new(c.as_ref(), &options)
                .map_err(|e| Error::Query(segmenta_query::Error::from(e)))
        })
        .collect()
}

fn csv_bytes(batch: &RecordBatch) -> Result<Vec<u8>> {
    let internal = |e: csv::Error| Error::Internal(format!("writing CSV: {e}"));
    let mut writer = csv::Writer::from_writer(Vec::new());
    let schema = batch.schema();
    writer.write_record(schema.fields().iter().map(|f| f.name().as_str())).map_err(internal)?;
    let formatters = formatters(batch)?;
    for row in 0..batch.num_rows() {
        let fields: Vec<String> = batch
            .columns()
            .iter()
            .zip(&formatters)
            .map(|(c, f)| if c.is_null(row) { String::new() } else { f.value(row).to_string() })
            .collect();
        writer.write_record(&fields).map_err(internal)?;
    }
    writer.into_inner().map_err(|e| Error::Internal(format!("writing CSV: {e}")))
}

fn json_lines_bytes(batch: &RecordBatch) -> Result<Vec<u8>> {
    let schema = batch.schema();
    let formatters = formatters(batch)?;
    let mut out = Vec::new();
    for row in 0..batch.num_rows() {
        let mut object = serde_json::Map::new();
        for ((field, column), formatter) in schema.fields().iter().zip(batch.columns()).zip(&formatters) {
            object.insert(field.name().clone(), json_value(column.as_ref(), formatter, row));
        }
        serde_json::to_writer(&mut out, &object)
            .map_err(|e| Error::Internal(format!("writing JSON: {e}")))?;
        out.push(b'\n');
    }
    Ok(out)
}

/// One value of a run's table, typed as the API shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Missing (SQL NULL).
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float (never NaN or infinite in a run's table).
    Float(f64),
    /// Text; dates and timestamps as their ISO 8601 text.
    Text(String),
}

/// The value at `row` of a run's table column (`formatter` is the column's).
pub(crate) fn cell(column: &dyn Array, formatter: &ArrayFormatter<'_>, row: usize) -> Cell {
    if column.is_null(row) {
        return Cell::Null;
    }
    match column.data_type() {
        DataType::Boolean => Cell::Bool(column.as_boolean().value(row)),
        DataType::Int64 => Cell::Int(column.as_primitive::<arrow::datatypes::Int64Type>().value(row)),
        DataType::Float64 => Cell::Float(column.as_primitive::<arrow::datatypes::Float64Type>().value(row)),
        _ => Cell::Text(formatter.value(row).to_string()),
    }
}

/// A value of a run's table as JSON: a non-finite float as `null`.
fn json_value(column: &dyn Array, formatter: &ArrayFormatter<'_>, row: usize) -> serde_json::Value {
    match cell(column, formatter, row) {
        Cell::Null => serde_json::Value::Null,
        Cell::Bool(b) => serde_json::Value::Bool(b),
        Cell::Int(i) => i.into(),
        Cell::Float(f) => {
            serde_json::Number::from_f64(f).map_or(serde_json::Value::Null, serde_json::Value::Number)
        }
        Cell::Text(t) => serde_json::Value::String(t),
    }
}

/// The summary of the project's latest run.
pub fn latest_summary(project: &Project) -> Result<RunSummary> {
    let store = Store::new(project.store_dir());
    Ok(segmenta_store::read_run_summary(&store.latest()?)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order_reads_digit_runs_as_numbers() {
        let mut ids = vec!["c10", "c2", "c1", "b", "c01", "a10b2", "a10b10", "10", "9", ""];
        ids.sort_by(|a, b| natural_order(a, b));
        assert_eq!(ids, ["", "9", "10", "a10b2", "a10b10", "b", "c01", "c1", "c2", "c10"]);
    }

    #[test]
    fn natural_order_is_a_total_order_on_distinct_texts() {
        // Equal texts only compare equal to themselves; the order is antisymmetric.
        let ids = ["x1", "x01", "x001", "x1a", "x10", "x", "0", "00", "a"];
        for a in ids {
            for b in ids {
                assert_eq!(natural_order(a, b) == Ordering::Equal, a == b, "{a} {b}");
                assert_eq!(natural_order(a, b), natural_order(b, a).reverse(), "{a} {b}");
            }
        }
    }
}
