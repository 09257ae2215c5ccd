//! The binary as a user runs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn segmenta(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_segmenta")).args(args).output().expect("the binary runs")
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A copy of the quick-start example in a temporary folder (so runs do not touch the repo).
fn quickstart() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = workspace().join("examples/quickstart");
    std::fs::create_dir_all(dir.path().join("data")).expect("mkdir");
    for file in ["segmenta.toml", "data/accounts.csv", "data/events.csv"] {
        std::fs::copy(source.join(file), dir.path().join(file)).expect("copy example");
    }
    dir
}

fn text(bytes: &[u8]) -> String {
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
