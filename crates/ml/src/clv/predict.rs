//! Discounted CLV in `lifetimes`' convention and the per-entity batch of predictions, in
//! parallel.

use rayon::prelude::*;

use super::{ClvModel, CustomerSummary, Error, Result};

/// How CLV is summed: over `months` monthly steps with a monthly `discount_rate`, exactly as
/// `lifetimes`' `customer_lifetime_value(..., time=months, discount_rate=..., freq=...)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClvOptions {
    months: u32,
    discount_rate: f64,
}

impl ClvOptions {
    /// Options with `months` in `0..=1200` (0 gives a CLV of 0) and a monthly
    /// `discount_rate` that is finite and > -1 (0 for no discounting).
    pub fn new(months: u32, discount_rate: f64) -> Result<Self> {
        if months > 1200 {
            return Err(Error::InvalidOption {
                name: "months",
                value: f64::from(months),
                reason: "must be <= 1200",
            });
        }
        if !(discount_rate.is_finite() && discount_rate > -1.0) {
            return Err(Error::InvalidOption {
                name: "discount_rate",
                value: discount_rate,
                reason: "must be finite and > -1",
            });
        }
        Ok(ClvOptions { months, discount_rate })
    }

    /// Monthly steps summed.
    pub fn months(&self) -> u32 {
        self.months
    }

    /// Discount rate per month.
    pub fn discount_rate(&self) -> f64 {
        self.discount_rate
    }
}

impl Default for ClvOptions {
    /// `lifetimes`' defaults: 12 months at 1% a month.
    fn default() -> Self {
        ClvOptions { months: 12, discount_rate: 0.01 }
    }
}

/// What [`predict_all`] computes for each entity.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PredictOptions {
    horizon: f64,
    clv: ClvOptions,
}

impl PredictOptions {
    /// Expected purchases over `horizon` (in the model's time unit, finite and >= 0; use
    /// [`super::TimeUnit::from_days`] for a horizon in days) and CLV as `clv` says.
    pub fn new(horizon: f64, clv: ClvOptions) -> Result<Self> {
        if !(horizon.is_finite() && horizon >= 0.0) {
            return Err(Error::InvalidOption {
                name: "horizon",
                value: horizon,
                reason: "must be finite and >= 0",
            });
        }
        Ok(PredictOptions { horizon, clv })
    }

    /// The horizon of `expected_purchases`, in the model's time unit.
    pub fn horizon(&self) -> f64 {
        self.horizon
    }

    /// The CLV options.
    pub fn clv(&self) -> ClvOptions {
        self.clv
    }
}

/// One entity's predictions. Every value is finite when present; `None` means "not defined
/// for this entity" (see each field).
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct ClvPrediction {
    /// Probability of being alive at the as-of day; `None` only without a summary (no
    /// purchase on or before the as-of day).
    pub p_alive: Option<f64>,
    /// Expected repeat purchases within the horizon; `None` without a summary.
    pub expected_purchases: Option<f64>,
    /// Expected spend per future purchase; `None` without a summary or when a repeat
    /// customer's `monetary` is zero, negative or not finite.
    pub expected_spend: Option<f64>,
    /// Discounted CLV; `None` when `expected_spend` is.
    pub clv: Option<f64>,
}

/// Discounted customer lifetime value, `lifetimes`' convention: with `f` =
/// [`super::TimeUnit::units_per_month`] and `E(t)` = [`super::BgNbd::expected_purchases`],
/// `sum_{i=1..months} spend * (E(i f) - E((i-1) f)) / (1 + discount_rate)^i`, where `spend` is
/// [`super::GammaGamma::expected_spend`]. `None` when the expected spend is `None`.
pub fn clv(model: &ClvModel, summary: &CustomerSummary, options: &ClvOptions) -> Option<f64> {
    let spend = model.gamma_gamma.expected_spend(summary)?;
    let p_alive = model.bg_nbd.p_alive(summary);
    let step = model.unit.units_per_month();
    let mut previous = 0.0;
    let mut total = 0.0;
    for month in 1..=options.months {
        let horizon = f64::from(month) * step;
        let cumulative = model.bg_nbd.expected_purchases_if_alive(summary, horizon)? * p_alive;
        total += spend * (cumulative - previous) / (1.0 + options.discount_rate).powf(horizon / step);
        previous = cumulative;
    }
    total.is_finite().then_some(total)
}

fn predict_one(model: &ClvModel, summary: &CustomerSummary, options: &PredictOptions) -> ClvPrediction {
    let expected_spend = model.gamma_gamma.expected_spend(summary);
    ClvPrediction {
        p_alive: Some(model.bg_nbd.p_alive(summary)),
        expected_purchases: model.bg_nbd.expected_purchases(summary, options.horizon),
        expected_spend,
        clv: expected_spend.and_then(|_| clv(model, summary, &options.clv)),
    }
}

/// Predictions for every entity, in the order given, computed in parallel (rayon). An entity
/// without a summary (`None`: no purchase on or before the as-of day) gets all-`None`
/// predictions.
pub fn predict_all(
    model: &ClvModel,
    summaries: &[Option<CustomerSummary>],
    options: &PredictOptions,
) -> Vec<ClvPrediction> {
    summaries
        .par_iter()
        .with_min_len(1024)
        .map(|summary| match summary {
            Some(s) => predict_one(model, s, options),
            None => ClvPrediction::default(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::{BgNbd, GammaGamma, TimeUnit};
    use super::*;

    fn model() -> ClvModel {
        ClvModel {
            bg_nbd: BgNbd::new(0.243, 4.414, 0.793, 2.426).expect("valid"),
            gamma_gamma: GammaGamma::new(6.25, 3.74, 15.44).expect("valid"),
            unit: TimeUnit::Week,
        }
    }

    #[test]
    fn clv_is_zero_over_zero_months_and_grows_with_the_horizon() {
        let m = model();
        let s = CustomerSummary::new(3.0, 20.0, 35.0, 30.0).expect("valid");
        let zero = ClvOptions::new(0, 0.01).expect("valid");
        assert_eq!(clv(&m, &s, &zero), Some(0.0));
        let twelve = clv(&m, &s, &ClvOptions::default()).expect("defined");
        let twenty_four = clv(&m, &s, &ClvOptions::new(24, 0.01).expect("valid")).expect("defined");
        assert!(twelve > 0.0 && twenty_four > twelve);
    }

    #[test]
    fn undiscounted_clv_is_spend_times_expected_purchases() {
        let m = model();
        let s = CustomerSummary::new(3.0, 20.0, 35.0, 30.0).expect("valid");
        let got = clv(&m, &s, &ClvOptions::new(12, 0.0).expect("valid")).expect("defined");
        let spend = m.gamma_gamma.expected_spend(&s).expect("usable");
        let purchases = m.bg_nbd.expected_purchases(&s, 12.0 * 4.345).expect("converges");
        assert!((got - spend * purchases).abs() < 1e-12 * got);
    }

    #[test]
    fn entities_without_summary_get_no_predictions() {
        let m = model();
        let options = PredictOptions::new(13.0, ClvOptions::default()).expect("valid");
        let refund = CustomerSummary::new(1.0, 2.0, 3.0, -5.0).expect("valid");
        let out = predict_all(&m, &[None, Some(refund)], &options);
        assert_eq!(out[0], ClvPrediction::default());
        assert!(out[1].p_alive.is_some() && out[1].expected_purchases.is_some());
        assert_eq!((out[1].expected_spend, out[1].clv), (None, None));
    }

    #[test]
    fn rejects_options_outside_the_domain() {
        assert!(ClvOptions::new(12, -1.0).is_err());
        assert!(ClvOptions::new(12, f64::NAN).is_err());
        assert!(PredictOptions::new(-1.0, ClvOptions::default()).is_err());
    }
}
