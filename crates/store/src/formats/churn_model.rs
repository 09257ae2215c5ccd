//! `churn_model.json` (format version 1): the churn model of a run with `[churn]` or of
//! `segmenta predict churn`: the training and holdout cutoffs, the holdout's AUC and
//! calibration, and every feature's standardisation and coefficient.
//!
//! `inactive`, `activity` and `warnings` were added within version 1: files without the keys
//! read as a churn-event model without warnings, and the keys are written only when they have
//! something to say, so earlier files keep their bytes.

use serde::{Deserialize, Serialize};

use super::{Document, FormatVersion, Warning};

/// `churn_model.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChurnModel {
    /// Always the current version, 1.
    pub format_version: FormatVersion<1>,
    /// The kind of model.
    pub model: ChurnModelKind,
    /// The instant scored (RFC 3339).
    pub as_of: String,
    /// What churned means: the churn event condition, or with `inactive` a sentence (`no event
    /// for 90d`, `no event matching `...` for 90d`).
    pub churned: String,
    /// Churn by inactivity: the period without activity (`90d`), which is also the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inactive: Option<String>,
    /// Churn by inactivity: the condition of an activity event (absent: every event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity: Option<String>,
    /// The churn window, as a window (`30d`).
    pub window: String,
    /// The L2 penalty of the fit.
    pub l2_penalty: f64,
    /// The training evaluation.
    pub train: ChurnTraining,
    /// The holdout evaluation and its quality.
    pub holdout: ChurnHoldout,
    /// Log-odds of churn at the training means.
    pub intercept: f64,
    /// The features, in training column order.
    pub features: Vec<ChurnModelFeature>,
    /// Entities scored (active at the as-of instant).
    pub scored: u64,
    /// Entities not scored (churned before, or without events).
    pub not_scored: u64,
    /// What the model warns about (a holdout too small to trust its AUC). The key is absent
    /// when there is nothing to warn about.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Warning>,
}

impl Document for ChurnModel {
    const FILE: &'static str = crate::files::CHURN_MODEL;
    const VERSION: u32 = 1;
}

/// The kind of churn model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChurnModelKind {
    /// A logistic regression on standardised features.
    LogisticRegression,
}

/// The training evaluation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChurnTraining {
    /// Its cutoff (RFC 3339).
    pub cutoff: String,
    /// Training rows.
    pub rows: u64,
    /// Rows labelled churned.
    pub churned: u64,
}

/// The holdout evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChurnHoldout {
    /// Its cutoff (RFC 3339).
    pub cutoff: String,
    /// Holdout rows.
    pub rows: u64,
    /// Rows labelled churned.
    pub churned: u64,
    /// ROC AUC.
    pub auc: f64,
    /// Brier score.
    pub brier: f64,
    /// Expected calibration error.
    pub expected_calibration_error: f64,
    /// The reliability table, by increasing predicted probability.
    pub calibration: Vec<CalibrationBin>,
}

/// One bin of the reliability table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBin {
    /// Rows in the bin.
    pub count: u64,
    /// Smallest predicted probability.
    pub min_predicted: f64,
    /// Largest predicted probability.
    pub max_predicted: f64,
    /// Mean predicted probability.
    pub mean_predicted: f64,
    /// Share of rows that churned.
    pub observed_rate: f64,
}

/// One feature of the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChurnModelFeature {
    /// The column name (`plan = pro` for a one-hot category).
    pub name: String,
    /// Used or why not.
    pub status: FeatureStatus,
    /// Coefficient of the standardised value (0 when not used).
    pub coefficient: f64,
    /// Mean of the non-missing training values (imputed for missing ones).
    pub mean: f64,
    /// Standard deviation of the non-missing training values (1 when not used).
    pub scale: f64,
    /// Training rows where the value was missing.
    pub missing: u64,
}

/// Whether a feature is in the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureStatus {
    /// Standardised and given a coefficient.
    Used,
    /// Left out: a single value in every non-missing training row.
    Constant,
    /// Left out: missing in every training row.
    AllMissing,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_kinds_are_snake_case() {
        let text = serde_json::to_string(&(FeatureStatus::AllMissing, ChurnModelKind::LogisticRegression))
            .expect("serializes");
        assert_eq!(text, r#"["all_missing","logistic_regression"]"#);
    }

    // Issue #11: the keys added within version 1 are written only when they say something.
    #[test]
    fn inactivity_and_warnings_are_written_only_when_present() {
        let fixture = include_str!("../../../../test-data/churn_model/v1.json");
        let mut model: ChurnModel = serde_json::from_str(fixture).expect("the fixture reads");
        let plain = serde_json::to_value(&model).expect("serializes");
        for key in ["inactive", "activity", "warnings"] {
            assert!(plain.get(key).is_none(), "{key}");
        }
        model.inactive = Some("90d".into());
        model.activity = Some("event_type = 'order'".into());
        model.warnings =
            vec![Warning { code: "churn_holdout_too_small".into(), message: "m".into(), hint: "h".into() }];
        let text = serde_json::to_string(&model).expect("serializes");
        let back: ChurnModel = serde_json::from_str(&text).expect("reads back");
        assert_eq!(back, model);
        let value: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(value["inactive"], "90d");
        assert_eq!(value["warnings"][0]["code"], "churn_holdout_too_small");
    }
}
