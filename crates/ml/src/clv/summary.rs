//! Per-customer purchase summaries `(x, t_x, T, m)` in the convention of Fader, Hardie & Lee
//! (2005), as `lifetimes` computes them, and the time units they are expressed in.

use super::{Error, Result};

/// The unit of `recency`, `t` and prediction horizons.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimeUnit {
    /// One calendar day.
    Day,
    /// Seven calendar days (the paper's unit on CDNOW).
    Week,
}

impl TimeUnit {
    /// Days in one unit: 1 or 7.
    pub fn days(self) -> f64 {
        match self {
            TimeUnit::Day => 1.0,
            TimeUnit::Week => 7.0,
        }
    }

    /// Converts a number of days into this unit (`days / self.days()`).
    pub fn from_days(self, days: f64) -> f64 {
        days / self.days()
    }

    /// Units in one CLV month, as `lifetimes`' `customer_lifetime_value` counts them: 30 days,
    /// or 4.345 weeks (so a "month" is 30 days in day units but 30.415 days in week units;
    /// kept for agreement with `lifetimes`).
    pub fn units_per_month(self) -> f64 {
        match self {
            TimeUnit::Day => 30.0,
            TimeUnit::Week => 4.345,
        }
    }
}

/// One customer's purchase history as the models see it.
///
/// Invariants (checked by [`CustomerSummary::new`]): `frequency` is a whole number in
/// `0..=1e9`; `0 <= recency <= t`, all finite; `recency == 0` when `frequency == 0`.
/// `monetary` is not checked: a non-finite or non-positive value makes the customer unusable
/// for the Gamma-Gamma model (excluded from its fit, expected spend `None`), see `docs/predictive.md`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CustomerSummary {
    frequency: f64,
    recency: f64,
    t: f64,
    monetary: f64,
}

/// The largest frequency accepted: far above any real purchase count, low enough that the
/// per-frequency tables of the fits stay small and `x as u32` is exact.
const MAX_FREQUENCY: f64 = 1e9;

impl CustomerSummary {
    /// Builds a summary, checking the invariants listed on the type.
    ///
    /// `frequency` = repeat purchase days (distinct purchase days - 1); `recency` = time from
    /// the first to the last purchase day; `t` = time from the first purchase day to the as-of
    /// day; `monetary` = mean amount of the repeat purchase days (0 when `frequency == 0`).
    pub fn new(frequency: f64, recency: f64, t: f64, monetary: f64) -> Result<Self> {
        let invalid = |field, value, reason| Err(Error::InvalidSummary { field, value, reason });
        if !(frequency.is_finite() && frequency >= 0.0 && frequency.fract() == 0.0) {
            return invalid("frequency", frequency, "must be a whole number >= 0");
        }
        if frequency > MAX_FREQUENCY {
            return invalid("frequency", frequency, "must be <= 1e9");
        }
        if !(t.is_finite() && t >= 0.0) {
            return invalid("t", t, "must be finite and >= 0");
        }
        if !(recency.is_finite() && recency >= 0.0) {
            return invalid("recency", recency, "must be finite and >= 0");
        }
        if recency > t {
            return invalid("recency", recency, "must be <= t");
        }
        if frequency == 0.0 && recency != 0.0 {
            return invalid("recency", recency, "must be 0 when frequency is 0");
        }
        Ok(CustomerSummary { frequency, recency, t, monetary })
    }

    /// Repeat purchase days (`x`).
    pub fn frequency(&self) -> f64 {
        self.frequency
    }

    /// Time from the first to the last purchase day (`t_x`).
    pub fn recency(&self) -> f64 {
        self.recency
    }

    /// Time from the first purchase day to the as-of day (`T`).
    pub fn t(&self) -> f64 {
        self.t
    }

    /// Mean amount of the repeat purchase days (`m`); 0 when `frequency == 0`.
    pub fn monetary(&self) -> f64 {
        self.monetary
    }

    /// Whether the Gamma-Gamma model can use this customer: a repeat customer with a positive,
    /// finite mean spend.
    pub fn has_usable_monetary(&self) -> bool {
        self.frequency > 0.0 && self.monetary.is_finite() && self.monetary > 0.0
    }
}

/// Summarises one customer's purchases as of `as_of_day` (inclusive), the reference the
/// engine's SQL is tested against.
///
/// `purchase_days` holds `(UTC day number, amount)` pairs in any order; several pairs may share
/// a day. Pairs after `as_of_day` are ignored. Amounts are summed per day, then: frequency =
/// distinct days - 1; recency = last day - first day; T = `as_of_day` - first day (both divided
/// by [`TimeUnit::days`]); monetary = mean of the day totals after the first day (0 when there
/// is none). Returns `None` when no purchase falls on or before `as_of_day`.
///
/// Amounts are not checked: zero or negative day totals count as purchase days and enter the
/// mean as they are; a non-finite amount makes `monetary` non-finite. Either way a non-positive
/// or non-finite `monetary` only removes the customer from the Gamma-Gamma model.
pub fn summarize(purchase_days: &[(i64, f64)], as_of_day: i64, unit: TimeUnit) -> Option<CustomerSummary> {
    let mut days: Vec<(i64, f64)> =
        purchase_days.iter().copied().filter(|(day, _)| *day <= as_of_day).collect();
    // A stable sort keeps the input order within a day, so the day sums are reproducible.
    days.sort_by_key(|(day, _)| *day);
    let mut totals: Vec<(i64, f64)> = Vec::with_capacity(days.len());
    for (day, amount) in days {
        match totals.last_mut() {
            Some((last_day, total)) if *last_day == day => *total += amount,
            _ => totals.push((day, amount)),
        }
    }
    let (first_day, _) = *totals.first()?;
    let (last_day, _) = *totals.last()?;
    let repeat = &totals[1..];
    let monetary = if repeat.is_empty() {
        0.0
    } else {
        repeat.iter().map(|(_, total)| total).sum::<f64>() / repeat.len() as f64
    };
    let summary = CustomerSummary {
        frequency: repeat.len() as f64,
        recency: (last_day - first_day) as f64 / unit.days(),
        t: (as_of_day - first_day) as f64 / unit.days(),
        monetary,
    };
    debug_assert!(
        CustomerSummary::new(summary.frequency, summary.recency, summary.t, summary.monetary).is_ok()
    );
    Some(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(days: &[(i64, f64)], as_of: i64, unit: TimeUnit, expected: Option<[f64; 4]>) {
        let got = summarize(days, as_of, unit).map(|s| [s.frequency(), s.recency(), s.t(), s.monetary()]);
        assert_eq!(got, expected, "days {days:?} as of {as_of}");
    }

    #[test]
    fn follows_the_paper_convention() {
        check(&[], 10, TimeUnit::Day, None);
        check(&[(11, 5.0)], 10, TimeUnit::Day, None);
        check(&[(3, 5.0)], 10, TimeUnit::Day, Some([0.0, 0.0, 7.0, 0.0]));
        // Same-day purchases are one purchase day with the amounts summed.
        check(&[(3, 5.0), (3, 2.0)], 10, TimeUnit::Day, Some([0.0, 0.0, 7.0, 0.0]));
        check(
            &[(8, 4.0), (3, 5.0), (8, 2.0), (5, 10.0), (12, 99.0)],
            10,
            TimeUnit::Day,
            Some([2.0, 5.0, 7.0, 8.0]),
        );
        // The as-of day itself is included; weeks are days / 7.
        check(&[(0, 1.0), (7, 3.0), (14, 5.0)], 14, TimeUnit::Week, Some([2.0, 2.0, 2.0, 4.0]));
        // Refunds enter the mean as they are.
        check(&[(0, 1.0), (1, -3.0)], 1, TimeUnit::Day, Some([1.0, 1.0, 1.0, -3.0]));
    }

    #[test]
    fn rejects_summaries_outside_the_domain() {
        assert!(CustomerSummary::new(1.5, 1.0, 2.0, 1.0).is_err());
        assert!(CustomerSummary::new(-1.0, 0.0, 2.0, 1.0).is_err());
        assert!(CustomerSummary::new(f64::NAN, 0.0, 2.0, 1.0).is_err());
        assert!(CustomerSummary::new(1.0, 3.0, 2.0, 1.0).is_err());
        assert!(CustomerSummary::new(0.0, 1.0, 2.0, 1.0).is_err());
        assert!(CustomerSummary::new(1.0, 1.0, f64::INFINITY, 1.0).is_err());
        assert!(CustomerSummary::new(0.0, 0.0, 0.0, f64::NAN).is_ok());
        let error = CustomerSummary::new(1.0, 3.0, 2.0, 1.0).expect_err("recency > t");
        assert_eq!(error.code(), "clv_invalid_summary");
        assert_eq!(error.to_string(), "invalid customer summary: recency = 3 (must be <= t)");
    }
}
