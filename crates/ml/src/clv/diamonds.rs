//! "Diamonds in the rough": entities in the bottom 80% by current value but in the top 20% by
//! predicted CLV. The definition only; the engine applies it as a built-in segment.

use super::{Error, Result};

/// The shares of [`diamonds_in_the_rough`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DiamondOptions {
    /// Share of entities counted as "bottom" by current value. Default 0.8.
    pub bottom_value_share: f64,
    /// Share of entities counted as "top" by predicted CLV. Default 0.2.
    pub top_clv_share: f64,
}

impl Default for DiamondOptions {
    fn default() -> Self {
        DiamondOptions { bottom_value_share: 0.8, top_clv_share: 0.2 }
    }
}

/// Slack for comparing a count with `share * n`, so that 0.2 * 10 and (1 - 0.8) * 10 both
/// allow 2 entities.
const SHARE_SLACK: f64 = 1e-9;

/// Flags, for each entity, whether it is a diamond in the rough: in the bottom
/// `bottom_value_share` by `current_value` and in the top `top_clv_share` by `predicted_clv`.
///
/// The population is the entities with both values present and finite; the others are never
/// flagged and do not count in `n`. Tie groups are never split:
/// - top by CLV: an entity is in the top share when the entities with a CLV greater than or
///   equal to its own number at most `top_clv_share * n` (a tie group that straddles the
///   boundary is left out, so at most that share is "top");
/// - bottom by value: an entity is in the bottom share when it is not in the top
///   `1 - bottom_value_share` by value under the same rule (a tie group straddling the
///   boundary counts as bottom, so many entities tied at 0 are all "bottom").
pub fn diamonds_in_the_rough(
    current_value: &[Option<f64>],
    predicted_clv: &[Option<f64>],
    options: &DiamondOptions,
) -> Result<Vec<bool>> {
    if current_value.len() != predicted_clv.len() {
        return Err(Error::InvalidOption {
            name: "predicted_clv",
            value: predicted_clv.len() as f64,
            reason: "must have one value per entity of current_value",
        });
    }
    for (name, share) in
        [("bottom_value_share", options.bottom_value_share), ("top_clv_share", options.top_clv_share)]
    {
        if !(0.0..=1.0).contains(&share) {
            return Err(Error::InvalidOption { name, value: share, reason: "must be in [0, 1]" });
        }
    }
    let population: Vec<(usize, f64, f64)> = current_value
        .iter()
        .zip(predicted_clv)
        .enumerate()
        .filter_map(|(i, (value, clv))| match (value, clv) {
            (Some(v), Some(c)) if v.is_finite() && c.is_finite() => Some((i, *v, *c)),
            _ => None,
        })
        .collect();
    let values: Vec<f64> = population.iter().map(|p| p.1).collect();
    let clvs: Vec<f64> = population.iter().map(|p| p.2).collect();
    let top_value = in_top_share(&values, 1.0 - options.bottom_value_share);
    let top_clv = in_top_share(&clvs, options.top_clv_share);
    let mut flags = vec![false; current_value.len()];
    for (k, &(i, _, _)) in population.iter().enumerate() {
        flags[i] = !top_value[k] && top_clv[k];
    }
    Ok(flags)
}

/// For each value, whether the values greater than or equal to it number at most `share * n`.
fn in_top_share(values: &[f64], share: f64) -> Vec<bool> {
    let n = values.len();
    let limit = share * n as f64 + SHARE_SLACK;
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_unstable_by(|&i, &j| values[j].total_cmp(&values[i]));
    let mut flags = vec![false; n];
    let mut start = 0;
    while start < n {
        let mut end = start + 1;
        while end < n && values[order[end]] == values[order[start]] {
            end += 1;
        }
        // `end` entities have a value >= this tie group's.
        let top = end as f64 <= limit;
        for &i in &order[start..end] {
            flags[i] = top;
        }
        start = end;
    }
    flags
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(values: &[Option<f64>], clvs: &[Option<f64>], expected: &[usize]) {
        let flags = diamonds_in_the_rough(values, clvs, &DiamondOptions::default()).expect("valid");
        let got: Vec<usize> = flags.iter().enumerate().filter(|f| *f.1).map(|f| f.0).collect();
        assert_eq!(got, expected, "values {values:?} clvs {clvs:?}");
    }

    fn some(values: &[f64]) -> Vec<Option<f64>> {
        values.iter().map(|v| Some(*v)).collect()
    }

    #[test]
    fn flags_low_value_high_clv() {
        // 10 entities: value rank 0 is lowest; entities 8 and 9 have the top CLVs.
        let values = some(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]);
        let clvs = some(&[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 50.0, 60.0]);
        // Entities 8 and 9 are in the top 20% by value too: no diamond.
        check(&values, &clvs, &[]);
        let clvs = some(&[50.0, 0.0, 0.0, 60.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0]);
        check(&values, &clvs, &[0, 3]);
    }

    #[test]
    fn keeps_tie_groups_together() {
        // Three entities tie for the top CLV among 10: the group does not fit in the top 2.
        let values = some(&[0.0; 10]);
        let clvs = some(&[5.0, 5.0, 5.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]);
        check(&values, &clvs, &[]);
        // All values tied at 0: all are "bottom"; two top CLVs are diamonds.
        let clvs = some(&[5.0, 6.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]);
        check(&values, &clvs, &[0, 1]);
    }

    #[test]
    fn leaves_out_entities_without_values() {
        let mut values = some(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]);
        let clvs = some(&[50.0, 0.0, 0.0, 60.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0]);
        values[3] = None;
        // n = 9: top CLV share 1.8 entities, so only entity 0 (CLV 50, now the highest).
        check(&values, &clvs, &[0]);
        let mut clvs_nan = clvs.clone();
        clvs_nan[0] = Some(f64::NAN);
        check(&values, &clvs_nan, &[]);
    }

    #[test]
    fn rejects_mismatched_lengths_and_bad_shares() {
        assert!(diamonds_in_the_rough(&[Some(1.0)], &[], &DiamondOptions::default()).is_err());
        let bad = DiamondOptions { bottom_value_share: 1.5, top_clv_share: 0.2 };
        assert!(diamonds_in_the_rough(&[], &[], &bad).is_err());
    }
}
