//! Churn propensity (issue #6): on generated data where churn depends on logins and support
//! tickets with known coefficients, the model's holdout AUC is close to the Bayes-optimal AUC
//! (that of the true probabilities), it is calibrated, and its top driver is the strongest true
//! feature. Degenerate inputs give clear errors or the documented handling.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use segmenta_ml::churn::{
    self, Error, FeatureMatrix, FeatureStatus, TrainOptions, auc, calibration, evaluate, score, train,
};

const NAMES: [&str; 5] = ["logins", "tickets", "tenure_months", "noise", "plan_constant"];

/// True log-odds of churn: logins matter most (per standard deviation), then tickets, then
/// tenure; noise and the constant do not.
fn true_logit(logins: f64, tickets: f64, tenure: f64) -> f64 {
    0.5 - 0.12 * logins + 0.8 * tickets - 0.02 * tenure
}

struct Generated {
    features: FeatureMatrix,
    labels: Vec<bool>,
    probabilities: Vec<f64>,
}

fn generate(rows: usize, seed: u64) -> Generated {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut values = Vec::with_capacity(rows * NAMES.len());
    let mut labels = Vec::with_capacity(rows);
    let mut probabilities = Vec::with_capacity(rows);
    for _ in 0..rows {
        let logins = f64::from(rng.random_range(0u32..=40));
        let mut tickets = 0.0;
        while tickets < 8.0 && rng.random::<f64>() < 0.45 {
            tickets += 1.0;
        }
        let tenure = f64::from(rng.random_range(1u32..=60));
        let u1: f64 = 1.0 - rng.random::<f64>();
        let noise = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * rng.random::<f64>()).cos();
        let probability = 1.0 / (1.0 + (-true_logit(logins, tickets, tenure)).exp());
        // Tenure is missing for one row in ten (the model imputes the mean).
        let tenure_seen = if rng.random::<f64>() < 0.1 { f64::NAN } else { tenure };
        values.extend([logins, tickets, tenure_seen, noise, 3.0]);
        labels.push(rng.random::<f64>() < probability);
        probabilities.push(probability);
    }
    let names = NAMES.iter().map(|n| n.to_string()).collect();
    Generated {
        features: FeatureMatrix::new(names, rows, values).expect("valid matrix"),
        labels,
        probabilities,
    }
}

#[test]
fn recovers_a_known_signal_issue_6() {
    let training = generate(20_000, 11);
    let holdout = generate(10_000, 12);
    let model = train(&training.features, &training.labels, &TrainOptions::default()).expect("trains");

    let statuses: Vec<FeatureStatus> = model.features.iter().map(|f| f.status).collect();
    assert_eq!(statuses[4], FeatureStatus::Constant);
    assert!(statuses[..4].iter().all(|s| *s == FeatureStatus::Used));
    assert!(model.features[2].missing > 1_500 && model.features[2].missing < 2_500);

    // Coefficients are per standard deviation: logins is the strongest, with the right signs.
    let coefficient =
        |name: &str| model.features.iter().find(|f| &*f.name == name).expect("feature present").coefficient;
    assert!(
        coefficient("logins") < 0.0 && coefficient("tickets") > 0.0 && coefficient("tenure_months") < 0.0
    );
    let strongest = model
        .features
        .iter()
        .max_by(|p, q| p.coefficient.abs().total_cmp(&q.coefficient.abs()))
        .expect("features");
    assert_eq!(&*strongest.name, "logins");
    assert!(coefficient("noise").abs() < 0.05, "noise coefficient {}", coefficient("noise"));
    // Back on the raw scale the logins coefficient is close to the truth (-0.12 per login).
    let logins = &model.features[0];
    assert!((logins.coefficient / logins.scale + 0.12).abs() < 0.01, "{logins:?}");

    let evaluation = evaluate(&model, &holdout.features, &holdout.labels, 10).expect("evaluates");
    let bayes_auc = auc(&holdout.probabilities, &holdout.labels).expect("two classes");
    assert!(
        evaluation.auc > bayes_auc - 0.01 && evaluation.auc <= bayes_auc + 0.01,
        "model AUC {} vs Bayes-optimal {bayes_auc}",
        evaluation.auc
    );
    let bayes = calibration(&holdout.probabilities, &holdout.labels, 10).expect("valid");
    assert!(
        evaluation.calibration.brier < bayes.brier + 0.005,
        "Brier {} vs {}",
        evaluation.calibration.brier,
        bayes.brier
    );
    assert!(evaluation.calibration.expected_calibration_error < 0.03, "{:?}", evaluation.calibration);
    assert_eq!(evaluation.calibration.bins.len(), 10);
    assert!(evaluation.calibration.bins.iter().all(|b| b.count == 1_000));

    // The drivers of each row add up, with the intercept, to its log-odds.
    let scores = score(&model, &holdout.features, NAMES.len()).expect("scores");
    for (row, s) in scores.iter().enumerate().take(200) {
        let logit = model.intercept + s.drivers.iter().map(|d| d.contribution).sum::<f64>();
        let probability = 1.0 / (1.0 + (-logit).exp());
        assert!((probability - s.probability).abs() < 1e-12, "row {row}: {s:?}");
        assert!(s.drivers.windows(2).all(|w| w[0].contribution.abs() >= w[1].contribution.abs()));
        assert!(s.drivers.iter().all(|d| &*d.feature != "plan_constant"));
        if holdout.features.value(row, 2).is_nan() {
            assert!(s.drivers.iter().all(|d| &*d.feature != "tenure_months"), "missing is no driver");
        }
    }
    // Row by row, logins is the most frequent top driver.
    let top_logins =
        scores.iter().filter(|s| s.drivers.first().is_some_and(|d| &*d.feature == "logins")).count();
    assert!(top_logins * 2 > scores.len(), "logins is the top driver of {top_logins} rows only");
}

#[test]
fn scoring_matches_columns_by_name() {
    let training = generate(2_000, 21);
    let model = train(&training.features, &training.labels, &TrainOptions::default()).expect("trains");
    let rows = 50;
    let reordered_names: Vec<String> =
        ["extra", "noise", "tenure_months", "tickets", "logins", "plan_constant"]
            .iter()
            .map(|n| n.to_string())
            .collect();
    let mut values = Vec::new();
    for i in 0..rows {
        let get = |j: usize| training.features.value(i, j);
        values.extend([99.0, get(3), get(2), get(1), get(0), get(4)]);
    }
    let reordered = FeatureMatrix::new(reordered_names, rows, values).expect("valid matrix");
    let expected = model.predict(&training.features).expect("predicts");
    let got = model.predict(&reordered).expect("predicts");
    for i in 0..rows {
        assert!((expected[i] - got[i]).abs() < 1e-15);
    }
    let without_tickets = FeatureMatrix::new(vec!["logins".into()], 1, vec![3.0]).expect("valid matrix");
    let error = score(&model, &without_tickets, 3).expect_err("tickets missing");
    assert!(matches!(error, Error::MissingFeature { .. }), "{error}");
}

#[test]
fn degenerate_training_data_gives_clear_errors() {
    let data = generate(500, 31);
    let options = TrainOptions::default();

    let all_churned = vec![true; 500];
    let error = train(&data.features, &all_churned, &options).expect_err("one class");
    assert!(matches!(error, Error::OneClass { class: "retained" }), "{error}");
    assert!(error.to_string().contains("hint:"));
    assert_eq!(error.code(), "churn_one_class");

    let error = train(&data.features, &data.labels[..10], &options).expect_err("labels too short");
    assert!(matches!(error, Error::ShapeMismatch { .. }), "{error}");

    let tiny = FeatureMatrix::new(vec!["a".into()], 3, vec![1.0, 2.0, 3.0]).expect("valid matrix");
    let error = train(&tiny, &[true, false, true], &options).expect_err("three rows");
    assert!(matches!(error, Error::TooFewRows { found: 3, .. }), "{error}");

    let flat = FeatureMatrix::new(
        vec!["constant".into(), "missing".into()],
        20,
        (0..20).flat_map(|_| [1.0, f64::NAN]).collect(),
    )
    .expect("valid matrix");
    let labels: Vec<bool> = (0..20).map(|i| i % 2 == 0).collect();
    let error = train(&flat, &labels, &options).expect_err("nothing to learn from");
    assert!(matches!(error, Error::NoUsableFeatures { features: 2 }), "{error}");

    let bad = TrainOptions { l2_penalty: -1.0, ..options };
    assert_eq!(
        train(&data.features, &data.labels, &bad).expect_err("bad option").code(),
        "churn_invalid_option"
    );

    let starved = TrainOptions { max_iterations: 1, ..options };
    let error = train(&data.features, &data.labels, &starved).expect_err("one iteration");
    assert!(matches!(error, Error::NotConverged { .. }), "{error}");
}

#[test]
fn an_entirely_missing_feature_is_left_out() {
    let data = generate(1_000, 41);
    let mut columns: Vec<(String, Vec<Option<f64>>)> = NAMES
        .iter()
        .enumerate()
        .map(|(j, name)| {
            let column = (0..data.features.rows())
                .map(|i| Some(data.features.value(i, j)).filter(|v| !v.is_nan()))
                .collect();
            (name.to_string(), column)
        })
        .collect();
    columns.push(("never_recorded".into(), vec![None; data.features.rows()]));
    let features = FeatureMatrix::from_columns(columns).expect("valid columns");
    let model = churn::train(&features, &data.labels, &TrainOptions::default()).expect("trains");
    let last = model.features.last().expect("features");
    assert_eq!((last.status, last.coefficient, last.missing), (FeatureStatus::AllMissing, 0.0, 1_000));
}
