//! Issue 12, snapshots: every run is recorded in the store's catalog under its as-of instant; a
//! run as of the same instant replaces the snapshot (its id kept); `members --at` reads a past
//! one by id or date.

use segmenta_engine::{BadRows, ErrorCode};

use crate::support::TempProject;

fn project() -> TempProject {
    let toml = r#"[project]
name = "t"
entity = "customer"

[entities.customer]
source = "customers.csv"
key = "id"

[events]
source = "events.csv"
entity_key = "customer_id"
time = "ts"

[traits]
orders = "count()"
recent = "count() within 25d"

[segments.buyers]
rule = "orders > 0"

[segments.recent_buyers]
rule = "recent > 0"
"#;
    let events =
        "customer_id,ts\nc1,2025-01-10T00:00:00Z\nc2,2025-02-10T00:00:00Z\nc3,2025-03-10T00:00:00Z\n";
    TempProject::new(&[
        ("segmenta.toml", toml),
        ("customers.csv", "id\nc1\nc2\nc3\n"),
        ("events.csv", events),
    ])
}

fn run(p: &TempProject, as_of: &str) {
    let project = p.load().expect("loads");
    let options = segmenta_engine::RunOptions {
        as_of: Some(segmenta_engine::AsOf::parse(as_of).expect("a date")),
        bad_rows: BadRows::Strict,
        threads: Some(2),
        ..segmenta_engine::RunOptions::default()
    };
    segmenta_engine::run(&project, &options, &segmenta_engine::NoProgress).expect("runs");
}

#[test]
fn every_run_is_a_snapshot_by_its_as_of_and_past_members_stay_readable() {
    let p = project();
    let project = p.load().expect("loads");
    assert!(segmenta_engine::snapshots(&project).expect("lists").is_empty(), "none before a run");
    run(&p, "2025-02-28");
    run(&p, "2025-01-31");
    let before = segmenta_engine::snapshots(&project).expect("lists");
    run(&p, "2025-02-28");
    let after = segmenta_engine::snapshots(&project).expect("lists");
    let as_of: Vec<&str> = after.iter().map(|s| s.as_of.as_str()).collect();
    assert_eq!(as_of, ["2025-02-01T00:00:00Z", "2025-03-01T00:00:00Z"], "one per as-of, in as-of order");
    assert_eq!(after[1].id, before[1].id, "the replaced snapshot keeps its id");
    assert_ne!(after[1].run_dir, before[1].run_dir, "and points at the new run");
    assert!(before[1].run_dir.is_dir(), "the old run folder stays");
    assert_eq!((after[0].entities, after[0].segments), (3, 2));

    // The latest run is as of 2025-02-28; the snapshot of January has one buyer.
    let members = |at: Option<&str>| segmenta_engine::members_at(&project, "buyers", at).expect("members");
    assert_eq!(members(None), ["c1", "c2"]);
    assert_eq!(members(Some("2025-01-31")), ["c1"]);
    assert_eq!(members(Some(&after[0].id.to_string())), ["c1"]);
    assert_eq!(members(Some("2025-02-01T00:00:00Z")), ["c1"]);
    let error =
        segmenta_engine::members_at(&project, "buyers", Some("2025-02-01")).expect_err("the day after");
    assert!(error.to_string().contains("a date means its whole day"), "{error}");
    for bad in ["2024-12-31", "99", "last week"] {
        let error = segmenta_engine::members_at(&project, "buyers", Some(bad)).expect_err(bad);
        assert_eq!(error.code(), "unknown_snapshot", "{bad}: {error}");
        assert!(error.to_string().contains("segmenta snapshots"), "{error}");
    }
}

#[test]
fn a_segment_history_and_the_ids_that_moved_between_snapshots() {
    // One purchase a month: c1 in January, c2 in February, c3 in March. `buyers` grows by one a
    // month; `recent_buyers` (a purchase in the last 25 days) holds the month's buyer only.
    let p = project();
    for as_of in ["2025-03-31", "2025-01-31", "2025-02-28"] {
        run(&p, as_of);
    }
    let project = p.load().expect("loads");
    let history = segmenta_engine::history(&project, "recent_buyers").expect("a history").points;
    let rows: Vec<(&str, u64, u64, u64)> =
        history.iter().map(|h| (h.as_of.as_str(), h.size, h.entered, h.exited)).collect();
    assert_eq!(
        rows,
        [
            ("2025-02-01T00:00:00Z", 1, 1, 0),
            ("2025-03-01T00:00:00Z", 1, 1, 1),
            ("2025-04-01T00:00:00Z", 1, 1, 1)
        ]
    );
    assert!((history[0].share - 1.0 / 3.0).abs() < 1e-12);
    let compared: Vec<Option<i64>> = history.iter().map(|h| h.compared_with).collect();
    assert_eq!(compared, [None, Some(history[0].snapshot), Some(history[1].snapshot)]);
    let buyers: Vec<u64> = segmenta_engine::history(&project, "buyers")
        .expect("a history")
        .points
        .iter()
        .map(|h| h.size)
        .collect();
    assert_eq!(buyers, [1, 2, 3]);

    let diffs = segmenta_engine::diff(&project, "2025-01-31", "2025-03-31", None).expect("a diff");
    let shown: Vec<(&str, Vec<&str>, Vec<&str>)> =
        diffs.iter().map(|d| (d.segment.as_str(), ids(&d.entered), ids(&d.exited))).collect();
    assert_eq!(shown, [("buyers", vec!["c2", "c3"], vec![]), ("recent_buyers", vec!["c3"], vec!["c1"])]);
    let one =
        segmenta_engine::diff(&project, "2025-03-31", "2025-01-31", Some("recent_buyers")).expect("a diff");
    assert_eq!(
        (one[0].entered.clone(), one[0].exited.clone()),
        (vec!["c1".to_string()], vec!["c3".to_string()])
    );
    let error = segmenta_engine::history(&project, "recent_buyer").expect_err("unknown");
    assert_eq!(error.code(), "unknown_segment");
    assert!(error.to_string().contains("did you mean `recent_buyers`?"), "{error}");
    let error = segmenta_engine::diff(&project, "2025-01-31", "2024-01-31", None).expect_err("unknown");
    assert_eq!(error.code(), "unknown_snapshot");

    // February's run folder deleted: the history leaves it out, says so, and counts March
    // against January.
    let listed = segmenta_engine::snapshots(&project).expect("lists");
    std::fs::remove_dir_all(&listed[1].run_dir).expect("removes February's run");
    let gap = segmenta_engine::history(&project, "buyers").expect("a history");
    let rows: Vec<(i64, u64, u64, Option<i64>)> =
        gap.points.iter().map(|h| (h.snapshot, h.entered, h.exited, h.compared_with)).collect();
    assert_eq!(rows, [(listed[0].id, 1, 0, None), (listed[2].id, 2, 0, Some(listed[0].id))]);
    let left_out = segmenta_engine::LeftOut {
        snapshot: listed[1].id,
        as_of: listed[1].as_of.clone(),
        reason: "run_folder_gone",
    };
    assert_eq!(gap.left_out, [left_out]);
}

fn ids(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn a_scheme_transition_matrix_with_new_and_gone_entities() {
    let p = project();
    let scheme =
        "\n[schemes.tiering]\ntiers = [{ name = \"active\", rule = \"recent > 0\" }]\notherwise = \"idle\"\n";
    let toml = std::fs::read_to_string(p.path().join("segmenta.toml")).expect("reads") + scheme;
    std::fs::write(p.path().join("segmenta.toml"), toml).expect("writes");
    run(&p, "2025-01-31");
    // By March, c3 is no longer a customer and c4 is a new one.
    std::fs::write(p.path().join("customers.csv"), "id\nc1\nc2\nc4\n").expect("writes");
    std::fs::write(
        p.path().join("events.csv"),
        "customer_id,ts\nc1,2025-01-10T00:00:00Z\nc2,2025-02-10T00:00:00Z\n",
    )
    .expect("writes");
    run(&p, "2025-03-31");
    let project = p.load().expect("loads");
    let matrix =
        segmenta_engine::transitions(&project, "tiering", "2025-01-31", "2025-03-31").expect("a matrix");
    assert_eq!(matrix.from_tiers, ["active", "idle", "(new)"]);
    assert_eq!(matrix.to_tiers, ["active", "idle", "(gone)"]);
    let cells: Vec<(&str, &str, u64, f64)> =
        matrix.cells.iter().map(|c| (c.from.as_str(), c.to.as_str(), c.count, c.share)).collect();
    assert_eq!(
        cells,
        [
            ("active", "idle", 1, 1.0),
            ("idle", "idle", 1, 0.5),
            ("idle", "(gone)", 1, 0.5),
            ("(new)", "idle", 1, 1.0)
        ]
    );
    let error = segmenta_engine::transitions(&project, "tierng", "1", "2").expect_err("unknown");
    assert_eq!(error.code(), "unknown_scheme");
    assert!(error.to_string().contains("did you mean `tiering`?"), "{error}");
}

#[test]
fn snapshots_follow_a_moved_project_and_a_reused_output_folder_drops_its_old_snapshot() {
    let p = project();
    run(&p, "2025-01-31");
    run(&p, "2025-02-28");
    // A copy of the whole project folder reads its own run folders.
    let copy = tempfile::tempdir().expect("a folder");
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(format!("{}/.", p.path().display()))
        .arg(copy.path())
        .status()
        .expect("cp runs");
    assert!(status.success());
    let moved = segmenta_engine::Project::load(copy.path()).expect("loads");
    let snapshots = segmenta_engine::snapshots(&moved).expect("lists");
    assert!(snapshots.iter().all(|s| s.run_dir.starts_with(copy.path())), "{snapshots:?}");
    assert_eq!(segmenta_engine::members_at(&moved, "buyers", Some("2025-01-31")).expect("members"), ["c1"]);

    // One --output folder written as of two instants: only the second snapshot remains.
    let project = p.load().expect("loads");
    for as_of in ["2025-01-31", "2025-03-31"] {
        let options = segmenta_engine::RunOptions {
            as_of: Some(segmenta_engine::AsOf::parse(as_of).expect("a date")),
            output: Some(p.path().join("out")),
            threads: Some(2),
            ..segmenta_engine::RunOptions::default()
        };
        segmenta_engine::run(&project, &options, &segmenta_engine::NoProgress).expect("runs");
    }
    let as_of: Vec<String> =
        segmenta_engine::snapshots(&project).expect("lists").into_iter().map(|s| s.as_of).collect();
    assert_eq!(as_of, ["2025-03-01T00:00:00Z", "2025-04-01T00:00:00Z"], "January's folder was overwritten");
}

#[test]
fn prune_keeps_the_newest_and_the_latest_run_and_deletes_the_rest_with_their_folders() {
    let p = project();
    let project = p.load().expect("loads");
    for as_of in ["2025-01-31", "2025-03-31", "2025-04-30", "2025-02-28"] {
        run(&p, as_of);
    }
    let all = segmenta_engine::snapshots(&project).expect("lists");
    assert_eq!(all.len(), 4);
    // A folder a crashed prune left aside goes too.
    let aside = project.store_dir().join("runs").join(".pruned-left-over");
    std::fs::create_dir_all(&aside).expect("mkdir");

    let dry = segmenta_engine::prune(&project, 1, true).expect("a dry run");
    let planned: Vec<&str> = dry.removed.iter().map(|s| s.as_of.as_str()).collect();
    // The newest (April) and the latest run (February, run last) stay.
    assert_eq!(planned, ["2025-02-01T00:00:00Z", "2025-04-01T00:00:00Z"]);
    assert_eq!(segmenta_engine::snapshots(&project).expect("lists").len(), 4, "a dry run deletes nothing");
    assert!(dry.removed.iter().all(|s| s.run_dir.is_dir()));

    let done = segmenta_engine::prune(&project, 1, false).expect("prunes");
    assert_eq!((done.removed.len(), done.kept), (2, 2));
    assert!(done.left_on_disk.is_empty());
    assert!(done.removed.iter().all(|s| !s.run_dir.exists()), "the folders are gone");
    assert!(!aside.exists(), "a left-over folder is cleaned");
    let left: Vec<String> =
        segmenta_engine::snapshots(&project).expect("lists").into_iter().map(|s| s.as_of).collect();
    assert_eq!(left, ["2025-03-01T00:00:00Z", "2025-05-01T00:00:00Z"]);
    // What is left reads as before.
    let history = segmenta_engine::history(&project, "buyers").expect("history");
    assert_eq!(history.points.len(), 2);
    assert!(segmenta_engine::prune(&project, 5, false).expect("prunes").removed.is_empty());
}
