//! Issue 13, explanations: on the demo company (every segmentation model: rules, macro and micro
//! segments, schemes, RFM, scores, CLV, churn, static lists), the explanation of every entity in
//! every segment agrees with the run's membership: a rule's tree is TRUE exactly for members,
//! a scheme's matched tier is the member's tier, and a micro segment's member is in its macro
//! segment. The reference evaluator computes the trees, DataFusion the run: this holds the two
//! together on real data paths.

use segmenta_engine::{DemoOptions, NoProgress, Project, RunOptions, Truth};

#[test]
fn every_explanation_on_the_demo_agrees_with_the_run() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let options = DemoOptions { accounts: 400, seed: 5, threads: 2 };
    segmenta_engine::demo(dir.path(), &options, false, &NoProgress).expect("the demo is written");
    let project = Project::load(dir.path()).expect("loads");
    let run = RunOptions { threads: Some(2), ..Default::default() };
    segmenta_engine::run(&project, &run, &NoProgress).expect("runs");
    let summary = segmenta_engine::latest_summary(&project).expect("a summary");
    let mut checked = (0, 0, 0);
    // Every entity is in one tier of a scheme: the tiers of the first scheme give the ids.
    let scheme = summary
        .segments
        .iter()
        .find(|s| s.name.contains('.') && !s.name.starts_with("rfm."))
        .expect("a scheme");
    let prefix = scheme.name.split('.').next().expect("scheme.tier");
    let mut ids: Vec<String> = summary
        .segments
        .iter()
        .filter(|s| s.name.starts_with(&format!("{prefix}.")))
        .flat_map(|s| segmenta_engine::members(&project, &s.name).expect("members"))
        .collect();
    assert_eq!(ids.len(), 400);
    ids.sort();
    let ids: Vec<String> = ids.into_iter().step_by(7).collect();
    assert!(!ids.is_empty());
    for id in &ids {
        let explained = segmenta_engine::explain(&project, id, None).expect("explains");
        assert_eq!(explained.len(), summary.segments.len());
        for e in &explained {
            let members = segmenta_engine::members(&project, &e.segment).expect("members");
            assert_eq!(e.member, members.contains(id), "{id} in {}", e.segment);
            if let Some(tree) = &e.tree {
                let rule_true = tree.truth == Truth::True;
                match &e.parent {
                    None => assert_eq!(rule_true, e.member, "{id} in {}: {tree:?}", e.segment),
                    Some(parent) => assert_eq!(rule_true && parent.member, e.member, "{id} in {}", e.segment),
                }
                checked.0 += 1;
            }
            if let Some(scheme) = &e.scheme {
                let tier = e.segment.rsplit_once('.').map(|(_, t)| t).expect("scheme.tier");
                assert_eq!(scheme.matched == tier, e.member, "{id} in {}", e.segment);
                let last = scheme.tried.last().expect("a tier tried");
                assert!(scheme.tried[..scheme.tried.len() - 1].iter().all(|t| t.tree.truth != Truth::True));
                assert_eq!(last.tree.truth == Truth::True, scheme.matched == last.tier);
                checked.1 += 1;
            }
            if e.tree.is_none() && e.scheme.is_none() {
                assert!(e.note.is_some(), "{}: a segment without a rule says what decides it", e.segment);
                checked.2 += 1;
            }
        }
    }
    assert!(checked.0 > 100 && checked.1 > 20 && checked.2 > 10, "{checked:?}");
}

#[test]
fn a_missing_value_makes_a_condition_unknown_and_unknown_names_are_refused() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/quickstart");
    std::fs::create_dir_all(dir.path().join("data")).expect("mkdir");
    for file in ["segmenta.toml", "data/accounts.csv", "data/events.csv"] {
        std::fs::copy(source.join(file), dir.path().join(file)).expect("copy example");
    }
    let project = Project::load(dir.path()).expect("loads");
    segmenta_engine::run(&project, &RunOptions { threads: Some(1), ..Default::default() }, &NoProgress)
        .expect("runs");
    // `smb` is `employees < 50`; the quickstart has accounts without a size.
    let accounts = std::fs::read_to_string(dir.path().join("data/accounts.csv")).expect("reads");
    let no_size = accounts
        .lines()
        .skip(1)
        .find(|line| line.split(',').nth(3) == Some(""))
        .and_then(|line| line.split(',').next())
        .expect("an account without employees");
    let explained = segmenta_engine::explain(&project, no_size, Some("smb")).expect("explains");
    let tree = explained[0].tree.as_ref().expect("a tree");
    assert_eq!(tree.truth, Truth::Unknown);
    assert_eq!(tree.operands[0].value, segmenta_engine::Cell::Null);
    assert!(!explained[0].member);

    let error = segmenta_engine::explain(&project, "NOPE", Some("smb")).expect_err("unknown entity");
    assert_eq!(segmenta_engine::ErrorCode::code(&error), "unknown_entity");
    let error = segmenta_engine::explain(&project, no_size, Some("smbb")).expect_err("unknown segment");
    assert!(error.to_string().contains("did you mean `smb`"), "{error}");
}
