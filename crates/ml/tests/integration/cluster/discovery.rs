//! End-to-end discovery: known clusters recovered, personas and rules on a fixed dataset
//! (snapshot, with every rule's fidelity recomputed from its text), stable ids, determinism.

use std::fmt::Write as _;

use segmenta_ml::cluster::metrics::adjusted_rand_index;
use segmenta_ml::cluster::{
    Algorithm, CenterValue, Discovery, DiscoveryOptions, FeatureColumn, KChoice, Method, Scaling, discover,
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
