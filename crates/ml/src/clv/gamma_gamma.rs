//! The Gamma-Gamma model of spend per purchase (Fader & Hardie 2013, "The Gamma-Gamma Model of
//! Monetary Value"): its log-likelihood and analytic gradient, the maximum-likelihood fit on
//! repeat customers, and the conditional expected spend in `lifetimes`' formula.

use rayon::prelude::*;
use statrs::function::gamma::{digamma, ln_gamma};

use super::intern::Interner;
use super::optimize::{self, Objective, Settings};
use super::{CustomerSummary, Error, FitOptions, Result};

/// A Gamma-Gamma model: a customer's purchase amounts are Gamma(`p`, `nu`) with `nu`
/// Gamma(`q`, `gamma`) across customers, so the population mean spend is
/// `p * gamma / (q - 1)`, finite because `q > 1`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GammaGamma {
    p: f64,
    q: f64,
    gamma: f64,
}

/// The result of [`GammaGamma::fit`].
#[derive(Clone, Debug, PartialEq)]
pub struct GammaGammaFit {
    /// The fitted parameters.
    pub model: GammaGamma,
    /// Total log-likelihood of the customers used, without the penalty.
    pub log_likelihood: f64,
    /// Optimiser iterations, all attempts together.
    pub iterations: u64,
    /// Whether the gradient criterion was met (see [`super::BgNbdFit::converged`]).
    pub converged: bool,
    /// Largest |partial derivative| of the penalised mean log-likelihood with respect to the
    /// log-parameters at the fitted point.
    pub gradient_max: f64,
    /// Customers used: `frequency > 0` and a positive, finite `monetary`.
    pub customers: usize,
    /// Customers left out because `frequency == 0` (no repeat purchase to average).
    pub excluded_one_time: usize,
    /// Repeat customers left out because `monetary` is zero, negative or not finite.
    pub excluded_unusable_monetary: usize,
}

const MIN_CUSTOMERS: usize = 10;
/// See `bg_nbd::WARM_START_CUSTOMERS`.
const WARM_START_CUSTOMERS: usize = 10_000;
const MAX_LOG_PARAMETER: f64 = 13.815510557964274;
const CHUNK: usize = 4_096;

impl GammaGamma {
    /// A model with the given parameters: `p > 0`, `q > 1` (a finite mean spend), `gamma > 0`,
    /// all finite.
    pub fn new(p: f64, q: f64, gamma: f64) -> Result<Self> {
        for (name, value, floor, reason) in [
            ("p", p, 0.0, "must be finite and > 0"),
            ("q", q, 1.0, "must be finite and > 1 for a finite mean spend"),
            ("gamma", gamma, 0.0, "must be finite and > 0"),
        ] {
            if !(value.is_finite() && value > floor) {
                return Err(Error::InvalidParameter { model: "gamma_gamma", name, value, reason });
            }
        }
        Ok(GammaGamma { p, q, gamma })
    }

    /// Shape of the Gamma distribution of one purchase's amount.
    pub fn p(&self) -> f64 {
        self.p
    }

    /// Shape of the Gamma distribution of the amounts' rate across customers.
    pub fn q(&self) -> f64 {
        self.q
    }

    /// Scale of the Gamma distribution of the amounts' rate across customers (`v` in
    /// `lifetimes`).
    pub fn gamma(&self) -> f64 {
        self.gamma
    }

    /// Mean spend per purchase in the population: `p * gamma / (q - 1)`.
    pub fn population_mean(&self) -> f64 {
        self.p * self.gamma / (self.q - 1.0)
    }

    /// Fits the model on the customers of `summaries` with `frequency > 0` and a positive,
    /// finite `monetary` (the others are counted in the result, not used).
    ///
    /// Errors: fewer than 10 such customers ([`Error::TooFewCustomers`]), non-convergence or
    /// parameters running off ([`Error::NotConverged`]), a fit with `q <= 1`
    /// ([`Error::InfiniteMeanSpend`]).
    pub fn fit(summaries: &[CustomerSummary], options: &FitOptions) -> Result<GammaGammaFit> {
        options.validate()?;
        let used: Vec<(f64, f64)> = summaries
            .iter()
            .filter(|s| s.has_usable_monetary())
            .map(|s| (s.frequency(), s.monetary()))
            .collect();
        let excluded_one_time = summaries.iter().filter(|s| s.frequency() == 0.0).count();
        let excluded_unusable_monetary = summaries.len() - excluded_one_time - used.len();
        if used.len() < MIN_CUSTOMERS {
            return Err(Error::TooFewCustomers {
                model: "gamma_gamma",
                found: used.len(),
                needed: MIN_CUSTOMERS,
                hint: "the spend model needs repeat customers with a positive mean amount; \
                       use a longer history or check the amount column",
            });
        }
        let sample = optimize::subsample_step(used.len(), WARM_START_CUSTOMERS)
            .map(|step| SpendData::new(used.iter().step_by(step).copied().collect()));
        let data = SpendData::new(used);
        let objective = Penalised { data: &data, penalizer: options.penalizer };
        let warm = sample.as_ref().map(|data| Penalised { data, penalizer: options.penalizer });
        let ln_scale = data.mean_monetary.ln();
        let start = [0.1, 0.1, 0.1 + ln_scale];
        let settings = Settings {
            max_iterations: options.max_iterations,
            gradient_tolerance: options.gradient_tolerance,
        };
        let outcome = optimize::minimize_warm(&objective, warm.as_ref(), &start, 10.0, &settings);
        let not_converged = |reason: String| Error::NotConverged {
            model: "gamma_gamma",
            iterations: outcome.iterations,
            reason,
            hint: "check for identical or extreme amounts, set a small penalizer (e.g. 0.001), \
                   or raise max_iterations",
        };
        for ((name, theta), centre) in
            ["p", "q", "gamma"].iter().zip(&outcome.theta).zip([0.0, 0.0, ln_scale])
        {
            if !theta.is_finite() || (theta - centre).abs() > MAX_LOG_PARAMETER {
                return Err(not_converged(format!(
                    "{name} ran off to {:e} (the likelihood keeps rising towards a boundary)",
                    theta.exp()
                )));
            }
        }
        let [p, q, gamma] = [outcome.theta[0].exp(), outcome.theta[1].exp(), outcome.theta[2].exp()];
        if !outcome.converged && !options.accept_unconverged {
            return Err(not_converged(format!(
                "largest gradient component {:e} above the tolerance {:e} at p = {p}, q = {q}, \
                 gamma = {gamma} ({})",
                outcome.gradient_max, options.gradient_tolerance, outcome.last_stop
            )));
        }
        if q <= 1.0 {
            return Err(Error::InfiniteMeanSpend { q });
        }
        let model = GammaGamma { p, q, gamma };
        let (log_likelihood, _) = data.log_likelihood(&model);
        Ok(GammaGammaFit {
            model,
            log_likelihood,
            iterations: outcome.iterations,
            converged: outcome.converged,
            gradient_max: outcome.gradient_max,
            customers: data.customers.len(),
            excluded_one_time,
            excluded_unusable_monetary,
        })
    }

    /// Total log-likelihood of the usable customers of `summaries` (see [`GammaGamma::fit`])
    /// and its gradient with respect to `(p, q, gamma)`.
    pub fn log_likelihood_with_gradient(&self, summaries: &[CustomerSummary]) -> (f64, [f64; 3]) {
        let used = summaries
            .iter()
            .filter(|s| s.has_usable_monetary())
            .map(|s| (s.frequency(), s.monetary()))
            .collect();
        SpendData::new(used).log_likelihood(self)
    }

    /// Expected spend per future purchase given the history (`lifetimes`'
    /// `conditional_expected_average_profit`): `(1 - w) * population_mean + w * monetary` with
    /// `w = p x / (p x + q - 1)`. The population mean for one-time buyers (`frequency == 0`);
    /// `None` for a repeat customer whose `monetary` is zero, negative or not finite.
    pub fn expected_spend(&self, s: &CustomerSummary) -> Option<f64> {
        let x = s.frequency();
        if x == 0.0 {
            return Some(self.population_mean());
        }
        if !s.has_usable_monetary() {
            return None;
        }
        let weight = self.p * x / (self.p * x + self.q - 1.0);
        Some((1.0 - weight) * self.population_mean() + weight * s.monetary())
    }
}

/// The customers used by the fit, grouped by frequency for the terms that depend on `x` only.
struct SpendData {
    /// Distinct frequencies with the customers' count and the sum of their `ln m`.
    frequencies: Vec<(f64, f64, f64)>,
    /// `(x, x * m)` per customer.
    customers: Vec<(f64, f64)>,
    total_weight: f64,
    mean_monetary: f64,
}

impl SpendData {
    fn new(used: Vec<(f64, f64)>) -> SpendData {
        let mut ids = Interner::new();
        let mut frequencies: Vec<(f64, f64, f64)> = Vec::new();
        for &(x, m) in &used {
            let (index, new) = ids.intern(x as u32);
            if new {
                frequencies.push((x, 0.0, 0.0));
            }
            let entry = &mut frequencies[index as usize];
            entry.1 += 1.0;
            entry.2 += m.ln();
        }
        let total_weight = used.len() as f64;
        let mean_monetary = used.iter().map(|(_, m)| m).sum::<f64>() / total_weight;
        let customers = used.iter().map(|&(x, m)| (x, x * m)).collect();
        SpendData { frequencies, customers, total_weight, mean_monetary }
    }

    /// Total log-likelihood and gradient in `(p, q, gamma)`: per customer
    /// `lnΓ(px+q) - lnΓ(px) - lnΓ(q) + q ln γ + (px-1) ln m + px ln x - (px+q) ln(xm+γ)`.
    fn log_likelihood(&self, m: &GammaGamma) -> (f64, [f64; 3]) {
        let GammaGamma { p, q, gamma } = *m;
        let (lg_q, dg_q, ln_gamma_param) = (ln_gamma(q), digamma(q), gamma.ln());
        let mut total = [0.0; 4];
        for &(x, count, sum_ln_m) in &self.frequencies {
            let px = p * x;
            let ln_x = x.ln();
            let ll = count * (ln_gamma(px + q) - ln_gamma(px) - lg_q + q * ln_gamma_param + px * ln_x)
                + (px - 1.0) * sum_ln_m;
            let d_p = count * x * (digamma(px + q) - digamma(px) + ln_x) + x * sum_ln_m;
            let d_q = count * (digamma(px + q) - dg_q + ln_gamma_param);
            let d_gamma = count * q / gamma;
            for (s, t) in total.iter_mut().zip([ll, d_p, d_q, d_gamma]) {
                *s += t;
            }
        }
        let chunk_sum = |chunk: &[(f64, f64)]| {
            let mut sum = [0.0; 4];
            for &(x, xm) in chunk {
                let shape = p * x + q;
                let ln_rate = (xm + gamma).ln();
                sum[0] -= shape * ln_rate;
                sum[1] -= x * ln_rate;
                sum[2] -= ln_rate;
                sum[3] -= shape / (xm + gamma);
            }
            sum
        };
        let partials: Vec<[f64; 4]> = if self.customers.len() >= 2 * CHUNK {
            self.customers.par_chunks(CHUNK).map(chunk_sum).collect()
        } else {
            self.customers.chunks(CHUNK).map(chunk_sum).collect()
        };
        for partial in partials {
            for (s, t) in total.iter_mut().zip(partial) {
                *s += t;
            }
        }
        (total[0], [total[1], total[2], total[3]])
    }
}

struct Penalised<'a> {
    data: &'a SpendData,
    penalizer: f64,
}

impl Objective for Penalised<'_> {
    fn evaluate(&self, theta: &[f64]) -> (f64, Vec<f64>) {
        // Unchecked on purpose: the optimiser explores q <= 1 too (the check is on the result).
        let model = GammaGamma { p: theta[0].exp(), q: theta[1].exp(), gamma: theta[2].exp() };
        let (ll, gradient) = self.data.log_likelihood(&model);
        let n = self.data.total_weight;
        let natural = [model.p, model.q, model.gamma];
        let penalty = self.penalizer * natural.iter().map(|v| v * v).sum::<f64>();
        let grad = (0..3)
            .map(|i| -gradient[i] * natural[i] / n + 2.0 * self.penalizer * natural[i] * natural[i])
            .collect();
        (-ll / n + penalty, grad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summaries() -> Vec<CustomerSummary> {
        [(1.0, 10.0), (2.0, 25.5), (2.0, 31.0), (5.0, 12.25), (9.0, 40.0), (0.0, 0.0), (3.0, -1.0)]
            .iter()
            .map(|&(x, m)| CustomerSummary::new(x, x, 10.0, m).expect("valid summary"))
            .collect()
    }

    fn naive(m: &GammaGamma, x: f64, mean: f64) -> f64 {
        let GammaGamma { p, q, gamma } = *m;
        ln_gamma(p * x + q) - ln_gamma(p * x) - ln_gamma(q)
            + q * gamma.ln()
            + (p * x - 1.0) * mean.ln()
            + p * x * x.ln()
            - (p * x + q) * (x * mean + gamma).ln()
    }

    #[test]
    fn log_likelihood_matches_the_formula_on_usable_customers() {
        let model = GammaGamma::new(6.25, 3.74, 15.44).expect("valid parameters");
        let data = summaries();
        let expected: f64 = data
            .iter()
            .filter(|s| s.has_usable_monetary())
            .map(|s| naive(&model, s.frequency(), s.monetary()))
            .sum();
        let (got, _) = model.log_likelihood_with_gradient(&data);
        assert!((got - expected).abs() < 1e-10 * expected.abs(), "{got} vs {expected}");
    }

    #[test]
    fn gradient_matches_central_differences() {
        let data = summaries();
        for params in [[6.25, 3.74, 15.44], [0.7, 1.5, 200.0]] {
            let at = |p: [f64; 3]| {
                GammaGamma::new(p[0], p[1], p[2]).expect("valid").log_likelihood_with_gradient(&data).0
            };
            let (_, gradient) = GammaGamma::new(params[0], params[1], params[2])
                .expect("valid")
                .log_likelihood_with_gradient(&data);
            crate::clv::assert_gradient_matches(params, gradient, at);
        }
    }

    #[test]
    fn expected_spend_shrinks_towards_the_population_mean() {
        let model = GammaGamma::new(6.25, 3.74, 15.44).expect("valid parameters");
        let data = summaries();
        assert_eq!(model.expected_spend(&data[5]), Some(model.population_mean()));
        assert_eq!(model.expected_spend(&data[6]), None);
        let one = model.expected_spend(&data[0]).expect("usable");
        assert!(one > 10.0 && one < model.population_mean());
    }

    #[test]
    fn rejects_parameters_without_a_finite_mean() {
        let error = GammaGamma::new(1.0, 0.9, 1.0).expect_err("q <= 1");
        assert_eq!(error.code(), "clv_invalid_parameter");
    }
}
