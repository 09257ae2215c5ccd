//! Resolution: looks names up in an [`AttributeCatalog`], checks types, applies the implicit
//! widenings (int to float, date to timestamp, strings compared with dates to dates), and
//! reports every problem found, not only the first.

use segmenta_core::ValueType;

use crate::AttributeCatalog;
use crate::ast::{
    AggFunc, ArithOp, CallFunc, CmpOp, ColumnInfo, Expr, ExprKind, Func, Ident, Literal, Scalar, Span,
    TraitExpr, TypedExpr, TypedTrait, TypedValue, Value, ValueKind,
};
use crate::diagnostic::{Diagnostic, suggestion};
use crate::literal::{parse_date, parse_timestamp};

/// An operand whose name has been looked up.
enum Operand<'e> {
    Column {
        info: ColumnInfo,
        ident: &'e Ident,
        span: Span,
    },
    Literal {
        literal: &'e Literal,
        span: Span,
    },
    /// Arithmetic or a function, resolved.
    Computed {
        value: TypedValue,
        ty: ValueType,
        span: Span,
        text: String,
    },
}

/// Families of types that can be compared with each other.
#[derive(PartialEq, Eq)]
enum Family {
    Numeric,
    Temporal,
    Text,
    Boolean,
}

fn family(ty: ValueType) -> Family {
    match ty {
        ValueType::Int | ValueType::Float => Family::Numeric,
        ValueType::Date | ValueType::Timestamp => Family::Temporal,
        ValueType::String => Family::Text,
        ValueType::Bool => Family::Boolean,
    }
}

fn literal_type(literal: &Literal) -> ValueType {
    match literal {
        Literal::Number { int: Some(_), .. } => ValueType::Int,
        Literal::Number { int: None, .. } => ValueType::Float,
        Literal::String(_) => ValueType::String,
        Literal::Bool(_) => ValueType::Bool,
        Literal::Date(_) => ValueType::Date,
        Literal::Timestamp(_) => ValueType::Timestamp,
    }
}

/// The wider of two types of one family.
fn widen(a: ValueType, b: ValueType) -> ValueType {
    match (a, b) {
        (ValueType::Float, _) | (_, ValueType::Float) => ValueType::Float,
        (ValueType::Timestamp, _) | (_, ValueType::Timestamp) => ValueType::Timestamp,
        _ => a,
    }
}

fn orderable(ty: ValueType) -> bool {
    ty != ValueType::Bool
}

/// "a string", "an int".
fn with_article(ty: ValueType) -> String {
    let article = if ty == ValueType::Int { "an" } else { "a" };
    format!("{article} {ty}")
}

/// The literal converted to `target`, if it can be.
fn coerce(literal: &Literal, target: ValueType) -> Option<Scalar> {
    Some(match (literal, target) {
        (Literal::Number { int: Some(int), .. }, ValueType::Int) => Scalar::Int(*int),
        (Literal::Number { value, .. }, ValueType::Float) => Scalar::Float(*value),
        (Literal::String(s), ValueType::String) => Scalar::String(s.clone()),
        (Literal::String(s), ValueType::Date) => Scalar::Date(parse_date(s)?),
        (Literal::String(s), ValueType::Timestamp) => Scalar::Timestamp(parse_timestamp(s)?),
        (Literal::Bool(b), ValueType::Bool) => Scalar::Bool(*b),
        (Literal::Date(days), ValueType::Date) => Scalar::Date(*days),
        (Literal::Date(days), ValueType::Timestamp) => {
            Scalar::Timestamp(i64::from(*days).checked_mul(segmenta_core::MICROS_PER_DAY)?)
        }
        (Literal::Timestamp(micros), ValueType::Timestamp) => Scalar::Timestamp(*micros),
        _ => return None,
    })
}

impl Operand<'_> {
    fn ty(&self) -> ValueType {
        match self {
            Operand::Column { info, .. } => info.ty,
            Operand::Literal { literal, .. } => literal_type(literal),
            Operand::Computed { ty, .. } => *ty,
        }
    }

    fn span(&self) -> Span {
        match self {
            Operand::Column { span, .. } | Operand::Literal { span, .. } | Operand::Computed { span, .. } => {
                *span
            }
        }
    }

    /// "`industry` (string)", "5 (int)" or "`a + b` (float)".
    fn describe(&self) -> String {
        match self {
            Operand::Column { ident, info, .. } => format!("`{}` ({})", ident_text(ident), info.ty),
            Operand::Literal { literal, .. } => format!("{literal} ({})", literal_type(literal)),
            Operand::Computed { text, ty, .. } => format!("`{text}` ({ty})"),
        }
    }

    /// A float literal (`2.5`), which an int compares with exactly.
    fn float_literal(&self) -> Option<f64> {
        match self {
            Operand::Literal { literal: Literal::Number { value, int: None }, .. } => Some(*value),
            _ => None,
        }
    }

    /// The type this operand contributes when compared with a value of `anchor`'s family, or
    /// `None` when it cannot be compared with it.
    fn compatible_type(&self, anchor: ValueType) -> Option<ValueType> {
        let ty = self.ty();
        if family(ty) == family(anchor) {
            return Some(ty);
        }
        // Like SQL, a string constant compared with a date or timestamp is read as one.
        match self {
            Operand::Literal { literal: Literal::String(s), .. } if family(anchor) == Family::Temporal => {
                if parse_date(s).is_some() {
                    Some(ValueType::Date)
                } else {
                    parse_timestamp(s).map(|_| ValueType::Timestamp)
                }
            }
            _ => None,
        }
    }

    fn typed(&self, target: ValueType) -> Option<TypedValue> {
        match self {
            Operand::Column { info, .. } => Some(TypedValue::Column { column: info.clone(), ty: target }),
            Operand::Literal { literal, .. } => coerce(literal, target).map(TypedValue::Literal),
            Operand::Computed { value, ty, .. } if *ty == target => Some(value.clone()),
            Operand::Computed { value, text, .. } => Some(TypedValue::Apply {
                func: Func::Widen,
                args: vec![value.clone()],
                ty: target,
                text: text.clone(),
            }),
        }
    }
}

/// 2^63 as a float: the ints are the whole numbers in [-2^63, 2^63).
const TWO_63: f64 = 9_223_372_036_854_775_808.0;

/// `value op f` for an int `value` and a float constant `f`, written as an exact comparison
/// of ints: the int is not rounded to a float (which would make 2^53 + 1 equal to 2^53).
fn exact_compare(value: TypedValue, op: CmpOp, f: f64) -> TypedExpr {
    let int = |i: i64| TypedValue::Literal(Scalar::Int(i));
    // TRUE and FALSE for every int, NULL for NULL, as the comparison they stand for.
    let always = |value: TypedValue, truth: bool| TypedExpr::Compare {
        left: value,
        op: if truth { CmpOp::GtEq } else { CmpOp::Lt },
        right: int(i64::MIN),
    };
    let floor = f.floor();
    if f == floor {
        if floor >= TWO_63 {
            return always(value, matches!(op, CmpOp::Lt | CmpOp::LtEq | CmpOp::NotEq));
        }
        if floor < -TWO_63 {
            return always(value, matches!(op, CmpOp::Gt | CmpOp::GtEq | CmpOp::NotEq));
        }
        return TypedExpr::Compare { left: value, op, right: int(floor as i64) };
    }
    // Not whole: never equal; above it means above its floor, below it at most its floor.
    let above = matches!(op, CmpOp::Gt | CmpOp::GtEq);
    match op {
        CmpOp::Eq | CmpOp::NotEq => always(value, op == CmpOp::NotEq),
        _ if floor >= TWO_63 => always(value, !above),
        _ if floor < -TWO_63 => always(value, above),
        _ => TypedExpr::Compare {
            left: value,
            op: if above { CmpOp::Gt } else { CmpOp::LtEq },
            right: int(floor as i64),
        },
    }
}

/// The int bounds `[low, high]` equivalent to number bounds (ints kept as they are, floats
/// rounded inwards) for an int value; an empty range (`low > high`) when no int lies between.
fn exact_bounds(low: Result<i64, f64>, high: Result<i64, f64>) -> (i64, i64) {
    const EMPTY: (i64, i64) = (i64::MAX, i64::MIN);
    let low = match low {
        Ok(int) => int,
        Err(f) if f.ceil() >= TWO_63 => return EMPTY,
        Err(f) if f.ceil() < -TWO_63 => i64::MIN,
        Err(f) => f.ceil() as i64,
    };
    let high = match high {
        Ok(int) => int,
        Err(f) if f.floor() < -TWO_63 => return EMPTY,
        Err(f) if f.floor() >= TWO_63 => i64::MAX,
        Err(f) => f.floor() as i64,
    };
    if low > high { EMPTY } else { (low, high) }
}

/// A number literal as an int when it is one, else as a float; `None` for other literals.
fn literal_number(literal: &Literal) -> Option<Result<i64, f64>> {
    match literal {
        Literal::Number { int: Some(int), .. } => Some(Ok(*int)),
        Literal::Number { value, int: None } => Some(Err(*value)),
        _ => None,
    }
}

/// The int a number literal equals, if any: an int, or a whole float inside the ints.
fn whole(number: Result<i64, f64>) -> Option<i64> {
    match number {
        Ok(int) => Some(int),
        Err(f) if f.fract() == 0.0 && (-TWO_63..TWO_63).contains(&f) => Some(f as i64),
        Err(_) => None,
    }
}

/// `parent.name` without backquotes, as used inside messages.
fn ident_text(ident: &Ident) -> String {
    match &ident.qualifier {
        Some(qualifier) => format!("{qualifier}.{}", ident.name),
        None => ident.name.clone(),
    }
}

/// A literal's text without quotes, for examples in hints.
fn bare(literal: &Literal) -> String {
    match literal {
        Literal::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// How to fix a comparison of `anchor` with the incompatible `other`.
fn mismatch_hint(anchor: &Operand<'_>, other: &Operand<'_>, op: &str) -> Option<String> {
    let Operand::Column { ident, info, .. } = anchor else { return None };
    let name = ident.to_string();
    let Operand::Literal { literal, .. } = other else {
        return Some("both sides must have compatible types".into());
    };
    Some(match info.ty {
        ValueType::String => format!("compare with a string, e.g. {name} {op} '{}'", bare(literal)),
        ValueType::Int | ValueType::Float => match literal {
            Literal::String(s) if s.trim().parse::<f64>().is_ok() => {
                format!("remove the quotes, e.g. {name} {op} {}", s.trim())
            }
            _ => format!("compare with a number, e.g. {name} {op} 100"),
        },
        ValueType::Bool => format!("compare with true or false, e.g. {name} = true"),
        ValueType::Date => "write DATE 'YYYY-MM-DD'".into(),
        ValueType::Timestamp => "write TIMESTAMP 'YYYY-MM-DDTHH:MM:SSZ' or DATE 'YYYY-MM-DD'".into(),
    })
}

struct Resolver<'c> {
    catalog: &'c dyn AttributeCatalog,
    diagnostics: Vec<Diagnostic>,
}

impl Resolver<'_> {
    fn operand<'e>(&mut self, value: &'e Value) -> Option<Operand<'e>> {
        match &value.kind {
            ValueKind::Literal(literal) => Some(Operand::Literal { literal, span: value.span }),
            ValueKind::Arith { .. } | ValueKind::Neg(_) | ValueKind::Call { .. } => {
                let (value_typed, ty) = self.computed(value)?;
                Some(Operand::Computed { value: value_typed, ty, span: value.span, text: value.to_string() })
            }
            ValueKind::Ident(ident) => match self.catalog.lookup(ident) {
                Some(info) => Some(Operand::Column { info, ident, span: value.span }),
                None => {
                    let text = ident_text(ident);
                    let mut diagnostic = Diagnostic::new(
                        "unknown_attribute",
                        format!("unknown attribute `{text}`"),
                        value.span,
                    );
                    diagnostic.hint = suggestion(&text, &self.catalog.names(), "attributes");
                    // Not a typo of a column: perhaps a text value written without quotes.
                    if let Some(hint) = diagnostic.hint.as_mut().filter(|h| !h.starts_with("did you mean"))
                        && !text.contains('.')
                    {
                        hint.push_str(&format!("; a text value is written in single quotes: '{text}'"));
                    }
                    self.diagnostics.push(diagnostic);
                    None
                }
            },
        }
    }

    /// A numeric operand of arithmetic or of `round` / `abs`, or a diagnostic.
    fn numeric<'e>(&mut self, value: &'e Value, what: &str) -> Option<Operand<'e>> {
        let operand = self.operand(value)?;
        if operand.ty().is_numeric() {
            return Some(operand);
        }
        let hint = match &operand {
            Operand::Literal { literal: Literal::String(s), .. } if s.trim().parse::<f64>().is_ok() => {
                format!("remove the quotes: {}", s.trim())
            }
            _ => "arithmetic, round() and abs() take int or float values".to_string(),
        };
        self.diagnostics.push(
            Diagnostic::new("type_mismatch", format!("cannot {what} {}", operand.describe()), value.span)
                .with_hint(hint),
        );
        None
    }

    /// Resolves arithmetic or a function call: its typed form and type.
    fn computed(&mut self, value: &Value) -> Option<(TypedValue, ValueType)> {
        let text = value.to_string();
        let apply = |func, args, ty| Some((TypedValue::Apply { func, args, ty, text: text.clone() }, ty));
        match &value.kind {
            ValueKind::Arith { op, left, right } => {
                let verb = match op {
                    ArithOp::Add => "add",
                    ArithOp::Sub => "subtract",
                    ArithOp::Mul => "multiply",
                    ArithOp::Div => "divide",
                };
                let (left, right) = (self.numeric(left, verb), self.numeric(right, verb));
                let (left, right) = (left?, right?);
                let ty =
                    if *op == ArithOp::Div || left.ty() == ValueType::Float || right.ty() == ValueType::Float
                    {
                        ValueType::Float
                    } else {
                        ValueType::Int
                    };
                apply(Func::of(*op), vec![left.typed(ty)?, right.typed(ty)?], ty)
            }
            ValueKind::Neg(inner) => {
                let inner = self.numeric(inner, "negate")?;
                let ty = inner.ty();
                let zero = if ty == ValueType::Int { Scalar::Int(0) } else { Scalar::Float(0.0) };
                apply(Func::Sub, vec![TypedValue::Literal(zero), inner.typed(ty)?], ty)
            }
            ValueKind::Call { func, args, name_span } => {
                let name = func.name();
                let arity = match func {
                    CallFunc::Round => 1..=2,
                    CallFunc::Abs => 1..=1,
                    CallFunc::Coalesce => 1..=usize::MAX,
                };
                if !arity.contains(&args.len()) {
                    let (message, hint) = match func {
                        CallFunc::Round => (
                            "round takes a value and an optional number of digits",
                            "write round(x) or round(x, 2)",
                        ),
                        CallFunc::Abs => ("abs takes one value", "write abs(x)"),
                        CallFunc::Coalesce => ("coalesce takes at least one value", "write coalesce(x, 0)"),
                    };
                    self.diagnostics.push(
                        Diagnostic::new(
                            "invalid_argument",
                            format!("{message}, found {}", args.len()),
                            value.span,
                        )
                        .with_hint(hint),
                    );
                    return None;
                }
                match func {
                    CallFunc::Round | CallFunc::Abs => {
                        let x = self.numeric(&args[0], &format!("take {name} of"))?;
                        let ty = x.ty();
                        let digits = match args.get(1) {
                            None => 0,
                            Some(digits) => match &digits.kind {
                                ValueKind::Literal(Literal::Number { int: Some(d), .. })
                                    if (-1000..=1000).contains(d) =>
                                {
                                    *d as i32
                                }
                                _ => {
                                    self.diagnostics.push(
                                        Diagnostic::new(
                                            "invalid_argument",
                                            format!("the digits of round must be a whole number from -1000 to 1000, found `{digits}`"),
                                            digits.span,
                                        )
                                        .with_hint("write e.g. round(x, 2) for two decimals or round(x, -3) for thousands"),
                                    );
                                    return None;
                                }
                            },
                        };
                        let func = if *func == CallFunc::Abs { Func::Abs } else { Func::Round(digits) };
                        apply(func, vec![x.typed(ty)?], ty)
                    }
                    CallFunc::Coalesce => {
                        let operands: Vec<Option<Operand<'_>>> =
                            args.iter().map(|a| self.operand(a)).collect();
                        let operands: Vec<Operand<'_>> = operands.into_iter().collect::<Option<_>>()?;
                        let anchor =
                            operands.iter().position(|o| !matches!(o, Operand::Literal { .. })).unwrap_or(0);
                        let mut ty = operands[anchor].ty();
                        for operand in &operands {
                            match operand.compatible_type(operands[anchor].ty()) {
                                Some(other) => ty = widen(ty, other),
                                None => {
                                    self.diagnostics.push(
                                        Diagnostic::new(
                                            "type_mismatch",
                                            format!(
                                                "the values of coalesce must have one type: {} and {}",
                                                operands[anchor].describe(),
                                                operand.describe()
                                            ),
                                            operand.span(),
                                        )
                                        .with_hint(format!(
                                            "give {name} values of one type, e.g. coalesce(x, 0) for a number"
                                        )),
                                    );
                                    return None;
                                }
                            }
                        }
                        let _ = name_span;
                        let typed: Option<Vec<TypedValue>> = operands.iter().map(|o| o.typed(ty)).collect();
                        apply(Func::Coalesce, typed?, ty)
                    }
                }
            }
            ValueKind::Ident(_) | ValueKind::Literal(_) => None,
        }
    }

    /// Brings `operands` to one type, anchored on `operands[anchor]`: every other operand must
    /// be compatible with it, and the result is the widest type among them. `op` is the
    /// operator shown in hints.
    fn unify(
        &mut self,
        operands: &[&Operand<'_>],
        anchor: usize,
        op: &str,
    ) -> Option<(ValueType, Vec<TypedValue>)> {
        let anchor_operand = operands[anchor];
        let mut target = anchor_operand.ty();
        let mut ok = true;
        for (i, operand) in operands.iter().enumerate() {
            if i == anchor {
                continue;
            }
            match operand.compatible_type(anchor_operand.ty()) {
                Some(ty) => target = widen(target, ty),
                None => {
                    ok = false;
                    let message =
                        format!("cannot compare {} with {}", anchor_operand.describe(), operand.describe());
                    let mut diagnostic = Diagnostic::new("type_mismatch", message, operand.span());
                    diagnostic.hint = mismatch_hint(anchor_operand, operand, op);
                    self.diagnostics.push(diagnostic);
                }
            }
        }
        if !ok {
            return None;
        }
        let mut typed = Vec::with_capacity(operands.len());
        for operand in operands {
            match operand.typed(target) {
                Some(value) => typed.push(value),
                None => {
                    // Only a date too far from 1970 to be a timestamp gets here.
                    self.diagnostics.push(Diagnostic::new(
                        "type_mismatch",
                        format!("cannot read {} as {}", operand.describe(), with_article(target)),
                        operand.span(),
                    ));
                    return None;
                }
            }
        }
        Some((target, typed))
    }

    fn not_orderable(&mut self, operand: &Operand<'_>, ty: ValueType, op: &str, span: Span) {
        self.diagnostics.push(
            Diagnostic::new(
                "type_mismatch",
                format!("cannot use `{op}` on {} values such as {}", ty, operand.describe()),
                span,
            )
            .with_hint("booleans can only be compared with = and !="),
        );
    }

    fn literals<'e>(list: impl IntoIterator<Item = &'e crate::ast::SpannedLiteral>) -> Vec<Operand<'e>> {
        list.into_iter().map(|item| Operand::Literal { literal: &item.literal, span: item.span }).collect()
    }

    fn scalars(values: Vec<TypedValue>) -> Option<Vec<Scalar>> {
        values
            .into_iter()
            .map(|v| match v {
                TypedValue::Literal(scalar) => Some(scalar),
                TypedValue::Column { .. } | TypedValue::Apply { .. } => None,
            })
            .collect()
    }

    fn expr(&mut self, expr: &Expr) -> Option<TypedExpr> {
        match &expr.kind {
            ExprKind::Or(left, right) => {
                let (left, right) = (self.expr(left), self.expr(right));
                Some(TypedExpr::Or(Box::new(left?), Box::new(right?)))
            }
            ExprKind::And(left, right) => {
                let (left, right) = (self.expr(left), self.expr(right));
                Some(TypedExpr::And(Box::new(left?), Box::new(right?)))
            }
            ExprKind::Not(inner) => Some(TypedExpr::Not(Box::new(self.expr(inner)?))),
            ExprKind::Compare { left, op, right } => {
                let (left, right) = (self.operand(left), self.operand(right));
                let (left, right) = (left?, right?);
                // An int compared with a float constant: exactly, as ints.
                if left.ty() == ValueType::Int
                    && !matches!(left, Operand::Literal { .. })
                    && let Some(f) = right.float_literal()
                {
                    return Some(exact_compare(left.typed(ValueType::Int)?, *op, f));
                }
                if right.ty() == ValueType::Int
                    && !matches!(right, Operand::Literal { .. })
                    && let Some(f) = left.float_literal()
                {
                    return Some(exact_compare(right.typed(ValueType::Int)?, op.flipped(), f));
                }
                let anchor = usize::from(
                    matches!(left, Operand::Literal { .. }) && !matches!(right, Operand::Literal { .. }),
                );
                let (ty, mut typed) = self.unify(&[&left, &right], anchor, op.symbol())?;
                let ordering = !matches!(op, CmpOp::Eq | CmpOp::NotEq);
                if ordering && !orderable(ty) {
                    let anchor_operand = if anchor == 0 { &left } else { &right };
                    self.not_orderable(anchor_operand, ty, op.symbol(), expr.span);
                    return None;
                }
                let right = typed.pop()?;
                let left = typed.pop()?;
                Some(TypedExpr::Compare { left, op: *op, right })
            }
            ExprKind::InList { value, list, negated } => {
                let value = self.operand(value)?;
                let numbers: Option<Vec<Result<i64, f64>>> =
                    list.iter().map(|item| literal_number(&item.literal)).collect();
                if value.ty() == ValueType::Int
                    && !matches!(value, Operand::Literal { .. })
                    && list.iter().any(|item| matches!(item.literal, Literal::Number { int: None, .. }))
                    && let Some(numbers) = numbers
                {
                    // An int equals only the whole numbers of the list, compared as ints.
                    let typed = value.typed(ValueType::Int)?;
                    let ints: Vec<Scalar> = numbers.into_iter().filter_map(whole).map(Scalar::Int).collect();
                    if ints.is_empty() {
                        return Some(exact_compare(
                            typed,
                            if *negated { CmpOp::NotEq } else { CmpOp::Eq },
                            0.5,
                        ));
                    }
                    return Some(TypedExpr::InList { value: typed, list: ints, negated: *negated });
                }
                let items = Self::literals(list);
                let mut operands = vec![&value];
                operands.extend(items.iter());
                let (_, mut typed) = self.unify(&operands, 0, "=")?;
                let list = Self::scalars(typed.split_off(1))?;
                let value = typed.pop()?;
                Some(TypedExpr::InList { value, list, negated: *negated })
            }
            ExprKind::Between { value, low, high, negated } => {
                let value = self.operand(value)?;
                let any_float =
                    [low, high].iter().any(|b| matches!(b.literal, Literal::Number { int: None, .. }));
                if value.ty() == ValueType::Int
                    && !matches!(value, Operand::Literal { .. })
                    && any_float
                    && let (Some(lo), Some(hi)) =
                        (literal_number(&low.literal), literal_number(&high.literal))
                {
                    // An int between float bounds: between the ints inside them, exactly.
                    let (lo, hi) = exact_bounds(lo, hi);
                    return Some(TypedExpr::Between {
                        value: value.typed(ValueType::Int)?,
                        low: Scalar::Int(lo),
                        high: Scalar::Int(hi),
                        negated: *negated,
                    });
                }
                let bounds = Self::literals([low, high]);
                let (ty, mut typed) = self.unify(&[&value, &bounds[0], &bounds[1]], 0, ">=")?;
                if !orderable(ty) {
                    self.not_orderable(&value, ty, "between", expr.span);
                    return None;
                }
                let mut bounds = Self::scalars(typed.split_off(1))?;
                let high = bounds.pop()?;
                let low = bounds.pop()?;
                let value = typed.pop()?;
                Some(TypedExpr::Between { value, low, high, negated: *negated })
            }
            ExprKind::IsNull { value, negated } => {
                let operand = self.operand(value)?;
                let value = operand.typed(operand.ty())?;
                Some(TypedExpr::IsNull { value, negated: *negated })
            }
            ExprKind::StringMatch { value, op, pattern, negated } => {
                let operand = self.operand(value)?;
                if operand.ty() != ValueType::String {
                    self.diagnostics.push(
                        Diagnostic::new(
                            "type_mismatch",
                            format!("cannot use `{}` on {}", op.keyword(), operand.describe()),
                            value.span,
                        )
                        .with_hint("contains, starts_with and ends_with work only on strings"),
                    );
                    return None;
                }
                let value = operand.typed(ValueType::String)?;
                Some(TypedExpr::StringMatch { value, op: *op, pattern: pattern.clone(), negated: *negated })
            }
            ExprKind::InSegment { name } => {
                if !self.catalog.allows_segments() {
                    self.diagnostics.push(
                        Diagnostic::new("segment_not_allowed", "in_segment is not allowed here", expr.span)
                            .with_hint("conditions over events cannot refer to segments"),
                    );
                    return None;
                }
                if !self.catalog.has_segment(name) {
                    let mut diagnostic =
                        Diagnostic::new("unknown_segment", format!("unknown segment `{name}`"), expr.span);
                    diagnostic.hint = suggestion(name, &self.catalog.segment_names(), "segments");
                    self.diagnostics.push(diagnostic);
                    return None;
                }
                Some(TypedExpr::InSegment(name.clone()))
            }
            ExprKind::Truthy(value) => {
                let operand = self.operand(value)?;
                let ty = operand.ty();
                if ty != ValueType::Bool {
                    let (message, hint) = match &operand {
                        Operand::Column { ident, .. } => {
                            let example = match ty {
                                ValueType::String => format!("{ident} = '...'"),
                                ValueType::Int | ValueType::Float => format!("{ident} > 0"),
                                _ => format!("{ident} is not null"),
                            };
                            (
                                format!("`{}` is {}, not a boolean", ident_text(ident), with_article(ty)),
                                format!("compare it, e.g. {example}"),
                            )
                        }
                        Operand::Literal { literal, .. } => (
                            format!("{literal} is {}, not a condition", with_article(ty)),
                            "a condition compares values, e.g. employees > 5".to_string(),
                        ),
                        Operand::Computed { text, .. } => (
                            format!("`{text}` is {}, not a condition", with_article(ty)),
                            format!("compare it, e.g. {text} > 0"),
                        ),
                    };
                    self.diagnostics
                        .push(Diagnostic::new("type_mismatch", message, value.span).with_hint(hint));
                    return None;
                }
                Some(TypedExpr::Truthy(operand.typed(ValueType::Bool)?))
            }
        }
    }

    fn finish<T>(self, resolved: Option<T>, span: Span) -> Result<T, Vec<Diagnostic>> {
        match resolved {
            Some(resolved) if self.diagnostics.is_empty() => Ok(resolved),
            Some(_) => Err(self.diagnostics),
            None if self.diagnostics.is_empty() => {
                Err(vec![Diagnostic::new("internal", "resolution failed without a diagnostic", span)])
            }
            None => Err(self.diagnostics),
        }
    }
}

/// Resolves a derived trait (see [`crate::parse_derived`]) against the catalog of the entity's
/// attributes and traits: its typed value, of any type.
pub fn resolve_derived(value: &Value, catalog: &dyn AttributeCatalog) -> Result<TypedValue, Vec<Diagnostic>> {
    let mut resolver = Resolver { catalog, diagnostics: Vec::new() };
    let resolved = resolver.operand(value).and_then(|operand| operand.typed(operand.ty()));
    resolver.finish(resolved, value.span)
}

/// Resolves and type-checks a parsed rule against `catalog`, reporting every problem found.
pub fn resolve_rule(expr: &Expr, catalog: &dyn AttributeCatalog) -> Result<TypedExpr, Vec<Diagnostic>> {
    let mut resolver = Resolver { catalog, diagnostics: Vec::new() };
    let resolved = resolver.expr(expr);
    resolver.finish(resolved, expr.span)
}

/// Resolves a parsed trait against the catalog of event columns `events`: checks the argument
/// the aggregate needs, resolves the `where` condition, and works out the output type.
pub fn resolve_trait(
    parsed: &TraitExpr,
    events: &dyn AttributeCatalog,
) -> Result<TypedTrait, Vec<Diagnostic>> {
    let mut resolver = Resolver { catalog: events, diagnostics: Vec::new() };
    let agg = parsed.agg;
    let name = agg.name();
    let takes_arg = !matches!(
        agg,
        AggFunc::FirstSeen
            | AggFunc::LastSeen
            | AggFunc::DaysSinceLast
            | AggFunc::DaysSinceFirst
            | AggFunc::Share
    );
    let needs_arg = !matches!(agg, AggFunc::Count) && takes_arg;
    let mut arg = None;
    let mut output = Some(ValueType::Int);
    match &parsed.arg {
        Some(value) if !takes_arg => {
            resolver.diagnostics.push(
                Diagnostic::new(
                    "invalid_argument",
                    format!("{name} takes no argument, found `{value}`"),
                    value.span,
                )
                .with_hint(format!("write {name}()")),
            );
        }
        Some(value) => {
            let operand = resolver.operand(value);
            if let Some(Operand::Literal { literal, .. }) = &operand {
                resolver.diagnostics.push(
                    Diagnostic::new(
                        "invalid_argument",
                        format!("{name} reads a column of the rows, found the constant {literal}"),
                        value.span,
                    )
                    .with_hint("write a column, or a value computed from columns such as price * quantity"),
                );
            } else if let Some(operand) = operand {
                let ty = operand.ty();
                let (allowed, verb) = match agg {
                    AggFunc::Sum => (ty.is_numeric(), "sum"),
                    AggFunc::Avg => (ty.is_numeric(), "average"),
                    AggFunc::Median | AggFunc::Percentile(_) | AggFunc::PercentileDisc(_) => {
                        (ty.is_numeric(), "take a percentile of")
                    }
                    AggFunc::Min => (ty.is_numeric() || ty.is_temporal(), "take the min of"),
                    AggFunc::Max => (ty.is_numeric() || ty.is_temporal(), "take the max of"),
                    _ => (true, ""),
                };
                if allowed {
                    arg = operand.typed(ty);
                } else {
                    let needs = if agg.fraction().is_some() || matches!(agg, AggFunc::Sum | AggFunc::Avg) {
                        "a numeric column"
                    } else {
                        "a numeric, date or timestamp column"
                    };
                    let shown = match &operand {
                        Operand::Column { ident, .. } => ident_text(ident),
                        _ => value.to_string(),
                    };
                    resolver.diagnostics.push(
                        Diagnostic::new(
                            "type_mismatch",
                            format!("cannot {verb} `{shown}` ({ty})"),
                            value.span,
                        )
                        .with_hint(format!("{name} needs {needs}; count({value}) counts its values")),
                    );
                }
            }
            output = None;
        }
        None if needs_arg => {
            let example = match agg {
                AggFunc::CountDistinct => "product",
                AggFunc::Min | AggFunc::Max => "ts",
                _ => "amount",
            };
            resolver.diagnostics.push(Diagnostic::new(
                "missing_argument",
                format!("{name} needs a column, e.g. {name}({example})"),
                parsed.agg_span,
            ));
        }
        None => {}
    }
    let output = match agg {
        AggFunc::Count | AggFunc::CountDistinct | AggFunc::DaysSinceLast | AggFunc::DaysSinceFirst => {
            Some(ValueType::Int)
        }
        AggFunc::Avg | AggFunc::Share | AggFunc::Median | AggFunc::Percentile(_) => Some(ValueType::Float),
        AggFunc::FirstSeen | AggFunc::LastSeen => Some(ValueType::Timestamp),
        AggFunc::Sum | AggFunc::Min | AggFunc::Max | AggFunc::PercentileDisc(_) => {
            arg.as_ref().and_then(TypedValue::value_type).or(output)
        }
    };
    let condition = match &parsed.condition {
        Some(condition) => resolver.expr(condition).map(Some),
        None => Some(None),
    };
    let filter = match &parsed.filter {
        Some(filter) => resolver.expr(filter).map(Some),
        None => Some(None),
    };
    let resolved = match (output, condition, filter) {
        (Some(output), Some(condition), Some(filter)) => Some(TypedTrait {
            agg,
            arg,
            condition,
            filter,
            within: parsed.within.map(|(window, _)| window),
            output,
        }),
        _ => None,
    };
    resolver.finish(resolved, parsed.agg_span)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ast::ColumnSource;
    use crate::{parse_rule, parse_trait};

    /// A catalog of a few attributes of every type, a parent attribute and two segments.
    pub(crate) struct TestCatalog {
        pub columns: Vec<(&'static str, ValueType, ColumnSource)>,
        pub segments: Vec<&'static str>,
    }

    impl TestCatalog {
        pub(crate) fn accounts() -> TestCatalog {
            TestCatalog {
                columns: vec![
                    ("industry", ValueType::String, ColumnSource::Attribute),
                    ("employees", ValueType::Int, ColumnSource::Attribute),
                    ("arr", ValueType::Float, ColumnSource::Attribute),
                    ("is_active", ValueType::Bool, ColumnSource::Attribute),
                    ("signup_date", ValueType::Date, ColumnSource::Attribute),
                    ("last_login", ValueType::Timestamp, ColumnSource::Attribute),
                    ("last_login_days", ValueType::Int, ColumnSource::Attribute),
                    ("parent.industry", ValueType::String, ColumnSource::ParentAttribute),
                ],
                segments: vec!["a", "b"],
            }
        }

        pub(crate) fn events() -> TestCatalog {
            TestCatalog {
                columns: vec![
                    ("event_type", ValueType::String, ColumnSource::EventColumn),
                    ("amount", ValueType::Float, ColumnSource::EventColumn),
                    ("quantity", ValueType::Int, ColumnSource::EventColumn),
                    ("ts", ValueType::Timestamp, ColumnSource::EventColumn),
                    ("plan", ValueType::String, ColumnSource::EventColumn),
                ],
                segments: vec![],
            }
        }
    }

    impl AttributeCatalog for TestCatalog {
        fn lookup(&self, ident: &Ident) -> Option<ColumnInfo> {
            let wanted = match &ident.qualifier {
                Some(q) => format!("{}.{}", q.to_lowercase(), ident.name),
                None => ident.name.clone(),
            };
            self.columns.iter().find(|(name, ..)| *name == wanted).map(|(name, ty, source)| ColumnInfo {
                column: (*name).to_string(),
                ty: *ty,
                source: *source,
            })
        }

        fn names(&self) -> Vec<String> {
            self.columns.iter().map(|(name, ..)| (*name).to_string()).collect()
        }

        fn has_segment(&self, name: &str) -> bool {
            self.segments.contains(&name)
        }

        fn segment_names(&self) -> Vec<String> {
            self.segments.iter().map(|s| (*s).to_string()).collect()
        }

        fn allows_segments(&self) -> bool {
            !self.segments.is_empty()
        }
    }

    /// Short text of a typed value: `employees:float` for a column read as float.
    fn show_value(value: &TypedValue) -> String {
        match value {
            TypedValue::Column { column, ty } if *ty == column.ty => column.column.clone(),
            TypedValue::Column { column, ty } => format!("{}:{ty}", column.column),
            TypedValue::Literal(scalar) => format!("{scalar:?}"),
            TypedValue::Apply { func, args, ty, .. } => {
                let args: Vec<String> = args.iter().map(show_value).collect();
                format!("{func:?}({}):{ty}", args.join(", "))
            }
        }
    }

    fn show(expr: &TypedExpr) -> String {
        match expr {
            TypedExpr::Or(a, b) => format!("({} or {})", show(a), show(b)),
            TypedExpr::And(a, b) => format!("({} and {})", show(a), show(b)),
            TypedExpr::Not(a) => format!("not {}", show(a)),
            TypedExpr::Compare { left, op, right } => {
                format!("{} {} {}", show_value(left), op.symbol(), show_value(right))
            }
            TypedExpr::InList { value, list, negated } => {
                format!("{} {}in {list:?}", show_value(value), if *negated { "not " } else { "" })
            }
            TypedExpr::Between { value, low, high, negated } => format!(
                "{} {}between {low:?} and {high:?}",
                show_value(value),
                if *negated { "not " } else { "" }
            ),
            TypedExpr::IsNull { value, negated } => {
                format!("{} is {}null", show_value(value), if *negated { "not " } else { "" })
            }
            TypedExpr::StringMatch { value, op, pattern, negated } => format!(
                "{} {}{} {pattern:?}",
                show_value(value),
                if *negated { "not " } else { "" },
                op.keyword()
            ),
            TypedExpr::InSegment(name) => format!("in_segment({name})"),
            TypedExpr::Truthy(value) => show_value(value),
        }
    }

    /// Resolves `input` against the accounts catalog; `expected` is the typed rule in a short
    /// notation, or `!code: message (hint)` lines for errors.
    fn check(input: &str, expected: &str) {
        let parsed = parse_rule(input).expect("test rules parse");
        let actual = match resolve_rule(&parsed, &TestCatalog::accounts()) {
            Ok(typed) => show(&typed),
            Err(diagnostics) => diagnostics
                .iter()
                .map(|d| format!("!{}: {} ({})", d.code, d.message, d.hint.as_deref().unwrap_or("-")))
                .collect::<Vec<_>>()
                .join("\n"),
        };
        assert_eq!(actual, expected, "input: {input:?}");
    }

    #[test]
    fn coercions() {
        check("employees = 5", "employees = Int(5)");
        // An int with a float constant: exactly, as ints.
        check("employees = 5.5", "employees < Int(-9223372036854775808)");
        check("employees != 5.5", "employees >= Int(-9223372036854775808)");
        check("employees > 5.5", "employees > Int(5)");
        check("employees >= 5.5", "employees > Int(5)");
        check("employees < -5.5", "employees <= Int(-6)");
        check("employees <= 5.0", "employees <= Int(5)");
        check("9007199254740992.0 < employees", "employees > Int(9007199254740992)");
        check("employees < 1e19", "employees >= Int(-9223372036854775808)");
        check("employees > 1e19", "employees < Int(-9223372036854775808)");
        check("employees > -1e19", "employees >= Int(-9223372036854775808)");
        check("employees * 2 > 2.5", "Mul(employees, Int(2)):int > Int(2)");
        check("employees between 1.5 and 3.5", "employees between Int(2) and Int(3)");
        check(
            "employees between 1.5 and 1.7",
            "employees between Int(9223372036854775807) and Int(-9223372036854775808)",
        );
        check(
            "employees between 1e19 and 2e19",
            "employees between Int(9223372036854775807) and Int(-9223372036854775808)",
        );
        check("employees between -1e19 and 2", "employees between Int(-9223372036854775808) and Int(2)");
        check("employees in (2.5)", "employees < Int(-9223372036854775808)");
        check("employees not in (2.5, 3.5)", "employees >= Int(-9223372036854775808)");
        check("employees in (1, 2.5, 3.0)", "employees in [Int(1), Int(3)]");
        check("employees in (9007199254740993, 0.5)", "employees in [Int(9007199254740993)]");
        check("employees in (9223372036854775807, 0.5)", "employees in [Int(9223372036854775807)]");
        check(
            "employees between -9223372036854775807 and 0.5",
            "employees between Int(-9223372036854775807) and Int(0)",
        );
        check(
            "employees between 0.5 and 9007199254740993",
            "employees between Int(1) and Int(9007199254740993)",
        );
        check(
            "round(employees, -2147483648) > 0",
            "!invalid_argument: the digits of round must be a whole number from -1000 to 1000, found `-2147483648` (write e.g. round(x, 2) for two decimals or round(x, -3) for thousands)",
        );
        check("employees > arr", "employees:float > arr");
        check("-0.0 = arr", "Float(0.0) = arr");
        check("arr + employees > 1", "Add(arr, employees:float):float > Float(1.0)");
        check("employees / 2 = 1", "Div(employees:float, Float(2.0)):float = Float(1.0)");
        check("-employees = 1", "Sub(Int(0), employees):int = Int(1)");
        check("round(arr, 2) = abs(-1.5)", "Round(2)(arr):float = Abs(Float(-1.5)):float");
        check(
            "coalesce(employees, arr, 0) > 1",
            "Coalesce(employees:float, arr, Float(0.0)):float > Float(1.0)",
        );
        check(
            "coalesce(signup_date, last_login) > '2024-01-01'",
            "Coalesce(signup_date:timestamp, last_login):timestamp > Timestamp(1704067200000000)",
        );
        check(
            "coalesce(industry, '') contains 'x'",
            "Coalesce(industry, String(\"\")):string contains \"x\"",
        );
        check(
            "coalesce(employees, 0) * 1 > arr",
            "Widen(Mul(Coalesce(employees, Int(0)):int, Int(1)):int):float > arr",
        );
        check("arr > 5", "arr > Float(5.0)");
        check("5 < employees", "Int(5) < employees");
        check("1 = 1.5", "Float(1.0) = Float(1.5)");
        check("signup_date < last_login", "signup_date:timestamp < last_login");
        check("signup_date >= DATE '1970-01-02'", "signup_date >= Date(1)");
        check("last_login >= DATE '1970-01-02'", "last_login >= Timestamp(86400000000)");
        check("signup_date >= '1970-01-02'", "signup_date >= Date(1)");
        check("signup_date >= '1970-01-02 01:00'", "signup_date:timestamp >= Timestamp(90000000000)");
        check("last_login < '1970-01-01T00:00:01Z'", "last_login < Timestamp(1000000)");
        check("arr in (1, 2.5)", "arr in [Float(1.0), Float(2.5)]");
        check("employees not in (1, 2)", "employees not in [Int(1), Int(2)]");
        check("arr between 1 and 2", "arr between Float(1.0) and Float(2.0)");
        check(
            "signup_date between '2024-01-01' and DATE '2024-02-01'",
            "signup_date between Date(19723) and Date(19754)",
        );
        check(
            "is_active is null and parent.industry contains 'x'",
            "(is_active is null and parent.industry contains \"x\")",
        );
        check("is_active or not in_segment('a')", "(is_active or not in_segment(a))");
        check("is_active = true", "is_active = Bool(true)");
        check("industry >= 'm'", "industry >= String(\"m\")");
    }

    #[test]
    fn type_errors() {
        check(
            "industry = 5",
            "!type_mismatch: cannot compare `industry` (string) with 5 (int) (compare with a string, e.g. industry = '5')",
        );
        check(
            "employees > '10'",
            "!type_mismatch: cannot compare `employees` (int) with '10' (string) (remove the quotes, e.g. employees > 10)",
        );
        check(
            "arr > 'lots'",
            "!type_mismatch: cannot compare `arr` (float) with 'lots' (string) (compare with a number, e.g. arr > 100)",
        );
        check(
            "is_active = 1",
            "!type_mismatch: cannot compare `is_active` (bool) with 1 (int) (compare with true or false, e.g. is_active = true)",
        );
        check(
            "signup_date > 'last week'",
            "!type_mismatch: cannot compare `signup_date` (date) with 'last week' (string) (write DATE 'YYYY-MM-DD')",
        );
        check(
            "last_login > 5",
            "!type_mismatch: cannot compare `last_login` (timestamp) with 5 (int) (write TIMESTAMP 'YYYY-MM-DDTHH:MM:SSZ' or DATE 'YYYY-MM-DD')",
        );
        check(
            "industry = employees",
            "!type_mismatch: cannot compare `industry` (string) with `employees` (int) (both sides must have compatible types)",
        );
        check(
            "is_active < true",
            "!type_mismatch: cannot use `<` on bool values such as `is_active` (bool) (booleans can only be compared with = and !=)",
        );
        check(
            "is_active between false and true",
            "!type_mismatch: cannot use `between` on bool values such as `is_active` (bool) (booleans can only be compared with = and !=)",
        );
        check(
            "industry in ('a', 5, 'c', true)",
            "!type_mismatch: cannot compare `industry` (string) with 5 (int) (compare with a string, e.g. industry = '5')\n!type_mismatch: cannot compare `industry` (string) with true (bool) (compare with a string, e.g. industry = 'true')",
        );
        check(
            "employees contains 'x'",
            "!type_mismatch: cannot use `contains` on `employees` (int) (contains, starts_with and ends_with work only on strings)",
        );
        check(
            "industry",
            "!type_mismatch: `industry` is a string, not a boolean (compare it, e.g. industry = '...')",
        );
        check(
            "employees",
            "!type_mismatch: `employees` is an int, not a boolean (compare it, e.g. employees > 0)",
        );
        check(
            "5",
            "!type_mismatch: 5 is an int, not a condition (a condition compares values, e.g. employees > 5)",
        );
        check("industy = 'x'", "!unknown_attribute: unknown attribute `industy` (did you mean `industry`?)");
        check(
            "parent.industri = 'x'",
            "!unknown_attribute: unknown attribute `parent.industri` (did you mean `parent.industry`?)",
        );
        check(
            "zzz = 1",
            "!unknown_attribute: unknown attribute `zzz` (available attributes: `arr`, `employees`, `industry`, `is_active`, `last_login`, `last_login_days`, `parent.industry`, `signup_date`; a text value is written in single quotes: 'zzz')",
        );
        check(
            "in_segment('c') or in_segment('aa')",
            "!unknown_segment: unknown segment `c` (available segments: `a`, `b`)\n!unknown_segment: unknown segment `aa` (did you mean `a`?)",
        );
        check(
            "industy = 'x' and employees = 'many' or is_activ",
            "!unknown_attribute: unknown attribute `industy` (did you mean `industry`?)\n!type_mismatch: cannot compare `employees` (int) with 'many' (string) (compare with a number, e.g. employees = 100)\n!unknown_attribute: unknown attribute `is_activ` (did you mean `is_active`?)",
        );
    }

    fn check_trait(input: &str, expected: &str) {
        let parsed = parse_trait(input).expect("test traits parse");
        let actual = match resolve_trait(&parsed, &TestCatalog::events()) {
            Ok(typed) => format!(
                "{}({}) -> {}{}{}",
                typed.agg.name(),
                typed
                    .arg
                    .map(|a| show_value(&a))
                    .or_else(|| typed.condition.map(|c| show(&c)))
                    .unwrap_or_default(),
                typed.output,
                typed.filter.map(|f| format!(" where {}", show(&f))).unwrap_or_default(),
                typed.within.map(|w| format!(" {w}")).unwrap_or_default(),
            ),
            Err(diagnostics) => diagnostics
                .iter()
                .map(|d| format!("!{}: {} ({})", d.code, d.message, d.hint.as_deref().unwrap_or("-")))
                .collect::<Vec<_>>()
                .join("\n"),
        };
        assert_eq!(actual, expected, "input: {input:?}");
    }

    #[test]
    fn traits() {
        check_trait("count()", "count() -> int");
        check_trait(
            "count(plan) where event_type = 'purchase' within 90d",
            "count(plan) -> int where event_type = String(\"purchase\") within 90d",
        );
        check_trait("sum(quantity) within 12w", "sum(quantity) -> int within 12w");
        check_trait("sum(amount) within 36h", "sum(amount) -> float within 36h");
        check_trait("avg(quantity)", "avg(quantity) -> float");
        check_trait("min(ts)", "min(ts) -> timestamp");
        check_trait("max(amount) where quantity > 1.5", "max(amount) -> float where quantity > Int(1)");
        check_trait("count_distinct(plan)", "count_distinct(plan) -> int");
        check_trait("first_seen()", "first_seen() -> timestamp");
        check_trait("last_seen()", "last_seen() -> timestamp");
        check_trait("days_since_last()", "days_since_last() -> int");
        check_trait("days_since_first()", "days_since_first() -> int");
        check_trait("median(quantity)", "median(quantity) -> float");
        check_trait("percentile(amount, 0.9) within 30d", "percentile(amount) -> float within 30d");
        check_trait("percentile_disc(quantity, 0.25)", "percentile_disc(quantity) -> int");
        check_trait("percentile_disc(amount, 1)", "percentile_disc(amount) -> float");
        check_trait(
            "share(quantity > 1) where plan = 'pro'",
            "share(quantity > Int(1)) -> float where plan = String(\"pro\")",
        );
    }

    #[test]
    fn trait_errors() {
        check_trait(
            "sum(plan)",
            "!type_mismatch: cannot sum `plan` (string) (sum needs a numeric column; count(plan) counts its values)",
        );
        check_trait(
            "avg(plan)",
            "!type_mismatch: cannot average `plan` (string) (avg needs a numeric column; count(plan) counts its values)",
        );
        check_trait(
            "min(plan)",
            "!type_mismatch: cannot take the min of `plan` (string) (min needs a numeric, date or timestamp column; count(plan) counts its values)",
        );
        check_trait("sum()", "!missing_argument: sum needs a column, e.g. sum(amount) (-)");
        check_trait(
            "median(plan)",
            "!type_mismatch: cannot take a percentile of `plan` (string) (median needs a numeric column; count(plan) counts its values)",
        );
        check_trait(
            "percentile_disc(ts, 0.5)",
            "!type_mismatch: cannot take a percentile of `ts` (timestamp) (percentile_disc needs a numeric column; count(ts) counts its values)",
        );
        check_trait(
            "count_distinct()",
            "!missing_argument: count_distinct needs a column, e.g. count_distinct(product) (-)",
        );
        check_trait(
            "first_seen(ts)",
            "!invalid_argument: first_seen takes no argument, found `ts` (write first_seen())",
        );
        check_trait("sum(amout)", "!unknown_attribute: unknown attribute `amout` (did you mean `amount`?)");
        check_trait(
            "count() where in_segment('a') or plan = 1",
            "!segment_not_allowed: in_segment is not allowed here (conditions over events cannot refer to segments)\n!type_mismatch: cannot compare `plan` (string) with 1 (int) (compare with a string, e.g. plan = '1')",
        );
    }
}
