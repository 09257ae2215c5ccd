//! The BG/NBD model (Fader, Hardie & Lee 2005): its log-likelihood and analytic gradient in
//! log-space, the maximum-likelihood fit, and the per-customer predictions (P(alive), expected
//! repeat purchases in a horizon) in `lifetimes`' formulas.
//!
//! Speed: customers with the same `(x, t_x, T)` share one likelihood term, so the summaries are
//! first collapsed into weighted patterns; the log-gamma and digamma terms depend on `x` only
//! and are computed once per distinct `x`; the per-pattern part (two logarithms, one
//! exponential) is summed over fixed-size chunks in parallel with rayon and the chunk sums are
//! added in order, so the result does not depend on the thread count.

use rayon::prelude::*;
use statrs::function::gamma::{digamma, ln_gamma};

use super::intern::{Interner, key};
use super::optimize::{self, Objective, Settings};
use super::special::alive_expectation;
use super::{CustomerSummary, Error, FitOptions, Result};

/// A BG/NBD model: purchases while alive follow a Poisson process whose rate is
/// Gamma(`r`, `alpha`) across customers; after each purchase a customer drops out with a
/// probability that is Beta(`a`, `b`) across customers. `alpha` is in the time unit of the
/// summaries it was fitted on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BgNbd {
    r: f64,
    alpha: f64,
    a: f64,
    b: f64,
}

/// The result of [`BgNbd::fit`].
#[derive(Clone, Debug, PartialEq)]
pub struct BgNbdFit {
    /// The fitted parameters.
    pub model: BgNbd,
    /// Total log-likelihood of the data at the fitted parameters (the sum over customers, not
    /// the mean, without the penalty; -9582.4 for the paper's CDNOW fit in weeks).
    pub log_likelihood: f64,
    /// Optimiser iterations, all attempts together.
    pub iterations: u64,
    /// Whether the gradient criterion of [`FitOptions::gradient_tolerance`] was met; always
    /// true unless [`FitOptions::accept_unconverged`] is set.
    pub converged: bool,
    /// Largest |partial derivative| of the penalised mean log-likelihood with respect to the
    /// log-parameters at the fitted point.
    pub gradient_max: f64,
    /// Customers in the fit.
    pub customers: usize,
    /// Distinct `(x, t_x, T)` patterns the likelihood was summed over.
    pub patterns: usize,
}

/// Fewer customers than this cannot identify four parameters in any useful way.
const MIN_CUSTOMERS: usize = 10;

/// A fit whose mean dropout probability `a / (a + b)` falls below this describes a population
/// that never drops out, where a and b are not identified (a -> 0 or b -> infinity): reported as
/// diverged, whichever of the two the optimiser happened to follow.
const MIN_MEAN_DROPOUT: f64 = 1e-6;

/// Inputs of at least four times this many customers are first fitted on a subsample of about
/// this size, for a warm start.
const WARM_START_CUSTOMERS: usize = 10_000;

/// Log-parameters beyond this distance from their natural scale (`ln 1e6`) mean the likelihood
/// kept rising towards a boundary of the parameter space: the fit is reported as diverged.
const MAX_LOG_PARAMETER: f64 = 13.815510557964274;

const HINT_NOT_CONVERGED: &str = "raise max_iterations, or set a small penalizer (e.g. 0.001); \
     check that the summaries are in a sensible time unit and that the population shows both \
     repeat purchases and lapsed customers";
const HINT_TOWARDS_INFINITY: &str = "set a small penalizer (e.g. 0.001), which pulls large \
     parameters back; check that the summaries are in a sensible time unit";
const HINT_TOWARDS_ZERO: &str = "the data cannot pin this parameter down (a or b near 0: no \
     sign of dropout, as when every customer keeps buying up to the as-of day); use a longer or \
     larger history";

/// Patterns are summed in chunks of this size, in parallel from two chunks on; sorts go
/// parallel from this size on.
const CHUNK: usize = 4_096;

impl BgNbd {
    /// A model with the given parameters, each finite and > 0.
    pub fn new(r: f64, alpha: f64, a: f64, b: f64) -> Result<Self> {
        for (name, value) in [("r", r), ("alpha", alpha), ("a", a), ("b", b)] {
            if !(value.is_finite() && value > 0.0) {
                return Err(Error::InvalidParameter {
                    model: "bg_nbd",
                    name,
                    value,
                    reason: "must be finite and > 0",
                });
            }
        }
        Ok(BgNbd { r, alpha, a, b })
    }

    /// Shape of the Gamma distribution of purchase rates.
    pub fn r(&self) -> f64 {
        self.r
    }

    /// Scale of the Gamma distribution of purchase rates, in the summaries' time unit.
    pub fn alpha(&self) -> f64 {
        self.alpha
    }

    /// First shape of the Beta distribution of dropout probabilities.
    pub fn a(&self) -> f64 {
        self.a
    }

    /// Second shape of the Beta distribution of dropout probabilities.
    pub fn b(&self) -> f64 {
        self.b
    }

    /// Fits the model by maximum likelihood on `summaries` (all of them: one-time buyers are
    /// part of the BG/NBD likelihood). See [`FitOptions`] for the penalty and the criterion.
    ///
    /// Errors: fewer than 10 customers ([`Error::TooFewCustomers`]), no customer with
    /// `frequency > 0` ([`Error::NoRepeatPurchases`]), an optimiser that does not converge or
    /// parameters that run off to 0 or infinity ([`Error::NotConverged`]).
    pub fn fit(summaries: &[CustomerSummary], options: &FitOptions) -> Result<BgNbdFit> {
        options.validate()?;
        if summaries.len() < MIN_CUSTOMERS {
            return Err(Error::TooFewCustomers {
                model: "bg_nbd",
                found: summaries.len(),
                needed: MIN_CUSTOMERS,
                hint: "fit on a larger population (the model describes a population, \
                       not a single customer)",
            });
        }
        if summaries.iter().all(|s| s.frequency() == 0.0) {
            return Err(Error::NoRepeatPurchases { customers: summaries.len() });
        }
        let patterns = Patterns::new(summaries);
        let max_t = patterns.max_t;
        let objective = Penalised { patterns: &patterns, penalizer: options.penalizer, max_t };
        // On large inputs, a fit on every k-th customer gives the full fit a close start.
        let sample = optimize::subsample_step(summaries.len(), WARM_START_CUSTOMERS)
            .map(|step| Patterns::new(&summaries.iter().step_by(step).copied().collect::<Vec<_>>()));
        let warm =
            sample.as_ref().map(|patterns| Penalised { patterns, penalizer: options.penalizer, max_t });
        // lifetimes' starting point: every parameter at e^0.1, alpha on the scale of max T.
        let ln_scale = max_t.ln();
        let start = [0.1, 0.1 + ln_scale, 0.1, 0.1];
        let settings = Settings {
            max_iterations: options.max_iterations,
            gradient_tolerance: options.gradient_tolerance,
        };
        let outcome = optimize::minimize_warm(&objective, warm.as_ref(), &start, 10.0, &settings);
        let not_converged = |reason: String, hint| Error::NotConverged {
            model: "bg_nbd",
            iterations: outcome.iterations,
            reason,
            hint,
        };
        let names = ["r", "alpha", "a", "b"];
        let centres = [0.0, ln_scale, 0.0, 0.0];
        for ((name, theta), centre) in names.iter().zip(&outcome.theta).zip(centres) {
            if !theta.is_finite() || (theta - centre).abs() > MAX_LOG_PARAMETER {
                let hint = if *theta > centre { HINT_TOWARDS_INFINITY } else { HINT_TOWARDS_ZERO };
                return Err(not_converged(
                    format!(
                        "{name} ran off to {:e} (the likelihood keeps rising towards a boundary)",
                        theta.exp()
                    ),
                    hint,
                ));
            }
        }
        let model = BgNbd::from_log(&outcome.theta);
        let mean_dropout = model.a / (model.a + model.b);
        if mean_dropout < MIN_MEAN_DROPOUT {
            return Err(not_converged(
                format!(
                    "the mean dropout probability a / (a + b) ran off to {mean_dropout:e} \
                     (a = {}, b = {})",
                    model.a, model.b
                ),
                HINT_TOWARDS_ZERO,
            ));
        }
        if !outcome.converged && !options.accept_unconverged {
            return Err(not_converged(
                format!(
                    "largest gradient component {:e} above the tolerance {:e} at r = {}, \
                 alpha = {}, a = {}, b = {} ({})",
                    outcome.gradient_max,
                    options.gradient_tolerance,
                    model.r,
                    model.alpha,
                    model.a,
                    model.b,
                    outcome.last_stop
                ),
                HINT_NOT_CONVERGED,
            ));
        }
        let (log_likelihood, _) = patterns.log_likelihood(&model);
        Ok(BgNbdFit {
            model,
            log_likelihood,
            iterations: outcome.iterations,
            converged: outcome.converged,
            gradient_max: outcome.gradient_max,
            customers: summaries.len(),
            patterns: patterns.rows.len(),
        })
    }

    fn from_log(theta: &[f64]) -> BgNbd {
        BgNbd { r: theta[0].exp(), alpha: theta[1].exp(), a: theta[2].exp(), b: theta[3].exp() }
    }

    /// Total log-likelihood of `summaries` under this model.
    pub fn log_likelihood(&self, summaries: &[CustomerSummary]) -> f64 {
        Patterns::new(summaries).log_likelihood(self).0
    }

    /// Total log-likelihood of `summaries` and its gradient with respect to
    /// `(r, alpha, a, b)`, analytic (the fit uses the same formulas in log-parameters).
    pub fn log_likelihood_with_gradient(&self, summaries: &[CustomerSummary]) -> (f64, [f64; 4]) {
        Patterns::new(summaries).log_likelihood(self)
    }

    /// `ln(a / (b + x - 1)) + (r + x) ln((alpha + T) / (alpha + t_x))` for `x > 0`: the log-odds
    /// of having dropped out.
    fn log_odds_dead(&self, s: &CustomerSummary) -> f64 {
        let x = s.frequency();
        (self.r + x) * ((s.t() - s.recency()) / (self.alpha + s.recency())).ln_1p() + self.a.ln()
            - (self.b + x - 1.0).ln()
    }

    /// Probability that the customer is still alive at `T`: 1 when `frequency == 0` (in the
    /// BG/NBD model a customer can only drop out right after a purchase), otherwise
    /// `1 / (1 + a / (b + x - 1) * ((alpha + T) / (alpha + t_x))^(r + x))`.
    pub fn p_alive(&self, s: &CustomerSummary) -> f64 {
        if s.frequency() == 0.0 {
            return 1.0;
        }
        1.0 / (1.0 + self.log_odds_dead(s).exp())
    }

    /// Expected repeat purchases in `(T, T + horizon]` given the history (the paper's equation
    /// (10), `lifetimes`' `conditional_expected_number_of_purchases_up_to_time`), with
    /// `horizon` in the model's time unit. `None` when `horizon` is negative or not finite, or
    /// (in practice never) when the hypergeometric series does not converge, which needs a
    /// horizon about 10^5 times `alpha + T`.
    pub fn expected_purchases(&self, s: &CustomerSummary, horizon: f64) -> Option<f64> {
        if !(horizon.is_finite() && horizon >= 0.0) {
            return None;
        }
        Some(self.expected_purchases_if_alive(s, horizon)? * self.p_alive(s))
    }

    /// [`BgNbd::expected_purchases`] before the multiplication by [`BgNbd::p_alive`], for a
    /// finite `horizon >= 0`: the CLV sum calls it once per month.
    pub(super) fn expected_purchases_if_alive(&self, s: &CustomerSummary, horizon: f64) -> Option<f64> {
        let ln_one_minus_z = -(horizon / (self.alpha + s.t())).ln_1p();
        alive_expectation(self.r, self.a, self.b, s.frequency(), ln_one_minus_z)
    }
}

/// One distinct `(x, t_x, T)` and how many customers share it, with the indices of its values
/// in the tables of distinct frequencies, recencies and ages.
#[derive(Clone, Copy, Debug)]
struct Pattern {
    x: f64,
    weight: f64,
    x_index: u32,
    recency_index: u32,
    age_index: u32,
}

/// The summaries collapsed for the likelihood. Summaries built from day numbers take few
/// distinct recency and age values (at most one per day of history), so `ln(alpha + t_x)` and
/// `ln(alpha + T)` are computed once per distinct value, and a pattern costs one `exp` and one
/// `ln` per evaluation.
struct Patterns {
    /// Distinct frequencies and the number of customers with each.
    frequencies: Vec<(f64, f64)>,
    /// Distinct recencies and ages.
    recencies: Vec<f64>,
    ages: Vec<f64>,
    rows: Vec<Pattern>,
    total_weight: f64,
    max_t: f64,
}

/// `ln(1 + e)` for `e` in `[0, 1]`: a series below 1e-4, where `1 + e` would round away digits,
/// and the plain logarithm above (glibc's `log1p` costs several times `log`, and this is the
/// innermost loop).
fn ln_one_plus(e: f64) -> f64 {
    if e < 1e-4 { e * (1.0 - e * (0.5 - e * (1.0 / 3.0 - 0.25 * e))) } else { (1.0 + e).ln() }
}

impl Patterns {
    /// Collapses `summaries`: tables and patterns are numbered in order of first appearance,
    /// so the sums are reproducible for a given input order (and any thread count).
    fn new(summaries: &[CustomerSummary]) -> Patterns {
        let (mut frequency_ids, mut recency_ids, mut age_ids) =
            (Interner::new(), Interner::new(), Interner::new());
        let mut pattern_ids = Interner::with_capacity(summaries.len());
        let mut frequencies: Vec<(f64, f64)> = Vec::new();
        let (mut recencies, mut ages) = (Vec::new(), Vec::new());
        let mut rows: Vec<Pattern> = Vec::new();
        for s in summaries {
            let (x, tx, t) = (s.frequency(), s.recency(), s.t());
            let (x_index, new) = frequency_ids.intern(x as u32);
            if new {
                frequencies.push((x, 0.0));
            }
            frequencies[x_index as usize].1 += 1.0;
            let (recency_index, new) = recency_ids.intern(key(tx));
            if new {
                recencies.push(tx);
            }
            let (age_index, new) = age_ids.intern(key(t));
            if new {
                ages.push(t);
            }
            let (row, new) = pattern_ids.intern((x_index, recency_index, age_index));
            if new {
                rows.push(Pattern { x, weight: 0.0, x_index, recency_index, age_index });
            }
            rows[row as usize].weight += 1.0;
        }
        let max_t = ages.iter().copied().fold(0.0, f64::max);
        Patterns { frequencies, recencies, ages, rows, total_weight: summaries.len() as f64, max_t }
    }

    /// Total log-likelihood and its gradient in `(r, alpha, a, b)`.
    fn log_likelihood(&self, m: &BgNbd) -> (f64, [f64; 4]) {
        let BgNbd { r, alpha, a, b } = *m;
        let ln_alpha = alpha.ln();
        let (lg_r, lg_b, lg_ab) = (ln_gamma(r), ln_gamma(b), ln_gamma(a + b));
        let (dg_r, dg_b, dg_ab) = (digamma(r), digamma(b), digamma(a + b));
        // Terms that depend on x only, weighted by the customers with that x; and, per x,
        // ln(a / (b + x - 1)) and 1 / (b + x - 1) for the pattern loop.
        let mut total = [0.0; 5];
        let mut per_x = Vec::with_capacity(self.frequencies.len());
        for &(x, weight) in &self.frequencies {
            let ll =
                ln_gamma(r + x) - lg_r + lg_ab + ln_gamma(b + x) - lg_b - ln_gamma(a + b + x) + r * ln_alpha;
            let d_r = digamma(r + x) - dg_r + ln_alpha;
            let d_alpha = r / alpha;
            let d_a = dg_ab - digamma(a + b + x);
            let d_b = dg_ab + digamma(b + x) - dg_b - digamma(a + b + x);
            for (sum, term) in total.iter_mut().zip([ll, d_r, d_alpha, d_a, d_b]) {
                *sum += weight * term;
            }
            per_x.push(if x > 0.0 { (a.ln() - (b + x - 1.0).ln(), 1.0 / (b + x - 1.0)) } else { (0.0, 0.0) });
        }
        let table = |values: &[f64]| -> Vec<(f64, f64)> {
            values.iter().map(|v| ((alpha + v).ln(), 1.0 / (alpha + v))).collect()
        };
        let (ln_recency, ln_age) = (table(&self.recencies), table(&self.ages));
        let inv_a = 1.0 / a;
        let chunk_sum = |chunk: &[Pattern]| {
            let mut sum = [0.0; 5];
            for p in chunk {
                let rx = r + p.x;
                let (ln_t, inv_t) = ln_age[p.age_index as usize];
                let a3 = -rx * ln_t;
                let term = if p.x > 0.0 {
                    let (ln_tx, inv_tx) = ln_recency[p.recency_index as usize];
                    let (ln_odds, inv_b_x_minus_1) = per_x[p.x_index as usize];
                    // A4 - A3: the log-odds of having dropped out.
                    let d = ln_odds + rx * (ln_t - ln_tx);
                    // log-sum-exp of the two branches, and each branch's share of the sum.
                    let e = (-d.abs()).exp();
                    let lse = a3 + d.max(0.0) + ln_one_plus(e);
                    let share_high = 1.0 / (1.0 + e);
                    let share_low = e * share_high;
                    let (w3, w4) = if d <= 0.0 { (share_high, share_low) } else { (share_low, share_high) };
                    [
                        lse,
                        -w3 * ln_t - w4 * ln_tx,
                        -rx * (w3 * inv_t + w4 * inv_tx),
                        w4 * inv_a,
                        -w4 * inv_b_x_minus_1,
                    ]
                } else {
                    [a3, -ln_t, -rx * inv_t, 0.0, 0.0]
                };
                for (s, t) in sum.iter_mut().zip(term) {
                    *s += p.weight * t;
                }
            }
            sum
        };
        let partials: Vec<[f64; 5]> = if self.rows.len() >= 2 * CHUNK {
            self.rows.par_chunks(CHUNK).map(chunk_sum).collect()
        } else {
            self.rows.chunks(CHUNK).map(chunk_sum).collect()
        };
        for partial in partials {
            for (s, t) in total.iter_mut().zip(partial) {
                *s += t;
            }
        }
        (total[0], [total[1], total[2], total[3], total[4]])
    }
}

/// The minimised objective: mean negative log-likelihood plus `lifetimes`' penalty, as a
/// function of the log-parameters.
struct Penalised<'a> {
    patterns: &'a Patterns,
    penalizer: f64,
    /// The largest T of the whole data (the penalty's time scale, also for a subsample).
    max_t: f64,
}

impl Objective for Penalised<'_> {
    fn evaluate(&self, theta: &[f64]) -> (f64, Vec<f64>) {
        let model = BgNbd::from_log(theta);
        let (ll, gradient) = self.patterns.log_likelihood(&model);
        let n = self.patterns.total_weight;
        // lifetimes penalises alpha on the time scale where max T = 1.
        let scaled = [model.r, model.alpha / self.max_t, model.a, model.b];
        let penalty = self.penalizer * scaled.iter().map(|p| p * p).sum::<f64>();
        let natural = [model.r, model.alpha, model.a, model.b];
        let value = -ll / n + penalty;
        let grad = (0..4)
            .map(|i| -gradient[i] * natural[i] / n + 2.0 * self.penalizer * scaled[i] * scaled[i])
            .collect();
        (value, grad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summaries() -> Vec<CustomerSummary> {
        let rows = [
            (0.0, 0.0, 30.0),
            (0.0, 0.0, 12.0),
            (1.0, 5.0, 30.0),
            (2.0, 20.0, 31.0),
            (2.0, 20.0, 31.0),
            (7.0, 29.0, 35.0),
            (3.0, 3.0, 38.0),
            (0.0, 0.0, 0.0),
        ];
        rows.iter().map(|&(x, tx, t)| CustomerSummary::new(x, tx, t, 1.0).expect("valid summary")).collect()
    }

    /// The likelihood of one customer as written in the paper, without log-space tricks.
    fn naive(m: &BgNbd, s: &CustomerSummary) -> f64 {
        let (x, tx, t) = (s.frequency(), s.recency(), s.t());
        let BgNbd { r, alpha, a, b } = *m;
        let beta = |p: f64, q: f64| (ln_gamma(p) + ln_gamma(q) - ln_gamma(p + q)).exp();
        let gamma_part = (ln_gamma(r + x) - ln_gamma(r)).exp() * alpha.powf(r);
        let first = beta(a, b + x) / beta(a, b) * gamma_part / (alpha + t).powf(r + x);
        let second = if x > 0.0 {
            beta(a + 1.0, b + x - 1.0) / beta(a, b) * gamma_part / (alpha + tx).powf(r + x)
        } else {
            0.0
        };
        (first + second).ln()
    }

    #[test]
    fn log_likelihood_matches_the_paper_formula() {
        let model = BgNbd::new(0.243, 4.414, 0.793, 2.426).expect("valid parameters");
        let data = summaries();
        let expected: f64 = data.iter().map(|s| naive(&model, s)).sum();
        let got = model.log_likelihood(&data);
        assert!((got - expected).abs() < 1e-10 * expected.abs(), "{got} vs {expected}");
    }

    #[test]
    fn gradient_matches_central_differences() {
        let data = summaries();
        for params in [[0.243, 4.414, 0.793, 2.426], [2.0, 0.5, 3.0, 0.2]] {
            let model = BgNbd::new(params[0], params[1], params[2], params[3]).expect("valid");
            let (_, gradient) = model.log_likelihood_with_gradient(&data);
            let at = |p: [f64; 4]| BgNbd::new(p[0], p[1], p[2], p[3]).expect("valid").log_likelihood(&data);
            crate::clv::assert_gradient_matches(params, gradient, at);
        }
    }

    #[test]
    fn collapses_identical_summaries() {
        let patterns = Patterns::new(&summaries());
        assert_eq!(patterns.rows.len(), 7);
        assert_eq!(patterns.frequencies.iter().map(|f| f.0).collect::<Vec<_>>(), [0.0, 1.0, 2.0, 7.0, 3.0]);
        assert_eq!(patterns.frequencies.iter().map(|f| f.1).sum::<f64>(), 8.0);
    }

    #[test]
    fn p_alive_is_one_without_repeat_purchases() {
        let model = BgNbd::new(0.243, 4.414, 0.793, 2.426).expect("valid parameters");
        let one_time = CustomerSummary::new(0.0, 0.0, 30.0, 0.0).expect("valid summary");
        assert_eq!(model.p_alive(&one_time), 1.0);
        let lapsed = CustomerSummary::new(5.0, 1.0, 1000.0, 1.0).expect("valid summary");
        let p = model.p_alive(&lapsed);
        assert!(p > 0.0 && p < 1e-6, "{p}");
    }

    #[test]
    fn rejects_parameters_outside_the_domain() {
        assert!(BgNbd::new(0.0, 1.0, 1.0, 1.0).is_err());
        assert!(BgNbd::new(1.0, f64::NAN, 1.0, 1.0).is_err());
        assert!(BgNbd::new(1.0, 1.0, 1.0, f64::INFINITY).is_err());
    }
}
