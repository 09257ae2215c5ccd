//! k-means on a dense row-major matrix: greedy k-means++ seeding and Lloyd iterations, done the
//! way scikit-learn 1.9 does them so that results and iteration counts can be compared.
//!
//! - **Seeding** is scikit-learn's greedy k-means++: the first centre is drawn uniformly, each
//!   further centre is the best of `2 + ln k` candidates drawn with probability proportional to
//!   the squared distance to the nearest chosen centre ("best" = lowest resulting potential).
//! - **Iterations** are Lloyd's. They stop when no label changes ("strict convergence") or when
//!   the squared centre shift summed over clusters is at most `tol` times the mean per-column
//!   variance of the data, as in scikit-learn's `_tolerance`. Without strict convergence the
//!   labels are recomputed from the final centres; the inertia is always the sum of squared
//!   distances of the points to the final centres of their labels.
//! - **Empty clusters** are handled like scikit-learn: each empty cluster takes the point that
//!   is farthest from its current centre (the farthest point for the first empty cluster, the
//!   next farthest for the second, ...), which leaves its old cluster.
//! - **Determinism.** Rows are processed in fixed chunks of [`CHUNK_ROWS`] and per-chunk partial
//!   results are combined in chunk order, so the result depends only on the data and the seed,
//!   never on the number of rayon threads. The work runs on the current rayon pool.
//!
//! # Why a hand-written kernel
//!
//! linfa-clustering 0.8.1 took 0.88 s (separated blobs) and 1.83 s (overlapping blobs) on
//! 1M x 16, k = 8, 2 threads, against 0.70-1.43 s for scikit-learn (stack notes): it cannot
//! reach "half of scikit-learn", and its stopping rule and `inertia()` differ from
//! scikit-learn's. The kernels below compute the distances of one point to a block of centres
//! stored transposed (one row of `kp` values per dimension), which the compiler turns into
//! packed SIMD without `unsafe`, and the k-means++ pass computes the distances to all
//! candidates of a step in one read of the data. Measured with `bench/kmeans/bench.py`
//! (1M x 16, k = 8, one seeding, 2 threads, medians of 9 rounds): 0.200 s against
//! scikit-learn's 0.845 s (lloyd) / 0.840 s (elkan) on separated blobs, 0.368 s against
//! 1.116 s / 0.965 s on overlapping blobs, i.e. 0.24-0.38 of scikit-learn's time at the same
//! inertia (relative difference of the medians 1e-8); the seeding alone takes 0.11 s here and
//! 0.45-0.49 s in scikit-learn (`kmeans_plusplus`). Tried and dropped: Hamerly's bounds (the
//! rows they still read are scattered, and the iterations got no faster on overlapping blobs)
//! and the `|c|^2 - 2 x.c` form of the distances (no measurable gain). A rounding of the block
//! width to multiples of 2 instead of 4 made the seeding about 12% faster (5 distances per
//! row for k = 8 instead of 8).

use ndarray::{Array2, ArrayView2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::Error;

/// Rows per unit of parallel work. Fixed (not derived from the thread count) so that the
/// order of floating-point additions, and so the result, is the same on any number of threads.
pub const CHUNK_ROWS: usize = 4096;

/// Settings of [`kmeans`].
#[derive(Debug, Clone, PartialEq)]
pub struct KMeansConfig {
    /// Number of clusters.
    pub k: usize,
    /// Number of k-means++ seedings; the run with the lowest inertia is kept.
    pub n_init: usize,
    /// Maximum number of Lloyd iterations per run.
    pub max_iter: usize,
    /// Relative tolerance: the run stops when the squared centre shift is at most `tol` times
    /// the mean per-column variance of the data (scikit-learn's definition).
    pub tol: f64,
    /// Seed of the random number generator; the same seed and data give the same result.
    pub seed: u64,
}

impl Default for KMeansConfig {
    /// scikit-learn's defaults, with one seeding.
    fn default() -> Self {
        KMeansConfig { k: 8, n_init: 1, max_iter: 300, tol: 1e-4, seed: 0 }
    }
}

/// The result of a k-means run.
#[derive(Debug, Clone, PartialEq)]
pub struct KMeansFit {
    /// Final centres, `k x d`.
    pub centroids: Array2<f64>,
    /// Cluster of each row, in row order; every label is below `k`.
    pub labels: Vec<u32>,
    /// Sum of squared distances of the rows to the centre of their cluster.
    pub inertia: f64,
    /// Lloyd iterations run (scikit-learn's `n_iter_`).
    pub n_iter: usize,
}

/// A row-major matrix borrowed as one slice.
#[derive(Clone, Copy)]
pub(crate) struct Rows<'a> {
    pub(crate) x: &'a [f64],
    pub(crate) n: usize,
    pub(crate) d: usize,
}

impl<'a> Rows<'a> {
    pub(crate) fn new(x: &'a [f64], d: usize) -> Self {
        debug_assert!(d > 0 && x.len().is_multiple_of(d));
        Rows { x, n: x.len() / d, d }
    }

    pub(crate) fn row(&self, i: usize) -> &'a [f64] {
        &self.x[i * self.d..(i + 1) * self.d]
    }

    /// The rows in chunks of [`CHUNK_ROWS`], in parallel.
    fn par_chunks(&self) -> rayon::slice::Chunks<'a, f64> {
        self.x.par_chunks(CHUNK_ROWS * self.d)
    }
}

/// Checks shape and values and returns the rows as one row-major slice (copied only when the
/// view is not in standard layout).
fn contiguous<'a>(data: &'a ArrayView2<'_, f64>) -> Result<std::borrow::Cow<'a, [f64]>, Error> {
    let (n, d) = data.dim();
    if n == 0 || d == 0 {
        return Err(Error::InvalidOption(format!("the data has {n} rows and {d} columns")));
    }
    let slice: std::borrow::Cow<'a, [f64]> = match data.as_slice() {
        Some(slice) => std::borrow::Cow::Borrowed(slice),
        None => std::borrow::Cow::Owned(data.iter().copied().collect()),
    };
    if let Some(position) = slice.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFiniteData { row: position / d, column: position % d });
    }
    Ok(slice)
}

/// Runs k-means with k-means++ seeding `config.n_init` times and keeps the lowest inertia.
pub fn kmeans(data: ArrayView2<'_, f64>, config: &KMeansConfig) -> Result<KMeansFit, Error> {
    let slice = contiguous(&data)?;
    let rows = Rows::new(&slice, data.ncols());
    check_k(config.k, rows.n)?;
    if config.n_init == 0 {
        return Err(Error::InvalidOption("n_init must be at least 1".into()));
    }
    let tol = tolerance(rows, config.tol);
    let mut best: Option<Fit> = None;
    for init in 0..config.n_init {
        let mut rng = init_rng(config.seed, init);
        let centers = plusplus(rows, config.k, &mut rng);
        let fit = lloyd(rows, centers, config.k, config.max_iter, tol);
        if best.as_ref().is_none_or(|b| fit.inertia < b.inertia) {
            best = Some(fit);
        }
    }
    let best = best.expect("n_init >= 1 runs at least once");
    Ok(best.into_public(config.k, rows.d))
}

/// Runs Lloyd iterations from given initial centres (`k x d`), like scikit-learn's
/// `KMeans(init=centroids, n_init=1)`.
pub fn kmeans_from_centroids(
    data: ArrayView2<'_, f64>,
    initial: ArrayView2<'_, f64>,
    max_iter: usize,
    tol: f64,
) -> Result<KMeansFit, Error> {
    let slice = contiguous(&data)?;
    let rows = Rows::new(&slice, data.ncols());
    let k = initial.nrows();
    check_k(k, rows.n)?;
    if initial.ncols() != rows.d {
        return Err(Error::InvalidOption(format!(
            "the initial centroids have {} columns, the data {}",
            initial.ncols(),
            rows.d
        )));
    }
    let centers: Vec<f64> = initial.iter().copied().collect();
    if centers.iter().any(|v| !v.is_finite()) {
        return Err(Error::InvalidOption("the initial centroids have a non-finite value".into()));
    }
    let fit = lloyd(rows, centers, k, max_iter, tolerance(rows, tol));
    Ok(fit.into_public(k, rows.d))
}

/// Greedy k-means++ seeding (scikit-learn's `kmeans_plusplus` with its default number of local
/// trials): returns `k x d` initial centres, each one a row of the data.
pub fn kmeans_plusplus(data: ArrayView2<'_, f64>, k: usize, seed: u64) -> Result<Array2<f64>, Error> {
    let slice = contiguous(&data)?;
    let rows = Rows::new(&slice, data.ncols());
    check_k(k, rows.n)?;
    let centers = plusplus(rows, k, &mut init_rng(seed, 0));
    Ok(Array2::from_shape_vec((k, rows.d), centers).expect("k x d centres"))
}

/// Labels each row with its nearest centre (the first one on ties) and returns the labels and
/// the inertia.
pub fn assign(data: ArrayView2<'_, f64>, centroids: ArrayView2<'_, f64>) -> Result<(Vec<u32>, f64), Error> {
    let slice = contiguous(&data)?;
    let rows = Rows::new(&slice, data.ncols());
    if centroids.ncols() != rows.d || centroids.nrows() == 0 {
        return Err(Error::InvalidOption(format!(
            "the centroids are {}x{}, the data has {} columns",
            centroids.nrows(),
            centroids.ncols(),
            rows.d
        )));
    }
    let centers: Vec<f64> = centroids.iter().copied().collect();
    let mut labels = vec![0; rows.n];
    let inertia = assign_rows(rows, &centers, centroids.nrows(), &mut labels);
    Ok((labels, inertia))
}

fn check_k(k: usize, n: usize) -> Result<(), Error> {
    if k == 0 || k > n {
        return Err(Error::TooFewEntities { k, n });
    }
    if k > u32::MAX as usize {
        return Err(Error::InvalidOption(format!("k = {k} is too large")));
    }
    Ok(())
}

/// The generator of seeding number `init`: one ChaCha stream per seeding, so seedings are
/// independent and each is reproducible on its own.
pub(crate) fn init_rng(seed: u64, init: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(init as u64);
    rng
}

/// `tol` times the mean of the per-column (population) variances, as scikit-learn's
/// `_tolerance`.
pub(crate) fn tolerance(rows: Rows<'_>, tol: f64) -> f64 {
    if tol == 0.0 {
        return 0.0;
    }
    let d = rows.d;
    let sums = rows
        .par_chunks()
        .map(|chunk| {
            let mut s = vec![0.0; d];
            for row in chunk.chunks_exact(d) {
                s.iter_mut().zip(row).for_each(|(s, v)| *s += v);
            }
            s
        })
        .collect::<Vec<_>>();
    let mean = sum_in_order(&sums, d).into_iter().map(|s| s / rows.n as f64).collect::<Vec<_>>();
    let squares = rows
        .par_chunks()
        .map(|chunk| {
            let mut s = vec![0.0; d];
            for row in chunk.chunks_exact(d) {
                for ((s, v), m) in s.iter_mut().zip(row).zip(&mean) {
                    *s += (v - m) * (v - m);
                }
            }
            s
        })
        .collect::<Vec<_>>();
    let variance_sum: f64 = sum_in_order(&squares, d).iter().map(|s| s / rows.n as f64).sum();
    variance_sum / d as f64 * tol
}

/// Element-wise sum of equally long vectors, in the given order.
fn sum_in_order(parts: &[Vec<f64>], len: usize) -> Vec<f64> {
    let mut total = vec![0.0; len];
    for part in parts {
        total.iter_mut().zip(part).for_each(|(t, p)| *t += p);
    }
    total
}

/// Centres stored transposed, `d` rows of `kp` values (`kp` = the number of centres rounded up
/// to a multiple of 2, the f64 width of the baseline x86-64 SIMD registers, padded with zeros),
/// so that the distances from one point to all of them are packed SIMD operations over `kp`.
struct Block {
    k: usize,
    kp: usize,
    t: Vec<f64>,
}

impl Block {
    fn new(centers: &[f64], k: usize, d: usize) -> Self {
        let kp = k.div_ceil(2) * 2;
        let mut t = vec![0.0; d * kp];
        for c in 0..k {
            for j in 0..d {
                t[j * kp + c] = centers[c * d + j];
            }
        }
        Block { k, kp, t }
    }

    /// Squared distances from `x` to every centre, into `out[..kp]` (the padding lanes hold
    /// distances to the origin and are ignored by callers).
    #[inline(always)]
    fn distances(&self, x: &[f64], out: &mut [f64]) {
        match self.kp {
            2 => fixed::<2>(x, &self.t, out),
            4 => fixed::<4>(x, &self.t, out),
            6 => fixed::<6>(x, &self.t, out),
            8 => fixed::<8>(x, &self.t, out),
            10 => fixed::<10>(x, &self.t, out),
            12 => fixed::<12>(x, &self.t, out),
            14 => fixed::<14>(x, &self.t, out),
            16 => fixed::<16>(x, &self.t, out),
            _ => {
                let out = &mut out[..self.kp];
                out.fill(0.0);
                for (&xj, row) in x.iter().zip(self.t.chunks_exact(self.kp)) {
                    for (o, &c) in out.iter_mut().zip(row) {
                        let diff = xj - c;
                        *o += diff * diff;
                    }
                }
            }
        }
    }

    /// Index of the nearest centre (the first on ties) and its squared distance.
    #[inline(always)]
    fn nearest(&self, x: &[f64], scratch: &mut [f64]) -> (usize, f64) {
        self.distances(x, scratch);
        argmin(&scratch[..self.k])
    }
}

/// [`Block::distances`] for a block width known at compile time: the accumulator lives in
/// registers and the loop over the width is fully unrolled.
#[inline(always)]
fn fixed<const KP: usize>(x: &[f64], t: &[f64], out: &mut [f64]) {
    let mut acc = [0.0f64; KP];
    for (&xj, row) in x.iter().zip(t.chunks_exact(KP)) {
        let row: &[f64; KP] = row.try_into().expect("rows of the block are KP wide");
        for l in 0..KP {
            let diff = xj - row[l];
            acc[l] += diff * diff;
        }
    }
    out[..KP].copy_from_slice(&acc);
}

/// Index of the smallest value (the first on ties) and the value. Written without branches
/// (selects instead of jumps): on overlapping clusters the nearest centre is unpredictable and
/// a branchy loop mispredicts on most points.
#[inline(always)]
fn argmin(values: &[f64]) -> (usize, f64) {
    let mut best = 0;
    let mut best_value = values[0];
    for (i, &v) in values.iter().enumerate().skip(1) {
        let smaller = v < best_value;
        best = if smaller { i } else { best };
        best_value = if smaller { v } else { best_value };
    }
    (best, best_value)
}

fn squared_distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Greedy k-means++ (see the module documentation). Reads the data `k` times: the pass for
/// step `c` folds the centre chosen at step `c - 1` into the nearest-centre distances and
/// computes the potential of every candidate of step `c` at once.
fn plusplus(rows: Rows<'_>, k: usize, rng: &mut ChaCha8Rng) -> Vec<f64> {
    let (n, d) = (rows.n, rows.d);
    let trials = 2 + (k as f64).ln() as usize;
    let mut centers = Vec::with_capacity(k * d);
    let first = rng.random_range(0..n);
    centers.extend_from_slice(rows.row(first));

    // closest[i]: squared distance of row i to the nearest centre folded in so far.
    let mut closest = vec![0.0; n];
    let first_row = rows.row(first);
    let mut chunk_sums: Vec<f64> = closest
        .par_chunks_mut(CHUNK_ROWS)
        .zip(rows.par_chunks())
        .map(|(closest, chunk)| {
            let mut sum = 0.0;
            for (c, x) in closest.iter_mut().zip(chunk.chunks_exact(d)) {
                *c = squared_distance(x, first_row);
                sum += *c;
            }
            sum
        })
        .collect();
    // The centre chosen last, whose distances are already in `chunk_sums` but not yet folded
    // into `closest`.
    let mut pending: Option<usize> = None;

    for _ in 1..k {
        let potential: f64 = chunk_sums.iter().sum();
        let candidates: Vec<usize> = (0..trials)
            .map(|_| {
                let target = rng.random::<f64>() * potential;
                search(rows, &closest, &chunk_sums, pending, target)
            })
            .collect();

        // One block: the candidates, then the pending centre (if any).
        let mut block_centers: Vec<f64> = candidates.iter().flat_map(|&c| rows.row(c)).copied().collect();
        if let Some(p) = pending {
            block_centers.extend_from_slice(rows.row(p));
        }
        let block_k = trials + usize::from(pending.is_some());
        let block = Block::new(&block_centers, block_k, d);
        let per_chunk: Vec<Vec<f64>> = closest
            .par_chunks_mut(CHUNK_ROWS)
            .zip(rows.par_chunks())
            .map(|(closest, chunk)| {
                let mut scratch = vec![0.0; block.kp];
                let mut pots = vec![0.0; trials];
                for (c, x) in closest.iter_mut().zip(chunk.chunks_exact(d)) {
                    block.distances(x, &mut scratch);
                    if pending.is_some() {
                        *c = c.min(scratch[trials]);
                    }
                    for (pot, &dist) in pots.iter_mut().zip(&scratch[..trials]) {
                        *pot += c.min(dist);
                    }
                }
                pots
            })
            .collect();
        let totals = sum_in_order(&per_chunk, trials);
        let (best, _) = argmin(&totals);
        chunk_sums = per_chunk.iter().map(|pots| pots[best]).collect();
        pending = Some(candidates[best]);
        centers.extend_from_slice(rows.row(candidates[best]));
    }
    centers
}

/// The first row whose cumulative nearest-centre distance reaches `target` (NumPy's
/// `searchsorted(cumsum, target)`, clipped to the last row), found by chunk sums and then a
/// scan of one chunk. `pending` is a centre not yet folded into `closest`.
fn search(rows: Rows<'_>, closest: &[f64], chunk_sums: &[f64], pending: Option<usize>, target: f64) -> usize {
    let mut before = 0.0;
    let mut chunk = chunk_sums.len() - 1;
    for (j, &s) in chunk_sums.iter().enumerate() {
        if before + s >= target {
            chunk = j;
            break;
        }
        before += s;
    }
    let start = chunk * CHUNK_ROWS;
    let end = (start + CHUNK_ROWS).min(rows.n);
    let mut cumulative = before;
    for (i, &c) in closest.iter().enumerate().take(end).skip(start) {
        let mut c = c;
        if let Some(p) = pending {
            c = c.min(squared_distance(rows.row(i), rows.row(p)));
        }
        cumulative += c;
        if cumulative >= target {
            return i;
        }
    }
    end - 1
}

/// Internal result of one run: centres as a flat `k x d` vector.
struct Fit {
    centers: Vec<f64>,
    labels: Vec<u32>,
    inertia: f64,
    n_iter: usize,
}

impl Fit {
    fn into_public(self, k: usize, d: usize) -> KMeansFit {
        KMeansFit {
            centroids: Array2::from_shape_vec((k, d), self.centers).expect("k x d centres"),
            labels: self.labels,
            inertia: self.inertia,
            n_iter: self.n_iter,
        }
    }
}

/// Per-chunk partial result of one Lloyd pass.
struct Partial {
    sums: Vec<f64>,
    counts: Vec<u64>,
    changed: u64,
}

/// Lloyd iterations from `centers` with scikit-learn's stopping rules (see the module
/// documentation); `tol` is already absolute.
fn lloyd(rows: Rows<'_>, mut centers: Vec<f64>, k: usize, max_iter: usize, tol: f64) -> Fit {
    let d = rows.d;
    // u32::MAX is no cluster: every label changes in the first pass.
    let mut labels = vec![u32::MAX; rows.n];
    let mut strict = false;
    let mut n_iter = 0;
    for iteration in 0..max_iter {
        n_iter = iteration + 1;
        let block = Block::new(&centers, k, d);
        let partials: Vec<Partial> = labels
            .par_chunks_mut(CHUNK_ROWS)
            .zip(rows.par_chunks())
            .map(|(labels, chunk)| {
                let mut part = Partial { sums: vec![0.0; k * d], counts: vec![0; k], changed: 0 };
                let mut scratch = vec![0.0; block.kp];
                for (label, x) in labels.iter_mut().zip(chunk.chunks_exact(d)) {
                    let (best, _) = block.nearest(x, &mut scratch);
                    part.changed += u64::from(*label as usize != best);
                    *label = best as u32;
                    part.counts[best] += 1;
                    let sums = &mut part.sums[best * d..(best + 1) * d];
                    sums.iter_mut().zip(x).for_each(|(s, v)| *s += v);
                }
                part
            })
            .collect();
        let mut sums = vec![0.0; k * d];
        let mut counts = vec![0u64; k];
        let mut changed = 0;
        for part in &partials {
            sums.iter_mut().zip(&part.sums).for_each(|(s, p)| *s += p);
            counts.iter_mut().zip(&part.counts).for_each(|(c, p)| *c += p);
            changed += part.changed;
        }
        if counts.contains(&0) {
            relocate_empty(rows, &centers, &labels, &mut sums, &mut counts);
        }
        let mut shift = 0.0;
        for c in 0..k {
            let new = &mut sums[c * d..(c + 1) * d];
            // A cluster left empty by relocation (more empty clusters than rows) keeps its
            // centre.
            if counts[c] == 0 {
                new.copy_from_slice(&centers[c * d..(c + 1) * d]);
                continue;
            }
            let count = counts[c] as f64;
            new.iter_mut().for_each(|s| *s /= count);
            shift += squared_distance(new, &centers[c * d..(c + 1) * d]);
        }
        centers = sums;
        if changed == 0 {
            strict = true;
            break;
        }
        if shift <= tol {
            break;
        }
    }
    let inertia = if strict {
        inertia_of(rows, &centers, &labels)
    } else {
        assign_rows(rows, &centers, k, &mut labels)
    };
    Fit { centers, labels, inertia, n_iter }
}

/// Moves the rows farthest from their centre into the empty clusters (scikit-learn's
/// `_relocate_empty_clusters_dense`): `sums` and `counts` are updated, labels are not (as in
/// scikit-learn, the next pass relabels).
fn relocate_empty(rows: Rows<'_>, centers: &[f64], labels: &[u32], sums: &mut [f64], counts: &mut [u64]) {
    let d = rows.d;
    let empty: Vec<usize> = counts.iter().enumerate().filter(|(_, c)| **c == 0).map(|(i, _)| i).collect();
    let distances: Vec<f64> = (0..rows.n)
        .into_par_iter()
        .with_min_len(CHUNK_ROWS)
        .map(|i| {
            let c = labels[i] as usize;
            squared_distance(rows.row(i), &centers[c * d..(c + 1) * d])
        })
        .collect();
    // Farthest first; ties by row index so that the choice is deterministic.
    let mut order: Vec<usize> = (0..rows.n).collect();
    let take = empty.len().min(rows.n);
    order.select_nth_unstable_by(take.saturating_sub(1), |&a, &b| {
        distances[b].total_cmp(&distances[a]).then(a.cmp(&b))
    });
    order.truncate(take);
    order.sort_by(|&a, &b| distances[b].total_cmp(&distances[a]).then(a.cmp(&b)));
    for (&cluster, &far) in empty.iter().zip(&order) {
        let old = labels[far] as usize;
        // A row can only leave a cluster that still has it.
        if counts[old] <= 1 {
            continue;
        }
        let x = rows.row(far);
        for j in 0..d {
            sums[old * d + j] -= x[j];
            sums[cluster * d + j] = x[j];
        }
        counts[old] -= 1;
        counts[cluster] = 1;
    }
}

/// Labels every row with its nearest centre and returns the inertia.
pub(crate) fn assign_rows(rows: Rows<'_>, centers: &[f64], k: usize, labels: &mut [u32]) -> f64 {
    let d = rows.d;
    let block = Block::new(centers, k, d);
    let parts: Vec<f64> = labels
        .par_chunks_mut(CHUNK_ROWS)
        .zip(rows.par_chunks())
        .map(|(labels, chunk)| {
            let mut scratch = vec![0.0; block.kp];
            let mut inertia = 0.0;
            for (label, x) in labels.iter_mut().zip(chunk.chunks_exact(d)) {
                let (best, _) = block.nearest(x, &mut scratch);
                *label = best as u32;
                // The exact distance, not the block's, so that the inertia does not depend on
                // the block layout.
                inertia += squared_distance(x, &centers[best * d..(best + 1) * d]);
            }
            inertia
        })
        .collect();
    parts.iter().sum()
}

/// Sum of squared distances of the rows to the centres of their labels.
fn inertia_of(rows: Rows<'_>, centers: &[f64], labels: &[u32]) -> f64 {
    let d = rows.d;
    let parts: Vec<f64> = labels
        .par_chunks(CHUNK_ROWS)
        .zip(rows.par_chunks())
        .map(|(labels, chunk)| {
            labels
                .iter()
                .zip(chunk.chunks_exact(d))
                .map(|(&l, x)| squared_distance(x, &centers[l as usize * d..(l as usize + 1) * d]))
                .sum::<f64>()
        })
        .collect();
    parts.iter().sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn two_obvious_groups() {
        let data = array![[0.0, 0.0], [0.1, 0.0], [0.0, 0.1], [10.0, 10.0], [10.1, 10.0], [10.0, 10.1]];
        let fit = kmeans(data.view(), &KMeansConfig { k: 2, n_init: 3, ..Default::default() })
            .expect("valid input");
        assert_eq!(fit.labels[0], fit.labels[1]);
        assert_eq!(fit.labels[0], fit.labels[2]);
        assert_eq!(fit.labels[3], fit.labels[4]);
        assert_ne!(fit.labels[0], fit.labels[3]);
        // Per group, squared distances to the mean (1/30, 1/30): 2/900 + 5/900 + 5/900.
        let expected = 2.0 * 12.0 / 900.0;
        assert!((fit.inertia - expected).abs() < 1e-9, "{} vs {expected}", fit.inertia);
    }

    #[test]
    fn search_matches_a_plain_cumulative_sum() {
        let n = CHUNK_ROWS * 2 + 17;
        let x: Vec<f64> = (0..n).map(|i| ((i * 7919) % 1000) as f64 / 10.0).collect();
        let rows = Rows::new(&x, 1);
        let closest: Vec<f64> = x.iter().map(|v| v * v).collect();
        let chunk_sums: Vec<f64> = closest.chunks(CHUNK_ROWS).map(|c| c.iter().sum()).collect();
        let total: f64 = closest.iter().sum();
        for fraction in [0.0, 0.1, 0.37, 0.5, 0.99, 1.0] {
            let target = total * fraction;
            let mut cumulative = 0.0;
            let expected = closest
                .iter()
                .position(|c| {
                    cumulative += c;
                    cumulative >= target
                })
                .unwrap_or(n - 1);
            let found = search(rows, &closest, &chunk_sums, None, target);
            // Chunked sums round differently from one running sum; allow a neighbour.
            assert!(found.abs_diff(expected) <= 1, "{fraction}: {found} vs {expected}");
        }
    }

    #[test]
    fn empty_clusters_take_the_farthest_points() {
        // Two centres far from every point: the second cluster starts empty.
        let data = array![[0.0], [1.0], [2.0], [100.0]];
        let fit = kmeans_from_centroids(data.view(), array![[1.0], [-1000.0]].view(), 10, 0.0)
            .expect("valid input");
        assert_eq!(fit.labels, vec![0, 0, 0, 1]);
        assert!((fit.inertia - 2.0).abs() < 1e-12);
    }

    #[test]
    fn rejects_bad_input() {
        let data = array![[0.0, f64::NAN]];
        assert!(matches!(
            kmeans(data.view(), &KMeansConfig { k: 1, ..Default::default() }),
            Err(Error::NonFiniteData { row: 0, column: 1 })
        ));
        let data = array![[0.0], [1.0]];
        assert!(matches!(
            kmeans(data.view(), &KMeansConfig { k: 3, ..Default::default() }),
            Err(Error::TooFewEntities { k: 3, n: 2 })
        ));
    }

    #[test]
    fn same_result_on_one_and_two_threads() {
        let n = 3 * CHUNK_ROWS + 5;
        let x: Vec<f64> = (0..n * 3).map(|i| ((i * 2654435761usize) % 10007) as f64 / 100.0).collect();
        let data = Array2::from_shape_vec((n, 3), x).expect("n x 3");
        let config = KMeansConfig { k: 5, n_init: 2, seed: 7, ..Default::default() };
        let run = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("a thread pool")
                .install(|| kmeans(data.view(), &config).expect("valid input"))
        };
        assert_eq!(run(1), run(2));
    }
}
