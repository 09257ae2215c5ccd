//! Segment discovery (`segmenta_ml::cluster`): known clusters recovered, scikit-learn and kmodes
//! agreement, metrics, personas and rules on a fixed dataset, stable ids, determinism and
//! properties.

mod common;
mod differential;
mod discovery;
mod properties;
mod rule_eval;
