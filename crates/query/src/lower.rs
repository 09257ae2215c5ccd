//! Lowering of resolved rules and traits to DataFusion logical expressions.
//!
//! Columns are referenced with [`ident`], never parsed from text, so attribute names may hold
//! any character. Three-valued logic is DataFusion's own: a comparison with NULL is NULL, and
//! membership is `IS TRUE` of the rule.

use arrow::datatypes::{DataType, TimeUnit};
use datafusion::functions::string::expr_fn::{contains, ends_with, starts_with};
use datafusion::functions_aggregate::expr_fn::{avg, count, max, min, sum};
use datafusion::logical_expr::expr::Between;
use datafusion::logical_expr::{
    Expr, ExprFunctionExt, Operator, binary_expr, cast, ident, in_list, is_true, lit, not, when,
};
use datafusion::scalar::ScalarValue;
use segmenta_core::{MICROS_PER_DAY, ValueType};
use segmenta_rules::ast::{AggFunc, CmpOp, Scalar, StringOp, TypedExpr, TypedTrait, TypedValue};

use crate::error::Owner;
use crate::ingest::arrow_type;
use crate::request::PointsSpec;
use crate::{Error, Result};

/// The time zone every timestamp carries inside segmenta.
pub const UTC: &str = "UTC";

/// A timestamp literal in segmenta's canonical type.
pub fn timestamp_lit(micros: i64) -> Expr {
    lit(scalar_value(&Scalar::Timestamp(micros)))
}

/// The DataFusion scalar of a rule's scalar.
pub(crate) fn scalar_value(scalar: &Scalar) -> ScalarValue {
    match scalar {
        Scalar::Null => ScalarValue::Null,
        Scalar::String(s) => ScalarValue::Utf8(Some(s.clone())),
        Scalar::Int(v) => ScalarValue::Int64(Some(*v)),
        Scalar::Float(v) => ScalarValue::Float64(Some(*v)),
        Scalar::Bool(v) => ScalarValue::Boolean(Some(*v)),
        Scalar::Date(v) => ScalarValue::Date32(Some(*v)),
        Scalar::Timestamp(v) => ScalarValue::TimestampMicrosecond(Some(*v), Some(UTC.into())),
    }
}

/// The DataFusion literal for a scalar.
pub fn scalar_lit(scalar: &Scalar) -> Expr {
    lit(scalar_value(scalar))
}

/// Lowers a value: a column, a constant, or arithmetic and functions (as segmenta functions
/// that compute [`segmenta_rules::eval::apply`]). `owner` names what computes it in the error
/// of a value out of range.
pub fn lower_value(value: &TypedValue, owner: &Owner) -> Expr {
    match value {
        TypedValue::Literal(scalar) => scalar_lit(scalar),
        TypedValue::Column { column, ty } => {
            let expr = ident(&column.column);
            // Strings stay as they are read (views or dictionaries): DataFusion compares them.
            if *ty == column.ty { expr } else { cast(expr, arrow_type(*ty)) }
        }
        TypedValue::Apply { func, args, ty, text } => {
            let args = args
                .iter()
                .map(|arg| {
                    let expr = lower_value(arg, owner);
                    // The functions take plain arrays of their arguments' types.
                    match arg.value_type() {
                        Some(arg_ty) => cast(expr, arrow_type(arg_ty)),
                        None => expr,
                    }
                })
                .collect();
            crate::arith::call(*func, args, *ty, text, owner)
        }
    }
}

fn operator(op: CmpOp) -> Operator {
    match op {
        CmpOp::Eq => Operator::Eq,
        CmpOp::NotEq => Operator::NotEq,
        CmpOp::Lt => Operator::Lt,
        CmpOp::LtEq => Operator::LtEq,
        CmpOp::Gt => Operator::Gt,
        CmpOp::GtEq => Operator::GtEq,
    }
}

/// Lowers a rule. `segment_column` names the boolean column holding an earlier segment's
/// membership, for `in_segment(...)`; `owner` names the rule's owner in errors.
pub fn lower_rule(
    expr: &TypedExpr,
    segment_column: &dyn Fn(&str) -> Option<String>,
    owner: &Owner,
) -> Result<Expr> {
    lower_condition(expr, segment_column, owner, expr.computes())
}

/// `a AND b`: DataFusion's operator, or, for a rule that computes, a function that evaluates
/// both sides on every row (so that a value out of range is an error as in the reference).
pub(crate) fn and(a: Expr, b: Expr, eager: bool) -> Expr {
    if eager { crate::arith::eager_connective(true, a, b) } else { a.and(b) }
}

fn lower_condition(
    expr: &TypedExpr,
    segment_column: &dyn Fn(&str) -> Option<String>,
    owner: &Owner,
    eager: bool,
) -> Result<Expr> {
    let value_expr = |value: &TypedValue| lower_value(value, owner);
    let lower = |e: &TypedExpr| lower_condition(e, segment_column, owner, eager);
    Ok(match expr {
        TypedExpr::Or(a, b) if eager => crate::arith::eager_connective(false, lower(a)?, lower(b)?),
        TypedExpr::Or(a, b) => lower(a)?.or(lower(b)?),
        TypedExpr::And(a, b) => and(lower(a)?, lower(b)?, eager),
        TypedExpr::Not(a) => not(lower(a)?),
        TypedExpr::Compare { left, op, right } => {
            binary_expr(value_expr(left), operator(*op), value_expr(right))
        }
        TypedExpr::InList { value, list, negated } => {
            let tested = value_expr(value);
            let test = in_list(tested.clone(), list.iter().map(scalar_lit).collect(), *negated);
            // DataFusion 55's expression simplifier merges IN lists across OR / AND
            // (`x NOT IN ('a') OR x NOT IN ('b')` becomes TRUE) without keeping the NULL case,
            // which breaks three-valued logic (found by the DuckDB differential test). Inside
            // this CASE the value is known not to be NULL, so any such rewrite is exact.
            match value {
                TypedValue::Literal(_) => test,
                TypedValue::Column { .. } | TypedValue::Apply { .. } => {
                    when(tested.is_null(), lit(ScalarValue::Boolean(None))).otherwise(test)?
                }
            }
        }
        TypedExpr::Between { value, low, high, negated } => Expr::Between(Between::new(
            Box::new(value_expr(value)),
            *negated,
            Box::new(scalar_lit(low)),
            Box::new(scalar_lit(high)),
        )),
        TypedExpr::IsNull { value, negated: false } => value_expr(value).is_null(),
        TypedExpr::IsNull { value, negated: true } => value_expr(value).is_not_null(),
        TypedExpr::StringMatch { value, op, pattern, negated } => {
            let (value, pattern) = (value_expr(value), lit(pattern.clone()));
            let matched = match op {
                StringOp::Contains => contains(value, pattern),
                StringOp::StartsWith => starts_with(value, pattern),
                StringOp::EndsWith => ends_with(value, pattern),
            };
            if *negated { not(matched) } else { matched }
        }
        TypedExpr::InSegment(name) => {
            let column = segment_column(name).ok_or_else(|| {
                Error::Internal(format!("segment `{name}` is referenced before it is computed"))
            })?;
            ident(column)
        }
        TypedExpr::Truthy(value) => value_expr(value),
    })
}

/// Lowers a rule to its membership test: TRUE, never NULL.
pub fn membership(
    expr: &TypedExpr,
    segment_column: &dyn Fn(&str) -> Option<String>,
    owner: &Owner,
) -> Result<Expr> {
    Ok(is_true(lower_rule(expr, segment_column, owner)?))
}

/// `count(1)`: counts rows. (DataFusion's `count_all()` comes wrapped in an alias, which
/// cannot take a FILTER.)
pub fn count_rows() -> Expr {
    count(lit(1i64))
}

/// The rows a trait aggregates over: events (with a time column) or the rows of a child
/// entity or of descendants (no time: no as-of cut, no windows).
#[derive(Debug, Clone)]
pub struct EventColumns {
    /// The event time column (canonical timestamp type); `None` for rollups over entity rows.
    pub time: Option<String>,
}

/// One trait lowered to a filtered aggregate plus the projection that finishes it.
#[derive(Debug, Clone)]
pub struct LoweredTrait {
    /// The aggregate over the grouped rows (named by the caller).
    pub aggregate: Expr,
    /// Turns the aggregate's output column (given as an expression) into the trait's value,
    /// after the join to entities: zero for empty counts and sums, days for `days_since_*`.
    pub finish: fn(Expr, i64) -> Expr,
}

fn finish_identity(e: Expr, _as_of: i64) -> Expr {
    e
}

fn finish_zero_int(e: Expr, _as_of: i64) -> Expr {
    datafusion::functions::core::expr_fn::coalesce(vec![e, lit(0i64)])
}

fn finish_zero_float(e: Expr, _as_of: i64) -> Expr {
    datafusion::functions::core::expr_fn::coalesce(vec![e, lit(0f64)])
}

/// Whole days from `e` (a timestamp) to the as-of instant. Events are strictly before the
/// instant, so the difference is positive and integer division is the floor.
fn finish_days_since(e: Expr, as_of: i64) -> Expr {
    let micros = cast(e, DataType::Int64);
    binary_expr(lit(as_of) - micros, Operator::Divide, lit(MICROS_PER_DAY))
}

/// The FILTER of an aggregate: before the as-of instant and inside the window (events only),
/// and the condition.
fn row_filter(
    rows: &EventColumns,
    as_of: i64,
    within: Option<segmenta_core::Within>,
    condition: Option<&TypedExpr>,
    owner: &Owner,
) -> Result<Option<Expr>> {
    let mut filter = None;
    if let Some(time) = &rows.time {
        let time = ident(time);
        let mut before = time.clone().lt(timestamp_lit(as_of));
        if let Some(window) = within {
            let bounds = window.bounds(as_of);
            if bounds.end < as_of {
                before = time.clone().lt(timestamp_lit(bounds.end));
            }
            before = before.and(time.gt_eq(timestamp_lit(bounds.start)));
        }
        filter = Some(before);
    } else if within.is_some() {
        return Err(Error::Internal("a window on rows without a time".into()));
    }
    if let Some(condition) = condition {
        let no_segments = |_: &str| None;
        let condition = lower_rule(condition, &no_segments, owner)?;
        filter = Some(match filter {
            Some(f) => f.and(condition),
            None => condition,
        });
    }
    Ok(filter)
}

fn with_filter(aggregate: Expr, filter: Option<Expr>, distinct: bool) -> Result<Expr> {
    Ok(match (filter, distinct) {
        (Some(filter), true) => aggregate.distinct().filter(filter).build()?,
        (Some(filter), false) => aggregate.filter(filter).build()?,
        (None, true) => aggregate.distinct().build()?,
        (None, false) => aggregate,
    })
}

/// Lowers a trait to one aggregate with a FILTER holding its condition and window.
///
/// `as_of` is the as-of instant in microseconds: only events strictly before it count.
pub fn lower_trait(t: &TypedTrait, rows: &EventColumns, as_of: i64, owner: &Owner) -> Result<LoweredTrait> {
    let filter = row_filter(rows, as_of, t.within, t.filter.as_ref(), owner)?;
    let arg = t.arg.as_ref().map(|value| lower_value(value, owner));
    let need_arg =
        || arg.clone().ok_or_else(|| Error::Internal(format!("{} without an argument", t.agg.name())));
    let need_time = || {
        rows.time
            .as_deref()
            .map(ident)
            .ok_or_else(|| Error::Internal(format!("{}() over rows without a time", t.agg.name())))
    };
    let (aggregate, finish): (Expr, fn(Expr, i64) -> Expr) = match t.agg {
        AggFunc::Count => match &arg {
            Some(a) => (count(a.clone()), finish_zero_int),
            None => (crate::lower::count_rows(), finish_zero_int),
        },
        AggFunc::Sum => {
            let zero = if t.output == ValueType::Int { finish_zero_int } else { finish_zero_float };
            (sum(need_arg()?), zero)
        }
        AggFunc::Avg => (avg(need_arg()?), finish_identity),
        AggFunc::Min => (min(need_arg()?), finish_identity),
        AggFunc::Max => (max(need_arg()?), finish_identity),
        AggFunc::CountDistinct => (count(need_arg()?), finish_zero_int),
        AggFunc::FirstSeen => (min(need_time()?), finish_identity),
        AggFunc::LastSeen => (max(need_time()?), finish_identity),
        AggFunc::DaysSinceFirst => (min(need_time()?), finish_days_since),
        AggFunc::DaysSinceLast => (max(need_time()?), finish_days_since),
        AggFunc::Median | AggFunc::Percentile(_) | AggFunc::PercentileDisc(_) => {
            let ty = t.arg.as_ref().and_then(TypedValue::value_type).map_or(DataType::Float64, arrow_type);
            let fraction = t.agg.fraction().unwrap_or(segmenta_rules::ast::Fraction::HALF);
            let discrete = matches!(t.agg, AggFunc::PercentileDisc(_));
            (crate::percentile::percentile(need_arg()?, fraction, discrete, &ty), finish_identity)
        }
        AggFunc::Share => {
            let condition =
                t.condition.as_ref().ok_or_else(|| Error::Internal("share() without a condition".into()))?;
            let no_segments = |_: &str| None;
            let one_if_true =
                when(is_true(lower_rule(condition, &no_segments, &Owner::default())?), lit(1.0f64))
                    .otherwise(lit(0.0f64))?;
            (avg(one_if_true), finish_identity)
        }
    };
    let aggregate = with_filter(aggregate, filter, t.agg == AggFunc::CountDistinct)?;
    Ok(LoweredTrait { aggregate, finish })
}

/// Lowers points per event to one filtered aggregate (finished with a zero for no events).
pub fn lower_points(spec: &PointsSpec, rows: &EventColumns, as_of: i64) -> Result<LoweredTrait> {
    let filter = row_filter(rows, as_of, spec.within, spec.condition.as_ref(), &Owner::default())?;
    let value = match spec.half_life {
        None => lit(spec.points),
        Some(half_life) => {
            let time = rows
                .time
                .as_deref()
                .map(ident)
                .ok_or_else(|| Error::Internal("decayed points over rows without a time".into()))?;
            let age = cast(lit(as_of) - cast(time, DataType::Int64), DataType::Float64);
            let halvings = age / lit(half_life.micros() as f64);
            lit(spec.points) * datafusion::functions::math::expr_fn::power(lit(0.5f64), halvings)
        }
    };
    Ok(LoweredTrait { aggregate: with_filter(sum(value), filter, false)?, finish: finish_zero_float })
}

/// The canonical timestamp type.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into()))
}
