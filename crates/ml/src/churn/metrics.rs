//! Holdout metrics of a probabilistic classifier: ROC AUC (the Mann-Whitney statistic, ties
//! counted one half) and calibration (a reliability table in equal-count bins, the Brier score
//! and the expected calibration error).

use super::{Error, Result};

/// Checks that `scores` and `labels` pair up and that the scores are finite.
fn check_pairs(scores: &[f64], labels: &[bool]) -> Result<()> {
    if scores.len() != labels.len() {
        return Err(Error::ShapeMismatch { what: "labels", expected: scores.len(), found: labels.len() });
    }
    if let Some(row) = scores.iter().position(|s| !s.is_finite()) {
        return Err(Error::NonFiniteScore { row, value: scores[row] });
    }
    Ok(())
}

/// Area under the ROC curve of `scores` for the positive `labels` (`true` = churned): the
/// probability that a random positive scores above a random negative, ties counting one half
/// (the Mann-Whitney U statistic over `n_pos * n_neg`). Errors when the lengths differ, a score
/// is not finite, or one class is absent.
pub fn auc(scores: &[f64], labels: &[bool]) -> Result<f64> {
    check_pairs(scores, labels)?;
    let positives = labels.iter().filter(|l| **l).count();
    let negatives = labels.len() - positives;
    if positives == 0 || negatives == 0 {
        return Err(Error::OneClass { class: if positives == 0 { "retained" } else { "churned" } });
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_unstable_by(|&i, &j| scores[i].total_cmp(&scores[j]));
    // Sum of the positives' ranks (1-based), tie groups sharing their mean rank.
    let mut rank_sum = 0.0;
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && scores[order[end]] == scores[order[start]] {
            end += 1;
        }
        let mean_rank = (start + 1 + end) as f64 / 2.0;
        let positives_in_group = order[start..end].iter().filter(|&&i| labels[i]).count();
        rank_sum += mean_rank * positives_in_group as f64;
        start = end;
    }
    let (p, n) = (positives as f64, negatives as f64);
    Ok((rank_sum - p * (p + 1.0) / 2.0) / (p * n))
}

/// The fewest churners, and the fewest retained entities, a holdout needs before its AUC is
/// worth reading: with fewer in either class, the AUC's standard error is above about 0.05
/// (Hanley & McNeil's approximation at an AUC of 0.75 with 30 positives and many negatives,
/// [`auc_standard_error`]), a 95% interval of about ±0.1.
pub const MIN_TRUSTED_CLASS: usize = 30;

/// The standard error of an AUC of `auc` measured on `positives` and `negatives` rows, by
/// Hanley & McNeil (1982): `sqrt((A (1 - A) + (n1 - 1)(Q1 - A²) + (n0 - 1)(Q2 - A²)) / (n1 n0))`
/// with `Q1 = A / (2 - A)` and `Q2 = 2 A² / (1 + A)`. NaN when a class is empty.
pub fn auc_standard_error(auc: f64, positives: usize, negatives: usize) -> f64 {
    if positives == 0 || negatives == 0 {
        return f64::NAN;
    }
    let (a, n1, n0) = (auc, positives as f64, negatives as f64);
    let q1 = a / (2.0 - a);
    let q2 = 2.0 * a * a / (1.0 + a);
    let variance = (a * (1.0 - a) + (n1 - 1.0) * (q1 - a * a) + (n0 - 1.0) * (q2 - a * a)) / (n1 * n0);
    variance.max(0.0).sqrt()
}

/// One bin of a reliability table.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CalibrationBin {
    /// Rows in the bin.
    pub count: usize,
    /// Smallest predicted probability in the bin.
    pub min_predicted: f64,
    /// Largest predicted probability in the bin.
    pub max_predicted: f64,
    /// Mean predicted probability.
    pub mean_predicted: f64,
    /// Share of positive labels.
    pub observed_rate: f64,
}

/// Calibration of predicted probabilities against outcomes.
#[derive(Clone, Debug, PartialEq)]
pub struct Calibration {
    /// The reliability table, by increasing predicted probability; empty bins are left out.
    pub bins: Vec<CalibrationBin>,
    /// Mean squared difference between the probability and the outcome (0 or 1).
    pub brier: f64,
    /// Expected calibration error: `sum over bins of count / n * |observed - mean predicted|`.
    pub expected_calibration_error: f64,
}

/// Reliability table of `probabilities` against `labels` in `bins` equal-count bins (deciles
/// for 10): rows sorted by probability (ties by row order) and cut at `k * n / bins`, so a run
/// of equal probabilities may straddle two bins. Errors when the lengths differ, a probability
/// is not in `[0, 1]`, there are no rows, or `bins == 0`.
pub fn calibration(probabilities: &[f64], labels: &[bool], bins: usize) -> Result<Calibration> {
    check_pairs(probabilities, labels)?;
    if let Some(row) = probabilities.iter().position(|p| !(0.0..=1.0).contains(p)) {
        return Err(Error::NonFiniteScore { row, value: probabilities[row] });
    }
    if bins == 0 {
        return Err(Error::InvalidOption { name: "bins", value: 0.0, reason: "must be >= 1" });
    }
    let n = probabilities.len();
    if n == 0 {
        return Err(Error::TooFewRows { found: 0, needed: 1 });
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| probabilities[i].total_cmp(&probabilities[j]));
    let mut table = Vec::with_capacity(bins);
    let mut error = 0.0;
    for k in 0..bins {
        let rows = &order[k * n / bins..(k + 1) * n / bins];
        if rows.is_empty() {
            continue;
        }
        let count = rows.len();
        let mean_predicted = rows.iter().map(|&i| probabilities[i]).sum::<f64>() / count as f64;
        let observed_rate = rows.iter().filter(|&&i| labels[i]).count() as f64 / count as f64;
        error += count as f64 / n as f64 * (observed_rate - mean_predicted).abs();
        table.push(CalibrationBin {
            count,
            min_predicted: probabilities[rows[0]],
            max_predicted: probabilities[rows[count - 1]],
            mean_predicted,
            observed_rate,
        });
    }
    let brier =
        probabilities.iter().zip(labels).map(|(p, l)| (p - if *l { 1.0 } else { 0.0 }).powi(2)).sum::<f64>()
            / n as f64;
    Ok(Calibration { bins: table, brier, expected_calibration_error: error })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_standard_error_follows_hanley_and_mcneil() {
        // A = 0.75 with 30 and 30 cases: Q1 = 0.6, Q2 = 0.642857, variance 3.6054 / 900.
        assert!((auc_standard_error(0.75, 30, 30) - 0.063293).abs() < 1e-6);
        // The documented threshold: 30 positives and many negatives, about 0.05.
        let se = auc_standard_error(0.75, MIN_TRUSTED_CLASS, 10_000);
        assert!((0.045..0.055).contains(&se), "{se}");
        // Fewer rows, wider; an empty class has none.
        assert!(auc_standard_error(0.75, 10, 10_000) > se);
        assert!(auc_standard_error(0.75, 0, 10).is_nan());
    }

    fn check_auc(scores: &[f64], labels: &[bool], expected: f64) {
        let got = auc(scores, labels).expect("valid input");
        assert!((got - expected).abs() < 1e-12, "scores {scores:?} labels {labels:?}: {got}");
    }

    /// The definition: pairs (positive, negative) counted 1 when ordered right, 1/2 when tied.
    fn brute_force(scores: &[f64], labels: &[bool]) -> f64 {
        let (mut wins, mut pairs) = (0.0, 0.0);
        for (i, li) in labels.iter().enumerate() {
            for (j, lj) in labels.iter().enumerate() {
                if *li && !*lj {
                    pairs += 1.0;
                    wins += if scores[i] > scores[j] {
                        1.0
                    } else if scores[i] == scores[j] {
                        0.5
                    } else {
                        0.0
                    };
                }
            }
        }
        wins / pairs
    }

    #[test]
    fn auc_is_the_mann_whitney_statistic() {
        check_auc(&[0.1, 0.2, 0.3, 0.4], &[false, false, true, true], 1.0);
        check_auc(&[0.1, 0.2, 0.3, 0.4], &[true, true, false, false], 0.0);
        check_auc(&[0.5, 0.5, 0.5, 0.5], &[true, false, true, false], 0.5);
        let scores = [0.3, 0.1, 0.3, 0.9, 0.5, 0.3, 0.2, 0.9];
        let labels = [true, false, false, true, false, true, false, false];
        check_auc(&scores, &labels, brute_force(&scores, &labels));
    }

    #[test]
    fn auc_rejects_one_class_and_bad_scores() {
        let error = auc(&[0.1, 0.2], &[true, true]).expect_err("one class");
        assert_eq!(error.code(), "churn_one_class");
        assert!(auc(&[0.1, f64::NAN], &[true, false]).is_err());
        assert!(auc(&[0.1], &[true, false]).is_err());
    }

    #[test]
    fn calibration_bins_hold_equal_counts() {
        let probabilities: Vec<f64> = (0..100).map(|i| f64::from(i) / 100.0).collect();
        let labels: Vec<bool> = (0..100).map(|i| i % 10 == 9).collect();
        let table = calibration(&probabilities, &labels, 10).expect("valid input");
        assert_eq!(table.bins.len(), 10);
        assert!(table.bins.iter().all(|b| b.count == 10 && (b.observed_rate - 0.1).abs() < 1e-12));
        assert!((table.bins[0].mean_predicted - 0.045).abs() < 1e-12);
        let brier: f64 = probabilities
            .iter()
            .zip(&labels)
            .map(|(p, l)| (p - f64::from(u8::from(*l))).powi(2))
            .sum::<f64>()
            / 100.0;
        assert!((table.brier - brier).abs() < 1e-12);
        // Fewer rows than bins: empty bins are left out.
        let small = calibration(&[0.2, 0.8], &[false, true], 10).expect("valid input");
        assert_eq!(small.bins.len(), 2);
        assert!(calibration(&[1.5], &[true], 10).is_err());
        assert!(calibration(&[], &[], 10).is_err());
    }
}
