//! Arithmetic and the functions of the value language (`+ - * /`, `round`, `abs`, `coalesce`)
//! over Arrow arrays: the kernel of the scan's conditions ([`crate::vector`]) and of the
//! DataFusion functions the lowering emits ([`crate::lower`]).
//!
//! [`segmenta_rules::eval::apply`] states the semantics one value at a time; this module
//! computes the same thing a column at a time, with the same rounding and range checks
//! (it calls the reference's `round_int`, `round_float` and `finite`), and the property tests
//! hold the two to each other. Arrow's own kernels are not used for the arithmetic: their int
//! division by zero is an error (segmenta's is NULL), their float overflow is `inf` (an error
//! here), and neither turns -0.0 into 0.0.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
};
use arrow::buffer::BooleanBuffer;
use arrow::compute::kernels::zip::zip;
use arrow::compute::{and_kleene, cast, is_not_null, or_kleene};
use arrow::datatypes::{Float64Type, Int64Type};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use segmenta_core::ValueType;
use segmenta_rules::ast::Func;
use segmenta_rules::eval::{EvalError, finite, int_overflow, round_float, round_int};

use crate::error::{Location, Owner};
use crate::ingest::arrow_type;
use crate::{Error, Result};

/// The error of a value out of range, naming what computes it when known.
pub(crate) fn out_of_range(error: EvalError, owner: &Owner) -> Error {
    if owner.kind.is_empty() {
        return Error::bad_input(Location::default(), error.message, Some(error.hint.to_string()));
    }
    Error::OutOfRange { owner: owner.clone(), message: error.message, hint: error.hint.to_string() }
}

/// An array read as the plain array of `ty` (dictionaries unpacked, views copied).
pub(crate) fn plain(array: &ArrayRef, ty: ValueType) -> Result<ArrayRef> {
    let target = arrow_type(ty);
    if array.data_type() == &target { Ok(array.clone()) } else { Ok(cast(array, &target)?) }
}

fn not_of_type(text: &str, ty: &str) -> EvalError {
    EvalError { message: format!("internal error: an argument of `{text}` is not {ty}"), hint: "" }
}

/// `f(a, b)` of two int arrays row by row, NULL where either is NULL; `None` from `f` is an
/// overflow.
fn int_pairs(
    a: &ArrayRef,
    b: &ArrayRef,
    f: impl Fn(i64, i64) -> Option<i64>,
    text: &str,
    domain: Option<&BooleanBuffer>,
) -> std::result::Result<ArrayRef, EvalError> {
    let (Some(a), Some(b)) = (a.as_primitive_opt::<Int64Type>(), b.as_primitive_opt::<Int64Type>()) else {
        return Err(not_of_type(text, "Int64"));
    };
    let mut out = Vec::with_capacity(a.len());
    for i in 0..a.len() {
        out.push(if a.is_null(i) || b.is_null(i) {
            None
        } else {
            match f(a.value(i), b.value(i)) {
                Some(value) => Some(value),
                None if outside(domain, i) => None,
                None => return Err(int_overflow(text)),
            }
        });
    }
    Ok(Arc::new(Int64Array::from(out)))
}

/// Whether row `i` lies outside the rows whose values count (then out of range is NULL).
fn outside(domain: Option<&BooleanBuffer>, i: usize) -> bool {
    domain.is_some_and(|d| !d.value(i))
}

/// `f(a, b)` of two float arrays row by row, NULL where either is NULL or `f` gives `None`;
/// a result that is not finite is an error.
fn float_pairs(
    a: &ArrayRef,
    b: &ArrayRef,
    f: impl Fn(f64, f64) -> Option<f64>,
    text: &str,
    domain: Option<&BooleanBuffer>,
) -> std::result::Result<ArrayRef, EvalError> {
    let (Some(a), Some(b)) = (a.as_primitive_opt::<Float64Type>(), b.as_primitive_opt::<Float64Type>())
    else {
        return Err(not_of_type(text, "Float64"));
    };
    let mut out = Vec::with_capacity(a.len());
    for i in 0..a.len() {
        let value = if a.is_null(i) || b.is_null(i) { None } else { f(a.value(i), b.value(i)) };
        out.push(match value.map(|v| finite(v, text)).transpose() {
            Ok(value) => value,
            Err(_) if outside(domain, i) => None,
            Err(error) => return Err(error),
        });
    }
    Ok(Arc::new(Float64Array::from(out)))
}

/// Computes `func` of `args` (arrays of one length, each of the type [`Func`] documents for
/// it), giving an array of `ty`. `text` names the expression in errors. With a `domain`, only
/// its rows count: a value out of range on another row is NULL, not an error (the scan's events
/// that the run does not use).
pub(crate) fn apply(
    func: Func,
    args: &[ArrayRef],
    ty: ValueType,
    text: &str,
    domain: Option<&BooleanBuffer>,
) -> std::result::Result<ArrayRef, EvalError> {
    let internal =
        |what: &str| EvalError { message: format!("internal error: {what} of `{text}`"), hint: "" };
    if func == Func::Coalesce {
        let mut args = args.iter();
        let first = args.next().ok_or_else(|| internal("coalesce without arguments"))?;
        let mut result = first.clone();
        for next in args {
            let present = is_not_null(&result).map_err(|_| internal("coalesce"))?;
            result = zip(&present, &result, next).map_err(|_| internal("coalesce"))?;
        }
        return Ok(result);
    }
    let int = ty == ValueType::Int;
    match (func, args) {
        (Func::Widen, [a]) => cast(a, &arrow_type(ty)).map_err(|_| internal("a widening")),
        (Func::Add, [a, b]) if int => int_pairs(a, b, i64::checked_add, text, domain),
        (Func::Sub, [a, b]) if int => int_pairs(a, b, i64::checked_sub, text, domain),
        (Func::Mul, [a, b]) if int => int_pairs(a, b, i64::checked_mul, text, domain),
        (Func::Add, [a, b]) => float_pairs(a, b, |x, y| Some(x + y), text, domain),
        (Func::Sub, [a, b]) => float_pairs(a, b, |x, y| Some(x - y), text, domain),
        (Func::Mul, [a, b]) => float_pairs(a, b, |x, y| Some(x * y), text, domain),
        (Func::Div, [a, b]) => float_pairs(a, b, |x, y| (y != 0.0).then(|| x / y), text, domain),
        (Func::Round(d), [a]) if int => int_pairs(a, a, |x, _| round_int(x, d), text, domain),
        (Func::Round(d), [a]) => float_pairs(a, a, |x, _| Some(round_float(x, d)), text, domain),
        (Func::Abs, [a]) if int => int_pairs(a, a, |x, _| x.checked_abs(), text, domain),
        (Func::Abs, [a]) => float_pairs(a, a, |x, _| Some(x.abs()), text, domain),
        _ => Err(internal("an unexpected function")),
    }
}

/// `batch` with every -0.0 of its float columns read as 0.0, or `None` when it has none: the
/// scan reads Parquet event files as they are, and segmenta holds no negative zero.
pub(crate) fn without_negative_zeros(batch: &RecordBatch) -> Result<Option<RecordBatch>> {
    let negative_zero = |array: &ArrayRef| {
        array
            .as_primitive_opt::<Float64Type>()
            .is_some_and(|f| f.values().iter().any(|v| v.to_bits() == (-0.0f64).to_bits()))
    };
    if !batch.columns().iter().any(negative_zero) {
        return Ok(None);
    }
    let columns: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .map(|array| match array.as_primitive_opt::<Float64Type>() {
            Some(floats) if negative_zero(array) => {
                let plus_zero: Float64Array = floats.unary(|v| v + 0.0);
                Arc::new(plus_zero) as ArrayRef
            }
            _ => array.clone(),
        })
        .collect();
    Ok(Some(RecordBatch::try_new(batch.schema(), columns)?))
}

/// `AND` / `OR` of three-valued conditions as a DataFusion function: both sides evaluated on
/// every row. DataFusion's own operators skip the right side where the left decides (and its
/// simplifier drops a side that cannot matter), so a value out of range there would go
/// unnoticed, where the reference evaluator and the scan report it; rules that compute use
/// these instead.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Connective {
    name: &'static str,
    signature: Signature,
    and: bool,
}

/// `left AND right` (or `OR`) with both sides evaluated on every row.
pub(crate) fn eager_connective(and: bool, left: Expr, right: Expr) -> Expr {
    let name = if and { "segmenta_and" } else { "segmenta_or" };
    let signature = Signature::exact(vec![DataType::Boolean, DataType::Boolean], Volatility::Immutable);
    ScalarUDF::from(Connective { name, signature, and }).call(vec![left, right])
}

impl ScalarUDFImpl for Connective {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let (Some(left), Some(right)) = (arrays[0].as_boolean_opt(), arrays[1].as_boolean_opt()) else {
            return Err(DataFusionError::Internal("a connective of non-booleans".into()));
        };
        let result = if self.and { and_kleene(left, right)? } else { or_kleene(left, right)? };
        Ok(ColumnarValue::Array(Arc::new(result)))
    }
}

/// A scheme's tier as a DataFusion function of every tier's membership test (each TRUE or
/// FALSE, all evaluated on every row): the first tier whose test is TRUE, else `otherwise`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Tiers {
    signature: Signature,
    names: Vec<String>,
    otherwise: String,
}

/// The tier of each row from its tests, in priority order.
pub(crate) fn first_tier(tests: Vec<Expr>, names: Vec<String>, otherwise: &str) -> Expr {
    let signature = Signature::exact(vec![DataType::Boolean; tests.len()], Volatility::Immutable);
    ScalarUDF::from(Tiers { signature, names, otherwise: otherwise.to_string() }).call(tests)
}

impl ScalarUDFImpl for Tiers {
    fn name(&self) -> &str {
        "segmenta_tier"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let tests: Vec<&BooleanArray> = arrays.iter().filter_map(|a| a.as_boolean_opt()).collect();
        let rows = args.number_rows;
        let tier = |row: usize| {
            let first = tests.iter().position(|t| t.is_valid(row) && t.value(row));
            first.map_or(self.otherwise.as_str(), |i| self.names[i].as_str())
        };
        let result: StringArray = (0..rows).map(|row| Some(tier(row))).collect();
        Ok(ColumnarValue::Array(Arc::new(result)))
    }
}

/// A function of the value language as a DataFusion scalar function: [`apply`] over its
/// arguments' arrays.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ValueFunction {
    name: String,
    signature: Signature,
    func: Func,
    ty: ValueType,
    /// The expression, for errors.
    text: String,
    /// What computes it, for errors.
    owner: Owner,
}

/// `func(args)` as a DataFusion expression; `args` must already have the types [`Func`]
/// documents, and the result has type `ty`.
pub(crate) fn call(func: Func, args: Vec<Expr>, ty: ValueType, text: &str, owner: &Owner) -> Expr {
    let udf = ValueFunction {
        name: format!("segmenta_{func:?}").to_lowercase().replace(['(', ')', '-'], "_"),
        signature: Signature::variadic_any(Volatility::Immutable),
        func,
        ty,
        text: text.to_string(),
        owner: owner.clone(),
    };
    ScalarUDF::from(udf).call(args)
}

impl ScalarUDFImpl for ValueFunction {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(arrow_type(self.ty))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let all_scalars = args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let result = apply(self.func, &arrays, self.ty, &self.text, None)
            .map_err(|e| DataFusionError::External(Box::new(out_of_range(e, &self.owner))))?;
        if all_scalars && result.len() == 1 {
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&result, 0)?));
        }
        Ok(ColumnarValue::Array(result))
    }
}
