//! Tests of the CLV models (`segmenta_ml::clv`) and of churn propensity (`segmenta_ml::churn`):
//! the CDNOW reproduction, the differential test against `lifetimes`, degenerate inputs,
//! properties, and the churn model on data with a known signal.

mod cdnow;
mod churn;
mod degenerate;
mod differential;
mod properties;

use std::collections::BTreeMap;
use std::path::PathBuf;

use segmenta_ml::clv::{CustomerSummary, TimeUnit, summarize};

/// The CDNOW sample's calibration end, 1997-09-30, inclusive.
pub(crate) const CDNOW_CALIBRATION_END: (i64, i64, i64) = (1997, 9, 30);

/// The fixture's path.
pub(crate) fn cdnow_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("test-data/clv/CDNOW_sample.txt")
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
pub(crate) fn day_number(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The CDNOW transactions by sample customer id: `(day number, amount)`, in file order.
pub(crate) fn cdnow_transactions() -> BTreeMap<u32, Vec<(i64, f64)>> {
    let path = cdnow_path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    let mut customers: BTreeMap<u32, Vec<(i64, f64)>> = BTreeMap::new();
    for (number, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        assert_eq!(fields.len(), 5, "line {} of the CDNOW fixture: {line:?}", number + 1);
        let customer: u32 = fields[1].parse().expect("customer id is a number");
        let date: i64 = fields[2].parse().expect("date is YYYYMMDD");
        let amount: f64 = fields[4].parse().expect("amount is a number");
        let day = day_number(date / 10_000, date / 100 % 100, date % 100);
        customers.entry(customer).or_default().push((day, amount));
    }
    customers
}

/// The CDNOW summaries as of the calibration end, by customer id, built with `summarize`.
pub(crate) fn cdnow_summaries(unit: TimeUnit) -> BTreeMap<u32, CustomerSummary> {
    let (y, m, d) = CDNOW_CALIBRATION_END;
    let as_of = day_number(y, m, d);
    cdnow_transactions()
        .into_iter()
        .map(|(id, days)| {
            let summary = summarize(&days, as_of, unit)
                .expect("every CDNOW customer first bought before the calibration end");
            (id, summary)
        })
        .collect()
}

/// Relative difference with a tiny absolute floor, for comparing model outputs.
pub(crate) fn relative_difference(got: f64, expected: f64) -> f64 {
    (got - expected).abs() / expected.abs().max(got.abs()).max(1e-300)
}

#[test]
fn day_numbers_match_the_calendar() {
    assert_eq!(day_number(1970, 1, 1), 0);
    assert_eq!(day_number(1997, 1, 1), 9862);
    assert_eq!(day_number(1997, 9, 30), 10134);
    assert_eq!(day_number(2000, 3, 1) - day_number(2000, 2, 28), 2);
}

/// A seeded simulator of the BG/NBD and Gamma-Gamma generative process, for tests that need
/// data with known parameters.
pub(crate) mod simulate {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use segmenta_ml::clv::CustomerSummary;

    /// Parameters of a simulated population.
    #[derive(Clone, Copy, Debug)]
    pub(crate) struct Population {
        pub r: f64,
        pub alpha: f64,
        pub a: f64,
        pub b: f64,
        pub p: f64,
        pub q: f64,
        pub gamma: f64,
        /// Customer ages T are drawn uniformly from this range.
        pub max_age: f64,
    }

    fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
        let u1: f64 = 1.0 - rng.random::<f64>();
        let u2: f64 = rng.random::<f64>();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Gamma(shape, scale 1) by Marsaglia & Tsang, boosted for shape < 1.
    fn gamma(rng: &mut ChaCha8Rng, shape: f64) -> f64 {
        if shape < 1.0 {
            let u: f64 = 1.0 - rng.random::<f64>();
            return gamma(rng, shape + 1.0) * u.powf(1.0 / shape);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let z = standard_normal(rng);
            let v = (1.0 + c * z).powi(3);
            if v <= 0.0 {
                continue;
            }
            let u: f64 = 1.0 - rng.random::<f64>();
            if u.ln() < 0.5 * z * z + d - d * v + d * v.ln() {
                return d * v;
            }
        }
    }

    /// `n` customers' summaries: purchase times from the BG/NBD process over an age T, and a
    /// mean spend over the repeat purchases from the Gamma-Gamma model.
    pub(crate) fn population(population: &Population, n: usize, seed: u64) -> Vec<CustomerSummary> {
        let Population { r, alpha, a, b, p, q, gamma: scale, max_age } = *population;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                let age = max_age * rng.random::<f64>();
                let rate = gamma(&mut rng, r) / alpha;
                let x1 = gamma(&mut rng, a);
                let dropout = x1 / (x1 + gamma(&mut rng, b));
                let nu = gamma(&mut rng, q) / scale;
                let (mut time, mut purchases, mut last) = (0.0, 0u32, 0.0);
                loop {
                    let u: f64 = 1.0 - rng.random::<f64>();
                    time += -u.ln() / rate;
                    if time > age {
                        break;
                    }
                    purchases += 1;
                    last = time;
                    if rng.random::<f64>() < dropout {
                        break;
                    }
                }
                let monetary = if purchases == 0 {
                    0.0
                } else {
                    let total: f64 = (0..purchases).map(|_| gamma(&mut rng, p) / nu).sum();
                    total / f64::from(purchases)
                };
                CustomerSummary::new(f64::from(purchases), last, age, monetary)
                    .expect("simulated summaries are valid")
            })
            .collect()
    }
}
