//! Differential test against DuckDB: `tests/differential/duckdb_diff.py` generates random
//! projects (data, traits and rules), computes the expected traits and memberships in DuckDB
//! from its own SQL rendering of each rule, runs `segmenta run` and compares.
//!
//! Needs `python3` with the `duckdb` package: `pip install -r tests/differential/requirements.txt`.
//! Reproduce a failure by hand with
//! `python3 tests/differential/duckdb_diff.py --seed 1 --case N --segmenta target/debug/segmenta`.

use std::path::Path;
use std::process::Command;

const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

#[test]
fn duckdb_agrees_on_random_projects() {
    let root = Path::new(WORKSPACE);
    let script = root.join("tests/differential/duckdb_diff.py");
    assert!(script.is_file(), "missing {}", script.display());

    let probe = Command::new("python3").args(["-c", "import duckdb"]).current_dir(root).output();
    match probe {
        Err(error) => panic!(
            "the differential test needs python3 ({error}); install Python 3 and then \
             `pip install -r tests/differential/requirements.txt`"
        ),
        Ok(out) if !out.status.success() => panic!(
            "the differential test needs the duckdb Python package: run \
             `pip install -r tests/differential/requirements.txt` from the workspace root\n{}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Ok(_) => {}
    }

    let out = Command::new("python3")
        .arg(&script)
        .args(["--seed", "1", "--cases", "12", "--segmenta", env!("CARGO_BIN_EXE_segmenta")])
        .current_dir(root)
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("differential: 12 passed, 0 failed"),
        "segmenta disagrees with DuckDB (exit {:?})\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        out.status.code()
    );
}

/// Issue 11: the analysts' language (percentiles: `median`, `percentile`, `percentile_disc`)
/// against DuckDB's `median`, `quantile_cont` and `quantile_disc` on random events with ties,
/// NULLs and 0, 1, 2, ... events per account, equal to the last bit
/// (`tests/differential/duckdb_language.py`).
#[test]
fn duckdb_agrees_on_percentiles_of_random_events() {
    let root = Path::new(WORKSPACE);
    let out = Command::new("python3")
        .arg(root.join("tests/differential/duckdb_language.py"))
        .args(["--seed", "1", "--cases", "8", "--segmenta", env!("CARGO_BIN_EXE_segmenta")])
        .current_dir(root)
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("language differential: 8 passed, 0 failed"),
        "segmenta disagrees with DuckDB (exit {:?})\n--- stdout ---\n{stdout}\n--- stderr ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Issue 11: trait windows against DuckDB: calendar months and years back from the as-of
/// instant (`within 6mo` as `ts >= TIMESTAMP as_of - INTERVAL '6 months'`, the day clamped
/// at month ends), ranges of UTC days (`between A and B` as `CAST(ts AS DATE) BETWEEN`) and
/// lengths, with events on every window's first microsecond and the one before, as of dates
/// and instants on months' last days (`tests/differential/duckdb_language.py`, another seed).
#[test]
fn duckdb_agrees_on_calendar_windows_and_day_ranges() {
    let root = Path::new(WORKSPACE);
    let out = Command::new("python3")
        .arg(root.join("tests/differential/duckdb_language.py"))
        .args(["--seed", "11", "--cases", "12", "--segmenta", env!("CARGO_BIN_EXE_segmenta")])
        .current_dir(root)
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("language differential: 12 passed, 0 failed"),
        "segmenta's windows disagree with DuckDB (exit {:?})\n--- stdout ---\n{stdout}\n--- stderr ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The benchmark harness at a tiny size, as a smoke test: both sides run the same workload and
/// must write the same memberships (timings are not looked at).
#[test]
fn benchmark_harness_agrees_with_duckdb_at_a_tiny_size() {
    let root = Path::new(WORKSPACE);
    let out = Command::new("python3")
        .arg(root.join("bench/segment/bench.py"))
        .args(["--smoke", "--segmenta", env!("CARGO_BIN_EXE_segmenta")])
        .current_dir(root)
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("all agree"),
        "the benchmark's two sides disagree (exit {:?})\n{stdout}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The backfill benchmark at a tiny size: twelve monthly snapshots from one `segmenta backfill`
/// must have the memberships of twelve separate `segmenta run --as-of` runs and of DuckDB's SQL
/// evaluated once per instant (timings are not looked at).
#[test]
fn backfill_benchmark_agrees_with_separate_runs_and_duckdb_at_a_tiny_size() {
    let root = Path::new(WORKSPACE);
    let out = Command::new("python3")
        .arg(root.join("bench/backfill/bench.py"))
        .args(["--smoke", "--segmenta", env!("CARGO_BIN_EXE_segmenta")])
        .current_dir(root)
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("all agree") && stdout.contains(" 1 scan(s)"),
        "the backfill benchmark's sides disagree (exit {:?})\n{stdout}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
}
