//! Customer lifetime value: the BG/NBD model of repeat purchases and the Gamma-Gamma model of
//! spend per purchase (Fader, Hardie & Lee 2005; Fader & Hardie 2013), fitted by maximum
//! likelihood, and the per-entity predictions built on them (P(alive), expected purchases,
//! expected spend, discounted CLV), plus the "diamonds in the rough" definition.
//!
//! The module owns the math only. The engine computes one [`CustomerSummary`] per entity (from
//! the event scan's purchase-day aggregates; [`summarize`] is the reference it is tested against), calls [`fit`], then
//! [`predict_all`]. No I/O, no async. `docs/predictive.md` states every formula,
//! convention, default and degenerate case.
//!
//! Layout: `summary` (time units, summaries), `bg_nbd` and `gamma_gamma` (likelihoods, fits,
//! per-customer predictions), `special` (the hypergeometric series), `optimize` (argmin glue),
//! `predict` (CLV and the parallel batch), `holdout` (predicted against actual purchases after a
//! calibration period), `diamonds`.

mod bg_nbd;
mod diamonds;
mod gamma_gamma;
mod holdout;
mod intern;
mod optimize;
mod predict;
mod special;
mod summary;

pub use bg_nbd::{BgNbd, BgNbdFit};
pub use diamonds::{DiamondOptions, diamonds_in_the_rough};
pub use gamma_gamma::{GammaGamma, GammaGammaFit};
pub use holdout::{HoldoutCheck, HoldoutCustomer, HoldoutGroup, calibration_and_holdout, holdout_check};
pub use predict::{ClvOptions, ClvPrediction, PredictOptions, clv, predict_all};
pub use summary::{CustomerSummary, TimeUnit, summarize};

/// Errors of the CLV models. Every variant is a user error (bad input or data the models
/// cannot describe) except [`Error::NotConverged`], which may also be an environment limit
/// (too few iterations); none is an internal bug.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum Error {
    /// A summary field is out of its domain (see [`CustomerSummary::new`]).
    #[error("invalid customer summary: {field} = {value} ({reason})")]
    InvalidSummary {
        /// The offending field: `frequency`, `recency` or `t`.
        field: &'static str,
        /// The value given.
        value: f64,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A model parameter is out of its domain (see [`BgNbd::new`], [`GammaGamma::new`]).
    #[error("invalid {model} parameter: {name} = {value} ({reason})")]
    InvalidParameter {
        /// `bg_nbd` or `gamma_gamma`.
        model: &'static str,
        /// The parameter's name.
        name: &'static str,
        /// The value given.
        value: f64,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// An option is out of its domain.
    #[error("invalid option: {name} = {value} ({reason})")]
    InvalidOption {
        /// The option's name, as the field of the options struct.
        name: &'static str,
        /// The value given.
        value: f64,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// Too few customers to fit a model.
    #[error("too few customers to fit {model}: {found} usable, at least {needed} needed; hint: {hint}")]
    TooFewCustomers {
        /// `bg_nbd` or `gamma_gamma`.
        model: &'static str,
        /// Customers the fit could use.
        found: usize,
        /// The minimum.
        needed: usize,
        /// What to do about it.
        hint: &'static str,
    },
    /// No customer made a repeat purchase: the BG/NBD dropout process is not identified.
    #[error(
        "no repeat purchases among {customers} customers: the BG/NBD model cannot be fitted; \
         hint: use a longer history (earlier purchases or a later as-of day) or check the \
         purchase condition"
    )]
    NoRepeatPurchases {
        /// Customers in the fit.
        customers: usize,
    },
    /// The optimiser did not reach a maximum of the likelihood.
    #[error("{model} fit did not converge after {iterations} iterations: {reason}; hint: {hint}")]
    NotConverged {
        /// `bg_nbd` or `gamma_gamma`.
        model: &'static str,
        /// Iterations run, all attempts together.
        iterations: u64,
        /// What went wrong, with the last parameters.
        reason: String,
        /// What to do about it.
        hint: &'static str,
    },
    /// The fitted Gamma-Gamma model has no finite mean spend (q <= 1).
    #[error(
        "the gamma_gamma fit has q = {q} <= 1, so the population mean spend is infinite; \
         hint: check for extreme amounts (outliers, unit mistakes) or set a penalizer"
    )]
    InfiniteMeanSpend {
        /// The fitted q.
        q: f64,
    },
}

impl Error {
    /// A stable snake_case code for the error, for the engine's `ErrorCode`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidSummary { .. } => "clv_invalid_summary",
            Error::InvalidParameter { .. } => "clv_invalid_parameter",
            Error::InvalidOption { .. } => "clv_invalid_option",
            Error::TooFewCustomers { .. } => "clv_too_few_customers",
            Error::NoRepeatPurchases { .. } => "clv_no_repeat_purchases",
            Error::NotConverged { .. } => "clv_not_converged",
            Error::InfiniteMeanSpend { .. } => "clv_infinite_mean_spend",
        }
    }
}

/// The result type of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Options of a maximum-likelihood fit (both models).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FitOptions {
    /// L2 penalty on the parameters, added to the mean negative log-likelihood exactly as
    /// `lifetimes` does: `penalizer * (r² + (alpha / max T)² + a² + b²)` for BG/NBD and
    /// `penalizer * (p² + q² + gamma²)` for Gamma-Gamma. Default 0 (plain maximum likelihood).
    pub penalizer: f64,
    /// Iterations allowed to each optimiser attempt (L-BFGS, or BFGS after a warm start on a
    /// subsample for large inputs; then BFGS seeded with a finite-difference Hessian and
    /// Nelder-Mead when the first attempt stops short). Default 1000.
    pub max_iterations: u64,
    /// Convergence criterion: the largest absolute partial derivative of the penalised mean
    /// log-likelihood with respect to the log-parameters must fall below it. Default 1e-6: the
    /// cost is flat to rounding within about `sqrt(epsilon / curvature)` of the optimum, where
    /// the gradient is still about `sqrt(epsilon * curvature)`, so much smaller values cannot
    /// be met reliably.
    pub gradient_tolerance: f64,
    /// Return a fit whose gradient criterion was not met (with `converged = false`) instead
    /// of [`Error::NotConverged`]. Parameters running off to 0 or infinity stay errors.
    /// Default false.
    pub accept_unconverged: bool,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            penalizer: 0.0,
            max_iterations: 1000,
            gradient_tolerance: 1e-6,
            accept_unconverged: false,
        }
    }
}

impl FitOptions {
    fn validate(&self) -> Result<()> {
        if !(self.penalizer.is_finite() && self.penalizer >= 0.0) {
            return Err(Error::InvalidOption {
                name: "penalizer",
                value: self.penalizer,
                reason: "must be finite and >= 0",
            });
        }
        if self.max_iterations == 0 {
            return Err(Error::InvalidOption { name: "max_iterations", value: 0.0, reason: "must be >= 1" });
        }
        if !(self.gradient_tolerance.is_finite() && self.gradient_tolerance > 0.0) {
            return Err(Error::InvalidOption {
                name: "gradient_tolerance",
                value: self.gradient_tolerance,
                reason: "must be finite and > 0",
            });
        }
        Ok(())
    }
}

/// The two fitted models and the time unit their summaries were expressed in: everything
/// [`predict_all`] and [`clv`] need.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClvModel {
    /// Purchase frequency and dropout.
    pub bg_nbd: BgNbd,
    /// Spend per purchase.
    pub gamma_gamma: GammaGamma,
    /// The unit of `recency`, `t` and of prediction horizons.
    pub unit: TimeUnit,
}

/// The result of [`fit`]: both fits and their diagnostics.
#[derive(Clone, Debug, PartialEq)]
pub struct ClvFit {
    /// The BG/NBD fit on every summary.
    pub bg_nbd: BgNbdFit,
    /// The Gamma-Gamma fit on the repeat customers with a positive mean spend.
    pub gamma_gamma: GammaGammaFit,
    /// The unit the summaries were in.
    pub unit: TimeUnit,
}

impl ClvFit {
    /// The fitted models, for [`predict_all`].
    pub fn model(&self) -> ClvModel {
        ClvModel { bg_nbd: self.bg_nbd.model, gamma_gamma: self.gamma_gamma.model, unit: self.unit }
    }
}

/// Fits BG/NBD on all `summaries` and Gamma-Gamma on those with `frequency > 0` and a positive,
/// finite `monetary` (the others are counted in [`GammaGammaFit`]). `unit` is recorded for the
/// predictions; the summaries must already be in it.
pub fn fit(summaries: &[CustomerSummary], unit: TimeUnit, options: &FitOptions) -> Result<ClvFit> {
    let bg_nbd = BgNbd::fit(summaries, options)?;
    let gamma_gamma = GammaGamma::fit(summaries, options)?;
    Ok(ClvFit { bg_nbd, gamma_gamma, unit })
}

/// Checks an analytic gradient against central differences (step 1e-6 of each parameter,
/// tolerance 1e-6 relative to 1 + |gradient|).
#[cfg(test)]
fn assert_gradient_matches<const N: usize>(
    params: [f64; N],
    gradient: [f64; N],
    at: impl Fn([f64; N]) -> f64,
) {
    for i in 0..N {
        let h = 1e-6 * params[i];
        let (mut up, mut down) = (params, params);
        up[i] += h;
        down[i] -= h;
        let numeric = (at(up) - at(down)) / (2.0 * h);
        assert!(
            (numeric - gradient[i]).abs() < 1e-6 * (1.0 + gradient[i].abs()),
            "parameter {i} at {params:?}: analytic {} numeric {numeric}",
            gradient[i]
        );
    }
}
