//! The evaluation pipeline of a run, in three stages.
//!
//! ```text
//! 1. per entity, bottom-up (DataFusion):
//!      events ──(filtered aggregates, GROUP BY key: one pass)──────────► event traits ─┐
//!      child entity rows ──(filtered aggregates, GROUP BY parent key)──► rollups ──────┤ LEFT JOIN
//!      the hierarchy ──(folded bottom-up, or pairs GROUP BY ancestor)──► rollups ──────┤ onto the
//!      parent entity (attributes and traits) ──────────────────────────► parent.* ─────┘ entity rows
//! 2. on the collected table (Rust): RFM quintile scores, static-list flags
//! 3. derived columns in dependency order (DataFusion): scores, schemes, segments
//! ```
//!
//! Stage 1 yields one table with a row per entity; stages 2 and 3 add columns to it. All traits
//! of one entity that come from events are computed in one aggregation over the events.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch, StringArray, UInt32Array,
};
use arrow::compute::{concat_batches, take};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::datasource::MemTable;
use datafusion::execution::context::{SessionConfig, SessionContext};
use datafusion::logical_expr::{Expr, JoinType, cast, col, ident, is_true, lit, when};
use datafusion::prelude::DataFrame;
use segmenta_core::ValueType;
use segmenta_core::hidden::{
    self, ANCESTOR, CHILD_KEY, DESCENDANT, ENTITY_ID as ID, KEY, PARENT_KEY, SELF_KEY, TEXT_KEY,
};
use segmenta_core::rfm::{Better, RfmSegment, scores};
use tracing::Instrument;

use crate::error::Owner;
use crate::hierarchy::{self, Tree};
use crate::ingest::arrow_type;
use crate::lower::{EventColumns, LoweredTrait, lower_points, lower_trait, membership};
use crate::request::{
    Aggregate, Derived, ENTITY_ID, EntityData, EvalOutput, EvalRequest, EventCounts, EventKeys, EventsInput,
    EventsRequest, RfmColumns, StaticListReport, TraitSource, TraitSpec, check_cancelled,
};
use crate::request::{PreviousMembers, ScanResult, ScannedEvents};
use crate::scan;
use crate::{Error, Result};

fn batch_frame(ctx: &SessionContext, batch: RecordBatch) -> Result<DataFrame> {
    let provider = MemTable::try_new(batch.schema(), vec![vec![batch]])?;
    Ok(ctx.read_table(Arc::new(provider))?)
}

/// Columns an aggregate reads, besides the key and time.
fn aggregate_columns(aggregate: &Aggregate, out: &mut Vec<String>) {
    match aggregate {
        Aggregate::Trait(t) => {
            out.extend(t.arg.iter().flat_map(|a| a.columns()).map(|c| c.column.clone()));
            for expr in t.condition.iter().chain(&t.filter) {
                out.extend(expr.references().0);
            }
        }
        Aggregate::Points(p) => {
            if let Some(condition) = &p.condition {
                out.extend(condition.references().0);
            }
        }
        Aggregate::Days(d) => {
            if let Some(condition) = &d.condition {
                out.extend(condition.references().0);
            }
            out.extend(d.amount.iter().map(|a| a.column.clone()));
        }
        Aggregate::Value(v) => out.extend(v.columns().into_iter().map(|c| c.column.clone())),
    }
}

fn lower_aggregate(
    aggregate: &Aggregate,
    rows: &EventColumns,
    as_of: i64,
    owner: &Owner,
) -> Result<LoweredTrait> {
    match aggregate {
        Aggregate::Trait(t) => lower_trait(t, rows, as_of, owner),
        Aggregate::Points(p) => lower_points(p, rows, as_of),
        Aggregate::Days(_) => Err(Error::Internal("purchase days outside the event scan".into())),
        Aggregate::Value(_) => Err(Error::Internal("a derived trait lowered as an aggregate".into())),
    }
}

/// The traits of `entity` that `request` computes from `source`.
pub(crate) fn specs<'r>(
    request: &'r EvalRequest,
    entity: &str,
    source: impl Fn(&TraitSource) -> bool,
) -> Vec<&'r TraitSpec> {
    request.traits.iter().filter(|t| t.entity == entity && source(&t.source)).collect()
}

/// How the events reach an entity's rows: the events column carrying its key, the map from
/// its values to rows, and the columns a scan for `specs` reads.
pub(crate) struct EventMapping {
    /// The events column holding the key.
    pub key_column: String,
    /// Key values to entity rows.
    pub key_map: scan::KeyMap,
    /// The columns the scan reads.
    pub needed: Vec<String>,
    /// The entity's rows.
    pub rows: usize,
}

pub(crate) fn event_mapping(
    request: &EvalRequest,
    entity: &EntityData,
    table: &RecordBatch,
    events: &EventsRequest,
    specs: &[&TraitSpec],
) -> Result<EventMapping> {
    let keys = column(table, &entity.key)?;
    let schema = events.input.schema();
    // Which events column carries this entity's key, and how its values map to rows.
    let (key_column, key_map) = if events.entity == entity.name {
        (events.key.as_str(), scan::key_map(keys)?)
    } else if schema.get(&entity.key).is_some() {
        (entity.key.as_str(), scan::key_map(keys)?)
    } else {
        let owner = request.entity_data(&events.entity)?;
        let link = owner.parent.as_ref().filter(|link| link.entity == entity.name).ok_or_else(|| {
            Error::Internal(format!(
                "events carry no key of `{}` and do not belong to a child of it",
                entity.name
            ))
        })?;
        let owners = concat_batches(&owner.table.schema.arrow_schema(), &owner.table.batches)?;
        let through = scan::key_map_through(
            column(&owners, &owner.key)?,
            column(&owners, &link.column)?,
            &scan::key_map(keys)?,
        )?;
        (events.key.as_str(), through)
    };
    let mut needed = vec![key_column.to_string(), events.time.clone()];
    for spec in specs {
        aggregate_columns(&spec.aggregate, &mut needed);
    }
    let mut seen = HashSet::new();
    needed.retain(|c| seen.insert(c.clone()));
    Ok(EventMapping { key_column: key_column.to_string(), key_map, needed, rows: table.num_rows() })
}

/// What a scan of `specs` over the events computes for an entity mapped by `mapping`.
pub(crate) fn scan_spec<'a>(
    request: &'a EvalRequest,
    mapping: &'a EventMapping,
    events: &'a EventsRequest,
    specs: &[&'a TraitSpec],
    instants: &'a [i64],
) -> scan::ScanSpec<'a> {
    scan::ScanSpec {
        key: &mapping.key_column,
        time: &events.time,
        aggregates: specs.iter().map(|s| &s.aggregate).collect(),
        names: specs.iter().map(|s| s.name.as_str()).collect(),
        instants,
        entities: mapping.rows,
        threads: request.threads,
        cancel: &request.cancel,
        pool: request.pool.as_deref(),
    }
}

/// Where a scan reads the events of a request.
pub(crate) fn events_source(events: &EventsRequest) -> scan::Source<'_> {
    match &events.input {
        EventsInput::Table(t) => scan::Source::Batches(&t.batches),
        EventsInput::Parquet { path, schema, appended } => scan::Source::Parquet { path, schema, appended },
    }
}

/// Every event trait of `entity` in one scan of the events, at each of `instants`, aligned
/// with `table`'s rows.
fn event_traits(
    request: &EvalRequest,
    entity: &EntityData,
    table: &RecordBatch,
    events: &EventsRequest,
    specs: &[&TraitSpec],
    instants: &[i64],
) -> Result<Vec<ScanResult>> {
    let mapping = event_mapping(request, entity, table, events, specs)?;
    let spec = scan_spec(request, &mapping, events, specs, instants);
    let _span = tracing::info_span!("scan", entity = %entity.name, aggregates = specs.len()).entered();
    scan::scan(&events_source(events), &mapping.key_map, &spec, &mapping.needed)
}

/// Scans the events once for every instant of `instants` (ascending): per instant, what an
/// evaluation of `request` as of it reads from the events, computed exactly as that
/// evaluation would (each trait's rows folded in the same order).
pub fn scan_events(request: &EvalRequest, instants: &[i64]) -> Result<Vec<Arc<ScannedEvents>>> {
    let mut at: Vec<ScannedEvents> =
        instants.iter().map(|&as_of| ScannedEvents { as_of, entities: HashMap::new() }).collect();
    let Some(events) = &request.events else {
        return Ok(at.into_iter().map(Arc::new).collect());
    };
    for (entity, event_specs) in scanned_entities(request, events) {
        check_cancelled(&request.cancel)?;
        let table = entity_rows(entity)?;
        let results = event_traits(request, entity, &table, events, &event_specs, instants)?;
        for (scanned, result) in at.iter_mut().zip(results) {
            scanned.entities.insert(entity.name.clone(), result);
        }
    }
    Ok(at.into_iter().map(Arc::new).collect())
}

/// The entities whose events are scanned (those with event traits, and the events' own entity,
/// whose accounting a run reports), each with its event traits.
pub(crate) fn scanned_entities<'r>(
    request: &'r EvalRequest,
    events: &EventsRequest,
) -> Vec<(&'r EntityData, Vec<&'r TraitSpec>)> {
    request
        .entities
        .iter()
        .map(|entity| (entity, specs(request, &entity.name, |s| *s == TraitSource::Events)))
        .filter(|(entity, specs)| !specs.is_empty() || events.entity == entity.name)
        .collect()
}

/// An entity's rows in one batch.
pub(crate) fn entity_rows(entity: &EntityData) -> Result<RecordBatch> {
    Ok(concat_batches(&entity.table.schema.arrow_schema(), &entity.table.batches)?)
}

fn session(threads: usize) -> SessionContext {
    // No round-robin repartitioning: the entity table, sorted once in stage 1, keeps its order
    // through the projections of stage 3 (spread over partitions, it came out in their order,
    // different from run to run), so the outputs are in entity order with no second sort.
    let config = SessionConfig::new()
        .with_target_partitions(threads.max(1))
        .with_batch_size(8192)
        .with_round_robin_repartition(false);
    SessionContext::new_with_config(config)
}

/// Left-joins `per_key` (keyed by [`KEY`]) onto `frame` (keyed by `key`). Keys are compared as
/// text when the two sides disagree on the key's type.
fn join_on_key(
    frame: DataFrame,
    key: &str,
    key_type: Option<ValueType>,
    per_key: DataFrame,
    per_key_type: Option<ValueType>,
) -> Result<DataFrame> {
    if key_type.is_some() && key_type == per_key_type {
        return Ok(frame.join(per_key, JoinType::Left, &[key], &[KEY], None)?);
    }
    let per_key = per_key.with_column(KEY, cast(col(KEY), DataType::Utf8))?;
    Ok(frame.with_column(TEXT_KEY, cast(ident(key), DataType::Utf8))?.join(
        per_key,
        JoinType::Left,
        &[TEXT_KEY],
        &[KEY],
        None,
    )?)
}

type FrameFuture<'s> = Pin<Box<dyn Future<Output = Result<(DataFrame, Vec<String>)>> + 's>>;

struct Evaluator<'r> {
    ctx: SessionContext,
    request: &'r EvalRequest,
    counts: Option<(EventCounts, EventKeys)>,
    next_column: usize,
    carry: Option<Carry<'r>>,
}

/// An evaluation of some rows only, kept exact by the evaluation before it
/// (`crate::evaluate_rows`): values that depend on rows the request does not hold are taken
/// from `previous` where they cannot have changed, and are an [`Error::EveryRow`] where they
/// may have.
#[derive(Clone, Copy)]
pub(crate) struct Carry<'r> {
    /// The evaluation table before ([`EvalOutput::evaluated`]): every row, sorted by id.
    pub previous: &'r RecordBatch,
    /// The rows of `previous` the request's entity holds, ascending (so in id order), aligned
    /// with the rows of its table.
    pub rows: &'r [u32],
}

impl Carry<'_> {
    /// `previous`'s column `name` at the rows held.
    fn taken(&self, name: &str) -> Result<ArrayRef> {
        let indices = UInt32Array::from(self.rows.to_vec());
        Ok(take(column(self.previous, name)?.as_ref(), &indices, None)?)
    }

    /// The columns `outputs` as they were, when none of the columns `reads` changed for any row
    /// of `table` (the held rows, in id order): they depend on them alone.
    fn unchanged(
        &self,
        table: &RecordBatch,
        reads: &[String],
        outputs: &[String],
    ) -> Result<Option<Vec<(String, ArrayRef)>>> {
        for name in reads {
            if column(table, name)?.as_ref() != self.taken(name)?.as_ref() {
                return Ok(None);
            }
        }
        outputs.iter().map(|name| Ok((name.clone(), self.taken(name)?))).collect::<Result<Vec<_>>>().map(Some)
    }
}

impl<'r> Evaluator<'r> {
    fn column_name(&mut self) -> String {
        self.next_column += 1;
        hidden::aggregate_column(self.next_column)
    }

    /// Every event trait of `entity` in one scan of the events, aligned with `table`'s rows:
    /// the traits as of the request's instant, or those scanned before for it.
    fn event_traits(
        &self,
        entity: &EntityData,
        table: &RecordBatch,
        events: &EventsRequest,
        specs: &[&'r TraitSpec],
    ) -> Result<ScanResult> {
        let request = self.request;
        if let Some(scanned) = &request.scanned {
            return scanned.get(&entity.name, request.as_of);
        }
        event_traits(request, entity, table, events, specs, &[request.as_of])?
            .pop()
            .ok_or_else(|| Error::Internal("a scan without its instant".into()))
    }

    fn specs(&self, entity: &str, source: impl Fn(&TraitSource) -> bool) -> Vec<&'r TraitSpec> {
        specs(self.request, entity, source)
    }

    /// Lowers `specs` over `rows`: the named aggregates and the finishing projections.
    fn lower_all(&mut self, specs: &[&TraitSpec], rows: &EventColumns) -> Result<(Vec<Expr>, Vec<Expr>)> {
        let mut aggregates = Vec::with_capacity(specs.len());
        let mut finishes = Vec::with_capacity(specs.len());
        for spec in specs {
            let lowered =
                lower_aggregate(&spec.aggregate, rows, self.request.as_of, &Owner::of_trait(&spec.name))?;
            let column = self.column_name();
            aggregates.push(lowered.aggregate.alias(&column));
            finishes.push((lowered.finish)(ident(&column), self.request.as_of).alias(&spec.name));
        }
        Ok((aggregates, finishes))
    }

    /// The entity's rows with its attributes and traits (and, with `with_parent`, the parent
    /// columns rules read); returns the frame and the names of its columns.
    fn entity_frame(&mut self, name: &'r str, with_parent: bool) -> FrameFuture<'_> {
        Box::pin(async move {
            let request = self.request;
            let entity = request.entity_data(name)?;
            let schema = entity.table.schema.arrow_schema();
            let mut table = concat_batches(&schema, &entity.table.batches)?;
            let mut visible: Vec<String> = entity.table.schema.names().map(String::from).collect();
            let key_type = entity.table.schema.get(&entity.key);
            let keys = column(&table, &entity.key)?.clone();
            let carry = self.carry.filter(|_| name == request.entity);

            // Traits from events: one scan.
            let event_specs = self.specs(name, |s| *s == TraitSource::Events);
            let accounting =
                request.events.as_ref().is_some_and(|e| e.entity == name) && self.counts.is_none();
            if !event_specs.is_empty() || accounting {
                let events = request
                    .events
                    .as_ref()
                    .ok_or_else(|| Error::Internal("event traits without events".into()))?;
                let result = self.event_traits(entity, &table, events, &event_specs)?;
                if accounting {
                    self.counts = Some((result.counts, result.keys.clone()));
                }
                let names = event_specs.iter().map(|s| s.name.clone());
                table = add_columns(&table, names.clone().zip(result.columns).collect())?;
                visible.extend(names);
            }
            let mut frame = batch_frame(&self.ctx, table)?;

            // Rollups over each child entity: one aggregation per child.
            let mut children: Vec<&str> = Vec::new();
            for spec in &request.traits {
                if let (true, TraitSource::Rollup { child }) = (spec.entity == name, &spec.source)
                    && !children.contains(&child.as_str())
                {
                    children.push(child);
                }
            }
            for child in children {
                let specs = self.specs(name, |s| matches!(s, TraitSource::Rollup { child: c } if c == child));
                let child_data = request.entity_data(child)?;
                let link = child_data
                    .parent
                    .as_ref()
                    .ok_or_else(|| Error::Internal(format!("rollup over `{child}`, which has no parent")))?;
                let (child_frame, _) = self.entity_frame(child, false).await?;
                let (aggregates, finishes) = self.lower_all(&specs, &EventColumns { time: None })?;
                let per_key = child_frame.aggregate(vec![ident(&link.column).alias(KEY)], aggregates)?;
                let per_key_type = child_data.table.schema.get(&link.column);
                frame = join_on_key(frame, &entity.key, key_type, per_key, per_key_type)?;
                frame = select_with(frame, &mut visible, finishes)?;
            }

            // Rollups over the hierarchy, children then descendants: the aggregates that
            // decompose folded bottom-up over the tree (`crate::hierarchy`), the others
            // aggregated over (ancestor, descendant) pairs; columns in the order of the traits.
            let hierarchy_specs = self.specs(name, |s| matches!(s, TraitSource::Hierarchy { .. }));
            if let (Some(carry), false) = (carry, hierarchy_specs.is_empty()) {
                frame = carried_hierarchy(
                    &self.ctx,
                    frame,
                    &mut visible,
                    entity,
                    &keys,
                    &hierarchy_specs,
                    carry,
                )?;
            } else if !hierarchy_specs.is_empty() {
                let column = entity.hierarchy.as_deref().ok_or_else(|| {
                    Error::Internal(format!("hierarchy rollup on `{name}`, which has no hierarchy"))
                })?;
                let tree = Tree::new(entity, column)?;
                for descendants in [false, true] {
                    let specs = self.specs(name, |s| *s == TraitSource::Hierarchy { descendants });
                    if specs.is_empty() {
                        continue;
                    }
                    let first = visible.len();
                    let (folded, paired): (Vec<&TraitSpec>, Vec<&TraitSpec>) =
                        specs.iter().copied().partition(|s| hierarchy::foldable(&s.aggregate));
                    if !folded.is_empty() {
                        let rows = collect_one(frame).await?;
                        let rows = match tree.alignment(&rows, &entity.key)? {
                            Some(order) => arrow::compute::take_record_batch(&rows, &order)?,
                            None => rows,
                        };
                        let mut columns = Vec::with_capacity(folded.len());
                        for spec in &folded {
                            let folded = hierarchy::rollups(&tree, &rows, &[&spec.aggregate], descendants)
                                .map_err(|e| e.owned(&Owner::of_trait(&spec.name)))?;
                            columns.extend(folded);
                        }
                        let names: Vec<String> = folded.iter().map(|s| s.name.clone()).collect();
                        visible.extend(names.iter().cloned());
                        frame = batch_frame(
                            &self.ctx,
                            add_columns(&rows, names.into_iter().zip(columns).collect())?,
                        )?;
                    }
                    if !paired.is_empty() {
                        // The rows are read twice (as members and as the table joined to), so
                        // they are materialised once.
                        frame = frame.cache().await?;
                        let pairs = batch_frame(&self.ctx, tree.pairs(descendants)?)?;
                        let mut rows: Vec<Expr> = visible.iter().map(ident).collect();
                        rows.push(cast(ident(&entity.key), DataType::Utf8).alias(SELF_KEY));
                        let members = frame.clone().select(rows)?;
                        let joined =
                            pairs.join(members, JoinType::Inner, &[DESCENDANT], &[SELF_KEY], None)?;
                        let (aggregates, finishes) = self.lower_all(&paired, &EventColumns { time: None })?;
                        let per_key = joined.aggregate(vec![col(ANCESTOR).alias(KEY)], aggregates)?;
                        frame = join_on_key(frame, &entity.key, key_type, per_key, Some(ValueType::String))?;
                        frame = select_with(frame, &mut visible, finishes)?;
                    }
                    let in_order: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
                    if visible[first..] != in_order[..] {
                        visible.truncate(first);
                        visible.extend(in_order);
                        frame = frame.select(visible.iter().map(ident).collect::<Vec<_>>())?;
                    }
                }
            }

            // Derived traits, each after those it reads.
            for spec in self.specs(name, |s| *s == TraitSource::Derived) {
                let Aggregate::Value(value) = &spec.aggregate else {
                    return Err(Error::Internal(format!("derived trait `{}` without a value", spec.name)));
                };
                let expr = crate::lower::lower_value(value, &Owner::new("trait", &spec.name));
                frame = frame.with_column(&spec.name, expr)?;
                visible.push(spec.name.clone());
            }

            // Parent attributes and traits, as the columns rules read.
            if let (true, Some(link)) = (with_parent, &entity.parent)
                && !request.parent_columns.is_empty()
            {
                if carry.is_some() {
                    // The parent's traits may roll up rows the request does not hold.
                    return Err(Error::EveryRow("rules read the parent entity's columns".into()));
                }
                let parent = request.entity_data(&link.entity)?;
                let (parent_frame, _) = self.entity_frame(&link.entity, false).await?;
                let mut exprs = vec![cast(ident(&parent.key), DataType::Utf8).alias(PARENT_KEY)];
                for (source, column) in &request.parent_columns {
                    exprs.push(ident(source).alias(column));
                }
                let parent_frame = parent_frame.select(exprs)?;
                frame = frame.with_column(CHILD_KEY, cast(ident(&link.column), DataType::Utf8))?.join(
                    parent_frame,
                    JoinType::Left,
                    &[CHILD_KEY],
                    &[PARENT_KEY],
                    None,
                )?;
                let parent_columns = request.parent_columns.iter().map(|(_, column)| ident(column)).collect();
                frame = select_with(frame, &mut visible, parent_columns)?;
            }
            Ok((frame, visible))
        })
    }
}

/// Projects `frame` onto the `visible` columns plus `added` (named expressions), and records
/// the added names as visible.
fn select_with(frame: DataFrame, visible: &mut Vec<String>, added: Vec<Expr>) -> Result<DataFrame> {
    let mut exprs: Vec<Expr> = visible.iter().map(ident).collect();
    for expr in &added {
        visible.push(expr.schema_name().to_string());
    }
    exprs.extend(added);
    Ok(frame.select(exprs)?)
}

/// The hierarchy rollups of the rows a [`Carry`] holds, as they were: exact when they read
/// the entity's attributes only (which events do not change); an [`Error::EveryRow`] when
/// they read a trait (a change below a row would change it).
fn carried_hierarchy(
    ctx: &SessionContext,
    frame: DataFrame,
    visible: &mut Vec<String>,
    entity: &EntityData,
    keys: &ArrayRef,
    specs: &[&TraitSpec],
    carry: Carry<'_>,
) -> Result<DataFrame> {
    let attributes: HashSet<&str> = entity.table.schema.names().collect();
    for spec in specs {
        let mut read = Vec::new();
        aggregate_columns(&spec.aggregate, &mut read);
        if let Some(name) = read.iter().find(|c| !attributes.contains(c.as_str())) {
            return Err(Error::EveryRow(format!("the hierarchy rollup `{}` reads `{name}`", spec.name)));
        }
    }
    // Columns in the order a full evaluation adds them: children, then descendants.
    let ordered: Vec<&TraitSpec> = [false, true]
        .into_iter()
        .flat_map(|d| {
            specs.iter().copied().filter(move |s| s.source == TraitSource::Hierarchy { descendants: d })
        })
        .collect();
    let mut fields = vec![Field::new(KEY, keys.data_type().clone(), true)];
    let mut arrays = vec![keys.clone()];
    for spec in &ordered {
        let array = carry.taken(&spec.name)?;
        fields.push(Field::new(&spec.name, array.data_type().clone(), true));
        arrays.push(array);
    }
    let per_key = batch_frame(ctx, RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)?)?;
    let key_type = entity.table.schema.get(&entity.key);
    let frame = join_on_key(frame, &entity.key, key_type, per_key, key_type)?;
    select_with(frame, visible, ordered.iter().map(|s| ident(&s.name)).collect())
}

async fn collect_one(frame: DataFrame) -> Result<RecordBatch> {
    let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
    let batches = frame.collect().await?;
    Ok(concat_batches(&schema, &batches)?)
}

fn column<'b>(batch: &'b RecordBatch, name: &str) -> Result<&'b ArrayRef> {
    batch.column_by_name(name).ok_or_else(|| Error::Internal(format!("no column `{name}`")))
}

fn add_columns(batch: &RecordBatch, columns: Vec<(String, ArrayRef)>) -> Result<RecordBatch> {
    let mut fields: Vec<Field> = batch.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    let mut arrays: Vec<ArrayRef> = batch.columns().to_vec();
    for (name, array) in columns {
        fields.push(Field::new(name, array.data_type().clone(), true));
        arrays.push(array);
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)?)
}

/// RFM scores from the raw values among entities with a purchase (quintiles or fixed cut
/// points per dimension), the score `100 r + 10 f + m` and the named segment.
fn rfm_columns(batch: &RecordBatch, rfm: &RfmColumns) -> Result<Vec<(String, ArrayRef)>> {
    let as_f64 = |name: &str| -> Result<Vec<Option<f64>>> {
        let array = arrow::compute::cast(column(batch, name)?, &DataType::Float64)?;
        Ok(array.as_primitive::<arrow::datatypes::Float64Type>().iter().collect())
    };
    // The recency is present exactly when there is a purchase (the frequency may count repeat
    // days, 0 for a one-time buyer).
    let recency = as_f64(&rfm.recency)?;
    let bought: Vec<bool> = recency.iter().map(Option::is_some).collect();
    let only_buyers = |values: Vec<Option<f64>>| -> Vec<Option<f64>> {
        values.into_iter().zip(&bought).map(|(v, b)| v.filter(|_| *b)).collect()
    };
    let r = scores(&recency, Better::Lower, &rfm.recency_scoring);
    let f = scores(&only_buyers(as_f64(&rfm.frequency)?), Better::Higher, &rfm.frequency_scoring);
    let m = scores(&only_buyers(as_f64(&rfm.monetary)?), Better::Higher, &rfm.monetary_scoring);
    let mut score = Vec::with_capacity(r.len());
    let mut segment = Vec::with_capacity(r.len());
    for i in 0..r.len() {
        match (r[i], f[i], m[i]) {
            (Some(r), Some(f), Some(m)) => {
                score.push(Some(i64::from(r) * 100 + i64::from(f) * 10 + i64::from(m)));
                segment.push(RfmSegment::from_scores(r, f, m).label());
            }
            _ => {
                score.push(None);
                segment.push(RfmSegment::NoPurchases.label());
            }
        }
    }
    let ints = |scores: Vec<Option<u8>>| -> ArrayRef {
        Arc::new(scores.into_iter().map(|s| s.map(i64::from)).collect::<Int64Array>())
    };
    Ok(vec![
        ("rfm_r".into(), ints(r)),
        ("rfm_f".into(), ints(f)),
        ("rfm_m".into(), ints(m)),
        ("rfm_score".into(), Arc::new(Int64Array::from(score))),
        ("rfm_segment".into(), Arc::new(StringArray::from(segment))),
    ])
}

fn static_column(ids_column: &StringArray, name: &str, ids: &[String]) -> (ArrayRef, StaticListReport) {
    let list: HashSet<&str> = ids.iter().map(String::as_str).collect();
    let members: BooleanArray =
        ids_column.iter().map(|id| Some(id.is_some_and(|id| list.contains(id)))).collect();
    let known: HashSet<&str> = ids_column.iter().flatten().collect();
    let mut unknown: Vec<&str> = list.iter().copied().filter(|id| !known.contains(id)).collect();
    unknown.sort_unstable();
    let report = StaticListReport {
        name: name.to_string(),
        ids: list.len() as u64,
        unknown: unknown.len() as u64,
        unknown_sample: unknown.iter().take(10).map(|s| s.to_string()).collect(),
    };
    (Arc::new(members), report)
}

/// `x` capped at `cap`: `CASE WHEN x > cap THEN cap ELSE x END`.
fn at_most(x: Expr, cap: f64) -> Result<Expr> {
    Ok(when(x.clone().gt(lit(cap)), lit(cap)).otherwise(x)?)
}

fn at_least(x: Expr, floor: f64) -> Result<Expr> {
    Ok(when(x.clone().lt(lit(floor)), lit(floor)).otherwise(x)?)
}

/// Adds the derived columns to the entity table, in order; returns the frame and the column of
/// each segment.
fn derive(mut frame: DataFrame, derived: &[Derived]) -> Result<(DataFrame, HashMap<String, String>)> {
    let mut segments: HashMap<String, String> = HashMap::new();
    let (mut statics, mut movements) = (0, 0);
    for (i, item) in derived.iter().enumerate() {
        let lookup = |segment: &str| segments.get(segment).cloned();
        match item {
            Derived::Segment { name, rule, parent } => {
                let mut expr = membership(rule, &lookup, &Owner::new("segment", name))?;
                if let Some(parent) = parent {
                    let parent = lookup(parent)
                        .ok_or_else(|| Error::Internal(format!("parent segment `{parent}` not computed")))?;
                    expr = crate::lower::and(ident(parent), expr, rule.computes());
                }
                frame = frame.with_column(&hidden::segment_column(i), expr)?;
                segments.insert(name.clone(), hidden::segment_column(i));
            }
            Derived::Static { name, .. } => {
                segments.insert(name.clone(), hidden::static_column(statics));
                statics += 1;
            }
            Derived::Movement { name, from, to, previous } => {
                let now = |segment: &str| {
                    lookup(segment)
                        .map(|c| is_true(ident(c)))
                        .ok_or_else(|| Error::Internal(format!("segment `{segment}` not computed")))
                };
                let was_from = ident(hidden::movement_column(movements, 0));
                let was_to = ident(hidden::movement_column(movements, 1));
                movements += 1;
                let expr = match (from, to) {
                    _ if previous.is_none() => lit(false),
                    (Some(_), Some(to)) => was_from.and(!was_to).and(now(to)?),
                    (None, Some(to)) => (!was_to).and(now(to)?),
                    (Some(from), None) => was_from.and(!now(from)?),
                    (None, None) => lit(false),
                };
                frame = frame.with_column(&hidden::segment_column(i), expr)?;
                segments.insert(name.clone(), hidden::segment_column(i));
            }
            Derived::Scheme { name, tiers, otherwise } => {
                // Every tier's test on every row (a CASE tests a tier only where the earlier ones
                // failed), so that a value out of range is an error wherever it is.
                let owner = Owner::new("scheme", name);
                let tests: Vec<Expr> =
                    tiers.iter().map(|(_, rule)| membership(rule, &lookup, &owner)).collect::<Result<_>>()?;
                let names = tiers.iter().map(|(tier, _)| tier.clone()).collect();
                let expr = if tests.is_empty() {
                    lit(otherwise.as_str())
                } else {
                    crate::arith::first_tier(tests, names, otherwise)
                };
                frame = frame.with_column(name, expr)?;
            }
            Derived::Equals { name, column, value } => {
                frame = frame.with_column(
                    &hidden::segment_column(i),
                    is_true(ident(column).eq(lit(value.as_str()))),
                )?;
                segments.insert(name.clone(), hidden::segment_column(i));
            }
            Derived::Score { name, rules, events, min, max } => {
                let mut total = lit(0.0f64);
                for (rule, points) in rules {
                    let test = membership(rule, &lookup, &Owner::new("score", name))?;
                    total = total + when(test, lit(*points)).otherwise(lit(0.0f64))?;
                }
                for (column, cap) in events {
                    let points =
                        datafusion::functions::core::expr_fn::coalesce(vec![ident(column), lit(0.0f64)]);
                    total = total + if let Some(cap) = cap { at_most(points, *cap)? } else { points };
                }
                // Past the largest float the total is an error naming the score, not `inf`.
                let owner = Owner::new("score", name);
                let sum = segmenta_rules::ast::Func::Add;
                total = crate::arith::call(sum, vec![total, lit(0.0f64)], ValueType::Float, "points", &owner);
                if let Some(min) = min {
                    total = at_least(total, *min)?;
                }
                if let Some(max) = max {
                    total = at_most(total, *max)?;
                }
                frame = frame.with_column(name, total)?;
            }
        }
    }
    Ok((frame, segments))
}

/// Evaluates traits and segments.
pub async fn evaluate(request: &EvalRequest) -> Result<EvalOutput> {
    let entity = request.entity_data(&request.entity)?;
    let entities = entity.table.batches.iter().map(|b| b.num_rows() as u64).sum();
    let computed = compute(request, None).await?;
    outputs(request, computed.all, computed.counts, computed.static_lists, entities, true)
}

/// What an evaluation computed before its outputs.
pub(crate) struct Computed {
    /// Every column, sorted by id ([`EvalOutput::evaluated`]).
    pub all: RecordBatch,
    /// The event accounting.
    pub counts: (EventCounts, EventKeys),
    /// The static lists.
    pub static_lists: Vec<StaticListReport>,
}

/// The three stages of an evaluation (of some rows only with `carry`).
pub(crate) async fn compute(request: &EvalRequest, carry: Option<Carry<'_>>) -> Result<Computed> {
    check_cancelled(&request.cancel)?;
    let mut evaluator =
        Evaluator { ctx: session(request.threads), request, counts: None, next_column: 0, carry };
    let entity = request.entity_data(&request.entity)?;

    // Stage 1: the entity table.
    let stage = tracing::info_span!("entity_table", entity = %request.entity, traits = request.traits.len());
    let (mut table, counts) = async {
        let (frame, visible) = evaluator.entity_frame(&request.entity, true).await?;
        if let Some(events) = request.events.as_ref().filter(|_| evaluator.counts.is_none()) {
            // The events belong to an entity no trait of this run reads: count them anyway.
            evaluator.entity_frame(&events.entity, false).await?;
        }
        let counts = evaluator.counts.take().unwrap_or_default();
        let mut exprs = vec![cast(ident(&entity.key), DataType::Utf8).alias(ID)];
        exprs.extend(visible.iter().map(ident));
        let frame = frame.select(exprs)?.sort(vec![col(ID).sort(true, false)])?;
        Ok::<_, Error>((collect_one(frame).await?, counts))
    }
    .instrument(stage)
    .await?;
    check_cancelled(&request.cancel)?;

    // Stage 2: RFM, model columns and static lists.
    let stage = tracing::info_span!("model_columns", extensions = request.extensions.len()).entered();
    let mut added = Vec::new();
    if let Some(rfm) = &request.rfm {
        added.extend(match carry {
            None => rfm_columns(&table, rfm)?,
            Some(carry) => {
                // Quintiles rank every entity: kept only when no held row's values moved.
                let reads = [rfm.recency.clone(), rfm.frequency.clone(), rfm.monetary.clone()];
                let outputs = RFM_COLUMNS.map(String::from);
                carry
                    .unchanged(&table, &reads, &outputs)?
                    .ok_or_else(|| Error::EveryRow("the RFM values of an entity changed".into()))?
            }
        });
    }
    if !added.is_empty() {
        table = add_columns(&table, std::mem::take(&mut added))?;
    }
    for extension in &request.extensions {
        check_cancelled(&request.cancel)?;
        let columns = match carry {
            None => extension.columns(&table).map_err(Error::Extension)?,
            Some(carry) => carried_extension(extension.as_ref(), &table, carry)?,
        };
        table = add_columns(&table, columns)?;
    }
    let ids = column(&table, ID)?.as_string::<i32>().clone();
    let mut static_lists = Vec::new();
    for item in &request.derived {
        if let Derived::Static { name, ids: list } = item {
            let (array, report) = static_column(&ids, name, list);
            added.push((hidden::static_column(static_lists.len()), array));
            static_lists.push(report);
        }
    }
    let mut movements = 0;
    for item in &request.derived {
        if let Derived::Movement { previous, .. } = item {
            let empty = PreviousMembers::default();
            let previous = previous.as_ref().unwrap_or(&empty);
            for (end, list) in [&previous.from, &previous.to].into_iter().enumerate() {
                let (array, _) = static_column(&ids, "", list);
                added.push((hidden::movement_column(movements, end), array));
            }
            movements += 1;
        }
    }
    table = add_columns(&table, added)?;
    drop(stage);
    check_cancelled(&request.cancel)?;

    // Stage 3: derived columns.
    let stage = tracing::info_span!("derived_columns", derived = request.derived.len());
    let all = async {
        let (frame, _) = derive(batch_frame(&evaluator.ctx, table)?, &request.derived)?;
        collect_one(frame).await
    }
    .instrument(stage)
    .await?;
    check_cancelled(&request.cancel)?;
    Ok(Computed { all, counts, static_lists })
}

/// The RFM columns [`rfm_columns`] adds.
const RFM_COLUMNS: [&str; 5] = ["rfm_r", "rfm_f", "rfm_m", "rfm_score", "rfm_segment"];

/// A model's columns for the rows a [`Carry`] holds: as they were when none of its inputs
/// changed, scored again row by row when the model allows it, else an [`Error::EveryRow`].
fn carried_extension(
    extension: &dyn crate::request::TableExtension,
    table: &RecordBatch,
    carry: Carry<'_>,
) -> Result<Vec<(String, ArrayRef)>> {
    let (reads, outputs) =
        extension.names().ok_or_else(|| Error::EveryRow("a model that does not name its columns".into()))?;
    if let Some(columns) = carry.unchanged(table, &reads, &outputs)? {
        return Ok(columns);
    }
    match extension.row_columns(table) {
        Some(columns) => columns.map_err(Error::Extension),
        None => Err(Error::EveryRow("the inputs of a model fitted on every entity changed".into())),
    }
}

/// The hidden column of each segment's flag in the evaluation table, as [`derive`] names it.
fn segment_columns(derived: &[Derived]) -> HashMap<String, String> {
    let mut segments = HashMap::new();
    let mut statics = 0;
    for (i, item) in derived.iter().enumerate() {
        match item {
            Derived::Segment { name, .. } | Derived::Movement { name, .. } | Derived::Equals { name, .. } => {
                segments.insert(name.clone(), hidden::segment_column(i));
            }
            Derived::Static { name, .. } => {
                segments.insert(name.clone(), hidden::static_column(statics));
                statics += 1;
            }
            Derived::Scheme { .. } | Derived::Score { .. } => {}
        }
    }
    segments
}

/// The outputs of an evaluation from its table `all`: the traits, the memberships (left empty
/// without `memberships`), the sizes and the preview table.
pub(crate) fn outputs(
    request: &EvalRequest,
    all: RecordBatch,
    counts: (EventCounts, EventKeys),
    static_lists: Vec<StaticListReport>,
    entities: u64,
    memberships: bool,
) -> Result<EvalOutput> {
    let _stage = tracing::info_span!("outputs", segments = request.segments.len()).entered();
    let segment_columns = segment_columns(&request.derived);
    // Traits table.
    let ids = column(&all, ID)?.clone();
    let mut trait_fields = vec![Field::new(ENTITY_ID, DataType::Utf8, false)];
    let mut trait_arrays: Vec<ArrayRef> = vec![ids.clone()];
    for (name, ty) in &request.outputs {
        let array = arrow::compute::cast(column(&all, name)?, &arrow_type(*ty))?;
        trait_fields.push(Field::new(name, array.data_type().clone(), true));
        trait_arrays.push(array);
    }
    let traits = RecordBatch::try_new(Arc::new(Schema::new(trait_fields)), trait_arrays)?;

    // Memberships.
    let mut member_ids: Vec<ArrayRef> = Vec::new();
    // The segment column repeats a few names millions of times: built without a String per row.
    let mut member_segments = arrow::array::StringBuilder::new();
    let mut segment_sizes = Vec::new();
    for name in &request.segments {
        let column_name = segment_columns
            .get(name)
            .ok_or_else(|| Error::Internal(format!("segment `{name}` was not computed")))?;
        let flags = column(&all, column_name)?.as_boolean();
        if !memberships {
            segment_sizes.push((name.clone(), flags.true_count() as u64));
            continue;
        }
        let rows: UInt32Array = (0..flags.len() as u32)
            .filter(|&r| flags.is_valid(r as usize) && flags.value(r as usize))
            .collect();
        segment_sizes.push((name.clone(), rows.len() as u64));
        for _ in 0..rows.len() {
            member_segments.append_value(name);
        }
        member_ids.push(take(&ids, &rows, None)?);
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
        vec![member_ids, Arc::new(member_segments.finish())],
    )?;

    // The preview table: what rules read, and the segments.
    let flags: HashMap<&str, &str> = segment_columns.iter().map(|(s, c)| (c.as_str(), s.as_str())).collect();
    let mut fields = vec![Field::new(ENTITY_ID, DataType::Utf8, false)];
    let mut arrays: Vec<ArrayRef> = vec![ids];
    for (field, array) in all.schema().fields().iter().zip(all.columns()) {
        let name = field.name().as_str();
        let kept = if let Some(segment) = flags.get(name) {
            Some(hidden::segment_flag(segment))
        } else if name == ID || (hidden::is_reserved(name) && !hidden::is_parent_column(name)) {
            None
        } else {
            Some(name.to_string())
        };
        if let Some(kept) = kept {
            fields.push(Field::new(kept, field.data_type().clone(), true));
            arrays.push(array.clone());
        }
    }
    let table = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)?;
    Ok(EvalOutput {
        traits,
        memberships,
        segment_sizes,
        entities,
        events: counts.0,
        event_keys: counts.1,
        static_lists,
        table,
        evaluated: all,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_lists_report_unknown_ids() {
        let ids = StringArray::from(vec!["a", "b", "c"]);
        let list = vec!["c".to_string(), "x".into(), "a".into(), "y".into(), "a".into()];
        let (array, report) = static_column(&ids, "vip", &list);
        let flags: Vec<bool> = array.as_boolean().iter().map(|v| v.unwrap_or(false)).collect();
        assert_eq!(flags, [true, false, true]);
        assert_eq!(report.ids, 4);
        assert_eq!(report.unknown, 2);
        assert_eq!(report.unknown_sample, ["x", "y"]);
    }
}
