//! End-to-end tests of the `segmenta` binary: the quick-start example, exit codes, JSON output,
//! and the differential test against DuckDB.

mod cli;
mod differential;
mod snapshots;
