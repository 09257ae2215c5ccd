//! A live scan: the event scan of a request at one instant, with the state of every aggregate
//! kept after it finishes, so that events arriving later are folded into that state instead of
//! reading all the events again (`segmenta serve`'s memberships that follow events).
//!
//! Folding a batch scans only the batch (with the same plan: windows, conditions, arguments)
//! into fresh states and merges them into the kept ones, as a scan merges its workers: the
//! result is what a scan of the events followed by the batch computes. Counts, integer sums,
//! extremes, first and last times, distinct counts, shares, percentiles and purchase days are
//! exact whatever the order; float sums and averages add in another order than a full scan's
//! (as they do between thread counts), so they can differ in the last bits.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, UInt32Array};
use arrow::compute::{cast, interleave, take};
use arrow::datatypes::DataType;

use crate::accumulator::Accumulator;
use crate::evaluate::{
    Carry, EventMapping, compute, entity_rows, event_mapping, events_source, outputs, scan_spec,
    scanned_entities, specs,
};
use crate::request::{
    EntityData, EvalOutput, EvalRequest, EventKeys, ScanResult, ScannedEvents, Table, TraitSource,
    check_cancelled,
};
use crate::scan::{self, Source};
use crate::{Error, Result};

/// The kept scan of one entity.
struct LiveEntity {
    name: String,
    mapping: EventMapping,
    states: Vec<Box<dyn Accumulator>>,
    result: ScanResult,
}

/// The event scan of a request at its instant, kept to fold later events into.
pub struct LiveScan {
    as_of: i64,
    entities: Vec<LiveEntity>,
}

impl std::fmt::Debug for LiveScan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveScan")
            .field("as_of", &self.as_of)
            .field("entities", &self.entities.len())
            .finish()
    }
}

/// Scans the events of `request` at its instant, as an evaluation would, keeping the states:
/// what the evaluation reads ([`EvalRequest::scanned`]) and the live scan.
pub fn scan_live(request: &EvalRequest) -> Result<(Arc<ScannedEvents>, LiveScan)> {
    let as_of = request.as_of;
    let mut live = LiveScan { as_of, entities: Vec::new() };
    if let Some(events) = &request.events {
        for (entity, event_specs) in scanned_entities(request, events) {
            check_cancelled(&request.cancel)?;
            let table = entity_rows(entity)?;
            let mapping = event_mapping(request, entity, &table, events, &event_specs)?;
            let spec = scan_spec(request, &mapping, events, &event_specs, std::slice::from_ref(&as_of));
            let _span = tracing::info_span!("scan_live", entity = %entity.name).entered();
            let (mut results, states) =
                scan::scan_states(&events_source(events), &mapping.key_map, &spec, &mapping.needed)?;
            let result = results.pop().ok_or_else(|| Error::Internal("a scan without its instant".into()))?;
            live.entities.push(LiveEntity { name: entity.name.clone(), mapping, states, result });
        }
    }
    let scanned = live.scanned();
    Ok((scanned, live))
}

impl LiveScan {
    /// The instant scanned.
    pub fn as_of(&self) -> i64 {
        self.as_of
    }

    /// Folds `batches` (events in the events' canonical types, after every event scanned so
    /// far) into the kept states of every entity; returns what an evaluation of `request` (the
    /// request scanned by [`scan_live`]) reads now.
    pub fn absorb(
        &mut self,
        request: &EvalRequest,
        batches: &[RecordBatch],
    ) -> Result<(Arc<ScannedEvents>, Touched)> {
        if request.as_of != self.as_of {
            return Err(Error::Internal("a live scan folds events at its own instant only".into()));
        }
        let events =
            request.events.as_ref().ok_or_else(|| Error::Internal("a live scan without events".into()))?;
        let as_of = self.as_of;
        let mut touched = Touched::default();
        for live in &mut self.entities {
            touched.rows.insert(live.name.clone(), touched_rows(&live.mapping, batches)?);
            check_cancelled(&request.cancel)?;
            let event_specs = specs(request, &live.name, |s| *s == TraitSource::Events);
            let mut spec =
                scan_spec(request, &live.mapping, events, &event_specs, std::slice::from_ref(&as_of));
            // A batch is small: one worker, whose rows keep their order.
            spec.threads = 1;
            let _span = tracing::info_span!("scan_absorb", entity = %live.name).entered();
            let (mut results, fresh) = scan::scan_states(
                &Source::Batches(batches),
                &live.mapping.key_map,
                &spec,
                &live.mapping.needed,
            )?;
            let added = results.pop().ok_or_else(|| Error::Internal("a scan without its instant".into()))?;
            if fresh.len() != live.states.len() {
                return Err(Error::Internal("a live scan's aggregates changed".into()));
            }
            let mut columns = Vec::with_capacity(fresh.len());
            for (state, fresh) in live.states.iter_mut().zip(fresh) {
                state.merge(fresh)?;
                columns.push(state.finish()?);
            }
            let counts = &mut live.result.counts;
            counts.read += added.counts.read;
            counts.used += added.counts.used;
            counts.ignored_after_as_of += added.counts.ignored_after_as_of;
            counts.ignored_no_time += added.counts.ignored_no_time;
            counts.ignored_unknown_entity += added.counts.ignored_unknown_entity;
            counts.rejected_no_key += added.counts.rejected_no_key;
            live.result.keys = merged_keys(&live.result.keys, added.keys);
            live.result.columns = columns;
        }
        Ok((self.scanned(), touched))
    }

    fn scanned(&self) -> Arc<ScannedEvents> {
        let entities: HashMap<String, ScanResult> =
            self.entities.iter().map(|e| (e.name.clone(), e.result.clone())).collect();
        Arc::new(ScannedEvents { as_of: self.as_of, entities })
    }
}

/// The keys of a scan followed by those of a later batch: the smallest unknown keys of both.
/// (Posted events always have a key: a batch adds no rows without one.)
fn merged_keys(before: &EventKeys, added: EventKeys) -> EventKeys {
    let mut unknown: std::collections::BTreeSet<String> = before.unknown_sample.iter().cloned().collect();
    unknown.extend(added.unknown_sample);
    let mut missing_key_rows = before.missing_key_rows.clone();
    missing_key_rows.extend(added.missing_key_rows);
    EventKeys { unknown_sample: unknown.into_iter().take(scan::UNKNOWN_SAMPLE).collect(), missing_key_rows }
}

/// The rows of each scanned entity (indexes into its table) that a batch of events touched.
#[derive(Debug, Default)]
pub struct Touched {
    rows: HashMap<String, Vec<u32>>,
}

impl Touched {
    fn of(&self, entity: &str) -> &[u32] {
        self.rows.get(entity).map_or(&[], Vec::as_slice)
    }
}

/// The rows of an entity (through `mapping`) that the events of `batches` belong to, ascending.
fn touched_rows(mapping: &EventMapping, batches: &[RecordBatch]) -> Result<Vec<u32>> {
    let mut rows = Vec::new();
    for batch in batches {
        let Some(keys) = batch.column_by_name(&mapping.key_column) else { continue };
        let keys = cast(keys, &DataType::Utf8)?;
        for key in keys.as_string::<i32>().iter().flatten() {
            let row = mapping.key_map.get(key);
            if row != scan::UNKNOWN {
                rows.push(row);
            }
        }
    }
    rows.sort_unstable();
    rows.dedup();
    Ok(rows)
}

/// Where the rows of a live evaluation's entities are in its evaluation table, built once:
/// what [`evaluate_rows`] needs to evaluate only the rows a batch touched.
pub struct RowIndex {
    /// The evaluation table's row of each row of the entity's table.
    all_row: Vec<u32>,
    /// The entity's row of each row of the evaluation table.
    entity_row: Vec<u32>,
    /// The child entities rolled up into the entity.
    children: Vec<ChildRows>,
}

impl std::fmt::Debug for RowIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowIndex").field("rows", &self.all_row.len()).finish_non_exhaustive()
    }
}

/// A child entity rolled up into the entity: each child row's parent (a row of the entity's
/// table) and, per parent, its children (`rows[starts[p]..starts[p + 1]]`, ascending).
struct ChildRows {
    name: String,
    parent_of: Vec<u32>,
    starts: Vec<usize>,
    rows: Vec<u32>,
}

impl RowIndex {
    /// The index of `request` (a live evaluation's) and its `output`.
    pub fn new(request: &EvalRequest, output: &EvalOutput) -> Result<RowIndex> {
        let entity = request.entity_data(&request.entity)?;
        let table = entity_rows(entity)?;
        let ids = column_text(&output.evaluated, segmenta_core::hidden::ENTITY_ID)?;
        let by_id = scan::KeyMap::new(
            ids.as_string::<i32>().iter().enumerate().filter_map(|(i, k)| Some((k?, i as u32))),
        );
        let keys = column_text(&table, &entity.key)?;
        let all_row: Vec<u32> =
            keys.as_string::<i32>().iter().map(|k| k.map_or(scan::UNKNOWN, |k| by_id.get(k))).collect();
        let mut entity_row = vec![scan::UNKNOWN; ids.len()];
        for (row, &at) in all_row.iter().enumerate() {
            if at == scan::UNKNOWN || at as usize >= entity_row.len() {
                return Err(Error::Internal("an entity row missing from its evaluation".into()));
            }
            entity_row[at as usize] = row as u32;
        }
        if entity_row.contains(&scan::UNKNOWN) {
            return Err(Error::Internal("an evaluation row of no entity row".into()));
        }
        let by_key = scan::KeyMap::new(
            keys.as_string::<i32>().iter().enumerate().filter_map(|(i, k)| Some((k?, i as u32))),
        );
        let mut children = Vec::new();
        for spec in request.traits.iter().filter(|t| t.entity == entity.name) {
            let TraitSource::Rollup { child } = &spec.source else { continue };
            if children.iter().any(|c: &ChildRows| c.name == *child) {
                continue;
            }
            let data = request.entity_data(child)?;
            let link = data
                .parent
                .as_ref()
                .ok_or_else(|| Error::Internal(format!("rollup over `{child}`, which has no parent")))?;
            let parents = column_text(&entity_rows(data)?, &link.column)?;
            let parent_of: Vec<u32> = parents
                .as_string::<i32>()
                .iter()
                .map(|k| k.map_or(scan::UNKNOWN, |k| by_key.get(k)))
                .collect();
            let mut starts = vec![0usize; table.num_rows() + 1];
            for &p in parent_of.iter().filter(|&&p| p != scan::UNKNOWN) {
                starts[p as usize + 1] += 1;
            }
            for p in 0..table.num_rows() {
                starts[p + 1] += starts[p];
            }
            let mut next = starts.clone();
            let mut rows = vec![0u32; starts[table.num_rows()]];
            for (row, &p) in parent_of.iter().enumerate() {
                if p != scan::UNKNOWN {
                    rows[next[p as usize]] = row as u32;
                    next[p as usize] += 1;
                }
            }
            children.push(ChildRows { name: child.clone(), parent_of, starts, rows });
        }
        Ok(RowIndex { all_row, entity_row, children })
    }
}

fn column_text(batch: &RecordBatch, name: &str) -> Result<ArrayRef> {
    let column = batch.column_by_name(name).ok_or_else(|| Error::Internal(format!("no column `{name}`")))?;
    Ok(cast(column, &DataType::Utf8)?)
}

/// What [`evaluate_rows`] computed: the evaluation of every row, and the rows of its table
/// evaluated again (ascending): the others are as they were.
pub struct RowsEvaluated {
    /// The evaluation, but for its `memberships`, left empty: the flags of its table say who is
    /// in each segment (a live view patches its members from them at `rows`).
    pub output: EvalOutput,
    /// The rows evaluated again.
    pub rows: Vec<u32>,
}

/// Evaluates `request` (whose events `scanned` holds, after a batch that `touched` these
/// rows) again for the touched rows only, and the rows of its entity they roll up into, taking
/// every other row from `previous` (the evaluation before the batch): what [`crate::evaluate()`]
/// computes, or `None` where that cannot be exact without every row (quintiles or a fit whose
/// inputs changed, rollups over a hierarchy that read traits, rules reading the parent's
/// columns, rollups of rollups): the caller evaluates every row then.
pub async fn evaluate_rows(
    request: &EvalRequest,
    touched: &Touched,
    index: &RowIndex,
    previous: &EvalOutput,
) -> Result<Option<RowsEvaluated>> {
    let Some((restricted, rows)) = restrict(request, touched, index)? else { return Ok(None) };
    let carry = Carry { previous: &previous.evaluated, rows: &rows };
    let computed = match compute(&restricted, Some(carry)).await {
        Err(Error::EveryRow(why)) => {
            tracing::debug!(target: "segmenta::live", "every row evaluated: {why}");
            return Ok(None);
        }
        other => other?,
    };
    let _span = tracing::info_span!("patch", rows = rows.len()).entered();
    let all = patch(&previous.evaluated, &rows, &computed.all)?;
    let output =
        outputs(request, all, computed.counts, previous.static_lists.clone(), previous.entities, false)?;
    Ok(Some(RowsEvaluated { output, rows }))
}

/// `request` restricted to the rows a batch touched (of its entity, and of the children rolled
/// up into it: their parents' rows, whole), and those rows of the evaluation table, ascending.
fn restrict(
    request: &EvalRequest,
    touched: &Touched,
    index: &RowIndex,
) -> Result<Option<(EvalRequest, Vec<u32>)>> {
    let entity = request.entity_data(&request.entity)?;
    if entity.parent.is_some() && !request.parent_columns.is_empty() {
        return Ok(None);
    }
    let mut rows: Vec<u32> = touched.of(&entity.name).iter().map(|&r| index.all_row[r as usize]).collect();
    for child in &index.children {
        let nested = request.traits.iter().any(|t| {
            t.entity == child.name
                && matches!(t.source, TraitSource::Rollup { .. } | TraitSource::Hierarchy { .. })
        });
        if nested {
            return Ok(None);
        }
        for &row in touched.of(&child.name) {
            let parent = child.parent_of[row as usize];
            if parent != scan::UNKNOWN {
                rows.push(index.all_row[parent as usize]);
            }
        }
    }
    rows.sort_unstable();
    rows.dedup();
    let entity_rows_held: Vec<u32> = rows.iter().map(|&r| index.entity_row[r as usize]).collect();
    let scanned = request
        .scanned
        .as_ref()
        .ok_or_else(|| Error::Internal("a live evaluation without its scan".into()))?;
    let mut entities_scanned = scanned.entities.clone();
    let mut entities = Vec::with_capacity(request.entities.len());
    for data in &request.entities {
        let held: Option<Vec<u32>> = if data.name == entity.name {
            Some(entity_rows_held.clone())
        } else {
            index.children.iter().find(|c| c.name == data.name).map(|child| {
                entity_rows_held
                    .iter()
                    .flat_map(|&p| {
                        child.rows[child.starts[p as usize]..child.starts[p as usize + 1]].iter().copied()
                    })
                    .collect()
            })
        };
        let Some(mut held) = held else {
            entities.push(data.clone());
            continue;
        };
        if data.name != entity.name {
            // A child's rows in their table's order, as a full evaluation folds them.
            held.sort_unstable();
        }
        let indices = UInt32Array::from(held);
        let batch = take_rows(&data.table, &indices)?;
        if let Some(result) = entities_scanned.get_mut(&data.name) {
            result.columns = result
                .columns
                .iter()
                .map(|c| take(c.as_ref(), &indices, None))
                .collect::<std::result::Result<_, _>>()?;
        }
        entities.push(EntityData {
            table: Table { schema: data.table.schema.clone(), batches: vec![batch] },
            ..data.clone()
        });
    }
    let mut restricted = request.clone();
    restricted.entities = entities;
    restricted.scanned = Some(Arc::new(ScannedEvents { as_of: scanned.as_of, entities: entities_scanned }));
    Ok(Some((restricted, rows)))
}

/// The rows `indices` of a table held in several batches, in that order.
fn take_rows(table: &Table, indices: &UInt32Array) -> Result<RecordBatch> {
    let mut starts = Vec::with_capacity(table.batches.len());
    let mut start = 0usize;
    for batch in &table.batches {
        starts.push(start);
        start += batch.num_rows();
    }
    let at: Vec<(usize, usize)> = indices
        .values()
        .iter()
        .map(|&row| {
            let batch = starts.partition_point(|&s| s <= row as usize) - 1;
            (batch, row as usize - starts[batch])
        })
        .collect();
    if table.batches.is_empty() {
        return Ok(RecordBatch::new_empty(table.schema.arrow_schema()));
    }
    let batches: Vec<&RecordBatch> = table.batches.iter().collect();
    Ok(arrow::compute::interleave_record_batch(&batches, &at)?)
}

/// `previous` with its rows `rows` (ascending) replaced by the rows of `held`, which are the
/// same entities in the same order, column by column by name.
fn patch(previous: &RecordBatch, rows: &[u32], held: &RecordBatch) -> Result<RecordBatch> {
    let id = segmenta_core::hidden::ENTITY_ID;
    if held.num_rows() != rows.len() {
        return Err(Error::Internal("an evaluation of some rows lost rows".into()));
    }
    let (before, after) = (column_text(previous, id)?, column_text(held, id)?);
    let (before, after) = (before.as_string::<i32>(), after.as_string::<i32>());
    if rows.iter().enumerate().any(|(j, &r)| before.value(r as usize) != after.value(j)) {
        return Err(Error::Internal("an evaluation of some rows holds other entities".into()));
    }
    // Which array and row each row of an interleaved column comes from: built only for a
    // column that is neither primitive nor boolean.
    let at = std::cell::OnceCell::new();
    let at = || {
        at.get_or_init(|| {
            let mut at: Vec<(usize, usize)> = (0..previous.num_rows()).map(|i| (0, i)).collect();
            for (j, &r) in rows.iter().enumerate() {
                at[r as usize] = (1, j);
            }
            at
        })
        .as_slice()
    };
    let indices = UInt32Array::from(rows.to_vec());
    let mut columns = Vec::with_capacity(previous.num_columns());
    for (field, before) in previous.schema().fields().iter().zip(previous.columns()) {
        let after = held
            .column_by_name(field.name())
            .ok_or_else(|| Error::Internal(format!("an evaluation of some rows lost `{}`", field.name())))?;
        let after = if after.data_type() == before.data_type() {
            after.clone()
        } else {
            cast(after, before.data_type())?
        };
        // Most columns hold the same values at the rows evaluated again (attributes, carried
        // rollups and model columns): the column before serves as it is.
        if take(before.as_ref(), &indices, None)?.as_ref() == after.as_ref() {
            columns.push(before.clone());
            continue;
        }
        columns.push(patch_column(before, rows, &after, at)?);
    }
    Ok(RecordBatch::try_new(previous.schema(), columns)?)
}

/// `before` with its values at `rows` replaced by `after`'s (in order): primitive and boolean
/// columns copied and overwritten in place, others interleaved (`at`: per row of the result,
/// which of the two arrays and which row of it).
fn patch_column<'a>(
    before: &ArrayRef,
    rows: &[u32],
    after: &ArrayRef,
    at: impl FnOnce() -> &'a [(usize, usize)],
) -> Result<ArrayRef> {
    use arrow::datatypes::{
        DataType as T, Date32Type, Float64Type, Int32Type, Int64Type, TimeUnit, TimestampMicrosecondType,
        UInt32Type,
    };
    Ok(match before.data_type() {
        T::Int64 => patch_primitive::<Int64Type>(before, rows, after),
        T::Float64 => patch_primitive::<Float64Type>(before, rows, after),
        T::Int32 => patch_primitive::<Int32Type>(before, rows, after),
        T::UInt32 => patch_primitive::<UInt32Type>(before, rows, after),
        T::Date32 => patch_primitive::<Date32Type>(before, rows, after),
        T::Timestamp(TimeUnit::Microsecond, _) => {
            patch_primitive::<TimestampMicrosecondType>(before, rows, after)
        }
        T::Boolean => {
            let (b, a) = (before.as_boolean(), after.as_boolean());
            let mut values = arrow::array::BooleanBufferBuilder::new(b.len());
            values.append_buffer(b.values());
            for (j, &r) in rows.iter().enumerate() {
                values.set_bit(r as usize, a.value(j));
            }
            Arc::new(arrow::array::BooleanArray::new(values.finish(), patch_nulls(b, rows, a)))
        }
        _ => interleave(&[before.as_ref(), after.as_ref()], at())?,
    })
}

fn patch_primitive<P: arrow::datatypes::ArrowPrimitiveType>(
    before: &ArrayRef,
    rows: &[u32],
    after: &ArrayRef,
) -> ArrayRef {
    let (b, a) = (before.as_primitive::<P>(), after.as_primitive::<P>());
    let mut values = b.values().to_vec();
    for (j, &r) in rows.iter().enumerate() {
        values[r as usize] = a.values()[j];
    }
    let patched = arrow::array::PrimitiveArray::<P>::new(values.into(), patch_nulls(b, rows, a));
    Arc::new(patched.with_data_type(before.data_type().clone()))
}

/// The validity of `before` with `after`'s at `rows`.
fn patch_nulls(before: &dyn Array, rows: &[u32], after: &dyn Array) -> Option<arrow::buffer::NullBuffer> {
    if before.nulls().is_none() && after.nulls().is_none() {
        return None;
    }
    let mut valid = arrow::array::BooleanBufferBuilder::new(before.len());
    match before.nulls() {
        Some(nulls) => valid.append_buffer(nulls.inner()),
        None => valid.append_n(before.len(), true),
    }
    for (j, &r) in rows.iter().enumerate() {
        valid.set_bit(r as usize, after.is_valid(j));
    }
    Some(arrow::buffer::NullBuffer::new(valid.finish()))
}
