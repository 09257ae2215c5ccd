//! RFM (recency, frequency, monetary) scoring: quintile scores or scores from fixed cut points
//! ([`Thresholds`]), what the frequency counts ([`RfmFrequency`]), and the mapping from scores
//! to the standard named RFM segments.
//!
//! The scores and the mapping are documented in `docs/models.md`; keep the two in step.

use std::fmt;
use std::str::FromStr;

/// The standard named RFM segments, plus `NoPurchases` for entities without a purchase, so
/// that every entity is in exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RfmSegment {
    /// Bought recently, often and much.
    Champions,
    /// Buy often and much, not quite as recently.
    Loyal,
    /// Recent customers with average frequency and spend.
    PotentialLoyalist,
    /// Bought very recently, once or little.
    NewCustomers,
    /// Recent, little so far.
    Promising,
    /// Middle of the road on every axis.
    NeedAttention,
    /// Middling recency, low frequency and spend.
    AboutToSleep,
    /// Used to buy often and much, not lately.
    AtRisk,
    /// The best customers of the past, gone quiet the longest.
    CantLoseThem,
    /// Low recency, low frequency and spend.
    Hibernating,
    /// The lowest recency, frequency and spend.
    Lost,
    /// No purchase in the RFM window.
    NoPurchases,
}

impl RfmSegment {
    /// Every segment, in documentation order.
    pub const ALL: [RfmSegment; 12] = [
        RfmSegment::Champions,
        RfmSegment::Loyal,
        RfmSegment::PotentialLoyalist,
        RfmSegment::NewCustomers,
        RfmSegment::Promising,
        RfmSegment::NeedAttention,
        RfmSegment::AboutToSleep,
        RfmSegment::AtRisk,
        RfmSegment::CantLoseThem,
        RfmSegment::Hibernating,
        RfmSegment::Lost,
        RfmSegment::NoPurchases,
    ];

    /// The display name, the value of the `rfm_segment` trait.
    pub fn label(self) -> &'static str {
        match self {
            RfmSegment::Champions => "Champions",
            RfmSegment::Loyal => "Loyal",
            RfmSegment::PotentialLoyalist => "Potential Loyalist",
            RfmSegment::NewCustomers => "New Customers",
            RfmSegment::Promising => "Promising",
            RfmSegment::NeedAttention => "Need Attention",
            RfmSegment::AboutToSleep => "About to Sleep",
            RfmSegment::AtRisk => "At Risk",
            RfmSegment::CantLoseThem => "Can't Lose Them",
            RfmSegment::Hibernating => "Hibernating",
            RfmSegment::Lost => "Lost",
            RfmSegment::NoPurchases => "No Purchases",
        }
    }

    /// The segment's name in rules and outputs: `rfm.champions`, `rfm.cant_lose_them`, ...
    pub fn segment_name(self) -> String {
        let slug: String = self
            .label()
            .chars()
            .filter(|c| *c != '\'')
            .map(|c| if c == ' ' { '_' } else { c.to_ascii_lowercase() })
            .collect();
        format!("rfm.{slug}")
    }

    /// The segment of an entity with recency score `r`, frequency score `f` and monetary score
    /// `m` (each 1 to 5). The grid is over R and FM = the mean of F and M rounded half up:
    ///
    /// ```text
    /// R \ FM  1               2                   3                   4                5
    /// 5       New Customers   Potential Loyalist  Potential Loyalist  Champions        Champions
    /// 4       Promising       Potential Loyalist  Potential Loyalist  Loyal            Champions
    /// 3       About to Sleep  About to Sleep      Need Attention      Loyal            Loyal
    /// 2       Hibernating     Hibernating         At Risk             At Risk          Can't Lose Them
    /// 1       Lost            Lost                At Risk             Can't Lose Them  Can't Lose Them
    /// ```
    ///
    /// Scores outside 1 to 5 are clamped into it.
    pub fn from_scores(r: u8, f: u8, m: u8) -> RfmSegment {
        use RfmSegment::*;
        const GRID: [[RfmSegment; 5]; 5] = [
            [Lost, Lost, AtRisk, CantLoseThem, CantLoseThem],
            [Hibernating, Hibernating, AtRisk, AtRisk, CantLoseThem],
            [AboutToSleep, AboutToSleep, NeedAttention, Loyal, Loyal],
            [Promising, PotentialLoyalist, PotentialLoyalist, Loyal, Champions],
            [NewCustomers, PotentialLoyalist, PotentialLoyalist, Champions, Champions],
        ];
        let clamp = |v: u8| v.clamp(1, 5);
        let (r, f, m) = (clamp(r), clamp(f), clamp(m));
        let fm = (f + m).div_ceil(2);
        GRID[usize::from(r - 1)][usize::from(fm - 1)]
    }
}

/// Which end of a value's range scores 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    /// Larger values are better (frequency, monetary).
    Higher,
    /// Smaller values are better (recency in days).
    Lower,
}

/// What `rfm_frequency` counts (`[rfm] frequency`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RfmFrequency {
    /// `purchases` (the default): the number of purchase events.
    #[default]
    Purchases,
    /// `repeat_days`: distinct UTC purchase days minus one, the repeat purchase days of the CLV
    /// models (`clv_frequency`, lifetimes' `frequency`); 0 for one purchase day or none.
    RepeatDays,
}

impl RfmFrequency {
    /// The name used in configuration.
    pub fn name(self) -> &'static str {
        match self {
            RfmFrequency::Purchases => "purchases",
            RfmFrequency::RepeatDays => "repeat_days",
        }
    }
}

impl fmt::Display for RfmFrequency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for RfmFrequency {
    type Err = String;

    /// Parses `purchases` or `repeat_days` (exactly); the error is a message naming the text.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "purchases" => Ok(RfmFrequency::Purchases),
            "repeat_days" => Ok(RfmFrequency::RepeatDays),
            _ => Err(format!("`{s}` is not a frequency")),
        }
    }
}

/// Four fixed cut points of one RFM dimension, strictly ascending and finite. Each cut point is
/// the inclusive upper end of a band: with `[30, 90, 180, 365]` the bands are `<= 30`,
/// `31..=90`, `91..=180`, `181..=365` and `> 365` (for whole numbers), so a value equal to a cut
/// point falls in the band that the cut point closes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds([f64; 4]);

/// Why cut points are not [`Thresholds`]: the message, and the offending cut point's index
/// when one is to blame (for its position in the project file).
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdsError {
    /// What is wrong, lowercase, naming the value.
    pub message: String,
    /// The index of the offending cut point; `None` when the list as a whole is wrong.
    pub index: Option<usize>,
}

impl Thresholds {
    /// The number of cut points: five scores need four.
    pub const CUTS: usize = 4;

    /// Checks `cuts`: exactly four, finite, not below `min` (0 for days and counts), strictly
    /// ascending.
    pub fn new(cuts: &[f64], min: Option<f64>) -> Result<Thresholds, ThresholdsError> {
        let [a, b, c, d] = cuts else {
            return Err(ThresholdsError {
                message: format!(
                    "{} cut points given, 4 needed (one between each two of the 5 scores)",
                    cuts.len()
                ),
                index: None,
            });
        };
        for (i, cut) in cuts.iter().enumerate() {
            if !cut.is_finite() {
                return Err(ThresholdsError {
                    message: format!("cut point {cut} is not finite"),
                    index: Some(i),
                });
            }
            if let Some(min) = min
                && *cut < min
            {
                return Err(ThresholdsError {
                    message: format!("cut point {cut} is below {min}"),
                    index: Some(i),
                });
            }
            if i > 0 && *cut <= cuts[i - 1] {
                return Err(ThresholdsError {
                    message: format!("cut point {cut} is not above the one before it ({})", cuts[i - 1]),
                    index: Some(i),
                });
            }
        }
        Ok(Thresholds([*a, *b, *c, *d]))
    }

    /// The cut points, ascending.
    pub fn cuts(&self) -> [f64; 4] {
        self.0
    }

    /// The score 1 to 5 of `value`: with `k` cut points strictly below it, `1 + k` when higher
    /// is better, `5 - k` when lower is better.
    pub fn score(&self, value: f64, better: Better) -> u8 {
        let below = self.0.iter().filter(|cut| **cut < value).count() as u8;
        match better {
            Better::Higher => 1 + below,
            Better::Lower => 5 - below,
        }
    }
}

/// How one RFM dimension is scored.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Scoring {
    /// Quintiles of the scored entities ([`quintile_scores`]), the default.
    #[default]
    Quintiles,
    /// Fixed cut points ([`Thresholds::score`]): the same value always gets the same score,
    /// whatever the other entities did.
    Thresholds(Thresholds),
}

/// The scores 1 to 5 of `values` by `scoring`; `None` and NaN values get `None` (and do not
/// count in the quintiles).
pub fn scores(values: &[Option<f64>], better: Better, scoring: &Scoring) -> Vec<Option<u8>> {
    match scoring {
        Scoring::Quintiles => quintile_scores(values, better),
        Scoring::Thresholds(thresholds) => {
            values.iter().map(|v| v.filter(|v| !v.is_nan()).map(|v| thresholds.score(v, better))).collect()
        }
    }
}

/// Quintile scores 1 to 5 of `values`; `None` values get `None` and do not count.
///
/// With `n` values, a value's score is `1 + floor(5 * w / n)` where `w` is the number of values
/// strictly worse than it. Equal values therefore always get equal scores, whatever the order
/// of the input (ties are resolved towards the lower score), and the best value scores 5 only
/// when at least 80% of the values are strictly worse than it: the scores follow the
/// distribution, and a value shared by many entities keeps them in one score. NaN counts as
/// missing.
pub fn quintile_scores(values: &[Option<f64>], better: Better) -> Vec<Option<u8>> {
    let mut present: Vec<(f64, usize)> =
        values.iter().enumerate().filter_map(|(i, v)| v.filter(|v| !v.is_nan()).map(|v| (v, i))).collect();
    // Worst first.
    match better {
        Better::Higher => present.sort_by(|a, b| a.0.total_cmp(&b.0)),
        Better::Lower => present.sort_by(|a, b| b.0.total_cmp(&a.0)),
    }
    let n = present.len();
    let mut scores = vec![None; values.len()];
    let mut run_start = 0;
    for position in 0..n {
        if present[position].0 != present[run_start].0 {
            run_start = position;
        }
        // run_start < n, so 5 * run_start / n <= 4.
        let score = 1 + (5 * run_start / n) as u8;
        scores[present[position].1] = Some(score);
    }
    scores
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_grid() {
        assert_eq!(RfmSegment::CantLoseThem.segment_name(), "rfm.cant_lose_them");
        assert_eq!(RfmSegment::PotentialLoyalist.segment_name(), "rfm.potential_loyalist");
        assert_eq!(RfmSegment::from_scores(5, 5, 5), RfmSegment::Champions);
        assert_eq!(RfmSegment::from_scores(5, 1, 1), RfmSegment::NewCustomers);
        assert_eq!(RfmSegment::from_scores(1, 5, 4), RfmSegment::CantLoseThem);
        assert_eq!(RfmSegment::from_scores(1, 1, 2), RfmSegment::Lost);
        assert_eq!(RfmSegment::from_scores(3, 3, 3), RfmSegment::NeedAttention);
        // FM rounds half up: (2 + 3) / 2 = 2.5 -> 3.
        assert_eq!(RfmSegment::from_scores(2, 2, 3), RfmSegment::AtRisk);
        assert_eq!(RfmSegment::from_scores(9, 0, 0), RfmSegment::NewCustomers);
        // Every named segment but NoPurchases is reachable from some scores.
        let mut reached: Vec<RfmSegment> = Vec::new();
        for r in 1..=5 {
            for f in 1..=5 {
                for m in 1..=5 {
                    reached.push(RfmSegment::from_scores(r, f, m));
                }
            }
        }
        for segment in RfmSegment::ALL {
            assert_eq!(reached.contains(&segment), segment != RfmSegment::NoPurchases, "{segment:?}");
        }
    }

    #[test]
    fn quintiles_hand_computed() {
        // Ten distinct values: two per score.
        let values: Vec<Option<f64>> = (1..=10).map(|v| Some(v as f64)).collect();
        let scores = quintile_scores(&values, Better::Higher);
        let expected = [1, 1, 2, 2, 3, 3, 4, 4, 5, 5];
        assert_eq!(scores, expected.iter().map(|s| Some(*s)).collect::<Vec<_>>());
        let scores = quintile_scores(&values, Better::Lower);
        let expected = [5, 5, 4, 4, 3, 3, 2, 2, 1, 1];
        assert_eq!(scores, expected.iter().map(|s| Some(*s)).collect::<Vec<_>>());
        // Ties: six entities share the lowest value; the next value has 6 of 10 below it.
        let values = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 3.0, 3.0, 7.0].map(Some);
        let scores = quintile_scores(&values, Better::Higher);
        let expected = [1, 1, 1, 1, 1, 1, 4, 4, 4, 5];
        assert_eq!(scores, expected.iter().map(|s| Some(*s)).collect::<Vec<_>>());
        // Missing values are skipped and do not count in n.
        let scores = quintile_scores(&[None, Some(5.0), Some(f64::NAN), Some(1.0)], Better::Higher);
        assert_eq!(scores, vec![None, Some(3), None, Some(1)]);
        assert!(quintile_scores(&[], Better::Higher).is_empty());
    }

    #[test]
    fn thresholds_score_values_equal_to_a_cut_point_in_the_band_it_closes() {
        let recency = Thresholds::new(&[30.0, 90.0, 180.0, 365.0], Some(0.0)).expect("valid");
        let check = |thresholds: &Thresholds, better, cases: &[(f64, u8)]| {
            for (value, expected) in cases {
                assert_eq!(thresholds.score(*value, better), *expected, "{value}");
            }
        };
        check(
            &recency,
            Better::Lower,
            &[(0.0, 5), (30.0, 5), (31.0, 4), (90.0, 4), (91.0, 3), (180.0, 3), (365.0, 2), (366.0, 1)],
        );
        let frequency = Thresholds::new(&[1.0, 2.0, 4.0, 8.0], Some(0.0)).expect("valid");
        check(
            &frequency,
            Better::Higher,
            &[(0.0, 1), (1.0, 1), (2.0, 2), (3.0, 3), (4.0, 3), (5.0, 4), (8.0, 4), (9.0, 5)],
        );
        let monetary = Thresholds::new(&[100.0, 500.0, 1000.0, 5000.0], None).expect("valid");
        check(&monetary, Better::Higher, &[(-5.0, 1), (100.0, 1), (100.5, 2), (5000.0, 4), (5000.01, 5)]);
        let values = [Some(30.0), None, Some(f64::NAN), Some(400.0)];
        assert_eq!(
            scores(&values, Better::Lower, &Scoring::Thresholds(recency)),
            vec![Some(5), None, None, Some(1)]
        );
    }

    #[test]
    fn thresholds_must_be_four_finite_ascending_cut_points() {
        let error = |cuts: &[f64], min| Thresholds::new(cuts, min).expect_err("rejected");
        assert_eq!(error(&[1.0, 2.0, 3.0], None).index, None);
        assert!(error(&[1.0, 2.0, 3.0], None).message.contains("3 cut points given, 4 needed"));
        let e = error(&[1.0, 5.0, 5.0, 8.0], None);
        assert_eq!(
            (e.message.as_str(), e.index),
            ("cut point 5 is not above the one before it (5)", Some(2))
        );
        let e = error(&[30.0, 20.0, 180.0, 365.0], None);
        assert_eq!(e.index, Some(1));
        let e = error(&[-1.0, 2.0, 4.0, 8.0], Some(0.0));
        assert_eq!((e.message.as_str(), e.index), ("cut point -1 is below 0", Some(0)));
        assert_eq!(error(&[1.0, f64::INFINITY, 4.0, 8.0], None).index, Some(1));
        assert_eq!("repeat_days".parse::<RfmFrequency>(), Ok(RfmFrequency::RepeatDays));
        assert_eq!("days".parse::<RfmFrequency>(), Err("`days` is not a frequency".into()));
    }

    #[test]
    fn quintiles_do_not_depend_on_order() {
        let values = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0, 5.0, 3.0, 5.0].map(Some);
        let scores = quintile_scores(&values, Better::Lower);
        let mut reversed = values;
        reversed.reverse();
        let mut again = quintile_scores(&reversed, Better::Lower);
        again.reverse();
        assert_eq!(scores, again);
    }
}
