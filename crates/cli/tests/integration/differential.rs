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
