//! The holdout check of the purchase model, as `lifetimes` does it: the model fitted on a
//! calibration period predicts each customer's repeat purchases in the holdout period after it
//! (`conditional_expected_number_of_purchases_up_to_time(duration, frequency_cal, recency_cal,
//! T_cal)`), and the predictions are compared with the purchases that happened, per customer, in
//! total and by number of calibration repeat purchases (the table of
//! `plot_calibration_purchases_vs_holdout_purchases`).
//!
//! [`calibration_and_holdout`] is the reference of the per-customer figures
//! (`calibration_and_holdout_data(..., freq="D")`); the engine builds them from two evaluations
//! of its event scan and is tested against it.

use rayon::prelude::*;

use super::{BgNbd, CustomerSummary, Error, Result, TimeUnit, summarize};

/// One customer of the holdout check: the calibration summary and the holdout purchases.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HoldoutCustomer {
    /// The summary as of the calibration end (`frequency_cal`, `recency_cal`, `T_cal`).
    pub calibration: CustomerSummary,
    /// Distinct purchase days in the holdout period (`frequency_holdout`): every one is a
    /// repeat purchase, the customer having bought in the calibration period.
    pub actual: f64,
}

/// A customer's calibration summary and holdout purchase days, the reference of
/// `calibration_and_holdout_data(transactions, ..., calibration_period_end, observation_period_end,
/// freq="D")`: the summary of the purchases on or before `calibration_end_day`
/// ([`summarize`]), and the number of distinct purchase days after it, up to and including
/// `observation_end_day`. `None` without a purchase in the calibration period (lifetimes leaves
/// such customers out).
pub fn calibration_and_holdout(
    purchase_days: &[(i64, f64)],
    calibration_end_day: i64,
    observation_end_day: i64,
    unit: TimeUnit,
) -> Option<HoldoutCustomer> {
    let calibration = summarize(purchase_days, calibration_end_day, unit)?;
    let mut holdout: Vec<i64> = purchase_days
        .iter()
        .map(|(day, _)| *day)
        .filter(|day| *day > calibration_end_day && *day <= observation_end_day)
        .collect();
    holdout.sort_unstable();
    holdout.dedup();
    Some(HoldoutCustomer { calibration, actual: holdout.len() as f64 })
}

/// Mean actual and predicted holdout purchases of the customers with one number of calibration
/// repeat purchases: one point of each line of lifetimes'
/// `plot_calibration_purchases_vs_holdout_purchases(kind="frequency_cal")`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HoldoutGroup {
    /// Calibration repeat purchases (`frequency_cal`).
    pub frequency_cal: u32,
    /// Customers with that many.
    pub customers: usize,
    /// Their mean holdout purchases.
    pub mean_actual: f64,
    /// Their mean predicted holdout purchases.
    pub mean_predicted: f64,
}

/// The result of [`holdout_check`].
#[derive(Clone, Debug, PartialEq)]
pub struct HoldoutCheck {
    /// The holdout's length, in the model's time unit (`duration_holdout`).
    pub duration: f64,
    /// Per customer, in input order: the expected repeat purchases in the holdout.
    pub predicted: Vec<f64>,
    /// Sum of the predictions.
    pub total_predicted: f64,
    /// Sum of the holdout purchases.
    pub total_actual: f64,
    /// Mean of |predicted - actual| over the customers.
    pub mean_absolute_error: f64,
    /// By calibration repeat purchases, ascending; every number present once.
    pub by_frequency: Vec<HoldoutGroup>,
}

/// Predicts each customer's holdout purchases with `model` (fitted on the calibration
/// summaries) over `duration` time units and compares them with the actual ones.
///
/// Sums are taken in input order (reproducible for a given order, whatever the thread count).
/// Errors: no customer, a negative or non-finite duration, or (in practice never) a duration so
/// long that the expected purchases do not converge.
pub fn holdout_check(model: &BgNbd, customers: &[HoldoutCustomer], duration: f64) -> Result<HoldoutCheck> {
    if !(duration.is_finite() && duration >= 0.0) {
        return Err(Error::InvalidOption {
            name: "duration",
            value: duration,
            reason: "must be finite and >= 0",
        });
    }
    if customers.is_empty() {
        return Err(Error::TooFewCustomers {
            model: "bg_nbd",
            found: 0,
            needed: 1,
            hint: "the holdout check needs customers who bought in the calibration period: use a shorter holdout",
        });
    }
    let predicted: Vec<Option<f64>> =
        customers.par_iter().map(|c| model.expected_purchases(&c.calibration, duration)).collect();
    let predicted: Vec<f64> = predicted.into_iter().collect::<Option<_>>().ok_or(Error::InvalidOption {
        name: "duration",
        value: duration,
        reason: "is too long: the expected purchases do not converge",
    })?;
    let total_predicted: f64 = predicted.iter().sum();
    let total_actual: f64 = customers.iter().map(|c| c.actual).sum();
    let absolute: f64 = customers.iter().zip(&predicted).map(|(c, p)| (p - c.actual).abs()).sum();
    let mut groups: std::collections::BTreeMap<u32, (usize, f64, f64)> = std::collections::BTreeMap::new();
    for (c, p) in customers.iter().zip(&predicted) {
        // Frequencies are whole numbers <= 1e9 (CustomerSummary's invariant).
        let group = groups.entry(c.calibration.frequency() as u32).or_default();
        group.0 += 1;
        group.1 += c.actual;
        group.2 += p;
    }
    let by_frequency = groups
        .into_iter()
        .map(|(frequency_cal, (n, actual, predicted))| HoldoutGroup {
            frequency_cal,
            customers: n,
            mean_actual: actual / n as f64,
            mean_predicted: predicted / n as f64,
        })
        .collect();
    Ok(HoldoutCheck {
        duration,
        total_predicted,
        total_actual,
        mean_absolute_error: absolute / customers.len() as f64,
        predicted,
        by_frequency,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibration_and_holdout_split_at_the_calibration_end_day() {
        // Days 3 and 8 (twice) are calibration; 10 is the calibration end; 11, 11 and 15 are
        // holdout (two days); 20 is after the observation end.
        let days = [(3, 5.0), (8, 1.0), (8, 2.0), (11, 4.0), (11, 1.0), (15, 2.0), (20, 9.0), (10, 3.0)];
        let got = calibration_and_holdout(&days, 10, 19, TimeUnit::Day).expect("bought in calibration");
        assert_eq!(got.calibration, summarize(&days, 10, TimeUnit::Day).expect("a summary"));
        assert_eq!(
            (got.calibration.frequency(), got.calibration.recency(), got.calibration.t()),
            (2.0, 7.0, 7.0)
        );
        assert_eq!(got.actual, 2.0);
        // The observation end day is included.
        assert_eq!(calibration_and_holdout(&days, 10, 20, TimeUnit::Day).expect("a customer").actual, 3.0);
        // Without a calibration purchase there is no row.
        assert_eq!(calibration_and_holdout(&[(12, 1.0)], 10, 19, TimeUnit::Day), None);
    }

    #[test]
    fn holdout_check_sums_and_groups_by_calibration_frequency() {
        let model = BgNbd::new(0.243, 4.414, 0.793, 2.426).expect("valid");
        let customer = |x: f64, tx: f64, t: f64, actual: f64| HoldoutCustomer {
            calibration: CustomerSummary::new(x, tx, t, 0.0).expect("valid"),
            actual,
        };
        let customers =
            [customer(0.0, 0.0, 30.0, 0.0), customer(2.0, 20.0, 31.0, 3.0), customer(2.0, 5.0, 35.0, 0.0)];
        let check = holdout_check(&model, &customers, 39.0).expect("checks");
        for (c, p) in customers.iter().zip(&check.predicted) {
            assert_eq!(Some(*p), model.expected_purchases(&c.calibration, 39.0));
        }
        let p = &check.predicted;
        assert!((check.total_predicted - (p[0] + p[1] + p[2])).abs() < 1e-12);
        assert_eq!(check.total_actual, 3.0);
        let mae = (p[0] + (p[1] - 3.0).abs() + p[2]) / 3.0;
        assert!((check.mean_absolute_error - mae).abs() < 1e-12);
        assert_eq!(check.by_frequency.len(), 2);
        assert_eq!((check.by_frequency[1].frequency_cal, check.by_frequency[1].customers), (2, 2));
        assert!((check.by_frequency[1].mean_predicted - (p[1] + p[2]) / 2.0).abs() < 1e-12);
        assert_eq!(check.by_frequency[1].mean_actual, 1.5);
        assert!(holdout_check(&model, &customers, -1.0).is_err());
        assert!(holdout_check(&model, &[], 39.0).is_err());
    }
}
