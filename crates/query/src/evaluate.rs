//! The evaluation pipeline of a run: one grouped aggregation over the events computes every
//! trait, a join attaches traits (and parent attributes) to entities, and one boolean column per
//! segment holds memberships.
//!
//! ```text
//! events ──(filtered aggregates, GROUP BY key)──► per-key traits ──┐
//! entities ──(LEFT JOIN parent)──────────────────────────────────── LEFT JOIN ──► traits
//!                                 traits ──(IS TRUE(rule) per segment, dependencies first)──► memberships
//! ```

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray, UInt32Array};
use arrow::compute::{concat_batches, take};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::datasource::MemTable;
use datafusion::execution::context::{SessionConfig, SessionContext};
use datafusion::functions_aggregate::expr_fn::sum;
use datafusion::logical_expr::{Expr, ExprFunctionExt, JoinType, cast, col, ident};
use datafusion::prelude::{DataFrame, ParquetReadOptions};
use segmenta_rules::ast::{TypedExpr, TypedTrait, TypedValue};

use crate::ingest::{TableSchema, arrow_type};
use crate::lower::{EventColumns, lower_trait, membership, timestamp_lit};
use crate::{Error, Result};

/// An in-memory table in canonical types.
#[derive(Debug, Clone)]
pub struct Table {
    /// Columns and types.
    pub schema: TableSchema,
    /// Rows.
    pub batches: Vec<RecordBatch>,
}

/// Where the events come from.
#[derive(Debug, Clone)]
pub enum EventsInput {
    /// Already loaded (CSV, JSON Lines).
    Table(Table),
    /// A Parquet file scanned by DataFusion, reading only the columns the traits need.
    /// `schema` holds the canonical types the columns are cast to.
    Parquet {
        /// The file.
        path: PathBuf,
        /// Canonical types of the file's columns (after overrides).
        schema: TableSchema,
    },
}

/// The event stream and its key columns.
#[derive(Debug, Clone)]
pub struct EventsRequest {
    /// Rows.
    pub input: EventsInput,
    /// Column carrying the entity key.
    pub key: String,
    /// Event time column.
    pub time: String,
}

/// The parent entity whose attributes rules read as `parent.attr`.
#[derive(Debug, Clone)]
pub struct ParentRequest {
    /// The parent rows.
    pub table: Table,
    /// The parent's key column.
    pub key: String,
    /// The column of the child rows that holds the parent's key.
    pub child_column: String,
    /// Parent attributes to attach: (attribute, column name in the evaluation table).
    pub attributes: Vec<(String, String)>,
}

/// Everything one evaluation needs.
#[derive(Debug, Clone)]
pub struct EvalRequest {
    /// The entities that segments hold.
    pub entities: Table,
    /// Their key column.
    pub key: String,
    /// The parent entity, if rules read parent attributes.
    pub parent: Option<ParentRequest>,
    /// Events, if there are traits.
    pub events: Option<EventsRequest>,
    /// Traits in output order.
    pub traits: Vec<(String, TypedTrait)>,
    /// Segments, each after the segments it references.
    pub segments: Vec<(String, TypedExpr)>,
    /// The as-of instant, microseconds since the epoch, UTC.
    pub as_of: i64,
    /// Worker threads (DataFusion target partitions).
    pub threads: usize,
}

/// How the events were used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EventCounts {
    /// Rows read from the events source (after rejects).
    pub read: u64,
    /// Events of known entities strictly before the as-of instant.
    pub used: u64,
    /// Events whose key matches no entity.
    pub ignored_unknown_entity: u64,
    /// Events at or after the as-of instant.
    pub ignored_after_as_of: u64,
    /// Events without a time.
    pub ignored_no_time: u64,
}

/// The result of an evaluation.
#[derive(Debug, Clone)]
pub struct EvalOutput {
    /// `entity_id` (Utf8) and one column per trait, sorted by `entity_id`.
    pub traits: RecordBatch,
    /// `entity_id` (Utf8), `segment` (Utf8): one row per membership, by segment then id.
    pub memberships: RecordBatch,
    /// Members per segment, in request order.
    pub segment_sizes: Vec<(String, u64)>,
    /// Number of entities.
    pub entities: u64,
    /// Event accounting.
    pub events: EventCounts,
}

const KEY: &str = "__segmenta_key";
const ALL: &str = "__segmenta_all";
const USED: &str = "__segmenta_used";
const AFTER: &str = "__segmenta_after";
/// The output column holding entity ids.
pub const ENTITY_ID: &str = "entity_id";

fn trait_column(i: usize) -> String {
    format!("__segmenta_trait_{i}")
}

fn segment_column(i: usize) -> String {
    format!("__segmenta_segment_{i}")
}

fn mem_table(ctx: &SessionContext, table: &Table) -> Result<DataFrame> {
    let schema = table.schema.arrow_schema();
    let provider = MemTable::try_new(schema, vec![table.batches.clone()])?;
    Ok(ctx.read_table(Arc::new(provider))?)
}

/// Columns of the event table a trait reads, besides key and time.
fn collect_columns(expr: &TypedExpr, out: &mut Vec<String>) {
    let mut value = |v: &TypedValue| {
        if let TypedValue::Column { column, .. } = v {
            out.push(column.column.clone());
        }
    };
    match expr {
        TypedExpr::Or(a, b) | TypedExpr::And(a, b) => {
            collect_columns(a, out);
            collect_columns(b, out);
        }
        TypedExpr::Not(a) => collect_columns(a, out),
        TypedExpr::Compare { left, right, .. } => {
            value(left);
            value(right);
        }
        TypedExpr::InList { value: v, .. }
        | TypedExpr::Between { value: v, .. }
        | TypedExpr::IsNull { value: v, .. }
        | TypedExpr::StringMatch { value: v, .. }
        | TypedExpr::Truthy(v) => value(v),
        TypedExpr::InSegment(_) => {}
    }
}

fn session(threads: usize) -> SessionContext {
    let config = SessionConfig::new().with_target_partitions(threads.max(1)).with_batch_size(8192);
    SessionContext::new_with_config(config)
}

async fn events_frame(
    ctx: &SessionContext,
    events: &EventsRequest,
    traits: &[(String, TypedTrait)],
) -> Result<DataFrame> {
    let mut needed = vec![events.key.clone(), events.time.clone()];
    for (_, t) in traits {
        if let Some(arg) = &t.arg {
            needed.push(arg.column.clone());
        }
        if let Some(filter) = &t.filter {
            collect_columns(filter, &mut needed);
        }
    }
    let mut seen = std::collections::HashSet::new();
    needed.retain(|c| seen.insert(c.clone()));
    match &events.input {
        EventsInput::Table(table) => {
            let frame = mem_table(ctx, table)?;
            Ok(frame.select(needed.iter().map(ident).collect::<Vec<_>>())?)
        }
        EventsInput::Parquet { path, schema } => {
            let path = path.to_string_lossy();
            let frame = ctx.read_parquet(path.as_ref(), ParquetReadOptions::default()).await?;
            let file_schema = frame.schema().clone();
            let mut exprs = Vec::with_capacity(needed.len());
            for name in &needed {
                let ty = schema
                    .get(name)
                    .ok_or_else(|| Error::Internal(format!("event column `{name}` not in schema")))?;
                let (_, field) = file_schema
                    .qualified_field_with_unqualified_name(name)
                    .map_err(|_| Error::Internal(format!("event column `{name}` not in file")))?;
                let target = arrow_type(ty);
                let expr = if field.data_type() == &target {
                    ident(name)
                } else {
                    cast(ident(name), target).alias(name)
                };
                exprs.push(expr);
            }
            Ok(frame.select(exprs)?)
        }
    }
}

fn u64_of(batch: &RecordBatch, column: usize) -> Result<u64> {
    let array = batch.column(column);
    let array = arrow::compute::cast(array, &DataType::Int64)?;
    let values = array.as_primitive::<arrow::datatypes::Int64Type>();
    Ok(if values.is_empty() || values.is_null(0) { 0 } else { values.value(0).max(0) as u64 })
}

/// Evaluates traits and segments.
pub async fn evaluate(request: &EvalRequest) -> Result<EvalOutput> {
    let ctx = session(request.threads);
    let mut frame = mem_table(&ctx, &request.entities)?;
    let entity_count = request.entities.batches.iter().map(|b| b.num_rows() as u64).sum();

    // Output columns: entity id, attributes, parent attributes, traits.
    let mut select: Vec<Expr> = vec![cast(ident(&request.key), DataType::Utf8).alias(ENTITY_ID)];
    for (name, _) in &request.entities.schema.columns {
        select.push(ident(name));
    }

    if let Some(parent) = &request.parent {
        let parent_key = "__segmenta_parent_key";
        let mut exprs = vec![cast(ident(&parent.key), DataType::Utf8).alias(parent_key)];
        for (attribute, column) in &parent.attributes {
            exprs.push(ident(attribute).alias(column));
            select.push(ident(column));
        }
        let parent_frame = mem_table(&ctx, &parent.table)?.select(exprs)?;
        let child_key = "__segmenta_child_key";
        frame = frame.with_column(child_key, cast(ident(&parent.child_column), DataType::Utf8))?.join(
            parent_frame,
            JoinType::Left,
            &[child_key],
            &[parent_key],
            None,
        )?;
    }

    let mut counts = EventCounts::default();
    if let Some(events) = &request.events {
        let event_frame = events_frame(&ctx, events, &request.traits).await?;
        let time = ident(&events.time);
        let as_of = timestamp_lit(request.as_of);
        let mut aggregates = vec![
            crate::lower::count_rows().alias(ALL),
            crate::lower::count_rows().filter(time.clone().lt(as_of.clone())).build()?.alias(USED),
            crate::lower::count_rows().filter(time.gt_eq(as_of)).build()?.alias(AFTER),
        ];
        let columns = EventColumns { time: events.time.clone() };
        let mut finishes = Vec::new();
        for (i, (_, t)) in request.traits.iter().enumerate() {
            let lowered = lower_trait(t, &columns, request.as_of)?;
            aggregates.push(lowered.aggregate.alias(trait_column(i)));
            finishes.push(lowered.finish);
        }
        // Keys are compared as text when the two files disagree on the key's type.
        let entity_key_type = request.entities.schema.get(&request.key);
        let event_key_type = match &events.input {
            EventsInput::Table(t) => t.schema.get(&events.key),
            EventsInput::Parquet { schema, .. } => schema.get(&events.key),
        };
        let same_key_type = entity_key_type == event_key_type && entity_key_type.is_some();
        let group_key =
            if same_key_type { ident(&events.key) } else { cast(ident(&events.key), DataType::Utf8) };
        let per_key = event_frame.aggregate(vec![group_key.alias(KEY)], aggregates)?.cache().await?;

        let totals = per_key
            .clone()
            .aggregate(vec![], vec![sum(col(ALL)), sum(col(USED)), sum(col(AFTER))])?
            .collect()
            .await?;
        let totals = totals.first().ok_or_else(|| Error::Internal("empty totals".into()))?;
        counts.read = u64_of(totals, 0)?;
        let all_used = u64_of(totals, 1)?;
        counts.ignored_after_as_of = u64_of(totals, 2)?;
        counts.ignored_no_time = counts.read - all_used - counts.ignored_after_as_of;

        if !same_key_type {
            let text_key = "__segmenta_text_key";
            frame = frame.with_column(text_key, cast(ident(&request.key), DataType::Utf8))?;
            frame = frame.join(per_key, JoinType::Left, &[text_key], &[KEY], None)?;
        } else {
            frame = frame.join(per_key, JoinType::Left, &[request.key.as_str()], &[KEY], None)?;
        }
        let matched = frame.clone().aggregate(vec![], vec![sum(col(USED))])?.collect().await?;
        counts.used = matched.first().map(|b| u64_of(b, 0)).transpose()?.unwrap_or(0);
        counts.ignored_unknown_entity = all_used - counts.used;

        for (i, ((name, _), finish)) in request.traits.iter().zip(finishes).enumerate() {
            select.push(finish(ident(trait_column(i)), request.as_of).alias(name));
        }
    }
    let mut frame = frame.select(select)?;

    // Segments, each after those it references.
    let mut computed: HashMap<String, String> = HashMap::new();
    for (i, (name, rule)) in request.segments.iter().enumerate() {
        let lookup = |segment: &str| computed.get(segment).cloned();
        let expr = membership(rule, &lookup)?;
        frame = frame.with_column(&segment_column(i), expr)?;
        computed.insert(name.clone(), segment_column(i));
    }
    let frame = frame.sort(vec![col(ENTITY_ID).sort(true, false)])?;
    let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
    let batches = frame.collect().await?;
    let all = concat_batches(&schema, &batches)?;

    // Traits table.
    let mut trait_fields = vec![Field::new(ENTITY_ID, DataType::Utf8, false)];
    let mut trait_arrays: Vec<ArrayRef> =
        vec![all.column_by_name(ENTITY_ID).cloned().ok_or_else(|| Error::Internal("no entity_id".into()))?];
    for (name, t) in &request.traits {
        let array = all
            .column_by_name(name)
            .cloned()
            .ok_or_else(|| Error::Internal(format!("no trait column {name}")))?;
        let array = arrow::compute::cast(&array, &arrow_type(t.output))?;
        trait_fields.push(Field::new(name, array.data_type().clone(), true));
        trait_arrays.push(array);
    }
    let traits = RecordBatch::try_new(Arc::new(Schema::new(trait_fields)), trait_arrays)?;

    // Memberships.
    let ids = all.column_by_name(ENTITY_ID).ok_or_else(|| Error::Internal("no entity_id".into()))?;
    let mut member_ids: Vec<ArrayRef> = Vec::new();
    let mut member_segments: Vec<String> = Vec::new();
    let mut segment_sizes = Vec::new();
    for (i, (name, _)) in request.segments.iter().enumerate() {
        let flags = all
            .column_by_name(&segment_column(i))
            .ok_or_else(|| Error::Internal(format!("no segment column for {name}")))?
            .as_boolean();
        let rows: UInt32Array = (0..flags.len() as u32)
            .filter(|&r| flags.value(r as usize) && flags.is_valid(r as usize))
            .collect();
        segment_sizes.push((name.clone(), rows.len() as u64));
        member_segments.extend(std::iter::repeat_n(name.clone(), rows.len()));
        member_ids.push(take(ids, &rows, None)?);
    }
    let id_refs: Vec<&dyn Array> = member_ids.iter().map(|a| a.as_ref()).collect();
    let member_ids = if id_refs.is_empty() {
        Arc::new(StringArray::from(Vec::<String>::new())) as ArrayRef
    } else {
        arrow::compute::concat(&id_refs)?
    };
    let memberships = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new(ENTITY_ID, DataType::Utf8, false),
            Field::new("segment", DataType::Utf8, false),
        ])),
        vec![member_ids, Arc::new(StringArray::from(member_segments))],
    )?;
    Ok(EvalOutput { traits, memberships, segment_sizes, entities: entity_count, events: counts })
}
