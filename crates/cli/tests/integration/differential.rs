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

/// `segmenta kpis` against DuckDB (issue #12): the demo company backfilled monthly, with a
/// revenue trait, a goal event, owners on some segments and two movements; every KPI of every
/// row, per segment and per owner, and with the two snapshots given either way round, must
/// agree with `tests/differential/kpis_duckdb.py`'s SQL over the same run folders.
#[test]
fn kpis_and_quality_agree_with_duckdb_over_the_run_folders() {
    let root = Path::new(WORKSPACE);
    let dir = tempfile::tempdir().expect("tempdir");
    let project = dir.path().join("demo");
    let project = project.to_str().expect("utf-8 path");
    let bin = env!("CARGO_BIN_EXE_segmenta");
    let ok = |args: &[&str]| {
        let out = Command::new(bin).args(args).output().expect("the binary runs");
        assert!(out.status.success(), "segmenta {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    ok(&["demo", project, "--accounts", "300", "--no-run", "--threads", "1"]);
    let file = Path::new(project).join("segmenta.toml");
    let mut toml = std::fs::read_to_string(&file).expect("read toml");
    for (segment, owner) in
        [("value_top_spenders", "ana"), ("behavioral_power_users", "ana"), ("geographic_dach", "ben")]
    {
        let header = format!("[segments.{segment}]\n");
        assert!(toml.contains(&header), "the demo has {segment}");
        toml = toml.replace(&header, &format!("{header}owner = \"{owner}\"\n"));
    }
    toml.push_str(
        "\n[movements.adopted_to_at_risk]\nfrom = \"lifecycle.adopted\"\nto = \"lifecycle.at_risk\"\nowner = \"ben\"\n\
         \n[movements.became_churned]\nto = \"lifecycle.churned\"\n\
         \n[kpis]\nrevenue = \"revenue_365d\"\ngoal = \"event_type = 'subscription_expansion'\"\ngoal_window = \"90d\"\n\
         \n[quality]\nreachable = \"email is not null and consent_email_marketing\"\nmin_size = 10\n",
    );
    std::fs::write(&file, toml).expect("write toml");
    ok(&[
        "backfill",
        "--project",
        project,
        "--from",
        "2025-01-31",
        "--to",
        "2025-06-30",
        "--every",
        "1mo",
        "--threads",
        "1",
    ]);
    let events = Path::new(project).join("data/events.parquet");
    for (at, compare, by) in [
        ("2025-06-30", "2025-03-31", "segment"),
        ("2025-02-28", "2025-05-31", "segment"),
        ("2025-04-30", "2025-01-31", "owner"),
    ] {
        let out = Command::new("python3")
            .arg(root.join("tests/differential/kpis_duckdb.py"))
            .args(["--segmenta", bin, "--project", project, "--at", at, "--compare", compare, "--by", by])
            .args(["--revenue", "revenue_365d", "--goal-sql", "event_type = 'subscription_expansion'"])
            .args(["--goal-days", "90", "--events", events.to_str().expect("utf-8 path")])
            .output()
            .expect("python3 runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("rows agree"),
            "kpis --at {at} --compare {compare} --by {by} disagree with DuckDB (exit {:?})\n{stdout}\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // `segmenta quality` on the same snapshots: every check's value against DuckDB.
    let contacts = Path::new(project).join("data/contacts.parquet");
    for at in ["2025-01-31", "2025-06-30"] {
        let out = Command::new("python3")
            .arg(root.join("tests/differential/quality_duckdb.py"))
            .args(["--segmenta", bin, "--project", project, "--at", at])
            .args(["--contacts", contacts.to_str().expect("utf-8 path")])
            .args(["--reachable-sql", "email IS NOT NULL AND consent_email_marketing"])
            .output()
            .expect("python3 runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("segments agree"),
            "quality --at {at} disagrees with DuckDB (exit {:?})\n{stdout}\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
