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
    let options = DemoOptions { accounts: 1000, seed: 5, threads: 2 };
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
    assert_eq!(ids.len(), 1000);
    ids.sort();
    let ids: Vec<String> = ids.into_iter().step_by(25).collect();
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
    // Predictive traits carry their drivers: the churn model's top features, the CLV inputs.
    let mut driven = (0, 0);
    let reading = |name: &str| -> Vec<String> {
        let mut found: Vec<String> = project
            .config
            .segments
            .iter()
            .filter(|(_, c)| c.rule.as_ref().is_some_and(|r| r.get_ref().contains(name)))
            .map(|(n, _)| n.clone())
            .collect();
        for (scheme, config) in &project.config.schemes {
            for tier in config.tiers.iter().filter(|t| t.rule.get_ref().contains(name)) {
                found.push(format!("{scheme}.{}", tier.name.get_ref()));
            }
        }
        found
    };
    let churn = reading("churn_risk");
    assert!(!churn.is_empty(), "the demo reads churn_risk in a rule");
    for id in &ids {
        for e in churn.iter().flat_map(|s| segmenta_engine::explain(&project, id, Some(s)).expect("explains"))
        {
            let trees = e.tree.iter().chain(e.scheme.iter().flat_map(|s| s.tried.iter().map(|t| &t.tree)));
            let mut stack: Vec<&segmenta_engine::ExplainNode> = trees.collect();
            while let Some(node) = stack.pop() {
                stack.extend(&node.children);
                for operand in &node.operands {
                    if operand.text == "churn_risk" && !operand.drivers.is_empty() {
                        assert!(operand.drivers.iter().all(|d| d.contains("(+")), "{:?}", operand.drivers);
                        driven.0 += 1;
                    }
                    if operand.text == "plan" {
                        assert!(operand.drivers.is_empty(), "an attribute has no drivers");
                    }
                }
            }
        }
    }
    let clv = summary.segments.iter().find(|s| {
        project
            .config
            .segments
            .get(&s.name)
            .and_then(|c| c.rule.as_ref())
            .is_some_and(|r| r.get_ref().contains("p_alive"))
    });
    if let Some(clv) = clv {
        for e in segmenta_engine::explain(&project, &ids[0], Some(&clv.name)).expect("explains") {
            let tree = e.tree.expect("a rule");
            for child in &tree.children {
                for operand in &child.operands {
                    assert_eq!(operand.drivers.len(), 4, "{}: the four purchase summaries", operand.text);
                    driven.1 += 1;
                }
            }
        }
    }
    assert!(driven.0 > 0 && driven.1 > 0, "{driven:?}");
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
