//! The `Engine` value: one engine serves many calls with the same results as one-off calls, and
//! a cancelled call stops between stages with `cancelled` and writes nothing.

use std::sync::Mutex;

use segmenta_engine::{
    Cancel, DemoOptions, Engine, EngineOptions, ErrorCode, NoProgress, Progress, Project, RunOptions,
};

use crate::support::to_json;

/// A small demo project (300 accounts: no models) in a temporary folder.
fn demo() -> (tempfile::TempDir, Project) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let options = DemoOptions { accounts: 300, seed: 7, threads: 2 };
    segmenta_engine::demo(dir.path(), &options, false, &NoProgress).expect("the demo is written");
    let project = Project::load(dir.path()).expect("the demo loads");
    (dir, project)
}

/// Cancels the token when a step whose message starts with `at` begins, and records the steps.
struct CancelAt {
    at: &'static str,
    cancel: Cancel,
    steps: Mutex<Vec<String>>,
}

impl Progress for CancelAt {
    fn step(&self, message: &str) {
        if message.starts_with(self.at) {
            self.cancel.cancel();
        }
        self.steps.lock().expect("not poisoned").push(message.to_string());
    }

    fn done(&self) {}
}

#[test]
fn one_engine_serves_many_calls_like_one_off_calls() {
    let (dir, project) = demo();
    let engine = Engine::new(&EngineOptions { threads: Some(2) }).expect("an engine");
    assert_eq!(engine.threads(), 2);
    let options = |name: &str| RunOptions {
        output: Some(dir.path().join(name)),
        threads: Some(2),
        ..Default::default()
    };
    let first = engine.run(&project, &options("a"), &NoProgress).expect("runs");
    let second = engine.run(&project, &options("b"), &NoProgress).expect("runs again");
    let one_off = segmenta_engine::run(&project, &options("c"), &NoProgress).expect("runs once");
    for report in [&second, &one_off] {
        assert_eq!(report.segments, first.segments);
        let (mut a, mut b) = (to_json(&first.summary), to_json(&report.summary));
        a["elapsed_ms"] = 0.into();
        b["elapsed_ms"] = 0.into();
        assert_eq!(a, b);
    }
    let memberships =
        |name: &str| std::fs::read(dir.path().join(name).join("memberships.parquet")).expect("written");
    assert_eq!(memberships("a"), memberships("b"));
    assert_eq!(memberships("a"), memberships("c"));
    // Reads between runs go through the same engine.
    let plan = engine.validate(&project).expect("validates");
    assert_eq!(plan.segments.len(), first.segments.len());
    let at_risk = engine.members(&project, "lifecycle.at_risk").expect("members");
    assert_eq!(
        at_risk.len() as u64,
        first.segments.iter().find(|s| s.name == "lifecycle.at_risk").expect("a segment").size
    );
}

#[test]
fn a_cancelled_run_stops_between_stages_and_writes_nothing() {
    let (dir, project) = demo();
    let engine = Engine::new(&EngineOptions { threads: Some(2) }).expect("an engine");
    for at in ["reading", "computing"] {
        let cancel = Cancel::new();
        let progress = CancelAt { at, cancel: cancel.clone(), steps: Mutex::new(Vec::new()) };
        let output = dir.path().join(format!("cancelled-{at}"));
        let options = RunOptions { output: Some(output.clone()), cancel, ..Default::default() };
        let error = engine.run(&project, &options, &progress).expect_err("cancelled");
        assert_eq!(error.code(), "cancelled", "{error}");
        assert!(!output.exists(), "a cancelled run writes no run folder");
        let steps = progress.steps.lock().expect("not poisoned").clone();
        assert!(!steps.iter().any(|s| s.starts_with("writing")), "{steps:?}");
    }
    // Nothing became the latest run; a run that is not cancelled still works afterwards.
    assert!(engine.members(&project, "lifecycle.at_risk").is_err());
    engine.run(&project, &RunOptions::default(), &NoProgress).expect("runs");
    assert!(engine.members(&project, "lifecycle.at_risk").is_ok());
}

#[test]
fn a_cancelled_token_stops_a_run_before_it_reads_anything() {
    let (_dir, project) = demo();
    let cancel = Cancel::new();
    cancel.cancel();
    let options = RunOptions { cancel, ..Default::default() };
    let progress = CancelAt { at: "never", cancel: Cancel::new(), steps: Mutex::new(Vec::new()) };
    let error = segmenta_engine::run(&project, &options, &progress).expect_err("cancelled");
    assert_eq!(error.code(), "cancelled");
    let steps = progress.steps.lock().expect("not poisoned").clone();
    assert!(steps.iter().all(|s| !s.starts_with("reading")), "{steps:?}");
}

/// Outputs are sorted by entity and byte-identical from run to run, also when the entity table
/// is larger than DataFusion's batches (it then spreads the derived columns over partitions).
#[test]
fn outputs_are_in_entity_order_and_byte_identical_at_any_size() {
    let mut customers = String::from("id,n\n");
    let mut events = String::from("customer_id,ts\n");
    // 30,000 customers in a shuffled order (ids are not sorted in the file).
    for i in 0..30_000u64 {
        let id = (i * 7_919) % 30_000;
        customers.push_str(&format!("c{id:05},{}\n", id % 13));
        if id % 3 == 0 {
            events.push_str(&format!("c{id:05},2024-01-01T00:00:00Z\n"));
        }
    }
    let toml = "[project]\nname = \"t\"\nentity = \"customer\"\n\n[entities.customer]\nsource = \"customers.csv\"\nkey = \"id\"\n\n[events]\nsource = \"events.csv\"\nentity_key = \"customer_id\"\ntime = \"ts\"\n\n[traits]\norders = \"count()\"\ntwice = \"orders * 2 + n\"\n\n[segments.some]\nrule = \"twice > 3\"\n\n[segments.others]\nrule = \"n < 5\"\n";
    let p = crate::support::TempProject::new(&[
        ("segmenta.toml", toml),
        ("customers.csv", &customers),
        ("events.csv", &events),
    ]);
    let project = p.load().expect("loads");
    let mut files = Vec::new();
    for run in 0..2 {
        let output = p.path().join(format!("out{run}"));
        let options = RunOptions {
            as_of: Some(segmenta_engine::AsOf::parse("2024-06-30").expect("a date")),
            output: Some(output.clone()),
            threads: Some(2),
            ..RunOptions::default()
        };
        segmenta_engine::run(&project, &options, &NoProgress).expect("runs");
        let read = |name: &str| std::fs::read(output.join(name)).expect("an output file");
        files.push((read("traits.parquet"), read("memberships.parquet")));
    }
    assert!(files[0] == files[1], "two runs wrote different bytes");
    let traits = segmenta_store::read_parquet(&p.path().join("out0/traits.parquet")).expect("traits");
    let ids = traits.column(0).as_any().downcast_ref::<arrow::array::StringArray>().expect("ids");
    let ids: Vec<&str> = ids.iter().flatten().collect();
    assert_eq!(ids.len(), 30_000);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "traits in entity order");
    let members = segmenta_store::read_parquet(&p.path().join("out0/memberships.parquet")).expect("members");
    let (ids, segments) = (members.column(0), members.column(1));
    let as_text = |a: &arrow::array::ArrayRef| {
        let a = arrow::compute::cast(a, &arrow::datatypes::DataType::Utf8).expect("text");
        a.as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .expect("text")
            .iter()
            .flatten()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let rows: Vec<(String, String)> = as_text(segments).into_iter().zip(as_text(ids)).collect();
    let order = |s: &str| usize::from(s != "some");
    assert!(
        rows.windows(2).all(|w| (order(&w[0].0), &w[0].1) < (order(&w[1].0), &w[1].1)),
        "memberships by segment, then entity"
    );
}
