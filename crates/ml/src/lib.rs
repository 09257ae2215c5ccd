//! segmenta's models: clustering and segment discovery (`cluster`), customer lifetime value
//! (`clv`) and churn propensity (`churn`).
//!
//! **Invariant:** no I/O and no async: callers hand in feature matrices and per-entity
//! summaries and get numbers back. The engine owns reading data and writing results.
#![warn(missing_docs)]

pub mod churn;
pub mod cluster;
pub mod clv;
