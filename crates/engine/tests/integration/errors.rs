//! Bad input end to end: every problem is an error that names the file and position (or the
//! rule and position) and says how to fix it, and nothing is half-written.

use segmenta_engine::{AsOf, BadRows, ErrorCode, ErrorKind};

use crate::support::{TempProject, to_json};

const TOML: &str = r#"[project]
name = "t"
entity = "account"

[entities.account]
source = "accounts.csv"
key = "account_id"
columns = { employees = "int" }

[events]
source = "events.csv"
entity_key = "account_id"
time = "ts"

[traits]
n = "count()"

[segments.big]
rule = "employees >= 100"
"#;

const ACCOUNTS: &str = "account_id,employees\nA1,10\nA2,200\nA3,300\n";
const EVENTS: &str = "account_id,ts\nA1,2024-01-01T00:00:00Z\nA2,2024-01-02T00:00:00Z\nZZ,2024-01-03T00:00:00Z\nA1,2025-01-01T00:00:00Z\n";

fn project(accounts: &str, events: &str) -> TempProject {
    TempProject::new(&[("segmenta.toml", TOML), ("accounts.csv", accounts), ("events.csv", events)])
}

fn user_error(project: &TempProject, bad_rows: BadRows) -> String {
    let error = project.run("2024-06-30", bad_rows).expect_err("the run must fail");
    assert_eq!(error.kind(), ErrorKind::User, "{error} ({})", error.code());
    error.to_string()
}

#[test]
fn summary_reconciles_events() {
    let p = project(ACCOUNTS, EVENTS);
    let report = p.run("2024-06-30", BadRows::Strict).expect("run");
    let events = &to_json(&report.summary)["events"];
    assert_eq!(events["read"], 4);
    assert_eq!(events["used"], 2);
    assert_eq!(events["ignored_unknown_entity"], 1);
    assert_eq!(events["ignored_after_as_of"], 1);
    assert_eq!(events["ignored"], 2);
    assert_eq!(to_json(&report.summary)["entities"], 3);
    let big = &to_json(&report.summary)["segments"][0];
    assert_eq!((big["name"].as_str(), big["size"].as_u64()), (Some("big"), Some(2)));
    assert!((big["share"].as_f64().expect("share") - 2.0 / 3.0).abs() < 1e-12);
    for file in ["traits.parquet", "memberships.parquet", "summary.json"] {
        assert!(p.out().join(file).is_file(), "{file} missing");
    }
}

#[test]
fn malformed_row_strict_names_file_and_line() {
    let p = project("account_id,employees\nA1,10\nA2,200,extra\n", EVENTS);
    let message = user_error(&p, BadRows::Strict);
    assert!(message.contains("accounts.csv:3"), "{message}");
}

#[test]
fn malformed_rows_rejected_and_reconciled() {
    let p = project("account_id,employees\nA1,10\nA2,200,extra\nA3,twelve\nA4,400\nA1,5\n", EVENTS);
    let report = p.run("2024-06-30", BadRows::Reject).expect("run with rejects");
    let rows = &to_json(&report.summary)["entity_rows"];
    assert_eq!(rows["read"], 5);
    assert_eq!(rows["used"], 2);
    assert_eq!(rows["rejected"], 3, "{rows}");
    let rejects = std::fs::read_to_string(p.out().join("rejects.csv")).expect("rejects file");
    assert!(rejects.contains("accounts.csv,3,"), "{rejects}");
    assert!(rejects.contains("accounts.csv,4,"), "{rejects}");
    assert!(rejects.contains("duplicate key `A1`"), "{rejects}");
}

#[test]
fn duplicate_key_strict() {
    let p = project("account_id,employees\nA1,10\nA1,200\n", EVENTS);
    let message = user_error(&p, BadRows::Strict);
    assert!(message.contains("accounts.csv") && message.contains("duplicate key `A1`"), "{message}");
}

#[test]
fn unparsable_timestamp_names_line_and_column() {
    let p = project(ACCOUNTS, "account_id,ts\nA1,2024-01-01T00:00:00Z\nA2,yesterday\n");
    let message = user_error(&p, BadRows::Strict);
    assert!(message.contains("events.csv:3") && message.contains("`ts`"), "{message}");
}

#[test]
fn missing_file_is_a_user_error() {
    let p = TempProject::new(&[("segmenta.toml", TOML), ("accounts.csv", ACCOUNTS)]);
    let message = user_error(&p, BadRows::Strict);
    assert!(message.contains("events.csv"), "{message}");
}

#[test]
fn empty_file_and_header_only_file() {
    let p = project("", EVENTS);
    let message = user_error(&p, BadRows::Strict);
    assert!(message.contains("accounts.csv"), "{message}");

    let p = project("account_id,employees\n", "account_id,ts\n");
    let report = p.run("2024-06-30", BadRows::Strict).expect("header-only files are valid");
    assert_eq!(to_json(&report.summary)["entities"], 0);
    assert_eq!(report.segments[0].size, 0);
}

#[test]
fn invalid_utf8_names_the_line() {
    let dir = project(ACCOUNTS, EVENTS);
    std::fs::write(dir.path().join("accounts.csv"), b"account_id,employees\nA1,10\nA\xff\xfe,20\n")
        .expect("write");
    let message = user_error(&dir, BadRows::Strict);
    assert!(message.contains("accounts.csv:3"), "{message}");
}

#[test]
fn corrupt_parquet_names_the_file() {
    let toml = TOML.replace("events.csv", "events.parquet");
    let p = TempProject::new(&[
        ("segmenta.toml", &toml),
        ("accounts.csv", ACCOUNTS),
        ("events.parquet", "this is not parquet"),
    ]);
    let error = p.run("2024-06-30", BadRows::Strict).expect_err("corrupt parquet");
    assert_eq!(error.kind(), ErrorKind::User);
    assert!(error.to_string().contains("events.parquet"), "{error}");
}

#[test]
fn bad_as_of() {
    let error = AsOf::parse("last tuesday").expect_err("bad --as-of");
    assert_eq!(error.code(), "invalid_as_of");
    assert!(error.to_string().contains("2024-06-30"), "the hint shows the format: {error}");
    assert_eq!(AsOf::parse("2024-06-30").expect("date").to_rfc3339(), "2024-07-01T00:00:00Z");
    assert_eq!(
        AsOf::parse("2024-06-30T12:00:00+02:00").expect("instant").to_rfc3339(),
        "2024-06-30T10:00:00Z"
    );
}

#[test]
fn rule_errors_point_into_the_project_file() {
    let toml = TOML.replace("employees >= 100", "employes >= 100");
    // Bad data too: resolution must fail before any data is scanned.
    let p = TempProject::new(&[
        ("segmenta.toml", &toml),
        ("accounts.csv", ACCOUNTS),
        ("events.csv", "account_id,ts\nA1,nonsense\n"),
    ]);
    let error = p.run("2024-06-30", BadRows::Strict).expect_err("unknown attribute");
    let message = error.to_string();
    assert_eq!(error.code(), "unknown_attribute");
    assert!(message.contains("segmenta.toml:19:9"), "{message}");
    assert!(message.contains("did you mean `employees`?"), "{message}");
}

#[test]
fn trait_type_error_is_reported_by_validate() {
    let toml = TOML.replace("n = \"count()\"", "n = \"sum(account_id)\"");
    let p = TempProject::new(&[("segmenta.toml", &toml), ("accounts.csv", ACCOUNTS), ("events.csv", EVENTS)]);
    let error = segmenta_engine::validate(&p.load().expect("loads")).expect_err("sum of a string");
    assert_eq!(error.kind(), ErrorKind::User);
    assert!(error.to_string().contains("trait `n`"), "{error}");
}

#[test]
fn unknown_config_key_has_a_hint() {
    let toml = TOML.replace("entity_key", "entity_keys");
    let p = TempProject::new(&[("segmenta.toml", &toml), ("accounts.csv", ACCOUNTS), ("events.csv", EVENTS)]);
    let error = p.load().expect_err("unknown key");
    let message = error.to_string();
    assert!(
        message.contains("segmenta.toml:12:1") && message.contains("did you mean `entity_key`?"),
        "{message}"
    );
}

#[test]
fn failed_run_leaves_earlier_output_intact() {
    let p = project(ACCOUNTS, EVENTS);
    p.run("2024-06-30", BadRows::Strict).expect("first run");
    let before = std::fs::read(p.out().join("memberships.parquet")).expect("memberships");
    std::fs::write(p.path().join("accounts.csv"), "account_id,employees\nA1,lots\n").expect("break data");
    p.run("2024-06-30", BadRows::Strict).expect_err("second run fails");
    assert_eq!(std::fs::read(p.out().join("memberships.parquet")).expect("still there"), before);
    let leftovers: Vec<String> = std::fs::read_dir(p.path())
        .expect("list")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn issue_10_validate_reports_every_problem_it_finds() {
    // A non-numeric RFM amount (a schema problem: validation used to stop there), a trait over a
    // column that is not in the events and a rule on a misspelt attribute: all reported.
    let toml = TOML
        .replace("n = \"count()\"", "n = \"count()\"\nbad_sum = \"sum(nope)\"")
        .replace("[segments.big]", "[rfm]\npurchase = \"true\"\namount = \"account_id\"\n\n[segments.big]")
        .replace("rule = \"employees >= 100\"", "rule = \"employess >= 100\"");
    let p = TempProject::new(&[("segmenta.toml", &toml), ("accounts.csv", ACCOUNTS), ("events.csv", EVENTS)]);
    let error = segmenta_engine::validate(&p.load().expect("loads")).expect_err("three problems");
    let message = error.to_string();
    assert_eq!(error.kind(), ErrorKind::User);
    assert!(
        message.contains("[rfm] amount: column `account_id` of events.csv is string, not a number"),
        "{message}"
    );
    assert!(message.contains("trait `bad_sum`"), "{message}");
    assert!(message.contains("did you mean `employees`?"), "{message}");
}

#[test]
fn issue_10_names_with_the_reserved_prefix_are_located_errors() {
    // A trait and a segment named with the hidden columns' prefix: located in segmenta.toml.
    let toml = TOML
        .replace("n = \"count()\"", "n = \"count()\"\n__segmenta_n = \"count()\"")
        .replace("[segments.big]", "[segments.__segmenta_big]");
    let p = TempProject::new(&[("segmenta.toml", &toml), ("accounts.csv", ACCOUNTS), ("events.csv", EVENTS)]);
    let error = segmenta_engine::validate(&p.load().expect("loads")).expect_err("reserved names");
    let message = error.to_string();
    assert_eq!(error.code(), "invalid_config", "{message}");
    assert!(message.contains("segmenta.toml:17:16: trait `__segmenta_n`"), "the trait's line: {message}");
    assert!(message.contains("trait `__segmenta_n` starts with `__segmenta`"), "{message}");
    assert!(message.contains("segmenta.toml:20:8: segment `__segmenta_big`"), "{message}");
    // A column of a data file with the prefix: the file and column are named.
    let accounts = "account_id,employees,__segmenta_key\nA1,10,x\n";
    let p = TempProject::new(&[("segmenta.toml", TOML), ("accounts.csv", accounts), ("events.csv", EVENTS)]);
    let error = segmenta_engine::validate(&p.load().expect("loads")).expect_err("a reserved column");
    let message = error.to_string();
    assert_eq!(error.kind(), ErrorKind::User);
    assert!(
        message.contains("accounts.csv: the column `__segmenta_key` starts with `__segmenta`"),
        "{message}"
    );
}
