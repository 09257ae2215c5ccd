//! End-to-end discovery: known clusters recovered, personas and rules on a fixed dataset
//! (snapshot, with every rule's fidelity recomputed from its text), stable ids, determinism;
//! short thresholds, the warnings (issue 11) and distinct persona names.

use std::fmt::Write as _;

use segmenta_ml::cluster::metrics::adjusted_rand_index;
use segmenta_ml::cluster::rules::{RuleLearner, TreeOptions};
use segmenta_ml::cluster::{
    Algorithm, CenterValue, Discovery, DiscoveryOptions, FeatureColumn, KChoice, LOW_FIDELITY, Method,
    Scaling, Warning, discover,
};

use super::common::{blobs, customers, numeric_columns};
use super::rule_eval::fidelity;

fn four_blobs(seed: u64) -> (Vec<FeatureColumn>, Vec<u32>) {
    let centers = vec![vec![0.0, 0.0, 0.0], vec![8.0, 0.0, 2.0], vec![0.0, 9.0, -3.0], vec![7.0, 8.0, 6.0]];
    let (values, truth) = blobs(&centers, 80, 1.0, seed);
    (numeric_columns(&values, 3), truth)
}

#[test]
fn recovers_known_blobs() {
    let (columns, truth) = four_blobs(21);
    let options =
        DiscoveryOptions { k: KChoice::Auto { min: 2, max: 7 }, bootstrap_rounds: 4, ..Default::default() };
    let found = discover(&columns, &options).expect("valid input");
    assert_eq!(found.method, Method::KMeans);
    assert_eq!(found.k, 4, "{}", found.selection.explanation);
    let ari = adjusted_rand_index(&truth, &found.labels);
    assert!(ari >= 0.95, "adjusted Rand index {ari}");
    let stability = found.stability.expect("bootstrap rounds were asked for");
    assert!(stability.min >= 0.95, "bootstrap ARI {stability:?}");
    assert!(found.selection.explanation.starts_with("k = 4 has the highest silhouette"));
}

#[test]
fn recovers_mixed_groups_with_kprototypes() {
    let (values, truth) = blobs(&[vec![0.0], vec![3.0], vec![6.0]], 60, 1.0, 8);
    let plans = ["basic", "pro", "enterprise"];
    let columns = vec![
        FeatureColumn::Numeric { name: "spend".into(), values: values.iter().map(|v| Some(*v)).collect() },
        FeatureColumn::Categorical {
            name: "plan".into(),
            values: truth.iter().map(|&t| Some(plans[t as usize].to_string())).collect(),
        },
    ];
    let options =
        DiscoveryOptions { k: KChoice::Auto { min: 2, max: 5 }, bootstrap_rounds: 2, ..Default::default() };
    let found = discover(&columns, &options).expect("valid input");
    assert_eq!(found.method, Method::KPrototypes);
    assert_eq!(found.k, 3, "{}", found.selection.explanation);
    let ari = adjusted_rand_index(&truth, &found.labels);
    assert!(ari >= 0.95, "adjusted Rand index {ari}");
    // The plan alone separates the groups: every rule is exact.
    for cluster in &found.clusters {
        assert_eq!(cluster.fidelity, 1.0, "{}", cluster.rule);
    }
}

#[test]
fn ids_stay_stable_between_runs() {
    let (columns, _) = four_blobs(5);
    let options = DiscoveryOptions { k: KChoice::Fixed(4), bootstrap_rounds: 0, ..Default::default() };
    let first = discover(&columns, &options).expect("valid input");
    // The same entities in reverse order, another seed, and the first run's centroids.
    let reversed: Vec<FeatureColumn> = columns
        .iter()
        .map(|c| match c {
            FeatureColumn::Numeric { name, values } => {
                FeatureColumn::Numeric { name: name.clone(), values: values.iter().rev().copied().collect() }
            }
            FeatureColumn::Categorical { .. } => unreachable!("numeric blobs"),
        })
        .collect();
    let again = DiscoveryOptions { seed: 99, previous_centroids: Some(first.centroids.clone()), ..options };
    let second = discover(&reversed, &again).expect("valid input");
    let mut expected = first.labels.clone();
    expected.reverse();
    assert_eq!(second.labels, expected, "{}", second.id_assignment);
    assert!(second.id_assignment.starts_with("4 of 4 clusters kept the id"));
}

#[test]
fn same_seed_same_output_on_any_number_of_threads() {
    let columns = customers();
    let options =
        DiscoveryOptions { k: KChoice::Auto { min: 2, max: 4 }, bootstrap_rounds: 2, ..Default::default() };
    let run = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a thread pool")
            .install(|| discover(&columns, &options).expect("valid input"))
    };
    let one = run(1);
    assert_eq!(one, run(2));
    assert_eq!(one, run(1));
}

/// Four significant digits, for snapshots that must not depend on the last bits of a float.
fn sig(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let digits = (3 - x.abs().log10().floor() as i32).max(0) as usize;
    format!("{x:.digits$}")
}

fn report(found: &Discovery) -> String {
    let mut out = String::new();
    let opt = |v: Option<f64>| v.map_or("-".to_string(), sig);
    writeln!(
        out,
        "method {:?}, k = {}, gamma {}, inertia {}",
        found.method,
        found.k,
        sig(found.gamma),
        sig(found.inertia)
    )
    .expect("writing to a string");
    writeln!(out, "{}", found.selection.explanation).expect("writing to a string");
    writeln!(out, "k | silhouette | calinski_harabasz | davies_bouldin | inertia")
        .expect("writing to a string");
    for row in &found.selection.table {
        writeln!(
            out,
            "{} | {} | {} | {} | {}",
            row.k,
            opt(row.silhouette),
            opt(row.calinski_harabasz),
            opt(row.davies_bouldin),
            sig(row.inertia)
        )
        .expect("writing to a string");
    }
    writeln!(out, "\npreprocessing").expect("writing to a string");
    for feature in &found.preprocessing {
        writeln!(out, "- {}: {}", feature.name, feature.summary).expect("writing to a string");
    }
    writeln!(out, "\nids: {}", found.id_assignment).expect("writing to a string");
    for cluster in &found.clusters {
        writeln!(
            out,
            "\ncluster {} ({} entities, {}): {}",
            cluster.id,
            cluster.size,
            sig(cluster.share),
            cluster.persona.name
        )
        .expect("writing to a string");
        writeln!(out, "  {}", cluster.persona.description).expect("writing to a string");
        writeln!(out, "  rule: {}", cluster.rule).expect("writing to a string");
        writeln!(
            out,
            "  fidelity {}, precision {}, recall {}",
            sig(cluster.fidelity),
            sig(cluster.precision),
            sig(cluster.recall)
        )
        .expect("writing to a string");
        let centroid: Vec<String> = cluster
            .centroid
            .iter()
            .map(|f| match &f.value {
                CenterValue::Numeric { original, .. } => format!("{} {}", f.name, sig(*original)),
                CenterValue::Categorical { mode, .. } => {
                    format!("{} {}", f.name, mode.as_deref().unwrap_or("(missing)"))
                }
            })
            .collect();
        writeln!(out, "  centroid: {}", centroid.join(", ")).expect("writing to a string");
    }
    let stability = found.stability.as_ref().expect("bootstrap rounds were asked for");
    writeln!(out, "\nstability: mean ARI {}, min {}", sig(stability.mean), sig(stability.min))
        .expect("writing to a string");
    out
}

/// Snapshots live in `tests/integration/snapshots`, named `integration__cluster__...`.
fn snapshot(name: &str, text: &str) {
    insta::with_settings!({ snapshot_path => "../snapshots", prepend_module_to_snapshot => true }, {
        insta::assert_snapshot!(name, text);
    });
}

/// Every reported fidelity equals the one recomputed from the rule text, and the rules are
/// useful.
fn check_rules(found: &Discovery, columns: &[FeatureColumn], minimum: f64) {
    for cluster in &found.clusters {
        let recomputed = fidelity(&cluster.rule, columns, &found.labels, cluster.id);
        assert!(
            (recomputed - cluster.fidelity).abs() < 1e-12,
            "cluster {}: reported fidelity {} but the rule `{}` gives {recomputed}",
            cluster.id,
            cluster.fidelity,
            cluster.rule
        );
        assert!(
            cluster.fidelity >= minimum,
            "cluster {}: `{}` has fidelity {}",
            cluster.id,
            cluster.rule,
            cluster.fidelity
        );
    }
}

#[test]
fn personas_and_rules_on_the_customers_fixture() {
    let columns = customers();
    let found = discover(&columns, &DiscoveryOptions::default()).expect("valid input");
    check_rules(&found, &columns, 0.9);
    snapshot("customers_kprototypes", &report(&found));
}

#[test]
fn kmeans_with_one_hot_and_robust_scaling_on_the_customers_fixture() {
    let columns = customers();
    let options = DiscoveryOptions {
        algorithm: Algorithm::KMeans,
        scaling: Scaling::Robust,
        k: KChoice::Fixed(3),
        bootstrap_rounds: 3,
        ..Default::default()
    };
    let found = discover(&columns, &options).expect("valid input");
    check_rules(&found, &columns, 0.85);
    snapshot("customers_kmeans_robust", &report(&found));
}

/// Evenly spaced values of one feature `x`, 0 to 19.9.
fn evenly_spaced() -> Vec<FeatureColumn> {
    vec![FeatureColumn::Numeric {
        name: "x".into(),
        values: (0..200).map(|i| Some(f64::from(i) / 10.0)).collect(),
    }]
}

#[test]
fn thresholds_print_as_the_shortest_decimal_between_neighbours() {
    // Order totals summed from prices carry binary noise: 12.99 + 48.81 is 61.800000000000004,
    // and the next total up is 61.870000000000005. Any t in [61.800000000000004,
    // 61.870000000000005) splits them the same way; the rule says the shortest, 61.84.
    assert_eq!(12.99 + 48.81, 61.800000000000004);
    let low = [61.7, 61.72, 61.76, 61.800000000000004];
    let high = [61.870000000000005, 61.9, 61.93, 61.95];
    let values: Vec<Option<f64>> = low.iter().chain(&high).flat_map(|&v| [Some(v); 4]).collect();
    let members: Vec<bool> = (0..values.len()).map(|i| i >= 4 * low.len()).collect();
    let columns = vec![FeatureColumn::Numeric { name: "total".into(), values }];
    let rule = RuleLearner::new(&columns).fit(&members, &TreeOptions { max_depth: 3, min_leaf: 1 });
    assert_eq!(rule.to_text(), "total > 61.84");
    let quality = rule.quality(&columns, &members);
    assert_eq!((quality.fidelity, quality.matched), (1.0, 4 * high.len()));
    // The other side of the split, through a whole discovery.
    let found = discover(&columns, &DiscoveryOptions { k: KChoice::Fixed(2), ..Default::default() })
        .expect("valid input");
    let rules: Vec<&str> = found.clusters.iter().map(|c| c.rule.as_str()).collect();
    assert_eq!(rules, ["total <= 61.84", "total > 61.84"], "{:?}", found.labels);
}

#[test]
fn auto_k_at_the_edge_of_the_range_warns() {
    let (columns, _) = four_blobs(21);
    let found = |k| {
        let options = DiscoveryOptions { k, bootstrap_rounds: 0, ..Default::default() };
        discover(&columns, &options).expect("valid input")
    };
    // Four blobs: k = 4 inside 2..7, at the bottom of 4..7, at the top of 2..4.
    let inside = found(KChoice::Auto { min: 2, max: 7 });
    assert_eq!(inside.k, 4);
    assert!(inside.warnings.is_empty(), "{:?}", inside.warnings);
    let bottom = found(KChoice::Auto { min: 4, max: 7 });
    assert_eq!(bottom.warnings, [Warning::KAtRangeEdge { k: 4, smallest: 4, largest: 7 }]);
    let top = found(KChoice::Auto { min: 2, max: 4 });
    assert_eq!(top.warnings, [Warning::KAtRangeEdge { k: 4, smallest: 2, largest: 4 }]);
    assert_eq!(top.warnings[0].code(), "k_at_range_edge");
    assert_eq!(top.warnings[0].cluster(), None);
    // A fixed k is no choice, and neither is a range of one k.
    assert!(found(KChoice::Fixed(4)).warnings.is_empty());
    assert!(found(KChoice::Auto { min: 4, max: 4 }).warnings.is_empty());
}

#[test]
fn a_rule_that_is_true_warns() {
    let found = discover(
        &evenly_spaced(),
        &DiscoveryOptions { k: KChoice::Fixed(1), bootstrap_rounds: 0, ..Default::default() },
    )
    .expect("valid input");
    assert_eq!(found.clusters[0].rule, "true");
    assert_eq!(found.clusters[0].rule_size, 200);
    assert_eq!(found.warnings, [Warning::RuleMatchesAll { cluster: 0 }]);
}

#[test]
fn a_rule_with_low_fidelity_warns() {
    // Three groups along x, the middle one largest. A tree of depth 1 cannot cut out the middle
    // one: its rule is one side of it, which takes in a whole outer group (fidelity 0.68).
    let groups = [(0.0, 32), (10.0, 36), (20.0, 32)];
    let values =
        groups.iter().flat_map(|&(at, size)| (0..size).map(move |j| Some(at + f64::from(j) / 100.0)));
    let columns = vec![FeatureColumn::Numeric { name: "x".into(), values: values.collect() }];
    let options =
        DiscoveryOptions { k: KChoice::Fixed(3), tree_depth: 1, bootstrap_rounds: 0, ..Default::default() };
    let found = discover(&columns, &options).expect("valid input");
    let rules: Vec<(&str, f64)> = found.clusters.iter().map(|c| (c.rule.as_str(), c.fidelity)).collect();
    assert_eq!(found.warnings, [Warning::LowFidelity { cluster: 0, fidelity: 0.68 }], "{rules:?}");
    assert!(found.clusters[0].fidelity < LOW_FIDELITY);
    assert_eq!(found.warnings[0].code(), "low_fidelity");
}

#[test]
fn personas_have_distinct_names() {
    // Five bands of one feature: two are "Low x" and two "High x" by the persona's facts; the
    // mean of x tells them apart.
    let options = DiscoveryOptions { k: KChoice::Fixed(5), bootstrap_rounds: 0, ..Default::default() };
    let found = discover(&evenly_spaced(), &options).expect("valid input");
    let mut names: Vec<&str> = found.clusters.iter().map(|c| c.persona.name.as_str()).collect();
    assert!(names.iter().any(|n| n.starts_with("Low x, x averaging")), "{names:?}");
    assert!(names.iter().all(|n| !n.contains("(cluster")), "{names:?}");
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), 5, "{names:?}");
}
