//! Clustering quality measures, defined as scikit-learn 1.9 defines them: silhouette
//! (Euclidean, optionally on a seeded sample), Calinski-Harabasz, Davies-Bouldin and the
//! adjusted Rand index.
//!
//! Labels may be any `u32` values (cluster ids need not be contiguous). Functions return `None`
//! where scikit-learn raises an error because the measure is undefined (fewer than two
//! clusters, or as many clusters as points).

use ndarray::ArrayView2;
use rand::Rng;
use rayon::prelude::*;

use super::kmeans::init_rng;

/// Labels renumbered `0..m` in order of first appearance, with `m`.
fn dense(labels: &[u32]) -> (Vec<usize>, usize) {
    let mut map = std::collections::HashMap::new();
    let dense = labels
        .iter()
        .map(|l| {
            let next = map.len();
            *map.entry(*l).or_insert(next)
        })
        .collect();
    (dense, map.len())
}

fn rows_of<'a>(data: &'a ArrayView2<'_, f64>) -> std::borrow::Cow<'a, [f64]> {
    match data.as_slice() {
        Some(slice) => std::borrow::Cow::Borrowed(slice),
        None => std::borrow::Cow::Owned(data.iter().copied().collect()),
    }
}

fn distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>().sqrt()
}

/// Mean silhouette coefficient over all rows (scikit-learn's `silhouette_score`, Euclidean).
/// Costs `O(n^2 d)`: use [`silhouette_sampled`] for large data.
pub fn silhouette(data: ArrayView2<'_, f64>, labels: &[u32]) -> Option<f64> {
    let all: Vec<usize> = (0..data.nrows()).collect();
    silhouette_many(data, &[labels], &all).into_iter().next().flatten()
}

/// The silhouette of a seeded random sample of `sample_size` rows (drawn without replacement),
/// like scikit-learn's `silhouette_score(sample_size=...)`; all rows when there are no more
/// than `sample_size`.
pub fn silhouette_sampled(
    data: ArrayView2<'_, f64>,
    labels: &[u32],
    sample_size: usize,
    seed: u64,
) -> Option<f64> {
    let sample = sample_rows(data.nrows(), sample_size, seed);
    silhouette_many(data, &[labels], &sample).into_iter().next().flatten()
}

/// `size` distinct row indices out of `n`, drawn with a seeded partial Fisher-Yates shuffle and
/// sorted; all rows when `n <= size`.
pub fn sample_rows(n: usize, size: usize, seed: u64) -> Vec<usize> {
    if n <= size {
        return (0..n).collect();
    }
    let mut rng = init_rng(seed, 0);
    let mut index: Vec<usize> = (0..n).collect();
    for i in 0..size {
        let j = rng.random_range(i..n);
        index.swap(i, j);
    }
    index.truncate(size);
    index.sort_unstable();
    index
}

/// Silhouettes of several labellings of the same rows, restricted to `sample`. The k-selection
/// table scores every k on one sample, so each row's distances to the sample are computed once
/// (against the sample stored transposed, a packed-SIMD loop) and then summed per cluster of
/// every labelling (over the sample sorted by cluster, so each sum is one run of the row).
pub(crate) fn silhouette_many(
    data: ArrayView2<'_, f64>,
    labelings: &[&[u32]],
    sample: &[usize],
) -> Vec<Option<f64>> {
    let d = data.ncols();
    let rows = rows_of(&data);
    let m = sample.len();
    // The sample in blocks of LANES rows, each block transposed (`d` runs of LANES values), so
    // that the distances from one row to a block are LANES independent sums in registers. The
    // last block is padded with copies of the first row (those distances are never read).
    const LANES: usize = 8;
    let blocks = m.div_ceil(LANES);
    let mut blocked = vec![0.0; blocks * d * LANES];
    for b in 0..blocks {
        for l in 0..LANES {
            let i = sample.get(b * LANES + l).copied().unwrap_or(sample[0]);
            for k in 0..d {
                blocked[(b * d + k) * LANES + l] = rows[i * d + k];
            }
        }
    }
    // Per labelling: dense labels of the sampled rows, the sample positions sorted by cluster,
    // and where each cluster's run starts (plus the end).
    struct Labelling {
        labels: Vec<usize>,
        clusters: usize,
        order: Vec<u32>,
        starts: Vec<usize>,
    }
    let labellings: Vec<Labelling> = labelings
        .iter()
        .map(|labels| {
            let (labels, clusters) = dense(&sample.iter().map(|&i| labels[i]).collect::<Vec<_>>());
            let mut order: Vec<u32> = (0..m as u32).collect();
            order.sort_by_key(|&j| labels[j as usize]);
            let mut starts = vec![0; clusters + 1];
            for &l in &labels {
                starts[l + 1] += 1;
            }
            for c in 0..clusters {
                starts[c + 1] += starts[c];
            }
            Labelling { labels, clusters, order, starts }
        })
        .collect();

    // Each sampled row: per labelling, its silhouette value.
    let per_row: Vec<Vec<f64>> = (0..m)
        .into_par_iter()
        .with_min_len(16)
        .map_init(
            || (vec![0.0; blocks * LANES], Vec::new()),
            |(distances, sums), a| {
                let x = &rows[sample[a] * d..(sample[a] + 1) * d];
                for (block, out) in blocked.chunks_exact(d * LANES).zip(distances.chunks_exact_mut(LANES)) {
                    let mut acc = [0.0f64; LANES];
                    for (&xk, run) in x.iter().zip(block.chunks_exact(LANES)) {
                        for l in 0..LANES {
                            let diff = xk - run[l];
                            acc[l] += diff * diff;
                        }
                    }
                    for l in 0..LANES {
                        out[l] = acc[l].sqrt();
                    }
                }
                labellings
                    .iter()
                    .map(|labelling| {
                        sums.clear();
                        for c in 0..labelling.clusters {
                            let run = &labelling.order[labelling.starts[c]..labelling.starts[c + 1]];
                            sums.push(gather_sum(run, distances));
                        }
                        let size = |c: usize| labelling.starts[c + 1] - labelling.starts[c];
                        let own = labelling.labels[a];
                        if size(own) <= 1 {
                            return 0.0;
                        }
                        // The row's distance to itself is 0, so the own sum needs no correction.
                        let within = sums[own] / (size(own) - 1) as f64;
                        let nearest = (0..labelling.clusters)
                            .filter(|&c| c != own)
                            .map(|c| sums[c] / size(c) as f64)
                            .fold(f64::INFINITY, f64::min);
                        let denominator = within.max(nearest);
                        if denominator > 0.0 { (nearest - within) / denominator } else { 0.0 }
                    })
                    .collect()
            },
        )
        .collect();
    labellings
        .iter()
        .enumerate()
        .map(|(t, labelling)| {
            if labelling.clusters < 2 || labelling.clusters >= m {
                return None;
            }
            Some(per_row.iter().map(|values| values[t]).sum::<f64>() / m as f64)
        })
        .collect()
}

/// `values[index[0]] + values[index[1]] + ...` with four running sums (one would make every
/// addition wait for the previous one).
fn gather_sum(index: &[u32], values: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let mut quads = index.chunks_exact(4);
    for quad in &mut quads {
        for l in 0..4 {
            acc[l] += values[quad[l] as usize];
        }
    }
    let rest: f64 = quads.remainder().iter().map(|&j| values[j as usize]).sum();
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + rest
}

/// Per-cluster means and sizes of dense labels.
fn centroids(rows: &[f64], d: usize, labels: &[usize], clusters: usize) -> (Vec<f64>, Vec<usize>) {
    let mut sums = vec![0.0; clusters * d];
    let mut sizes = vec![0; clusters];
    for (row, &l) in rows.chunks_exact(d).zip(labels) {
        sizes[l] += 1;
        sums[l * d..(l + 1) * d].iter_mut().zip(row).for_each(|(s, v)| *s += v);
    }
    for (c, size) in sizes.iter().enumerate() {
        sums[c * d..(c + 1) * d].iter_mut().for_each(|s| *s /= *size as f64);
    }
    (sums, sizes)
}

/// Calinski-Harabasz score: between-cluster over within-cluster dispersion, each divided by
/// its degrees of freedom (scikit-learn's `calinski_harabasz_score`; 1 when the within
/// dispersion is 0).
pub fn calinski_harabasz(data: ArrayView2<'_, f64>, labels: &[u32]) -> Option<f64> {
    let (n, d) = data.dim();
    let (labels, clusters) = dense(labels);
    if clusters < 2 || clusters >= n {
        return None;
    }
    let rows = rows_of(&data);
    let (means, sizes) = centroids(&rows, d, &labels, clusters);
    let overall: Vec<f64> =
        (0..d).map(|j| rows.chunks_exact(d).map(|r| r[j]).sum::<f64>() / n as f64).collect();
    let mut between = 0.0;
    for c in 0..clusters {
        let mean = &means[c * d..(c + 1) * d];
        between += sizes[c] as f64 * mean.iter().zip(&overall).map(|(a, b)| (a - b) * (a - b)).sum::<f64>();
    }
    let within: f64 = rows
        .chunks_exact(d)
        .zip(&labels)
        .map(|(row, &l)| {
            row.iter().zip(&means[l * d..(l + 1) * d]).map(|(a, b)| (a - b) * (a - b)).sum::<f64>()
        })
        .sum();
    if within == 0.0 {
        return Some(1.0);
    }
    Some(between * (n - clusters) as f64 / (within * (clusters - 1) as f64))
}

/// Davies-Bouldin score: the mean over clusters of the worst ratio of summed mean
/// within-cluster distances to the distance between centroids (scikit-learn's
/// `davies_bouldin_score`; lower is better).
pub fn davies_bouldin(data: ArrayView2<'_, f64>, labels: &[u32]) -> Option<f64> {
    let (n, d) = data.dim();
    let (labels, clusters) = dense(labels);
    if clusters < 2 || clusters >= n {
        return None;
    }
    let rows = rows_of(&data);
    let (means, sizes) = centroids(&rows, d, &labels, clusters);
    let mut spread = vec![0.0; clusters];
    for (row, &l) in rows.chunks_exact(d).zip(&labels) {
        spread[l] += distance(row, &means[l * d..(l + 1) * d]);
    }
    spread.iter_mut().zip(&sizes).for_each(|(s, &size)| *s /= size as f64);
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-8 + 1e-5 * b.abs();
    let mut separations = vec![0.0; clusters * clusters];
    for a in 0..clusters {
        for b in 0..clusters {
            separations[a * clusters + b] = distance(&means[a * d..(a + 1) * d], &means[b * d..(b + 1) * d]);
        }
    }
    // scikit-learn: 0 when every spread or every separation is (close to) zero.
    if spread.iter().all(|&s| close(s, 0.0)) || separations.iter().all(|&s| close(s, 0.0)) {
        return Some(0.0);
    }
    let mut total = 0.0;
    for a in 0..clusters {
        let mut worst: f64 = 0.0;
        for b in 0..clusters {
            let separation = separations[a * clusters + b];
            if separation == 0.0 {
                continue; // scikit-learn sets a zero separation to infinity: the ratio is 0
            }
            worst = worst.max((spread[a] + spread[b]) / separation);
        }
        total += worst;
    }
    Some(total / clusters as f64)
}

/// Adjusted Rand index of two labellings of the same rows (scikit-learn's
/// `adjusted_rand_score`, from the pair confusion matrix): 1 for identical partitions, about 0
/// for independent ones.
pub fn adjusted_rand_index(a: &[u32], b: &[u32]) -> f64 {
    assert_eq!(a.len(), b.len(), "both labellings cover the same rows");
    let n = a.len();
    let (a, ka) = dense(a);
    let (b, kb) = dense(b);
    let mut table = std::collections::HashMap::<(usize, usize), u64>::new();
    for (&x, &y) in a.iter().zip(&b) {
        *table.entry((x, y)).or_default() += 1;
    }
    let mut rows = vec![0u64; ka];
    let mut columns = vec![0u64; kb];
    let mut sum_squares: u128 = 0;
    for (&(x, y), &count) in &table {
        rows[x] += count;
        columns[y] += count;
        sum_squares += u128::from(count) * u128::from(count);
    }
    let n = n as u128;
    let squares = |v: &[u64]| v.iter().map(|&c| u128::from(c) * u128::from(c)).sum::<u128>();
    let (row_squares, column_squares) = (squares(&rows), squares(&columns));
    // Pair confusion matrix, each entry counted twice as in scikit-learn.
    let tp = (sum_squares - n) as f64;
    let fp = (row_squares - sum_squares) as f64;
    let fn_ = (column_squares - sum_squares) as f64;
    let tn = (n * n) as f64 - fp - fn_ - tp - n as f64;
    if fn_ == 0.0 && fp == 0.0 {
        return 1.0;
    }
    2.0 * (tp * tn - fn_ * fp) / ((tp + fn_) * (fn_ + tn) + (tp + fp) * (fp + tn))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn ari_of_relabelled_partitions_is_one() {
        assert_eq!(adjusted_rand_index(&[0, 0, 1, 1, 2], &[5, 5, 3, 3, 9]), 1.0);
        // scikit-learn: adjusted_rand_score([0, 0, 1, 1], [0, 1, 0, 1]) == -0.5
        assert!((adjusted_rand_index(&[0, 0, 1, 1], &[0, 1, 0, 1]) + 0.5).abs() < 1e-12);
    }

    #[test]
    fn silhouette_of_two_tight_pairs() {
        let data = array![[0.0], [1.0], [10.0], [11.0]];
        // Row 0: a = 1, b = (10 + 11) / 2 = 10.5, s = 9.5 / 10.5; rows are symmetric.
        let s = silhouette(data.view(), &[0, 0, 1, 1]).expect("two clusters");
        let expected = (9.5 / 10.5 + 8.5 / 9.5 + 8.5 / 9.5 + 9.5 / 10.5) / 4.0;
        assert!((s - expected).abs() < 1e-12, "{s} vs {expected}");
        assert_eq!(silhouette(data.view(), &[0, 0, 0, 0]), None);
    }

    #[test]
    fn sampling_is_seeded_and_without_replacement() {
        let sample = sample_rows(100, 10, 4);
        assert_eq!(sample, sample_rows(100, 10, 4));
        let mut unique = sample.clone();
        unique.dedup();
        assert_eq!(unique.len(), 10);
        assert_eq!(sample_rows(5, 10, 4), vec![0, 1, 2, 3, 4]);
    }
}
