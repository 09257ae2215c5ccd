//! Issue 13, memberships that follow events: on random projects (traits of every aggregate and
//! window, RFM quintiles, a decayed score, segments over them) and random streams of posted
//! batches and sweeps (full runs), the live view a server serves after each step holds the
//! same traits and memberships, entity by entity, as a full run over the events file and every
//! event posted so far, as of the same instant; and the changes it recorded, replayed onto the
//! stored run's memberships, give the live memberships.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use segmenta_engine::{
    AsOf, BadRows, Engine, EngineOptions, NoProgress, RunOptions, ServedProject, ServedRun,
};

use crate::support::TempProject;

const AS_OF: &str = "2025-06-30";
const CUSTOMERS: usize = 10;

#[derive(Debug, Clone)]
struct Event {
    /// Customer (`CUSTOMERS` and above are no customer: ignored).
    customer: usize,
    /// Days before the as-of (negative: after it, ignored).
    days_before: i64,
    second: i64,
    kind: usize,
    /// Whole amounts: float sums are exact whatever order they add in.
    amount: Option<i64>,
    qty: i64,
}

fn event() -> impl Strategy<Value = Event> {
    (
        0..CUSTOMERS + 2,
        -3..120i64,
        0..86_400i64,
        0..3usize,
        proptest::option::weighted(0.9, -5..300i64),
        -3..20i64,
    )
        .prop_map(|(customer, days_before, second, kind, amount, qty)| Event {
            customer,
            days_before,
            second,
            kind,
            amount,
            qty,
        })
}

const KINDS: [&str; 3] = ["visit", "order", "ticket"];

fn instant(e: &Event) -> String {
    let end = AsOf::parse(AS_OF).expect("a date").instant;
    let micros = end - e.days_before * 86_400_000_000 - 86_400_000_000 + e.second * 1_000_000;
    chrono::DateTime::from_timestamp_micros(micros).expect("an instant").to_rfc3339()
}

fn csv(events: &[Event]) -> String {
    let mut out = String::from("customer_id,ts,type,amount,qty\n");
    for e in events {
        let amount = e.amount.map(|a| a.to_string()).unwrap_or_default();
        out.push_str(&format!("c{},{},{},{amount},{}\n", e.customer, instant(e), KINDS[e.kind], e.qty));
    }
    out
}

fn micros(e: &Event) -> i64 {
    chrono::DateTime::parse_from_rfc3339(&instant(e)).expect("an instant").timestamp_micros()
}

/// The events as Parquet, in row groups of 16 (so the scan has several units).
fn parquet(path: &std::path::Path, events: &[Event]) {
    use arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    let schema = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Utf8, true),
        Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
        Field::new("type", DataType::Utf8, true),
        Field::new("amount", DataType::Float64, true),
        Field::new("qty", DataType::Int64, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from_iter_values(events.iter().map(|e| format!("c{}", e.customer)))),
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(events.iter().map(micros)).with_timezone("UTC"),
            ),
            Arc::new(StringArray::from_iter_values(events.iter().map(|e| KINDS[e.kind]))),
            Arc::new(events.iter().map(|e| e.amount.map(|a| a as f64)).collect::<Float64Array>()),
            Arc::new(Int64Array::from_iter_values(events.iter().map(|e| e.qty))),
        ],
    )
    .expect("a batch");
    let file = std::fs::File::create(path).expect("create");
    let props =
        parquet::file::properties::WriterProperties::builder().set_max_row_group_row_count(Some(16)).build();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema, Some(props)).expect("a writer");
    writer.write(&batch).expect("write");
    writer.close().expect("close");
}

/// A project over `events` in `format` (`csv` or `parquet`).
fn project(toml: &str, format: &str, events: &[Event]) -> TempProject {
    let file = format!("events.{format}");
    let toml = toml.replace("events.csv", &file);
    let p = TempProject::new(&[
        ("segmenta.toml", &toml),
        ("customers.csv", &customers()),
        ("accounts.csv", &accounts()),
    ]);
    match format {
        "csv" => std::fs::write(p.path().join(&file), csv(events)).expect("writes"),
        _ => parquet(&p.path().join(&file), events),
    }
    p
}

fn json(e: &Event) -> String {
    let amount = e.amount.map(|a| format!(r#", "amount": {a}"#)).unwrap_or_default();
    format!(
        r#"{{"customer_id": "c{}", "ts": "{}", "type": "{}", "qty": {}{amount}}}"#,
        e.customer,
        instant(e),
        KINDS[e.kind],
        e.qty
    )
}

/// The project: customers with the random `traits`; or, `grouped`, accounts in a hierarchy
/// with the random traits over their customers' events, rollups over the customers and over
/// the hierarchy (one that reads a trait, when `trait_rollup`).
fn project_toml(traits: &[String], rfm: bool, grouped: Option<bool>) -> String {
    let mut toml = match grouped {
        None => String::from(
            "[project]\nname = \"p\"\nentity = \"customer\"\n\n[entities.customer]\nsource = \"customers.csv\"\nkey = \"customer_id\"\n",
        ),
        Some(_) => String::from(
            "[project]\nname = \"p\"\nentity = \"account\"\n\n[entities.account]\nsource = \"accounts.csv\"\nkey = \"account_id\"\nhierarchy = \"parent_id\"\n\n[entities.customer]\nsource = \"customers.csv\"\nkey = \"customer_id\"\nparent = \"account\"\n",
        ),
    };
    toml.push_str(
        "\n[events]\nsource = \"events.csv\"\nentity_key = \"customer_id\"\ntime = \"ts\"\ncolumns = { type = \"string\", amount = \"float\", qty = \"int\" }\n\n[traits]\n",
    );
    if let Some(trait_rollup) = grouped {
        toml.push_str(concat!(
            "orders_30d = { entity = \"customer\", expr = \"count() where type = 'order' within 30d\" }\n",
            "buyers = { over = \"customer\", expr = \"count() where orders_30d > 0\" }\n",
            "orders_total = { over = \"customer\", expr = \"sum(orders_30d)\" }\n",
            "subsidiaries = { over = \"children\", expr = \"count()\" }\n",
            "group_size = { over = \"descendants\", expr = \"sum(seats)\" }\n",
        ));
        if trait_rollup {
            toml.push_str("group_buyers = { over = \"descendants\", expr = \"sum(buyers)\" }\n");
        }
    }
    for (n, t) in traits.iter().enumerate() {
        toml.push_str(&format!("t{n} = \"{}\"\n", t.replace('"', "\\\"")));
    }
    for (n, t) in traits.iter().enumerate() {
        let rule = if t.starts_with("first_seen") || t.starts_with("last_seen") {
            format!("t{n} >= TIMESTAMP '2025-06-01T00:00:00Z'")
        } else {
            format!("t{n} is not null and t{n} > 1")
        };
        toml.push_str(&format!("\n[segments.s{n}]\nrule = \"{rule}\"\n"));
    }
    if grouped.is_some() {
        toml.push_str("\n[segments.buying]\nrule = \"buyers >= 1 and orders_total > 1\"\n");
        toml.push_str("\n[segments.groups]\nrule = \"subsidiaries > 0 or group_size > 5\"\n");
    }
    if grouped.is_none() {
        toml.push_str(
            "\n[scores.engagement]\nevents = [\n  { where = \"type = 'visit'\", points = 1, within = \"14d\" },\n  { where = \"type = 'order'\", points = 4, within = \"30d\" },\n]\n\n[segments.engaged]\nrule = \"engagement > 3\"\n",
        );
    }
    if rfm {
        // Quintiles over everyone: a batch for one customer moves others' scores.
        toml.push_str("\n[rfm]\npurchase = \"type = 'order'\"\namount = \"amount\"\nwithin = \"90d\"\n");
    }
    toml
}

/// Customers `c0`..., each of account `a{c % ACCOUNTS}`.
fn customers() -> String {
    (0..CUSTOMERS)
        .fold("customer_id,account_id\n".to_string(), |acc, c| format!("{acc}c{c},a{}\n", c % ACCOUNTS))
}

const ACCOUNTS: usize = 5;

/// Accounts `a0`...: `a1` and `a4` under `a0`, `a3` under `a2`, `a4`'s seats 7.
fn accounts() -> String {
    let parents = ["", "a0", "", "a2", "a0"];
    (0..ACCOUNTS).fold("account_id,parent_id,seats\n".to_string(), |acc, a| {
        format!("{acc}a{a},{},{}\n", parents[a], if a == 4 { 7 } else { a })
    })
}

/// One step of a stream.
#[derive(Debug, Clone)]
enum Step {
    /// Post these events as one batch.
    Post(Vec<Event>),
    /// A full run of the served project (what `serve --sweep` starts): the live view starts
    /// again from it.
    Sweep,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => prop::collection::vec(event(), 1..25).prop_map(Step::Post),
        1 => Just(Step::Sweep),
    ]
}

/// A run of `project` into its store (the latest run from then on): its folder.
fn store_run(project: &TempProject) -> Result<std::path::PathBuf, TestCaseError> {
    let options = RunOptions {
        as_of: Some(AsOf::parse(AS_OF).expect("a date")),
        bad_rows: BadRows::Strict,
        threads: Some(2),
        ..RunOptions::default()
    };
    let loaded = project.load().map_err(|e| TestCaseError::fail(e.to_string()))?;
    let report = segmenta_engine::run(&loaded, &options, &NoProgress)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    Ok(report.output)
}

fn same_folder(a: &std::path::Path, b: &std::path::Path) -> bool {
    a.canonicalize().ok() == b.canonicalize().ok()
}

/// The live view once it started from the stored run in `base` and holds every event posted
/// so far.
fn caught_up(served: &ServedProject, base: &std::path::Path) -> Arc<ServedRun> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(view) = served.current()
            && let Some(live) = view.live()
            && live.through == served.events_posted()
            && same_folder(&view.run_dir, base)
        {
            return view;
        }
        assert!(Instant::now() < deadline, "the live view did not catch up");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn check(
    initial: Vec<Event>,
    traits: Vec<String>,
    rfm: bool,
    grouped: Option<bool>,
    format: &str,
    steps: Vec<Step>,
) -> Result<(), TestCaseError> {
    let toml = project_toml(&traits, rfm, grouped);
    let ids: Vec<String> = match grouped {
        None => (0..CUSTOMERS).map(|c| format!("c{c}")).collect(),
        Some(_) => (0..ACCOUNTS).map(|a| format!("a{a}")).collect(),
    };
    let served_project = project(&toml, format, &initial);
    let mut base = store_run(&served_project)?;
    let engine = Arc::new(Engine::new(&EngineOptions { threads: Some(2) }).expect("an engine"));
    let served = Arc::new(ServedProject::new(served_project.load().expect("loads")));
    served.follow_events(engine).expect("follows");
    caught_up(&served, &base);
    let stored = ServedRun::load(&base).expect("the stored run");
    let mut all = initial.clone();
    // The stored run's memberships, moved by every change recorded since.
    let mut replayed: BTreeMap<String, BTreeSet<String>> =
        stored.all_members().into_iter().map(|(s, ids)| (s, ids.into_iter().collect())).collect();
    let mut seen_changes = 0;
    for (n, step) in steps.iter().enumerate() {
        match step {
            Step::Post(events) => {
                let rows: Vec<String> = events.iter().map(json).collect();
                let report =
                    served.ingest_events(&rows, None).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(report.accepted, rows.len());
                all.extend(events.iter().cloned());
            }
            Step::Sweep => base = store_run(&served_project)?,
        }
        let view = caught_up(&served, &base);
        // What a full run over all the events as of the same instant gives.
        let whole = project(&toml, format, &all);
        whole.run(AS_OF, BadRows::Strict).map_err(|e| TestCaseError::fail(format!("{e}\n{toml}")))?;
        let expected = ServedRun::load(&whole.out()).expect("the full run loads");
        prop_assert_eq!(
            view.all_members(),
            expected.all_members(),
            "step {} ({}): memberships\n{}",
            n,
            format,
            toml
        );
        for id in &ids {
            prop_assert_eq!(
                view.entity(id).expect("an entity"),
                expected.entity(id).expect("an entity"),
                "step {}: the traits of {}\n{}",
                n,
                id,
                toml
            );
        }
        // The recorded changes lead from the stored run to the view; a sweep's run is the
        // stored run from then on (the view starts again from it).
        if matches!(step, Step::Sweep) {
            let stored = ServedRun::load(&base).expect("the stored run");
            seen_changes = served.changes(0, 10_000, None).expect("changes").len();
            replayed =
                stored.all_members().into_iter().map(|(s, ids)| (s, ids.into_iter().collect())).collect();
        }
        for change in served.changes(0, 10_000, None).expect("changes").into_iter().skip(seen_changes) {
            let members = replayed.entry(change.segment.clone()).or_default();
            if change.entered {
                prop_assert!(members.insert(change.entity_id.clone()), "{} entered twice", change.entity_id);
            } else {
                prop_assert!(
                    members.remove(&change.entity_id),
                    "{} exited without being in",
                    change.entity_id
                );
            }
            seen_changes += 1;
        }
        let live: BTreeMap<String, BTreeSet<String>> =
            view.all_members().into_iter().map(|(s, ids)| (s, ids.into_iter().collect())).collect();
        prop_assert_eq!(&replayed, &live, "step {}: the changes do not replay to the view", n);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]
    #[test]
    fn the_live_view_after_any_posts_and_sweeps_is_the_full_run(
        initial in prop::collection::vec(event(), 0..120),
        traits in crate::support::event_traits(false),
        rfm in any::<bool>(),
        parquet in any::<bool>(),
        steps in prop::collection::vec(step(), 1..5),
    ) {
        check(initial, traits, rfm, None, if parquet { "parquet" } else { "csv" }, steps)?;
    }

    /// Accounts over their customers' events: a batch touches customers, whose accounts (and
    /// only those) are evaluated again, with the hierarchy's rollups carried over; or evaluated
    /// whole, where a hierarchy rollup reads a trait.
    #[test]
    fn the_live_view_of_accounts_over_customers_and_a_hierarchy_is_the_full_run(
        initial in prop::collection::vec(event(), 0..120),
        traits in crate::support::event_traits(false),
        trait_rollup in any::<bool>(),
        steps in prop::collection::vec(step(), 1..4),
    ) {
        check(initial, traits, false, Some(trait_rollup), "csv", steps)?;
    }
}

/// Copies a folder (the project and its store) to a new temporary one.
fn copy_project(from: &std::path::Path) -> tempfile::TempDir {
    fn copy(from: &std::path::Path, to: &std::path::Path) {
        std::fs::create_dir_all(to).expect("mkdir");
        for entry in std::fs::read_dir(from).expect("a folder") {
            let entry = entry.expect("an entry");
            let target = to.join(entry.file_name());
            if entry.file_type().expect("a type").is_dir() {
                copy(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), target).expect("copy");
            }
        }
    }
    let dir = tempfile::tempdir().expect("a folder");
    copy(from, dir.path());
    dir
}

/// Equal cells; floats within a relative 1e-9 (float sums add in another order in a live view).
fn same_cells(a: &segmenta_engine::EntityView, b: &segmenta_engine::EntityView) -> bool {
    use segmenta_engine::Cell;
    a.values.len() == b.values.len()
        && a.values.iter().zip(&b.values).all(|((n, x), (m, y))| {
            n == m
                && match (x, y) {
                    (Cell::Float(x), Cell::Float(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
                    _ => x == y,
                }
        })
}

/// The demo company with its predictive models (CLV refitted on every batch that changes its
/// purchases, and kept as it was on one that does not; churn scored with the run's model, and
/// the view started again for an event before its training cutoff): after each batch the live
/// view's memberships are a full run's over the same events.
#[test]
fn the_demo_with_clv_and_churn_follows_logins_purchases_and_old_events() {
    let dir = tempfile::tempdir().expect("a folder");
    let options = segmenta_engine::DemoOptions { accounts: 1000, seed: 7, threads: 2 };
    segmenta_engine::demo(dir.path(), &options, false, &NoProgress).expect("the demo is written");
    let project = segmenta_engine::Project::load(dir.path()).expect("loads");
    assert!(project.config.clv.is_some() && project.config.churn.is_some(), "the demo has its models");
    let run = RunOptions { threads: Some(2), ..RunOptions::default() };
    let base = segmenta_engine::run(&project, &run, &NoProgress).expect("runs").output;
    let engine = Arc::new(Engine::new(&EngineOptions { threads: Some(2) }).expect("an engine"));
    let served = Arc::new(ServedProject::new(project));
    served.follow_events(engine).expect("follows");
    caught_up(&served, &base);
    let account = |n: usize| format!("A{n:07}");
    let batches: Vec<(&str, Vec<String>)> = vec![
        (
            "logins",
            (0..300)
                .map(|n| {
                    format!(
                        r#"{{"account_id": "{}", "ts": "2025-12-{:02}T09:00:00Z", "event_type": "login"}}"#,
                        account(n * 7 % 1000),
                        10 + n % 20
                    )
                })
                .collect(),
        ),
        (
            "purchases",
            (0..120)
                .map(|n| {
                    format!(
                        r#"{{"account_id": "{}", "ts": "2025-12-{:02}T12:00:00Z", "event_type": "invoice_paid", "amount": {}.5}}"#,
                        account(n * 13 % 1000),
                        5 + n % 25,
                        100 + n * 37
                    )
                })
                .collect(),
        ),
        (
            "an old ticket",
            vec![format!(
                r#"{{"account_id": "{}", "ts": "2025-02-03T12:00:00Z", "event_type": "support_ticket"}}"#,
                account(3)
            )],
        ),
    ];
    for (what, rows) in batches {
        let report = served.ingest_events(&rows, None).expect("ingests");
        assert_eq!(report.accepted, rows.len(), "{what}: {:?}", report.rejected);
        let view = caught_up(&served, &base);
        let copy = copy_project(&served.project().dir);
        let out = copy.path().join("full");
        let project = segmenta_engine::Project::load(copy.path()).expect("loads");
        segmenta_engine::run(&project, &RunOptions { output: Some(out.clone()), ..run.clone() }, &NoProgress)
            .expect("the full run");
        let expected = ServedRun::load(&out).expect("loads");
        assert!(view.all_members() == expected.all_members(), "{what}: the memberships differ");
        for n in 0..1000 {
            let id = account(n);
            let (got, want) =
                (view.entity(&id).expect("an entity"), expected.entity(&id).expect("an entity"));
            assert!(same_cells(&got, &want), "{what}: {id}\n{got:?}\n{want:?}");
            assert_eq!(got.segments, want.segments, "{what}: {id}");
        }
    }
}
