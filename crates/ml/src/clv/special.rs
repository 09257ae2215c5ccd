//! The special-function piece of the BG/NBD conditional expectation: a Gauss hypergeometric
//! series, summed after an Euler transformation that makes it cheap and removes the `a = 1`
//! singularity of the textbook formula.
//!
//! The paper's equation (10) needs `2F1(r + x, b + x; a + b + x - 1; z)` with
//! `z = t / (alpha + T + t)`. Euler's transformation
//! `2F1(A, B; C; z) = (1 - z)^(C - A - B) 2F1(C - A, C - B; C; z)` turns it into
//! `2F1(a + b - 1 - r, a - 1; a + b + x - 1; z)`, whose numerator parameters do not grow with
//! `x`, and the powers of `1 - z` cancel with the paper's `((alpha + T) / (alpha + T + t))^(r+x)`
//! factor, leaving `1 - (1 - z)^(a - 1) 2F1(...)`. Since the second numerator parameter is
//! `a - 1`, every term but the first carries a factor `a - 1`, which cancels the paper's
//! `1 / (a - 1)`.

/// Terms summed at most before giving up (only reached when `z` is within about 1e-5 of 1,
/// that is a horizon about 10^5 times `alpha + T`).
const MAX_TERMS: usize = 1_000_000;

/// Returns `(a + b + x - 1) * (1 - (1 - z)^(a-1) * 2F1(a+b-1-r, a-1; a+b+x-1; z)) / (a - 1)`,
/// the conditional expectation of repeat purchases in a horizon for a customer known to be
/// alive, given `ln_one_minus_z = ln(1 - z)` (passed in so the caller computes it with
/// `ln_1p`). `None` when the series does not converge within [`MAX_TERMS`] terms.
pub(crate) fn alive_expectation(r: f64, a: f64, b: f64, x: f64, ln_one_minus_z: f64) -> Option<f64> {
    let z = -ln_one_minus_z.exp_m1();
    if z <= 0.0 {
        return Some(0.0);
    }
    let epsilon = a - 1.0;
    let upper = a + b - 1.0 - r; // first numerator parameter after the transformation
    let lower = a + b + x - 1.0; // the denominator parameter C, > -1 because a, b > 0
    // (1 - (1 - z)^eps) / eps, continuous at eps = 0.
    let head = if epsilon == 0.0 { -ln_one_minus_z } else { -(epsilon * ln_one_minus_z).exp_m1() / epsilon };
    // C * sum_{k>=1} (upper)_k (a)_{k-1} z^k / ((C)_k k!), summed as
    // sum_{k>=1} (upper)_k (a)_{k-1} z^k / ((C+1)_{k-1} k!): finite even at C = 0.
    let mut term = upper * z;
    let mut sum = term;
    let mut k = 1.0;
    let mut converged = false;
    for _ in 0..MAX_TERMS {
        if term == 0.0 {
            converged = true;
            break;
        }
        let ratio = (upper + k) * (a + k - 1.0) * z / ((lower + k) * (k + 1.0));
        term *= ratio;
        sum += term;
        k += 1.0;
        // Asymptotically the ratios tend monotonically to z, so once below 1 the tail is at
        // most term * q / (1 - q) with q the larger of the current ratio and z.
        let bound = ratio.abs().max(z);
        if bound < 1.0 && (term * bound / (1.0 - bound)).abs() <= 1e-17 * sum.abs() {
            converged = true;
            break;
        }
    }
    if !converged || !sum.is_finite() {
        return None;
    }
    let value = lower * head - (epsilon * ln_one_minus_z).exp() * sum;
    value.is_finite().then_some(value.max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct summation of the textbook form, for moderate parameters where it is accurate.
    fn textbook(r: f64, a: f64, b: f64, x: f64, z: f64) -> f64 {
        let (ha, hb, hc) = (r + x, b + x, a + b + x - 1.0);
        let mut term = 1.0;
        let mut sum = 1.0;
        for k in 0..20_000 {
            let k = k as f64;
            term *= (ha + k) * (hb + k) / ((hc + k) * (k + 1.0)) * z;
            sum += term;
        }
        (a + b + x - 1.0) / (a - 1.0) * (1.0 - sum * (1.0 - z).powf(r + x))
    }

    #[test]
    fn agrees_with_the_textbook_series() {
        for &(r, a, b, x, z) in &[
            (0.243, 0.793, 2.426, 0.0, 0.3),
            (0.243, 0.793, 2.426, 2.0, 0.5),
            (1.5, 2.5, 4.0, 7.0, 0.2),
            (0.5, 0.3, 0.4, 0.0, 0.4),
            (0.9, 1.2, 20.0, 30.0, 0.6),
        ] {
            let expected = textbook(r, a, b, x, z);
            let got = alive_expectation(r, a, b, x, (1.0 - z).ln()).expect("converges");
            assert!(
                ((got - expected) / expected).abs() < 1e-9,
                "r {r} a {a} b {b} x {x} z {z}: {got} vs {expected}"
            );
        }
    }

    #[test]
    fn is_continuous_at_a_equal_one() {
        let ln_one_minus_z = (0.4f64).ln();
        let at_one = alive_expectation(0.5, 1.0, 3.0, 2.0, ln_one_minus_z).expect("converges");
        let below = alive_expectation(0.5, 1.0 - 1e-7, 3.0, 2.0, ln_one_minus_z).expect("converges");
        let above = alive_expectation(0.5, 1.0 + 1e-7, 3.0, 2.0, ln_one_minus_z).expect("converges");
        assert!(at_one.is_finite() && at_one > 0.0);
        assert!((below - at_one).abs() < 1e-6 * at_one && (above - at_one).abs() < 1e-6 * at_one);
    }

    #[test]
    fn is_zero_at_zero_horizon() {
        assert_eq!(alive_expectation(0.5, 0.8, 2.0, 1.0, 0.0), Some(0.0));
    }
}
