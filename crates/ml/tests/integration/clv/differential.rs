//! Differential test against `lifetimes` 0.11.3: `tests/differential/clv_lifetimes.py` prints
//! lifetimes' CDNOW summaries, fits and, for fixed parameters and a handful of customers, its
//! P(alive), expected purchases, expected spend and CLV, and its calibration / holdout check
//! of CDNOW; we compare ours.
//!
//! Needs `python3` with `lifetimes` (and pandas, numpy, scipy):
//! `pip install -r tests/differential/requirements.txt`. Reproduce by hand with
//! `python3 tests/differential/clv_lifetimes.py crates/ml/test-data/clv/CDNOW_sample.txt`.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use segmenta_ml::clv::{
    self, BgNbd, ClvModel, ClvOptions, CustomerSummary, FitOptions, GammaGamma, HoldoutCustomer,
    PredictOptions, TimeUnit,
};
use serde_json::Value;

use super::{
    CDNOW_CALIBRATION_END, cdnow_path, cdnow_summaries, cdnow_transactions, day_number, relative_difference,
};

const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// Predictions must agree to this relative difference.
const PREDICTION_TOLERANCE: f64 = 1e-6;

/// Fitted parameters must agree to this: both optimisers stop near, not at, the optimum.
const FIT_TOLERANCE: f64 = 1e-4;

/// Runs the script once for all tests of this module.
fn reference() -> &'static Value {
    static REFERENCE: OnceLock<Value> = OnceLock::new();
    REFERENCE.get_or_init(|| {
        let root = Path::new(WORKSPACE);
        let script = root.join("tests/differential/clv_lifetimes.py");
        assert!(script.is_file(), "missing {}", script.display());
        let probe = Command::new("python3").args(["-c", "import lifetimes"]).output();
        match probe {
            Err(error) => panic!(
                "the CLV differential test needs python3 ({error}); install Python 3 and then \
                 `pip install -r tests/differential/requirements.txt`"
            ),
            Ok(out) if !out.status.success() => panic!(
                "the CLV differential test needs the lifetimes Python package: run \
                 `pip install -r tests/differential/requirements.txt` from the workspace root\n{}",
                String::from_utf8_lossy(&out.stderr)
            ),
            Ok(_) => {}
        }
        let out = Command::new("python3")
            .arg(&script)
            .arg(cdnow_path())
            .current_dir(root)
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "{} failed (exit {:?})\n--- stderr ---\n{}",
            script.display(),
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("the script prints one JSON document")
    })
}

fn number(value: &Value) -> f64 {
    value.as_f64().unwrap_or_else(|| panic!("expected a number, got {value}"))
}

fn numbers(value: &Value) -> Vec<f64> {
    value.as_array().unwrap_or_else(|| panic!("expected an array, got {value}")).iter().map(number).collect()
}

fn check(what: &str, got: Option<f64>, expected: f64, tolerance: f64) {
    let got = got.unwrap_or_else(|| panic!("{what}: no value, lifetimes has {expected}"));
    let difference = relative_difference(got, expected);
    assert!(
        difference <= tolerance,
        "{what}: got {got}, lifetimes has {expected} (relative difference {difference:.2e})"
    );
}

#[test]
fn summaries_follow_lifetimes_convention() {
    let ours = cdnow_summaries(TimeUnit::Week);
    let theirs = reference()["summaries"].as_array().expect("summaries");
    assert_eq!(ours.len(), theirs.len());
    for row in theirs {
        let row = numbers(row);
        let id = row[0] as u32;
        let s = ours.get(&id).unwrap_or_else(|| panic!("customer {id} missing"));
        let got = [s.frequency(), s.recency(), s.t(), s.monetary()];
        for (k, name) in ["frequency", "recency", "T", "monetary"].iter().enumerate() {
            assert!(
                (got[k] - row[k + 1]).abs() <= 1e-9 * row[k + 1].abs().max(1.0),
                "customer {id} {name}: ours {} lifetimes {}",
                got[k],
                row[k + 1]
            );
        }
    }
}

#[test]
fn fits_agree_with_lifetimes() {
    let summaries: Vec<CustomerSummary> = cdnow_summaries(TimeUnit::Week).into_values().collect();
    for (key, penalizer) in [("0.0", 0.0), ("0.001", 0.001)] {
        let expected = &reference()["fits"][key];
        let options = FitOptions { penalizer, ..FitOptions::default() };
        let fit = clv::fit(&summaries, TimeUnit::Week, &options).expect("CDNOW fits");
        let bg = &expected["bg_nbd"];
        let m = fit.bg_nbd.model;
        for (name, got) in [("r", m.r()), ("alpha", m.alpha()), ("a", m.a()), ("b", m.b())] {
            check(&format!("bg_nbd {name} (penalizer {key})"), Some(got), number(&bg[name]), FIT_TOLERANCE);
        }
        if let Some(ll) = bg["log_likelihood"].as_f64() {
            check("bg_nbd log-likelihood", Some(fit.bg_nbd.log_likelihood), ll, 1e-7);
        }
        let gg = &expected["gamma_gamma"];
        let m = fit.gamma_gamma.model;
        for (name, got) in [("p", m.p()), ("q", m.q()), ("gamma", m.gamma())] {
            check(
                &format!("gamma_gamma {name} (penalizer {key})"),
                Some(got),
                number(&gg[name]),
                FIT_TOLERANCE,
            );
        }
        assert_eq!(fit.gamma_gamma.customers as f64, number(&gg["customers"]));
    }
}

#[test]
fn predictions_agree_with_lifetimes_formulas() {
    let cases = reference()["cases"].as_array().expect("cases");
    assert!(!cases.is_empty());
    for case in cases {
        let name = case["name"].as_str().expect("case name");
        let unit = match case["unit"].as_str() {
            Some("week") => TimeUnit::Week,
            Some("day") => TimeUnit::Day,
            other => panic!("unknown unit {other:?}"),
        };
        let bg = numbers(&case["bg"]);
        let gg = numbers(&case["gg"]);
        let model = ClvModel {
            bg_nbd: BgNbd::new(bg[0], bg[1], bg[2], bg[3]).expect("valid BG/NBD parameters"),
            gamma_gamma: GammaGamma::new(gg[0], gg[1], gg[2]).expect("valid Gamma-Gamma parameters"),
            unit,
        };
        let customers: Vec<CustomerSummary> = case["customers"]
            .as_array()
            .expect("customers")
            .iter()
            .map(|c| {
                let c = numbers(c);
                CustomerSummary::new(c[0], c[1], c[2], c[3]).expect("valid summary")
            })
            .collect();
        let p_alive = numbers(&case["p_alive"]);
        let spend = numbers(&case["expected_spend"]);
        for (i, s) in customers.iter().enumerate() {
            let what = format!("{name}, customer {i} {s:?}");
            check(
                &format!("{what}: p_alive"),
                Some(model.bg_nbd.p_alive(s)),
                p_alive[i],
                PREDICTION_TOLERANCE,
            );
            check(
                &format!("{what}: expected spend"),
                model.gamma_gamma.expected_spend(s),
                spend[i],
                PREDICTION_TOLERANCE,
            );
        }
        let horizons = numbers(&case["horizons"]);
        for (h, horizon) in horizons.iter().enumerate() {
            let expected = numbers(&case["expected_purchases"][h]);
            for (i, s) in customers.iter().enumerate() {
                check(
                    &format!("{name}, customer {i} {s:?}: expected purchases in {horizon}"),
                    model.bg_nbd.expected_purchases(s, *horizon),
                    expected[i],
                    PREDICTION_TOLERANCE,
                );
            }
        }
        for (k, option) in case["clv"].as_array().expect("clv options").iter().enumerate() {
            let option = numbers(option);
            let clv_options = ClvOptions::new(option[0] as u32, option[1]).expect("valid CLV options");
            let expected = numbers(&case["clv_values"][k]);
            // The batch path must agree with the single-customer path.
            let predict = PredictOptions::new(horizons[0], clv_options).expect("valid options");
            let batch: Vec<Option<CustomerSummary>> = customers.iter().copied().map(Some).collect();
            let predictions = clv::predict_all(&model, &batch, &predict);
            for (i, s) in customers.iter().enumerate() {
                let what = format!("{name}, customer {i} {s:?}: clv {option:?}");
                check(&what, clv::clv(&model, s, &clv_options), expected[i], PREDICTION_TOLERANCE);
                assert_eq!(predictions[i].clv, clv::clv(&model, s, &clv_options), "{what}");
            }
        }
    }
}

/// The largest relative difference of `got` from `expected`, checked against `tolerance`.
fn check_all(what: &str, got: &[f64], expected: &[f64], tolerance: f64) -> f64 {
    assert_eq!(got.len(), expected.len(), "{what}: lengths");
    let mut worst: f64 = 0.0;
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        check(&format!("{what} [{i}]"), Some(*g), *e, tolerance);
        worst = worst.max(relative_difference(*g, *e));
    }
    worst
}

// Issue #11: the holdout check (`segmenta clv --holdout 39w`) is lifetimes'
// `calibration_and_holdout_data` and `conditional_expected_number_of_purchases_up_to_time`.
#[test]
fn holdout_check_agrees_with_lifetimes_calibration_and_holdout_data() {
    let expected = &reference()["holdout"];
    let (y, m, d) = CDNOW_CALIBRATION_END;
    let (calibration_end, observation_end) = (day_number(y, m, d), day_number(1998, 6, 30));
    let ours: Vec<(u32, HoldoutCustomer)> = cdnow_transactions()
        .into_iter()
        .filter_map(|(id, days)| {
            Some((id, clv::calibration_and_holdout(&days, calibration_end, observation_end, TimeUnit::Week)?))
        })
        .collect();
    let theirs: Vec<Vec<f64>> =
        expected["customers"].as_array().expect("customers").iter().map(numbers).collect();
    assert_eq!(ours.len(), theirs.len());
    let duration = (observation_end - calibration_end) as f64 / 7.0;
    assert_eq!(duration, number(&expected["duration"]));

    // The calibration summaries and the holdout purchase days, customer by customer.
    for ((id, c), row) in ours.iter().zip(&theirs) {
        assert_eq!(f64::from(*id), row[0]);
        let s = c.calibration;
        for (name, got, want) in [
            ("frequency_cal", s.frequency(), row[1]),
            ("recency_cal", s.recency(), row[2]),
            ("T_cal", s.t(), row[3]),
        ] {
            assert!(
                (got - want).abs() <= 1e-9 * want.abs().max(1.0),
                "customer {id} {name}: {got} != {want}"
            );
        }
        assert_eq!(c.actual, row[4], "customer {id} frequency_holdout");
    }
    let customers: Vec<HoldoutCustomer> = ours.iter().map(|(_, c)| *c).collect();
    let their_predictions: Vec<f64> = theirs.iter().map(|row| row[5]).collect();

    // The predictions of lifetimes' fitted model, and the aggregates of the check.
    let p = &expected["params"];
    let model = BgNbd::new(number(&p["r"]), number(&p["alpha"]), number(&p["a"]), number(&p["b"]))
        .expect("lifetimes' parameters are valid");
    let check_with = |model: &BgNbd, label: &str, tolerance: f64| -> f64 {
        let result = clv::holdout_check(model, &customers, duration).expect("the check runs");
        let mut worst =
            check_all(&format!("{label}: predicted"), &result.predicted, &their_predictions, tolerance);
        for (name, got) in [
            ("total_predicted", result.total_predicted),
            ("total_actual", result.total_actual),
            ("mean_absolute_error", result.mean_absolute_error),
        ] {
            check(&format!("{label}: {name}"), Some(got), number(&expected[name]), tolerance);
            worst = worst.max(relative_difference(got, number(&expected[name])));
        }
        let table: Vec<Vec<f64>> =
            expected["by_frequency"].as_array().expect("by_frequency").iter().map(numbers).collect();
        assert_eq!(result.by_frequency.len(), table.len());
        for (group, row) in result.by_frequency.iter().zip(&table) {
            assert_eq!((f64::from(group.frequency_cal), group.customers as f64), (row[0], row[1]));
            check(&format!("{label}: mean actual at {}", row[0]), Some(group.mean_actual), row[2], 1e-12);
            check(
                &format!("{label}: mean predicted at {}", row[0]),
                Some(group.mean_predicted),
                row[3],
                tolerance,
            );
            worst = worst.max(relative_difference(group.mean_predicted, row[3]));
        }
        worst
    };
    let with_their_fit = check_with(&model, "lifetimes' fit", PREDICTION_TOLERANCE);

    // Our own fit on the calibration summaries. Both optimisers stop near, not at, the
    // optimum: at the default gradient tolerance (1e-6, what `segmenta clv` uses) ours stops
    // about 4e-6 (relative) from it in alpha, lifetimes' default (tol 1e-7) 2e-7, and the
    // predictions then differ by up to 3e-5 (measured; the largest on predictions below 0.01).
    // The script fits lifetimes to its optimum (tol 1e-10); fitted to a gradient of 1e-8, ours
    // lands on the same point, and the whole check agrees to 1e-6 (measured: 2.4e-7).
    let summaries: Vec<CustomerSummary> = customers.iter().map(|c| c.calibration).collect();
    let tight = FitOptions { gradient_tolerance: 1e-8, ..FitOptions::default() };
    let fit = BgNbd::fit(&summaries, &tight).expect("the calibration fits");
    assert!(fit.converged);
    let m = fit.model;
    for (name, got) in [("r", m.r()), ("alpha", m.alpha()), ("a", m.a()), ("b", m.b())] {
        check(&format!("calibration bg_nbd {name}"), Some(got), number(&p[name]), 1e-6);
    }
    let with_our_fit = check_with(&m, "our fit", PREDICTION_TOLERANCE);
    let default = clv::fit(&summaries, TimeUnit::Week, &FitOptions::default()).expect("the calibration fits");
    let with_default_fit =
        check_with(&default.bg_nbd.model, "our fit at the default tolerance", FIT_TOLERANCE);
    eprintln!(
        "holdout check against lifetimes, largest relative difference: {with_their_fit:.1e} with its \
         parameters, {with_our_fit:.1e} with our fit to a gradient of 1e-8, {with_default_fit:.1e} \
         with our fit at the default tolerance"
    );
}
