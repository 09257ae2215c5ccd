//! Previews: the size of an ad-hoc rule on a run's evaluation table (`table.parquet`), reading
//! only the columns the rule needs, evaluated batch by batch with the vectorized evaluator (no
//! query engine to start), and the ids of the first few members.

use std::fs::File;
use std::path::Path;

use arrow::array::AsArray;
use arrow::compute::cast;
use arrow::datatypes::DataType;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReaderBuilder, RowSelection, RowSelector};
use segmenta_core::ValueType;
use segmenta_rules::ast::{ColumnInfo, ColumnSource, TypedExpr, TypedValue};

use segmenta_core::hidden::segment_flag;

use crate::request::ENTITY_ID;
use crate::scan::{open_parquet, parquet_error, true_bits};
use crate::vector::{Columns, evaluate};
use crate::{Error, Result};

/// What a preview counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviewCount {
    /// Rows for which the rule is TRUE.
    pub size: u64,
    /// Rows in the table.
    pub entities: u64,
    /// The ids of the first members, in table order.
    pub sample: Vec<String>,
}

/// `in_segment('x')` read from the table's membership column of `x` (never NULL).
fn with_segment_flags(expr: &TypedExpr) -> TypedExpr {
    let flags = |e: &TypedExpr| Box::new(with_segment_flags(e));
    match expr {
        TypedExpr::Or(a, b) => TypedExpr::Or(flags(a), flags(b)),
        TypedExpr::And(a, b) => TypedExpr::And(flags(a), flags(b)),
        TypedExpr::Not(a) => TypedExpr::Not(flags(a)),
        TypedExpr::InSegment(name) => TypedExpr::Truthy(TypedValue::Column {
            column: ColumnInfo {
                column: segment_flag(name),
                ty: ValueType::Bool,
                source: ColumnSource::Attribute,
            },
            ty: ValueType::Bool,
        }),
        leaf => leaf.clone(),
    }
}

/// Counts the rows of the evaluation table at `path` for which `rule` is TRUE.
pub fn preview_file(path: &Path, rule: &TypedExpr, sample: usize) -> Result<PreviewCount> {
    let rule = with_segment_flags(rule);
    let (columns, _) = rule.references();
    let file = open_parquet(path, &columns, 1)?;
    let reader = |projection: ProjectionMask, selection: Option<RowSelection>| -> Result<_> {
        let input =
            File::open(path).map_err(|source| Error::Io { path: path.display().to_string(), source })?;
        let mut builder = ParquetRecordBatchReaderBuilder::new_with_metadata(input, file.metadata.clone())
            .with_projection(projection)
            .with_batch_size(64 * 1024);
        if let Some(selection) = selection {
            builder = builder.with_row_selection(selection);
        }
        builder.build().map_err(parquet_error(path))
    };
    let entities = file.metadata.metadata().file_metadata().num_rows().max(0) as u64;
    // Pass 1: the rule's columns only; the count and the row numbers of the first members.
    let mut size = 0u64;
    let mut first: Vec<usize> = Vec::new();
    let mut offset = 0usize;
    if columns.is_empty() {
        // A constant rule: evaluate it on an empty-column batch of the right length.
        let batch = arrow::array::RecordBatch::try_new_with_options(
            std::sync::Arc::new(arrow::datatypes::Schema::empty()),
            vec![],
            &arrow::array::RecordBatchOptions::new().with_row_count(Some(entities as usize)),
        )?;
        let matched = true_bits(&evaluate(&rule, &Columns::new(&batch))?);
        size = matched.count_set_bits() as u64;
        first.extend(matched.set_indices().take(sample));
    } else {
        for batch in reader(file.projection.clone(), None)? {
            let batch = batch.map_err(|e| parquet_error(path)(e.into()))?;
            let matched = true_bits(&evaluate(&rule, &Columns::new(&batch))?);
            size += matched.count_set_bits() as u64;
            if first.len() < sample {
                first.extend(matched.set_indices().take(sample - first.len()).map(|i| i + offset));
            }
            offset += batch.num_rows();
        }
    }
    // Pass 2: the ids of those rows only.
    let mut ids = Vec::with_capacity(first.len());
    if !first.is_empty() {
        let mut selectors = Vec::new();
        let mut at = 0;
        for &row in &first {
            selectors.push(RowSelector::skip(row - at));
            selectors.push(RowSelector::select(1));
            at = row + 1;
        }
        let parquet_schema = file.metadata.metadata().file_metadata().schema_descr_ptr();
        let id_column = (0..parquet_schema.num_columns())
            .find(|&i| parquet_schema.column(i).name() == ENTITY_ID)
            .ok_or_else(|| Error::Internal(format!("{} has no {ENTITY_ID} column", path.display())))?;
        let projection = ProjectionMask::leaves(&parquet_schema, [id_column]);
        for batch in reader(projection, Some(RowSelection::from(selectors)))? {
            let batch = batch.map_err(|e| parquet_error(path)(e.into()))?;
            let text = cast(batch.column(0), &DataType::Utf8)?;
            ids.extend(text.as_string::<i32>().iter().map(|v| v.unwrap_or_default().to_string()));
        }
    }
    Ok(PreviewCount { size, entities, sample: ids })
}
