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
//!   error message must contain;
//! - `### traits`: the run's `traits.parquet`, one `ID: column=value ...` line per entity (ids
//!   sorted, columns in file order; `null` for NULL, floats to 9 decimals, strings quoted when
//!   they hold spaces). Every case whose run has trait columns carries it; `UPDATE_EXPECT=1`
//!   writes it after `### expected`.

use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Float64Type};
use arrow::util::display::{ArrayFormatter, FormatOptions};
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

    /// The case with its `expected` and `traits` sections replaced (`traits` is added after
    /// `expected` when missing, and dropped when the run has none).
    fn render(&self, actual: &Actual) -> String {
        let mut out = String::new();
        for (name, body) in &self.sections {
            match name.as_str() {
                "expected" => {
                    out.push_str(&format!("### expected\n{}", actual.expected));
                    if let Some(traits) = &actual.traits {
                        out.push_str(&format!("### traits\n{traits}"));
                    }
                }
                "traits" => {}
                _ => out.push_str(&format!("### {name}\n{body}")),
            }
        }
        out
    }
}

/// What a run gives: memberships (or its error) and, when it has trait columns, their values.
struct Actual {
    expected: String,
    traits: Option<String>,
}

/// A value of `traits.parquet` as the `### traits` section writes it.
fn cell(array: &dyn Array, row: usize, formatter: &ArrayFormatter<'_>) -> String {
    if array.is_null(row) {
        return "null".into();
    }
    match array.data_type() {
        DataType::Float64 => {
            let value = array.as_primitive::<Float64Type>().value(row);
            // Nine decimals: exact for the values cases hold, and blind to the last bits of sums
            // added in another order.
            let text = format!("{value:.9}");
            let text = text.trim_end_matches('0').trim_end_matches('.');
            if text == "-0" { "0".into() } else { text.into() }
        }
        DataType::Utf8 => {
            let value = array.as_string::<i32>().value(row);
            let plain = !value.is_empty()
                && value != "null"
                && !value.chars().any(|c| c.is_whitespace() || c == '=' || c == '"');
            if plain { value.to_string() } else { format!("{value:?}") }
        }
        _ => formatter.value(row).to_string(),
    }
}

/// The `### traits` section of a finished run; `None` when it has no trait columns.
fn trait_values(out: &Path) -> Option<String> {
    let traits =
        segmenta_store::read_parquet(&out.join("traits.parquet")).expect("the run wrote traits.parquet");
    if traits.num_columns() <= 1 {
        return None;
    }
    let schema = traits.schema();
    let options = FormatOptions::default().with_null("null");
    let formatters: Vec<ArrayFormatter<'_>> = traits
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).expect("every column type displays"))
        .collect();
    let mut section = String::new();
    for row in 0..traits.num_rows() {
        section.push_str(&cell(traits.column(0), row, &formatters[0]));
        section.push(':');
        for (c, field) in schema.fields().iter().enumerate().skip(1) {
            let value = cell(traits.column(c), row, &formatters[c]);
            section.push_str(&format!(" {}={value}", field.name()));
        }
        section.push('\n');
    }
    Some(section)
}

fn actual(case: &Case) -> Actual {
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
            Actual {
                expected: format!("error: {}\n", message.lines().next().unwrap_or_default()),
                traits: None,
            }
        }
        Ok(_) => Actual {
            expected: memberships(&project)
                .into_iter()
                .map(|(segment, ids)| format!("{segment}: {}\n", ids.join(" ")).replace(" \n", "\n"))
                .collect(),
            traits: trait_values(&project.out()),
        },
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
        let expected_traits = case.get("traits");
        let actual = actual(&case);
        let members_match = match expected.trim().strip_prefix("error:") {
            // An expected error is matched by the start of its message.
            Some(wanted) => actual.expected.contains(wanted.trim()),
            None => !expected.trim().is_empty() && actual.expected.trim() == expected.trim(),
        };
        let traits_match = expected_traits.map(str::trim) == actual.traits.as_deref().map(str::trim);
        if update && !(members_match && traits_match) {
            std::fs::write(&path, case.render(&actual)).expect("rewrite case");
        } else if !update {
            if !members_match {
                failures.push(format!(
                    "{}:\n--- expected\n{expected}--- actual\n{}",
                    path.display(),
                    actual.expected
                ));
            }
            if !traits_match {
                failures.push(format!(
                    "{} (traits):\n--- expected\n{}--- actual\n{}",
                    path.display(),
                    expected_traits.unwrap_or("(no ### traits section)\n"),
                    actual.traits.as_deref().unwrap_or("(no trait columns)\n")
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) differ (UPDATE_EXPECT=1 rewrites them):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
