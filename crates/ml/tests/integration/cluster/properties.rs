//! Properties: every entity is assigned exactly once to a cluster below k, and the same seed
//! gives the same result.

use ndarray::ArrayView2;
use proptest::prelude::*;
use segmenta_ml::cluster::kmeans::{KMeansConfig, kmeans};
use segmenta_ml::cluster::{DiscoveryOptions, FeatureColumn, KChoice, discover};

fn matrix() -> impl Strategy<Value = (Vec<f64>, usize, usize)> {
    (2usize..40, 1usize..4)
        .prop_flat_map(|(n, d)| (proptest::collection::vec(-100.0f64..100.0, n * d), Just(n), Just(d)))
}

fn table() -> impl Strategy<Value = Vec<FeatureColumn>> {
    (3usize..30).prop_flat_map(|n| {
        (
            proptest::collection::vec(proptest::option::weighted(0.9, -5.0f64..50.0), n),
            proptest::collection::vec(proptest::option::weighted(0.9, 0.0f64..1000.0), n),
            proptest::collection::vec(
                proptest::option::weighted(0.9, prop::sample::select(vec!["a", "b", "c"])),
                n,
            ),
            any::<bool>(),
        )
            .prop_map(|(x, y, plan, with_plan)| {
                let mut columns = vec![
                    FeatureColumn::Numeric { name: "x".into(), values: x },
                    FeatureColumn::Numeric { name: "y".into(), values: y },
                ];
                if with_plan {
                    columns.push(FeatureColumn::Categorical {
                        name: "plan".into(),
                        values: plan.into_iter().map(|p| p.map(str::to_string)).collect(),
                    });
                }
                columns
            })
            .prop_filter("every feature has a value", |columns| {
                columns.iter().all(|c| (0..c.len()).any(|i| !c.is_missing(i)))
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn kmeans_assigns_every_row_once((values, n, d) in matrix(), k in 1usize..5, seed in 0u64..1000) {
        let k = k.min(n);
        let data = ArrayView2::from_shape((n, d), &values).expect("n x d");
        let config = KMeansConfig { k, n_init: 2, seed, ..Default::default() };
        let fit = kmeans(data, &config).expect("valid input");
        prop_assert_eq!(fit.labels.len(), n);
        prop_assert!(fit.labels.iter().all(|&l| (l as usize) < k));
        prop_assert!(fit.inertia.is_finite() && fit.inertia >= 0.0);
        prop_assert_eq!(&fit, &kmeans(data, &config).expect("valid input"));
    }

    #[test]
    fn discovery_assigns_every_entity_once(columns in table(), k in 1usize..4, seed in 0u64..1000) {
        let n = columns[0].len();
        let options = DiscoveryOptions {
            k: if k == 1 { KChoice::Auto { min: 2, max: 3 } } else { KChoice::Fixed(k.min(n)) },
            seed,
            n_init: 1,
            bootstrap_rounds: 2,
            ..Default::default()
        };
        let found = discover(&columns, &options).expect("valid input");
        prop_assert_eq!(found.labels.len(), n);
        prop_assert!(found.labels.iter().all(|&l| (l as usize) < found.k));
        prop_assert_eq!(found.clusters.iter().map(|c| c.size).sum::<usize>(), n);
        for cluster in &found.clusters {
            prop_assert_eq!(cluster.size, found.labels.iter().filter(|&&l| l == cluster.id).count());
            prop_assert!((0.0..=1.0).contains(&cluster.fidelity));
        }
        prop_assert_eq!(&found, &discover(&columns, &options).expect("valid input"));
    }
}
