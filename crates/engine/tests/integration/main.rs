//! Integration tests of the engine: file-driven rule cases, run outputs, bad input, segment
//! discovery, the `Engine` value and cancellation, keys that match nothing, and the property test that DataFusion's evaluation equals the reference evaluator.

mod arithmetic;
mod backfill;
mod cases;
mod demo;
mod discover;
mod engine;
mod errors;
mod explain;
mod intake;
mod keys;
mod live;
mod models;
mod predictive;
mod reference;
mod snapshots;
mod support;
