//! Snapshots of the `segmenta` binary's observable behaviour (issue #10, item 4): the text and
//! `--json` output of every command on the quick-start example and on small demo projects, the
//! `summary.json` of a run, and the rendered user errors with their exit codes. They pin what a
//! user sees, so that an internal refactor can show it changed none of it.
//!
//! Volatile values are redacted before snapshotting: the temporary project folder becomes
//! `[DIR]`, the timestamped names of run, discovery and report folders become `[STAMP]`, and
//! elapsed times become `[elapsed_ms]`. Every as-of is fixed with `--as-of`, and every command
//! that takes `--threads` runs on one thread. JSON is parsed into a `serde_json::Value` with its
//! keys sorted, so the snapshots do not depend on key order.
//!
//! Regenerate with `INSTA_UPDATE=always cargo test -p segmenta-cli --test integration
//! snapshots`, then read the changed `.snap` files.

use std::path::Path;
use std::process::Command;

use serde_json::{Map, Value, json};

/// What one invocation of the binary left behind.
struct Invocation {
    code: i32,
    stdout: String,
    stderr: String,
}

/// A project in a temporary folder and the redactions its output needs.
struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    /// A copy of the quick-start example.
    fn quickstart() -> Project {
        let dir = tempfile::tempdir().expect("tempdir");
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/quickstart");
        std::fs::create_dir_all(dir.path().join("data")).expect("mkdir");
        for file in ["segmenta.toml", "data/accounts.csv", "data/events.csv"] {
            std::fs::copy(source.join(file), dir.path().join(file)).expect("copy example");
        }
        Project { dir }
    }

    /// The demo company with `accounts` accounts (seed 42), written but not run; also returns
    /// what `segmenta demo` printed.
    fn demo(accounts: u64) -> (Project, String) {
        let project = Project { dir: tempfile::tempdir().expect("tempdir") };
        let accounts = accounts.to_string();
        let out =
            project.ok(&["demo", project.path(), "--accounts", &accounts, "--no-run", "--threads", "1"]);
        (project, out)
    }

    fn path(&self) -> &str {
        self.dir.path().to_str().expect("utf-8 temporary path")
    }

    /// Runs the binary; `redact` says whether to redact its output.
    fn invoke_with(&self, args: &[&str], redact: bool) -> Invocation {
        let out = Command::new(env!("CARGO_BIN_EXE_segmenta")).args(args).output().expect("the binary runs");
        let text = |bytes: &[u8]| {
            let text = String::from_utf8_lossy(bytes);
            if redact { self.redact_text(&text) } else { text.into_owned() }
        };
        // A signal leaves no code; -1 makes that visible in the snapshot.
        Invocation {
            code: out.status.code().unwrap_or(-1),
            stdout: text(&out.stdout),
            stderr: text(&out.stderr),
        }
    }

    fn invoke(&self, args: &[&str]) -> Invocation {
        self.invoke_with(args, true)
    }

    /// Runs a command that must succeed quietly and returns its standard output.
    fn ok_with(&self, args: &[&str], redact: bool) -> String {
        let out = self.invoke_with(args, redact);
        assert_eq!(out.code, 0, "segmenta {args:?} failed:\n{}", out.stderr);
        // Spinners only draw on a terminal, so a successful command writes nothing else.
        assert_eq!(out.stderr, "", "segmenta {args:?} wrote to standard error");
        out.stdout
    }

    /// Runs a command that must succeed quietly and returns its redacted standard output.
    fn ok(&self, args: &[&str]) -> String {
        self.ok_with(args, true)
    }

    /// Runs a command that must succeed with warnings and returns its redacted standard output
    /// and standard error (the warnings, each with its hint).
    fn ok_warned(&self, args: &[&str]) -> (String, String) {
        let out = self.invoke(args);
        assert_eq!(out.code, 0, "segmenta {args:?} failed:\n{}", out.stderr);
        assert!(out.stderr.starts_with("warning: "), "segmenta {args:?} did not warn: {}", out.stderr);
        (out.stdout, out.stderr)
    }

    /// Runs a command with `--json` that must succeed and returns its output, not redacted.
    fn ok_json_raw(&self, args: &[&str]) -> Value {
        let args = [args, &["--json"]].concat();
        serde_json::from_str(&self.ok_with(&args, false)).expect("standard output is one JSON value")
    }

    /// Runs a command with `--json` that must succeed and returns its redacted output.
    fn ok_json(&self, args: &[&str]) -> Value {
        self.redact_json(self.ok_json_raw(args))
    }

    /// Runs `run --json` and returns its redacted output and the redacted `summary.json` of the
    /// run folder it reports.
    fn run_json(&self, args: &[&str]) -> (Value, Value) {
        let report = self.ok_json_raw(args);
        let output = Path::new(report["output"].as_str().expect("the run names its output folder"));
        let path = if output.is_absolute() { output.to_path_buf() } else { self.dir.path().join(output) };
        let text = std::fs::read_to_string(path.join("summary.json")).expect("summary.json");
        let summary = serde_json::from_str(&text).expect("summary.json is JSON");
        (self.redact_json(report), self.redact_json(summary))
    }

    /// Replaces the temporary folder (as given and canonical) with `[DIR]` and the timestamps
    /// that name store folders with `[STAMP]`.
    fn redact_text(&self, text: &str) -> String {
        let mut text = text.to_string();
        let canonical = self.dir.path().canonicalize().expect("canonical temporary path");
        for prefix in [canonical.to_str().expect("utf-8 path"), self.path()] {
            text = text.replace(prefix, "[DIR]");
        }
        redact_stamps(&text)
    }

    /// Redacts every string of `value` like [`Project::redact_text`], elapsed times, and float
    /// digits beyond the ninth; sorts object keys.
    fn redact_json(&self, value: Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.redact_text(&s)),
            // The last bits of some floats depend on the thread count (measured: discovery's
            // k-selection table with `--k auto` differs in the 16th and 17th significant digits
            // between `--threads 1` and `--threads 2`), and ARCHITECTURE.md allows float sums to
            // differ in their last bits. Nine significant digits keep every real change visible.
            Value::Number(n) if n.is_f64() => {
                let rounded: f64 = format!("{:.8e}", n.as_f64().expect("an f64")).parse().expect("a float");
                json!(rounded)
            }
            Value::Array(items) => Value::Array(items.into_iter().map(|v| self.redact_json(v)).collect()),
            Value::Object(map) => {
                let mut entries: Vec<_> = map.into_iter().collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                let mut sorted = Map::new();
                for (key, value) in entries {
                    let value =
                        if key == "elapsed_ms" { json!("[elapsed_ms]") } else { self.redact_json(value) };
                    sorted.insert(key, value);
                }
                Value::Object(sorted)
            }
            other => other,
        }
    }

    /// Snapshots a command that must fail: exit code and standard error of the text form, then
    /// exit code and standard output of the `--json` form.
    fn assert_error(&self, name: &str, args: &[&str]) {
        let text = self.invoke(args);
        assert_ne!(text.code, 0, "segmenta {args:?} should fail");
        assert_eq!(text.stdout, "", "an error prints nothing on standard output without --json");
        insta::assert_snapshot!(
            format!("error_{name}"),
            format!("exit code: {}\n{}", text.code, text.stderr)
        );

        let json_args = [args, &["--json"]].concat();
        let json = self.invoke(&json_args);
        assert_eq!(json.code, text.code, "--json changes no exit code");
        let stdout = serde_json::from_str(&json.stdout).expect("--json prints the error as JSON");
        insta::assert_json_snapshot!(
            format!("error_{name}_json"),
            json!({ "exit_code": json.code, "stdout": self.redact_json(stdout) })
        );
    }
}

/// Replaces every `YYYYMMDDTHHMMSS.mmmZ` (the names of run, discovery and report folders) with
/// `[STAMP]`.
fn redact_stamps(text: &str) -> String {
    // `d` stands for any ASCII digit.
    let pattern = b"ddddddddTdddddd.dddZ";
    let bytes = text.as_bytes();
    let matches_at = |i: usize| {
        bytes.len() >= i + pattern.len()
            && pattern
                .iter()
                .zip(&bytes[i..])
                .all(|(p, b)| if *p == b'd' { b.is_ascii_digit() } else { p == b })
    };
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        if matches_at(i) {
            out.push_str(&text[copied..i]);
            out.push_str("[STAMP]");
            i += pattern.len();
            copied = i;
        } else {
            i += 1;
        }
    }
    out.push_str(&text[copied..]);
    out
}

#[test]
fn stamps_are_redacted() {
    assert_eq!(
        redact_stamps("runs/20261201T213113.887Z and 20261201T213113Z, 2024-06-30"),
        "runs/[STAMP] and 20261201T213113Z, 2024-06-30"
    );
}

#[test]
fn quickstart_run_validate_members_preview() {
    let project = Project::quickstart();
    let p = project.path();
    let run = ["run", "--project", p, "--as-of", "2024-06-30", "--threads", "1"];

    insta::assert_snapshot!("quickstart_run", project.ok(&run));
    let (mut report, summary) = project.run_json(&run);
    assert_eq!(report["summary"], summary, "run --json prints the summary.json it writes");
    insta::assert_json_snapshot!("quickstart_summary_json", summary);
    // The summary itself is the snapshot above.
    report["summary"] = json!("[summary.json]");
    insta::assert_json_snapshot!("quickstart_run_json", report);

    insta::assert_snapshot!("quickstart_validate", project.ok(&["validate", "--project", p]));
    insta::assert_json_snapshot!("quickstart_validate_json", project.ok_json(&["validate", "--project", p]));

    insta::assert_snapshot!(
        "quickstart_members_at_risk",
        project.ok(&["members", "at_risk", "--project", p])
    );
    insta::assert_json_snapshot!(
        "quickstart_members_power_users_json",
        project.ok_json(&["members", "power_users", "--project", p])
    );

    let preview = ["preview", "in_segment('paying') and logins_30d >= 1", "--sample", "3", "--project", p];
    insta::assert_snapshot!("quickstart_preview", project.ok(&preview));
    insta::assert_json_snapshot!("quickstart_preview_json", project.ok_json(&preview));
    let preview = ["preview", "region = 'EMEA' and employees > 50", "--project", p];
    insta::assert_json_snapshot!("quickstart_preview_emea_json", project.ok_json(&preview));
}

#[test]
fn demo_run_validate_members_preview() {
    let (project, written) = Project::demo(300);
    let p = project.path();
    insta::assert_snapshot!("demo_written", written);
    let run = ["run", "--project", p, "--as-of", "2025-12-31", "--threads", "1"];

    insta::assert_snapshot!("demo_run", project.ok(&run));
    let (mut report, summary) = project.run_json(&run);
    assert_eq!(report["summary"], summary, "run --json prints the summary.json it writes");
    insta::assert_json_snapshot!("demo_summary_json", summary);
    report["summary"] = json!("[summary.json]");
    insta::assert_json_snapshot!("demo_run_json", report);

    insta::assert_snapshot!("demo_validate", project.ok(&["validate", "--project", p]));
    insta::assert_json_snapshot!("demo_validate_json", project.ok_json(&["validate", "--project", p]));

    let members = ["members", "lifecycle.at_risk", "--project", p];
    insta::assert_snapshot!("demo_members_lifecycle_at_risk", project.ok(&members));
    let members = ["members", "enterprise_expansion_ready", "--project", p];
    insta::assert_json_snapshot!("demo_members_enterprise_expansion_ready_json", project.ok_json(&members));

    let preview = ["preview", "lifecycle = 'at_risk' and arr > 1000", "--project", p];
    insta::assert_snapshot!("demo_preview", project.ok(&preview));
    insta::assert_json_snapshot!("demo_preview_json", project.ok_json(&preview));
}

#[test]
fn demo_discover() {
    let (project, _) = Project::demo(300);
    let p = project.path();
    let fixed = [
        "discover",
        "--project",
        p,
        "--features",
        "arr,logins_30d,plan",
        "--k",
        "3",
        "--as-of",
        "2025-12-31",
        "--threads",
        "1",
    ];
    insta::assert_snapshot!("demo_discover_k3", project.ok(&fixed));
    // The second discovery on the same features matches the centroids the first one kept.
    insta::assert_json_snapshot!("demo_discover_k3_again_json", project.ok_json(&fixed));

    let (project, _) = Project::demo(300);
    let p = project.path();
    let auto = [
        "discover",
        "--project",
        p,
        "--features",
        "arr,logins_30d,plan,engagement,nps_avg",
        "--as-of",
        "2025-12-31",
        "--threads",
        "1",
    ];
    insta::assert_json_snapshot!("demo_discover_auto_json", project.ok_json(&auto));
    insta::assert_snapshot!("demo_discover_auto_again", project.ok(&auto));
}

#[test]
fn demo_clv_and_churn() {
    // Below 1000 accounts the demo has no [clv] or [churn] section and too few buyers for CLV
    // (see the errors below); 1000 accounts is the smallest demo whose models fit.
    let (project, _) = Project::demo(1000);
    let p = project.path();
    let clv = ["clv", "--project", p, "--as-of", "2025-12-31", "--threads", "1"];
    insta::assert_snapshot!("demo1000_clv", project.ok(&clv));
    insta::assert_json_snapshot!("demo1000_clv_json", project.ok_json(&clv));
    // Issue #11: the holdout check, fitted on the purchases before 26 weeks ago.
    let holdout = [&clv[..], &["--holdout", "26w"]].concat();
    insta::assert_snapshot!("demo1000_clv_holdout", project.ok(&holdout));
    let json = project.ok_json(&holdout);
    assert_eq!(json["holdout"]["calibration_end"], "2025-07-03T00:00:00Z", "{json}");
    assert_eq!(json["holdout"]["calibration"]["as_of"], json["holdout"]["calibration_end"]);
    let churn = ["predict", "churn", "--project", p, "--as-of", "2025-12-31", "--threads", "1"];
    // Issue #11: 21 churners in the holdout are too few to trust its AUC, and it says so.
    let (out, warnings) = project.ok_warned(&churn);
    insta::assert_snapshot!("demo1000_churn", out);
    insta::assert_snapshot!("demo1000_churn_warnings", warnings);
    insta::assert_json_snapshot!("demo1000_churn_json", project.ok_json(&churn));

    // Churn on the small demo, with the model given by options.
    let (project, _) = Project::demo(300);
    let p = project.path();
    let churn = [
        "predict",
        "churn",
        "--project",
        p,
        "--as-of",
        "2025-12-31",
        "--threads",
        "1",
        "--churned",
        "event_type = 'subscription_churn'",
        "--features",
        "arr,logins_30d,plan",
    ];
    // 5 churners in the holdout: the AUC of 0.65 is a guess, and the warning says so.
    let (out, warnings) = project.ok_warned(&churn);
    insta::assert_snapshot!("demo_churn_options", out);
    insta::assert_snapshot!("demo_churn_options_warnings", warnings);
    insta::assert_json_snapshot!("demo_churn_options_json", project.ok_json(&churn));
}

/// Rewrites one file of the project, which must contain `from`.
fn edit(project: &Project, file: &str, from: &str, to: &str) {
    let path = project.dir.path().join(file);
    let text = std::fs::read_to_string(&path).expect("read the project file");
    assert!(text.contains(from), "{file} holds {from:?}");
    std::fs::write(&path, text.replacen(from, to, 1)).expect("write the project file");
}

#[test]
fn rendered_errors() {
    let project = Project::quickstart();
    edit(&project, "segmenta.toml", "employees >= 100\"", "employees >= \"");
    project.assert_error("rule_syntax", &["validate", "--project", project.path()]);

    let project = Project::quickstart();
    edit(&project, "segmenta.toml", "employees >= 100", "employes >= 100");
    project.assert_error("unknown_attribute", &["validate", "--project", project.path()]);
    project.assert_error(
        "unknown_attribute_run",
        &["run", "--project", project.path(), "--as-of", "2024-06-30"],
    );

    let project = Project::quickstart();
    edit(&project, "segmenta.toml", "entity_key", "entity_keys");
    project.assert_error("config_unknown_key", &["validate", "--project", project.path()]);

    let project = Project::quickstart();
    std::fs::remove_file(project.dir.path().join("data/events.csv")).expect("remove the events");
    project.assert_error("missing_data_file", &["run", "--project", project.path(), "--as-of", "2024-06-30"]);

    let project = Project::quickstart();
    edit(&project, "data/events.csv", "A001,2023-05-28T13:58:00Z,login", "A001,2023-05-28 at noon,login");
    project.assert_error("bad_timestamp_row", &["run", "--project", project.path(), "--as-of", "2024-06-30"]);

    let project = Project::quickstart();
    let p = project.path();
    project.assert_error("bad_as_of", &["run", "--project", p, "--as-of", "yesterday"]);
    project.assert_error("members_before_any_run", &["members", "emea", "--project", p]);
    project.ok(&["run", "--project", p, "--as-of", "2024-06-30", "--threads", "1"]);
    project.assert_error("members_unknown_segment", &["members", "no_such_segment", "--project", p]);
    project.assert_error("members_misspelt_segment", &["members", "emea_", "--project", p]);
    project.assert_error("preview_unknown_attribute", &["preview", "emplyees > 3", "--project", p]);

    let (project, _) = Project::demo(300);
    let p = project.path();
    let clv = ["clv", "--project", p, "--as-of", "2025-12-31", "--threads", "1"];
    project.assert_error("demo_clv_without_config", &clv);
    let clv = [&clv[..], &["--purchase", "event_type = 'invoice_paid'", "--amount", "amount"]].concat();
    project.assert_error("demo_clv_not_converged", &clv);
}
