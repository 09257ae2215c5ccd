//! The exact percentiles of the trait language as a DataFusion aggregate (for rollups and as
//! the scan's oracle): `median`, `percentile` and `percentile_disc`, computed exactly as
//! DuckDB's `quantile_cont` and `quantile_disc` by [`segmenta_rules::eval::percentile_cont`]
//! and [`segmenta_rules::eval::percentile_disc_index`].
//!
//! DataFusion 55's own `percentile_cont` rounds the interpolation weight to six decimals, and
//! its `median` of integers averages the two middle values as `(a + b) / 2` rather than
//! `a + (b - a) / 2`; neither is DuckDB's answer to the last bit, hence this aggregate. It keeps
//! every value of a group (as `array_agg` would) and sorts them when finished.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int64Array, ListArray};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, FieldRef, Float64Type, Int64Type};
use datafusion::common::ScalarValue;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDF, AggregateUDFImpl, Expr, Signature, Volatility};
use segmenta_rules::ast::Fraction;
use segmenta_rules::eval::{percentile_cont, percentile_disc_index};

/// Which percentile, over which values.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Percentile {
    name: String,
    signature: Signature,
    fraction: Fraction,
    /// `percentile_disc`: one of the values; else interpolated.
    discrete: bool,
    /// Int64 (a discrete percentile of integers) or Float64.
    values: DataType,
}

/// The aggregate `percentile(value, p)` (continuous, a Float64) or `percentile_disc(value, p)`
/// (one of the values, of their type). `value` must be Int64 or Float64; a continuous
/// percentile reads integers as floats.
pub fn percentile(value: Expr, fraction: Fraction, discrete: bool, value_type: &DataType) -> Expr {
    let values = if discrete && *value_type == DataType::Int64 { DataType::Int64 } else { DataType::Float64 };
    let kind = if discrete { "percentile_disc" } else { "percentile_cont" };
    let udaf = Percentile {
        name: format!("segmenta_{kind}_{fraction}"),
        signature: Signature::exact(vec![values.clone()], Volatility::Immutable),
        fraction,
        discrete,
        values: values.clone(),
    };
    let value = if *value_type == values { value } else { datafusion::logical_expr::cast(value, values) };
    AggregateUDF::from(udaf).call(vec![value])
}

impl AggregateUDFImpl for Percentile {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(self.values.clone())
    }

    fn state_fields(&self, args: StateFieldsArgs) -> DfResult<Vec<FieldRef>> {
        let item = Field::new_list_field(self.values.clone(), true);
        Ok(vec![Arc::new(Field::new(format!("{}[values]", args.name), DataType::List(Arc::new(item)), true))])
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> DfResult<Box<dyn Accumulator>> {
        Ok(Box::new(Values {
            ints: Vec::new(),
            floats: Vec::new(),
            fraction: self.fraction,
            discrete: self.discrete,
            values: self.values.clone(),
        }))
    }
}

/// The values of one group.
#[derive(Debug)]
struct Values {
    ints: Vec<i64>,
    floats: Vec<f64>,
    fraction: Fraction,
    discrete: bool,
    values: DataType,
}

impl Values {
    fn add(&mut self, array: &ArrayRef) {
        match self.values {
            DataType::Int64 => self.ints.extend(array.as_primitive::<Int64Type>().iter().flatten()),
            _ => self.floats.extend(array.as_primitive::<Float64Type>().iter().flatten()),
        }
    }
}

impl Accumulator for Values {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        self.add(&values[0]);
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DfResult<()> {
        for list in states[0].as_list::<i32>().iter().flatten() {
            self.add(&list);
        }
        Ok(())
    }

    fn state(&mut self) -> DfResult<Vec<ScalarValue>> {
        let values: ArrayRef = match self.values {
            DataType::Int64 => Arc::new(Int64Array::from(self.ints.clone())),
            _ => Arc::new(Float64Array::from(self.floats.clone())),
        };
        let item = Arc::new(Field::new_list_field(self.values.clone(), true));
        let list = ListArray::new(item, OffsetBuffer::from_lengths([values.len()]), values, None);
        Ok(vec![ScalarValue::List(Arc::new(list))])
    }

    fn evaluate(&mut self) -> DfResult<ScalarValue> {
        if self.values == DataType::Int64 {
            self.ints.sort_unstable();
            let index = percentile_disc_index(self.ints.len(), self.fraction);
            return Ok(ScalarValue::Int64(index.map(|i| self.ints[i])));
        }
        self.floats.sort_by(f64::total_cmp);
        let value = if self.discrete {
            percentile_disc_index(self.floats.len(), self.fraction).map(|i| self.floats[i])
        } else {
            percentile_cont(&self.floats, self.fraction)
        };
        Ok(ScalarValue::Float64(value))
    }

    fn size(&self) -> usize {
        size_of::<Self>() + self.ints.capacity() * 8 + self.floats.capacity() * 8
    }
}
