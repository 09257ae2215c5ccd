//! Degenerate inputs of the CLV models (issue #6, "bad data"): entities without purchases,
//! one-time buyers, zero or negative amounts, too few customers, no repeat purchases,
//! non-convergence and parameters running off. Each gets a documented value or a clear error,
//! never a silent NaN.

use segmenta_ml::clv::{
    self, BgNbd, ClvModel, ClvOptions, CustomerSummary, Error, FitOptions, GammaGamma, PredictOptions,
    TimeUnit, summarize,
};

use super::simulate::{Population, population};

const POPULATION: Population =
    Population { r: 0.8, alpha: 20.0, a: 0.9, b: 3.0, p: 3.0, q: 4.0, gamma: 40.0, max_age: 200.0 };

fn summary(x: f64, tx: f64, t: f64, m: f64) -> CustomerSummary {
    CustomerSummary::new(x, tx, t, m).expect("valid summary")
}

#[test]
fn recovers_simulated_parameters() {
    let data = population(&POPULATION, 20_000, 7);
    let fit = clv::fit(&data, TimeUnit::Day, &FitOptions::default()).expect("fits");
    let bg = fit.bg_nbd.model;
    let gg = fit.gamma_gamma.model;
    // Sampling error at n = 20,000 is a few percent; a, b and p, q, gamma are the least
    // precise.
    for (name, got, truth, tolerance) in [
        ("r", bg.r(), POPULATION.r, 0.1),
        ("alpha", bg.alpha(), POPULATION.alpha, 0.1),
        ("a", bg.a(), POPULATION.a, 0.25),
        ("b", bg.b(), POPULATION.b, 0.25),
        ("population mean spend", gg.population_mean(), 3.0 * 40.0 / 3.0, 0.1),
    ] {
        assert!((got - truth).abs() <= tolerance * truth, "{name}: fitted {got}, simulated with {truth}");
    }
}

#[test]
fn entities_without_purchases_get_no_predictions() {
    assert_eq!(summarize(&[], 100, TimeUnit::Day), None);
    assert_eq!(summarize(&[(101, 5.0)], 100, TimeUnit::Day), None, "purchases after as-of");
    let fit =
        clv::fit(&population(&POPULATION, 2_000, 1), TimeUnit::Day, &FitOptions::default()).expect("fits");
    let options = PredictOptions::new(90.0, ClvOptions::default()).expect("valid options");
    let out = clv::predict_all(&fit.model(), &[None], &options);
    assert_eq!(out[0], clv::ClvPrediction::default());
    assert!(out[0].p_alive.is_none() && out[0].clv.is_none());
}

#[test]
fn one_time_buyers_get_the_population_mean_spend() {
    let fit =
        clv::fit(&population(&POPULATION, 2_000, 2), TimeUnit::Day, &FitOptions::default()).expect("fits");
    let model = fit.model();
    let one_time = summary(0.0, 0.0, 50.0, 0.0);
    assert_eq!(model.gamma_gamma.expected_spend(&one_time), Some(model.gamma_gamma.population_mean()));
    assert_eq!(model.bg_nbd.p_alive(&one_time), 1.0);
    let clv_value = clv::clv(&model, &one_time, &ClvOptions::default()).expect("defined");
    assert!(clv_value.is_finite() && clv_value > 0.0);
    assert!(fit.gamma_gamma.excluded_one_time > 0);
}

#[test]
fn non_positive_amounts_leave_the_spend_model() {
    let mut data = population(&POPULATION, 2_000, 3);
    // A refund-only repeat customer and one whose amounts net to zero.
    data.push(summary(2.0, 10.0, 30.0, -4.0));
    data.push(summary(1.0, 3.0, 30.0, 0.0));
    data.push(summary(1.0, 3.0, 30.0, f64::NAN));
    let fit = clv::fit(&data, TimeUnit::Day, &FitOptions::default()).expect("fits");
    assert_eq!(fit.gamma_gamma.excluded_unusable_monetary, 3);
    let options = PredictOptions::new(90.0, ClvOptions::default()).expect("valid options");
    let tail: Vec<Option<CustomerSummary>> = data[data.len() - 3..].iter().copied().map(Some).collect();
    for prediction in clv::predict_all(&fit.model(), &tail, &options) {
        assert!(prediction.p_alive.is_some_and(f64::is_finite));
        assert!(prediction.expected_purchases.is_some_and(f64::is_finite));
        assert_eq!((prediction.expected_spend, prediction.clv), (None, None));
    }
}

#[test]
fn too_few_customers_is_an_error() {
    let data: Vec<CustomerSummary> = (0..5).map(|i| summary(1.0, 1.0, 2.0 + f64::from(i), 3.0)).collect();
    let error = BgNbd::fit(&data, &FitOptions::default()).expect_err("5 customers");
    assert!(matches!(error, Error::TooFewCustomers { model: "bg_nbd", found: 5, needed: 10, .. }));
    assert_eq!(error.code(), "clv_too_few_customers");
    let mut data = population(&POPULATION, 200, 4);
    data.retain(|s| s.frequency() == 0.0);
    data.push(summary(1.0, 1.0, 5.0, 10.0));
    let error = GammaGamma::fit(&data, &FitOptions::default()).expect_err("one repeat customer");
    assert!(matches!(error, Error::TooFewCustomers { model: "gamma_gamma", found: 1, .. }), "{error}");
    assert!(error.to_string().contains("hint:"), "{error}");
}

#[test]
fn all_zero_frequency_is_an_error() {
    let data: Vec<CustomerSummary> = (0..50).map(|i| summary(0.0, 0.0, f64::from(i), 0.0)).collect();
    let error = BgNbd::fit(&data, &FitOptions::default()).expect_err("no repeat purchases");
    assert_eq!(error, Error::NoRepeatPurchases { customers: 50 });
    assert!(error.to_string().contains("hint:"));
}

#[test]
fn non_convergence_is_an_error_naming_the_model() {
    let data = population(&POPULATION, 2_000, 5);
    let options = FitOptions { max_iterations: 2, ..FitOptions::default() };
    let error = BgNbd::fit(&data, &options).expect_err("two iterations are not enough");
    let Error::NotConverged { model, reason, hint, .. } = &error else {
        panic!("unexpected error {error}");
    };
    assert_eq!(*model, "bg_nbd");
    assert!(reason.contains("gradient"), "{reason}");
    assert!(hint.contains("max_iterations"), "{hint}");
    assert_eq!(error.code(), "clv_not_converged");

    let accepting = FitOptions { accept_unconverged: true, ..options };
    let fit = BgNbd::fit(&data, &accepting).expect("accepted unconverged");
    assert!(!fit.converged);
    assert!(fit.log_likelihood.is_finite());
}

#[test]
fn customers_who_never_drop_out_make_the_fit_diverge() {
    // Everyone buys steadily up to the as-of day: no sign of dropout, so the likelihood keeps
    // rising as the dropout probability goes to 0 (a -> 0 or b -> infinity). lifetimes' L2
    // penalty does not help here: it pulls parameters towards 0, not away from it.
    let data: Vec<CustomerSummary> = (0..300)
        .map(|i| {
            let x = f64::from(1 + i % 7);
            let t = 20.0 + f64::from(i % 13);
            summary(x, t, t, 10.0)
        })
        .collect();
    for penalizer in [0.0, 0.01] {
        let options = FitOptions { penalizer, ..FitOptions::default() };
        let error = BgNbd::fit(&data, &options).expect_err("diverges");
        assert!(matches!(error, Error::NotConverged { model: "bg_nbd", .. }), "{error}");
        assert!(error.to_string().contains("hint:"), "{error}");
    }
}

#[test]
fn identical_amounts_make_the_spend_fit_diverge_with_a_hint() {
    let data: Vec<CustomerSummary> =
        (0..100).map(|i| summary(f64::from(1 + i % 5), 10.0, 20.0, 25.0)).collect();
    let error = GammaGamma::fit(&data, &FitOptions::default()).expect_err("no spread in spend");
    assert!(matches!(error, Error::NotConverged { model: "gamma_gamma", .. }), "{error}");
    assert!(error.to_string().contains("identical"), "{error}");
}

#[test]
fn invalid_options_are_errors() {
    let data = population(&POPULATION, 100, 6);
    for options in [
        FitOptions { penalizer: -1.0, ..FitOptions::default() },
        FitOptions { penalizer: f64::NAN, ..FitOptions::default() },
        FitOptions { max_iterations: 0, ..FitOptions::default() },
        FitOptions { gradient_tolerance: 0.0, ..FitOptions::default() },
    ] {
        let error = BgNbd::fit(&data, &options).expect_err("invalid option");
        assert_eq!(error.code(), "clv_invalid_option", "{options:?}");
    }
}

#[test]
fn extreme_histories_give_finite_predictions() {
    let model = ClvModel {
        bg_nbd: BgNbd::new(0.243, 4.414, 0.793, 2.426).expect("valid"),
        gamma_gamma: GammaGamma::new(6.25, 3.74, 15.44).expect("valid"),
        unit: TimeUnit::Week,
    };
    let options = PredictOptions::new(520.0, ClvOptions::new(120, 0.0).expect("valid")).expect("valid");
    let histories = [
        summary(0.0, 0.0, 0.0, 0.0),
        summary(500.0, 1000.0, 1000.0, 1e6),
        summary(1.0, 0.0, 5000.0, 1e-9),
        summary(1e6, 1.0, 1.0, 3.0),
    ];
    let batch: Vec<Option<CustomerSummary>> = histories.iter().copied().map(Some).collect();
    for (s, prediction) in histories.iter().zip(clv::predict_all(&model, &batch, &options)) {
        for value in
            [prediction.p_alive, prediction.expected_purchases, prediction.expected_spend, prediction.clv]
        {
            let value = value.unwrap_or_else(|| panic!("{s:?}: missing prediction {prediction:?}"));
            assert!(value.is_finite() && value >= 0.0, "{s:?}: {prediction:?}");
        }
    }
}
