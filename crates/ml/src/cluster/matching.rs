//! Minimum-cost matching of new clusters to previous ones (the Hungarian method), used to keep
//! cluster ids stable between runs.

/// Matches rows to columns of a rectangular cost matrix (`cost[row][column]`, finite values)
/// so that every row (if there are no more rows than columns) or every column (otherwise) is
/// matched once and the total cost is minimal. Returns the column of each row, `None` for rows
/// left unmatched. `O(n^2 m)`.
pub fn min_cost_matching(cost: &[Vec<f64>]) -> Vec<Option<usize>> {
    let rows = cost.len();
    let columns = cost.first().map_or(0, Vec::len);
    if rows == 0 || columns == 0 {
        return vec![None; rows];
    }
    if rows > columns {
        let transposed: Vec<Vec<f64>> =
            (0..columns).map(|c| (0..rows).map(|r| cost[r][c]).collect()).collect();
        let by_column = min_cost_matching(&transposed);
        let mut out = vec![None; rows];
        for (column, row) in by_column.into_iter().enumerate() {
            if let Some(row) = row {
                out[row] = Some(column);
            }
        }
        return out;
    }
    // Potentials u (rows) and v (columns), 1-based with a virtual column 0.
    let (n, m) = (rows, columns);
    let mut u = vec![0.0; n + 1];
    let mut v = vec![0.0; m + 1];
    let mut owner = vec![0usize; m + 1];
    let mut way = vec![0usize; m + 1];
    for row in 1..=n {
        owner[0] = row;
        let mut column0 = 0;
        let mut min_reduced = vec![f64::INFINITY; m + 1];
        let mut used = vec![false; m + 1];
        loop {
            used[column0] = true;
            let row0 = owner[column0];
            let mut delta = f64::INFINITY;
            let mut column1 = 0;
            for j in 1..=m {
                if used[j] {
                    continue;
                }
                let reduced = cost[row0 - 1][j - 1] - u[row0] - v[j];
                if reduced < min_reduced[j] {
                    min_reduced[j] = reduced;
                    way[j] = column0;
                }
                if min_reduced[j] < delta {
                    delta = min_reduced[j];
                    column1 = j;
                }
            }
            for j in 0..=m {
                if used[j] {
                    u[owner[j]] += delta;
                    v[j] -= delta;
                } else {
                    min_reduced[j] -= delta;
                }
            }
            column0 = column1;
            if owner[column0] == 0 {
                break;
            }
        }
        loop {
            let column1 = way[column0];
            owner[column0] = owner[column1];
            column0 = column1;
            if column0 == 0 {
                break;
            }
        }
    }
    let mut out = vec![None; n];
    for j in 1..=m {
        if owner[j] != 0 {
            out[owner[j] - 1] = Some(j - 1);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Brute force over all permutations (small matrices only).
    fn brute_force(cost: &[Vec<f64>]) -> f64 {
        fn go(cost: &[Vec<f64>], row: usize, used: &mut Vec<bool>) -> f64 {
            if row == cost.len() {
                return 0.0;
            }
            let mut best = f64::INFINITY;
            for c in 0..used.len() {
                if !used[c] {
                    used[c] = true;
                    best = best.min(cost[row][c] + go(cost, row + 1, used));
                    used[c] = false;
                }
            }
            best
        }
        go(cost, 0, &mut vec![false; cost[0].len()])
    }

    #[test]
    fn matches_brute_force() {
        let mut state = 12345u64;
        let mut next = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 33) as f64 / (1u64 << 31) as f64
        };
        for (rows, columns) in [(1, 1), (3, 3), (4, 6), (5, 5), (6, 4)] {
            let cost: Vec<Vec<f64>> = (0..rows).map(|_| (0..columns).map(|_| next()).collect()).collect();
            let matching = min_cost_matching(&cost);
            let total: f64 = matching.iter().enumerate().filter_map(|(r, c)| c.map(|c| cost[r][c])).sum();
            let expected = if rows <= columns {
                brute_force(&cost)
            } else {
                let t: Vec<Vec<f64>> =
                    (0..columns).map(|c| (0..rows).map(|r| cost[r][c]).collect()).collect();
                brute_force(&t)
            };
            assert!((total - expected).abs() < 1e-12, "{rows}x{columns}: {total} vs {expected}");
            assert_eq!(matching.iter().flatten().count(), rows.min(columns));
        }
    }
}
