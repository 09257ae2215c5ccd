//! Issue 11: one unbalanced quote in a CSV file costs one row, not the rest of the file.

use std::process::{Command, Output};

fn segmenta(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_segmenta")).args(args).output().expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The logins after the bad line: more than `MAX_RECORD_LINES`, so the open quote is cut by
/// the line bound rather than by the end of the file.
const LATER_LOGINS: usize = 1200;

/// A project whose events file has an unbalanced quote at line 5, with every later row fine.
fn project_with_a_stray_quote() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("data")).expect("mkdir");
    let toml = r#"
[project]
name = "recovery"
entity = "account"

[entities.account]
source = "data/accounts.csv"
key = "account_id"

[events]
source = "data/events.csv"
entity_key = "account_id"
time = "ts"
type = "event_type"

[traits]
logins = "count() where event_type = 'login'"

[segments.active]
rule = "logins >= 3"
"#;
    std::fs::write(dir.path().join("segmenta.toml"), toml).expect("write toml");
    std::fs::write(dir.path().join("data/accounts.csv"), "account_id,name\nA001,Acme\nA002,Beta\n")
        .expect("write accounts");
    let mut events = String::from("account_id,ts,event_type,note\n");
    for day in 2..5 {
        events.push_str(&format!("A001,2024-01-0{day}T10:00:00Z,login,\n"));
    }
    events.push_str("A001,2024-01-05T10:00:00Z,login,\"forgot to close the quote\n");
    for i in 0..LATER_LOGINS {
        events.push_str(&format!(
            "A002,2024-01-06T{:02}:{:02}:{:02}Z,login,fine\n",
            i / 3600,
            i / 60 % 60,
            i % 60
        ));
    }
    std::fs::write(dir.path().join("data/events.csv"), events).expect("write events");
    dir
}

#[test]
fn issue_11_reject_mode_reads_the_rows_after_an_unbalanced_quote() {
    let dir = project_with_a_stray_quote();
    let project = dir.path().to_str().expect("utf-8 path");
    let output = dir.path().join("out");
    let output = output.to_str().expect("utf-8 path");
    let out = segmenta(&[
        "run",
        "--project",
        project,
        "--as-of",
        "2024-06-30",
        "--on-bad-rows",
        "reject",
        "--output",
        output,
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let events = &report["summary"]["events"];
    assert_eq!(events["read"], 3 + 1 + LATER_LOGINS as u64, "{events}");
    assert_eq!(events["used"], 3 + LATER_LOGINS as u64, "{events}");
    assert_eq!(events["rejected"], 1, "{events}");
    let active = report["summary"]["segments"]
        .as_array()
        .expect("segments")
        .iter()
        .find(|s| s["name"] == "active")
        .expect("the active segment");
    assert_eq!(active["size"], 2, "the logins after the bad line count: {active}");

    let members = segmenta(&["members", "active", "--project", project]);
    assert_eq!(text(&members.stdout).lines().collect::<Vec<_>>(), ["A001", "A002"]);

    let rejects = std::fs::read_to_string(dir.path().join("out/rejects.csv")).expect("rejects.csv");
    let rows: Vec<&str> = rejects.lines().collect();
    assert_eq!(rows.len(), 2, "a header and the one bad line: {rejects}");
    assert!(rows[1].starts_with("data/events.csv,5,"), "{rejects}");
    assert!(
        rows[1].contains("column `note`: the quoted field opened at line 5 is still open after 1000 lines"),
        "{rejects}"
    );
    assert!(rows[1].contains("reading went on at line 6"), "{rejects}");
}

#[test]
fn issue_11_strict_mode_says_where_the_quote_opened() {
    let dir = project_with_a_stray_quote();
    let project = dir.path().to_str().expect("utf-8 path");
    let out = segmenta(&["run", "--project", project, "--as-of", "2024-06-30"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("data/events.csv:5: column `note`: the quoted field opened at line 5 is still open"),
        "{stderr}"
    );
    assert!(stderr.contains("close the quote"), "{stderr}");
    assert!(stderr.len() < 2000, "the message stays short: {stderr}");
}
