//! End-to-end tests of the `segmenta` binary: the quick-start example, exit codes, JSON output,
//! the differential test against DuckDB, the fuzz harness, and issue 11's behaviours (init,
//! members with columns, recovery from bad CSV, messages).

mod cdnow;
mod cli;
mod differential;
mod fuzz;
mod ingest_recovery;
mod init;
mod members;
mod messages;
mod serve;
mod snapshots;
