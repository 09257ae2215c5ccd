//! Syntax trees of rules and traits as written (with spans), and their resolved, typed forms.
//!
//! The parser produces [`Expr`] and [`TraitExpr`]; resolution against an
//! [`crate::AttributeCatalog`] produces [`TypedExpr`] and [`TypedTrait`], which is all that
//! evaluators (the DataFusion lowering in segmenta-query, the reference evaluator in
//! [`crate::eval`]) ever see.

use segmenta_core::{ValueType, Within};

/// A byte range in the rule or trait text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Span {
    /// A span from `start` to `end`.
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span { start: self.start.min(other.start), end: self.end.max(other.end) }
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `!=` or `<>`
    NotEq,
    /// `<`
    Lt,
    /// `<=`
    LtEq,
    /// `>`
    Gt,
    /// `>=`
    GtEq,
}

impl CmpOp {
    /// The operator with its sides swapped: `a < b` is `b > a`.
    pub fn flipped(self) -> CmpOp {
        match self {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::LtEq => CmpOp::GtEq,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::GtEq => CmpOp::LtEq,
            other => other,
        }
    }

    /// The operator as written canonically.
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::NotEq => "!=",
            CmpOp::Lt => "<",
            CmpOp::LtEq => "<=",
            CmpOp::Gt => ">",
            CmpOp::GtEq => ">=",
        }
    }
}

/// A string-matching operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StringOp {
    /// `CONTAINS`
    Contains,
    /// `STARTS_WITH`
    StartsWith,
    /// `ENDS_WITH`
    EndsWith,
}

impl StringOp {
    /// The keyword as written canonically.
    pub fn keyword(self) -> &'static str {
        match self {
            StringOp::Contains => "contains",
            StringOp::StartsWith => "starts_with",
            StringOp::EndsWith => "ends_with",
        }
    }
}

/// A literal as written.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// A number; `int` is set when the text is an integer that fits in i64.
    Number {
        /// The value as a float.
        value: f64,
        /// The value as an integer, when the text is one.
        int: Option<i64>,
    },
    /// A quoted string (quotes removed, doubled quotes undone).
    String(String),
    /// `TRUE` / `FALSE`.
    Bool(bool),
    /// `DATE 'YYYY-MM-DD'`, as days since 1970-01-01.
    Date(i32),
    /// `TIMESTAMP 'RFC 3339'`, as microseconds since the Unix epoch, UTC.
    Timestamp(i64),
}

/// An identifier: an attribute, a trait, `parent.attr`, or a backquoted name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident {
    /// `Some("parent")` for `parent.attr`.
    pub qualifier: Option<String>,
    /// The name (backquotes removed).
    pub name: String,
}

/// An operand: an identifier or a literal.
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    /// What it is.
    pub kind: ValueKind,
    /// Where it is.
    pub span: Span,
}

impl Value {
    /// The identifiers the value reads, in text order, repeats kept.
    pub fn idents(&self) -> Vec<&Ident> {
        let mut found = Vec::new();
        // An explicit stack: trees built by hand may be deeper than the parser allows.
        let mut stack = vec![self];
        while let Some(value) = stack.pop() {
            match &value.kind {
                ValueKind::Ident(ident) => found.push(ident),
                ValueKind::Literal(_) => {}
                ValueKind::Arith { left, right, .. } => {
                    stack.push(right);
                    stack.push(left);
                }
                ValueKind::Neg(inner) => stack.push(inner),
                ValueKind::Call { args, .. } => stack.extend(args.iter().rev()),
            }
        }
        found
    }
}

/// The kinds of operand.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueKind {
    /// A column of the entity, a trait, or a parent attribute.
    Ident(Ident),
    /// A constant.
    Literal(Literal),
    /// `left + right`, `left - right`, `left * right`, `left / right`.
    Arith {
        /// The operator.
        op: ArithOp,
        /// Left operand.
        left: Box<Value>,
        /// Right operand.
        right: Box<Value>,
    },
    /// `-value` (a minus before a number is part of the number's literal).
    Neg(Box<Value>),
    /// `round(x)`, `round(x, digits)`, `abs(x)`, `coalesce(a, b, ...)`.
    Call {
        /// The function.
        func: CallFunc,
        /// Its arguments, as written (a `round`'s digits are its second argument).
        args: Vec<Value>,
        /// Where its name is.
        name_span: Span,
    },
}

/// An arithmetic operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArithOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`: always a float; NULL when the divisor is zero.
    Div,
}

impl ArithOp {
    /// The operator as written.
    pub fn symbol(self) -> char {
        match self {
            ArithOp::Add => '+',
            ArithOp::Sub => '-',
            ArithOp::Mul => '*',
            ArithOp::Div => '/',
        }
    }
}

/// A function of the value language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallFunc {
    /// `round(x[, digits])`: half away from zero, as DuckDB's `round`.
    Round,
    /// `abs(x)`.
    Abs,
    /// `coalesce(a, b, ...)`: the first argument that is not NULL.
    Coalesce,
}

impl CallFunc {
    /// Every function.
    pub const ALL: [CallFunc; 3] = [CallFunc::Round, CallFunc::Abs, CallFunc::Coalesce];

    /// The function's name as written.
    pub fn name(self) -> &'static str {
        match self {
            CallFunc::Round => "round",
            CallFunc::Abs => "abs",
            CallFunc::Coalesce => "coalesce",
        }
    }
}

/// A literal with its span (in `IN` lists and `BETWEEN` bounds).
#[derive(Debug, Clone, PartialEq)]
pub struct SpannedLiteral {
    /// The literal.
    pub literal: Literal,
    /// Where it is.
    pub span: Span,
}

/// A rule as parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    /// What it is.
    pub kind: ExprKind,
    /// Where it is.
    pub span: Span,
}

/// The shapes of a rule, one per grammar production.
#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    /// `a OR b`
    Or(Box<Expr>, Box<Expr>),
    /// `a AND b`
    And(Box<Expr>, Box<Expr>),
    /// `NOT a`
    Not(Box<Expr>),
    /// `value cmp value`
    Compare {
        /// Left side.
        left: Value,
        /// Operator.
        op: CmpOp,
        /// Right side.
        right: Value,
    },
    /// `value [NOT] IN (lit, ...)`
    InList {
        /// Tested value.
        value: Value,
        /// Candidates.
        list: Vec<SpannedLiteral>,
        /// `NOT IN`.
        negated: bool,
    },
    /// `value [NOT] BETWEEN low AND high` (inclusive)
    Between {
        /// Tested value.
        value: Value,
        /// Lower bound.
        low: SpannedLiteral,
        /// Upper bound.
        high: SpannedLiteral,
        /// `NOT BETWEEN`.
        negated: bool,
    },
    /// `value IS [NOT] NULL`
    IsNull {
        /// Tested value.
        value: Value,
        /// `IS NOT NULL`.
        negated: bool,
    },
    /// `value [NOT] CONTAINS|STARTS_WITH|ENDS_WITH 'text'`
    StringMatch {
        /// Tested value.
        value: Value,
        /// Operator.
        op: StringOp,
        /// The text to look for.
        pattern: String,
        /// Negated form.
        negated: bool,
    },
    /// `in_segment('name')`
    InSegment {
        /// The segment's name.
        name: String,
    },
    /// A bare boolean attribute or trait.
    Truthy(Value),
}

/// An aggregate function of the trait language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggFunc {
    /// `count()` events, `count(col)` non-null values.
    Count,
    /// `sum(col)`; 0 when there is nothing to sum.
    Sum,
    /// `avg(col)`
    Avg,
    /// `min(col)`
    Min,
    /// `max(col)`
    Max,
    /// `count_distinct(col)`
    CountDistinct,
    /// `first_seen()`: time of the first matching event.
    FirstSeen,
    /// `last_seen()`: time of the last matching event.
    LastSeen,
    /// `days_since_last()`: whole days from the last matching event to the as-of instant.
    DaysSinceLast,
    /// `days_since_first()`: whole days from the first matching event to the as-of instant.
    DaysSinceFirst,
    /// `share(CONDITION)`: the share of matching rows for which CONDITION is TRUE (a float in
    /// [0, 1]); NULL when no row matches.
    Share,
    /// `median(col)`: `percentile(col, 0.5)`.
    Median,
    /// `percentile(col, p)`: the continuous percentile, interpolated between the two nearest
    /// values as DuckDB's `quantile_cont` does (a float; NULL without rows).
    Percentile(Fraction),
    /// `percentile_disc(col, p)`: the discrete percentile, one of the values, as DuckDB's
    /// `quantile_disc` (the column's type; NULL without rows).
    PercentileDisc(Fraction),
}

impl AggFunc {
    /// Every function, in documentation order; the percentiles with the placeholder fraction
    /// 0.5 (the parser reads the real one from the text).
    pub const ALL: [AggFunc; 14] = [
        AggFunc::Count,
        AggFunc::Sum,
        AggFunc::Avg,
        AggFunc::Min,
        AggFunc::Max,
        AggFunc::CountDistinct,
        AggFunc::FirstSeen,
        AggFunc::LastSeen,
        AggFunc::DaysSinceLast,
        AggFunc::DaysSinceFirst,
        AggFunc::Share,
        AggFunc::Median,
        AggFunc::Percentile(Fraction::HALF),
        AggFunc::PercentileDisc(Fraction::HALF),
    ];

    /// The function's name as written.
    pub fn name(self) -> &'static str {
        match self {
            AggFunc::Count => "count",
            AggFunc::Sum => "sum",
            AggFunc::Avg => "avg",
            AggFunc::Min => "min",
            AggFunc::Max => "max",
            AggFunc::CountDistinct => "count_distinct",
            AggFunc::FirstSeen => "first_seen",
            AggFunc::LastSeen => "last_seen",
            AggFunc::DaysSinceLast => "days_since_last",
            AggFunc::DaysSinceFirst => "days_since_first",
            AggFunc::Share => "share",
            AggFunc::Median => "median",
            AggFunc::Percentile(_) => "percentile",
            AggFunc::PercentileDisc(_) => "percentile_disc",
        }
    }

    /// The fraction of a percentile (0.5 for the median); `None` for the other aggregates.
    pub fn fraction(self) -> Option<Fraction> {
        match self {
            AggFunc::Median => Some(Fraction::HALF),
            AggFunc::Percentile(p) | AggFunc::PercentileDisc(p) => Some(p),
            _ => None,
        }
    }
}

/// The fraction `p` of a percentile, a number in [0, 1].
///
/// It is kept as written when written as a decimal (`0.3` is 3 / 10, not the nearest double):
/// DuckDB reads such a literal as a DECIMAL and finds the row of `quantile_disc` in exact
/// integer arithmetic, and segmenta does the same. Written with an exponent (`3e-1`), it is
/// the double the text denotes, and the row is found in floating point, as in DuckDB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fraction {
    /// The bits of the value as a double (never NaN, never -0.0).
    bits: u64,
    /// `(units, scale)`: the value is `units / 10^scale`, when written as a decimal.
    decimal: Option<(i64, u32)>,
}

impl Fraction {
    /// One half, written `0.5`.
    pub const HALF: Fraction = Fraction { bits: 0x3FE0_0000_0000_0000, decimal: Some((5, 1)) };

    /// The most digits after the point a decimal fraction may have.
    pub const MAX_SCALE: u32 = 18;

    /// `units / 10^scale`, if it lies in [0, 1] and `scale` is at most [`Fraction::MAX_SCALE`].
    pub fn from_decimal(units: i64, scale: u32) -> Option<Fraction> {
        if scale > Fraction::MAX_SCALE || units < 0 || units > 10i64.pow(scale) {
            return None;
        }
        // The double DuckDB uses for the interpolation: the decimal's text read as a double.
        let text = format!("{units}e-{scale}");
        let value: f64 = text.parse().ok()?;
        Some(Fraction { bits: (value + 0.0).to_bits(), decimal: Some((units, scale)) })
    }

    /// A fraction given as a double, if it lies in [0, 1].
    pub fn from_f64(value: f64) -> Option<Fraction> {
        // `+ 0.0` turns -0.0 into 0.0.
        (0.0..=1.0).contains(&value).then(|| Fraction { bits: (value + 0.0).to_bits(), decimal: None })
    }

    /// The value as a double.
    pub fn value(self) -> f64 {
        f64::from_bits(self.bits)
    }

    /// `(units, scale)` when written as a decimal: the value is `units / 10^scale`.
    pub fn decimal(self) -> Option<(i64, u32)> {
        self.decimal
    }
}

/// A trait as parsed: `AGG(ARG?) [where CONDITION] [within DURATION | between DAY and DAY]`.
#[derive(Debug, Clone, PartialEq)]
pub struct TraitExpr {
    /// The aggregate.
    pub agg: AggFunc,
    /// Span of the aggregate's name.
    pub agg_span: Span,
    /// The argument, if any: a column, or a value computed from the row's columns.
    pub arg: Option<Value>,
    /// The argument condition of `share(CONDITION)`.
    pub condition: Option<Expr>,
    /// The `where` condition over event columns.
    pub filter: Option<Expr>,
    /// The window (`within 90d`, `within 6mo`, `between 2025-01-01 and 2025-03-31`) and its
    /// span.
    pub within: Option<(Within, Span)>,
}

/// A typed constant. `Date` is days since the epoch; `Timestamp` is microseconds, UTC.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    /// SQL NULL (only produced by evaluation, never by literals).
    Null,
    /// Text.
    String(String),
    /// Integer.
    Int(i64),
    /// Float.
    Float(f64),
    /// Boolean.
    Bool(bool),
    /// Days since 1970-01-01.
    Date(i32),
    /// Microseconds since the epoch, UTC.
    Timestamp(i64),
}

impl Scalar {
    /// The scalar's type; `None` for NULL.
    pub fn value_type(&self) -> Option<ValueType> {
        Some(match self {
            Scalar::Null => return None,
            Scalar::String(_) => ValueType::String,
            Scalar::Int(_) => ValueType::Int,
            Scalar::Float(_) => ValueType::Float,
            Scalar::Bool(_) => ValueType::Bool,
            Scalar::Date(_) => ValueType::Date,
            Scalar::Timestamp(_) => ValueType::Timestamp,
        })
    }
}

/// Where a resolved column comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnSource {
    /// An attribute of the entity.
    Attribute,
    /// A trait computed from events.
    Trait,
    /// An attribute of the parent entity (`parent.attr`).
    ParentAttribute,
    /// A column of the event table (in trait conditions).
    EventColumn,
}

/// What the catalog knows about a column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnInfo {
    /// The column's name in the evaluation table (`parent.industry` for parent attributes).
    pub column: String,
    /// Its type.
    pub ty: ValueType,
    /// Where it comes from.
    pub source: ColumnSource,
}

/// A resolved operand. Types have been checked and coerced: `ty` is the type the operand is
/// compared as (an `int` column compared with a float column is read as `float`; a `date`
/// compared with a `timestamp` is read as midnight UTC).
#[derive(Debug, Clone, PartialEq)]
pub enum TypedValue {
    /// A column, read as `ty` (which may differ from `column.ty` by a widening cast).
    Column {
        /// The column.
        column: ColumnInfo,
        /// The type it is compared as.
        ty: ValueType,
    },
    /// A constant of its own type (already coerced).
    Literal(Scalar),
    /// A computed value: arithmetic, a function, or a widening. Its arguments have the types
    /// [`Func`] documents.
    Apply {
        /// What is computed.
        func: Func,
        /// The arguments.
        args: Vec<TypedValue>,
        /// The result's type.
        ty: ValueType,
        /// The expression as written (canonically), for messages.
        text: String,
    },
}

impl TypedValue {
    /// The type the operand is evaluated as; `None` only for a NULL literal.
    pub fn value_type(&self) -> Option<ValueType> {
        match self {
            TypedValue::Column { ty, .. } | TypedValue::Apply { ty, .. } => Some(*ty),
            TypedValue::Literal(s) => s.value_type(),
        }
    }

    /// The columns the value reads, in text order, repeats kept.
    pub fn columns(&self) -> Vec<&ColumnInfo> {
        let mut found = Vec::new();
        let mut stack = vec![self];
        while let Some(value) = stack.pop() {
            match value {
                TypedValue::Column { column, .. } => found.push(column),
                TypedValue::Literal(_) => {}
                TypedValue::Apply { args, .. } => stack.extend(args.iter().rev()),
            }
        }
        found
    }
}

/// What a [`TypedValue::Apply`] computes. Every function is NULL when an argument is NULL
/// (but `coalesce`), and every evaluator computes it as [`crate::eval::apply`] does:
///
/// - `Add`, `Sub`, `Mul`: two ints (checked: a result past 64 bits is an error) or two floats.
/// - `Div`: two floats; NULL when the divisor is zero.
/// - A float result that is not finite is an error ("too large for a float"); a float result
///   of -0.0 is 0.0, so segmenta never holds a negative zero.
/// - `Round(d)`: an int (unchanged when `d >= 0`, else to a multiple of `10^-d`, half away
///   from zero, checked) or a float (DuckDB's `round(x, d)`: `round(x * 10^d) / 10^d`, the input
///   when that is not finite; for `d < 0`, `round(x / 10^-d) * 10^-d`, 0 when not finite).
/// - `Abs`: an int (checked) or a float.
/// - `Coalesce`: arguments of the result's type; the first that is not NULL.
/// - `Widen`: one argument, an int read as a float or a date as a timestamp (midnight UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Func {
    /// `a + b`
    Add,
    /// `a - b`
    Sub,
    /// `a * b`
    Mul,
    /// `a / b`
    Div,
    /// `round(x, digits)`
    Round(i32),
    /// `abs(x)`
    Abs,
    /// `coalesce(a, b, ...)`
    Coalesce,
    /// An int as a float, a date as a timestamp.
    Widen,
}

impl Func {
    /// The function of an arithmetic operator.
    pub fn of(op: ArithOp) -> Func {
        match op {
            ArithOp::Add => Func::Add,
            ArithOp::Sub => Func::Sub,
            ArithOp::Mul => Func::Mul,
            ArithOp::Div => Func::Div,
        }
    }
}

/// A resolved, type-checked rule.
#[derive(Debug, Clone, PartialEq)]
pub enum TypedExpr {
    /// `a OR b`
    Or(Box<TypedExpr>, Box<TypedExpr>),
    /// `a AND b`
    And(Box<TypedExpr>, Box<TypedExpr>),
    /// `NOT a`
    Not(Box<TypedExpr>),
    /// Both sides have the same type.
    Compare {
        /// Left side.
        left: TypedValue,
        /// Operator.
        op: CmpOp,
        /// Right side.
        right: TypedValue,
    },
    /// Every list item has the value's type.
    InList {
        /// Tested value.
        value: TypedValue,
        /// Candidates.
        list: Vec<Scalar>,
        /// `NOT IN`.
        negated: bool,
    },
    /// Bounds have the value's type; inclusive.
    Between {
        /// Tested value.
        value: TypedValue,
        /// Lower bound.
        low: Scalar,
        /// Upper bound.
        high: Scalar,
        /// `NOT BETWEEN`.
        negated: bool,
    },
    /// Never unknown.
    IsNull {
        /// Tested value.
        value: TypedValue,
        /// `IS NOT NULL`.
        negated: bool,
    },
    /// The value is a string.
    StringMatch {
        /// Tested value.
        value: TypedValue,
        /// Operator.
        op: StringOp,
        /// Text to look for (case-sensitive).
        pattern: String,
        /// Negated form.
        negated: bool,
    },
    /// TRUE iff the entity is a member of the named segment; never unknown.
    InSegment(String),
    /// A boolean operand.
    Truthy(TypedValue),
}

impl TypedExpr {
    /// The operands the rule compares and the segments it references through `in_segment()`,
    /// in text order, repeats kept.
    pub fn operands(&self) -> (Vec<&TypedValue>, Vec<&str>) {
        let (mut values, mut segments) = (Vec::new(), Vec::new());
        // An explicit stack: trees built by hand may be deeper than the parser allows.
        let mut stack = vec![self];
        while let Some(expr) = stack.pop() {
            match expr {
                TypedExpr::Or(a, b) | TypedExpr::And(a, b) => {
                    stack.push(b);
                    stack.push(a);
                }
                TypedExpr::Not(a) => stack.push(a),
                TypedExpr::Compare { left, right, .. } => values.extend([left, right]),
                TypedExpr::InList { value: v, .. }
                | TypedExpr::Between { value: v, .. }
                | TypedExpr::IsNull { value: v, .. }
                | TypedExpr::StringMatch { value: v, .. }
                | TypedExpr::Truthy(v) => values.push(v),
                TypedExpr::InSegment(name) => segments.push(name.as_str()),
            }
        }
        (values, segments)
    }

    /// The evaluation columns the rule reads and the segments it references through
    /// `in_segment()`, in text order, repeats kept.
    pub fn references(&self) -> (Vec<String>, Vec<String>) {
        let (values, segments) = self.operands();
        let columns = values.iter().flat_map(|v| v.columns()).map(|c| c.column.clone()).collect();
        (columns, segments.into_iter().map(String::from).collect())
    }

    /// Whether the rule computes a value (arithmetic or a function), which may be out of range.
    pub fn computes(&self) -> bool {
        self.operands().0.iter().any(|v| matches!(v, TypedValue::Apply { .. }))
    }
}

/// A resolved trait, ready to be lowered into one filtered aggregate.
#[derive(Debug, Clone, PartialEq)]
pub struct TypedTrait {
    /// The aggregate.
    pub agg: AggFunc,
    /// The argument, if any: a column of the rows (an event column), or a value computed from
    /// them (`price * quantity`).
    pub arg: Option<TypedValue>,
    /// The argument condition of `share(CONDITION)`.
    pub condition: Option<TypedExpr>,
    /// The condition over event columns.
    pub filter: Option<TypedExpr>,
    /// The window.
    pub within: Option<Within>,
    /// The trait's output type.
    pub output: ValueType,
}
