//! The segment discovery use case: preprocessing, clustering for each k, choosing k, stable
//! ids, personas, rules and bootstrap stability.

use ndarray::ArrayView2;
use rand::Rng;

use super::kmeans::{self, KMeansConfig, Rows, init_rng};
use super::kprototypes::{self, KPrototypesConfig};
use super::matching::min_cost_matching;
use super::metrics::{adjusted_rand_index, calinski_harabasz, davies_bouldin, sample_rows, silhouette_many};
use super::persona::{Population, distinct_names, number, persona};
use super::preprocess::{Prepared, prepare};
use super::rules::{RuleLearner, TreeOptions};
use super::{
    Algorithm, CenterValue, Centroid, ClusterReport, Discovery, DiscoveryOptions, Error, FeatureCenter,
    FeatureColumn, KChoice, KScore, KSelection, LOW_FIDELITY, Method, Preparation, Stability, Warning,
};

/// Rule trees are fitted on at most this many entities (a seeded sample); fidelity, precision
/// and recall are always measured on all of them.
pub(crate) const TREE_ROWS: usize = 100_000;

/// Silhouettes closer than this to the best count as tied; the tie goes to Calinski-Harabasz.
const SILHOUETTE_TIE: f64 = 0.005;

/// The seed of a sub-task (the clustering for one k, one bootstrap round), so that every step
/// has its own reproducible random stream.
fn derived_seed(seed: u64, task: u64) -> u64 {
    seed ^ task.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// One clustering of the prepared data.
struct Clustering {
    labels: Vec<u32>,
    cost: f64,
    n_iter: usize,
}

/// Everything the clustering steps share.
struct Space<'a> {
    prepared: &'a Prepared,
    method: Method,
    gamma: f64,
    /// Numeric values then weighted one-hot categories (see [`Prepared::embedding`]).
    embedding: Vec<f64>,
    width: usize,
    options: &'a DiscoveryOptions,
}

impl Space<'_> {
    fn embedding_view(&self) -> ArrayView2<'_, f64> {
        ArrayView2::from_shape((self.prepared.n, self.width), &self.embedding).expect("n x width embedding")
    }

    /// Clusters the rows `rows` (all rows when `None`) with `k` clusters; returns the
    /// clustering of those rows and a function of the fit that labels all rows.
    fn cluster(&self, k: usize, seed: u64, rows: Option<&[usize]>) -> Result<(Clustering, Vec<u32>), Error> {
        let p = self.prepared.p();
        let q = self.prepared.q();
        let n = self.prepared.n;
        match self.method {
            Method::KMeans => {
                let config = KMeansConfig {
                    k,
                    n_init: self.options.n_init,
                    max_iter: self.options.max_iter,
                    tol: self.options.tol,
                    seed,
                };
                let fit = match rows {
                    None => kmeans::kmeans(self.embedding_view(), &config)?,
                    Some(rows) => {
                        let subset: Vec<f64> = rows
                            .iter()
                            .flat_map(|&i| &self.embedding[i * self.width..(i + 1) * self.width])
                            .copied()
                            .collect();
                        let view = ArrayView2::from_shape((rows.len(), self.width), &subset)
                            .expect("rows x width subset");
                        kmeans::kmeans(view, &config)?
                    }
                };
                let all_labels = match rows {
                    None => fit.labels.clone(),
                    Some(_) => {
                        let centers: Vec<f64> = fit.centroids.iter().copied().collect();
                        let mut labels = vec![0; n];
                        kmeans::assign_rows(Rows::new(&self.embedding, self.width), &centers, k, &mut labels);
                        labels
                    }
                };
                Ok((Clustering { labels: fit.labels, cost: fit.inertia, n_iter: fit.n_iter }, all_labels))
            }
            Method::KPrototypes => {
                let config = KPrototypesConfig {
                    k,
                    n_init: self.options.n_init,
                    max_iter: self.options.max_iter,
                    gamma: self.gamma,
                    seed,
                };
                let numeric = &self.prepared.numeric;
                let codes = &self.prepared.codes;
                let fit = match rows {
                    None => kprototypes::kprototypes(
                        ArrayView2::from_shape((n, p), numeric).expect("n x p"),
                        ArrayView2::from_shape((n, q), codes).expect("n x q"),
                        &config,
                    )?,
                    Some(rows) => {
                        let num: Vec<f64> =
                            rows.iter().flat_map(|&i| &numeric[i * p..(i + 1) * p]).copied().collect();
                        let cat: Vec<u32> =
                            rows.iter().flat_map(|&i| &codes[i * q..(i + 1) * q]).copied().collect();
                        kprototypes::kprototypes(
                            ArrayView2::from_shape((rows.len(), p), &num).expect("rows x p"),
                            ArrayView2::from_shape((rows.len(), q), &cat).expect("rows x q"),
                            &config,
                        )?
                    }
                };
                let all_labels = match rows {
                    None => fit.labels.clone(),
                    Some(_) => {
                        kprototypes::assign(
                            ArrayView2::from_shape((n, p), numeric).expect("n x p"),
                            ArrayView2::from_shape((n, q), codes).expect("n x q"),
                            fit.numeric_centroids.view(),
                            fit.categorical_centroids.view(),
                            self.gamma,
                        )?
                        .0
                    }
                };
                Ok((Clustering { labels: fit.labels, cost: fit.cost, n_iter: fit.n_iter }, all_labels))
            }
        }
    }
}

fn check_options(options: &DiscoveryOptions, n: usize) -> Result<Vec<usize>, Error> {
    if options.n_init == 0 {
        return Err(Error::InvalidOption("n_init must be at least 1".into()));
    }
    if options.max_iter == 0 {
        return Err(Error::InvalidOption("max_iter must be at least 1".into()));
    }
    if !(options.tol.is_finite() && options.tol >= 0.0) {
        return Err(Error::InvalidOption(format!("tol must be a number >= 0, not {}", options.tol)));
    }
    if let Some(gamma) = options.gamma
        && !(gamma.is_finite() && gamma >= 0.0)
    {
        return Err(Error::InvalidOption(format!("gamma must be a number >= 0, not {gamma}")));
    }
    if options.silhouette_sample < 2 {
        return Err(Error::InvalidOption("silhouette_sample must be at least 2".into()));
    }
    match options.k {
        KChoice::Fixed(k) => {
            if k == 0 {
                return Err(Error::InvalidOption("k must be at least 1".into()));
            }
            if k > n {
                return Err(Error::TooFewEntities { k, n });
            }
            Ok(vec![k])
        }
        KChoice::Auto { min, max } => {
            if min < 2 || min > max {
                return Err(Error::InvalidOption(format!(
                    "the k range {min}..={max} must start at 2 or more and not be empty"
                )));
            }
            // The silhouette needs fewer clusters than entities.
            let max = max.min(n.saturating_sub(1));
            if max < min {
                return Err(Error::TooFewEntities { k: min, n });
            }
            Ok((min..=max).collect())
        }
    }
}

/// Clusters the entities described by `columns` and explains the clusters (see `docs/discovery.md`).
///
/// Deterministic: the same columns and options give the same [`Discovery`], on any number of
/// rayon threads.
pub fn discover(columns: &[FeatureColumn], options: &DiscoveryOptions) -> Result<Discovery, Error> {
    let mut prepared = prepare(columns, options.scaling, options.log_transform)?;
    let n = prepared.n;
    let ks = check_options(options, n)?;
    let method = match options.algorithm {
        Algorithm::Auto if prepared.q() > 0 => Method::KPrototypes,
        Algorithm::Auto | Algorithm::KMeans => Method::KMeans,
        Algorithm::KPrototypes if prepared.q() == 0 => {
            return Err(Error::InvalidOption(
                "k-prototypes needs at least one categorical feature; use k-means".into(),
            ));
        }
        Algorithm::KPrototypes => Method::KPrototypes,
    };
    let p = prepared.p();
    let gamma = options.gamma.unwrap_or_else(|| {
        kprototypes::default_gamma(ArrayView2::from_shape((n, p), &prepared.numeric).expect("n x p"))
    });
    if method == Method::KMeans {
        for report in &mut prepared.reports {
            if let Preparation::Categorical { one_hot_weight, .. } = &mut report.preparation {
                *one_hot_weight = Some((gamma / 2.0).sqrt());
                report
                    .summary
                    .push_str(&format!("; one-hot encoded, weight {}", number((gamma / 2.0).sqrt())));
            }
        }
    }
    let (embedding, width) = prepared.embedding(gamma);
    let space = Space { prepared: &prepared, method, gamma, embedding, width, options };

    // Cluster for every k and score each clustering.
    let mut fits = Vec::new();
    for &k in &ks {
        let (fit, _) = space.cluster(k, derived_seed(options.seed, k as u64), None)?;
        fits.push(fit);
    }
    let sample = sample_rows(n, options.silhouette_sample, derived_seed(options.seed, u64::MAX));
    let labelings: Vec<&[u32]> = fits.iter().map(|f| f.labels.as_slice()).collect();
    let silhouettes = silhouette_many(space.embedding_view(), &labelings, &sample);
    let table: Vec<KScore> = ks
        .iter()
        .zip(&fits)
        .zip(silhouettes)
        .map(|((&k, fit), silhouette)| KScore {
            k,
            silhouette,
            calinski_harabasz: calinski_harabasz(space.embedding_view(), &fit.labels),
            davies_bouldin: davies_bouldin(space.embedding_view(), &fit.labels),
            inertia: fit.cost,
        })
        .collect();
    let (chosen_index, explanation) = choose_k(&table, options.k);
    let chosen = fits.swap_remove(chosen_index);
    let k = ks[chosen_index];
    let selection = KSelection { table, chosen: k, explanation, silhouette_rows: sample.len() };

    // Centroids of the final labels, then ids.
    let raw_centroids = centroids_of(&prepared, columns, &chosen.labels, k);
    let sizes: Vec<usize> =
        (0..k).map(|c| chosen.labels.iter().filter(|&&l| l as usize == c).count()).collect();
    let (ids, id_assignment) =
        assign_ids(&prepared, &raw_centroids, &sizes, gamma, options.previous_centroids.as_deref());
    let labels: Vec<u32> = chosen.labels.iter().map(|&l| ids[l as usize]).collect();

    // Per cluster, in id order.
    let population = Population::new(columns);
    let tree_rows =
        (n > TREE_ROWS).then(|| sample_rows(n, TREE_ROWS, derived_seed(options.seed, u64::MAX - 1)));
    let tree_columns: Vec<FeatureColumn> = match &tree_rows {
        None => Vec::new(),
        Some(rows) => columns.iter().map(|c| subset(c, rows)).collect(),
    };
    let learner = RuleLearner::new(if tree_rows.is_some() { &tree_columns } else { columns });
    let tree = TreeOptions::for_entities(tree_rows.as_ref().map_or(n, Vec::len), options.tree_depth);
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by_key(|&c| ids[c]);
    let mut clusters = Vec::with_capacity(k);
    for &c in &order {
        let id = ids[c];
        let members: Vec<usize> = (0..n).filter(|&i| labels[i] == id).collect();
        let flags: Vec<bool> = labels.iter().map(|&l| l == id).collect();
        let rule = match &tree_rows {
            None => learner.fit(&flags, &tree),
            Some(rows) => learner.fit(&rows.iter().map(|&i| flags[i]).collect::<Vec<_>>(), &tree),
        };
        let quality = rule.quality(columns, &flags);
        clusters.push(ClusterReport {
            id,
            size: members.len(),
            share: members.len() as f64 / n as f64,
            centroid: raw_centroids[c].clone(),
            persona: persona(id, columns, &population, &members),
            rule: rule.to_text(),
            fidelity: quality.fidelity,
            precision: quality.precision,
            recall: quality.recall,
            rule_size: quality.matched,
        });
    }
    distinct_names(&mut clusters);
    let warnings = discovery_warnings(options.k, &ks, k, &clusters, n);

    // Stability: resample, recluster, label everyone, compare.
    let stability = (options.bootstrap_rounds > 0)
        .then(|| -> Result<Stability, Error> {
            let mut rounds = Vec::with_capacity(options.bootstrap_rounds);
            for round in 0..options.bootstrap_rounds {
                let seed = derived_seed(options.seed, (1 << 32) + round as u64);
                let mut rng = init_rng(seed, 0);
                let rows: Vec<usize> = (0..n).map(|_| rng.random_range(0..n)).collect();
                let (_, predicted) = space.cluster(k, seed, Some(&rows))?;
                rounds.push(adjusted_rand_index(&chosen.labels, &predicted));
            }
            let mean = rounds.iter().sum::<f64>() / rounds.len() as f64;
            let min = rounds.iter().copied().fold(f64::INFINITY, f64::min);
            Ok(Stability { rounds, mean, min })
        })
        .transpose()?;

    let centroids = clusters.iter().map(|c| Centroid { id: c.id, features: c.centroid.clone() }).collect();
    Ok(Discovery {
        method,
        k,
        labels,
        inertia: chosen.cost,
        n_iter: chosen.n_iter,
        gamma,
        selection,
        preprocessing: prepared.reports.clone(),
        clusters,
        stability,
        id_assignment,
        centroids,
        warnings,
    })
}

/// The warnings of a discovery: k at the edge of the range tried, then the rules that do not
/// describe their cluster (see [`Warning`]).
fn discovery_warnings(
    choice: KChoice,
    tried: &[usize],
    k: usize,
    clusters: &[ClusterReport],
    n: usize,
) -> Vec<Warning> {
    let mut warnings = Vec::new();
    if let (KChoice::Auto { .. }, [smallest, .., largest]) = (choice, tried)
        && (k == *smallest || k == *largest)
    {
        warnings.push(Warning::KAtRangeEdge { k, smallest: *smallest, largest: *largest });
    }
    for cluster in clusters {
        let id = cluster.id;
        if cluster.rule_size == n {
            warnings.push(Warning::RuleMatchesAll { cluster: id });
        } else if cluster.rule_size == 0 {
            warnings.push(Warning::RuleMatchesNone { cluster: id });
        } else if cluster.fidelity < LOW_FIDELITY {
            warnings.push(Warning::LowFidelity { cluster: id, fidelity: cluster.fidelity });
        }
    }
    warnings
}

/// The column restricted to `rows`.
fn subset(column: &FeatureColumn, rows: &[usize]) -> FeatureColumn {
    match column {
        FeatureColumn::Numeric { name, values } => {
            FeatureColumn::Numeric { name: name.clone(), values: rows.iter().map(|&i| values[i]).collect() }
        }
        FeatureColumn::Categorical { name, values } => FeatureColumn::Categorical {
            name: name.clone(),
            values: rows.iter().map(|&i| values[i].clone()).collect(),
        },
    }
}

/// Picks k from the table and says why.
fn choose_k(table: &[KScore], choice: KChoice) -> (usize, String) {
    if let KChoice::Fixed(k) = choice {
        return (0, format!("k = {k} was fixed by the options."));
    }
    let score = |v: Option<f64>| v.unwrap_or(f64::NEG_INFINITY);
    let best_silhouette = table.iter().map(|r| score(r.silhouette)).fold(f64::NEG_INFINITY, f64::max);
    let ch_best = argmax(table.iter().map(|r| score(r.calinski_harabasz)));
    let db_best = argmax(table.iter().map(|r| -r.davies_bouldin.unwrap_or(f64::INFINITY)));
    let agreement = format!(
        " Calinski-Harabasz is highest at k = {} and Davies-Bouldin lowest at k = {}.",
        table[ch_best].k, table[db_best].k
    );
    if best_silhouette == f64::NEG_INFINITY {
        return (
            ch_best,
            format!(
                "No silhouette could be computed; k = {} has the highest Calinski-Harabasz score.{agreement}",
                table[ch_best].k
            ),
        );
    }
    let near: Vec<usize> = (0..table.len())
        .filter(|&i| score(table[i].silhouette) >= best_silhouette - SILHOUETTE_TIE)
        .collect();
    let pick = near
        .iter()
        .copied()
        .max_by(|&a, &b| {
            score(table[a].calinski_harabasz).total_cmp(&score(table[b].calinski_harabasz)).then(b.cmp(&a))
        })
        .expect("the best silhouette is in the table");
    let k = table[pick].k;
    let first = if near.len() == 1 {
        let runner_up = (0..table.len()).filter(|&i| i != pick).max_by(|&a, &b| {
            score(table[a].silhouette).total_cmp(&score(table[b].silhouette)).then(b.cmp(&a))
        });
        match runner_up {
            Some(r) => format!(
                "k = {k} has the highest silhouette ({:.3}); the next best is k = {} ({:.3}).",
                best_silhouette,
                table[r].k,
                score(table[r].silhouette)
            ),
            None => format!("k = {k} has the highest silhouette ({best_silhouette:.3})."),
        }
    } else {
        let tied: Vec<String> = near.iter().map(|&i| table[i].k.to_string()).collect();
        format!(
            "k = {} have silhouettes within {SILHOUETTE_TIE} of the best ({best_silhouette:.3}); of those, k = {k} \
             has the highest Calinski-Harabasz score ({}).",
            tied.join(", "),
            number(score(table[pick].calinski_harabasz))
        )
    };
    (pick, first + &agreement)
}

fn argmax(values: impl Iterator<Item = f64>) -> usize {
    let mut best = (0, f64::NEG_INFINITY);
    for (i, v) in values.enumerate() {
        if v > best.1 {
            best = (i, v);
        }
    }
    best.0
}

/// Centroid of every cluster (by raw label): means of the scaled numeric values mapped back to
/// original units, and the category shares of the members.
fn centroids_of(
    prepared: &Prepared,
    columns: &[FeatureColumn],
    labels: &[u32],
    k: usize,
) -> Vec<Vec<FeatureCenter>> {
    let (n, p, q) = (prepared.n, prepared.p(), prepared.q());
    let mut sums = vec![0.0; k * p];
    let mut sizes = vec![0usize; k];
    let mut counts: Vec<Vec<usize>> =
        (0..k * q).map(|i| vec![0; prepared.categories[i % q.max(1)].len()]).collect();
    for i in 0..n {
        let c = labels[i] as usize;
        sizes[c] += 1;
        for a in 0..p {
            sums[c * p + a] += prepared.numeric[i * p + a];
        }
        for a in 0..q {
            counts[c * q + a][prepared.codes[i * q + a] as usize] += 1;
        }
    }
    (0..k)
        .map(|c| {
            let size = sizes[c].max(1) as f64;
            columns
                .iter()
                .enumerate()
                .map(|(index, column)| {
                    let value = if let Some(a) = prepared.numeric_index.iter().position(|&i| i == index) {
                        let scaled = sums[c * p + a] / size;
                        CenterValue::Numeric { original: prepared.transforms[a].inverse(scaled), scaled }
                    } else {
                        let a =
                            prepared.categorical_index.iter().position(|&i| i == index).expect("categorical");
                        let cell = &counts[c * q + a];
                        let values = &prepared.categories[a];
                        let mut mode = 0;
                        for (code, &count) in cell.iter().enumerate() {
                            if count > cell[mode] {
                                mode = code;
                            }
                        }
                        CenterValue::Categorical {
                            mode: values[mode].clone(),
                            shares: values
                                .iter()
                                .cloned()
                                .zip(cell.iter().map(|&count| count as f64 / size))
                                .collect(),
                        }
                    };
                    FeatureCenter { name: column.name().to_string(), value }
                })
                .collect()
        })
        .collect()
}

/// Squared distance between two centroids in the current clustered space: scaled numeric
/// difference (the previous value mapped through the current transform), plus `gamma / 2`
/// times the squared difference of category shares. Features missing on either side are
/// skipped; `None` when no feature is shared.
fn centroid_distance(
    prepared: &Prepared,
    current: &[FeatureCenter],
    previous: &Centroid,
    gamma: f64,
) -> Option<f64> {
    let mut total = 0.0;
    let mut shared = 0;
    for (position, center) in current.iter().enumerate() {
        let Some(old) = previous.features.iter().find(|f| f.name == center.name) else { continue };
        match (&center.value, &old.value) {
            (CenterValue::Numeric { scaled, .. }, CenterValue::Numeric { original, .. }) => {
                let a = prepared.numeric_index.iter().position(|&i| i == position).expect("numeric");
                let old_scaled = prepared.transforms[a].forward(*original);
                if old_scaled.is_finite() {
                    total += (scaled - old_scaled).powi(2);
                    shared += 1;
                }
            }
            (
                CenterValue::Categorical { shares, .. },
                CenterValue::Categorical { shares: old_shares, .. },
            ) => {
                let share = |list: &[(Option<String>, f64)], v: &Option<String>| {
                    list.iter().find(|(w, _)| w == v).map_or(0.0, |(_, s)| *s)
                };
                let mut squares = 0.0;
                for (value, s) in shares {
                    squares += (s - share(old_shares, value)).powi(2);
                }
                for (value, s) in old_shares {
                    if !shares.iter().any(|(w, _)| w == value) {
                        squares += s * s;
                    }
                }
                total += gamma / 2.0 * squares;
                shared += 1;
            }
            _ => {}
        }
    }
    (shared > 0).then_some(total)
}

/// The id of every cluster (by raw label) and a sentence on how they were chosen.
fn assign_ids(
    prepared: &Prepared,
    centroids: &[Vec<FeatureCenter>],
    sizes: &[usize],
    gamma: f64,
    previous: Option<&[Centroid]>,
) -> (Vec<u32>, String) {
    let k = centroids.len();
    // Canonical order: largest first; ties by the scaled numeric centroid, then raw label.
    let key = |c: usize| -> Vec<f64> {
        centroids[c]
            .iter()
            .filter_map(|f| match f.value {
                CenterValue::Numeric { scaled, .. } => Some(scaled),
                CenterValue::Categorical { .. } => None,
            })
            .collect()
    };
    let mut canonical: Vec<usize> = (0..k).collect();
    canonical.sort_by(|&a, &b| {
        sizes[b].cmp(&sizes[a]).then_with(|| {
            key(a)
                .iter()
                .zip(key(b).iter())
                .map(|(x, y)| x.total_cmp(y))
                .find(|o| o.is_ne())
                .unwrap_or(a.cmp(&b))
        })
    });
    let by_size = || {
        let mut ids = vec![0u32; k];
        for (id, &c) in canonical.iter().enumerate() {
            ids[c] = id as u32;
        }
        ids
    };
    let Some(previous) = previous.filter(|p| !p.is_empty()) else {
        return (by_size(), "ids follow cluster size, largest first (no previous centroids given)".into());
    };
    let cost: Option<Vec<Vec<f64>>> = (0..k)
        .map(|c| previous.iter().map(|old| centroid_distance(prepared, &centroids[c], old, gamma)).collect())
        .collect();
    let Some(cost) = cost else {
        return (
            by_size(),
            "ids follow cluster size, largest first (the previous centroids share no feature)".into(),
        );
    };
    let matching = min_cost_matching(&cost);
    let mut ids = vec![u32::MAX; k];
    for (c, m) in matching.iter().enumerate() {
        if let Some(m) = m {
            ids[c] = previous[*m].id;
        }
    }
    let taken: std::collections::HashSet<u32> = previous.iter().map(|c| c.id).collect();
    let mut free = (0u32..).filter(|id| !taken.contains(id));
    let mut new = 0;
    for &c in &canonical {
        if ids[c] == u32::MAX {
            ids[c] = free.next().expect("ids are plentiful");
            new += 1;
        }
    }
    let matched = k - new;
    let mut text = format!(
        "{matched} of {k} clusters kept the id of the nearest of the {} previous centroids (minimum total \
         squared distance, Hungarian method)",
        previous.len()
    );
    if new > 0 {
        text.push_str(&format!("; {new} new clusters took unused ids, largest first"));
    }
    (ids, text)
}
