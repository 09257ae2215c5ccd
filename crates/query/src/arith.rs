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

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch};
use arrow::compute::kernels::zip::zip;
use arrow::compute::{cast, is_not_null};
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
) -> std::result::Result<ArrayRef, EvalError> {
    let (Some(a), Some(b)) = (a.as_primitive_opt::<Int64Type>(), b.as_primitive_opt::<Int64Type>()) else {
        return Err(not_of_type(text, "Int64"));
    };
    let mut out = Vec::with_capacity(a.len());
    for i in 0..a.len() {
        out.push(if a.is_null(i) || b.is_null(i) {
            None
        } else {
            Some(f(a.value(i), b.value(i)).ok_or_else(|| int_overflow(text))?)
        });
    }
    Ok(Arc::new(Int64Array::from(out)))
}

/// `f(a, b)` of two float arrays row by row, NULL where either is NULL or `f` gives `None`;
/// a result that is not finite is an error.
fn float_pairs(
    a: &ArrayRef,
    b: &ArrayRef,
    f: impl Fn(f64, f64) -> Option<f64>,
    text: &str,
) -> std::result::Result<ArrayRef, EvalError> {
    let (Some(a), Some(b)) = (a.as_primitive_opt::<Float64Type>(), b.as_primitive_opt::<Float64Type>())
    else {
        return Err(not_of_type(text, "Float64"));
    };
    let mut out = Vec::with_capacity(a.len());
    for i in 0..a.len() {
        let value = if a.is_null(i) || b.is_null(i) { None } else { f(a.value(i), b.value(i)) };
        out.push(value.map(|v| finite(v, text)).transpose()?);
    }
    Ok(Arc::new(Float64Array::from(out)))
}

/// Computes `func` of `args` (arrays of one length, each of the type [`Func`] documents for
/// it), giving an array of `ty`. `text` names the expression in errors.
pub(crate) fn apply(
    func: Func,
    args: &[ArrayRef],
    ty: ValueType,
    text: &str,
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
        (Func::Add, [a, b]) if int => int_pairs(a, b, i64::checked_add, text),
        (Func::Sub, [a, b]) if int => int_pairs(a, b, i64::checked_sub, text),
        (Func::Mul, [a, b]) if int => int_pairs(a, b, i64::checked_mul, text),
        (Func::Add, [a, b]) => float_pairs(a, b, |x, y| Some(x + y), text),
        (Func::Sub, [a, b]) => float_pairs(a, b, |x, y| Some(x - y), text),
        (Func::Mul, [a, b]) => float_pairs(a, b, |x, y| Some(x * y), text),
        (Func::Div, [a, b]) => float_pairs(a, b, |x, y| (y != 0.0).then(|| x / y), text),
        (Func::Round(d), [a]) if int => int_pairs(a, a, |x, _| round_int(x, d), text),
        (Func::Round(d), [a]) => float_pairs(a, a, |x, _| Some(round_float(x, d)), text),
        (Func::Abs, [a]) if int => int_pairs(a, a, |x, _| x.checked_abs(), text),
        (Func::Abs, [a]) => float_pairs(a, a, |x, _| Some(x.abs()), text),
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
        let result = apply(self.func, &arrays, self.ty, &self.text)
            .map_err(|e| DataFusionError::External(Box::new(out_of_range(e, &self.owner))))?;
        if all_scalars && result.len() == 1 {
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&result, 0)?));
        }
        Ok(ColumnarValue::Array(result))
    }
}
