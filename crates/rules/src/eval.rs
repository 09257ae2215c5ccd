//! A naive reference evaluator of resolved rules over one row at a time, with SQL
//! three-valued logic. It is the oracle that the DataFusion lowering is tested against, so it
//! favours obviousness over speed.

use std::cmp::Ordering;

use segmenta_core::{MICROS_PER_DAY, ValueType};

use crate::ast::{CmpOp, Scalar, StringOp, TypedExpr, TypedValue};

/// One entity's values, as the evaluator reads them.
pub trait Row {
    /// The value of `column` (a [`crate::ast::ColumnInfo::column`]), as a scalar of the
    /// column's own type, or [`Scalar::Null`].
    fn get(&self, column: &str) -> Scalar;
    /// Whether the entity is a member of `segment`.
    fn in_segment(&self, segment: &str) -> bool;
}

/// Applies the widening a resolved operand asks for (int to float, date to timestamp).
fn widen(scalar: Scalar, ty: ValueType) -> Scalar {
    match (scalar, ty) {
        (Scalar::Int(int), ValueType::Float) => Scalar::Float(int as f64),
        (Scalar::Date(days), ValueType::Timestamp) => {
            Scalar::Timestamp(i64::from(days).saturating_mul(MICROS_PER_DAY))
        }
        (scalar, _) => scalar,
    }
}

fn value(operand: &TypedValue, row: &dyn Row) -> Scalar {
    match operand {
        TypedValue::Literal(scalar) => scalar.clone(),
        TypedValue::Column { column, ty } => widen(row.get(&column.column), *ty),
    }
}

/// SQL comparison: unknown when either side is NULL (or the types disagree, which resolution
/// rules out). Floats compare in IEEE 754 total order, as Arrow's kernels do: NaN equals NaN
/// and is above every number, and -0.0 is below 0.0.
fn compare(a: &Scalar, b: &Scalar) -> Option<Ordering> {
    match (a, b) {
        (Scalar::String(a), Scalar::String(b)) => Some(a.cmp(b)),
        (Scalar::Int(a), Scalar::Int(b)) => Some(a.cmp(b)),
        (Scalar::Float(a), Scalar::Float(b)) => Some(a.total_cmp(b)),
        (Scalar::Int(a), Scalar::Float(b)) => Some((*a as f64).total_cmp(b)),
        (Scalar::Float(a), Scalar::Int(b)) => Some(a.total_cmp(&(*b as f64))),
        (Scalar::Bool(a), Scalar::Bool(b)) => Some(a.cmp(b)),
        (Scalar::Date(a), Scalar::Date(b)) => Some(a.cmp(b)),
        (Scalar::Timestamp(a), Scalar::Timestamp(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

fn apply(op: CmpOp, ordering: Ordering) -> bool {
    match op {
        CmpOp::Eq => ordering == Ordering::Equal,
        CmpOp::NotEq => ordering != Ordering::Equal,
        CmpOp::Lt => ordering == Ordering::Less,
        CmpOp::LtEq => ordering != Ordering::Greater,
        CmpOp::Gt => ordering == Ordering::Greater,
        CmpOp::GtEq => ordering != Ordering::Less,
    }
}

/// SQL `AND` of two three-valued truths (`None` = unknown).
pub fn and(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match (a, b) {
        (Some(false), _) | (_, Some(false)) => Some(false),
        (Some(true), Some(true)) => Some(true),
        _ => None,
    }
}

/// SQL `OR` of two three-valued truths (`None` = unknown).
pub fn or(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match (a, b) {
        (Some(true), _) | (_, Some(true)) => Some(true),
        (Some(false), Some(false)) => Some(false),
        _ => None,
    }
}

fn negate_if(negated: bool, result: Option<bool>) -> Option<bool> {
    if negated { result.map(|b| !b) } else { result }
}

/// Evaluates a resolved rule on one row with SQL three-valued logic: `Some(true)`,
/// `Some(false)`, or `None` for unknown. An entity is a member when this is `Some(true)`.
pub fn eval(expr: &TypedExpr, row: &dyn Row) -> Option<bool> {
    match expr {
        TypedExpr::Or(a, b) => or(eval(a, row), eval(b, row)),
        TypedExpr::And(a, b) => and(eval(a, row), eval(b, row)),
        TypedExpr::Not(a) => eval(a, row).map(|b| !b),
        TypedExpr::Compare { left, op, right } => {
            compare(&value(left, row), &value(right, row)).map(|o| apply(*op, o))
        }
        TypedExpr::InList { value: operand, list, negated } => {
            let v = value(operand, row);
            let result = if v == Scalar::Null {
                None
            } else {
                Some(list.iter().any(|item| compare(&v, item) == Some(Ordering::Equal)))
            };
            negate_if(*negated, result)
        }
        TypedExpr::Between { value: operand, low, high, negated } => {
            let v = value(operand, row);
            let above = compare(low, &v).map(|o| o != Ordering::Greater);
            let below = compare(&v, high).map(|o| o != Ordering::Greater);
            negate_if(*negated, and(above, below))
        }
        TypedExpr::IsNull { value: operand, negated } => {
            Some((value(operand, row) == Scalar::Null) != *negated)
        }
        TypedExpr::StringMatch { value: operand, op, pattern, negated } => {
            let result = match value(operand, row) {
                Scalar::String(s) => Some(match op {
                    StringOp::Contains => s.contains(pattern.as_str()),
                    StringOp::StartsWith => s.starts_with(pattern.as_str()),
                    StringOp::EndsWith => s.ends_with(pattern.as_str()),
                }),
                _ => None,
            };
            negate_if(*negated, result)
        }
        TypedExpr::InSegment(name) => Some(row.in_segment(name)),
        TypedExpr::Truthy(operand) => match value(operand, row) {
            Scalar::Bool(b) => Some(b),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::resolve::tests::TestCatalog;
    use crate::{parse_rule, resolve_rule};

    struct MapRow(HashMap<&'static str, Scalar>);

    impl Row for MapRow {
        fn get(&self, column: &str) -> Scalar {
            self.0.get(column).cloned().unwrap_or(Scalar::Null)
        }

        fn in_segment(&self, segment: &str) -> bool {
            segment == "a"
        }
    }

    fn row() -> MapRow {
        MapRow(HashMap::from([
            ("industry", Scalar::String("Retail".into())),
            ("employees", Scalar::Int(50)),
            ("arr", Scalar::Float(1.5)),
            ("is_active", Scalar::Bool(true)),
            ("signup_date", Scalar::Date(1)),
            ("last_login", Scalar::Null),
        ]))
    }

    /// Evaluates `input` (resolved against the test catalog) on [`row`]; `expected` is
    /// `true`, `false` or `null`.
    fn check(input: &str, expected: &str) {
        let parsed = parse_rule(input).expect("test rules parse");
        let typed = resolve_rule(&parsed, &TestCatalog::accounts()).expect("test rules resolve");
        let actual = match eval(&typed, &row()) {
            Some(b) => b.to_string(),
            None => "null".to_string(),
        };
        assert_eq!(actual, expected, "input: {input:?}");
    }

    #[test]
    fn three_valued_logic() {
        check("employees = 50", "true");
        check("employees < 50.5", "true");
        check("last_login > DATE '2024-01-01'", "null");
        check("not last_login > DATE '2024-01-01'", "null");
        check("last_login > DATE '2024-01-01' and employees = 1", "false");
        check("last_login > DATE '2024-01-01' or employees = 50", "true");
        check("last_login is null", "true");
        check("last_login is not null", "false");
        check("parent.industry contains 'x'", "null");
        check("parent.industry not in ('x')", "null");
        check("industry in ('Retail', 'x')", "true");
        check("industry not in ('retail')", "true");
        check("employees between 50 and 50", "true");
        check("employees not between 1 and 10", "true");
        check("signup_date = '1970-01-02'", "true");
        check("signup_date < TIMESTAMP '1970-01-02T00:00:01Z'", "true");
        check("industry starts_with 'Re' and industry ends_with 'il'", "true");
        check("industry > 'Q'", "true");
        check("is_active and in_segment('a') and not in_segment('b')", "true");
    }
}
