//! Vectorized evaluation of resolved conditions over Arrow batches, with SQL three-valued
//! logic: the conditions of the one-pass trait scan ([`crate::scan`]).
//!
//! A leaf predicate on a dictionary-encoded column is evaluated once per dictionary value and
//! gathered by the keys, so `event_type = 'login'` costs a handful of string comparisons per
//! batch, not one per row. Everything else uses Arrow's kernels (`cmp`, `like`, Kleene
//! `and`/`or`). The reference evaluator [`segmenta_rules::eval`] is the statement of the
//! semantics; the property test in this module holds the two to each other.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Float64Array, Int64Array, RecordBatch, Scalar,
    StringArray, TimestampMicrosecondArray, new_null_array,
};
use arrow::buffer::BooleanBuffer;
use arrow::compute::kernels::cmp;
use arrow::compute::{and_kleene, cast, not, or_kleene, take};
use arrow::datatypes::DataType;
use segmenta_rules::ast::{CmpOp, Scalar as Literal, StringOp, TypedExpr, TypedValue};

use crate::ingest::arrow_type;
use crate::lower::UTC;
use crate::{Error, Result};

/// Columns of a batch by name.
pub(crate) struct Columns<'b> {
    batch: &'b RecordBatch,
    index: HashMap<&'b str, usize>,
    /// The rows whose computed values count (`None`: all): elsewhere a value out of range is
    /// NULL rather than an error.
    domain: Option<BooleanBuffer>,
}

impl<'b> Columns<'b> {
    pub(crate) fn new(batch: &'b RecordBatch) -> Columns<'b> {
        let index =
            batch.schema_ref().fields().iter().enumerate().map(|(i, f)| (f.name().as_str(), i)).collect();
        Columns { batch, index, domain: None }
    }

    /// The columns of `batch`, of which only the rows of `domain` count.
    pub(crate) fn with_domain(batch: &'b RecordBatch, domain: BooleanBuffer) -> Columns<'b> {
        Columns { domain: Some(domain), ..Columns::new(batch) }
    }

    fn get(&self, name: &str) -> Result<&'b ArrayRef> {
        self.index
            .get(name)
            .map(|&i| self.batch.column(i))
            .ok_or_else(|| Error::Internal(format!("condition column `{name}` was not read")))
    }

    fn len(&self) -> usize {
        self.batch.num_rows()
    }
}

/// A one-element array holding a literal, in the type `like` (the array it is compared with,
/// or the dictionary values of it).
fn literal_array(literal: &Literal, like: &DataType) -> Result<ArrayRef> {
    let array: ArrayRef = match literal {
        Literal::Null => new_null_array(like, 1),
        Literal::String(s) => Arc::new(StringArray::from(vec![s.as_str()])),
        Literal::Int(v) => Arc::new(Int64Array::from(vec![*v])),
        Literal::Float(v) => Arc::new(Float64Array::from(vec![*v])),
        Literal::Bool(v) => Arc::new(BooleanArray::from(vec![*v])),
        Literal::Date(v) => Arc::new(Date32Array::from(vec![*v])),
        Literal::Timestamp(v) => Arc::new(TimestampMicrosecondArray::from(vec![*v]).with_timezone(UTC)),
    };
    if array.data_type() == like { Ok(array) } else { Ok(cast(&array, like)?) }
}

/// The value type a (possibly dictionary-encoded) array holds.
fn value_type(array: &dyn Array) -> &DataType {
    match array.data_type() {
        DataType::Dictionary(_, values) => values,
        other => other,
    }
}

/// A column read as the type the rule compares it as (ints widened to floats, dates to
/// timestamps); dictionaries and string views are kept as they are.
fn column_as(columns: &Columns<'_>, name: &str, ty: segmenta_core::ValueType) -> Result<ArrayRef> {
    let array = columns.get(name)?;
    let target = arrow_type(ty);
    match (value_type(array.as_ref()), &target) {
        (DataType::Utf8View | DataType::Utf8 | DataType::LargeUtf8, DataType::Utf8) => Ok(array.clone()),
        (have, want) if have == want => Ok(array.clone()),
        _ => Ok(cast(array, &target)?),
    }
}

/// Applies `leaf` to the array, or, for a dictionary array, to its values and gathers the
/// result by the keys.
fn on_values(array: &ArrayRef, leaf: &dyn Fn(&ArrayRef) -> Result<BooleanArray>) -> Result<BooleanArray> {
    match array.data_type() {
        DataType::Dictionary(_, _) => {
            let dictionary = array.as_any_dictionary();
            let per_value: ArrayRef = Arc::new(leaf(dictionary.values())?);
            let gathered = take(&per_value, dictionary.keys(), None)?;
            Ok(gathered.as_boolean().clone())
        }
        _ => leaf(array),
    }
}

fn compare(
    op: CmpOp,
    left: &dyn arrow::array::Datum,
    right: &dyn arrow::array::Datum,
) -> Result<BooleanArray> {
    Ok(match op {
        CmpOp::Eq => cmp::eq(left, right)?,
        CmpOp::NotEq => cmp::neq(left, right)?,
        CmpOp::Lt => cmp::lt(left, right)?,
        CmpOp::LtEq => cmp::lt_eq(left, right)?,
        CmpOp::Gt => cmp::gt(left, right)?,
        CmpOp::GtEq => cmp::gt_eq(left, right)?,
    })
}

/// A boolean array of `len` copies of the first (only) value of `one`.
fn broadcast(one: &BooleanArray, len: usize) -> BooleanArray {
    match (one.is_empty() || one.is_null(0), one.len()) {
        (true, _) => BooleanArray::new_null(len),
        (false, _) => BooleanArray::from(vec![one.value(0); len]),
    }
}

/// `value op literal` for a column against a literal.
fn column_vs_literal(column: &ArrayRef, op: CmpOp, literal: &Literal) -> Result<BooleanArray> {
    on_values(column, &|values: &ArrayRef| {
        let scalar = Scalar::new(literal_array(literal, values.data_type())?);
        compare(op, values, &scalar)
    })
}

/// An operand over a batch: an array (a column read as the rule compares it, or a computed
/// value), or a constant.
enum Side<'v> {
    Array(ArrayRef),
    Literal(&'v Literal),
}

fn side<'v>(value: &'v TypedValue, columns: &Columns<'_>) -> Result<Side<'v>> {
    Ok(match value {
        TypedValue::Literal(literal) => Side::Literal(literal),
        TypedValue::Column { column, ty } => Side::Array(column_as(columns, &column.column, *ty)?),
        TypedValue::Apply { func, args, ty, text } => {
            let mut arrays = Vec::with_capacity(args.len());
            for arg in args {
                let arg_type = arg.value_type().unwrap_or(*ty);
                arrays.push(match side(arg, columns)? {
                    Side::Array(array) => crate::arith::plain(&array, arg_type)?,
                    Side::Literal(literal) => crate::arith::plain(
                        &crate::lower::scalar_value(literal).to_array_of_size(columns.len())?,
                        arg_type,
                    )?,
                });
            }
            let result = crate::arith::apply(*func, &arrays, *ty, text, columns.domain.as_ref())
                .map_err(|e| crate::arith::out_of_range(e, &crate::error::Owner::default()))?;
            Side::Array(result)
        }
    })
}

/// A value over a batch, one row each: a column as it is read (dictionaries and views kept), a
/// computed value, or a constant repeated.
pub(crate) fn value_array(value: &TypedValue, columns: &Columns<'_>) -> Result<ArrayRef> {
    match (value, side(value, columns)?) {
        (TypedValue::Column { column, ty }, _) if *ty == column.ty => {
            Ok(columns.get(&column.column)?.clone())
        }
        (_, Side::Array(array)) => Ok(array),
        (_, Side::Literal(literal)) => {
            Ok(crate::lower::scalar_value(literal).to_array_of_size(columns.len())?)
        }
    }
}

/// Evaluates a resolved condition over a batch: TRUE, FALSE or NULL (unknown) per row.
pub(crate) fn evaluate(expr: &TypedExpr, columns: &Columns<'_>) -> Result<BooleanArray> {
    let len = columns.len();
    Ok(match expr {
        TypedExpr::Or(a, b) => or_kleene(&evaluate(a, columns)?, &evaluate(b, columns)?)?,
        TypedExpr::And(a, b) => and_kleene(&evaluate(a, columns)?, &evaluate(b, columns)?)?,
        TypedExpr::Not(a) => not(&evaluate(a, columns)?)?,
        TypedExpr::Compare { left, op, right } => match (side(left, columns)?, side(right, columns)?) {
            (Side::Array(array), Side::Literal(l)) => column_vs_literal(&array, *op, l)?,
            (Side::Literal(l), Side::Array(array)) => column_vs_literal(&array, op.flipped(), l)?,
            (Side::Array(a), Side::Array(b)) => {
                // Both sides whole arrays: dictionaries and views are unpacked to plain values.
                let ty = |v: &TypedValue| v.value_type().unwrap_or(segmenta_core::ValueType::String);
                let (a, b) = (crate::arith::plain(&a, ty(left))?, crate::arith::plain(&b, ty(right))?);
                compare(*op, &a, &b)?
            }
            (Side::Literal(a), Side::Literal(b)) => {
                let ty = a.value_type().or_else(|| b.value_type()).map(arrow_type).unwrap_or(DataType::Null);
                let (a, b) = (literal_array(a, &ty)?, literal_array(b, &ty)?);
                broadcast(&compare(*op, &a, &b)?, len)
            }
        },
        TypedExpr::InList { value, list, negated } => {
            let tested = in_list(value, list, columns, len)?;
            if *negated { not(&tested)? } else { tested }
        }
        TypedExpr::Between { value, low, high, negated } => {
            let inside = match side(value, columns)? {
                Side::Array(array) => on_values(&array, &|values: &ArrayRef| {
                    let low = Scalar::new(literal_array(low, values.data_type())?);
                    let high = Scalar::new(literal_array(high, values.data_type())?);
                    Ok(and_kleene(&cmp::gt_eq(values, &low)?, &cmp::lt_eq(values, &high)?)?)
                })?,
                Side::Literal(v) => {
                    let ty = v.value_type().map(arrow_type).unwrap_or(DataType::Null);
                    let (v, lo, hi) =
                        (literal_array(v, &ty)?, literal_array(low, &ty)?, literal_array(high, &ty)?);
                    broadcast(&and_kleene(&cmp::gt_eq(&v, &lo)?, &cmp::lt_eq(&v, &hi)?)?, len)
                }
            };
            if *negated { not(&inside)? } else { inside }
        }
        TypedExpr::IsNull { value, negated } => {
            let nulls = match side(value, columns)? {
                Side::Array(array) => arrow::compute::is_null(&array)?,
                Side::Literal(l) => BooleanArray::from(vec![matches!(l, Literal::Null); len]),
            };
            if *negated { not(&nulls)? } else { nulls }
        }
        TypedExpr::StringMatch { value, op, pattern, negated } => {
            let matched = match side(value, columns)? {
                Side::Array(array) => {
                    on_values(&array, &|values: &ArrayRef| string_match(values, *op, pattern))?
                }
                Side::Literal(l) => {
                    let one = literal_array(l, &DataType::Utf8)?;
                    broadcast(&string_match(&one, *op, pattern)?, len)
                }
            };
            if *negated { not(&matched)? } else { matched }
        }
        TypedExpr::Truthy(value) => match side(value, columns)? {
            Side::Array(array) => on_values(&array, &|values: &ArrayRef| {
                values
                    .as_boolean_opt()
                    .cloned()
                    .ok_or_else(|| Error::Internal(format!("`{value:?}` is not a boolean column")))
            })?,
            Side::Literal(l) => {
                let one = literal_array(l, &DataType::Boolean)?;
                broadcast(one.as_boolean(), len)
            }
        },
        TypedExpr::InSegment(name) => {
            return Err(Error::Internal(format!("in_segment('{name}') in an event condition")));
        }
    })
}

fn in_list(value: &TypedValue, list: &[Literal], columns: &Columns<'_>, len: usize) -> Result<BooleanArray> {
    let any_equal = |values: &ArrayRef| -> Result<BooleanArray> {
        // x IN (a, b) is (x = a) OR (x = b): NULL when x is NULL, as in SQL.
        let mut result: Option<BooleanArray> = None;
        for item in list {
            let scalar = Scalar::new(literal_array(item, values.data_type())?);
            let equal = cmp::eq(values, &scalar)?;
            result = Some(match result {
                None => equal,
                Some(r) => or_kleene(&r, &equal)?,
            });
        }
        Ok(result.unwrap_or_else(|| BooleanArray::from(vec![false; values.len()])))
    };
    match side(value, columns)? {
        Side::Array(array) => on_values(&array, &any_equal),
        Side::Literal(l) => {
            let ty = l.value_type().map(arrow_type).unwrap_or(DataType::Null);
            Ok(broadcast(&any_equal(&literal_array(l, &ty)?)?, len))
        }
    }
}

fn string_match(values: &ArrayRef, op: StringOp, pattern: &str) -> Result<BooleanArray> {
    let pattern = Scalar::new(literal_array(&Literal::String(pattern.to_string()), values.data_type())?);
    Ok(match op {
        StringOp::Contains => arrow::compute::kernels::comparison::contains(values, &pattern)?,
        StringOp::StartsWith => arrow::compute::kernels::comparison::starts_with(values, &pattern)?,
        StringOp::EndsWith => arrow::compute::kernels::comparison::ends_with(values, &pattern)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{DictionaryArray, StringViewArray};
    use arrow::datatypes::{Field, Schema};
    use segmenta_rules::AttributeCatalog;
    use segmenta_rules::ast::{ColumnInfo, ColumnSource, Ident};
    use segmenta_rules::eval::{Row, eval};

    struct Catalog;

    const COLUMNS: [(&str, segmenta_core::ValueType); 5] = [
        ("kind", segmenta_core::ValueType::String),
        ("page", segmenta_core::ValueType::String),
        ("n", segmenta_core::ValueType::Int),
        ("x", segmenta_core::ValueType::Float),
        ("flag", segmenta_core::ValueType::Bool),
    ];

    impl AttributeCatalog for Catalog {
        fn lookup(&self, ident: &Ident) -> Option<ColumnInfo> {
            COLUMNS.iter().find(|(n, _)| *n == ident.name && ident.qualifier.is_none()).map(|(n, ty)| {
                ColumnInfo { column: n.to_string(), ty: *ty, source: ColumnSource::EventColumn }
            })
        }
        fn names(&self) -> Vec<String> {
            COLUMNS.iter().map(|(n, _)| n.to_string()).collect()
        }
    }

    struct Rows<'a>(&'a RecordBatch, usize);

    impl Row for Rows<'_> {
        fn get(&self, column: &str) -> Literal {
            let array = self.0.column_by_name(column).expect("a column");
            let plain = match array.data_type() {
                DataType::Dictionary(_, _) | DataType::Utf8View => {
                    cast(array, &DataType::Utf8).expect("cast")
                }
                _ => array.clone(),
            };
            if plain.is_null(self.1) {
                return Literal::Null;
            }
            match plain.data_type() {
                DataType::Utf8 => Literal::String(plain.as_string::<i32>().value(self.1).to_string()),
                DataType::Int64 => {
                    Literal::Int(plain.as_primitive::<arrow::datatypes::Int64Type>().value(self.1))
                }
                DataType::Float64 => {
                    Literal::Float(plain.as_primitive::<arrow::datatypes::Float64Type>().value(self.1))
                }
                DataType::Boolean => Literal::Bool(plain.as_boolean().value(self.1)),
                other => panic!("unexpected {other}"),
            }
        }
        fn in_segment(&self, _: &str) -> bool {
            false
        }
    }

    fn batch() -> RecordBatch {
        let kinds = [Some("login"), Some("Login"), None, Some("web_visit"), Some("login"), Some("it's")];
        let dictionary: DictionaryArray<arrow::datatypes::Int32Type> = kinds.iter().copied().collect();
        let pages = StringViewArray::from(vec![
            Some("pricing"),
            None,
            Some("docs"),
            Some("pricing"),
            Some(""),
            Some("pri"),
        ]);
        let schema = Schema::new(vec![
            Field::new("kind", dictionary.data_type().clone(), true),
            Field::new("page", DataType::Utf8View, true),
            Field::new("n", DataType::Int64, true),
            Field::new("x", DataType::Float64, true),
            Field::new("flag", DataType::Boolean, true),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(dictionary),
                Arc::new(pages),
                Arc::new(Int64Array::from(vec![Some(1), Some(5), None, Some(-3), Some(5), Some(7)])),
                Arc::new(Float64Array::from(vec![
                    Some(1.5),
                    None,
                    Some(2.0),
                    Some(-0.0),
                    Some(5.0),
                    Some(f64::NAN),
                ])),
                Arc::new(BooleanArray::from(vec![
                    Some(true),
                    Some(false),
                    None,
                    Some(true),
                    None,
                    Some(false),
                ])),
            ],
        )
        .expect("a batch")
    }

    fn check(rule: &str) {
        let parsed = segmenta_rules::parse_rule(rule).expect("parses");
        let typed = segmenta_rules::resolve_rule(&parsed, &Catalog).expect("resolves");
        let batch = batch();
        let columns = Columns::new(&batch);
        let expected: std::result::Result<Vec<Option<bool>>, _> =
            (0..batch.num_rows()).map(|row| eval(&typed, &Rows(&batch, row))).collect();
        match (evaluate(&typed, &columns), expected) {
            (Ok(actual), Ok(expected)) => {
                for (row, expected) in expected.into_iter().enumerate() {
                    let got = if actual.is_null(row) { None } else { Some(actual.value(row)) };
                    assert_eq!(got, expected, "{rule}, row {row}");
                }
            }
            (Err(actual), Err(expected)) => {
                assert!(actual.to_string().contains(&expected.message), "{rule}: {actual} / {expected}")
            }
            (actual, expected) => panic!("{rule}: {actual:?} / {expected:?}"),
        }
    }

    #[test]
    fn matches_the_reference_evaluator() {
        for rule in [
            "kind = 'login'",
            "kind != 'login' or page = 'pricing'",
            "kind in ('login', 'web_visit') and not page is null",
            "kind not in ('Login')",
            "page contains 'ri' and kind starts_with 'l'",
            "page not ends_with 'ing'",
            "n between 1 and 5",
            "n not between 1 and 5 or x > 1",
            "x >= n",
            "n > x",
            "flag",
            "not flag or kind is null",
            "1 = 1 and 'a' < 'b'",
            "n in (5, 7) or x in (1.5)",
            "x = -0.0",
            "x > 1e300",
            "kind = 'it''s'",
            "page = ''",
            "n + 1 > 2 and n * 2 - 1 < 11",
            "n / 2 = 2.5 or n / 0 is null",
            "-n < 0 and abs(n - 5) <= 2",
            "round(n, -1) = 10 or round(n / 3, 2) = 0.33",
            "coalesce(n, 0) = 0 or coalesce(kind, page, '') contains 'og'",
            "(n + 1) * 2 in (4, 12) or n * 1.5 between 1 and 7.5",
            "n * 9223372036854775807 > 0",
            "x + 1 > 2",
            "coalesce(x, n) > 1",
            "coalesce(flag, false) or not coalesce(flag, true)",
            "n > 2.5 and n < 6.5 and n != 5.5 and n in (5.0, 7.5)",
        ] {
            check(rule);
        }
    }
}
