//! The model commands: `segmenta clv` and `segmenta predict churn`, each a model evaluated on
//! its own with the command's options and written to a folder of its own.

pub(crate) mod churn;
pub(crate) mod clv;
