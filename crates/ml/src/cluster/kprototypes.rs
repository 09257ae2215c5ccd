//! k-prototypes (Huang 1997/1998) for mixed numeric and categorical data, as the `kmodes`
//! Python package (0.12) implements it, so that the two can be compared.
//!
//! The cost of a point against a prototype is the squared Euclidean distance over the numeric
//! columns plus `gamma` times the number of categorical columns that differ from the
//! prototype's modes. One run:
//!
//! 1. every point goes to its cheapest initial prototype; prototypes become the means and
//!    modes of their points (mode ties go to the smallest category code, as in kmodes, whose
//!    codes are the sorted category values);
//! 2. iterations move points **one at a time** (Huang's online variant): a point that is
//!    cheaper elsewhere moves, and the two prototypes concerned are updated at once (a mode
//!    changes in the receiving cluster only when another value becomes strictly more frequent;
//!    in the losing cluster it is recomputed when its count dropped);
//! 3. after each iteration every point is relabelled against the current prototypes and the
//!    cost recomputed; the run stops when no point moved, when the cost did not decrease, or
//!    after `max_iter` iterations. The labels and cost returned are those of that last
//!    relabelling, as in kmodes.
//!
//! Where kmodes draws at random, this module does something deterministic and documented: a
//! cluster emptied by a move takes the point with the highest cost in the largest cluster
//! (kmodes takes a random point of the largest cluster), and a cluster left empty by the
//! initial assignment takes the point with the highest cost overall (kmodes retries other
//! initialisations). Seeding ([`kprototypes`]) is greedy k-means++ over the mixed cost (kmodes
//! offers Huang's and Cao's methods, whose numeric part is drawn from a normal distribution);
//! [`kprototypes_from`] starts from given prototypes, which is how the differential test
//! compares the two implementations.

use ndarray::{Array2, ArrayView2};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::Error;
use super::kmeans::{CHUNK_ROWS, init_rng};

/// Settings of [`kprototypes`].
#[derive(Debug, Clone, PartialEq)]
pub struct KPrototypesConfig {
    /// Number of clusters.
    pub k: usize,
    /// Number of seedings; the run with the lowest cost is kept.
    pub n_init: usize,
    /// Maximum number of iterations per run (kmodes' default is 100).
    pub max_iter: usize,
    /// Weight of one categorical mismatch against squared numeric distance; see
    /// [`default_gamma`].
    pub gamma: f64,
    /// Seed of the random number generator.
    pub seed: u64,
}

/// The result of a k-prototypes run.
#[derive(Debug, Clone, PartialEq)]
pub struct KPrototypesFit {
    /// Numeric part of the prototypes (means), `k x p`.
    pub numeric_centroids: Array2<f64>,
    /// Categorical part of the prototypes (modes, as category codes), `k x q`.
    pub categorical_centroids: Array2<u32>,
    /// Cluster of each row; every label is below `k`.
    pub labels: Vec<u32>,
    /// Sum over the rows of the cost against their prototype.
    pub cost: f64,
    /// Iterations run.
    pub n_iter: usize,
}

/// kmodes' default weight: half the mean (population) standard deviation of the numeric
/// columns; 1 when there are none or they are all constant.
pub fn default_gamma(numeric: ArrayView2<'_, f64>) -> f64 {
    let (n, p) = numeric.dim();
    if n == 0 || p == 0 {
        return 1.0;
    }
    let mean_std = numeric
        .columns()
        .into_iter()
        .map(|column| {
            let mean = column.sum() / n as f64;
            (column.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64).sqrt()
        })
        .sum::<f64>()
        / p as f64;
    if mean_std > 0.0 { 0.5 * mean_std } else { 1.0 }
}

/// Borrowed mixed data: `n x p` numeric values and `n x q` category codes, row-major.
#[derive(Clone, Copy)]
pub(crate) struct Mixed<'a> {
    pub(crate) numeric: &'a [f64],
    pub(crate) p: usize,
    pub(crate) categorical: &'a [u32],
    pub(crate) q: usize,
    pub(crate) n: usize,
    /// Number of codes per categorical column (max code + 1).
    pub(crate) levels: &'a [usize],
}

impl<'a> Mixed<'a> {
    fn num(&self, i: usize) -> &'a [f64] {
        &self.numeric[i * self.p..(i + 1) * self.p]
    }

    fn cat(&self, i: usize) -> &'a [u32] {
        &self.categorical[i * self.q..(i + 1) * self.q]
    }
}

/// Prototypes as flat `k x p` and `k x q` vectors.
#[derive(Debug, Clone)]
pub(crate) struct Prototypes {
    pub(crate) numeric: Vec<f64>,
    pub(crate) categorical: Vec<u32>,
    pub(crate) k: usize,
}

impl Prototypes {
    fn num(&self, c: usize, p: usize) -> &[f64] {
        &self.numeric[c * p..(c + 1) * p]
    }

    fn cat(&self, c: usize, q: usize) -> &[u32] {
        &self.categorical[c * q..(c + 1) * q]
    }
}

/// Cost of a point against one prototype.
#[inline]
fn cost(num: &[f64], cat: &[u32], proto_num: &[f64], proto_cat: &[u32], gamma: f64) -> f64 {
    let numeric: f64 = num.iter().zip(proto_num).map(|(a, b)| (a - b) * (a - b)).sum();
    let mismatches = cat.iter().zip(proto_cat).filter(|(a, b)| a != b).count();
    numeric + gamma * mismatches as f64
}

/// The cheapest prototype (the first on ties) and its cost.
#[inline]
fn cheapest(data: Mixed<'_>, i: usize, protos: &Prototypes, gamma: f64) -> (usize, f64) {
    let (num, cat) = (data.num(i), data.cat(i));
    let mut best = (0, f64::INFINITY);
    for c in 0..protos.k {
        let value = cost(num, cat, protos.num(c, data.p), protos.cat(c, data.q), gamma);
        if value < best.1 {
            best = (c, value);
        }
    }
    best
}

/// Numeric values, category codes and the number of codes per categorical column.
type Copied = (Vec<f64>, Vec<u32>, Vec<usize>);

/// Checks the views and copies them into row-major vectors with the number of codes per
/// categorical column.
fn checked(numeric: &ArrayView2<'_, f64>, categorical: &ArrayView2<'_, u32>) -> Result<Copied, Error> {
    if numeric.nrows() != categorical.nrows() {
        return Err(Error::InvalidOption(format!(
            "{} numeric rows but {} categorical rows",
            numeric.nrows(),
            categorical.nrows()
        )));
    }
    if numeric.ncols() + categorical.ncols() == 0 {
        return Err(Error::InvalidOption("no columns to cluster on".into()));
    }
    let num: Vec<f64> = numeric.iter().copied().collect();
    if let Some(position) = num.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFiniteData {
            row: position / numeric.ncols(),
            column: position % numeric.ncols(),
        });
    }
    let cat: Vec<u32> = categorical.iter().copied().collect();
    let levels = categorical
        .columns()
        .into_iter()
        .map(|column| column.iter().map(|&c| c as usize + 1).max().unwrap_or(1))
        .collect();
    Ok((num, cat, levels))
}

/// Runs k-prototypes `config.n_init` times from greedy k-means++ seedings over the mixed cost
/// and keeps the lowest cost.
pub fn kprototypes(
    numeric: ArrayView2<'_, f64>,
    categorical: ArrayView2<'_, u32>,
    config: &KPrototypesConfig,
) -> Result<KPrototypesFit, Error> {
    let (num, cat, levels) = checked(&numeric, &categorical)?;
    let n = numeric.nrows();
    if config.k == 0 || config.k > n {
        return Err(Error::TooFewEntities { k: config.k, n });
    }
    if config.n_init == 0 || !(config.gamma.is_finite() && config.gamma >= 0.0) {
        return Err(Error::InvalidOption("n_init must be at least 1 and gamma finite and >= 0".into()));
    }
    let data = Mixed {
        numeric: &num,
        p: numeric.ncols(),
        categorical: &cat,
        q: categorical.ncols(),
        n,
        levels: &levels,
    };
    let mut best: Option<KPrototypesFit> = None;
    for init in 0..config.n_init {
        let mut rng = init_rng(config.seed, init);
        let protos = plusplus(data, config.k, config.gamma, &mut rng);
        let fit = run(data, protos, config.max_iter, config.gamma);
        if best.as_ref().is_none_or(|b| fit.cost < b.cost) {
            best = Some(fit);
        }
    }
    Ok(best.expect("n_init >= 1 runs at least once"))
}

/// Runs k-prototypes from given prototypes (`k x p` numeric, `k x q` codes), like kmodes'
/// `KPrototypes(init=[numeric, categorical])`.
pub fn kprototypes_from(
    numeric: ArrayView2<'_, f64>,
    categorical: ArrayView2<'_, u32>,
    initial_numeric: ArrayView2<'_, f64>,
    initial_categorical: ArrayView2<'_, u32>,
    max_iter: usize,
    gamma: f64,
) -> Result<KPrototypesFit, Error> {
    let (num, cat, levels) = checked(&numeric, &categorical)?;
    let n = numeric.nrows();
    let k = initial_numeric.nrows();
    if k == 0 || k > n {
        return Err(Error::TooFewEntities { k, n });
    }
    if initial_categorical.nrows() != k
        || initial_numeric.ncols() != numeric.ncols()
        || initial_categorical.ncols() != categorical.ncols()
    {
        return Err(Error::InvalidOption("the initial prototypes do not match the data".into()));
    }
    let mut levels = levels;
    for (level, column) in levels.iter_mut().zip(initial_categorical.columns()) {
        *level = (*level).max(column.iter().map(|&c| c as usize + 1).max().unwrap_or(1));
    }
    let data = Mixed {
        numeric: &num,
        p: numeric.ncols(),
        categorical: &cat,
        q: categorical.ncols(),
        n,
        levels: &levels,
    };
    let protos = Prototypes {
        numeric: initial_numeric.iter().copied().collect(),
        categorical: initial_categorical.iter().copied().collect(),
        k,
    };
    Ok(run(data, protos, max_iter, gamma))
}

/// Labels every row with its cheapest prototype and returns the labels and the total cost.
pub fn assign(
    numeric: ArrayView2<'_, f64>,
    categorical: ArrayView2<'_, u32>,
    numeric_centroids: ArrayView2<'_, f64>,
    categorical_centroids: ArrayView2<'_, u32>,
    gamma: f64,
) -> Result<(Vec<u32>, f64), Error> {
    let (num, cat, levels) = checked(&numeric, &categorical)?;
    let data = Mixed {
        numeric: &num,
        p: numeric.ncols(),
        categorical: &cat,
        q: categorical.ncols(),
        n: numeric.nrows(),
        levels: &levels,
    };
    let k = numeric_centroids.nrows();
    if k == 0 || categorical_centroids.nrows() != k {
        return Err(Error::InvalidOption("the prototypes do not match each other".into()));
    }
    let protos = Prototypes {
        numeric: numeric_centroids.iter().copied().collect(),
        categorical: categorical_centroids.iter().copied().collect(),
        k,
    };
    let mut labels = vec![0; data.n];
    let total = relabel(data, &protos, gamma, &mut labels);
    Ok((labels, total))
}

/// Greedy k-means++ over the mixed cost: the first prototype is a uniformly drawn row, each
/// further one the best (lowest total cost) of `2 + ln k` rows drawn with probability
/// proportional to their cost against the nearest prototype so far.
pub(crate) fn plusplus(data: Mixed<'_>, k: usize, gamma: f64, rng: &mut ChaCha8Rng) -> Prototypes {
    let trials = 2 + (k as f64).ln() as usize;
    let mut chosen = vec![rng.random_range(0..data.n)];
    let row_cost = |i: usize, j: usize| cost(data.num(i), data.cat(i), data.num(j), data.cat(j), gamma);
    let mut closest: Vec<f64> =
        (0..data.n).into_par_iter().with_min_len(CHUNK_ROWS).map(|i| row_cost(i, chosen[0])).collect();
    for _ in 1..k {
        let potential: f64 = closest.iter().sum();
        let candidates: Vec<usize> = (0..trials)
            .map(|_| {
                let target = rng.random::<f64>() * potential;
                let mut cumulative = 0.0;
                closest
                    .iter()
                    .position(|c| {
                        cumulative += c;
                        cumulative >= target
                    })
                    .unwrap_or(data.n - 1)
            })
            .collect();
        let updated: Vec<Vec<f64>> = candidates
            .iter()
            .map(|&candidate| {
                closest
                    .par_iter()
                    .enumerate()
                    .with_min_len(CHUNK_ROWS)
                    .map(|(i, &c)| c.min(row_cost(i, candidate)))
                    .collect()
            })
            .collect();
        let totals: Vec<f64> = updated.iter().map(|u| u.iter().sum()).collect();
        let mut best = 0;
        for (t, total) in totals.iter().enumerate() {
            if *total < totals[best] {
                best = t;
            }
        }
        chosen.push(candidates[best]);
        closest = updated.into_iter().nth(best).expect("best is a candidate index");
    }
    Prototypes {
        numeric: chosen.iter().flat_map(|&i| data.num(i)).copied().collect(),
        categorical: chosen.iter().flat_map(|&i| data.cat(i)).copied().collect(),
        k,
    }
}

/// Relabels every row against `protos` (in parallel, in fixed chunks) and returns the cost.
fn relabel(data: Mixed<'_>, protos: &Prototypes, gamma: f64, labels: &mut [u32]) -> f64 {
    let parts: Vec<f64> = labels
        .par_chunks_mut(CHUNK_ROWS)
        .enumerate()
        .map(|(chunk, labels)| {
            let mut total = 0.0;
            for (offset, label) in labels.iter_mut().enumerate() {
                let (best, value) = cheapest(data, chunk * CHUNK_ROWS + offset, protos, gamma);
                *label = best as u32;
                total += value;
            }
            total
        })
        .collect();
    parts.iter().sum()
}

/// Running sums and category counts of the clusters.
struct Stats {
    sums: Vec<f64>,
    counts: Vec<usize>,
    /// `freq[(c * q + a) * max_levels + code]`: count of `code` in column `a` of cluster `c`.
    freq: Vec<usize>,
    max_levels: usize,
}

impl Stats {
    fn freq_slice(&self, c: usize, a: usize, q: usize) -> &[usize] {
        let start = (c * q + a) * self.max_levels;
        &self.freq[start..start + self.max_levels]
    }

    fn add(&mut self, data: Mixed<'_>, i: usize, c: usize, sign: i8) {
        let (p, q) = (data.p, data.q);
        for (s, v) in self.sums[c * p..(c + 1) * p].iter_mut().zip(data.num(i)) {
            if sign > 0 { *s += v } else { *s -= v }
        }
        if sign > 0 {
            self.counts[c] += 1;
        } else {
            self.counts[c] -= 1;
        }
        for (a, &code) in data.cat(i).iter().enumerate() {
            let slot = &mut self.freq[(c * q + a) * self.max_levels + code as usize];
            if sign > 0 { *slot += 1 } else { *slot -= 1 }
        }
    }
}

/// The most frequent code (the smallest on ties).
fn mode(freq: &[usize]) -> u32 {
    let mut best = 0;
    for (code, &count) in freq.iter().enumerate() {
        if count > freq[best] {
            best = code;
        }
    }
    best as u32
}

/// One k-prototypes run from `protos` (see the module documentation).
fn run(data: Mixed<'_>, mut protos: Prototypes, max_iter: usize, gamma: f64) -> KPrototypesFit {
    let (n, p, q, k) = (data.n, data.p, data.q, protos.k);
    let max_levels = data.levels.iter().copied().max().unwrap_or(1);
    let mut stats =
        Stats { sums: vec![0.0; k * p], counts: vec![0; k], freq: vec![0; k * q * max_levels], max_levels };

    // Initial assignment.
    let mut membership = vec![0u32; n];
    let mut costs = vec![0.0; n];
    for i in 0..n {
        let (c, value) = cheapest(data, i, &protos, gamma);
        membership[i] = c as u32;
        costs[i] = value;
        stats.add(data, i, c, 1);
    }
    // Empty clusters take the costliest points (deterministic; see the module docs).
    for c in 0..k {
        if stats.counts[c] > 0 {
            continue;
        }
        let donor = (0..n)
            .filter(|&i| stats.counts[membership[i] as usize] > 1)
            .max_by(|&a, &b| costs[a].total_cmp(&costs[b]).then(b.cmp(&a)));
        if let Some(i) = donor {
            stats.add(data, i, membership[i] as usize, -1);
            stats.add(data, i, c, 1);
            membership[i] = c as u32;
            costs[i] = 0.0;
        }
    }
    // Initial prototype update: means and modes.
    for c in 0..k {
        update_numeric(&mut protos, &stats, c, p);
        for a in 0..q {
            protos.categorical[c * q + a] = mode(stats.freq_slice(c, a, q));
        }
    }

    let mut labels = vec![0u32; n];
    let mut total = relabel(data, &protos, gamma, &mut labels);
    let mut n_iter = 0;
    while n_iter < max_iter {
        n_iter += 1;
        let mut moves = 0usize;
        for i in 0..n {
            let (to, _) = cheapest(data, i, &protos, gamma);
            let from = membership[i] as usize;
            if to == from {
                continue;
            }
            moves += 1;
            move_point(data, &mut protos, &mut stats, i, to, from);
            membership[i] = to as u32;
            if stats.counts[from] == 0 {
                refill(data, &mut protos, &mut stats, &mut membership, from, gamma);
            }
        }
        let new_total = relabel(data, &protos, gamma, &mut labels);
        let converged = moves == 0 || new_total >= total;
        total = new_total;
        if converged {
            break;
        }
    }
    KPrototypesFit {
        numeric_centroids: Array2::from_shape_vec((k, p), protos.numeric).expect("k x p prototypes"),
        categorical_centroids: Array2::from_shape_vec((k, q), protos.categorical).expect("k x q prototypes"),
        labels,
        cost: total,
        n_iter,
    }
}

fn update_numeric(protos: &mut Prototypes, stats: &Stats, c: usize, p: usize) {
    let count = stats.counts[c];
    for a in 0..p {
        protos.numeric[c * p + a] = if count > 0 { stats.sums[c * p + a] / count as f64 } else { 0.0 };
    }
}

/// Moves row `i` from cluster `from` to `to` and updates both prototypes as kmodes does.
fn move_point(data: Mixed<'_>, protos: &mut Prototypes, stats: &mut Stats, i: usize, to: usize, from: usize) {
    let q = data.q;
    stats.add(data, i, to, 1);
    stats.add(data, i, from, -1);
    for (a, &code) in data.cat(i).iter().enumerate() {
        // The receiving cluster: the mode changes only if `code` is now strictly more frequent.
        let to_freq = stats.freq_slice(to, a, q);
        let current = protos.categorical[to * q + a] as usize;
        if to_freq[current] < to_freq[code as usize] {
            protos.categorical[to * q + a] = code;
        }
        // The losing cluster: recompute the mode if its count dropped.
        if protos.categorical[from * q + a] == code {
            protos.categorical[from * q + a] = mode(stats.freq_slice(from, a, q));
        }
    }
    update_numeric(protos, stats, to, data.p);
    update_numeric(protos, stats, from, data.p);
}

/// Gives the emptied cluster `empty` the costliest row of the largest cluster.
fn refill(
    data: Mixed<'_>,
    protos: &mut Prototypes,
    stats: &mut Stats,
    membership: &mut [u32],
    empty: usize,
    gamma: f64,
) {
    let mut largest = 0;
    for c in 0..protos.k {
        if stats.counts[c] > stats.counts[largest] {
            largest = c;
        }
    }
    if stats.counts[largest] < 2 {
        return;
    }
    let (p, q) = (data.p, data.q);
    let pick = (0..data.n)
        .filter(|&i| membership[i] as usize == largest)
        .map(|i| (i, cost(data.num(i), data.cat(i), protos.num(largest, p), protos.cat(largest, q), gamma)))
        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
        .map(|(i, _)| i)
        .expect("the largest cluster has rows");
    move_point(data, protos, stats, pick, empty, largest);
    membership[pick] = empty as u32;
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn separates_mixed_groups() {
        let numeric = array![[0.0], [0.2], [0.1], [5.0], [5.2], [5.1]];
        let categorical = array![[0u32, 1], [0, 1], [0, 1], [1, 0], [1, 0], [1, 1]];
        let config = KPrototypesConfig { k: 2, n_init: 2, max_iter: 100, gamma: 0.5, seed: 3 };
        let fit = kprototypes(numeric.view(), categorical.view(), &config).expect("valid input");
        assert_eq!(fit.labels[0], fit.labels[2]);
        assert_eq!(fit.labels[3], fit.labels[5]);
        assert_ne!(fit.labels[0], fit.labels[3]);
        // Numeric: 2 * (0.02); categorical: the last row mismatches its cluster's mode once.
        assert!((fit.cost - (0.04 + 0.5)).abs() < 1e-9, "cost {}", fit.cost);
    }

    #[test]
    fn mode_ties_go_to_the_smallest_code() {
        assert_eq!(mode(&[2, 3, 3, 1]), 1);
        assert_eq!(mode(&[0, 0]), 0);
    }

    #[test]
    fn default_gamma_is_half_the_mean_std() {
        let numeric = array![[0.0, 0.0], [2.0, 4.0]];
        assert!((default_gamma(numeric.view()) - 0.5 * 1.5).abs() < 1e-12);
        assert_eq!(default_gamma(Array2::<f64>::zeros((3, 0)).view()), 1.0);
    }
}
