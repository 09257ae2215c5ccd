//! Churn propensity: a regularised logistic regression (linfa-logistic) on standardised
//! features, its holdout evaluation (ROC AUC, calibration) and per-entity scores with their
//! top drivers.
//!
//! The engine builds the features as of a cutoff and the label "churned within the next
//! window" (the time-based split is the engine's), calls [`train`] on one period and
//! [`evaluate`] on a later one, then [`score`] on the features as of now. No I/O, no async.
//! `docs/predictive.md` documents the conventions next to the CLV ones.
//!
//! Why logistic regression: its drivers are exact (the log-odds is the intercept plus the sum
//! of the per-feature contributions `coefficient * standardised value`), its probabilities are
//! calibrated by construction on the training period, it trains in seconds on a million rows,
//! and linfa-logistic is already in the dependency tree. The Rust gradient-boosting crates
//! either wrap C++ (LightGBM, XGBoost) or are thinly maintained, and trees' drivers need SHAP.

mod metrics;

use std::sync::Arc;

use linfa::DatasetBase;
use linfa::prelude::Fit;
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, Array2};
use rayon::prelude::*;

pub use metrics::{Calibration, CalibrationBin, MIN_TRUSTED_CLASS, auc, auc_standard_error, calibration};

/// Errors of the churn model. All are user errors (bad input or data the model cannot learn
/// from) except [`Error::Fit`] and [`Error::NotConverged`], which report the optimiser.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Two inputs that must have matching lengths do not.
    #[error("{what} has {found} entries, expected {expected}")]
    ShapeMismatch {
        /// What has the wrong length.
        what: &'static str,
        /// The length required.
        expected: usize,
        /// The length given.
        found: usize,
    },
    /// Two feature columns share a name, or a name is empty.
    #[error("feature name {name:?} is empty or used twice")]
    BadFeatureName {
        /// The name.
        name: String,
    },
    /// A feature value is infinite (missing values are NaN, infinite ones are errors).
    #[error("feature {feature:?} is infinite at row {row}; hint: missing values are NaN, not infinity")]
    InfiniteValue {
        /// The column.
        feature: String,
        /// The row.
        row: usize,
    },
    /// A score or probability handed to a metric is not finite or not in range.
    #[error(
        "score at row {row} is {value}, expected a finite number (a probability in [0, 1] for calibration)"
    )]
    NonFiniteScore {
        /// The row.
        row: usize,
        /// The value.
        value: f64,
    },
    /// The labels contain one class only.
    #[error(
        "every label is the same (no {class} entity): the model cannot learn, nor AUC be \
         computed; hint: widen the churn window or move the cutoff"
    )]
    OneClass {
        /// The missing class: `churned` or `retained`.
        class: &'static str,
    },
    /// Too few rows.
    #[error("{found} rows, at least {needed} needed")]
    TooFewRows {
        /// Rows given.
        found: usize,
        /// The minimum.
        needed: usize,
    },
    /// Every feature is constant or missing in the training rows.
    #[error(
        "no usable feature: all {features} are constant or entirely missing in the training \
         rows; hint: check the feature traits as of the cutoff"
    )]
    NoUsableFeatures {
        /// Features given.
        features: usize,
    },
    /// A feature the model was trained on is absent from the rows to score.
    #[error("feature {name:?} of the model is missing from the rows to score")]
    MissingFeature {
        /// The feature.
        name: String,
    },
    /// An option is out of its domain.
    #[error("invalid option: {name} = {value} ({reason})")]
    InvalidOption {
        /// The option.
        name: &'static str,
        /// The value given.
        value: f64,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// linfa-logistic rejected the problem.
    #[error("logistic regression failed")]
    Fit(#[source] linfa_logistic::error::Error),
    /// The optimiser stopped before the gradient criterion was met.
    #[error(
        "logistic regression did not converge: mean gradient norm {gradient_norm:e} above \
         {tolerance:e} after at most {max_iterations} iterations; hint: raise max_iterations \
         or l2_penalty, or drop near-duplicate features"
    )]
    NotConverged {
        /// `|gradient| / rows` at the returned coefficients.
        gradient_norm: f64,
        /// The criterion.
        tolerance: f64,
        /// The iteration limit.
        max_iterations: u64,
    },
}

impl Error {
    /// A stable snake_case code for the error, for the engine's `ErrorCode`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::ShapeMismatch { .. } => "churn_shape_mismatch",
            Error::BadFeatureName { .. } => "churn_bad_feature_name",
            Error::InfiniteValue { .. } => "churn_infinite_value",
            Error::NonFiniteScore { .. } => "churn_non_finite_score",
            Error::OneClass { .. } => "churn_one_class",
            Error::TooFewRows { .. } => "churn_too_few_rows",
            Error::NoUsableFeatures { .. } => "churn_no_usable_features",
            Error::MissingFeature { .. } => "churn_missing_feature",
            Error::InvalidOption { .. } => "churn_invalid_option",
            Error::Fit(_) => "churn_fit_failed",
            Error::NotConverged { .. } => "churn_not_converged",
        }
    }
}

/// The result type of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Rows of entities by named numeric columns; `NaN` marks a missing value.
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureMatrix {
    names: Vec<Arc<str>>,
    rows: usize,
    /// Row-major.
    values: Vec<f64>,
}

impl FeatureMatrix {
    /// A matrix from column names and row-major values (`values.len() == rows * names.len()`).
    /// Names must be non-empty and distinct; values finite or NaN (missing).
    pub fn new(names: Vec<String>, rows: usize, values: Vec<f64>) -> Result<Self> {
        let mut seen = std::collections::HashSet::new();
        for name in &names {
            if name.is_empty() || !seen.insert(name.as_str()) {
                return Err(Error::BadFeatureName { name: name.clone() });
            }
        }
        if values.len() != rows * names.len() {
            return Err(Error::ShapeMismatch {
                what: "values",
                expected: rows * names.len(),
                found: values.len(),
            });
        }
        if let Some(at) = values.iter().position(|v| v.is_infinite()) {
            return Err(Error::InfiniteValue {
                feature: names[at % names.len()].clone(),
                row: at / names.len(),
            });
        }
        Ok(FeatureMatrix { names: names.into_iter().map(Arc::from).collect(), rows, values })
    }

    /// A matrix from named columns of optional values (`None` is missing), as the engine reads
    /// them from Arrow.
    pub fn from_columns(columns: Vec<(String, Vec<Option<f64>>)>) -> Result<Self> {
        let rows = columns.first().map_or(0, |c| c.1.len());
        if let Some((_, column)) = columns.iter().find(|(_, column)| column.len() != rows) {
            return Err(Error::ShapeMismatch { what: "column", expected: rows, found: column.len() });
        }
        let mut values = vec![f64::NAN; rows * columns.len()];
        for (j, (_, column)) in columns.iter().enumerate() {
            for (i, value) in column.iter().enumerate() {
                values[i * columns.len() + j] = value.unwrap_or(f64::NAN);
            }
        }
        FeatureMatrix::new(columns.into_iter().map(|c| c.0).collect(), rows, values)
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Column names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(|n| &**n)
    }

    /// The value at `row`, `column`; NaN when missing.
    pub fn value(&self, row: usize, column: usize) -> f64 {
        self.values[row * self.names.len() + column]
    }

    fn column_index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| &**n == name)
    }
}

/// Options of [`train`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainOptions {
    /// L2 penalty `alpha` on the coefficients of the standardised features (not the
    /// intercept), on the *summed* log-loss as linfa-logistic defines it: the objective is
    /// `sum of log-losses + alpha / 2 * |w|²`, scikit-learn's `C = 1 / alpha`. Default 1.
    pub l2_penalty: f64,
    /// L-BFGS iterations allowed. Default 1000.
    pub max_iterations: u64,
    /// Convergence criterion on `|gradient of the objective| / rows` (L2 norm). Default 1e-6.
    pub gradient_tolerance: f64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions { l2_penalty: 1.0, max_iterations: 1000, gradient_tolerance: 1e-6 }
    }
}

/// How a feature enters the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeatureStatus {
    /// Standardised and given a coefficient.
    Used,
    /// Left out: a single value in every non-missing training row (no standard deviation).
    Constant,
    /// Left out: missing in every training row.
    AllMissing,
}

/// One feature of a trained model.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelFeature {
    /// The column name.
    pub name: Arc<str>,
    /// Used or why not.
    pub status: FeatureStatus,
    /// Mean of the non-missing training values (also the value imputed for missing ones).
    pub mean: f64,
    /// Population standard deviation of the non-missing training values (1 when not used).
    pub scale: f64,
    /// Coefficient of the standardised value on the log-odds of churn (0 when not used).
    pub coefficient: f64,
    /// Training rows where the value was missing.
    pub missing: usize,
}

/// A trained churn model: standardisation, coefficients and the training summary.
#[derive(Clone, Debug, PartialEq)]
pub struct ChurnModel {
    /// The features, in training column order.
    pub features: Vec<ModelFeature>,
    /// Log-odds of churn for an entity at the training means.
    pub intercept: f64,
    /// Training rows.
    pub rows: usize,
    /// Training rows labelled churned.
    pub positives: usize,
    /// `|gradient| / rows` at the coefficients (see [`TrainOptions::gradient_tolerance`]).
    pub gradient_norm: f64,
}

/// One feature's push on an entity's churn log-odds.
#[derive(Clone, Debug, PartialEq)]
pub struct Driver {
    /// The feature.
    pub feature: Arc<str>,
    /// `coefficient * standardised value`: positive raises the churn risk.
    pub contribution: f64,
    /// The raw value (`None` when missing; a missing value contributes 0 and is never a
    /// driver).
    pub value: Option<f64>,
}

/// An entity's churn probability and its top drivers.
#[derive(Clone, Debug, PartialEq)]
pub struct ChurnScore {
    /// Probability of churning within the window.
    pub probability: f64,
    /// Up to `top_k` drivers by decreasing |contribution| (ties by feature order), zero
    /// contributions left out.
    pub drivers: Vec<Driver>,
}

/// Holdout evaluation of a model.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// ROC AUC (see [`auc`]).
    pub auc: f64,
    /// Reliability table, Brier score and expected calibration error (see [`calibration`]).
    pub calibration: Calibration,
    /// Holdout rows.
    pub rows: usize,
    /// Holdout rows labelled churned.
    pub positives: usize,
}

impl Evaluation {
    /// Holdout rows labelled retained.
    pub fn negatives(&self) -> usize {
        self.rows - self.positives
    }

    /// The standard error of the AUC ([`auc_standard_error`]).
    pub fn auc_standard_error(&self) -> f64 {
        auc_standard_error(self.auc, self.positives, self.negatives())
    }

    /// Whether both classes have at least [`MIN_TRUSTED_CLASS`] rows, so that the AUC is
    /// worth reading.
    pub fn auc_is_trusted(&self) -> bool {
        self.positives >= MIN_TRUSTED_CLASS && self.negatives() >= MIN_TRUSTED_CLASS
    }
}

/// Training needs at least this many rows.
const MIN_ROWS: usize = 10;

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 { 1.0 / (1.0 + (-z).exp()) } else { z.exp() / (1.0 + z.exp()) }
}

/// Trains a logistic regression of `labels` (`true` = churned) on `features`.
///
/// Each feature is standardised with its training mean and population standard deviation
/// (missing values ignored); a missing value is imputed with the mean, i.e. standardised to 0.
/// Constant and entirely missing features are left out (status in [`ModelFeature`]).
/// Errors: mismatched lengths, fewer than 10 rows, one class only, no usable feature, or an
/// optimiser that does not meet the gradient criterion.
pub fn train(features: &FeatureMatrix, labels: &[bool], options: &TrainOptions) -> Result<ChurnModel> {
    if !(options.l2_penalty.is_finite() && options.l2_penalty >= 0.0) {
        return Err(Error::InvalidOption {
            name: "l2_penalty",
            value: options.l2_penalty,
            reason: "must be finite and >= 0",
        });
    }
    if !(options.gradient_tolerance.is_finite() && options.gradient_tolerance > 0.0) {
        return Err(Error::InvalidOption {
            name: "gradient_tolerance",
            value: options.gradient_tolerance,
            reason: "must be finite and > 0",
        });
    }
    if labels.len() != features.rows {
        return Err(Error::ShapeMismatch { what: "labels", expected: features.rows, found: labels.len() });
    }
    if features.rows < MIN_ROWS {
        return Err(Error::TooFewRows { found: features.rows, needed: MIN_ROWS });
    }
    let positives = labels.iter().filter(|l| **l).count();
    if positives == 0 || positives == labels.len() {
        return Err(Error::OneClass { class: if positives == 0 { "churned" } else { "retained" } });
    }
    let n = features.rows;
    let width = features.names.len();
    let mut model_features: Vec<ModelFeature> = (0..width)
        .map(|j| {
            let present: Vec<f64> = (0..n).map(|i| features.value(i, j)).filter(|v| !v.is_nan()).collect();
            let missing = n - present.len();
            let name = features.names[j].clone();
            if present.is_empty() {
                return ModelFeature {
                    name,
                    status: FeatureStatus::AllMissing,
                    mean: 0.0,
                    scale: 1.0,
                    coefficient: 0.0,
                    missing,
                };
            }
            let mean = present.iter().sum::<f64>() / present.len() as f64;
            let constant = present.iter().all(|v| *v == present[0]);
            let variance = present.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / present.len() as f64;
            if constant || variance.sqrt() == 0.0 {
                return ModelFeature {
                    name,
                    status: FeatureStatus::Constant,
                    mean,
                    scale: 1.0,
                    coefficient: 0.0,
                    missing,
                };
            }
            ModelFeature {
                name,
                status: FeatureStatus::Used,
                mean,
                scale: variance.sqrt(),
                coefficient: 0.0,
                missing,
            }
        })
        .collect();
    let used: Vec<usize> = (0..width).filter(|&j| model_features[j].status == FeatureStatus::Used).collect();
    if used.is_empty() {
        return Err(Error::NoUsableFeatures { features: width });
    }
    let x = standardised(features, &model_features, &used, &(0..width).collect::<Vec<_>>());
    let y: Array1<bool> = labels.iter().copied().collect();
    let dataset = DatasetBase::new(x, y);
    let fitted = LogisticRegression::default()
        .alpha(options.l2_penalty)
        .max_iterations(options.max_iterations)
        .gradient_tolerance(options.gradient_tolerance * n as f64)
        .fit(&dataset)
        .map_err(Error::Fit)?;
    // linfa models the probability of its "positive" class, the more frequent label.
    let sign = if fitted.labels().pos.class { 1.0 } else { -1.0 };
    let coefficients: Vec<f64> = fitted.params().iter().map(|c| sign * c).collect();
    let intercept = sign * fitted.intercept();
    let gradient_norm =
        gradient_norm(dataset.records(), labels, &coefficients, intercept, options.l2_penalty) / n as f64;
    if gradient_norm.is_nan() || gradient_norm > options.gradient_tolerance {
        return Err(Error::NotConverged {
            gradient_norm,
            tolerance: options.gradient_tolerance,
            max_iterations: options.max_iterations,
        });
    }
    for (k, &j) in used.iter().enumerate() {
        model_features[j].coefficient = coefficients[k];
    }
    Ok(ChurnModel { features: model_features, intercept, rows: n, positives, gradient_norm })
}

/// The used features of `model_features`, standardised, read from `matrix` columns
/// `columns[j]` for model feature `j`.
fn standardised(
    matrix: &FeatureMatrix,
    model_features: &[ModelFeature],
    used: &[usize],
    columns: &[usize],
) -> Array2<f64> {
    Array2::from_shape_fn((matrix.rows, used.len()), |(i, k)| {
        let j = used[k];
        let value = matrix.value(i, columns[j]);
        if value.is_nan() { 0.0 } else { (value - model_features[j].mean) / model_features[j].scale }
    })
}

/// L2 norm of the gradient of `sum of log-losses + alpha / 2 |w|²` (intercept unpenalised).
fn gradient_norm(x: &Array2<f64>, labels: &[bool], w: &[f64], intercept: f64, alpha: f64) -> f64 {
    let w = Array1::from(w.to_vec());
    let residual: Array1<f64> = x
        .dot(&w)
        .iter()
        .zip(labels)
        .map(|(z, l)| sigmoid(z + intercept) - if *l { 1.0 } else { 0.0 })
        .collect();
    let gradient_w = x.t().dot(&residual) + &w * alpha;
    let gradient_b = residual.sum();
    (gradient_w.dot(&gradient_w) + gradient_b * gradient_b).sqrt()
}

impl ChurnModel {
    /// Names of the features the model reads, in training order (all of them, used or not).
    pub fn feature_names(&self) -> impl Iterator<Item = &str> {
        self.features.iter().map(|f| &*f.name)
    }

    /// For each model feature, its column in `matrix` (matched by name, any order; extra
    /// columns are ignored).
    fn columns(&self, matrix: &FeatureMatrix) -> Result<Vec<usize>> {
        self.features
            .iter()
            .map(|f| {
                matrix.column_index(&f.name).ok_or_else(|| Error::MissingFeature { name: f.name.to_string() })
            })
            .collect()
    }

    /// Churn probabilities of the rows of `features`.
    pub fn predict(&self, features: &FeatureMatrix) -> Result<Vec<f64>> {
        Ok(score(self, features, 0)?.into_iter().map(|s| s.probability).collect())
    }
}

/// Scores every row of `features`: the churn probability and the `top_k` drivers (see
/// [`ChurnScore`]). Columns are matched by name. Parallel over rows.
pub fn score(model: &ChurnModel, features: &FeatureMatrix, top_k: usize) -> Result<Vec<ChurnScore>> {
    let columns = model.columns(features)?;
    let used: Vec<usize> =
        (0..model.features.len()).filter(|&j| model.features[j].status == FeatureStatus::Used).collect();
    let scores = (0..features.rows)
        .into_par_iter()
        .with_min_len(1024)
        .map(|i| {
            let mut contributions: Vec<(usize, f64)> = Vec::with_capacity(used.len());
            let mut logit = model.intercept;
            for &j in &used {
                let f = &model.features[j];
                let value = features.value(i, columns[j]);
                let z = if value.is_nan() { 0.0 } else { (value - f.mean) / f.scale };
                let contribution = f.coefficient * z;
                logit += contribution;
                contributions.push((j, contribution));
            }
            let drivers = if top_k == 0 {
                Vec::new()
            } else {
                contributions.retain(|c| c.1 != 0.0);
                contributions.sort_by(|p, q| q.1.abs().total_cmp(&p.1.abs()).then(p.0.cmp(&q.0)));
                contributions
                    .iter()
                    .take(top_k)
                    .map(|&(j, contribution)| {
                        let value = features.value(i, columns[j]);
                        Driver {
                            feature: model.features[j].name.clone(),
                            contribution,
                            value: (!value.is_nan()).then_some(value),
                        }
                    })
                    .collect()
            };
            ChurnScore { probability: sigmoid(logit), drivers }
        })
        .collect();
    Ok(scores)
}

/// Evaluates `model` on a holdout: AUC and calibration in `bins` equal-count bins (10 for
/// deciles). Errors as [`auc`] and [`calibration`] do (a holdout with one class has no AUC).
pub fn evaluate(
    model: &ChurnModel,
    holdout: &FeatureMatrix,
    labels: &[bool],
    bins: usize,
) -> Result<Evaluation> {
    if labels.len() != holdout.rows {
        return Err(Error::ShapeMismatch { what: "labels", expected: holdout.rows, found: labels.len() });
    }
    let probabilities = model.predict(holdout)?;
    Ok(Evaluation {
        auc: auc(&probabilities, labels)?,
        calibration: calibration(&probabilities, labels, bins)?,
        rows: holdout.rows,
        positives: labels.iter().filter(|l| **l).count(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_matrices_reject_bad_shapes_and_names() {
        assert!(FeatureMatrix::new(vec!["a".into()], 2, vec![1.0]).is_err());
        assert!(FeatureMatrix::new(vec!["a".into(), "a".into()], 1, vec![1.0, 2.0]).is_err());
        assert!(FeatureMatrix::new(vec![String::new()], 1, vec![1.0]).is_err());
        let error = FeatureMatrix::new(vec!["a".into(), "b".into()], 2, vec![1.0, 2.0, 3.0, f64::INFINITY])
            .expect_err("infinite value");
        assert_eq!(
            error.to_string(),
            "feature \"b\" is infinite at row 1; hint: missing values are NaN, not infinity"
        );
        let m = FeatureMatrix::from_columns(vec![
            ("a".into(), vec![Some(1.0), None]),
            ("b".into(), vec![Some(3.0), Some(4.0)]),
        ])
        .expect("valid columns");
        assert_eq!(m.value(0, 1), 3.0);
        assert!(m.value(1, 0).is_nan());
        assert!(
            FeatureMatrix::from_columns(vec![("a".into(), vec![Some(1.0)]), ("b".into(), vec![])]).is_err()
        );
    }

    #[test]
    fn sigmoid_is_stable() {
        assert_eq!(sigmoid(-1000.0), 0.0);
        assert_eq!(sigmoid(1000.0), 1.0);
        assert!((sigmoid(0.0) - 0.5).abs() < 1e-15);
    }
}
