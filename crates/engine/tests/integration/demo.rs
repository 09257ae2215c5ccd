//! The demo project at its default size: it is written, validates, runs, and every one of its
//! segments is non-empty and not everyone; the same seed gives the same files.

use crate::support::to_json;
use segmenta_engine::{DemoOptions, NoProgress, Project, RunOptions};

fn write(dir: &std::path::Path, seed: u64) -> segmenta_engine::DemoReport {
    let options = DemoOptions { accounts: segmenta_engine::DEMO_DEFAULT_ACCOUNTS, seed, threads: 2 };
    segmenta_engine::demo(dir, &options, false, &NoProgress).expect("the demo is written")
}

#[test]
fn every_demo_segment_is_non_empty_and_not_everyone() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let report = write(dir.path(), 42);
    assert_eq!(report.accounts, segmenta_engine::DEMO_DEFAULT_ACCOUNTS);
    let per_account = report.events as f64 / report.accounts as f64;
    assert!((60.0..=160.0).contains(&per_account), "{per_account} events per account");

    let project = Project::load(dir.path()).expect("the demo project loads");
    let options = RunOptions {
        as_of: None,
        output: None,
        bad_rows: segmenta_engine::BadRows::Strict,
        threads: Some(2),
        ..Default::default()
    };
    let run = segmenta_engine::run(&project, &options, &NoProgress).expect("the demo project runs");
    let entities = to_json(&run.summary)["entities"].as_u64().expect("a count");
    assert_eq!(entities, report.accounts);
    assert_eq!(
        to_json(&run.summary)["as_of"],
        "2026-01-01T00:00:00Z",
        "the project's as_of is the end of the data"
    );
    assert_eq!(to_json(&run.summary)["events"]["ignored"], 0, "every event is inside the window");
    // Every model of the issue has a segment named after it.
    let names: Vec<&str> = run.segments.iter().map(|s| s.name.as_str()).collect();
    for model in [
        "firmographic_",
        "demographic_",
        "geographic_",
        "psychographic_",
        "needs_",
        "technographic_",
        "behavioral_",
        "value_",
        "rfm.",
        "opportunity_",
        "lifecycle.",
        "score_",
        "company_size.",
    ] {
        assert!(names.iter().any(|n| n.starts_with(model)), "no segment for {model}");
    }
    assert!(run.segments.len() >= 45, "{} segments", run.segments.len());
    // Movement segments are empty in a first run: nobody has moved since no earlier snapshot.
    let movements = ["adopted_to_at_risk", "became_churned"];
    let empty_or_all: Vec<String> = run
        .segments
        .iter()
        .filter(|s| !movements.contains(&s.name.as_str()))
        .filter(|s| s.size == 0 || s.size == entities)
        .map(|s| format!("{} ({})", s.name, s.size))
        .collect();
    assert!(empty_or_all.is_empty(), "segments that are empty or everyone: {empty_or_all:?}");
    // Micro segments lie inside their macro segment.
    let size = |name: &str| run.segments.iter().find(|s| s.name == name).map(|s| s.size).expect("a segment");
    assert!(size("enterprise_at_risk") <= size("enterprise_customers"));
}

#[test]
fn the_same_seed_gives_the_same_files() {
    let (a, b, c) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let options = |seed, threads| DemoOptions { accounts: 300, seed, threads };
    segmenta_engine::demo(a.path(), &options(7, 1), false, &NoProgress).expect("demo");
    segmenta_engine::demo(b.path(), &options(7, 2), false, &NoProgress).expect("demo");
    segmenta_engine::demo(c.path(), &options(8, 2), false, &NoProgress).expect("demo");
    for file in [
        "data/accounts.parquet",
        "data/contacts.parquet",
        "data/events.parquet",
        "lists/strategic_accounts.csv",
    ] {
        let read = |dir: &tempfile::TempDir| std::fs::read(dir.path().join(file)).expect("a demo file");
        assert_eq!(read(&a), read(&b), "{file} differs between thread counts");
        if file.ends_with("parquet") {
            assert_ne!(read(&a), read(&c), "{file} is the same for another seed");
        }
    }
    // A folder with other files is refused; an earlier demo project is written over.
    let error = segmenta_engine::demo(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")),
        &options(7, 1),
        false,
        &NoProgress,
    )
    .expect_err("not an empty folder");
    assert!(error.to_string().contains("is not empty and holds no demo project"), "{error}");
    segmenta_engine::demo(a.path(), &options(9, 1), false, &NoProgress).expect("an earlier demo is replaced");
}

#[test]
fn the_demo_data_segments_contacts_too() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let options = DemoOptions { accounts: 400, seed: 3, threads: 2 };
    segmenta_engine::demo(dir.path(), &options, false, &NoProgress).expect("demo");
    // One line changes who the customer is; contact rules read their account with `parent.`.
    let toml = format!(
        "{}[traits]\n{}",
        crate::support::DEMO_CONTACTS_HEAD,
        r#"logins_30d = { entity = "contact", expr = "count() where event_type = 'login' within 30d" }
account_logins_30d = "count() where event_type = 'login' within 30d"
active_users = { over = "contact", expr = "count() where logins_30d > 0" }
[segments.active_decision_makers]
rule = "decision_maker and logins_30d >= 1"
[segments.quiet_users_at_busy_accounts]
rule = "logins_30d = 0 and parent.active_users >= 2"
[segments.emea_marketable]
rule = "parent.region = 'EMEA' and consent_email_marketing"
"#
    );
    std::fs::write(dir.path().join("segmenta.toml"), toml).expect("write the project file");
    let project = Project::load(dir.path()).expect("loads");
    let options = RunOptions {
        as_of: None,
        output: None,
        bad_rows: segmenta_engine::BadRows::Strict,
        threads: Some(2),
        ..Default::default()
    };
    let run = segmenta_engine::run(&project, &options, &NoProgress).expect("runs");
    let contacts = to_json(&run.summary)["entities"].as_u64().expect("a count");
    assert!(contacts > 400, "{contacts} contacts");
    for segment in &run.segments {
        assert!(segment.size > 0 && segment.size < contacts, "{} has {}", segment.name, segment.size);
    }
}
