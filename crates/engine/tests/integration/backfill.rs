//! Issue 12, backfill: on random projects (random events, traits of every kind of aggregate and
//! window, segments over them, random steps), every snapshot a backfill writes holds the very
//! bytes of `traits.parquet` and `memberships.parquet` that `run --as-of DATE` writes.

use proptest::prelude::*;
use segmenta_engine::{AsOf, BackfillOptions, BadRows, Every, NoProgress, RunOptions};

use crate::support::TempProject;

/// Days from 2025-01-01 of the events' dates.
const DAYS: i64 = 150;

#[derive(Debug, Clone)]
struct Event {
    customer: usize,
    day: i64,
    second: i64,
    kind: usize,
    /// Cents, so that float sums round differently in different orders.
    amount: Option<i64>,
    qty: i64,
}

fn event() -> impl Strategy<Value = Event> {
    (
        0..12usize,
        -20..DAYS,
        0..86_400i64,
        0..3usize,
        proptest::option::weighted(0.9, -500..100_000i64),
        -3..20i64,
    )
        .prop_map(|(customer, day, second, kind, amount, qty)| Event {
            customer,
            day,
            second,
            kind,
            amount,
            qty,
        })
}

const KINDS: [&str; 3] = ["visit", "order", "ticket"];

fn events_csv(events: &[Event]) -> String {
    let mut out = String::from("customer_id,ts,type,amount,qty\n");
    let start = chrono::NaiveDate::from_ymd_opt(2025, 1, 1).expect("a date");
    for e in events {
        let date = start + chrono::Duration::days(e.day);
        let (h, m, s) = (e.second / 3600, e.second / 60 % 60, e.second % 60);
        let amount = e.amount.map(|c| format!("{}", c as f64 / 100.0)).unwrap_or_default();
        out.push_str(&format!(
            "c{},{date}T{h:02}:{m:02}:{s:02}Z,{},{amount},{}\n",
            e.customer, KINDS[e.kind], e.qty
        ));
    }
    out
}

fn project_toml(traits: &[String], score: bool) -> String {
    let mut toml = String::from(
        "[project]\nname = \"p\"\nentity = \"customer\"\n\n[entities.customer]\nsource = \"customers.csv\"\nkey = \"id\"\n\n[events]\nsource = \"events.csv\"\nentity_key = \"customer_id\"\ntime = \"ts\"\ncolumns = { type = \"string\", amount = \"float\", qty = \"int\" }\n\n[traits]\n",
    );
    for (n, t) in traits.iter().enumerate() {
        toml.push_str(&format!("t{n} = \"{}\"\n", t.replace('"', "\\\"")));
    }
    for (n, t) in traits.iter().enumerate() {
        let rule = if t.starts_with("first_seen") || t.starts_with("last_seen") {
            format!("t{n} >= TIMESTAMP '2025-02-01T00:00:00Z'")
        } else {
            format!("t{n} is not null and t{n} > 1")
        };
        toml.push_str(&format!("\n[segments.s{n}]\nrule = \"{rule}\"\n"));
    }
    if score {
        toml.push_str(
            "\n[scores.engagement]\nevents = [\n  { where = \"type = 'visit'\", points = 1.5, half_life = \"10d\" },\n  { where = \"type = 'order'\", points = 4, within = \"30d\" },\n]\n\n[segments.engaged]\nrule = \"engagement > 3\"\n",
        );
    }
    toml
}

fn bytes(dir: &std::path::Path, file: &str) -> Vec<u8> {
    std::fs::read(dir.join(file)).expect("a run file")
}

fn check(
    events: Vec<Event>,
    traits: Vec<String>,
    score: bool,
    start: i64,
    every: Every,
) -> Result<(), TestCaseError> {
    let toml = project_toml(&traits, score);
    let customers: String = (0..12).fold("id\n".to_string(), |acc, c| format!("{acc}c{c}\n"));
    let p = TempProject::new(&[
        ("segmenta.toml", &toml),
        ("customers.csv", &customers),
        ("events.csv", &events_csv(&events)),
    ]);
    let project = p.load().expect("loads");
    let from = chrono::NaiveDate::from_ymd_opt(2025, 1, 1).expect("a date") + chrono::Duration::days(start);
    let to = chrono::NaiveDate::from_ymd_opt(2025, 6, 30).expect("a date");
    let run = RunOptions { bad_rows: BadRows::Strict, threads: Some(2), ..RunOptions::default() };
    let options = BackfillOptions { from, to, every, run: run.clone() };
    let report = segmenta_engine::backfill(&project, &options, &NoProgress)
        .map_err(|e| TestCaseError::fail(format!("{e}\n{toml}")))?;
    prop_assert_eq!(report.event_scans, 1);
    prop_assert_eq!(
        report.snapshots.len(),
        segmenta_engine::backfill_dates(from, to, every).expect("dates").len()
    );
    // Read every snapshot before the runs below replace them in the catalog.
    let written: Vec<(String, Vec<u8>, Vec<u8>)> = report
        .snapshots
        .iter()
        .map(|s| {
            (s.date.to_string(), bytes(&s.output, "traits.parquet"), bytes(&s.output, "memberships.parquet"))
        })
        .collect();
    for (date, traits, memberships) in written {
        let out = p.path().join(format!("run-{date}"));
        let options = RunOptions {
            as_of: Some(AsOf::parse(&date).expect("a date")),
            output: Some(out.clone()),
            ..run.clone()
        };
        segmenta_engine::run(&project, &options, &NoProgress)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(bytes(&out, "traits.parquet") == traits, "traits as of {} differ\n{}", date, toml);
        prop_assert!(
            bytes(&out, "memberships.parquet") == memberships,
            "memberships as of {} differ\n{}",
            date,
            toml
        );
    }
    Ok(())
}

fn every() -> impl Strategy<Value = Every> {
    prop_oneof![
        (1u32..20).prop_map(Every::Days),
        (1u32..4).prop_map(Every::Weeks),
        (1u32..3).prop_map(Every::Months)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn every_backfilled_snapshot_is_the_run_as_of_its_date(
        events in prop::collection::vec(event(), 0..400),
        traits in crate::support::event_traits(true),
        score in any::<bool>(),
        start in 0..DAYS,
        every in every(),
    ) {
        check(events, traits, score, start, every)?;
    }
}

#[test]
fn a_backfill_of_past_dates_leaves_the_newest_snapshot_the_latest_run() {
    let events = vec![
        Event { customer: 0, day: 10, second: 5, kind: 1, amount: Some(1250), qty: 2 },
        Event { customer: 0, day: 40, second: 5, kind: 1, amount: Some(1250), qty: 2 },
        Event { customer: 1, day: 100, second: 5, kind: 1, amount: Some(99), qty: 1 },
        Event { customer: 1, day: 120, second: 5, kind: 1, amount: Some(99), qty: 1 },
    ];
    let toml = project_toml(&["count()".to_string()], false);
    let p = TempProject::new(&[
        ("segmenta.toml", &toml),
        ("customers.csv", "id\nc0\nc1\n"),
        ("events.csv", &events_csv(&events)),
    ]);
    let project = p.load().expect("loads");
    let run = RunOptions {
        as_of: Some(AsOf::parse("2025-12-31").expect("a date")),
        threads: Some(2),
        ..RunOptions::default()
    };
    let latest = segmenta_engine::run(&project, &run, &NoProgress).expect("runs");
    let d = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("a date");
    let options =
        BackfillOptions { from: d("2025-01-31"), to: d("2025-06-30"), every: Every::Months(1), run };
    let report = segmenta_engine::backfill(&project, &options, &NoProgress).expect("backfills");
    let months: Vec<String> = report.snapshots.iter().map(|s| s.date.to_string()).collect();
    assert_eq!(months, ["2025-01-31", "2025-02-28", "2025-03-31", "2025-04-30", "2025-05-31", "2025-06-30"]);
    let summary = segmenta_engine::latest_summary(&project).expect("a latest run");
    assert_eq!(summary.as_of, latest.summary.as_of, "the run as of December stays the latest");
    let listed = segmenta_engine::snapshots(&project).expect("lists");
    assert_eq!(listed.len(), 7);
    let ids: Vec<i64> = report.snapshots.iter().map(|s| s.id).collect();
    assert!(ids.iter().all(|id| listed.iter().any(|s| s.id == *id)), "ids {ids:?} are the catalog's");
    // `count() > 1`: c0 from its second event (February 10), c1 from its second (May 1).
    let sizes: Vec<u64> = months
        .iter()
        .map(|m| {
            let at = segmenta_engine::members_at(&project, "s0", Some(m)).expect("members");
            at.len() as u64
        })
        .collect();
    assert_eq!(sizes, [0, 1, 1, 1, 2, 2]);
}
