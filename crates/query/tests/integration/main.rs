//! Integration tests of segmenta-query, one test binary: the property test that holds the
//! one-pass trait scan (through `segmenta_query::evaluate`) to DataFusion's own grouped
//! aggregation and to a row-by-row fold over the reference evaluator.

mod scan;
