//! The argmin glue shared by the two fits: minimise a smooth objective of the log-parameters
//! with L-BFGS or BFGS (More-Thuente line search), warm-started on a subsample for large inputs;
//! if that stops short of the gradient criterion, restart from the best point with BFGS seeded
//! with a finite-difference Hessian, and with Nelder-Mead (see [`minimize`]).
//!
//! The wrapper remembers the best point evaluated, so an attempt that argmin ends with an error
//! (a line search that cannot make progress at the noise floor, typically) still contributes
//! its best point; convergence is judged on that point's gradient, never on argmin's status.

use std::sync::Mutex;

use argmin::core::{CostFunction, Executor, Gradient, State};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::neldermead::NelderMead;
use argmin::solver::quasinewton::{BFGS, LBFGS};
use ndarray::{Array1, Array2};

/// A smooth objective of the log-parameters, minimised.
pub(crate) trait Objective: Sync {
    /// The objective and its gradient at `theta`. May return a non-finite value outside the
    /// region where the model is defined numerically.
    fn evaluate(&self, theta: &[f64]) -> (f64, Vec<f64>);
}

/// How long and how precisely to minimise.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Settings {
    pub max_iterations: u64,
    /// Converged when every |partial derivative| at the best point is below this.
    pub gradient_tolerance: f64,
}

/// The best point found and how it was reached.
#[derive(Clone, Debug)]
pub(crate) struct Outcome {
    pub theta: Vec<f64>,
    pub value: f64,
    /// Largest |partial derivative| at `theta`.
    pub gradient_max: f64,
    pub iterations: u64,
    pub converged: bool,
    /// What stopped the last attempt, for error messages.
    pub last_stop: String,
}

/// Cost given to points where the objective is not finite, so that line searches and simplex
/// steps retreat from them instead of failing on NaN.
const NOT_FINITE_COST: f64 = 1e300;

struct Best {
    value: f64,
    theta: Vec<f64>,
    gradient: Vec<f64>,
}

/// A point, the objective there and its gradient.
type Evaluated = (Vec<f64>, f64, Vec<f64>);

struct Problem<'a, O> {
    objective: &'a O,
    /// The last evaluation (argmin asks for the cost and the gradient separately, at the
    /// same point) and the best point so far.
    last: Mutex<Option<Evaluated>>,
    best: &'a Mutex<Option<Best>>,
}

impl<O: Objective> Problem<'_, O> {
    fn evaluate(&self, theta: &[f64]) -> (f64, Vec<f64>) {
        let mut last = self.last.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((at, value, gradient)) = last.as_ref()
            && at.as_slice() == theta
        {
            return (*value, gradient.clone());
        }
        let (value, gradient) = self.objective.evaluate(theta);
        let finite = value.is_finite() && gradient.iter().all(|g| g.is_finite());
        let (value, gradient) =
            if finite { (value, gradient) } else { (NOT_FINITE_COST, vec![0.0; theta.len()]) };
        if finite {
            let mut best = self.best.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if best.as_ref().is_none_or(|b| better(value, &gradient, b)) {
                *best = Some(Best { value, theta: theta.to_vec(), gradient: gradient.clone() });
            }
        }
        *last = Some((theta.to_vec(), value, gradient.clone()));
        (value, gradient)
    }
}

impl<O: Objective> CostFunction for Problem<'_, O> {
    type Param = Array1<f64>;
    type Output = f64;

    fn cost(&self, param: &Self::Param) -> Result<f64, argmin::core::Error> {
        Ok(self.evaluate(param.as_slice().unwrap_or(&param.to_vec())).0)
    }
}

impl<O: Objective> Gradient for Problem<'_, O> {
    type Param = Array1<f64>;
    type Gradient = Array1<f64>;

    fn gradient(&self, param: &Self::Param) -> Result<Array1<f64>, argmin::core::Error> {
        Ok(Array1::from(self.evaluate(param.as_slice().unwrap_or(&param.to_vec())).1))
    }
}

/// Whether a point improves on `best`: a lower cost, or at the noise floor of the cost (within
/// a few ulps) a smaller gradient, since near the optimum the cost can no longer tell points
/// apart but the gradient can.
fn better(value: f64, gradient: &[f64], best: &Best) -> bool {
    let floor = 8.0 * f64::EPSILON * best.value.abs().max(f64::MIN_POSITIVE);
    if value < best.value - floor {
        return true;
    }
    value <= best.value + floor && max_abs(gradient) < max_abs(&best.gradient)
}

fn max_abs(values: &[f64]) -> f64 {
    values.iter().fold(0.0, |m, v| m.max(v.abs()))
}

/// Runs one L-BFGS attempt from `start`; returns the iterations and what stopped it.
fn lbfgs<O: Objective>(
    objective: &O,
    best: &Mutex<Option<Best>>,
    start: &[f64],
    settings: &Settings,
) -> (u64, String) {
    let problem = Problem { objective, last: Mutex::new(None), best };
    // The solver's own criterion is on the L2 norm, which bounds the max-norm we judge by.
    let solver = match LBFGS::new(MoreThuenteLineSearch::new(), 10)
        .with_tolerance_grad(settings.gradient_tolerance * 0.5)
        .and_then(|s| s.with_tolerance_cost(0.0))
    {
        Ok(solver) => solver,
        Err(error) => return (0, format!("l-bfgs setup failed: {error}")),
    };
    let run = Executor::new(problem, solver)
        .configure(|state| state.param(Array1::from(start.to_vec())).max_iters(settings.max_iterations))
        .run();
    match run {
        Ok(result) => (result.state.get_iter(), format!("l-bfgs: {}", result.state.get_termination_status())),
        Err(error) => (0, format!("l-bfgs stopped: {error}")),
    }
}

/// Runs Nelder-Mead from `start` with a simplex of steps 0.1 in each log-parameter.
fn nelder_mead<O: Objective>(
    objective: &O,
    best: &Mutex<Option<Best>>,
    start: &[f64],
    settings: &Settings,
) -> (u64, String) {
    let problem = Problem { objective, last: Mutex::new(None), best };
    let mut simplex = vec![Array1::from(start.to_vec())];
    for i in 0..start.len() {
        let mut vertex = start.to_vec();
        vertex[i] += 0.1;
        simplex.push(Array1::from(vertex));
    }
    let solver = match NelderMead::new(simplex).with_sd_tolerance(1e-14) {
        Ok(solver) => solver,
        Err(error) => return (0, format!("nelder-mead setup failed: {error}")),
    };
    let run = Executor::new(problem, solver)
        .configure(|state| state.max_iters(settings.max_iterations.saturating_mul(4)))
        .run();
    match run {
        Ok(result) => {
            (result.state.get_iter(), format!("nelder-mead: {}", result.state.get_termination_status()))
        }
        Err(error) => (0, format!("nelder-mead stopped: {error}")),
    }
}

/// Runs BFGS from `start` with the given initial inverse Hessian (row-major, `n * n`).
fn bfgs<O: Objective>(
    objective: &O,
    best: &Mutex<Option<Best>>,
    start: &[f64],
    inverse_hessian: Vec<f64>,
    settings: &Settings,
) -> (u64, String) {
    let n = start.len();
    let Ok(inverse_hessian) = Array2::from_shape_vec((n, n), inverse_hessian) else {
        return (0, "bfgs setup failed: inverse Hessian of the wrong shape".to_string());
    };
    let problem = Problem { objective, last: Mutex::new(None), best };
    let solver = match BFGS::new(MoreThuenteLineSearch::new())
        .with_tolerance_grad(settings.gradient_tolerance * 0.5)
        .and_then(|s| s.with_tolerance_cost(0.0))
    {
        Ok(solver) => solver,
        Err(error) => return (0, format!("bfgs setup failed: {error}")),
    };
    let run = Executor::new(problem, solver)
        .configure(|state| {
            state
                .param(Array1::from(start.to_vec()))
                .inv_hessian(inverse_hessian)
                .max_iters(settings.max_iterations)
        })
        .run();
    match run {
        Ok(result) => (result.state.get_iter(), format!("bfgs: {}", result.state.get_termination_status())),
        Err(error) => (0, format!("bfgs stopped: {error}")),
    }
}

/// The Hessian of `objective` at `theta` by central differences of its gradient (symmetrised,
/// row-major).
fn hessian<O: Objective>(objective: &O, theta: &[f64]) -> Vec<f64> {
    let n = theta.len();
    let step = 1e-4;
    let mut h = vec![0.0; n * n];
    for j in 0..n {
        let mut up = theta.to_vec();
        let mut down = theta.to_vec();
        up[j] += step;
        down[j] -= step;
        let (g_up, g_down) = (objective.evaluate(&up).1, objective.evaluate(&down).1);
        for i in 0..n {
            h[i * n + j] = (g_up[i] - g_down[i]) / (2.0 * step);
        }
    }
    for i in 0..n {
        for j in 0..i {
            let mean = 0.5 * (h[i * n + j] + h[j * n + i]);
            h[i * n + j] = mean;
            h[j * n + i] = mean;
        }
    }
    h
}

/// The inverse of a small symmetric positive-definite matrix (row-major) by Cholesky, or
/// `None` when it is not positive definite or not finite.
fn inverse_spd(a: &[f64], n: usize) -> Option<Vec<f64>> {
    // a = L L^T, L lower triangular.
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let sum: f64 = (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum();
            if i == j {
                let d = a[i * n + i] - sum;
                if !(d.is_finite() && d > 0.0) {
                    return None;
                }
                l[i * n + i] = d.sqrt();
            } else {
                l[i * n + j] = (a[i * n + j] - sum) / l[j * n + j];
            }
        }
    }
    // Solve L L^T x = e_c for each column c.
    let mut inverse = vec![0.0; n * n];
    for c in 0..n {
        let mut y = vec![0.0; n];
        for i in 0..n {
            let sum: f64 = (0..i).map(|k| l[i * n + k] * y[k]).sum();
            y[i] = (if i == c { 1.0 } else { 0.0 } - sum) / l[i * n + i];
        }
        for i in (0..n).rev() {
            let sum: f64 = (i + 1..n).map(|k| l[k * n + i] * inverse[k * n + c]).sum();
            inverse[i * n + c] = (y[i] - sum) / l[i * n + i];
        }
    }
    inverse.iter().all(|v| v.is_finite()).then_some(inverse)
}

/// The outcome at the best point recorded in `best`.
fn outcome(
    best: &Mutex<Option<Best>>,
    start: &[f64],
    iterations: u64,
    last_stop: String,
    settings: &Settings,
) -> Outcome {
    let best = best.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    match best.as_ref() {
        Some(b) => {
            let gradient_max = max_abs(&b.gradient);
            Outcome {
                theta: b.theta.clone(),
                value: b.value,
                gradient_max,
                iterations,
                converged: gradient_max < settings.gradient_tolerance,
                last_stop,
            }
        }
        None => Outcome {
            theta: start.to_vec(),
            value: f64::NAN,
            gradient_max: f64::NAN,
            iterations,
            converged: false,
            last_stop: format!("{last_stop}; the objective is not finite at any point tried"),
        },
    }
}

/// Minimises `objective` from `start`: L-BFGS; then, until converged, at most twice: BFGS from
/// the best point with the inverse of the Hessian there (central differences of the gradient)
/// as its initial inverse Hessian, which converges in a few steps where L-BFGS's curvature
/// memory went stale; and once, in between, Nelder-Mead, for points where the Hessian is not
/// positive definite.
pub(crate) fn minimize<O: Objective>(objective: &O, start: &[f64], settings: &Settings) -> Outcome {
    let best = Mutex::new(None);
    let (iterations, last_stop) = lbfgs(objective, &best, start, settings);
    rescue(objective, &best, start, iterations, last_stop, settings)
}

/// The rescue steps of [`minimize`] after a first attempt recorded in `best`.
fn rescue<O: Objective>(
    objective: &O,
    best: &Mutex<Option<Best>>,
    start: &[f64],
    mut iterations: u64,
    mut last_stop: String,
    settings: &Settings,
) -> Outcome {
    for attempt in 0..2 {
        let current = outcome(best, start, iterations, last_stop.clone(), settings);
        if current.converged || !current.value.is_finite() {
            return current;
        }
        if let Some(inverse) = inverse_spd(&hessian(objective, &current.theta), start.len()) {
            let (more, stop) = bfgs(objective, best, &current.theta, inverse, settings);
            iterations += more;
            last_stop = format!("{last_stop}, then {stop}");
            if outcome(best, start, iterations, String::new(), settings).converged {
                break;
            }
        }
        if attempt == 0 {
            let theta = outcome(best, start, iterations, String::new(), settings).theta;
            let (more, stop) = nelder_mead(objective, best, &theta, settings);
            iterations += more;
            last_stop = format!("{last_stop}, then {stop}");
        }
    }
    outcome(best, start, iterations, last_stop, settings)
}

/// Minimises `objective` from `start`, warm-started on `warm`, a cheaper approximation of it
/// (the same model on a subsample), when given: L-BFGS to a loose tolerance on `warm`, then
/// BFGS on `objective` from that point with the inverse of `warm`'s Hessian there as the
/// initial inverse Hessian, so the full data is evaluated a handful of times only. The warm
/// point is used only if every log-parameter stays within `warm_radius` of `start` and the
/// Hessian is positive definite; otherwise, and when BFGS stops short, as [`minimize`].
pub(crate) fn minimize_warm<O: Objective, W: Objective>(
    objective: &O,
    warm: Option<&W>,
    start: &[f64],
    warm_radius: f64,
    settings: &Settings,
) -> Outcome {
    let Some(warm) = warm else {
        return minimize(objective, start, settings);
    };
    let warm_best = Mutex::new(None);
    let loose = Settings { gradient_tolerance: settings.gradient_tolerance.max(1e-5), ..*settings };
    let warm_iterations = lbfgs(warm, &warm_best, start, &loose).0;
    let warm_best = warm_best.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner());
    let warm_point = warm_best
        .map(|b| b.theta)
        .filter(|theta| theta.iter().zip(start).all(|(t, s)| (t - s).abs() <= warm_radius));
    let Some(warm_point) = warm_point else {
        return minimize(objective, start, settings);
    };
    let best = Mutex::new(None);
    let (more, last_stop) = match inverse_spd(&hessian(warm, &warm_point), start.len()) {
        Some(inverse) => bfgs(objective, &best, &warm_point, inverse, settings),
        None => lbfgs(objective, &best, &warm_point, settings),
    };
    rescue(objective, &best, start, warm_iterations + more, last_stop, settings)
}

/// Every `step`-th index of `n` so that about `target` remain, or `None` when `n` is below
/// four times `target` (the warm start would not pay for itself).
pub(crate) fn subsample_step(n: usize, target: usize) -> Option<usize> {
    (n >= 4 * target).then(|| n / target)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A banana-shaped test function (Rosenbrock), minimum 0 at (1, 1).
    struct Rosenbrock;

    impl Objective for Rosenbrock {
        fn evaluate(&self, theta: &[f64]) -> (f64, Vec<f64>) {
            let (x, y) = (theta[0], theta[1]);
            let value = (1.0 - x).powi(2) + 100.0 * (y - x * x).powi(2);
            let gradient = vec![-2.0 * (1.0 - x) - 400.0 * x * (y - x * x), 200.0 * (y - x * x)];
            (value, gradient)
        }
    }

    #[test]
    fn finds_the_minimum_of_rosenbrock() {
        let settings = Settings { max_iterations: 500, gradient_tolerance: 1e-8 };
        let outcome = minimize(&Rosenbrock, &[-1.2, 1.0], &settings);
        assert!(outcome.converged, "{outcome:?}");
        assert!((outcome.theta[0] - 1.0).abs() < 1e-6 && (outcome.theta[1] - 1.0).abs() < 1e-6);
    }

    /// A function that is not finite left of 0, with its minimum at 0.5.
    struct Walled;

    impl Objective for Walled {
        fn evaluate(&self, theta: &[f64]) -> (f64, Vec<f64>) {
            let x = theta[0];
            if x <= 0.0 {
                return (f64::NAN, vec![f64::NAN]);
            }
            (x - 0.5 * x.ln(), vec![1.0 - 0.5 / x])
        }
    }

    #[test]
    fn inverts_small_positive_definite_matrices() {
        let a = [4.0, 2.0, 0.6, 2.0, 5.0, 1.0, 0.6, 1.0, 3.0];
        let inverse = inverse_spd(&a, 3).expect("positive definite");
        for i in 0..3 {
            for j in 0..3 {
                let product: f64 = (0..3).map(|k| a[i * 3 + k] * inverse[k * 3 + j]).sum();
                assert!((product - if i == j { 1.0 } else { 0.0 }).abs() < 1e-12);
            }
        }
        assert_eq!(inverse_spd(&[1.0, 2.0, 2.0, 1.0], 2), None);
    }

    #[test]
    fn warm_starts_on_an_approximation() {
        let settings = Settings { max_iterations: 500, gradient_tolerance: 1e-8 };
        let outcome = minimize_warm(&Rosenbrock, Some(&Rosenbrock), &[-1.2, 1.0], 10.0, &settings);
        assert!(outcome.converged, "{outcome:?}");
        assert!((outcome.theta[0] - 1.0).abs() < 1e-6 && (outcome.theta[1] - 1.0).abs() < 1e-6);
    }

    #[test]
    fn retreats_from_points_where_the_objective_is_not_finite() {
        let settings = Settings { max_iterations: 500, gradient_tolerance: 1e-9 };
        let outcome = minimize(&Walled, &[3.0], &settings);
        assert!(outcome.converged, "{outcome:?}");
        assert!((outcome.theta[0] - 0.5).abs() < 1e-8);
    }
}
