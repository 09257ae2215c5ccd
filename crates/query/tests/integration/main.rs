//! Integration tests of segmenta-query, one test binary: the property tests that hold the
//! one-pass trait scan (through `segmenta_query::evaluate`) to DataFusion's own grouped
//! aggregation and to a row-by-row fold over the reference evaluator, and the hierarchy rollups
//! to DataFusion's aggregation over enumerated (ancestor, descendant) pairs.

mod hierarchy;
mod scan;
