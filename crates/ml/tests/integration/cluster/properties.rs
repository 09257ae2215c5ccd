//! Properties: every entity is assigned exactly once to a cluster below k, the same seed gives
//! the same result, and a rule's threshold is the shortest text that splits its neighbours.

use ndarray::ArrayView2;
use proptest::prelude::*;
use segmenta_ml::cluster::kmeans::{KMeansConfig, kmeans};
use segmenta_ml::cluster::rules::{format_number, significant_digits, split_threshold};
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

/// A value as data holds them: integers, decimals, sums of prices (with their binary noise),
/// arbitrary floats, magnitudes from 1e-8 to 1e12, fractions.
fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        (-1000i32..=1000).prop_map(f64::from),
        (-100_000i32..=100_000, 0i32..=4).prop_map(|(m, p)| f64::from(m) / 10f64.powi(p)),
        (proptest::collection::vec(0u32..10_000, 2..=4), any::<bool>()).prop_map(|(cents, negative)| {
            let sum: f64 = cents.iter().map(|&c| f64::from(c) / 100.0).sum();
            if negative { -sum } else { sum }
        }),
        -1e6f64..1e6,
        (-8.0f64..12.0, any::<bool>()).prop_map(|(e, negative)| {
            let magnitude = 10f64.powf(e);
            if negative { -magnitude } else { magnitude }
        }),
        (-50i32..=50, prop::sample::select(vec![3.0, 7.0, 9.0, 11.0])).prop_map(|(m, d)| f64::from(m) / d),
    ]
}

/// Neighbouring values `low < high`: a value and one a few floats, a decimal step, a relative
/// step or any value away, or 0.
fn neighbours() -> impl Strategy<Value = (f64, f64)> {
    prop_oneof![
        (value(), 1usize..3000).prop_map(|(a, n)| (a, (0..n).fold(a, |x, _| x.next_up()))),
        (value(), 1i32..300, 0i32..=4).prop_map(|(a, m, p)| (a, a + f64::from(m) / 10f64.powi(p))),
        (value(), -14.0f64..1.0).prop_map(|(a, e)| (a, a + a.abs() * 10f64.powf(e) + 1e-300)),
        (value(), value()),
        value().prop_map(|a| (a, 0.0)),
    ]
    .prop_map(|(a, b)| if a <= b { (a, b) } else { (b, a) })
    .prop_filter("two different values", |(a, b)| a < b)
}

/// The smallest `f64` read from a decimal of `digits` significant digits that is at least
/// `x > 0`, by Rust's exact decimal formatting (for `digits <= 15` two such decimals are more
/// than a float apart, so the rounding is off by at most one unit).
fn ceil_decimal(x: f64, digits: usize) -> f64 {
    let text = format!("{:.*e}", digits - 1, x);
    let (mantissa, exponent) = text.split_once('e').expect("an exponent");
    let m: i64 = mantissa.replace('.', "").parse().expect("digits");
    let exponent = exponent.parse::<i32>().expect("an exponent") - (digits as i32 - 1);
    (m - 1..=m + 1)
        .map(|m| format!("{m}e{exponent}").parse::<f64>().expect("a number"))
        .find(|&v| v >= x)
        .expect("rounding to nearest is off by less than one unit")
}

/// The length and significant digits of the shortest text (then fewest digits) of any `t` with
/// `low <= t < high`, found without `split_threshold`: the text of every `f64` of a narrow
/// interval; in a wide one, 0, or per decade the smallest decimal of each number of significant
/// digits up to 15 at or above the decade's start (the texts of one sign, decade and digit
/// count have one length, and an interval without a 15-digit decimal is narrow).
fn shortest_text(low: f64, high: f64) -> (usize, usize) {
    let length = |t: f64| {
        let text = format_number(t);
        (text.len(), significant_digits(&text))
    };
    let mut best = (usize::MAX, usize::MAX);
    let mut t = low;
    for _ in 0..4096 {
        if t >= high {
            return best;
        }
        best = best.min(length(t));
        t = t.next_up();
    }
    if low <= 0.0 && 0.0 < high {
        return (1, 0);
    }
    // Magnitudes in [from, to) for a positive interval, (from, to] for a negative one.
    let negative = high <= 0.0;
    let (from, to) = if negative { (-high, -low) } else { (low, high) };
    let inside = |c: f64| if negative { c <= to } else { c < to };
    let start = if negative { from.next_up() } else { from };
    let mut starts = vec![start];
    for j in (start.log10().floor() as i32)..=(to.log10().ceil() as i32) {
        let power: f64 = format!("1e{j}").parse().expect("a power of ten");
        if power > start && inside(power) {
            starts.push(power);
        }
    }
    for start in starts {
        for digits in 1..=15 {
            let c = ceil_decimal(start, digits);
            if inside(c) {
                best = best.min(length(if negative { -c } else { c }));
            }
        }
    }
    best
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn thresholds_are_the_shortest_text_between_neighbours((low, high) in neighbours()) {
        let t = split_threshold(low, high);
        // `x <= t` sends `low` left and `high` right.
        prop_assert!((low..high).contains(&t), "{low:?} | {high:?}: {t:?}");
        let text = format_number(t);
        prop_assert_eq!(text.parse::<f64>().ok(), Some(t), "{} reads back as another number", text);
        // No number between them has a shorter text, nor one as short with fewer digits.
        let found = (text.len(), significant_digits(&text));
        prop_assert_eq!(found, shortest_text(low, high), "{:?} | {:?}: {}", low, high, text);
    }
}
