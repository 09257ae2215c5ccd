//! The binary as a user runs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub(crate) fn segmenta(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_segmenta")).args(args).output().expect("the binary runs")
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A copy of the quick-start example in a temporary folder (so runs do not touch the repo).
pub(crate) fn quickstart() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = workspace().join("examples/quickstart");
    std::fs::create_dir_all(dir.path().join("data")).expect("mkdir");
    for file in ["segmenta.toml", "data/accounts.csv", "data/events.csv"] {
        std::fs::copy(source.join(file), dir.path().join(file)).expect("copy example");
    }
    dir
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn version_and_help() {
    let out = segmenta(&["--version"]);
    assert!(out.status.success());
    assert!(text(&out.stdout).starts_with("segmenta "), "{}", text(&out.stdout));
    for command in ["run", "validate", "members"] {
        let out = segmenta(&[command, "--help"]);
        assert!(out.status.success(), "{command} --help");
        assert!(text(&out.stdout).contains("--project"));
    }
    for command in [
        &["demo", "--help"][..],
        &["list", "import", "--help"],
        &["list", "freeze", "--help"],
        &["discover", "--help"],
    ] {
        let out = segmenta(command);
        assert!(out.status.success(), "{command:?}");
        assert!(text(&out.stdout).contains("Usage: segmenta"), "{command:?}");
    }
}

#[test]
fn quickstart_runs_and_members_match_the_summary() {
    let dir = quickstart();
    let project = dir.path().to_str().expect("utf-8 path");
    let out = segmenta(&["run", "--project", project, "--as-of", "2024-06-30", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let summary = &report["summary"];
    assert_eq!(summary["entities"], 40);
    let events = &summary["events"];
    assert_eq!(events["read"], 913);
    assert_eq!(
        events["read"],
        events["used"].as_u64().unwrap_or(0) + events["ignored"].as_u64().unwrap_or(0)
    );
    let segments = summary["segments"].as_array().expect("segments");
    assert_eq!(segments.len(), 11);
    for segment in segments {
        let name = segment["name"].as_str().expect("name");
        let size = segment["size"].as_u64().expect("size");
        assert!(size > 0 && size < 40, "{name} should be neither empty nor everyone: {size}");
        let out = segmenta(&["members", name, "--project", project]);
        assert!(out.status.success());
        assert_eq!(text(&out.stdout).lines().count() as u64, size, "{name}");
    }
    let table = segmenta(&["run", "--project", project, "--as-of", "2024-06-30"]);
    let table = text(&table.stdout);
    assert!(table.contains("enterprise_healthcare") && table.contains("share"), "{table}");
}

#[test]
fn user_errors_exit_with_code_2() {
    let dir = quickstart();
    let project = dir.path().to_str().expect("utf-8 path");
    let out = segmenta(&["run", "--project", project, "--as-of", "yesterday"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("invalid --as-of"));

    let out = segmenta(&["members", "no_such_segment", "--project", project]);
    assert_eq!(out.status.code(), Some(2));

    let toml = std::fs::read_to_string(dir.path().join("segmenta.toml")).expect("read");
    std::fs::write(dir.path().join("segmenta.toml"), toml.replace("region = 'EMEA'", "region > 5"))
        .expect("write");
    let out = segmenta(&["validate", "--project", project, "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let error: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json error");
    assert_eq!(error["error"]["code"], "type_mismatch");
    assert!(text(&out.stderr).contains("segmenta.toml:"), "{}", text(&out.stderr));

    let out = segmenta(&["run", "--project", "/nonexistent/project"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn static_lists_import_and_freeze() {
    let dir = quickstart();
    let project = dir.path().to_str().expect("utf-8 path");
    let ids = dir.path().join("ids.csv");
    std::fs::write(&ids, "account_id,note\nA001,x\nA002,y\nNOPE,z\nA001,again\n").expect("write ids");
    let ids = ids.to_str().expect("utf-8 path");

    // Unknown ids stop the import, listed, unless the user says what to do with them.
    let out = segmenta(&["list", "import", "vip", "--file", ids, "--project", project]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("1 id(s) are not entities: NOPE"), "{}", text(&out.stderr));
    assert!(!dir.path().join("lists/vip.csv").exists(), "nothing is written on error");

    let out = segmenta(&[
        "list",
        "import",
        "vip",
        "--file",
        ids,
        "--unknown",
        "drop",
        "--project",
        project,
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!((report["read"].as_u64(), report["duplicates"].as_u64()), (Some(4), Some(1)));
    assert_eq!((report["unknown_ids"].as_u64(), report["written"].as_u64()), (Some(1), Some(2)));
    let list = std::fs::read_to_string(dir.path().join("lists/vip.csv")).expect("the list file");
    assert_eq!(list, "entity_id\nA001\nA002\n");
    let toml = std::fs::read_to_string(dir.path().join("segmenta.toml")).expect("read");
    assert!(toml.starts_with("# The quick-start project"), "comments are kept");
    assert!(toml.contains("[segments.vip]\nstatic = \"lists/vip.csv\""), "{toml}");

    // The static segment runs like any other; a dynamic segment freezes into a static one.
    let out = segmenta(&["run", "--project", project, "--as-of", "2024-06-30"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let members = text(&segmenta(&["members", "vip", "--project", project]).stdout);
    assert_eq!(members.lines().collect::<Vec<_>>(), ["A001", "A002"]);
    let at_risk = text(&segmenta(&["members", "at_risk", "--project", project]).stdout);
    let out = segmenta(&["list", "freeze", "at_risk", "--as", "at_risk_q2", "--project", project]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = segmenta(&["list", "freeze", "at_risk", "--as", "at_risk_q2", "--project", project]);
    assert_eq!(out.status.code(), Some(2), "an existing list is not overwritten without --replace");
    let out = segmenta(&["run", "--project", project, "--as-of", "2024-06-30"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let frozen = text(&segmenta(&["members", "at_risk_q2", "--project", project]).stdout);
    let mut expected: Vec<&str> = at_risk.lines().collect();
    expected.sort();
    assert_eq!(frozen.lines().collect::<Vec<_>>(), expected);
}

#[test]
fn demo_writes_and_runs_a_project() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("demo");
    let target = target.to_str().expect("utf-8 path");
    let out = segmenta(&["demo", target, "--accounts", "300", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["accounts"], 300);
    assert_eq!(report["run"]["summary"]["entities"], 300);
    let out = segmenta(&["validate", "--project", target]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = segmenta(&["demo", target, "--accounts", "0"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

#[test]
fn discover_prints_json_and_saves_segments_that_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("demo");
    let project = target.to_str().expect("utf-8 path");
    let out = segmenta(&["demo", project, "--accounts", "300", "--no-run", "--threads", "2"]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let discover = |extra: &[&str]| {
        let mut args =
            vec!["discover", "--project", project, "--features", "arr,logins_30d,plan", "--k", "3"];
        args.extend_from_slice(extra);
        segmenta(&args)
    };
    let out = discover(&["--save", "--prefix", "seg", "--threads", "2", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let discovery = &report["discovery"];
    assert_eq!(discovery["k"], 3);
    assert_eq!(discovery["entities"], 300);
    let output = Path::new(report["output"].as_str().expect("output folder"));
    assert!(output.join("clusters.parquet").is_file() && output.join("discovery.json").is_file());
    let saved = report["saved_segments"].as_array().expect("saved segments");
    assert_eq!(saved.len(), 3);

    // The saved segments are valid and run; each has the size the discovery reported for its rule.
    let out = segmenta(&["validate", "--project", project]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = segmenta(&["run", "--project", project]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for cluster in discovery["clusters"].as_array().expect("clusters") {
        let name = cluster["segment"].as_str().expect("saved as a segment");
        assert!(name.starts_with("seg_"), "{name}");
        let members = text(&segmenta(&["members", name, "--project", project]).stdout);
        assert_eq!(Some(members.lines().count() as u64), cluster["rule_size"].as_u64(), "{name}");
    }

    // The table output names the personas and rules; the ids stay those of the first discovery.
    let out = discover(&[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    for needle in ["3 clusters of 300 account entities", "k = 3 was fixed", "preprocessing:", "cluster 0: "] {
        assert!(table.contains(needle), "`{needle}` is not in:\n{table}");
    }
    assert!(
        table.contains("rule: ") && table.contains("fidelity ") && table.contains("stability: "),
        "{table}"
    );
    assert!(table.contains("3 of 3 clusters kept the id"), "{table}");

    // A bad feature exits with code 2 and a JSON error.
    let out = segmenta(&["discover", "--project", project, "--features", "arr,uses_sso", "--json"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let error: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json error");
    assert_eq!(error["error"]["code"], "unsupported_feature");
    let out = segmenta(&["discover", "--project", project, "--features", "arr", "--k", "lots"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("invalid --k `lots`"), "{}", text(&out.stderr));
}

#[test]
fn discover_save_refuses_a_rule_that_is_true_without_force() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("demo");
    let project = target.to_str().expect("utf-8 path");
    let out = segmenta(&["demo", project, "--accounts", "300", "--no-run", "--threads", "2"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let before = std::fs::read_to_string(target.join("segmenta.toml")).expect("read");
    let discover = |extra: &[&str]| {
        let mut args = vec!["discover", "--project", project, "--features", "arr,plan", "--threads", "2"];
        args.extend_from_slice(extra);
        segmenta(&args)
    };

    // One cluster: its rule is `true`.
    let out = discover(&["--k", "1", "--save"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("the rule of cluster 0 (`true`) matches every entity"), "{stderr}");
    assert!(stderr.contains("--force"), "{stderr}");
    assert_eq!(std::fs::read_to_string(target.join("segmenta.toml")).expect("read"), before);
    // --force only goes with --save.
    let out = discover(&["--k", "1", "--force"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--save"), "{}", text(&out.stderr));

    // Forced, the rule is saved; the report says what is wrong with it, under its cluster.
    let out = discover(&["--k", "1", "--save", "--force"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    assert!(report.contains("  rule: true\n"), "{report}");
    assert!(report.contains("  warning: the rule of cluster 0 (`true`) matches every"), "{report}");
    assert!(report.contains("saved 1 segments to segmenta.toml"), "{report}");
    assert!(
        std::fs::read_to_string(target.join("segmenta.toml")).expect("read").contains(r#"rule = "true""#)
    );

    // Automatic k at the edge of its range warns in the report and in --json.
    let out = discover(&["--k", "3..4", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        json["discovery"]["warnings"][0]["code"], "k_at_range_edge",
        "{}",
        json["discovery"]["warnings"]
    );
    let out = discover(&["--k", "3..4"]);
    assert!(text(&out.stdout).contains("\nwarning: automatic k chose k = "), "{}", text(&out.stdout));
}

#[test]
fn clv_and_churn_commands_write_their_reports() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("demo");
    let project = target.to_str().expect("utf-8 path");
    let out = segmenta(&["demo", project, "--accounts", "1000", "--no-run", "--threads", "2"]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let clv_out = dir.path().join("clv");
    let out = segmenta(&[
        "clv",
        "--project",
        project,
        "--horizon",
        "13",
        "--output",
        clv_out.to_str().expect("utf-8"),
        "--threads",
        "2",
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["params"]["horizon"], "13w", "13 time units of a week");
    assert!(report["params"]["bg_nbd"]["r"].as_f64().is_some_and(|r| r > 0.0));
    assert!(clv_out.join("clv_params.json").is_file() && clv_out.join("clv.parquet").is_file());

    let out = segmenta(&["predict", "churn", "--project", project, "--threads", "2"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    assert!(printed.contains("holdout:") && printed.contains("AUC"), "{printed}");

    // Options that name what does not exist are user errors.
    let out = segmenta(&["predict", "churn", "--project", project, "--features", "logins_31d"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("did you mean `logins_30d`?"), "{}", text(&out.stderr));
    let out = segmenta(&["clv", "--project", project, "--horizon", "3m"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let quick = quickstart();
    let out = segmenta(&["clv", "--project", quick.path().to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--purchase"), "{}", text(&out.stderr));
}

#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    let dir = quickstart();
    let project = dir.path().to_str().expect("utf-8 path");
    let out = segmenta(&["run", "--project", project]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary = segmenta(&["run", "--project", project, "--json"]);
    let summary: serde_json::Value = serde_json::from_slice(&summary.stdout).expect("json");
    let segment = summary["summary"]["segments"][0]["name"].as_str().expect("a segment").to_string();
    // The reader goes away at once: the command must neither panic nor report an error.
    let mut child = Command::new(env!("CARGO_BIN_EXE_segmenta"))
        .args(["members", &segment, "--project", project])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawns");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("waits");
    assert!(out.status.success(), "{:?}: {}", out.status, text(&out.stderr));
    assert!(!text(&out.stderr).contains("panicked"), "{}", text(&out.stderr));
}

#[test]
fn issue_10_verbose_prints_the_stages_of_a_run() {
    let dir = quickstart();
    let project = dir.path().to_str().expect("utf-8 path");
    let out = segmenta(&["run", "-v", "--project", project, "--as-of", "2024-06-30"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let log = text(&out.stderr);
    for stage in ["validate", "read_entity", "scan", "entity_table", "derived_columns", "evaluate", "write"] {
        assert!(log.contains(stage), "no `{stage}` span in:\n{log}");
    }
    assert!(log.contains("time.busy"), "spans report their time:\n{log}");
    // Without -v or RUST_LOG nothing is logged; the table goes to standard output as before.
    let quiet = Command::new(env!("CARGO_BIN_EXE_segmenta"))
        .args(["run", "--project", project, "--as-of", "2024-06-30"])
        .env_remove("RUST_LOG")
        .output()
        .expect("the binary runs");
    assert!(quiet.status.success());
    assert!(!text(&quiet.stderr).contains("time.busy"), "{}", text(&quiet.stderr));
    // RUST_LOG chooses what is logged.
    let only_query = Command::new(env!("CARGO_BIN_EXE_segmenta"))
        .args(["run", "--project", project, "--as-of", "2024-06-30"])
        .env("RUST_LOG", "segmenta_query=info")
        .output()
        .expect("the binary runs");
    let log = text(&only_query.stderr);
    assert!(log.contains("scan") && !log.contains(" write"), "{log}");
}

#[test]
fn issue_12_snapshots_history_and_diff_read_the_runs_back() {
    let dir = quickstart();
    let project = dir.path().to_str().expect("utf-8 path");
    for as_of in ["2024-06-30", "2024-03-31", "2024-06-30"] {
        let out = segmenta(&["run", "--project", project, "--as-of", as_of]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let out = segmenta(&["--json", "snapshots", "--project", project]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let snapshots = listed["snapshots"].as_array().expect("a list");
    let as_of: Vec<&str> = snapshots.iter().filter_map(|s| s["as_of"].as_str()).collect();
    assert_eq!(as_of, ["2024-04-01T00:00:00Z", "2024-07-01T00:00:00Z"], "one per as-of, in order");

    // Every segment's history agrees with `members --at` of each snapshot.
    let out = segmenta(&["--json", "run", "--project", project, "--as-of", "2024-06-30"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let segments: Vec<String> = report["summary"]["segments"]
        .as_array()
        .expect("segments")
        .iter()
        .filter_map(|s| s["name"].as_str().map(String::from))
        .collect();
    for segment in &segments {
        let members = |at: &str| -> std::collections::BTreeSet<String> {
            let out = segmenta(&["members", segment, "--at", at, "--project", project]);
            assert!(out.status.success(), "{}", text(&out.stderr));
            text(&out.stdout).lines().map(String::from).collect()
        };
        let (march, june) = (members("2024-03-31"), members("2024-06-30"));
        let out = segmenta(&["--json", "history", segment, "--project", project]);
        let history: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        let points = history["history"].as_array().expect("points");
        assert_eq!(points.len(), 2, "{segment}");
        assert_eq!(points[1]["size"], june.len(), "{segment}");
        assert_eq!(points[1]["entered"], june.difference(&march).count(), "{segment}");
        assert_eq!(points[1]["exited"], march.difference(&june).count(), "{segment}");
        assert_eq!(points[1]["compared_with"], points[0]["snapshot"], "{segment}");
        assert_eq!(history["left_out"], serde_json::json!([]), "{segment}");
        let out = segmenta(&[
            "--json",
            "diff",
            segment,
            "--from",
            "2024-03-31",
            "--to",
            "2024-06-30",
            "--project",
            project,
        ]);
        let diff: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        let entered: std::collections::BTreeSet<String> = diff["segments"][0]["entered"]
            .as_array()
            .expect("ids")
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect();
        assert_eq!(entered, june.difference(&march).cloned().collect(), "{segment}");
    }
    let out = segmenta(&["members", &segments[0], "--at", "2023-01-01", "--project", project]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no snapshot `2023-01-01`"), "{}", text(&out.stderr));
    let out = segmenta(&["transitions", "tiers", "--from", "1", "--to", "2", "--project", project]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("the project declares no scheme and no [rfm]"),
        "{}",
        text(&out.stderr)
    );
    for command in ["snapshots", "history", "diff", "transitions"] {
        let out = segmenta(&[command, "--help"]);
        assert!(out.status.success() && text(&out.stdout).contains("--project"), "{command} --help");
    }
    // A snapshot whose run folder is gone is left out, and the history says so.
    let march = snapshots[0]["run_dir"].as_str().map(String::from);
    let march = march.unwrap_or_else(|| panic!("a run folder in {}", listed));
    std::fs::remove_dir_all(&march).expect("removes March's run");
    let out = segmenta(&["history", &segments[0], "--project", project]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("as of 2024-04-01T00:00:00Z is left out (its run folder is gone)"),
        "{}",
        text(&out.stderr)
    );
    let out = segmenta(&["--json", "history", &segments[0], "--project", project]);
    let history: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(history["left_out"][0]["reason"], "run_folder_gone", "{history}");
    assert_eq!(history["history"].as_array().map(Vec::len), Some(1), "{history}");
}

#[test]
fn issue_12_backfill_writes_one_snapshot_per_instant_and_rejects_bad_ranges() {
    let dir = quickstart();
    let project = dir.path().to_str().expect("utf-8 path");
    let out = segmenta(&[
        "--json",
        "backfill",
        "--project",
        project,
        "--from",
        "2024-01-31",
        "--to",
        "2024-06-30",
        "--every",
        "1mo",
        "--threads",
        "1",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let dates: Vec<&str> = report["snapshots"]
        .as_array()
        .expect("snapshots")
        .iter()
        .filter_map(|s| s["date"].as_str())
        .collect();
    assert_eq!(dates, ["2024-01-31", "2024-02-29", "2024-03-31", "2024-04-30", "2024-05-31", "2024-06-30"]);
    assert_eq!(report["event_scans"], 1, "{report}");
    // Each snapshot's memberships are those of `run --as-of` that day.
    for snapshot in report["snapshots"].as_array().expect("snapshots") {
        let date = snapshot["date"].as_str().expect("date");
        let out = segmenta(&[
            "run",
            "--project",
            project,
            "--as-of",
            date,
            "--output",
            &format!("{project}/r-{date}"),
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let folder = snapshot["output"].as_str().expect("output");
        let backfilled =
            std::fs::read(format!("{folder}/memberships.parquet")).expect("backfilled memberships");
        let run = std::fs::read(format!("{project}/r-{date}/memberships.parquet")).expect("run memberships");
        assert!(backfilled == run, "memberships as of {date} differ from run --as-of");
    }
    let out = segmenta(&["--json", "snapshots", "--project", project]);
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(listed["snapshots"].as_array().expect("a list").len(), 6);
    // A relative project folder (the catalog's run folders are relative to the store).
    let out = Command::new(env!("CARGO_BIN_EXE_segmenta"))
        .args(["backfill", "--project", ".", "--from", "2024-07-31", "--to", "2024-08-31", "--every", "1mo"])
        .current_dir(project)
        .output()
        .expect("the binary runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = segmenta(&["--json", "members", "paying", "--project", project]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    for (args, message) in [
        (["--from", "2024-06-30", "--to", "2024-01-31", "--every", "1mo"], "after"),
        (["--from", "2024-13-01", "--to", "2024-06-30", "--every", "1mo"], "--from"),
        (["--from", "2024-01-31", "--to", "2024-06-30", "--every", "fortnightly"], "--every"),
    ] {
        let mut all = vec!["backfill", "--project", project];
        all.extend(args);
        let out = segmenta(&all);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out.stderr));
        assert!(text(&out.stderr).contains(message), "{args:?}: {}", text(&out.stderr));
    }
    let out = segmenta(&["backfill", "--help"]);
    assert!(out.status.success() && text(&out.stdout).contains("--every"));
}

/// The members of `segment` in snapshot `at`, as a set.
fn members_at(project: &str, segment: &str, at: &str) -> std::collections::BTreeSet<String> {
    let out = segmenta(&["members", segment, "--at", at, "--project", project]);
    assert!(out.status.success(), "members {segment} --at {at}: {}", text(&out.stderr));
    text(&out.stdout).lines().map(String::from).collect()
}

fn add_movements(project: &str) {
    let file = Path::new(project).join("segmenta.toml");
    let mut toml = std::fs::read_to_string(&file).expect("read toml");
    toml.push_str(
        "\n[movements.went_dormant]\nfrom = \"active\"\nto = \"dormant\"\nowner = \"cs\"\n\
         \n[movements.became_active]\nto = \"active\"\n\n[movements.stopped_paying]\nfrom = \"paying\"\n",
    );
    std::fs::write(&file, toml).expect("write toml");
}

#[test]
fn issue_12_movement_segments_hold_who_moved_since_the_previous_snapshot() {
    let dir = quickstart();
    let project = dir.path().to_str().expect("utf-8 path");
    add_movements(project);
    let dates = ["2024-02-29", "2024-03-31", "2024-04-30", "2024-05-31", "2024-06-30"];
    for date in dates {
        let out = segmenta(&["run", "--project", project, "--as-of", date]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    // The first snapshot has no previous one: every movement is empty, and the run says why.
    for movement in ["went_dormant", "became_active", "stopped_paying"] {
        assert!(members_at(project, movement, dates[0]).is_empty(), "{movement}");
    }
    let mut moved = 0;
    for pair in dates.windows(2) {
        let (before, now) = (pair[0], pair[1]);
        let was = |s: &str| members_at(project, s, before);
        let is = |s: &str| members_at(project, s, now);
        let went_dormant: std::collections::BTreeSet<String> = was("active")
            .difference(&was("dormant"))
            .filter(|id| is("dormant").contains(*id))
            .cloned()
            .collect();
        assert_eq!(members_at(project, "went_dormant", now), went_dormant, "went_dormant as of {now}");
        let became_active: std::collections::BTreeSet<String> =
            is("active").difference(&was("active")).cloned().collect();
        assert_eq!(members_at(project, "became_active", now), became_active, "became_active as of {now}");
        let stopped: std::collections::BTreeSet<String> =
            was("paying").difference(&is("paying")).cloned().collect();
        assert_eq!(members_at(project, "stopped_paying", now), stopped, "stopped_paying as of {now}");
        moved += went_dormant.len() + became_active.len();
    }
    assert!(moved > 0, "the quick-start data should move some accounts between these segments");

    // A backfill over the same dates, in a fresh copy, writes the same memberships.
    let fresh = quickstart();
    let fresh_project = fresh.path().to_str().expect("utf-8 path");
    add_movements(fresh_project);
    let out = segmenta(&[
        "--json",
        "backfill",
        "--project",
        fresh_project,
        "--from",
        "2024-02-29",
        "--to",
        "2024-06-30",
        "--every",
        "1mo",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for date in dates {
        for movement in ["went_dormant", "became_active", "stopped_paying"] {
            assert_eq!(
                members_at(fresh_project, movement, date),
                members_at(project, movement, date),
                "{movement} as of {date}: backfill and runs differ"
            );
        }
    }

    // Bad movements are located errors.
    let file = Path::new(project).join("segmenta.toml");
    let toml = std::fs::read_to_string(&file).expect("read toml");
    std::fs::write(&file, toml.replace("to = \"dormant\"", "to = \"dormat\"")).expect("write toml");
    let out = segmenta(&["validate", "--project", project]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("movement `went_dormant`: `dormat` is not a segment")
            && err.contains("did you mean `dormant`?"),
        "{err}"
    );
}

#[test]
fn issue_12_kpis_quality_and_coverage_refuse_bad_input_with_exit_2() {
    let dir = quickstart();
    let project = dir.path().to_str().expect("utf-8 path");
    let out = segmenta(&["run", "--project", project, "--as-of", "2024-06-30"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = segmenta(&["kpis", "--project", project, "--at", "99"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no snapshot `99`"), "{}", text(&out.stderr));
    let out = segmenta(&["quality", "--project", project, "--at", "2030-01-01"]);
    assert_eq!(out.status.code(), Some(2));
    let out = segmenta(&["coverage", "--project", project]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no [coverage] section"), "{}", text(&out.stderr));
    // A revenue that is not a column: did you mean.
    let file = Path::new(project).join("segmenta.toml");
    let mut toml = std::fs::read_to_string(&file).expect("read toml");
    toml.push_str("\n[kpis]\nrevenue = \"revenue_356d\"\n");
    std::fs::write(&file, toml).expect("write toml");
    let out = segmenta(&["kpis", "--project", project]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("`revenue_356d` is not a column") && err.contains("did you mean `revenue_365d`?"),
        "{err}"
    );
    // Without --compare there are no retention figures; with it, JSON has them.
    let out = segmenta(&["--json", "kpis", "--project", project]);
    assert_eq!(out.status.code(), Some(2), "the bad revenue stays an error");
    for command in ["kpis", "quality", "coverage"] {
        let out = segmenta(&[command, "--help"]);
        assert!(out.status.success() && text(&out.stdout).contains("--at"), "{command} --help");
    }
}

#[test]
fn prune_keeps_the_newest_snapshots_and_says_what_it_deleted() {
    let dir = quickstart();
    let project = dir.path().to_str().expect("utf-8 path");
    for as_of in ["2024-04-30", "2024-05-31", "2024-06-30"] {
        let out = segmenta(&["run", "--project", project, "--threads", "1", "--as-of", as_of]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let refused = segmenta(&["prune", "--project", project, "--keep", "0"]);
    assert_eq!(refused.status.code(), Some(2), "--keep 0 deletes everything: refused");
    let dry = segmenta(&["prune", "--project", project, "--keep", "1", "--dry-run", "--json"]);
    let dry: serde_json::Value = serde_json::from_slice(&dry.stdout).expect("JSON");
    assert_eq!((dry["removed"].as_array().map(Vec::len), dry["kept"].as_u64()), (Some(2), Some(1)), "{dry}");
    let listed = segmenta(&["snapshots", "--project", project, "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("JSON");
    assert_eq!(listed["snapshots"].as_array().map(Vec::len), Some(3), "a dry run deletes nothing");
    let out = segmenta(&["prune", "--project", project, "--keep", "1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("deleted 2 snapshot(s), kept 1"), "{}", text(&out.stdout));
    let listed = segmenta(&["snapshots", "--project", project, "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("JSON");
    assert_eq!(listed["snapshots"][0]["as_of"].as_str(), Some("2024-07-01T00:00:00Z"), "{listed}");
    let members = segmenta(&["members", "active", "--project", project]);
    assert!(members.status.success(), "the latest run still reads: {}", text(&members.stderr));
}
