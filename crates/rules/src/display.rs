//! Canonical text of rules and traits: printing then parsing gives back the same tree (spans
//! aside). Keywords are lowercase, strings single-quoted, and parentheses appear only where
//! precedence needs them.

use std::fmt;

use crate::ast::{
    AggFunc, ArithOp, Expr, ExprKind, Fraction, Ident, Literal, Scalar, TraitExpr, Value, ValueKind,
};
use crate::literal::{format_date, format_timestamp};
use crate::parser::needs_backquotes;

/// Writes `text` between `quote`s, doubling any `quote` inside.
fn quoted(f: &mut fmt::Formatter<'_>, text: &str, quote: char) -> fmt::Result {
    let doubled: String = [quote, quote].iter().collect();
    write!(f, "{quote}{}{quote}", text.replace(quote, &doubled))
}

fn name(f: &mut fmt::Formatter<'_>, name: &str) -> fmt::Result {
    if needs_backquotes(name) { quoted(f, name, '`') } else { f.write_str(name) }
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(qualifier) = &self.qualifier {
            write!(f, "{qualifier}.")?;
        }
        name(f, &self.name)
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Number { int: Some(int), .. } => write!(f, "{int}"),
            // Debug output is the shortest text that reads back as the same f64, and always
            // has a `.` or an exponent, so it reads back as a float, not an integer.
            Literal::Number { value, int: None } if value.is_finite() => write!(f, "{value:?}"),
            // Not produced by the parser; written so that it reads back as a large number.
            Literal::Number { value, int: None } => {
                f.write_str(if value.is_sign_negative() { "-1e999" } else { "1e999" })
            }
            Literal::String(s) => quoted(f, s, '\''),
            Literal::Bool(b) => write!(f, "{b}"),
            Literal::Date(days) => write!(f, "DATE '{}'", format_date(*days)),
            Literal::Timestamp(micros) => write!(f, "TIMESTAMP '{}'", format_timestamp(*micros)),
        }
    }
}

/// A resolved constant as a literal of the rule language (as a rule would write it); `NULL`
/// for the missing value, which no literal writes.
impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Null => f.write_str("NULL"),
            Scalar::String(s) => quoted(f, s, '\''),
            Scalar::Int(i) => write!(f, "{i}"),
            Scalar::Float(x) => Literal::Number { value: *x, int: None }.fmt(f),
            Scalar::Bool(b) => write!(f, "{b}"),
            Scalar::Date(days) => Literal::Date(*days).fmt(f),
            Scalar::Timestamp(micros) => Literal::Timestamp(*micros).fmt(f),
        }
    }
}

/// Binding strength of a value: sums < products < negation < the rest.
fn value_precedence(kind: &ValueKind) -> u8 {
    match kind {
        ValueKind::Arith { op: ArithOp::Add | ArithOp::Sub, .. } => 1,
        ValueKind::Arith { .. } => 2,
        ValueKind::Neg(_) => 3,
        _ => 4,
    }
}

/// Writes `value`, in parentheses when it binds less tightly than `min`.
fn value_operand(f: &mut fmt::Formatter<'_>, value: &Value, min: u8) -> fmt::Result {
    if value_precedence(&value.kind) < min { write!(f, "({value})") } else { write!(f, "{value}") }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ValueKind::Ident(ident) => ident.fmt(f),
            ValueKind::Literal(literal) => literal.fmt(f),
            ValueKind::Arith { op, left, right } => {
                let level = value_precedence(&self.kind);
                value_operand(f, left, level)?;
                write!(f, " {} ", op.symbol())?;
                value_operand(f, right, level + 1)
            }
            // `-(5)` keeps the negation of a number apart from the literal `-5`.
            ValueKind::Neg(inner) if matches!(inner.kind, ValueKind::Literal(Literal::Number { .. })) => {
                write!(f, "-({inner})")
            }
            ValueKind::Neg(inner) => {
                f.write_str("-")?;
                value_operand(f, inner, 3)
            }
            ValueKind::Call { func, args, .. } => {
                write!(f, "{}(", func.name())?;
                for (i, arg) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    arg.fmt(f)?;
                }
                f.write_str(")")
            }
        }
    }
}

/// Binding strength: `or` < `and` < `not` < predicates.
fn precedence(kind: &ExprKind) -> u8 {
    match kind {
        ExprKind::Or(..) => 1,
        ExprKind::And(..) => 2,
        ExprKind::Not(..) => 3,
        _ => 4,
    }
}

/// Writes `expr`, in parentheses when it binds less tightly than `min`.
fn operand(f: &mut fmt::Formatter<'_>, expr: &Expr, min: u8) -> fmt::Result {
    if precedence(&expr.kind) < min { write!(f, "({expr})") } else { write!(f, "{expr}") }
}

fn not(negated: bool) -> &'static str {
    if negated { "not " } else { "" }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            // Both operators associate to the left, so a right operand of the same operator
            // needs parentheses to keep its shape.
            ExprKind::Or(left, right) => {
                operand(f, left, 1)?;
                f.write_str(" or ")?;
                operand(f, right, 2)
            }
            ExprKind::And(left, right) => {
                operand(f, left, 2)?;
                f.write_str(" and ")?;
                operand(f, right, 3)
            }
            ExprKind::Not(inner) => {
                f.write_str("not ")?;
                operand(f, inner, 3)
            }
            ExprKind::Compare { left, op, right } => write!(f, "{left} {} {right}", op.symbol()),
            ExprKind::InList { value, list, negated } => {
                write!(f, "{value} {}in (", not(*negated))?;
                for (i, item) in list.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    item.literal.fmt(f)?;
                }
                f.write_str(")")
            }
            ExprKind::Between { value, low, high, negated } => {
                write!(f, "{value} {}between {} and {}", not(*negated), low.literal, high.literal)
            }
            ExprKind::IsNull { value, negated } => write!(f, "{value} is {}null", not(*negated)),
            ExprKind::StringMatch { value, op, pattern, negated } => {
                write!(f, "{value} {}{} ", not(*negated), op.keyword())?;
                quoted(f, pattern, '\'')
            }
            ExprKind::InSegment { name } => {
                f.write_str("in_segment(")?;
                quoted(f, name, '\'')?;
                f.write_str(")")
            }
            ExprKind::Truthy(value) => value.fmt(f),
        }
    }
}

impl fmt::Display for Fraction {
    /// A decimal as written (`0.250`), a double with an exponent (`2.5e-1`), so that the text
    /// reads back as the same fraction.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.decimal() {
            Some((units, 0)) => write!(f, "{units}"),
            Some((units, scale)) => {
                let scale = scale as usize;
                let digits = format!("{units:0>width$}", width = scale + 1);
                let (whole, fraction) = digits.split_at(digits.len() - scale);
                write!(f, "{whole}.{fraction}")
            }
            None => write!(f, "{:e}", self.value()),
        }
    }
}

impl fmt::Display for TraitExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.agg.name())?;
        if let Some(arg) = &self.arg {
            arg.fmt(f)?;
        }
        if let Some(condition) = &self.condition {
            condition.fmt(f)?;
        }
        if let AggFunc::Percentile(p) | AggFunc::PercentileDisc(p) = self.agg {
            write!(f, ", {p}")?;
        }
        f.write_str(")")?;
        if let Some(filter) = &self.filter {
            write!(f, " where {filter}")?;
        }
        if let Some((window, _)) = &self.within {
            write!(f, " {window}")?;
        }
        Ok(())
    }
}
