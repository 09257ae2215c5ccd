//! Properties of the CLV predictions over random parameters and histories: every output is
//! finite, P(alive) is a probability, expected purchases grow with the horizon, CLV is
//! non-negative, and the summaries of random purchase logs are valid. And the fit does not
//! depend on the number of threads.

use proptest::prelude::*;
use segmenta_ml::clv::{
    self, BgNbd, ClvModel, ClvOptions, CustomerSummary, FitOptions, GammaGamma, TimeUnit, clv, summarize,
};

use super::simulate::{Population, population};

fn model() -> impl Strategy<Value = ClvModel> {
    (
        (0.01f64..20.0, 0.1f64..500.0, 0.01f64..10.0, 0.01f64..50.0),
        (0.1f64..20.0, 1.01f64..20.0, 0.1f64..500.0),
        prop_oneof![Just(TimeUnit::Day), Just(TimeUnit::Week)],
    )
        .prop_map(|((r, alpha, a, b), (p, q, gamma), unit)| ClvModel {
            bg_nbd: BgNbd::new(r, alpha, a, b).expect("positive parameters"),
            gamma_gamma: GammaGamma::new(p, q, gamma).expect("q > 1"),
            unit,
        })
}

fn summary() -> impl Strategy<Value = CustomerSummary> {
    (0u32..200, 0.0f64..1.0, 0.0f64..400.0, 0.01f64..1000.0).prop_map(|(x, share, t, m)| {
        let x = f64::from(x);
        let recency = if x == 0.0 { 0.0 } else { share * t };
        CustomerSummary::new(x, recency, t, if x == 0.0 { 0.0 } else { m }).expect("valid summary")
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn predictions_are_finite_and_in_range(
        model in model(),
        s in summary(),
        horizon in 0.0f64..400.0,
        months in 0u32..36,
        rate in 0.0f64..0.2,
    ) {
        let p = model.bg_nbd.p_alive(&s);
        prop_assert!((0.0..=1.0).contains(&p), "p_alive {p}");
        let near = model.bg_nbd.expected_purchases(&s, horizon).expect("converges");
        let far = model.bg_nbd.expected_purchases(&s, horizon * 2.0 + 1.0).expect("converges");
        prop_assert!(near.is_finite() && near >= 0.0, "expected purchases {near}");
        prop_assert!(far >= near * (1.0 - 1e-12), "not monotone: {near} then {far}");
        let spend = model.gamma_gamma.expected_spend(&s).expect("positive monetary");
        prop_assert!(spend.is_finite() && spend > 0.0, "spend {spend}");
        let options = ClvOptions::new(months, rate).expect("valid options");
        let value = clv(&model, &s, &options).expect("defined");
        prop_assert!(value.is_finite() && value >= 0.0, "clv {value}");
    }

    #[test]
    fn summaries_of_purchase_logs_are_valid(
        log in proptest::collection::vec((0i64..1000, -50.0f64..500.0), 0..40),
        as_of in 0i64..1200,
        weeks in any::<bool>(),
    ) {
        let unit = if weeks { TimeUnit::Week } else { TimeUnit::Day };
        let before: Vec<i64> = log.iter().map(|p| p.0).filter(|d| *d <= as_of).collect();
        match summarize(&log, as_of, unit) {
            None => prop_assert!(before.is_empty()),
            Some(s) => {
                let mut days = before.clone();
                days.sort_unstable();
                days.dedup();
                prop_assert_eq!(s.frequency(), (days.len() - 1) as f64);
                let rebuilt = CustomerSummary::new(s.frequency(), s.recency(), s.t(), s.monetary());
                prop_assert_eq!(rebuilt, Ok(s));
            }
        }
    }
}

#[test]
fn fits_do_not_depend_on_the_thread_count() {
    // Large enough for the parallel likelihood (more than two chunks of patterns) and for the
    // warm start on a subsample.
    let truth =
        Population { r: 0.8, alpha: 20.0, a: 0.9, b: 3.0, p: 3.0, q: 4.0, gamma: 40.0, max_age: 400.0 };
    let data = population(&truth, 45_000, 8);
    let fit_with = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a thread pool")
            .install(|| clv::fit(&data, TimeUnit::Day, &FitOptions::default()).expect("fits"))
    };
    let one = fit_with(1);
    assert!(one.bg_nbd.patterns > 8_192, "{} patterns", one.bg_nbd.patterns);
    assert_eq!(one, fit_with(3));
}
