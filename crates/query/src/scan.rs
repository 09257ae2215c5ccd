//! The one-pass trait scan: every event trait of an entity (and its RFM values and score
//! points) computed in one read of the events, by a purpose-built grouped aggregation.
//!
//! DataFusion's generic hash aggregation was the wall here: with two filtered
//! `count(DISTINCT ...)` among 20 traits it took 21.7 s and 4.2 GiB on 10.9 million events
//! where DuckDB took 5.3 s (bench/segment, 2 threads; docs/benchmarks.md). This scan exploits
//! what the generic operator cannot know:
//!
//! - groups are the entities, known before the scan: each event's key is looked up once in a
//!   hash map of entity keys and every aggregate updates a flat array at that index;
//! - low-cardinality string columns (event types, features) are read from Parquet as
//!   dictionaries, so conditions on them are evaluated once per dictionary value
//!   ([`crate::vector`]);
//! - conditions and windows shared by several traits are evaluated once per batch;
//! - distinct counts keep one set of (entity, value) pairs, with strings interned.
//!
//! Row groups (and slices of large ones) are split among threads, each with its own
//! accumulators; they are merged in a fixed order, so results do not depend on timing.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, RecordBatch, Scalar, StringArray, TimestampMicrosecondArray,
};
use arrow::buffer::{BooleanBuffer, NullBuffer};
use arrow::compute::cast;
use arrow::compute::kernels::cmp;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use hashbrown::HashMap;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection, RowSelector,
};
use parquet::basic::{Encoding, PageType};
use rayon::prelude::*;
use segmenta_core::{Bounds, Cancel};
use segmenta_rules::ast::{TypedExpr, TypedValue};

use crate::accumulator::{Accumulator, Input, Make, recipe};
use crate::ingest::{TableSchema, arrow_type};
use crate::lower::UTC;
use crate::request::{Aggregate, EventCounts, EventKeys, ScanResult, check_cancelled};
use crate::vector::{Columns, evaluate, value_array};
use crate::{Error, Location, Result};

/// Event keys to entity indexes.
///
/// Keys of up to 12 bytes (most ids) are kept as Arrow string views: 16 bytes holding the
/// length and the bytes themselves, so that a lookup from a `StringViewArray` hashes and compares
/// one integer instead of calling `memcmp` (the scan spent 40% of its time in string lookups
/// before; docs/benchmarks.md). Longer keys are looked up as text.
pub(crate) struct KeyMap {
    inline: HashMap<u128, u32>,
    long: HashMap<Box<str>, u32>,
}

/// The index of an event whose key matches no entity.
pub(crate) const UNKNOWN: u32 = u32::MAX;

/// Longest key stored inline in a string view.
const INLINE: usize = 12;

/// The string view of a short string: length in the low 32 bits, then the bytes.
fn inline_view(key: &[u8]) -> u128 {
    let mut bytes = [0u8; 16];
    bytes[..4].copy_from_slice(&(key.len() as u32).to_le_bytes());
    bytes[4..4 + key.len()].copy_from_slice(key);
    u128::from_le_bytes(bytes)
}

impl KeyMap {
    /// Maps each key to the index it is given with (the first index of a repeated key).
    pub(crate) fn new<'a>(pairs: impl Iterator<Item = (&'a str, u32)>) -> KeyMap {
        let (mut inline, mut long) = (HashMap::new(), HashMap::new());
        for (key, index) in pairs {
            if key.len() <= INLINE {
                inline.entry(inline_view(key.as_bytes())).or_insert(index);
            } else {
                long.entry(Box::from(key)).or_insert(index);
            }
        }
        KeyMap { inline, long }
    }

    pub(crate) fn get(&self, key: &str) -> u32 {
        if key.len() <= INLINE {
            self.inline.get(&inline_view(key.as_bytes())).copied().unwrap_or(UNKNOWN)
        } else {
            self.long.get(key).copied().unwrap_or(UNKNOWN)
        }
    }

    /// The index of row `i` of a string view array (valid rows only).
    fn get_view(&self, array: &arrow::array::StringViewArray, i: usize) -> u32 {
        let view = array.views()[i];
        if (view as u32) as usize <= INLINE {
            self.inline.get(&view).copied().unwrap_or(UNKNOWN)
        } else {
            self.long.get(array.value(i)).copied().unwrap_or(UNKNOWN)
        }
    }
}

/// Where the events are.
pub(crate) enum Source<'a> {
    /// Loaded batches in canonical types.
    Batches(&'a [RecordBatch]),
    /// A Parquet file; `schema` holds the canonical type of each column.
    Parquet {
        /// The file.
        path: &'a Path,
        /// Canonical types.
        schema: &'a TableSchema,
        /// Rows after the file's, in canonical types: numbered after the file's rows and
        /// taken as units after its units.
        appended: &'a [RecordBatch],
    },
}

/// What to compute.
pub(crate) struct ScanSpec<'a> {
    /// The events column holding the group key.
    pub key: &'a str,
    /// The time column.
    pub time: &'a str,
    /// The aggregates, in output order.
    pub aggregates: Vec<&'a Aggregate>,
    /// Their names (the traits they become), for messages.
    pub names: Vec<&'a str>,
    /// The as-of instants, microseconds, ascending: one evaluation each (`run` has one;
    /// `backfill` reads the events once for all of its instants).
    pub instants: &'a [i64],
    /// The number of entities (the length of every output column).
    pub entities: usize,
    /// Worker threads.
    pub threads: usize,
    /// Checked between units of work (batches, row-group slices).
    pub cancel: &'a Cancel,
    /// The pool the workers run on; `None` builds one of `threads` threads for this scan.
    pub pool: Option<&'a rayon::ThreadPool>,
}

/// The smallest distinct keys seen among events that match no entity: the same sample
/// whatever the thread count.
#[derive(Default)]
struct UnknownSample {
    keys: std::collections::BTreeSet<String>,
}

impl UnknownSample {
    fn offer(&mut self, key: &str) {
        if self.keys.len() == UNKNOWN_SAMPLE {
            match self.keys.last() {
                Some(largest) if key < largest.as_str() => {}
                _ => return,
            }
        }
        if self.keys.insert(key.to_string()) && self.keys.len() > UNKNOWN_SAMPLE {
            self.keys.pop_last();
        }
    }

    /// Offers the keys of the `rows` of a key column.
    fn observe(&mut self, keys: &ArrayRef, rows: &BooleanBuffer) -> Result<()> {
        match keys.data_type() {
            DataType::Utf8View => {
                let keys = keys.as_string_view();
                rows.set_indices().for_each(|i| self.offer(keys.value(i)));
            }
            DataType::Dictionary(_, _) => {
                let dictionary = keys.as_any_dictionary();
                let values = cast(dictionary.values(), &DataType::Utf8)?;
                let values = values.as_string::<i32>();
                let codes = cast(dictionary.keys(), &DataType::UInt32)?;
                let codes = codes.as_primitive::<arrow::datatypes::UInt32Type>();
                rows.set_indices().for_each(|i| self.offer(values.value(codes.value(i) as usize)));
            }
            _ => {
                let text = cast(keys, &DataType::Utf8)?;
                let text = text.as_string::<i32>();
                rows.set_indices().for_each(|i| self.offer(text.value(i)));
            }
        }
        Ok(())
    }

    fn merge(&mut self, other: UnknownSample) {
        other.keys.iter().for_each(|key| self.offer(key));
    }
}

/// The number of unknown keys a scan keeps as examples.
pub(crate) const UNKNOWN_SAMPLE: usize = 5;

/// One aggregate, planned: which window and conditions it needs (indexes into the plan's
/// lists), which columns it reads, and how to make its accumulator.
struct Planned<'a> {
    window: usize,
    filter: Option<usize>,
    condition: Option<usize>,
    arg: Option<&'a TypedValue>,
    amount: Option<String>,
    make: Make,
}

/// The distinct windows and conditions of all aggregates at one instant, each evaluated once
/// per batch.
struct Plan<'a> {
    /// The windows' bounds (`i64::MIN` to the as-of instant for no window).
    windows: Vec<Bounds>,
    conditions: Vec<&'a TypedExpr>,
    aggregates: Vec<Planned<'a>>,
}

fn plan<'a>(spec: &ScanSpec<'a>, as_of: i64) -> Result<Plan<'a>> {
    let mut windows: Vec<Bounds> = Vec::new();
    let mut conditions: Vec<&'a TypedExpr> = Vec::new();
    let mut aggregates = Vec::with_capacity(spec.aggregates.len());
    for aggregate in &spec.aggregates {
        let recipe = recipe(aggregate, as_of)?;
        let window = intern(&mut windows, recipe.bounds);
        let mut condition_index = |expr: &'a TypedExpr| intern(&mut conditions, expr);
        aggregates.push(Planned {
            window,
            filter: recipe.filter.map(&mut condition_index),
            condition: recipe.condition.map(&mut condition_index),
            arg: recipe.arg,
            amount: recipe.amount,
            make: recipe.make,
        });
    }
    Ok(Plan { windows, conditions, aggregates })
}

/// The plans at every instant (their conditions are the same: they do not depend on the
/// instant), and which aggregates fold each event once, into the first instant that sees it
/// ([`Accumulator::fork`]): those without a window whose result does not depend on row order.
struct Plans<'a> {
    at: Vec<Plan<'a>>,
    carried: Vec<bool>,
}

fn plans<'a>(spec: &ScanSpec<'a>) -> Result<Plans<'a>> {
    if spec.instants.is_empty() || spec.instants.windows(2).any(|w| w[0] >= w[1]) {
        return Err(Error::Internal("a scan needs ascending instants".into()));
    }
    let at = spec.instants.iter().map(|&as_of| plan(spec, as_of)).collect::<Result<Vec<_>>>()?;
    let carried = (0..spec.aggregates.len())
        .map(|a| {
            at.len() > 1
                && at.iter().zip(spec.instants).all(|(plan, &as_of)| {
                    let Bounds { start, end } = plan.windows[plan.aggregates[a].window];
                    start == i64::MIN && end >= as_of
                })
                && (at[0].aggregates[a].make)(0).fork().is_some()
        })
        .collect();
    Ok(Plans { at, carried })
}

/// A value out of range of aggregate `n` (an integer sum past 64 bits, a value of its
/// condition out of range), naming its trait.
fn named(error: Error, spec: &ScanSpec<'_>, n: usize) -> Error {
    let owner = crate::error::Owner::of_trait(spec.names.get(n).copied().unwrap_or_default());
    match error {
        Error::BadInput { location, message, hint } if location.file.is_empty() && owner.kind.is_empty() => {
            let message = format!("an aggregate of the events: {message}");
            Error::BadInput { location, message, hint }
        }
        other => other.owned(&owner),
    }
}

/// The index of `item` in `items`, added if new.
fn intern<T: PartialEq>(items: &mut Vec<T>, item: T) -> usize {
    match items.iter().position(|i| *i == item) {
        Some(i) => i,
        None => {
            items.push(item);
            items.len() - 1
        }
    }
}

/// The TRUE rows of a three-valued result.
pub(crate) fn true_bits(result: &BooleanArray) -> BooleanBuffer {
    match result.nulls() {
        Some(nulls) => result.values() & nulls.inner(),
        None => result.values().clone(),
    }
}

fn valid_bits(array: &dyn Array) -> Option<BooleanBuffer> {
    array.logical_nulls().map(|n: NullBuffer| n.inner().clone())
}

/// What one thread has seen by one instant.
#[derive(Default)]
struct Seen {
    counts: EventCounts,
    /// Events with a key, before the instant (of known entities or not).
    before: u64,
    /// The smallest keys of events before the instant that match no entity.
    unknown_sample: UnknownSample,
}

/// One thread's share of the scan.
struct Worker<'a, 'p> {
    spec: &'a ScanSpec<'p>,
    plans: &'a Plans<'p>,
    keys: &'a KeyMap,
    /// Per instant, per aggregate. A carried aggregate holds, at instant `k`, the events from
    /// instant `k - 1` (inclusive) to `k` only.
    accs: Vec<Vec<Box<dyn Accumulator>>>,
    /// Per instant.
    seen: Vec<Seen>,
    /// 1-based row numbers of the events without a key.
    missing_key_rows: Vec<u64>,
    /// The last key dictionary seen and its entity indexes. The dictionary itself is kept (not
    /// its address): a freed dictionary's buffers can be reused at the same address by a later
    /// row group's, which then matched the stale mapping and gave events to the wrong entity.
    key_dictionary: Option<(ArrayRef, Vec<u32>)>,
}

impl<'a, 'p> Worker<'a, 'p> {
    fn new(spec: &'a ScanSpec<'p>, plans: &'a Plans<'p>, keys: &'a KeyMap) -> Worker<'a, 'p> {
        let accs = plans
            .at
            .iter()
            .map(|plan| plan.aggregates.iter().map(|p| (p.make)(spec.entities)).collect())
            .collect();
        Worker {
            spec,
            plans,
            keys,
            accs,
            seen: plans.at.iter().map(|_| Seen::default()).collect(),
            missing_key_rows: Vec::new(),
            key_dictionary: None,
        }
    }

    /// Entity index per row ([`UNKNOWN`] for unknown and NULL keys).
    fn entity_indexes(&mut self, keys: &ArrayRef) -> Result<Vec<u32>> {
        let n = keys.len();
        let mut out = Vec::with_capacity(n);
        match keys.data_type() {
            DataType::Dictionary(_, _) => {
                let dictionary = keys.as_any_dictionary();
                let values = dictionary.values();
                // Holding the cached dictionary keeps its buffers alive, so equal pointers mean
                // the very same dictionary (Parquet readers hand one out per column chunk).
                let fresh = !matches!(&self.key_dictionary, Some((cached, _)) if cached.to_data().ptr_eq(&values.to_data()));
                if fresh {
                    let text = cast(values, &DataType::Utf8)?;
                    let text = text.as_string::<i32>();
                    let mapped = text.iter().map(|v| v.map_or(UNKNOWN, |v| self.keys.get(v))).collect();
                    self.key_dictionary = Some((values.clone(), mapped));
                }
                let mapped = self.key_dictionary.as_ref().map(|(_, m)| m.as_slice()).unwrap_or_default();
                let codes = cast(dictionary.keys(), &DataType::UInt32)?;
                let codes = codes.as_primitive::<arrow::datatypes::UInt32Type>();
                for i in 0..n {
                    out.push(if codes.is_null(i) { UNKNOWN } else { mapped[codes.value(i) as usize] });
                }
            }
            DataType::Utf8View => {
                let array = keys.as_string_view();
                for i in 0..n {
                    out.push(if array.is_null(i) { UNKNOWN } else { self.keys.get_view(array, i) });
                }
            }
            DataType::Utf8 => {
                let array = keys.as_string::<i32>();
                for i in 0..n {
                    out.push(if array.is_null(i) { UNKNOWN } else { self.keys.get(array.value(i)) });
                }
            }
            _ => {
                let text = cast(keys, &DataType::Utf8)?;
                let array = text.as_string::<i32>();
                for i in 0..n {
                    out.push(if array.is_null(i) { UNKNOWN } else { self.keys.get(array.value(i)) });
                }
            }
        }
        Ok(out)
    }

    /// Folds one batch whose first row is row `first_row` (1-based) of the source.
    fn process(&mut self, batch: &RecordBatch, first_row: u64) -> Result<()> {
        let n = batch.num_rows();
        if n == 0 {
            return Ok(());
        }
        let normalized = crate::arith::without_negative_zeros(batch)?;
        let batch = normalized.as_ref().unwrap_or(batch);
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .ok_or_else(|| Error::Internal(format!("event column `{name}` was not read")))
        };
        let key_column = column(self.spec.key)?;
        let index = self.entity_indexes(key_column)?;
        let time = column(self.spec.time)?;
        let time = time
            .as_primitive_opt::<arrow::datatypes::TimestampMicrosecondType>()
            .ok_or_else(|| Error::Internal("the time column is not in microseconds".into()))?;
        let before_instant = |as_of: i64| -> Result<BooleanBuffer> {
            let as_of = Scalar::new(TimestampMicrosecondArray::from(vec![as_of]).with_timezone(UTC));
            Ok(true_bits(&cmp::lt(time, &as_of)?))
        };
        // Events without a key are the caller's to reject: they are neither used nor ignored.
        let keyed = valid_bits(key_column.as_ref());
        let timed = valid_bits(time);
        let (keyed_count, keyed_with_time) = match &keyed {
            None => (n, timed.as_ref().map_or(n, BooleanBuffer::count_set_bits)),
            Some(keyed) => {
                self.missing_key_rows
                    .extend((0..n).filter(|&i| !keyed.value(i)).map(|i| first_row + i as u64));
                let with_time =
                    timed.as_ref().map_or(keyed.count_set_bits(), |t| (t & keyed).count_set_bits());
                (keyed.count_set_bits(), with_time)
            }
        };
        let known = BooleanBuffer::collect_bool(n, |i| index[i] != UNKNOWN);
        let last =
            *self.spec.instants.last().ok_or_else(|| Error::Internal("a scan without instants".into()))?;
        let used_by = |as_of: i64| -> Result<(BooleanBuffer, BooleanBuffer)> {
            let mut before = before_instant(as_of)?;
            if let Some(keyed) = &keyed {
                before = &before & keyed;
            }
            let used = &before & &known;
            Ok((before, used))
        };

        // Conditions and arguments, once each for every instant. Values are computed for every
        // row, but only the events an evaluation uses can be out of range (those after the last
        // instant or of unknown entities read as NULL there).
        let (_, used_last) = used_by(last)?;
        let columns = Columns::with_domain(batch, used_last);
        let first = &self.plans.at[0];
        let conditions: Vec<BooleanBuffer> = first
            .conditions
            .iter()
            .enumerate()
            .map(|(i, c)| {
                evaluate(c, &columns).map(|r| true_bits(&r)).map_err(|e| {
                    // A value out of range: named after the first trait with this condition.
                    let uses = |p: &Planned| p.filter == Some(i) || p.condition == Some(i);
                    named(e, self.spec, first.aggregates.iter().position(uses).unwrap_or(0))
                })
            })
            .collect::<Result<_>>()?;
        // Per aggregate: its argument, the rows where it is present and its filter, and the
        // amount column.
        let mut inputs: Vec<(Option<ArrayRef>, Option<BooleanBuffer>, Option<&ArrayRef>)> =
            Vec::with_capacity(first.aggregates.len());
        for (a, planned) in first.aggregates.iter().enumerate() {
            let mut rows = planned.filter.map(|f| conditions[f].clone());
            let arg = match planned.arg {
                Some(value) => {
                    let array = match value {
                        TypedValue::Column { column: c, ty } if *ty == c.ty => column(&c.column)?.clone(),
                        _ => value_array(value, &columns).map_err(|e| named(e, self.spec, a))?,
                    };
                    if let Some(valid) = valid_bits(array.as_ref()) {
                        rows = Some(match rows {
                            Some(rows) => &rows & &valid,
                            None => valid,
                        });
                    }
                    Some(array)
                }
                None => None,
            };
            let amount = match &planned.amount {
                Some(name) => Some(column(name)?),
                None => None,
            };
            inputs.push((arg, rows, amount));
        }

        let times = time.values();
        let mut used_earlier: Option<BooleanBuffer> = None;
        for (k, &as_of) in self.spec.instants.iter().enumerate() {
            let (before, used) = used_by(as_of)?;
            let before_count = before.count_set_bits();
            let used_count = used.count_set_bits();
            let seen = &mut self.seen[k];
            seen.counts.read += n as u64;
            seen.counts.rejected_no_key += (n - keyed_count) as u64;
            seen.counts.ignored_no_time += (keyed_count - keyed_with_time) as u64;
            seen.counts.ignored_after_as_of += (keyed_with_time - before_count) as u64;
            seen.before += before_count as u64;
            seen.counts.used += used_count as u64;
            if before_count > used_count {
                let unknown = &before & &!&known;
                seen.unknown_sample.observe(key_column, &unknown)?;
            }
            let plan = &self.plans.at[k];
            let windows: Vec<BooleanBuffer> = plan
                .windows
                .iter()
                .map(|&Bounds { start, end }| {
                    // Every used event is before the as-of instant; a range may end earlier.
                    match (start == i64::MIN, end >= as_of) {
                        (true, true) => used.clone(),
                        (false, true) => &used & &BooleanBuffer::collect_bool(n, |i| times[i] >= start),
                        (true, false) => &used & &BooleanBuffer::collect_bool(n, |i| times[i] < end),
                        (false, false) => {
                            &used & &BooleanBuffer::collect_bool(n, |i| times[i] >= start && times[i] < end)
                        }
                    }
                })
                .collect();
            // The events first seen at this instant, for the carried aggregates.
            let fresh = used_earlier.as_ref().map(|earlier| &used & &!earlier);
            for (a, (planned, acc)) in plan.aggregates.iter().zip(&mut self.accs[k]).enumerate() {
                let mut mask = match (&fresh, self.plans.carried[a]) {
                    (Some(fresh), true) => fresh.clone(),
                    _ => windows[planned.window].clone(),
                };
                let (arg, rows, amount) = &inputs[a];
                if let Some(rows) = rows {
                    mask = &mask & rows;
                }
                if mask.count_set_bits() == 0 {
                    continue;
                }
                let condition = planned.condition.map(|c| &conditions[c]);
                let input = Input { index: &index, arg: arg.as_ref(), amount: *amount, times, condition };
                acc.update(&mask, &input).map_err(|e| named(e, self.spec, a))?;
            }
            used_earlier = Some(used);
        }
        Ok(())
    }
}

/// A Parquet file opened for the scan: its metadata (with string columns typed as dictionaries
/// or string views), the projection of the needed columns, and the work units.
pub(crate) struct ParquetScan {
    pub(crate) metadata: ArrowReaderMetadata,
    pub(crate) projection: ProjectionMask,
    /// (row group, first row in the group, rows, the 1-based row number in the file of the
    /// unit's first row).
    units: Vec<(usize, usize, usize, u64)>,
    /// The file's rows.
    rows: u64,
}

/// Whether a column chunk is entirely dictionary-encoded with a small dictionary: such a
/// column is read as an Arrow dictionary, so conditions on it cost one check per value.
fn small_dictionary(column: &parquet::file::metadata::ColumnChunkMetaData) -> bool {
    let Some(dictionary_offset) = column.dictionary_page_offset() else { return false };
    let dictionary_bytes = column.data_page_offset() - dictionary_offset;
    let all_dictionary = match column.page_encoding_stats() {
        Some(stats) => stats.iter().all(|s| {
            s.page_type != PageType::DATA_PAGE && s.page_type != PageType::DATA_PAGE_V2
                || matches!(s.encoding, Encoding::RLE_DICTIONARY | Encoding::PLAIN_DICTIONARY)
        }),
        None => {
            column.encodings().any(|e| matches!(e, Encoding::RLE_DICTIONARY | Encoding::PLAIN_DICTIONARY))
        }
    };
    all_dictionary && (0..256 * 1024).contains(&dictionary_bytes)
}

/// A Parquet file that cannot be read is the user's to fix.
pub(crate) fn parquet_error(path: &Path) -> impl Fn(parquet::errors::ParquetError) -> Error + '_ {
    move |e| {
        Error::bad_input(
            Location { file: path.display().to_string(), line: None, column: None },
            format!("cannot read Parquet: {e}"),
            Some("the file is damaged or not Parquet; export it again".into()),
        )
    }
}

pub(crate) fn open_parquet(path: &Path, needed: &[String], threads: usize) -> Result<ParquetScan> {
    let io = |source| Error::Io { path: path.display().to_string(), source };
    let file = File::open(path).map_err(io)?;
    let plain = ArrowReaderMetadata::load(&file, ArrowReaderOptions::new()).map_err(parquet_error(path))?;
    let parquet_schema = plain.metadata().file_metadata().schema_descr_ptr();
    // String columns: dictionaries when small and dictionary-encoded, else string views.
    let fields: Vec<Field> = plain
        .schema()
        .fields()
        .iter()
        .enumerate()
        .map(|(i, field)| {
            let stringy =
                matches!(field.data_type(), DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View);
            if !stringy || !needed.iter().any(|n| n == field.name()) || i >= parquet_schema.num_columns() {
                return field.as_ref().clone();
            }
            let dictionary =
                plain.metadata().row_groups().first().is_some_and(|rg| small_dictionary(rg.column(i)));
            let ty = if dictionary {
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
            } else {
                DataType::Utf8View
            };
            field.as_ref().clone().with_data_type(ty)
        })
        .collect();
    let hinted: SchemaRef = Arc::new(Schema::new_with_metadata(fields, plain.schema().metadata().clone()));
    // A file whose layout the hints do not fit (nested columns) is read with its own types.
    let metadata =
        ArrowReaderMetadata::load(&file, ArrowReaderOptions::new().with_schema(hinted)).unwrap_or(plain);
    let leaves: Vec<usize> = (0..parquet_schema.num_columns())
        .filter(|&i| {
            let path = parquet_schema.column(i).path().parts().first().cloned().unwrap_or_default();
            needed.contains(&path)
        })
        .collect();
    let projection = ProjectionMask::leaves(&parquet_schema, leaves);
    // Work units: row groups, and slices of them when there are fewer groups than threads.
    let groups = metadata.metadata().row_groups();
    let slices = if groups.len() >= 2 * threads { 1 } else { (2 * threads).div_ceil(groups.len().max(1)) };
    let mut units = Vec::new();
    let mut file_row = 1u64;
    for (g, group) in groups.iter().enumerate() {
        let rows = group.num_rows().max(0) as usize;
        let size = rows.div_ceil(slices).max(1);
        let mut start = 0;
        while start < rows {
            let len = size.min(rows - start);
            units.push((g, start, len, file_row + start as u64));
            start += len;
        }
        file_row += rows as u64;
    }
    Ok(ParquetScan { metadata, projection, units, rows: file_row - 1 })
}

/// The columns of a batch cast to what the scan expects: canonical types, except that strings
/// may stay dictionaries or views.
fn canonical(batch: RecordBatch, schema: &TableSchema) -> Result<RecordBatch> {
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        let target = schema.get(field.name()).map(arrow_type);
        let keep = match (&target, column.data_type()) {
            (None, _) => true,
            (Some(DataType::Utf8), DataType::Utf8 | DataType::Utf8View | DataType::Dictionary(_, _)) => true,
            (Some(t), have) => t == have,
        };
        let column = match (keep, &target) {
            (false, Some(t)) => cast(column, t)?,
            _ => column.clone(),
        };
        fields.push(Field::new(field.name(), column.data_type().clone(), true));
        columns.push(column);
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?)
}

/// Runs the scan: one result per instant of the spec.
pub(crate) fn scan(
    source: &Source<'_>,
    keys: &KeyMap,
    spec: &ScanSpec<'_>,
    needed: &[String],
) -> Result<Vec<ScanResult>> {
    Ok(scan_states(source, keys, spec, needed)?.0)
}

/// The merged state of every aggregate of a scan, in the spec's order.
pub(crate) type States = Vec<Box<dyn Accumulator>>;

/// Runs the scan: one result per instant of the spec, and the merged state of every aggregate
/// at the last instant (what a live scan keeps to fold later events into, `crate::live`).
pub(crate) fn scan_states(
    source: &Source<'_>,
    keys: &KeyMap,
    spec: &ScanSpec<'_>,
    needed: &[String],
) -> Result<(Vec<ScanResult>, States)> {
    let plans = plans(spec)?;
    let threads = spec.threads.max(1);
    let own_pool;
    let pool = match spec.pool {
        Some(pool) => pool,
        None => {
            own_pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .thread_name(|i| format!("segmenta-scan-{i}"))
                .build()
                .map_err(|e| Error::Internal(format!("cannot start the scan's threads: {e}")))?;
            &own_pool
        }
    };
    // Worker `t` takes units t, t + threads, ...: which unit goes to which worker (and so the
    // merge order) depends on the thread count only, never on timing or on the pool's size.
    let parquet = match source {
        Source::Parquet { path, .. } => Some(open_parquet(path, needed, threads)?),
        Source::Batches(_) => None,
    };
    let batch_starts: Vec<u64> = match source {
        Source::Batches(batches) => batches
            .iter()
            .scan(1u64, |next, batch| {
                let first = *next;
                *next += batch.num_rows() as u64;
                Some(first)
            })
            .collect(),
        Source::Parquet { .. } => Vec::new(),
    };
    let work = |t: usize| -> Result<Worker<'_, '_>> {
        let mut worker = Worker::new(spec, &plans, keys);
        match (source, &parquet) {
            (Source::Batches(batches), _) => {
                for (batch, first_row) in batches.iter().zip(&batch_starts).skip(t).step_by(threads) {
                    check_cancelled(spec.cancel)?;
                    worker.process(batch, *first_row)?;
                }
            }
            (Source::Parquet { path, schema, appended }, Some(file)) => {
                for &(group, start, rows, first_row) in file.units.iter().skip(t).step_by(threads) {
                    check_cancelled(spec.cancel)?;
                    let input = File::open(path)
                        .map_err(|source| Error::Io { path: path.display().to_string(), source })?;
                    let selection =
                        RowSelection::from(vec![RowSelector::skip(start), RowSelector::select(rows)]);
                    let reader =
                        ParquetRecordBatchReaderBuilder::new_with_metadata(input, file.metadata.clone())
                            .with_projection(file.projection.clone())
                            .with_row_groups(vec![group])
                            .with_row_selection(selection)
                            .with_batch_size(32 * 1024)
                            .build()
                            .map_err(parquet_error(path))?;
                    let mut next_row = first_row;
                    for batch in reader {
                        let batch = batch.map_err(|e| parquet_error(path)(e.into()))?;
                        let rows = batch.num_rows() as u64;
                        worker.process(&canonical(batch, schema)?, next_row)?;
                        next_row += rows;
                    }
                }
                // The appended batches are units too, numbered after the file's: unit
                // `units + j` goes to worker `(units + j) mod threads`.
                let first = (t + threads - file.units.len() % threads) % threads;
                let mut next_row = file.rows + 1;
                for (j, batch) in appended.iter().enumerate() {
                    if j % threads == first {
                        check_cancelled(spec.cancel)?;
                        worker.process(batch, next_row)?;
                    }
                    next_row += batch.num_rows() as u64;
                }
            }
            (Source::Parquet { .. }, None) => {
                return Err(Error::Internal("a Parquet scan without its file".into()));
            }
        }
        Ok(worker)
    };
    let workers: Vec<Result<Worker<'_, '_>>> = {
        let _span = tracing::info_span!("scan_read", threads).entered();
        pool.install(|| (0..threads).into_par_iter().map(work).collect())
    };
    let _span = tracing::info_span!("scan_merge", instants = spec.instants.len()).entered();
    let workers = workers.into_iter().collect::<Result<Vec<_>>>()?;
    let (instants, aggregates) = (spec.instants.len(), spec.aggregates.len());
    let mut seen: Vec<Seen> = Vec::new();
    let mut missing_key_rows = Vec::new();
    // The states per aggregate, per worker (in worker order), per instant: each aggregate is
    // merged and finished on its own (on the scan's threads); worker order within an
    // aggregate is what a single-threaded merge would follow, so results are the same.
    let mut states: Vec<Vec<Vec<Box<dyn Accumulator>>>> =
        (0..aggregates).map(|_| Vec::with_capacity(threads)).collect();
    for worker in workers {
        if seen.is_empty() {
            seen = worker.seen;
        } else {
            for (mine, theirs) in seen.iter_mut().zip(worker.seen) {
                mine.counts.read += theirs.counts.read;
                mine.counts.used += theirs.counts.used;
                mine.counts.ignored_after_as_of += theirs.counts.ignored_after_as_of;
                mine.counts.ignored_no_time += theirs.counts.ignored_no_time;
                mine.counts.rejected_no_key += theirs.counts.rejected_no_key;
                mine.before += theirs.before;
                mine.unknown_sample.merge(theirs.unknown_sample);
            }
        }
        missing_key_rows.extend(worker.missing_key_rows);
        let mut mine: Vec<Vec<Box<dyn Accumulator>>> =
            (0..aggregates).map(|_| Vec::with_capacity(instants)).collect();
        for at_instant in worker.accs {
            for (n, acc) in at_instant.into_iter().enumerate() {
                mine[n].push(acc);
            }
        }
        for (n, states_of_worker) in mine.into_iter().enumerate() {
            states[n].push(states_of_worker);
        }
    }
    if seen.len() != instants {
        return Err(Error::Internal("a scan without workers".into()));
    }
    missing_key_rows.sort_unstable();
    type Finished = (Vec<ArrayRef>, Option<Box<dyn Accumulator>>);
    let finish_aggregate = |n: usize, by_worker: Vec<Vec<Box<dyn Accumulator>>>| -> Result<Finished> {
        let mut by_worker = by_worker.into_iter();
        let mut accs = by_worker.next().ok_or_else(|| Error::Internal("a scan without workers".into()))?;
        for theirs in by_worker {
            for (acc, other) in accs.iter_mut().zip(theirs) {
                acc.merge(other).map_err(|e| named(e, spec, n))?;
            }
        }
        // Carried aggregates: instant k holds its own events only until the state of instant
        // k - 1 is folded in.
        let mut carried: Option<Box<dyn Accumulator>> = None;
        let mut columns = Vec::with_capacity(accs.len());
        let mut last = None;
        for mut acc in accs {
            if plans.carried[n] {
                if let Some(earlier) = carried.take() {
                    acc.merge(earlier).map_err(|e| named(e, spec, n))?;
                }
                carried = acc.fork();
            }
            columns.push(acc.finish().map_err(|e| named(e, spec, n))?);
            last = Some(acc);
        }
        Ok((columns, last))
    };
    let finished: Vec<Result<Finished>> = pool.install(|| {
        states.into_par_iter().enumerate().map(|(n, by_worker)| finish_aggregate(n, by_worker)).collect()
    });
    // The first failing aggregate in trait order, whatever thread finished first.
    let mut by_instant: Vec<Vec<ArrayRef>> = (0..instants).map(|_| Vec::with_capacity(aggregates)).collect();
    let mut states = Vec::with_capacity(aggregates);
    for finished in finished {
        let (columns, last) = finished?;
        for (k, column) in columns.into_iter().enumerate() {
            by_instant[k].push(column);
        }
        states.push(last.ok_or_else(|| Error::Internal("a scan without instants".into()))?);
    }
    let mut results = Vec::with_capacity(instants);
    for (columns, seen) in by_instant.into_iter().zip(seen) {
        let mut counts = seen.counts;
        counts.ignored_unknown_entity = seen.before - counts.used;
        let keys = EventKeys {
            unknown_sample: seen.unknown_sample.keys.into_iter().collect(),
            missing_key_rows: missing_key_rows.clone(),
        };
        results.push(ScanResult { columns, counts, keys });
    }
    Ok((results, states))
}

/// A map from the text of keys in an array to their row index.
pub(crate) fn key_map(keys: &ArrayRef) -> Result<KeyMap> {
    let text = cast(keys, &DataType::Utf8)?;
    let text = text.as_string::<i32>();
    Ok(KeyMap::new(text.iter().enumerate().filter_map(|(i, k)| k.map(|k| (k, i as u32)))))
}

/// A map from the keys of `owners` (events belong to them) to the index, among `targets`, of
/// each owner's parent (through `owner_parent`, the owner's column holding the parent key).
pub(crate) fn key_map_through(
    owner_keys: &ArrayRef,
    owner_parent: &ArrayRef,
    targets: &KeyMap,
) -> Result<KeyMap> {
    let owners = cast(owner_keys, &DataType::Utf8)?;
    let parents = cast(owner_parent, &DataType::Utf8)?;
    let (owners, parents): (&StringArray, &StringArray) =
        (owners.as_string::<i32>(), parents.as_string::<i32>());
    let pairs: Vec<(&str, u32)> = owners
        .iter()
        .zip(parents.iter())
        .filter_map(|(owner, parent)| Some((owner?, targets.get(parent?))))
        .filter(|(_, index)| *index != UNKNOWN)
        .collect();
    Ok(KeyMap::new(pairs.into_iter()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{DayPart, DaysSpec};
    use arrow::array::{Float64Array, StringViewArray};
    use arrow::datatypes::{Float64Type, Int64Type};
    use segmenta_core::{MICROS_PER_DAY, ValueType};
    use segmenta_rules::ast::{ColumnInfo, ColumnSource};

    #[test]
    fn purchase_days_summarise_by_utc_day() {
        const DAY: i64 = MICROS_PER_DAY;
        // Entity 0: two purchases on day 10 (3 + 4), one on day 12 (5), one on day 12 again (1);
        // entity 1: none; entity 2: one on day 11 with a NULL amount; unknown key: ignored.
        let rows: Vec<(&str, i64, Option<f64>)> = vec![
            ("a", 10 * DAY + 5, Some(3.0)),
            ("a", 10 * DAY + DAY - 1, Some(4.0)),
            ("a", 12 * DAY, Some(5.0)),
            ("c", 11 * DAY + 7, None),
            ("zz", 11 * DAY, Some(100.0)),
            ("a", 12 * DAY + 9, Some(1.0)),
            ("a", 20 * DAY, Some(50.0)), // at the as-of instant: not counted
        ];
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, true),
            Field::new(
                "ts",
                DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, Some(UTC.into())),
                true,
            ),
            Field::new("amount", DataType::Float64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())),
                Arc::new(
                    TimestampMicrosecondArray::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())
                        .with_timezone(UTC),
                ),
                Arc::new(Float64Array::from(rows.iter().map(|r| r.2).collect::<Vec<_>>())),
            ],
        )
        .expect("a batch");
        let amount =
            ColumnInfo { column: "amount".into(), ty: ValueType::Float, source: ColumnSource::EventColumn };
        let parts =
            [DayPart::Distinct, DayPart::First, DayPart::Last, DayPart::Total, DayPart::FirstDayTotal];
        let aggregates: Vec<Aggregate> = parts
            .iter()
            .map(|part| {
                Aggregate::Days(DaysSpec {
                    condition: None,
                    amount: Some(amount.clone()),
                    part: *part,
                    within: None,
                })
            })
            .collect();
        let keys = KeyMap::new(["a", "b", "c"].iter().enumerate().map(|(i, k)| (*k, i as u32)));
        let batches = vec![batch.slice(0, 3), batch.slice(3, 4)];
        for threads in [1, 2] {
            let spec = ScanSpec {
                key: "k",
                time: "ts",
                aggregates: aggregates.iter().collect(),
                names: Vec::new(),
                instants: &[20 * DAY],
                entities: 3,
                threads,
                cancel: &Cancel::new(),
                pool: None,
            };
            let result = scan(&Source::Batches(&batches), &keys, &spec, &[]).expect("scans").remove(0);
            let ints = |c: usize| -> Vec<Option<i64>> {
                result.columns[c].as_primitive::<Int64Type>().iter().collect()
            };
            let floats = |c: usize| -> Vec<Option<f64>> {
                result.columns[c].as_primitive::<Float64Type>().iter().collect()
            };
            assert_eq!(ints(0), [Some(2), Some(0), Some(1)]);
            assert_eq!(ints(1), [Some(10), None, Some(11)]);
            assert_eq!(ints(2), [Some(12), None, Some(11)]);
            assert_eq!(floats(3), [Some(13.0), Some(0.0), Some(0.0)]);
            assert_eq!(floats(4), [Some(7.0), None, Some(0.0)]);
            assert_eq!(result.counts.read, 7);
            assert_eq!((result.counts.used, result.counts.ignored_unknown_entity), (5, 1));
            assert_eq!(result.counts.ignored_after_as_of, 1);
        }
    }

    #[test]
    fn key_map_finds_short_and_long_keys_from_text_and_views() {
        let keys = ["A1", "exactly12byt", "thirteen_byte", "", "é€"];
        let map = KeyMap::new(keys.iter().enumerate().map(|(i, k)| (*k, i as u32)));
        for (i, key) in keys.iter().enumerate() {
            assert_eq!(map.get(key), i as u32, "{key}");
        }
        assert_eq!(map.get("A2"), UNKNOWN);
        assert_eq!(map.get("thirteen_bytf"), UNKNOWN);
        let views = StringViewArray::from(vec!["exactly12byt", "A1", "nope", "thirteen_byte", "", "é€"]);
        let found: Vec<u32> = (0..views.len()).map(|i| map.get_view(&views, i)).collect();
        assert_eq!(found, [1, 0, UNKNOWN, 2, 3, 4]);
    }
}
