//! Differential tests: segmenta's k-means against scikit-learn from the same initial centroids,
//! its metrics against scikit-learn's, its k-prototypes against kmodes from the same initial
//! prototypes. Python runs `tests/differential/cluster_sklearn.py` and `cluster_kmodes.py`
//! (packages from `tests/differential/requirements.txt`); a missing package fails the test.

use ndarray::{Array2, ArrayView2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use segmenta_ml::cluster::kmeans::{kmeans_from_centroids, kmeans_plusplus};
use segmenta_ml::cluster::kprototypes::kprototypes_from;
use segmenta_ml::cluster::metrics::{adjusted_rand_index, calinski_harabasz, davies_bouldin, silhouette};
use serde_json::json;

use super::common::{blobs, json_rows, normal, python, relative};

fn labels_of(value: &serde_json::Value) -> Vec<u32> {
    value.as_array().expect("labels").iter().map(|v| v.as_u64().expect("a label") as u32).collect()
}

/// A k-means case: row-major data, its width, initial centroids and the tolerance.
struct Case {
    values: Vec<f64>,
    d: usize,
    init: Array2<f64>,
    tol: f64,
}

/// Runs both sides from the same initial centroids and compares labels, inertia and
/// iteration count.
fn compare_kmeans(cases: &[Case]) {
    let specs: Vec<serde_json::Value> = cases
        .iter()
        .map(|case| {
            let init: Vec<Vec<f64>> = case.init.rows().into_iter().map(|r| r.to_vec()).collect();
            json!({"data": json_rows(&case.values, case.d), "init": init, "max_iter": 300, "tol": case.tol})
        })
        .collect();
    let answers = python("cluster_sklearn.py", &["kmeans"], "sklearn", &specs);
    for (number, (case, theirs)) in cases.iter().zip(&answers).enumerate() {
        let data = ArrayView2::from_shape((case.values.len() / case.d, case.d), &case.values).expect("n x d");
        let ours = kmeans_from_centroids(data, case.init.view(), 300, case.tol).expect("valid input");
        let inertia = theirs["inertia"].as_f64().expect("inertia");
        assert!(
            relative(ours.inertia, inertia) < 1e-6,
            "case {number}: inertia {} vs scikit-learn {inertia}",
            ours.inertia
        );
        assert_eq!(
            ours.labels,
            labels_of(&theirs["labels"]),
            "case {number}: labels differ from scikit-learn's"
        );
        let n_iter = theirs["n_iter"].as_u64().expect("n_iter");
        assert_eq!(ours.n_iter as u64, n_iter, "case {number}: iterations differ");
    }
}

#[test]
fn kmeans_matches_scikit_learn_from_the_same_centroids() {
    // Overlapping blobs, so that Lloyd needs several iterations and the tolerance matters.
    let centers = vec![
        vec![0.0, 0.0, 0.0, 0.0],
        vec![3.0, 1.0, 0.0, 2.0],
        vec![0.0, 4.0, 1.0, -1.0],
        vec![4.0, 4.0, 3.0, 0.0],
    ];
    let mut cases: Vec<Case> = [(1, 1e-4), (2, 0.0), (3, 1e-2)]
        .into_iter()
        .map(|(seed, tol)| {
            let (values, _) = blobs(&centers, 150, 1.5, seed);
            let data = ArrayView2::from_shape((600, 4), &values).expect("600 x 4");
            let init = kmeans_plusplus(data, 5, seed).expect("valid input");
            Case { values, d: 4, init, tol }
        })
        .collect();
    // Empty clusters are relocated like scikit-learn: the third centroid is so far away that
    // its cluster starts empty.
    let (values, _) = blobs(&[vec![0.0, 0.0], vec![5.0, 5.0]], 100, 1.0, 4);
    let init = Array2::from_shape_vec((3, 2), vec![0.0, 0.0, 5.0, 5.0, 1000.0, -1000.0]).expect("3 x 2");
    cases.push(Case { values, d: 2, init, tol: 1e-4 });
    compare_kmeans(&cases);
}

#[test]
fn metrics_match_scikit_learn() {
    let (values, truth) = blobs(&[vec![0.0, 0.0, 0.0], vec![2.0, 2.0, 0.0], vec![0.0, 3.0, 3.0]], 70, 1.2, 5);
    let data = ArrayView2::from_shape((210, 3), &values).expect("210 x 3");
    let init = kmeans_plusplus(data, 4, 9).expect("valid input");
    let labels = kmeans_from_centroids(data, init.view(), 300, 1e-4).expect("valid input").labels;
    let answers = python(
        "cluster_sklearn.py",
        &["metrics"],
        "sklearn",
        &[json!({"data": json_rows(&values, 3), "labels": labels, "labels_true": truth})],
    );
    let theirs = &answers[0];
    let checks = [
        ("silhouette", silhouette(data, &labels).expect("defined")),
        ("calinski_harabasz", calinski_harabasz(data, &labels).expect("defined")),
        ("davies_bouldin", davies_bouldin(data, &labels).expect("defined")),
        ("adjusted_rand", adjusted_rand_index(&truth, &labels)),
    ];
    for (name, ours) in checks {
        let expected = theirs[name].as_f64().expect("a number");
        assert!(relative(ours, expected) < 1e-9, "{name}: {ours} vs scikit-learn {expected}");
    }
}

#[test]
fn kprototypes_matches_kmodes_from_the_same_prototypes() {
    let levels = [["a", "b", "c", "d"], ["x", "y", "z", "w"]];
    let mut specs = Vec::new();
    let mut ours = Vec::new();
    for seed in [11u64, 12, 13] {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n = 150;
        let mut numeric = Vec::new();
        let mut categorical: Vec<Vec<&str>> = Vec::new();
        for i in 0..n {
            let group = i % 3;
            numeric.push(group as f64 * 1.5 + normal(&mut rng));
            numeric.push(-(group as f64) + normal(&mut rng));
            // Each categorical column follows the group 60% of the time.
            categorical.push(
                levels
                    .iter()
                    .map(|values| {
                        if rng.random::<f64>() < 0.6 { values[group] } else { values[rng.random_range(0..4)] }
                    })
                    .collect(),
            );
        }
        // Codes in sorted order, as kmodes codes them.
        let mut sorted: Vec<Vec<&str>> = (0..2).map(|a| categorical.iter().map(|r| r[a]).collect()).collect();
        sorted.iter_mut().for_each(|v| {
            v.sort_unstable();
            v.dedup();
        });
        let codes: Vec<u32> = categorical
            .iter()
            .flat_map(|row| {
                row.iter().enumerate().map(|(a, v)| sorted[a].binary_search(v).expect("seen") as u32)
            })
            .collect::<Vec<_>>();
        // Initial prototypes: four rows of the data.
        let picks = [3usize, 40, 77, 121];
        let init_numeric: Vec<f64> =
            picks.iter().flat_map(|&i| [numeric[2 * i], numeric[2 * i + 1]]).collect();
        let init_codes: Vec<u32> = picks.iter().flat_map(|&i| [codes[2 * i], codes[2 * i + 1]]).collect();
        let gamma = 0.7;
        let fit = kprototypes_from(
            ArrayView2::from_shape((n, 2), &numeric).expect("n x 2"),
            ArrayView2::from_shape((n, 2), &codes).expect("n x 2"),
            ArrayView2::from_shape((4, 2), &init_numeric).expect("4 x 2"),
            ArrayView2::from_shape((4, 2), &init_codes).expect("4 x 2"),
            100,
            gamma,
        )
        .expect("valid input");
        ours.push((seed, fit));
        specs.push(json!({
                "numeric": json_rows(&numeric, 2),
                "categorical": categorical,
                "init_numeric": json_rows(&init_numeric, 2),
                "init_categorical": picks.iter().map(|&i| categorical[i].clone()).collect::<Vec<_>>(),
                "gamma": gamma,
                "max_iter": 100,
        }));
    }
    let answers = python("cluster_kmodes.py", &[], "kmodes", &specs);
    for ((seed, ours), theirs) in ours.iter().zip(&answers) {
        let cost = theirs["cost"].as_f64().expect("cost");
        assert!(relative(ours.cost, cost) < 1e-9, "seed {seed}: cost {} vs kmodes {cost}", ours.cost);
        assert_eq!(ours.labels, labels_of(&theirs["labels"]), "seed {seed}: labels differ from kmodes'");
        assert_eq!(ours.n_iter as u64, theirs["n_iter"].as_u64().expect("n_iter"), "seed {seed}: iterations");
    }
}
