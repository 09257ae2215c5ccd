//! Issue 11: the messages a newcomer meets say what, where and what to do.

use crate::cli::{quickstart, segmenta, text};

fn edit(dir: &tempfile::TempDir, file: &str, from: &str, to: &str) {
    let path = dir.path().join(file);
    let before = std::fs::read_to_string(&path).expect("read");
    assert!(before.contains(from), "{from} in {file}");
    std::fs::write(&path, before.replacen(from, to, 1)).expect("write");
}

fn validate_error(dir: &tempfile::TempDir) -> String {
    let out = segmenta(&["validate", "--project", dir.path().to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    text(&out.stderr)
}

#[test]
fn a_nested_double_quote_in_a_rule_shows_the_line_and_says_to_use_single_quotes() {
    let dir = quickstart();
    edit(&dir, "segmenta.toml", "rule = \"employees < 50\"", "rule = \"plan = \"pro\"\"");
    let stderr = validate_error(&dir);
    assert!(stderr.contains("segmenta.toml:36:17:"), "{stderr}");
    assert!(
        stderr.contains("\n  rule = \"plan = \"pro\"\"\n                  ^\n"),
        "the line and a caret: {stderr}"
    );
    assert!(stderr.contains("quote strings in rules with single quotes (plan = 'pro')"), "{stderr}");
}

#[test]
fn a_duplicate_key_names_the_key_and_where_it_first_appears() {
    let dir = quickstart();
    let toml = dir.path().join("segmenta.toml");
    let mut contents = std::fs::read_to_string(&toml).expect("read");
    contents.push_str("\n[segments.smb]\nrule = \"employees < 10\"\n");
    std::fs::write(&toml, contents).expect("write");
    let stderr = validate_error(&dir);
    assert!(stderr.contains("duplicate key `smb`"), "{stderr}");
    assert!(stderr.contains("`smb` is first defined at line 35"), "{stderr}");
}

#[test]
fn a_missing_data_file_says_did_you_mean_and_which_line_names_it() {
    let dir = quickstart();
    edit(&dir, "segmenta.toml", "source = \"data/events.csv\"", "source = \"data/event.csv\"");
    let stderr = validate_error(&dir);
    let project = dir.path().display().to_string();
    assert!(
        stderr
            .contains(&format!("no file {project}/data/event.csv (named at {project}/segmenta.toml:14:10)")),
        "{stderr}"
    );
    assert!(stderr.contains("did you mean `data/events.csv`?"), "{stderr}");
}

#[test]
fn no_project_and_no_run_say_which_command_to_run() {
    let empty = tempfile::tempdir().expect("tempdir");
    let out = segmenta(&["validate", "--project", empty.path().to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("segmenta init --from"), "{}", text(&out.stderr));
    let dir = quickstart();
    let out = segmenta(&["members", "smb", "--project", dir.path().to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no run yet") && text(&out.stderr).contains("`segmenta run`"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_bad_value_notes_the_project_lines_that_declare_the_file_and_column() {
    let dir = quickstart();
    edit(
        &dir,
        "data/accounts.csv",
        "A003,Nakatomi Health,healthcare,31,",
        "A003,Nakatomi Health,healthcare,31x,",
    );
    let out = segmenta(&["run", "--project", dir.path().to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("data/accounts.csv:4: column `employees`: cannot read \"31x\" as int"),
        "{stderr}"
    );
    assert!(stderr.contains("note: data/accounts.csv is the source of [entities.account] at"), "{stderr}");
    assert!(stderr.contains("segmenta.toml:9:10; `employees` is declared int at"), "{stderr}");
}

#[test]
fn help_says_the_projects_as_of_comes_before_now() {
    let out = segmenta(&["run", "--help"]);
    assert!(
        text(&out.stdout).contains("Default: the project's `[project] as_of`, else now"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn an_unquoted_text_value_gets_a_hint_to_quote_it() {
    let dir = quickstart();
    edit(&dir, "segmenta.toml", "rule = \"region = 'EMEA'\"", "rule = \"region = EMEA\"");
    let stderr = validate_error(&dir);
    assert!(stderr.contains("unknown attribute `EMEA`"), "{stderr}");
    assert!(stderr.contains("a text value is written in single quotes: 'EMEA'"), "{stderr}");
}

#[test]
fn a_string_in_other_letter_case_than_the_data_gets_a_warning() {
    let dir = quickstart();
    edit(&dir, "segmenta.toml", "rule = \"region = 'EMEA'\"", "rule = \"region = 'emea'\"");
    let out =
        segmenta(&["run", "--project", dir.path().to_str().expect("utf-8 path"), "--as-of", "2024-06-30"]);
    assert!(out.status.success(), "a warning, not an error: {}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("warning: segment `emea` compares `region` with 'emea'"), "{stderr}");
    assert!(stderr.contains("write 'EMEA'"), "{stderr}");
}
