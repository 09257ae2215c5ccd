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

/// Runs a Python script of the workspace (`tests/differential/...`, `bench/...`) with
/// `args` from the workspace root; returns whether it succeeded, its standard output, and a
/// description of the run for assertion messages (exit code, both outputs).
fn python(script: &str, args: &[&str]) -> (bool, String, String) {
    let root = Path::new(WORKSPACE);
    let out = Command::new("python3")
        .arg(root.join(script))
        .args(args)
        .current_dir(root)
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let report = format!("exit {:?}\n{stdout}\n{}", out.status.code(), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), stdout, report)
}

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
    let (ok, stdout, report) =
        python("bench/backfill/bench.py", &["--smoke", "--segmenta", env!("CARGO_BIN_EXE_segmenta")]);
    assert!(
        ok && stdout.contains("all agree") && stdout.contains(" 1 scan(s)"),
        "the backfill benchmark's sides disagree ({report})"
    );
}

/// `segmenta kpis` against DuckDB (issue #12): the demo company backfilled monthly (its
/// revenue trait, goal event, owners on some segments and two movements); every KPI of every
/// row, per segment and per owner, and with the two snapshots given either way round, must
/// agree with `tests/differential/kpis_duckdb.py`'s SQL over the same run folders.
#[test]
fn kpis_and_quality_agree_with_duckdb_over_the_run_folders() {
    let dir = tempfile::tempdir().expect("tempdir");
    let project = dir.path().join("demo");
    let project = project.to_str().expect("utf-8 path");
    let bin = env!("CARGO_BIN_EXE_segmenta");
    let ok = |args: &[&str]| {
        let out = Command::new(bin).args(args).output().expect("the binary runs");
        assert!(out.status.success(), "segmenta {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    ok(&["demo", project, "--accounts", "300", "--no-run", "--threads", "1"]);
    // The demo declares owners on some segments, two movements, [kpis] and [quality].
    let toml = std::fs::read_to_string(Path::new(project).join("segmenta.toml")).expect("read toml");
    for section in ["[movements.adopted_to_at_risk]", "[kpis]", "[quality]", "owner = \"customer-success\""] {
        assert!(toml.contains(section), "the demo has {section}");
    }
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
        let events = events.to_str().expect("utf-8 path");
        let (ok, stdout, report) = python(
            "tests/differential/kpis_duckdb.py",
            &["--segmenta", bin, "--project", project, "--at", at, "--compare", compare, "--by", by]
                .into_iter()
                .chain(["--revenue", "revenue_365d", "--goal-sql", "event_type = 'subscription_expansion'"])
                .chain(["--goal-days", "90", "--events", events])
                .collect::<Vec<_>>(),
        );
        assert!(
            ok && stdout.contains("rows agree"),
            "kpis --at {at} --compare {compare} --by {by} disagree with DuckDB ({report})"
        );
    }
    // `segmenta quality` on the same snapshots: every check's value against DuckDB.
    let contacts = Path::new(project).join("data/contacts.parquet");
    for at in ["2025-01-31", "2025-06-30"] {
        let (ok, stdout, report) = python(
            "tests/differential/quality_duckdb.py",
            &[
                "--segmenta",
                bin,
                "--project",
                project,
                "--at",
                at,
                "--contacts",
                contacts.to_str().expect("utf-8 path"),
                "--reachable-sql",
                "email IS NOT NULL AND consent_email_marketing",
            ],
        );
        assert!(
            ok && stdout.contains("segments agree"),
            "quality --at {at} disagrees with DuckDB ({report})"
        );
    }
}

/// Runs a DuckDB query in Python and returns its rows, one line each, fields tab-separated.
fn duckdb_rows(sql: &str) -> Vec<String> {
    let script = format!(
        "import duckdb\nfor row in duckdb.sql({sql:?}).fetchall():\n    print('\\t'.join('' if v is None else str(v) for v in row))"
    );
    let out = Command::new("python3").args(["-c", &script]).output().expect("python3 runs");
    assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(String::from).collect()
}

/// `segmenta coverage` (issue #12): accounts in the first engagement model whose rule holds
/// them (checked with DuckDB over the run's table), CSMs of that model within their capacity,
/// assignments kept across snapshots and roster changes, shortfall when the roster is short,
/// and located errors for a bad roster.
#[test]
fn coverage_assigns_every_model_account_and_keeps_assignments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let project = dir.path().join("demo");
    let project = project.to_str().expect("utf-8 path");
    let bin = env!("CARGO_BIN_EXE_segmenta");
    let run = |args: &[&str]| Command::new(bin).args(args).output().expect("the binary runs");
    let json = |args: &[&str]| -> serde_json::Value {
        let out = run(args);
        assert!(out.status.success(), "segmenta {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("json")
    };
    assert!(run(&["demo", project, "--accounts", "300", "--no-run", "--threads", "1"]).status.success());
    let roster = Path::new(project).join("data/csms.csv");
    let write_roster =
        |rows: &str| std::fs::write(&roster, format!("id,name,model,capacity\n{rows}")).expect("roster");
    write_roster(
        "c1,Ana,high_touch,\nc2,Ben,high_touch,\nc3,Chen,low_touch,\nc4,Dara,low_touch,\nc5,Eve,tech_touch,\n",
    );
    let file = Path::new(project).join("segmenta.toml");
    let toml = std::fs::read_to_string(&file).expect("read toml");
    // The demo's own [coverage] gives way to this one.
    let mut toml = toml[..toml.find("[coverage]").expect("the demo has [coverage]")].to_string();
    toml.push_str(
        "\n[coverage]\nroster = \"data/csms.csv\"\nrevenue = \"arr\"\n\
         \n[[coverage.models]]\nname = \"high_touch\"\nrule = \"arr >= 20000\"\naccounts_per_csm = 5\n\
         \n[[coverage.models]]\nname = \"low_touch\"\nrule = \"arr >= 2000\"\naccounts_per_csm = 100\n\
         \n[[coverage.models]]\nname = \"tech_touch\"\nrule = \"arr > 0\"\naccounts_per_csm = 1000\n",
    );
    std::fs::write(&file, toml).expect("write toml");
    for date in ["2025-05-31", "2025-06-30"] {
        assert!(run(&["run", "--project", project, "--as-of", date]).status.success());
    }
    let first = json(&["--json", "coverage", "--project", project, "--at", "2025-05-31"]);
    let output = first["output"].as_str().expect("output").to_string();
    let table = format!("{}/table.parquet", Path::new(&output).parent().expect("run folder").display());
    // The models by DuckDB: first match wins.
    let expected = duckdb_rows(&format!(
        "SELECT entity_id, CASE WHEN arr >= 20000 THEN 'high_touch' WHEN arr >= 2000 THEN 'low_touch' ELSE 'tech_touch' END \
         FROM read_parquet('{table}') WHERE arr > 0 ORDER BY 1"
    ));
    let written =
        |path: &str| duckdb_rows(&format!("SELECT entity_id, model FROM read_parquet('{path}') ORDER BY 1"));
    assert_eq!(written(&output), expected, "accounts per model");
    let csm_models = duckdb_rows(&format!(
        "SELECT count(*) FROM read_parquet('{output}') c JOIN read_csv('{}') r ON r.id = c.csm WHERE r.model <> c.model",
        roster.display()
    ));
    assert_eq!(csm_models, ["0"], "every account's CSM is of its model");
    for model in first["models"].as_array().expect("models") {
        let accounts = model["accounts"].as_u64().expect("accounts");
        let ratio = model["accounts_per_csm"].as_u64().expect("ratio");
        assert_eq!(model["csms_needed"].as_u64(), Some(accounts.div_ceil(ratio)), "{model}");
        let short =
            accounts.div_ceil(ratio).saturating_sub(model["csms_available"].as_u64().expect("available"));
        assert_eq!(model["shortfall"].as_u64(), Some(short), "{model}");
    }
    for csm in first["csms"].as_array().expect("csms") {
        assert!(csm["accounts"].as_u64() <= csm["capacity"].as_u64(), "{csm}");
    }
    // The high-touch model needs more CSMs than the roster has: the rest is unassigned.
    let high = &first["models"][0];
    assert!(high["shortfall"].as_u64().expect("shortfall") > 0, "{high}");
    assert_eq!(high["unassigned"].as_u64(), Some(high["accounts"].as_u64().expect("n") - 10), "{high}");

    // The next snapshot keeps every assignment that still fits.
    let assignments = |path: &str| {
        duckdb_rows(&format!(
            "SELECT entity_id, csm FROM read_parquet('{path}') WHERE csm IS NOT NULL ORDER BY 1"
        ))
    };
    let before = assignments(&output);
    write_roster(
        "c1,Ana,high_touch,\nc2,Ben,high_touch,\nc3,Chen,low_touch,\nc5,Eve,tech_touch,\nc6,Finn,low_touch,\n",
    );
    let second = json(&["--json", "coverage", "--project", project, "--at", "2025-06-30"]);
    assert_eq!(second["previous"]["as_of"], first["at"]["as_of"]);
    let after: std::collections::HashMap<String, String> =
        assignments(second["output"].as_str().expect("output"))
            .into_iter()
            .filter_map(|l| l.split_once('\t').map(|(a, b)| (a.to_string(), b.to_string())))
            .collect();
    let mut moved = 0;
    for line in &before {
        let (id, csm) = line.split_once('\t').expect("two fields");
        if csm == "c4" {
            assert_eq!(
                after.get(id).map(String::as_str),
                Some("c6"),
                "{id}: c4 left, the low-touch accounts go to c6 or stay"
            );
            moved += 1;
        } else if let Some(now) = after.get(id) {
            assert_eq!(now, csm, "{id} changed CSM without reason");
        }
    }
    assert!(moved > 0);

    // Bad rosters are user errors.
    write_roster("");
    let out = run(&["coverage", "--project", project]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the roster lists no CSM"));
    write_roster("c1,Ana,high_tuch,\n");
    let out = run(&["coverage", "--project", project]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 2: CSM `c1` has model `high_tuch`") && err.contains("did you mean `high_touch`?"),
        "{err}"
    );
}
