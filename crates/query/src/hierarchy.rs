//! Rollups over an entity's hierarchy (`over = "children"` and `over = "descendants"`): the
//! tree of rows (each row's parent row, from the `hierarchy` column), checked for cycles once,
//! and the aggregates that decompose folded over it bottom-up in linear time.
//!
//! Aggregating (ancestor, descendant) pairs, joined to the rows and grouped by ancestor, was the
//! wall: the pairs are quadratic in depth, so with bench/hierarchy's eight rollups a chain of
//! 8,000 accounts took 23.1 s and one of 16,000 649 s (2 threads; docs/benchmarks.md), and
//! 100,000 was out of reach. Folded, they take 0.07 s, 0.17 s and 0.37 s. Here each row's own
//! contribution (its `where` condition and NULLs applied as the SQL aggregate applies them) is
//! computed once, and every node's descendants' total is the sum over its children of the
//! child's contribution plus the child's descendants' total, visiting children before parents
//! (the reverse of one breadth-first traversal from the roots):
//!
//! - `count()`, `count(col)`, `sum(col)`, `min(col)`, `max(col)` fold as themselves, `avg(col)`
//!   as a sum and a count, `share(c)` as the matching rows and those where `c` is TRUE;
//! - `count_distinct(col)` merges value sets small into large (each value moves O(log n) times);
//! - anything else (a percentile, a window, score points) is not foldable and stays on the pairs
//!   path ([`Tree::pairs`]).
//!
//! The values are those of the SQL path: empty counts and sums are 0, an empty `avg`, `min`,
//! `max` or `share` is NULL, an `int` sum wraps on overflow. Float sums may differ from it in
//! the last bits (they are added in another order), and conditions are read by the vectorized
//! evaluator (`-0.0` as the scan reads it). Rows whose parent is NULL or not a row are roots; a
//! cycle, for children and descendants alike, is an error naming the first row of the file whose
//! chain of parents never ends.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray, UInt32Array,
};
use arrow::buffer::BooleanBuffer;
use arrow::compute::{cast, concat_batches};
use arrow::datatypes::{
    DataType, Date32Type, Field, Float64Type, Int64Type, Schema, TimestampMicrosecondType,
};
use segmenta_core::ValueType;
use segmenta_core::hidden::{ANCESTOR, DESCENDANT};
use segmenta_rules::ast::{AggFunc, TypedTrait, TypedValue};

use crate::accumulator::value_bits;
use crate::lower::UTC;
use crate::request::{Aggregate, EntityData};
use crate::scan::true_bits;
use crate::vector::{Columns, evaluate};
use crate::{Error, Location, Result};

/// The rows of an entity as a forest: each row's parent row, and an order that visits every
/// parent before its children.
#[derive(Debug)]
pub(crate) struct Tree {
    /// The rows' keys as text, in the entity table's order.
    keys: StringArray,
    /// Each row's parent row; `None` for roots (NULL parents, parents that are not rows, rows
    /// without a key).
    parent: Vec<Option<u32>>,
    /// Every row, each parent before its children (breadth-first from the roots).
    order: Vec<u32>,
}

impl Tree {
    /// The tree of `entity`'s rows through its `column`; an error when a row is its own
    /// ancestor.
    pub(crate) fn new(entity: &EntityData, column: &str) -> Result<Tree> {
        let table = concat_batches(&entity.table.schema.arrow_schema(), &entity.table.batches)?;
        let text = |name: &str| -> Result<StringArray> {
            let array = table
                .column_by_name(name)
                .ok_or_else(|| Error::Internal(format!("column `{name}` missing from {}", entity.source)))?;
            Ok(cast(array, &DataType::Utf8)?.as_string::<i32>().clone())
        };
        let (keys, parents) = (text(&entity.key)?, text(column)?);
        Tree::from_keys(keys, &parents).map_err(|row| {
            Error::bad_input(
                Location { file: entity.source.clone(), line: None, column: Some(column.to_string()) },
                format!("the hierarchy has a cycle through `{}`", row.value),
                Some(format!("`{column}` must point up a tree: no row may be its own ancestor")),
            )
        })
    }

    /// The tree from keys and parent keys (text); the error holds the key of the first row
    /// whose chain of parents never ends.
    fn from_keys(keys: StringArray, parents: &StringArray) -> Result<Tree, CycleAt> {
        let n = keys.len();
        let index: HashMap<&str, u32> =
            keys.iter().enumerate().filter_map(|(i, k)| k.map(|k| (k, i as u32))).collect();
        let parent: Vec<Option<u32>> = (0..n)
            .map(|row| {
                let known = keys.is_valid(row) && parents.is_valid(row);
                known.then(|| index.get(parents.value(row)).copied()).flatten()
            })
            .collect();
        // Children of each row, contiguous (compressed sparse rows), in row order.
        let mut starts = vec![0u32; n + 1];
        for p in parent.iter().flatten() {
            starts[*p as usize + 1] += 1;
        }
        for i in 0..n {
            starts[i + 1] += starts[i];
        }
        let mut next = starts.clone();
        let mut children = vec![0u32; starts[n] as usize];
        for (row, p) in parent.iter().enumerate() {
            if let Some(p) = p {
                children[next[*p as usize] as usize] = row as u32;
                next[*p as usize] += 1;
            }
        }
        let mut order: Vec<u32> = (0..n as u32).filter(|&row| parent[row as usize].is_none()).collect();
        let mut visit = 0;
        while visit < order.len() {
            let row = order[visit] as usize;
            order.extend_from_slice(&children[starts[row] as usize..starts[row + 1] as usize]);
            visit += 1;
        }
        // A row no root reaches has an endless chain of parents: it lies on a cycle or below one.
        if order.len() < n {
            let mut reached = vec![false; n];
            order.iter().for_each(|&row| reached[row as usize] = true);
            let row = reached.iter().position(|r| !r).expect("fewer rows reached than there are");
            return Err(CycleAt { value: keys.value(row).to_string() });
        }
        Ok(Tree { keys, parent, order })
    }

    /// The rows of `batch` (the entity's rows in any order, with its key column `key`) in the
    /// tree's order: the permutation to apply, `None` when they are in it already.
    pub(crate) fn alignment(&self, batch: &RecordBatch, key: &str) -> Result<Option<UInt32Array>> {
        let array =
            batch.column_by_name(key).ok_or_else(|| Error::Internal(format!("no key column `{key}`")))?;
        let keys = cast(array, &DataType::Utf8)?;
        let keys = keys.as_string::<i32>();
        if keys == &self.keys {
            return Ok(None);
        }
        let index: HashMap<&str, u32> =
            keys.iter().enumerate().filter_map(|(i, k)| k.map(|k| (k, i as u32))).collect();
        let mut rows = Vec::with_capacity(self.keys.len());
        for key in &self.keys {
            match key.and_then(|k| index.get(k)) {
                Some(row) if keys.len() == self.keys.len() => rows.push(*row),
                _ => {
                    return Err(Error::Internal(
                        "the entity's rows changed before its hierarchy rollups".into(),
                    ));
                }
            }
        }
        Ok(Some(UInt32Array::from(rows)))
    }

    /// For each row, the fold with `add` of `own` over its children (or all its descendants),
    /// from `zero`.
    fn fold<S: Copy>(&self, own: &[S], zero: S, descendants: bool, add: impl Fn(S, S) -> S) -> Vec<S> {
        let mut total = vec![zero; own.len()];
        if descendants {
            // Children before parents: a row's total is complete when it is passed up.
            for &row in self.order.iter().rev() {
                if let Some(p) = self.parent[row as usize] {
                    let up = add(own[row as usize], total[row as usize]);
                    total[p as usize] = add(total[p as usize], up);
                }
            }
        } else {
            for (row, p) in self.parent.iter().enumerate() {
                if let Some(p) = p {
                    total[*p as usize] = add(total[*p as usize], own[row]);
                }
            }
        }
        total
    }

    /// For each row, the number of distinct values among its children's (or descendants') own
    /// values, by merging sets small into large.
    fn count_distinct(&self, own: &[Option<u64>], descendants: bool) -> Vec<i64> {
        let mut counts = vec![0i64; own.len()];
        if !descendants {
            let mut seen: HashSet<(u32, u64)> = HashSet::new();
            for (row, p) in self.parent.iter().enumerate() {
                if let (Some(p), Some(value)) = (p, own[row])
                    && seen.insert((*p, value))
                {
                    counts[*p as usize] += 1;
                }
            }
            return counts;
        }
        // The values of each row's descendants, complete when the row is visited.
        let mut sets: Vec<HashSet<u64>> = vec![HashSet::new(); own.len()];
        for &row in self.order.iter().rev() {
            let row = row as usize;
            let mut set = std::mem::take(&mut sets[row]);
            counts[row] = set.len() as i64;
            let Some(p) = self.parent[row] else { continue };
            set.extend(own[row]);
            let target = &mut sets[p as usize];
            if target.len() < set.len() {
                std::mem::swap(target, &mut set);
            }
            target.extend(set);
        }
        counts
    }

    /// (ancestor, descendant) pairs of keys as text, for direct children or all descendants:
    /// the rows the aggregates that do not fold are grouped over.
    pub(crate) fn pairs(&self, descendants: bool) -> Result<RecordBatch> {
        let mut ancestors = Vec::new();
        let mut members = Vec::new();
        for (row, key) in self.keys.iter().enumerate() {
            let Some(key) = key else { continue };
            let mut current = self.parent[row];
            while let Some(ancestor) = current {
                ancestors.push(self.keys.value(ancestor as usize));
                members.push(key);
                if !descendants {
                    break;
                }
                current = self.parent[ancestor as usize];
            }
        }
        let schema = Schema::new(vec![
            Field::new(ANCESTOR, DataType::Utf8, false),
            Field::new(DESCENDANT, DataType::Utf8, false),
        ]);
        Ok(RecordBatch::try_new(
            Arc::new(schema),
            vec![Arc::new(StringArray::from(ancestors)), Arc::new(StringArray::from(members))],
        )?)
    }
}

/// The key of the first row on (or below) a cycle.
#[derive(Debug)]
struct CycleAt {
    value: String,
}

/// Whether `aggregate` folds over the tree (otherwise it is aggregated over pairs).
pub(crate) fn foldable(aggregate: &Aggregate) -> bool {
    let Aggregate::Trait(t) = aggregate else { return false };
    let arg = t.arg.as_ref().and_then(TypedValue::value_type);
    let numeric = matches!(arg, Some(ValueType::Int | ValueType::Float));
    let ordered = numeric || matches!(arg, Some(ValueType::Date | ValueType::Timestamp));
    t.within.is_none()
        && match t.agg {
            AggFunc::Count | AggFunc::CountDistinct => true,
            AggFunc::Sum | AggFunc::Avg => numeric,
            AggFunc::Min | AggFunc::Max => ordered && t.output == arg.unwrap_or(t.output),
            AggFunc::Share => t.condition.is_some(),
            _ => false,
        }
}

/// Each aggregate (all [`foldable`]) over the children (or descendants) of every row of
/// `rows`, which holds the entity's rows in the tree's order with the columns they read.
pub(crate) fn rollups(
    tree: &Tree,
    rows: &RecordBatch,
    aggregates: &[&Aggregate],
    descendants: bool,
) -> Result<Vec<ArrayRef>> {
    if rows.num_rows() != tree.keys.len() {
        return Err(Error::Internal("hierarchy rollups over rows that are not the tree's".into()));
    }
    let columns = Columns::new(rows);
    aggregates
        .iter()
        .map(|aggregate| match aggregate {
            Aggregate::Trait(t) => rollup(tree, rows, &columns, t, descendants),
            _ => Err(Error::Internal("a hierarchy rollup that does not fold".into())),
        })
        .collect()
}

/// One trait over the tree.
fn rollup(
    tree: &Tree,
    rows: &RecordBatch,
    columns: &Columns<'_>,
    t: &TypedTrait,
    descendants: bool,
) -> Result<ArrayRef> {
    let n = rows.num_rows();
    // The rows the aggregate sees: its `where` condition TRUE, and its argument not NULL.
    let mut seen = match &t.filter {
        Some(filter) => true_bits(&evaluate(filter, columns)?),
        None => BooleanBuffer::new_set(n),
    };
    let arg = t.arg.as_ref().map(|a| crate::vector::value_array(a, columns)).transpose()?;
    let arg = arg.as_ref();
    if let Some(nulls) = arg.and_then(|a| a.logical_nulls()) {
        seen = &seen & nulls.inner();
    }
    let arg_type = t.arg.as_ref().and_then(TypedValue::value_type);
    let floats = || -> Result<Vec<f64>> {
        let values = cast(
            arg.ok_or_else(|| Error::Internal("a rollup lost its argument".into()))?,
            &DataType::Float64,
        )?;
        Ok(values.as_primitive::<Float64Type>().values().to_vec())
    };
    let ints = || -> Result<Vec<i64>> {
        let array = arg.ok_or_else(|| Error::Internal("a rollup lost its argument".into()))?;
        Ok(match array.data_type() {
            DataType::Date32 => {
                array.as_primitive::<Date32Type>().values().iter().map(|d| i64::from(*d)).collect()
            }
            DataType::Timestamp(_, _) => cast(array, &crate::lower::timestamp_type())?
                .as_primitive::<TimestampMicrosecondType>()
                .values()
                .to_vec(),
            _ => cast(array, &DataType::Int64)?.as_primitive::<Int64Type>().values().to_vec(),
        })
    };
    Ok(match t.agg {
        AggFunc::Count => {
            let own: Vec<i64> = (0..n).map(|i| i64::from(seen.value(i))).collect();
            Arc::new(Int64Array::from(tree.fold(&own, 0, descendants, |a, b| a + b)))
        }
        AggFunc::Sum if t.output == ValueType::Int => {
            let values = ints()?;
            let own: Vec<i64> = (0..n).map(|i| if seen.value(i) { values[i] } else { 0 }).collect();
            Arc::new(Int64Array::from(tree.fold(&own, 0, descendants, i64::wrapping_add)))
        }
        AggFunc::Sum => {
            let values = floats()?;
            let own: Vec<f64> = (0..n).map(|i| if seen.value(i) { values[i] } else { 0.0 }).collect();
            Arc::new(Float64Array::from(tree.fold(&own, 0.0, descendants, |a, b| a + b)))
        }
        AggFunc::Avg => {
            let values = floats()?;
            let own: Vec<(f64, i64)> =
                (0..n).map(|i| if seen.value(i) { (values[i], 1) } else { (0.0, 0) }).collect();
            let totals = tree.fold(&own, (0.0, 0), descendants, |a, b| (a.0 + b.0, a.1 + b.1));
            Arc::new(
                totals
                    .into_iter()
                    .map(|(sum, count)| (count > 0).then(|| sum / count as f64))
                    .collect::<Float64Array>(),
            )
        }
        AggFunc::Min | AggFunc::Max if arg_type == Some(ValueType::Float) => {
            let max = t.agg == AggFunc::Max;
            let values = floats()?;
            let own: Vec<Option<f64>> = (0..n).map(|i| seen.value(i).then(|| values[i])).collect();
            // IEEE total order, like DataFusion's min and max.
            let best = |a: Option<f64>, b: Option<f64>| match (a, b) {
                (Some(a), Some(b)) => Some(if a.total_cmp(&b).is_lt() == max { b } else { a }),
                (a, b) => a.or(b),
            };
            Arc::new(Float64Array::from(tree.fold(&own, None, descendants, best)))
        }
        AggFunc::Min | AggFunc::Max => {
            let max = t.agg == AggFunc::Max;
            let values = ints()?;
            let own: Vec<Option<i64>> = (0..n).map(|i| seen.value(i).then(|| values[i])).collect();
            let best = |a: Option<i64>, b: Option<i64>| match (a, b) {
                (Some(a), Some(b)) => Some(if max { a.max(b) } else { a.min(b) }),
                (a, b) => a.or(b),
            };
            let totals = tree.fold(&own, None, descendants, best);
            match arg_type {
                Some(ValueType::Date) => {
                    Arc::new(totals.into_iter().map(|d| d.map(|d| d as i32)).collect::<Date32Array>())
                }
                Some(ValueType::Timestamp) => {
                    Arc::new(TimestampMicrosecondArray::from(totals).with_timezone(UTC))
                }
                _ => Arc::new(Int64Array::from(totals)),
            }
        }
        AggFunc::Share => {
            let condition =
                t.condition.as_ref().ok_or_else(|| Error::Internal("share() without a condition".into()))?;
            let yes = &seen & &true_bits(&evaluate(condition, columns)?);
            let own: Vec<(i64, i64)> =
                (0..n).map(|i| (i64::from(yes.value(i)), i64::from(seen.value(i)))).collect();
            let totals = tree.fold(&own, (0, 0), descendants, |a, b| (a.0 + b.0, a.1 + b.1));
            Arc::new(
                totals
                    .into_iter()
                    .map(|(yes, rows)| (rows > 0).then(|| yes as f64 / rows as f64))
                    .collect::<Float64Array>(),
            )
        }
        AggFunc::CountDistinct => {
            let array = arg.ok_or_else(|| Error::Internal("a rollup lost its argument".into()))?;
            let codes = distinct_codes(array)?;
            let own: Vec<Option<u64>> = (0..n).map(|i| seen.value(i).then(|| codes[i])).collect();
            Arc::new(Int64Array::from(tree.count_distinct(&own, descendants)))
        }
        other => return Err(Error::Internal(format!("{}() does not fold over a hierarchy", other.name()))),
    })
}

/// Each row's value as a code: equal codes for equal values (strings numbered in order of
/// appearance, other types by their bits, as the scan's distinct counts read them).
fn distinct_codes(array: &ArrayRef) -> Result<Vec<u64>> {
    if !matches!(
        array.data_type(),
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 | DataType::Dictionary(_, _)
    ) {
        return value_bits(array);
    }
    let text = cast(array, &DataType::Utf8)?;
    let text = text.as_string::<i32>();
    let mut codes: HashMap<&str, u64> = HashMap::new();
    Ok(text
        .iter()
        .map(|value| {
            let next = codes.len() as u64;
            *codes.entry(value.unwrap_or_default()).or_insert(next)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::TableSchema;
    use crate::request::Table;

    fn tree(keys: &[&str], parents: &[Option<&str>]) -> Result<Tree, CycleAt> {
        Tree::from_keys(StringArray::from(keys.to_vec()), &StringArray::from(parents.to_vec()))
    }

    fn pairs(tree: &Tree, descendants: bool) -> Vec<String> {
        let batch = tree.pairs(descendants).expect("valid pairs");
        let (a, d) = (batch.column(0).as_string::<i32>(), batch.column(1).as_string::<i32>());
        let mut out: Vec<String> =
            (0..batch.num_rows()).map(|i| format!("{}>{}", a.value(i), d.value(i))).collect();
        out.sort();
        out
    }

    #[test]
    fn hierarchy_pairs_children_and_descendants() {
        // a is the root; b and c are its children; d is b's child; e points to an unknown row.
        let t = tree(&["a", "b", "c", "d", "e"], &[None, Some("a"), Some("a"), Some("b"), Some("zz")])
            .expect("a tree");
        assert_eq!(pairs(&t, false), ["a>b", "a>c", "b>d"]);
        assert_eq!(pairs(&t, true), ["a>b", "a>c", "a>d", "b>d"]);
    }

    #[test]
    fn hierarchy_order_puts_parents_before_children() {
        let t = tree(&["d", "c", "b", "a"], &[Some("c"), Some("b"), Some("a"), None]).expect("a chain");
        assert_eq!(t.order, [3, 2, 1, 0]);
        let own = [1i64, 10, 100, 1000];
        assert_eq!(t.fold(&own, 0, true, |a, b| a + b), [0, 1, 11, 111]);
        assert_eq!(t.fold(&own, 0, false, |a, b| a + b), [0, 1, 10, 100]);
    }

    #[test]
    fn hierarchy_cycles_are_located_errors() {
        let schema =
            TableSchema { columns: vec![("id".into(), ValueType::String), ("up".into(), ValueType::String)] };
        let keys = StringArray::from(vec!["a", "b", "c"]);
        let parents = StringArray::from(vec![Some("c"), Some("a"), Some("b")]);
        let batch = RecordBatch::try_new(schema.arrow_schema(), vec![Arc::new(keys), Arc::new(parents)])
            .expect("two string columns");
        let entity = EntityData {
            name: "account".into(),
            source: "accounts.csv".into(),
            table: Table { schema, batches: vec![batch] },
            key: "id".into(),
            parent: None,
            hierarchy: Some("up".into()),
        };
        let error = Tree::new(&entity, "up").expect_err("a cycle");
        assert_eq!(error.to_string(), "accounts.csv: column `up`: the hierarchy has a cycle through `a`");
        assert!(error.hint().is_some_and(|h| h.contains("no row may be its own ancestor")), "{error:?}");
    }

    #[test]
    fn hierarchy_cycles_name_the_first_row_of_the_file_on_them() {
        let error = tree(&["a", "b", "c"], &[Some("c"), Some("a"), Some("b")]).expect_err("a cycle");
        assert_eq!(error.value, "a");
        // `x` is not on the cycle but below it: its chain of parents never ends either.
        let below =
            tree(&["r", "x", "p", "q"], &[None, Some("p"), Some("q"), Some("p")]).expect_err("a cycle");
        assert_eq!(below.value, "x");
        assert_eq!(tree(&["a"], &[Some("a")]).expect_err("its own parent").value, "a");
    }

    #[test]
    fn hierarchy_rows_whose_parent_is_not_a_row_are_roots() {
        let t = tree(&["a", "b", "c"], &[Some("gone"), None, Some("a")]).expect("a forest");
        assert_eq!(t.parent, [None, None, Some(0)]);
        assert_eq!(t.fold(&[1, 1, 1], 0, true, |a, b| a + b), [1, 0, 0]);
    }

    #[test]
    fn hierarchy_distinct_counts_merge_small_into_large() {
        // r has children x and y; x has children x1 (value 1) and x2 (value 2); y has value 1.
        let t = tree(&["r", "x", "y", "x1", "x2"], &[None, Some("r"), Some("r"), Some("x"), Some("x")])
            .expect("a tree");
        let own = [Some(9), None, Some(1), Some(1), Some(2)];
        assert_eq!(t.count_distinct(&own, true), [2, 2, 0, 0, 0]);
        assert_eq!(t.count_distinct(&own, false), [1, 2, 0, 0, 0]);
    }

    #[test]
    fn hierarchy_folds_a_chain_of_200000_rows() {
        let n = 200_000;
        let keys: Vec<String> = (0..n).map(|i| i.to_string()).collect();
        let parents: Vec<Option<String>> = (0..n).map(|i| (i > 0).then(|| (i - 1).to_string())).collect();
        let t = Tree::from_keys(StringArray::from(keys), &StringArray::from(parents)).expect("a chain");
        let totals = t.fold(&vec![1i64; n], 0, true, |a, b| a + b);
        assert_eq!(totals[0], n as i64 - 1);
        assert_eq!(totals[n - 1], 0);
        let distinct = t.count_distinct(&(0..n as u64).map(Some).collect::<Vec<_>>(), true);
        assert_eq!(distinct[0], n as i64 - 1);
    }
}
