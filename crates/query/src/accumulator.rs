//! The scan's accumulators: per-entity state of one aggregate in one worker.
//!
//! Each way of folding rows is one type implementing [`Accumulator`] (update with a batch's
//! rows, merge a later worker's state, finish into a column), all in its own `impl` block.
//! [`recipe`] is the one place that maps an aggregate of the request to what the scan must
//! prepare for it (window, conditions, columns) and to its accumulator. Adding an aggregate
//! to the scan means a type here (or a new setting of one) and an arm in [`recipe`]; the scan
//! itself (`scan.rs`) does not change.
//!
//! The calls go through `dyn Accumulator` once per aggregate and batch (32k rows), so the
//! dynamic dispatch costs nothing measurable; the loops over rows inside are monomorphic.

use std::any::Any;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, Float64Array, Int64Array, TimestampMicrosecondArray,
};
use arrow::buffer::BooleanBuffer;
use arrow::compute::cast;
use arrow::datatypes::{DataType, Date32Type, Float64Type, Int64Type, TimestampMicrosecondType, UInt32Type};
use hashbrown::{HashMap, HashSet};
use segmenta_core::{Bounds, MICROS_PER_DAY, ValueType, Within};
use segmenta_rules::ast::{AggFunc, Fraction, TypedExpr, TypedValue};
use segmenta_rules::eval::{percentile_cont, percentile_disc_index};

use crate::lower::UTC;
use crate::request::{Aggregate, DayPart};
use crate::{Error, Location, Result};

/// What a batch offers an aggregate.
pub(crate) struct Input<'b> {
    /// Entity index per row.
    pub index: &'b [u32],
    /// The argument column (its NULL rows are already out of the mask).
    pub arg: Option<&'b ArrayRef>,
    /// The amount column of purchase days (read with its NULLs).
    pub amount: Option<&'b ArrayRef>,
    /// Event times, microseconds.
    pub times: &'b [i64],
    /// TRUE rows of the aggregate's own condition (`share(CONDITION)`).
    pub condition: Option<&'b BooleanBuffer>,
}

/// Per-entity state of one aggregate in one worker.
pub(crate) trait Accumulator: IntoAny + Send {
    /// Adds the rows of `mask` (in the window, matching the filter, with a non-NULL argument).
    fn update(&mut self, mask: &BooleanBuffer, input: &Input<'_>) -> Result<()>;
    /// Folds the state of a later worker (of the same aggregate) into this one.
    fn merge(&mut self, other: Box<dyn Accumulator>) -> Result<()>;
    /// The finished column, one value per entity. The state stays as it was: a live scan
    /// (`crate::live`) keeps folding later events into it.
    fn finish(&self) -> Result<ArrayRef>;
    /// A copy of the state, for aggregates whose result does not depend on the order rows
    /// arrive in (counts, integer sums, extremes, distinct counts, shares, percentiles); `None`
    /// for the others (float sums round in order, decayed points read the as-of instant).
    /// A scan at several instants folds each event once into the first instant that sees it
    /// and carries the state forward with these copies; the others fold each event into every
    /// instant that sees it, in the order a scan at that one instant would.
    fn fork(&self) -> Option<Box<dyn Accumulator>> {
        None
    }
}

/// Lets [`Accumulator::merge`] recover the concrete type of the other worker's state.
pub(crate) trait IntoAny {
    /// The value as `Any`.
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

impl<T: Any> IntoAny for T {
    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

fn same<T: 'static>(other: Box<dyn Accumulator>) -> Result<T> {
    other
        .into_any()
        .downcast::<T>()
        .map(|other| *other)
        .map_err(|_| Error::Internal("merging different aggregates".into()))
}

/// Builds an aggregate's accumulator for `n` entities.
pub(crate) type Make = Box<dyn Fn(usize) -> Box<dyn Accumulator> + Send + Sync>;

/// What the scan prepares for one aggregate, and its accumulator.
pub(crate) struct Recipe<'a> {
    /// The instants the window keeps (all before the as-of instant for no window).
    pub bounds: Bounds,
    /// The condition an event must meet.
    pub filter: Option<&'a TypedExpr>,
    /// The aggregate's own condition ([`Input::condition`]).
    pub condition: Option<&'a TypedExpr>,
    /// The argument (a column, or a value computed from columns); rows where it is NULL are
    /// skipped.
    pub arg: Option<&'a TypedValue>,
    /// The amount column, read with its NULLs.
    pub amount: Option<String>,
    /// The accumulator.
    pub make: Make,
}

/// An accumulator maker from a constructor.
fn make<A: Accumulator + 'static>(new: impl Fn(usize) -> A + Send + Sync + 'static) -> Make {
    Box::new(move |n| Box::new(new(n)))
}

/// How the scan computes `aggregate` as of `as_of`.
pub(crate) fn recipe(aggregate: &Aggregate, as_of: i64) -> Result<Recipe<'_>> {
    let bounds = |within: Option<Within>| Within::bounds_of(within, as_of);
    let extreme = |max: bool, source: IntSource, output: IntOutput| {
        make(move |n| ExtremeInt { best: Best::new(n, max), source, output })
    };
    Ok(match aggregate {
        Aggregate::Trait(t) => {
            let arg_type = t.arg.as_ref().and_then(TypedValue::value_type).unwrap_or(ValueType::Int);
            let output = t.output;
            let needs_arg = !matches!(
                t.agg,
                AggFunc::Count
                    | AggFunc::FirstSeen
                    | AggFunc::LastSeen
                    | AggFunc::DaysSinceFirst
                    | AggFunc::DaysSinceLast
                    | AggFunc::Share
            );
            if needs_arg && t.arg.is_none() {
                return Err(Error::Internal(format!("{} without an argument", t.agg.name())));
            }
            let max = t.agg == AggFunc::Max;
            let make = match t.agg {
                AggFunc::Count => make(|n| Count(vec![0; n])),
                AggFunc::Sum if output == ValueType::Int => make(|n| SumInt(vec![0; n])),
                AggFunc::Sum => make(|n| SumFloat { sums: vec![0.0; n], source: FloatSource::Arg }),
                AggFunc::Avg => make(|n| Avg { sums: vec![0.0; n], counts: vec![0; n] }),
                AggFunc::Min | AggFunc::Max if arg_type == ValueType::Float => {
                    make(move |n| ExtremeFloat(Best::new(n, max)))
                }
                AggFunc::Min | AggFunc::Max => extreme(max, IntSource::Arg, IntOutput::of(output)),
                AggFunc::FirstSeen => extreme(false, IntSource::Times, IntOutput::of(output)),
                AggFunc::LastSeen => extreme(true, IntSource::Times, IntOutput::of(output)),
                AggFunc::DaysSinceFirst => extreme(false, IntSource::Times, IntOutput::DaysSince(as_of)),
                AggFunc::DaysSinceLast => extreme(true, IntSource::Times, IntOutput::DaysSince(as_of)),
                AggFunc::CountDistinct => {
                    let strings = arg_type == ValueType::String;
                    make(move |n| Distinct::new(n, DistinctSource::Arg, strings.then(Interner::default)))
                }
                AggFunc::Median | AggFunc::Percentile(_) | AggFunc::PercentileDisc(_) => {
                    let fraction = t.agg.fraction().unwrap_or(Fraction::HALF);
                    let discrete = matches!(t.agg, AggFunc::PercentileDisc(_));
                    if discrete && arg_type == ValueType::Int {
                        make(move |n| Percentile::<i64> { values: vec![Vec::new(); n], fraction, discrete })
                    } else {
                        make(move |n| Percentile::<f64> { values: vec![Vec::new(); n], fraction, discrete })
                    }
                }
                AggFunc::Share => {
                    if t.condition.is_none() {
                        return Err(Error::Internal("share() without a condition".into()));
                    }
                    make(|n| Share { yes: vec![0; n], rows: vec![0; n] })
                }
            };
            Recipe {
                bounds: bounds(t.within),
                filter: t.filter.as_ref(),
                condition: t.condition.as_ref(),
                arg: t.arg.as_ref(),
                amount: None,
                make,
            }
        }
        Aggregate::Days(d) => {
            let make = match d.part {
                DayPart::Distinct => make(|n| Distinct::new(n, DistinctSource::Days, None)),
                DayPart::RepeatDays => make(|n| Distinct::new(n, DistinctSource::RepeatDays, None)),
                DayPart::First => extreme(false, IntSource::Days, IntOutput::Int),
                DayPart::Last => extreme(true, IntSource::Days, IntOutput::Int),
                DayPart::Total => make(|n| SumFloat { sums: vec![0.0; n], source: FloatSource::Amount }),
                DayPart::FirstDayTotal => {
                    make(|n| FirstDay { day: vec![0; n], total: vec![0.0; n], seen: vec![false; n] })
                }
            };
            Recipe {
                bounds: bounds(d.within),
                filter: d.condition.as_ref(),
                condition: None,
                // The amount is read without masking NULLs out: a purchase without an amount
                // still makes a purchase day.
                arg: None,
                amount: d.amount.as_ref().map(|a| a.column.clone()),
                make,
            }
        }
        Aggregate::Points(p) => {
            let (points, half_life) = (p.points, p.half_life.map(|h| h.micros() as f64));
            Recipe {
                bounds: bounds(p.within),
                filter: p.condition.as_ref(),
                condition: None,
                arg: None,
                amount: None,
                make: make(move |n| Points { totals: vec![0.0; n], points, half_life, as_of }),
            }
        }
        Aggregate::Value(_) => return Err(Error::Internal("a derived trait in the event scan".into())),
    })
}

fn ints(values: impl IntoIterator<Item = i64>) -> ArrayRef {
    Arc::new(values.into_iter().collect::<Int64Array>())
}

fn add_all<T: std::ops::AddAssign>(into: &mut [T], other: Vec<T>) {
    into.iter_mut().zip(other).for_each(|(a, b)| *a += b);
}

fn floats(arg: Option<&ArrayRef>) -> Result<ArrayRef> {
    let arg = arg.ok_or_else(|| Error::Internal("an aggregate lost its argument".into()))?;
    Ok(cast(arg, &DataType::Float64)?)
}

fn too_large() -> Error {
    Error::bad_input(
        Location::default(),
        "the sum is too large for a 64-bit integer",
        Some("sum a float instead (declare the column as \"float\" in columns), or narrow the trait with where or within".into()),
    )
}

/// `count(*)` and `count(col)` (NULL arguments are already out of the mask).
#[derive(Clone)]
struct Count(Vec<u64>);

impl Accumulator for Count {
    fn update(&mut self, mask: &BooleanBuffer, input: &Input<'_>) -> Result<()> {
        for i in mask.set_indices() {
            self.0[input.index[i] as usize] += 1;
        }
        Ok(())
    }
    fn merge(&mut self, other: Box<dyn Accumulator>) -> Result<()> {
        add_all(&mut self.0, same::<Self>(other)?.0);
        Ok(())
    }
    fn finish(&self) -> Result<ArrayRef> {
        Ok(ints(self.0.iter().map(|&c| c as i64)))
    }
    fn fork(&self) -> Option<Box<dyn Accumulator>> {
        Some(Box::new(self.clone()))
    }
}

/// `sum(col)` of integers: an error rather than a wrapped total. Totals are kept in 128 bits
/// (as DuckDB's `hugeint` sums), so only a total past 64 bits is an error, whatever the order
/// the rows came in.
#[derive(Clone)]
struct SumInt(Vec<i128>);

impl Accumulator for SumInt {
    fn update(&mut self, mask: &BooleanBuffer, input: &Input<'_>) -> Result<()> {
        let arg = input.arg.ok_or_else(|| Error::Internal("an aggregate lost its argument".into()))?;
        let values = cast(arg, &DataType::Int64)?;
        let values = values.as_primitive::<Int64Type>().values();
        for i in mask.set_indices() {
            self.0[input.index[i] as usize] += i128::from(values[i]);
        }
        Ok(())
    }
    fn merge(&mut self, other: Box<dyn Accumulator>) -> Result<()> {
        add_all(&mut self.0, same::<Self>(other)?.0);
        Ok(())
    }
    fn finish(&self) -> Result<ArrayRef> {
        let totals = self.0.iter().map(|&t| i64::try_from(t).map_err(|_| too_large()));
        Ok(ints(totals.collect::<Result<Vec<_>>>()?))
    }
    fn fork(&self) -> Option<Box<dyn Accumulator>> {
        Some(Box::new(self.clone()))
    }
}

/// Where a float sum reads its values.
#[derive(Clone, Copy)]
enum FloatSource {
    /// The argument column.
    Arg,
    /// The amount column, NULL as 0 (all zeros without one): purchase-day totals.
    Amount,
}

/// `sum(col)` of floats, and the total amount of purchase days.
struct SumFloat {
    sums: Vec<f64>,
    source: FloatSource,
}

impl Accumulator for SumFloat {
    fn update(&mut self, mask: &BooleanBuffer, input: &Input<'_>) -> Result<()> {
        match self.source {
            FloatSource::Arg => {
                let values = floats(input.arg)?;
                let values = values.as_primitive::<Float64Type>().values();
                for i in mask.set_indices() {
                    self.sums[input.index[i] as usize] += values[i];
                }
            }
            FloatSource::Amount => {
                let amounts = amounts(input.amount, input.times.len())?;
                for i in mask.set_indices() {
                    self.sums[input.index[i] as usize] += amounts[i];
                }
            }
        }
        Ok(())
    }
    fn merge(&mut self, other: Box<dyn Accumulator>) -> Result<()> {
        add_all(&mut self.sums, same::<Self>(other)?.sums);
        Ok(())
    }
    fn finish(&self) -> Result<ArrayRef> {
        Ok(Arc::new(Float64Array::from(self.sums.clone())))
    }
}

/// `avg(col)`: NULL without rows.
struct Avg {
    sums: Vec<f64>,
    counts: Vec<u64>,
}

impl Accumulator for Avg {
    fn update(&mut self, mask: &BooleanBuffer, input: &Input<'_>) -> Result<()> {
        let values = floats(input.arg)?;
        let values = values.as_primitive::<Float64Type>().values();
        for i in mask.set_indices() {
            let e = input.index[i] as usize;
            self.sums[e] += values[i];
            self.counts[e] += 1;
        }
        Ok(())
    }
    fn merge(&mut self, other: Box<dyn Accumulator>) -> Result<()> {
        let other = same::<Self>(other)?;
        add_all(&mut self.sums, other.sums);
        add_all(&mut self.counts, other.counts);
        Ok(())
    }
    fn finish(&self) -> Result<ArrayRef> {
        let values = self.sums.iter().zip(&self.counts).map(|(s, c)| (*c > 0).then(|| s / *c as f64));
        Ok(Arc::new(values.collect::<Float64Array>()))
    }
}

/// `share(CONDITION)`: the fraction of rows meeting the condition, NULL without rows.
#[derive(Clone)]
struct Share {
    yes: Vec<u64>,
    rows: Vec<u64>,
}

impl Accumulator for Share {
    fn update(&mut self, mask: &BooleanBuffer, input: &Input<'_>) -> Result<()> {
        let condition =
            input.condition.ok_or_else(|| Error::Internal("share() without a condition".into()))?;
        for i in mask.set_indices() {
            let e = input.index[i] as usize;
            self.rows[e] += 1;
            if condition.value(i) {
                self.yes[e] += 1;
            }
        }
        Ok(())
    }
    fn merge(&mut self, other: Box<dyn Accumulator>) -> Result<()> {
        let other = same::<Self>(other)?;
        add_all(&mut self.yes, other.yes);
        add_all(&mut self.rows, other.rows);
        Ok(())
    }
    fn finish(&self) -> Result<ArrayRef> {
        let values = self.yes.iter().zip(&self.rows).map(|(y, r)| (*r > 0).then(|| *y as f64 / *r as f64));
        Ok(Arc::new(values.collect::<Float64Array>()))
    }
    fn fork(&self) -> Option<Box<dyn Accumulator>> {
        Some(Box::new(self.clone()))
    }
}

/// Points per matching event, halved every `half_life` microseconds of age if set.
struct Points {
    totals: Vec<f64>,
    points: f64,
    half_life: Option<f64>,
    as_of: i64,
}

impl Accumulator for Points {
    fn update(&mut self, mask: &BooleanBuffer, input: &Input<'_>) -> Result<()> {
        for i in mask.set_indices() {
            let value = match self.half_life {
                None => self.points,
                Some(h) => self.points * (-((self.as_of - input.times[i]) as f64) / h).exp2(),
            };
            self.totals[input.index[i] as usize] += value;
        }
        Ok(())
    }
    fn merge(&mut self, other: Box<dyn Accumulator>) -> Result<()> {
        add_all(&mut self.totals, same::<Self>(other)?.totals);
        Ok(())
    }
    fn finish(&self) -> Result<ArrayRef> {
        Ok(Arc::new(Float64Array::from(self.totals.clone())))
    }
}

/// A value a percentile collects: integers (a discrete percentile of an int column) or floats.
trait Collected: Copy + Send + 'static {
    /// The argument's values (NULL rows are out of the mask).
    fn read(arg: &ArrayRef) -> Result<Vec<Self>>;
    /// Sorts ascending (floats in IEEE total order).
    fn sort(values: &mut [Self]);
    /// The finished column.
    fn column(values: Vec<Option<Self>>) -> ArrayRef;
    /// The continuous percentile of sorted values.
    fn continuous(sorted: &[Self], fraction: Fraction) -> Result<Option<Self>>;
}

impl Collected for i64 {
    fn read(arg: &ArrayRef) -> Result<Vec<i64>> {
        Ok(cast(arg, &DataType::Int64)?.as_primitive::<Int64Type>().values().to_vec())
    }
    fn sort(values: &mut [i64]) {
        values.sort_unstable();
    }
    fn column(values: Vec<Option<i64>>) -> ArrayRef {
        Arc::new(Int64Array::from(values))
    }
    fn continuous(_sorted: &[i64], _fraction: Fraction) -> Result<Option<i64>> {
        Err(Error::Internal("a continuous percentile collected as integers".into()))
    }
}

impl Collected for f64 {
    fn read(arg: &ArrayRef) -> Result<Vec<f64>> {
        Ok(floats(Some(arg))?.as_primitive::<Float64Type>().values().to_vec())
    }
    fn sort(values: &mut [f64]) {
        values.sort_unstable_by(f64::total_cmp);
    }
    fn column(values: Vec<Option<f64>>) -> ArrayRef {
        Arc::new(Float64Array::from(values))
    }
    fn continuous(sorted: &[f64], fraction: Fraction) -> Result<Option<f64>> {
        Ok(percentile_cont(sorted, fraction))
    }
}

/// `median`, `percentile` and `percentile_disc`: every value per entity, sorted when finished
/// (the value lists of later workers appended; the order of equal values does not matter).
#[derive(Clone)]
struct Percentile<T> {
    values: Vec<Vec<T>>,
    fraction: Fraction,
    discrete: bool,
}

impl<T: Collected> Accumulator for Percentile<T> {
    fn update(&mut self, mask: &BooleanBuffer, input: &Input<'_>) -> Result<()> {
        let arg = input.arg.ok_or_else(|| Error::Internal("an aggregate lost its argument".into()))?;
        let values = T::read(arg)?;
        for i in mask.set_indices() {
            self.values[input.index[i] as usize].push(values[i]);
        }
        Ok(())
    }
    fn merge(&mut self, other: Box<dyn Accumulator>) -> Result<()> {
        for (mine, theirs) in self.values.iter_mut().zip(same::<Self>(other)?.values) {
            mine.extend(theirs);
        }
        Ok(())
    }
    fn finish(&self) -> Result<ArrayRef> {
        let (fraction, discrete) = (self.fraction, self.discrete);
        let finished = self.values.iter().map(|values| {
            let mut values = values.clone();
            T::sort(&mut values);
            if discrete {
                return Ok(percentile_disc_index(values.len(), fraction).map(|i| values[i]));
            }
            // `recipe` collects a continuous percentile as floats.
            T::continuous(&values, fraction)
        });
        Ok(T::column(finished.collect::<Result<_>>()?))
    }
    fn fork(&self) -> Option<Box<dyn Accumulator>> {
        Some(Box::new(self.clone()))
    }
}

/// A value type with the order its extremes follow.
trait Ordered: Copy + Default {
    /// Whether `self` replaces `best` (greater for a max, smaller for a min).
    fn beats(self, best: Self, max: bool) -> bool;
}

impl Ordered for i64 {
    fn beats(self, best: i64, max: bool) -> bool {
        if max { self > best } else { self < best }
    }
}

impl Ordered for f64 {
    /// IEEE total order, like Arrow's min and max kernels.
    fn beats(self, best: f64, max: bool) -> bool {
        let order = self.total_cmp(&best);
        if max { order.is_gt() } else { order.is_lt() }
    }
}

/// The smallest or largest value per entity, and whether there is one.
#[derive(Clone)]
struct Best<T> {
    values: Vec<T>,
    seen: Vec<bool>,
    max: bool,
}

impl<T: Ordered> Best<T> {
    fn new(n: usize, max: bool) -> Best<T> {
        Best { values: vec![T::default(); n], seen: vec![false; n], max }
    }

    #[inline]
    fn offer(&mut self, e: usize, v: T) {
        if !self.seen[e] || v.beats(self.values[e], self.max) {
            self.values[e] = v;
            self.seen[e] = true;
        }
    }

    fn absorb(&mut self, other: Best<T>) {
        for (e, (v, seen)) in other.values.into_iter().zip(other.seen).enumerate() {
            if seen {
                self.offer(e, v);
            }
        }
    }

    fn present(&self) -> impl Iterator<Item = Option<T>> + '_ {
        self.values.iter().zip(&self.seen).map(|(v, s)| s.then_some(*v))
    }
}

/// Where an integer extreme reads its values.
#[derive(Clone, Copy)]
enum IntSource {
    /// The argument column (integers, dates as days, timestamps as microseconds).
    Arg,
    /// The event times.
    Times,
    /// The UTC calendar day of the event times.
    Days,
}

/// What an integer extreme becomes.
#[derive(Clone, Copy)]
enum IntOutput {
    Int,
    Date,
    Timestamp,
    /// Whole days from the value (a time) to this as-of instant.
    DaysSince(i64),
}

impl IntOutput {
    fn of(ty: ValueType) -> IntOutput {
        match ty {
            ValueType::Timestamp => IntOutput::Timestamp,
            ValueType::Date => IntOutput::Date,
            _ => IntOutput::Int,
        }
    }
}

/// `min`/`max` of integers, dates and timestamps, `first_seen`/`last_seen`, `days_since_*`,
/// and the first and last purchase days.
#[derive(Clone)]
struct ExtremeInt {
    best: Best<i64>,
    source: IntSource,
    output: IntOutput,
}

impl Accumulator for ExtremeInt {
    fn update(&mut self, mask: &BooleanBuffer, input: &Input<'_>) -> Result<()> {
        if let IntSource::Days = self.source {
            for i in mask.set_indices() {
                self.best.offer(input.index[i] as usize, input.times[i].div_euclid(MICROS_PER_DAY));
            }
            return Ok(());
        }
        let owned: Vec<i64>;
        let values: &[i64] = match (self.source, input.arg) {
            (IntSource::Times | IntSource::Days, _) => input.times,
            (IntSource::Arg, None) => return Err(Error::Internal("an aggregate lost its argument".into())),
            (IntSource::Arg, Some(array)) => match array.data_type() {
                DataType::Date32 => {
                    owned =
                        array.as_primitive::<Date32Type>().values().iter().map(|d| i64::from(*d)).collect();
                    &owned
                }
                DataType::Timestamp(_, _) => array.as_primitive::<TimestampMicrosecondType>().values(),
                _ => {
                    owned = cast(array, &DataType::Int64)?.as_primitive::<Int64Type>().values().to_vec();
                    &owned
                }
            },
        };
        for i in mask.set_indices() {
            self.best.offer(input.index[i] as usize, values[i]);
        }
        Ok(())
    }
    fn merge(&mut self, other: Box<dyn Accumulator>) -> Result<()> {
        self.best.absorb(same::<Self>(other)?.best);
        Ok(())
    }
    fn finish(&self) -> Result<ArrayRef> {
        let present = self.best.present();
        Ok(match self.output {
            // Events are strictly before the as-of instant: integer division is the floor.
            IntOutput::DaysSince(as_of) => {
                Arc::new(present.map(|t| t.map(|t| (as_of - t) / MICROS_PER_DAY)).collect::<Int64Array>())
            }
            IntOutput::Timestamp => {
                Arc::new(present.collect::<TimestampMicrosecondArray>().with_timezone(UTC))
            }
            IntOutput::Date => Arc::new(present.map(|d| d.map(|d| d as i32)).collect::<Date32Array>()),
            IntOutput::Int => Arc::new(present.collect::<Int64Array>()),
        })
    }
    fn fork(&self) -> Option<Box<dyn Accumulator>> {
        Some(Box::new(self.clone()))
    }
}

/// `min`/`max` of floats.
#[derive(Clone)]
struct ExtremeFloat(Best<f64>);

impl Accumulator for ExtremeFloat {
    fn update(&mut self, mask: &BooleanBuffer, input: &Input<'_>) -> Result<()> {
        let values = floats(input.arg)?;
        let values = values.as_primitive::<Float64Type>().values();
        for i in mask.set_indices() {
            self.0.offer(input.index[i] as usize, values[i]);
        }
        Ok(())
    }
    fn merge(&mut self, other: Box<dyn Accumulator>) -> Result<()> {
        self.0.absorb(same::<Self>(other)?.0);
        Ok(())
    }
    fn finish(&self) -> Result<ArrayRef> {
        Ok(Arc::new(self.0.present().collect::<Float64Array>()))
    }
    fn fork(&self) -> Option<Box<dyn Accumulator>> {
        Some(Box::new(self.clone()))
    }
}

/// Strings to small codes, per worker; merged by string.
#[derive(Default, Clone)]
struct Interner {
    codes: HashMap<Box<str>, u64>,
    strings: Vec<Box<str>>,
}

impl Interner {
    fn code(&mut self, s: &str) -> u64 {
        if let Some(code) = self.codes.get(s) {
            return *code;
        }
        let code = self.strings.len() as u64;
        self.strings.push(Box::from(s));
        self.codes.insert(Box::from(s), code);
        code
    }
}

/// What a distinct count counts.
#[derive(Clone, Copy)]
enum DistinctSource {
    /// Values of the argument column.
    Arg,
    /// UTC calendar days of the event times (purchase days).
    Days,
    /// The same days, counted less the first (repeat purchase days; 0 without any).
    RepeatDays,
}

/// `count_distinct(col)` and the number of purchase days: one set of (entity, value code)
/// pairs, string values interned per worker.
#[derive(Clone)]
struct Distinct {
    pairs: HashSet<(u32, u64)>,
    strings: Option<Interner>,
    source: DistinctSource,
    entities: usize,
}

impl Distinct {
    fn new(entities: usize, source: DistinctSource, strings: Option<Interner>) -> Distinct {
        Distinct { pairs: HashSet::new(), strings, source, entities }
    }
}

impl Accumulator for Distinct {
    fn update(&mut self, mask: &BooleanBuffer, input: &Input<'_>) -> Result<()> {
        let index = input.index;
        let array = match self.source {
            DistinctSource::Days | DistinctSource::RepeatDays => {
                for i in mask.set_indices() {
                    self.pairs.insert((index[i], input.times[i].div_euclid(MICROS_PER_DAY) as u64));
                }
                return Ok(());
            }
            DistinctSource::Arg => {
                input.arg.ok_or_else(|| Error::Internal("an aggregate lost its argument".into()))?
            }
        };
        match &mut self.strings {
            // Dictionary values are interned once per batch; plain strings per row.
            Some(interner) => {
                if let DataType::Dictionary(_, _) = array.data_type() {
                    let dictionary = array.as_any_dictionary();
                    let text = cast(dictionary.values(), &DataType::Utf8)?;
                    let text = text.as_string::<i32>();
                    let codes: Vec<u64> = text.iter().map(|v| interner.code(v.unwrap_or_default())).collect();
                    let keys = cast(dictionary.keys(), &DataType::UInt32)?;
                    let keys = keys.as_primitive::<UInt32Type>().values();
                    for i in mask.set_indices() {
                        self.pairs.insert((index[i], codes[keys[i] as usize]));
                    }
                } else {
                    let text = cast(array, &DataType::Utf8View)?;
                    let text = text.as_string_view();
                    for i in mask.set_indices() {
                        self.pairs.insert((index[i], interner.code(text.value(i))));
                    }
                }
            }
            None => {
                let bits = value_bits(array)?;
                for i in mask.set_indices() {
                    self.pairs.insert((index[i], bits[i]));
                }
            }
        }
        Ok(())
    }
    fn merge(&mut self, other: Box<dyn Accumulator>) -> Result<()> {
        let other = same::<Self>(other)?;
        match (&mut self.strings, other.strings) {
            (Some(global), Some(local)) => {
                let remap: Vec<u64> = local.strings.iter().map(|s| global.code(s)).collect();
                self.pairs.extend(other.pairs.into_iter().map(|(e, code)| (e, remap[code as usize])));
            }
            _ => self.pairs.extend(other.pairs),
        }
        Ok(())
    }
    fn finish(&self) -> Result<ArrayRef> {
        let mut counts = vec![0i64; self.entities];
        for &(e, _) in &self.pairs {
            counts[e as usize] += 1;
        }
        if let DistinctSource::RepeatDays = self.source {
            counts.iter_mut().for_each(|c| *c = (*c - 1).max(0));
        }
        Ok(ints(counts))
    }
    fn fork(&self) -> Option<Box<dyn Accumulator>> {
        Some(Box::new(self.clone()))
    }
}

/// The values of a non-string column as exact 64-bit codes (for distinct counts).
pub(crate) fn value_bits(array: &ArrayRef) -> Result<Vec<u64>> {
    Ok(match array.data_type() {
        DataType::Float64 => array
            .as_primitive::<Float64Type>()
            .values()
            .iter()
            // One NaN, one zero: distinct counts follow value equality of the total order.
            .map(|v| if v.is_nan() { f64::NAN.to_bits() } else { v.to_bits() })
            .collect(),
        DataType::Boolean => array.as_boolean().values().iter().map(u64::from).collect(),
        DataType::Date32 => array.as_primitive::<Date32Type>().values().iter().map(|v| *v as u64).collect(),
        _ => cast(array, &DataType::Int64)?
            .as_primitive::<Int64Type>()
            .values()
            .iter()
            .map(|v| *v as u64)
            .collect(),
    })
}

/// Amounts as floats, NULL as 0 (purchase-day totals); all zeros without an amount column.
fn amounts(amount: Option<&ArrayRef>, n: usize) -> Result<Vec<f64>> {
    let Some(array) = amount else { return Ok(vec![0.0; n]) };
    let values = cast(array, &DataType::Float64)?;
    let values = values.as_primitive::<Float64Type>();
    Ok((0..n).map(|i| if values.is_null(i) { 0.0 } else { values.value(i) }).collect())
}

/// The first purchase day and the amount spent on it (NULL without purchases).
struct FirstDay {
    day: Vec<i64>,
    total: Vec<f64>,
    seen: Vec<bool>,
}

impl FirstDay {
    fn add(&mut self, e: usize, day: i64, amount: f64) {
        if !self.seen[e] || day < self.day[e] {
            self.day[e] = day;
            self.total[e] = amount;
            self.seen[e] = true;
        } else if day == self.day[e] {
            self.total[e] += amount;
        }
    }
}

impl Accumulator for FirstDay {
    fn update(&mut self, mask: &BooleanBuffer, input: &Input<'_>) -> Result<()> {
        let amounts = amounts(input.amount, input.times.len())?;
        for i in mask.set_indices() {
            self.add(input.index[i] as usize, input.times[i].div_euclid(MICROS_PER_DAY), amounts[i]);
        }
        Ok(())
    }
    fn merge(&mut self, other: Box<dyn Accumulator>) -> Result<()> {
        let other = same::<Self>(other)?;
        for e in 0..other.day.len() {
            if other.seen[e] {
                self.add(e, other.day[e], other.total[e]);
            }
        }
        Ok(())
    }
    fn finish(&self) -> Result<ArrayRef> {
        let values = self.total.iter().zip(&self.seen).map(|(t, s)| s.then_some(*t));
        Ok(Arc::new(values.collect::<Float64Array>()))
    }
}
