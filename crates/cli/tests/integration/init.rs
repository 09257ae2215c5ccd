//! Issue 11: `segmenta init` scaffolds a project from the user's files and validates it.

use crate::cli::{quickstart, segmenta, text};

#[test]
fn init_scaffolds_a_valid_project_from_the_quickstart_files() {
    let dir = quickstart();
    std::fs::remove_file(dir.path().join("segmenta.toml")).expect("start from the data alone");
    let project = dir.path().to_str().expect("utf-8 path");
    let data = dir.path().join("data");
    let out = segmenta(&["init", "--project", project, "--from", data.to_str().expect("utf-8 path")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("entity account: data/accounts.csv, key account_id"), "{stdout}");
    assert!(stdout.contains("events: data/events.csv"), "{stdout}");
    let toml = std::fs::read_to_string(dir.path().join("segmenta.toml")).expect("written");
    for line in [
        "entity = \"account\"",
        "entity_key = \"account_id\"",
        "time = \"ts\"",
        "type = \"event_type\"",
        "[rfm]",
        "amount = \"amount\"",
    ] {
        assert!(toml.contains(line), "{line} in:\n{toml}");
    }
    let run = segmenta(&["run", "--project", project, "--as-of", "2024-06-30", "--json"]);
    assert!(run.status.success(), "the starter project runs: {}", text(&run.stderr));
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).expect("json");
    assert_eq!(report["summary"]["entities"], 40);

    let again = segmenta(&["init", "--project", project, "--from", data.to_str().expect("utf-8 path")]);
    assert_eq!(again.status.code(), Some(2), "an existing project file is not replaced");
    assert!(text(&again.stderr).contains("--force"), "{}", text(&again.stderr));
}

#[test]
fn init_without_a_keyed_file_says_what_it_looks_for() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("things.csv"), "name,size\na,1\n").expect("write");
    let out = segmenta(&["init", "--project", dir.path().to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("no file of") && stderr.contains("things.csv"), "{stderr}");
    assert!(stderr.contains("<name>_id"), "{stderr}");
}

#[test]
fn init_on_a_transaction_log_alone_takes_the_entities_from_its_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Dates written as CDNOW writes them: init reads a few rows and declares the format.
    let log = "customer_id,date,amount\n00001,19970101,11.77\n00002,19970112,12.00\n00001,19970202,8.5\n";
    std::fs::write(dir.path().join("transactions.csv"), log).expect("write");
    let project = dir.path().to_str().expect("utf-8 path");
    let out = segmenta(&["init", "--project", project]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let toml = std::fs::read_to_string(dir.path().join("segmenta.toml")).expect("written");
    assert!(toml.contains("[entities.customer]\nfrom_events = true\nkey = \"customer_id\""), "{toml}");
    assert!(
        toml.contains(
            "time = \"date\"\n# `date` holds coded times such as 19970101\ntime_format = \"%Y%m%d\""
        ),
        "{toml}"
    );
    let run = segmenta(&["run", "--project", project, "--as-of", "1998-01-01", "--json"]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).expect("json");
    assert_eq!(report["summary"]["entities"], 2, "{report}");
    let members = segmenta(&["members", "active", "--project", project, "--with", "events_90d"]);
    assert!(members.status.success(), "{}", text(&members.stderr));
}
