//! `holdout.json` (format version 1): the holdout check of `segmenta clv --holdout`: the CLV
//! models fitted on the purchases before the calibration end (as of the as-of instant minus the
//! holdout), their predicted repeat purchases in the holdout against the actual ones, in total
//! and by number of calibration repeat purchases (the table of lifetimes'
//! `plot_calibration_purchases_vs_holdout_purchases`). Per-customer figures are in
//! `holdout.parquet` next to it.

use serde::{Deserialize, Serialize};

use super::{ClvParams, Document, FormatVersion, TimeUnit};

/// `holdout.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClvHoldout {
    /// Always the current version, 1.
    pub format_version: FormatVersion<1>,
    /// The end of the holdout: the command's as-of instant (RFC 3339).
    pub as_of: String,
    /// The end of the calibration period, `as_of` minus the holdout (RFC 3339): purchases
    /// before it are the calibration, purchases from it to `as_of` the holdout.
    pub calibration_end: String,
    /// The holdout, as a window (`39w`).
    pub holdout: String,
    /// The holdout's length in the time unit (`duration_holdout`).
    pub duration: f64,
    /// The unit of `duration` and of the calibration summaries.
    pub time_unit: TimeUnit,
    /// Customers checked: the entities with a purchase before the calibration end.
    pub customers: u64,
    /// Sum of the predicted holdout repeat purchases.
    pub total_predicted: f64,
    /// Sum of the actual holdout purchase days.
    pub total_actual: f64,
    /// Mean over the customers of |predicted - actual|.
    pub mean_absolute_error: f64,
    /// By calibration repeat purchases, ascending.
    pub by_frequency: Vec<HoldoutGroup>,
    /// The models fitted on the calibration period (the same document as `clv_params.json`,
    /// as of the calibration end).
    pub calibration: ClvParams,
}

impl Document for ClvHoldout {
    const FILE: &'static str = crate::files::CLV_HOLDOUT;
    const VERSION: u32 = 1;
}

/// The customers with one number of calibration repeat purchases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldoutGroup {
    /// Calibration repeat purchases.
    pub frequency_cal: u64,
    /// Customers with that many.
    pub customers: u64,
    /// Their mean actual holdout purchases.
    pub mean_actual: f64,
    /// Their mean predicted holdout purchases.
    pub mean_predicted: f64,
}
