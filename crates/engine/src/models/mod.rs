//! The registry of predictive models. Adding a model: write its module here (planning through
//! the `crate::planner::Planner`, its table extension, its outcome), add its persisted format
//! to `segmenta_store::formats` and its section to the project file, and list it in
//! [`registered`]. Validation, evaluation and the run summary need no edit.

mod churn;
mod clv;

pub(crate) use churn::ChurnOutcome;
pub(crate) use clv::{ClvOutcome, ClvPlan, DAY_COLUMNS};

use crate::model::Model;

/// Every model, in planning order: a later model may read an earlier one's traits (a churn
/// feature may be a CLV trait).
pub(crate) fn registered() -> [&'static dyn Model; 2] {
    [&clv::Clv, &churn::Churn]
}
