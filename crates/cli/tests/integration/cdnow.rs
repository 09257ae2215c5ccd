//! Issue 11: the worked example on a real public data set (docs/example-cdnow.md). CDNOW's
//! 23,570 customers, as shipped with the `lifetimes` package (installed by `.ci/test`), are
//! prepared, run through the binary as a project from a transaction log alone, and cross-checked
//! by `examples/cdnow/check.py`: every trait and two segments against DuckDB, the CLV summary and
//! both models' fitted parameters against lifetimes.

use std::process::Command;

use crate::cli::{segmenta, text};

#[test]
fn the_cdnow_worked_example_agrees_with_duckdb_and_lifetimes() {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/cdnow");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(example.join("segmenta.toml"), dir.path().join("segmenta.toml")).expect("copy the project");
    let data = dir.path().join("data");
    let prepared =
        Command::new("python3").arg(example.join("prepare.py")).arg(&data).output().expect("python3 runs");
    assert!(prepared.status.success(), "prepare.py: {}", text(&prepared.stderr));
    assert!(text(&prepared.stdout).starts_with("wrote 69659 transactions"), "{}", text(&prepared.stdout));

    let run_dir = dir.path().join("run");
    let project = dir.path().to_str().expect("utf-8 path");
    let out =
        segmenta(&["run", "--project", project, "--output", run_dir.to_str().expect("utf-8 path"), "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["summary"]["entities"], 23570, "one customer per id");
    assert_eq!(report["summary"]["events"]["used"], 49086, "purchases before 1997-10-01");

    let check = Command::new("python3")
        .arg(example.join("check.py"))
        .arg(&run_dir)
        .arg(data.join("transactions.csv"))
        .output()
        .expect("python3 runs");
    let checked: serde_json::Value = serde_json::from_slice(&check.stdout)
        .unwrap_or_else(|e| panic!("check.py printed no JSON ({e}): {}", text(&check.stderr)));
    assert_eq!(checked["agree"], true, "{checked:#}");
    assert!(check.status.success(), "{checked:#}");
}
