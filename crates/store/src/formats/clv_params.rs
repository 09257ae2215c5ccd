//! `clv_params.json` (format version 1): the fitted BG/NBD and Gamma-Gamma parameters of a run
//! with `[clv]` or of `segmenta clv`, the options they were fitted with, and the diamonds in
//! the rough. A run's `summary.json` embeds the same document under `clv`.

use serde::{Deserialize, Serialize};

use super::{Document, FormatVersion};

/// `clv_params.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClvParams {
    /// Always the current version, 1.
    pub format_version: FormatVersion<1>,
    /// The instant the models were fitted as of (RFC 3339).
    pub as_of: String,
    /// The purchase condition (a trait condition on events).
    pub purchase: String,
    /// The amount column of events.
    pub amount: String,
    /// The unit of recency, T and the horizon.
    pub time_unit: TimeUnit,
    /// The horizon of expected purchases, as a window (`90d`).
    pub horizon: String,
    /// Months of discounted CLV.
    pub months: u32,
    /// Monthly discount rate.
    pub discount_rate: f64,
    /// L2 penalty of the fits.
    pub penalizer: f64,
    /// The purchase-frequency model.
    pub bg_nbd: BgNbdParams,
    /// The spend model.
    pub gamma_gamma: GammaGammaParams,
    /// Entities with and without purchases.
    pub entities: ClvEntities,
    /// The diamonds-in-the-rough segment.
    pub diamonds_in_the_rough: DiamondsParams,
    /// The traits the model adds, in output order.
    pub traits: Vec<String>,
}

impl Document for ClvParams {
    const FILE: &'static str = crate::files::CLV_PARAMS;
    const VERSION: u32 = 1;
}

/// The unit of recency, T and the horizon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeUnit {
    /// Days.
    Day,
    /// Weeks.
    Week,
}

/// The fitted BG/NBD model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BgNbdParams {
    /// Shape of the purchase-rate Gamma.
    pub r: f64,
    /// Scale of the purchase-rate Gamma.
    pub alpha: f64,
    /// First shape of the dropout Beta.
    pub a: f64,
    /// Second shape of the dropout Beta.
    pub b: f64,
    /// Total log-likelihood at the fitted parameters, without the penalty.
    pub log_likelihood: f64,
    /// Optimiser iterations.
    pub iterations: u64,
    /// Whether the gradient criterion was met.
    pub converged: bool,
    /// Customers in the fit.
    pub customers: u64,
}

/// The fitted Gamma-Gamma model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GammaGammaParams {
    /// Shape of the spend Gamma.
    pub p: f64,
    /// Shape of the Gamma of the spend scale.
    pub q: f64,
    /// Scale of the Gamma of the spend scale.
    pub gamma: f64,
    /// Total log-likelihood of the customers used, without the penalty.
    pub log_likelihood: f64,
    /// Optimiser iterations.
    pub iterations: u64,
    /// Whether the gradient criterion was met.
    pub converged: bool,
    /// Customers used.
    pub customers: u64,
    /// Customers left out with a single purchase.
    pub excluded_one_time: u64,
    /// Repeat customers left out for a zero, negative or non-finite mean spend.
    pub excluded_unusable_monetary: u64,
    /// Mean spend per purchase in the population: `p * gamma / (q - 1)`.
    pub population_mean_spend: f64,
}

/// Entities with and without purchases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClvEntities {
    /// With at least one purchase (the BG/NBD customers).
    pub with_purchases: u64,
    /// Without any.
    pub without_purchases: u64,
}

/// The diamonds-in-the-rough segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiamondsParams {
    /// The segment's name.
    pub segment: String,
    /// Members are in the bottom share by current value...
    pub bottom_value_share: f64,
    /// ...and in the top share by predicted CLV.
    pub top_clv_share: f64,
    /// Members.
    pub members: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_units_are_lowercase_words() {
        assert_eq!(serde_json::to_string(&TimeUnit::Week).expect("serializes"), r#""week""#);
        assert_eq!(serde_json::from_str::<TimeUnit>(r#""day""#).expect("reads"), TimeUnit::Day);
        assert!(serde_json::from_str::<TimeUnit>(r#""month""#).is_err());
    }
}
