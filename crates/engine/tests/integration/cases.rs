//! File-driven rule tests: each `tests/rules/*.case` holds small data files, traits and rules,
//! the as-of date and the expected members. `UPDATE_EXPECT=1 cargo test` rewrites the
//! `### expected` sections from what the engine computes (review the diff before committing).
//!
//! Sections start with `### NAME`:
//! - `### accounts.csv`, `### events.csv`, `### contacts.csv`, ...: files written verbatim;
//! - `### segmenta.toml`: appended to a standard header (project `case`, entity `account` from
//!   `accounts.csv` keyed by `account_id`, and `[events]` from `events.csv` with `account_id`,
//!   `ts` and `event_type` when that file is present), or used alone if it has `[project]`;
//! - `### as_of`: the `--as-of` value;
//! - `### expected`: `segment: id id ...` lines (ids sorted), or one `error: TEXT` line that the
//!   error message must contain.

use std::path::{Path, PathBuf};

use segmenta_engine::BadRows;

use crate::support::{TempProject, memberships};

const HEADER: &str = "[project]\nname = \"case\"\nentity = \"account\"\n\n[entities.account]\nsource = \"accounts.csv\"\nkey = \"account_id\"\n\n";
const EVENTS: &str = "[events]\nsource = \"events.csv\"\nentity_key = \"account_id\"\ntime = \"ts\"\ntype = \"event_type\"\n\n";

struct Case {
    sections: Vec<(String, String)>,
}

impl Case {
    fn parse(text: &str) -> Case {
        let mut sections: Vec<(String, String)> = Vec::new();
        for line in text.lines() {
            if let Some(name) = line.strip_prefix("### ") {
                sections.push((name.trim().to_string(), String::new()));
            } else if let Some((_, body)) = sections.last_mut() {
                body.push_str(line);
                body.push('\n');
            }
        }
        Case { sections }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.sections.iter().find(|(n, _)| n == name).map(|(_, b)| b.as_str())
    }

    fn render(&self, expected: &str) -> String {
        let mut out = String::new();
        for (name, body) in &self.sections {
            out.push_str(&format!("### {name}\n"));
            out.push_str(if name == "expected" { expected } else { body });
        }
        out
    }
}

fn actual(case: &Case) -> String {
    let mut files: Vec<(String, String)> = Vec::new();
    let mut toml = case.get("segmenta.toml").unwrap_or("").to_string();
    if !toml.contains("[project]") {
        let events = if case.get("events.csv").is_some() { EVENTS } else { "" };
        toml = format!("{HEADER}{events}{toml}");
    }
    files.push(("segmenta.toml".into(), toml));
    for (name, body) in &case.sections {
        if name.ends_with(".csv") || name.ends_with(".jsonl") {
            files.push((name.clone(), body.clone()));
        }
    }
    let refs: Vec<(&str, &str)> = files.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let project = TempProject::new(&refs);
    let as_of = case.get("as_of").unwrap_or("2024-06-30\n").trim().to_string();
    match project.run(&as_of, BadRows::Strict) {
        Err(error) => {
            // Paths inside the temporary project are written relative to it.
            let message = error.to_string().replace(&format!("{}/", project.path().display()), "");
            format!("error: {}\n", message.lines().next().unwrap_or_default())
        }
        Ok(_) => memberships(&project)
            .into_iter()
            .map(|(segment, ids)| format!("{segment}: {}\n", ids.join(" ")).replace(" \n", "\n"))
            .collect(),
    }
}

fn case_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rules");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/rules exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "case"))
        .collect();
    files.sort();
    files
}

#[test]
fn rule_cases() {
    let update = std::env::var("UPDATE_EXPECT").is_ok_and(|v| v == "1");
    let files = case_files();
    assert!(files.len() >= 8, "the rule cases are missing");
    let mut failures = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("read case");
        let case = Case::parse(&text);
        let expected = case.get("expected").unwrap_or("");
        let actual = actual(&case);
        let matches = match expected.trim().strip_prefix("error:") {
            // An expected error is matched by the start of its message.
            Some(wanted) => actual.contains(wanted.trim()),
            None => !expected.trim().is_empty() && actual.trim() == expected.trim(),
        };
        if update && !matches {
            std::fs::write(&path, case.render(&actual)).expect("rewrite case");
        } else if !matches && !update {
            failures.push(format!("{}:\n--- expected\n{expected}--- actual\n{actual}", path.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) differ (UPDATE_EXPECT=1 rewrites them):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
