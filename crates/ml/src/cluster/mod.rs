//! Segment discovery: clusters entities on a table of numeric and categorical features and
//! explains every cluster with a persona and a rule in segmenta's rule language.
//!
//! [`discover`] is the use case (see `docs/discovery.md` at the workspace root for the
//! algorithms, options, defaults and measured figures). Its steps are public modules so that
//! benchmarks, tests and other callers can use them alone:
//!
//! ```text
//! FeatureColumn* ──preprocess──► scaled numeric matrix (+ one-hot or category codes), report
//!   ──kmeans / kprototypes for each k──► metrics::{silhouette, calinski_harabasz, davies_bouldin}
//!   ──choose k──► labels ──matching (previous centroids)──► stable ids
//!   ──persona──► names, descriptions      ──rules (one-vs-rest trees on original values)──► rules
//!   ──bootstrap + metrics::adjusted_rand_index──► stability
//!   k at the edge of its range, rules that match all / none / with low fidelity ──► warnings
//! ```
//!
//! **Invariant:** no I/O, synchronous; parallel work runs on the caller's rayon pool and its
//! result does not depend on the number of threads. The same data, options and seed give the
//! same [`Discovery`].

mod discover;
pub mod kmeans;
pub mod kprototypes;
pub mod matching;
pub mod metrics;
mod persona;
mod preprocess;
pub mod rules;

pub use discover::discover;

/// One feature of the entities, in entity order. All columns of a call have the same length.
#[derive(Debug, Clone, PartialEq)]
pub enum FeatureColumn {
    /// A number per entity (`None`: missing). Values must be finite.
    Numeric {
        /// The attribute or trait name, as rules must reference it.
        name: String,
        /// One value per entity.
        values: Vec<Option<f64>>,
    },
    /// A category per entity (`None`: missing). Rules compare it with string literals, so it
    /// should be a string attribute.
    Categorical {
        /// The attribute or trait name, as rules must reference it.
        name: String,
        /// One value per entity.
        values: Vec<Option<String>>,
    },
}

impl FeatureColumn {
    /// The feature's name.
    pub fn name(&self) -> &str {
        match self {
            FeatureColumn::Numeric { name, .. } | FeatureColumn::Categorical { name, .. } => name,
        }
    }

    /// The number of entities.
    pub fn len(&self) -> usize {
        match self {
            FeatureColumn::Numeric { values, .. } => values.len(),
            FeatureColumn::Categorical { values, .. } => values.len(),
        }
    }

    /// Whether the column has no entities.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the entity's value is missing.
    pub fn is_missing(&self, row: usize) -> bool {
        match self {
            FeatureColumn::Numeric { values, .. } => values[row].is_none(),
            FeatureColumn::Categorical { values, .. } => values[row].is_none(),
        }
    }
}

/// How many clusters to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KChoice {
    /// Try every k in `min..=max` and pick one (see [`KSelection`]).
    Auto {
        /// Smallest k tried (at least 2).
        min: usize,
        /// Largest k tried.
        max: usize,
    },
    /// Exactly this many clusters (at least 1).
    Fixed(usize),
}

/// The clustering algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// k-prototypes when there is a categorical feature, k-means otherwise.
    Auto,
    /// k-means; categorical features are one-hot encoded.
    KMeans,
    /// k-prototypes; categorical features are used as they are.
    KPrototypes,
}

/// The algorithm actually run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// k-means with k-means++ seeding.
    KMeans,
    /// Huang's k-prototypes.
    KPrototypes,
}

/// How numeric features are scaled before clustering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scaling {
    /// Subtract the mean, divide by the (population) standard deviation.
    Standard,
    /// Subtract the median, divide by the interquartile range.
    Robust,
    /// Cluster the raw numbers (no scaling and no log transform).
    None,
}

/// Whether heavy-tailed non-negative features are log-transformed (`ln(1 + x)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogTransform {
    /// When every value is `>= 0` and the skewness exceeds [`LOG1P_SKEWNESS`] (never with
    /// [`Scaling::None`]).
    Auto,
    /// Never.
    Never,
}

/// Skewness above which [`LogTransform::Auto`] applies `ln(1 + x)` to a non-negative feature.
pub const LOG1P_SKEWNESS: f64 = 2.0;

/// A categorical feature may have at most this many distinct values (more is likely an id).
pub const MAX_CATEGORIES: usize = 1000;

/// A numeric feature distinguishes a cluster when its mean is at least this many population
/// standard deviations from the population mean.
pub const PERSONA_DISTINCT_SD: f64 = 0.5;

/// A category is over-represented in a cluster when at least this share of the cluster has it
/// ...
pub const PERSONA_MIN_SHARE: f64 = 0.2;

/// ... and it is at least this many times as common as in the population.
pub const PERSONA_MIN_LIFT: f64 = 1.5;

/// A rule whose fidelity is below this describes its cluster poorly: the discovery warns
/// ([`Warning::LowFidelity`]).
pub const LOW_FIDELITY: f64 = 0.7;

/// Options of [`discover`]; [`Default`] gives the documented defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct DiscoveryOptions {
    /// Number of clusters; default `Auto { min: 2, max: 10 }`.
    pub k: KChoice,
    /// Default [`Algorithm::Auto`].
    pub algorithm: Algorithm,
    /// Default [`Scaling::Standard`].
    pub scaling: Scaling,
    /// Default [`LogTransform::Auto`].
    pub log_transform: LogTransform,
    /// Seed of every random choice; default 0.
    pub seed: u64,
    /// Seedings per clustering, the lowest cost kept; default 3.
    pub n_init: usize,
    /// Iterations per seeding; default 300 (k-means) — k-prototypes uses the same bound.
    pub max_iter: usize,
    /// k-means tolerance, relative to the mean feature variance (scikit-learn's); default 1e-4.
    pub tol: f64,
    /// Weight of a categorical mismatch against squared scaled numeric distance; default
    /// (`None`) half the mean standard deviation of the scaled numeric features, as kmodes.
    pub gamma: Option<f64>,
    /// Depth of the decision trees that give the rules; default 3.
    pub tree_depth: usize,
    /// Bootstrap rounds for the stability estimate (0 skips it); default 10.
    pub bootstrap_rounds: usize,
    /// Rows sampled for the silhouette; default 10,000.
    pub silhouette_sample: usize,
    /// Centroids of a previous run ([`Discovery::centroids`]), to keep cluster ids stable.
    pub previous_centroids: Option<Vec<Centroid>>,
}

impl Default for DiscoveryOptions {
    fn default() -> Self {
        DiscoveryOptions {
            k: KChoice::Auto { min: 2, max: 10 },
            algorithm: Algorithm::Auto,
            scaling: Scaling::Standard,
            log_transform: LogTransform::Auto,
            seed: 0,
            n_init: 3,
            max_iter: 300,
            tol: 1e-4,
            gamma: None,
            tree_depth: 3,
            bootstrap_rounds: 10,
            silhouette_sample: 10_000,
            previous_centroids: None,
        }
    }
}

/// The result of [`discover`].
#[derive(Debug, Clone, PartialEq)]
pub struct Discovery {
    /// The algorithm run.
    pub method: Method,
    /// The number of clusters.
    pub k: usize,
    /// The cluster id of each entity, in input order.
    pub labels: Vec<u32>,
    /// k-means inertia or k-prototypes cost, in the scaled feature space actually clustered.
    pub inertia: f64,
    /// Iterations of the kept run.
    pub n_iter: usize,
    /// The categorical weight used (k-prototypes' gamma; for k-means, one-hot columns are
    /// weighted so that a category mismatch adds `gamma` to the squared distance).
    pub gamma: f64,
    /// The k-selection table and the explanation of the choice.
    pub selection: KSelection,
    /// What was done to each feature, in input order.
    pub preprocessing: Vec<FeatureReport>,
    /// The clusters, by id.
    pub clusters: Vec<ClusterReport>,
    /// Bootstrap stability; `None` when `bootstrap_rounds` is 0.
    pub stability: Option<Stability>,
    /// How the cluster ids were assigned (a sentence).
    pub id_assignment: String,
    /// The centroids to pass as `previous_centroids` next time, by id.
    pub centroids: Vec<Centroid>,
    /// What the reader should know before trusting the clusters or saving their rules: the k
    /// choice first, then by cluster id.
    pub warnings: Vec<Warning>,
}

/// Something a discovery warns about.
#[derive(Debug, Clone, PartialEq)]
pub enum Warning {
    /// [`KChoice::Auto`] chose the smallest or the largest k it tried (among two or more): the
    /// scores might keep improving beyond the range.
    KAtRangeEdge {
        /// The k chosen.
        k: usize,
        /// The smallest k tried.
        smallest: usize,
        /// The largest k tried (the range's `max`, or one below the number of entities).
        largest: usize,
    },
    /// The cluster's rule is TRUE for every entity (the rule `true`, typically): it does not
    /// describe the cluster.
    RuleMatchesAll {
        /// The cluster id.
        cluster: u32,
    },
    /// The cluster's rule is TRUE for no entity.
    RuleMatchesNone {
        /// The cluster id.
        cluster: u32,
    },
    /// The cluster's rule has a fidelity below [`LOW_FIDELITY`] (not reported for a rule that
    /// matches all or none).
    LowFidelity {
        /// The cluster id.
        cluster: u32,
        /// The rule's fidelity.
        fidelity: f64,
    },
}

impl Warning {
    /// A stable snake_case code for the warning.
    pub fn code(&self) -> &'static str {
        match self {
            Warning::KAtRangeEdge { .. } => "k_at_range_edge",
            Warning::RuleMatchesAll { .. } => "rule_matches_all",
            Warning::RuleMatchesNone { .. } => "rule_matches_none",
            Warning::LowFidelity { .. } => "low_fidelity",
        }
    }

    /// The cluster the warning is about, for the warnings about a cluster's rule.
    pub fn cluster(&self) -> Option<u32> {
        match self {
            Warning::KAtRangeEdge { .. } => None,
            Warning::RuleMatchesAll { cluster }
            | Warning::RuleMatchesNone { cluster }
            | Warning::LowFidelity { cluster, .. } => Some(*cluster),
        }
    }
}

/// The k-selection table.
#[derive(Debug, Clone, PartialEq)]
pub struct KSelection {
    /// One row per k tried, by k.
    pub table: Vec<KScore>,
    /// The k chosen.
    pub chosen: usize,
    /// Why, in a sentence or two made from the table.
    pub explanation: String,
    /// Rows the silhouette was computed on (all rows, or a seeded sample).
    pub silhouette_rows: usize,
}

/// Quality measures of the clustering with `k` clusters (`None` where undefined, e.g. a single
/// cluster). Silhouette, Calinski-Harabasz and Davies-Bouldin are computed in the clustered
/// space (for k-prototypes, on the one-hot embedding whose squared distances equal its cost).
#[derive(Debug, Clone, PartialEq)]
pub struct KScore {
    /// Number of clusters.
    pub k: usize,
    /// Mean silhouette (higher is better, at most 1).
    pub silhouette: Option<f64>,
    /// Calinski-Harabasz score (higher is better).
    pub calinski_harabasz: Option<f64>,
    /// Davies-Bouldin score (lower is better).
    pub davies_bouldin: Option<f64>,
    /// k-means inertia or k-prototypes cost.
    pub inertia: f64,
}

/// What preprocessing did to one feature.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureReport {
    /// The feature.
    pub name: String,
    /// Missing values.
    pub missing: usize,
    /// The details.
    pub preparation: Preparation,
    /// The same in a sentence, e.g. "log1p applied (skewness 4.2 > 2, all values >= 0);
    /// standardised; 12 missing values imputed with the median 310".
    pub summary: String,
}

/// Preprocessing of one feature.
#[derive(Debug, Clone, PartialEq)]
pub enum Preparation {
    /// A numeric feature: `scaled = (t - center) / scale` with `t = ln(1 + x)` when `log1p`,
    /// else `t = x`; missing values take `imputed`.
    Numeric {
        /// Whether `ln(1 + x)` was applied.
        log1p: bool,
        /// Why or why not.
        log1p_reason: String,
        /// Skewness of the non-missing values before any transform (0 if constant).
        skewness: f64,
        /// The scaling applied.
        scaling: Scaling,
        /// Subtracted after the transform.
        center: f64,
        /// Divided by after the transform (1 for a constant feature or no scaling).
        scale: f64,
        /// The median imputed for missing values, in original units (`None`: none missing).
        imputed: Option<f64>,
    },
    /// A categorical feature. Missing values form their own category, shown as "(missing)".
    Categorical {
        /// Distinct values, the missing category included.
        categories: usize,
        /// For k-means: the weight of each one-hot column (`sqrt(gamma / 2)`); `None` for
        /// k-prototypes, which uses the categories as they are.
        one_hot_weight: Option<f64>,
    },
}

/// One cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterReport {
    /// Cluster id (the label in [`Discovery::labels`]).
    pub id: u32,
    /// Entities in the cluster.
    pub size: usize,
    /// `size` over all entities.
    pub share: f64,
    /// The centroid, per feature (see [`CenterValue`]).
    pub centroid: Vec<FeatureCenter>,
    /// Name, description and the facts they are made of.
    pub persona: Persona,
    /// A rule in segmenta's rule language that approximates the cluster.
    pub rule: String,
    /// Share of all entities on which "the rule is TRUE" and "the entity is in the cluster"
    /// agree, under SQL three-valued logic on the original values.
    pub fidelity: f64,
    /// Share of the entities matching the rule that are in the cluster.
    pub precision: f64,
    /// Share of the cluster that matches the rule.
    pub recall: f64,
    /// Entities for which the rule is TRUE (the size of the segment it makes).
    pub rule_size: usize,
}

/// A cluster centroid (used both for reporting and to keep ids stable between runs).
#[derive(Debug, Clone, PartialEq)]
pub struct Centroid {
    /// Cluster id.
    pub id: u32,
    /// Per feature.
    pub features: Vec<FeatureCenter>,
}

/// The centre of one feature in one cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureCenter {
    /// The feature.
    pub name: String,
    /// The value.
    pub value: CenterValue,
}

/// The centre of a feature.
#[derive(Debug, Clone, PartialEq)]
pub enum CenterValue {
    /// Numeric: the centroid coordinate in the clustered space and mapped back to original
    /// units (unscaled, then `exp(t) - 1` for log-transformed features, so for those it is a
    /// geometric-type mean, not the arithmetic mean that the persona reports).
    Numeric {
        /// In original units.
        original: f64,
        /// In the clustered (scaled) space.
        scaled: f64,
    },
    /// Categorical: the most frequent value and the share of every value in the cluster
    /// (for k-means these shares are the centroid's one-hot coordinates over the weight).
    Categorical {
        /// The mode (`None`: missing), ties to the smallest value.
        mode: Option<String>,
        /// `(value, share)` sorted by value, missing first.
        shares: Vec<(Option<String>, f64)>,
    },
}

/// A persona: facts that set a cluster apart, and a name and description made only from them.
#[derive(Debug, Clone, PartialEq)]
pub struct Persona {
    /// A short name, e.g. "High arr, industry healthcare, low logins".
    pub name: String,
    /// One paragraph.
    pub description: String,
    /// Every numeric feature, most distinctive first.
    pub numeric: Vec<NumericContrast>,
    /// Categories over-represented in the cluster (share at least [`PERSONA_MIN_SHARE`]
    /// and lift at least [`PERSONA_MIN_LIFT`]), most distinctive first.
    pub categories: Vec<CategoryContrast>,
}

/// A numeric feature in a cluster against the population (original units, non-missing values).
#[derive(Debug, Clone, PartialEq)]
pub struct NumericContrast {
    /// The feature.
    pub feature: String,
    /// Mean in the cluster (`None`: all missing).
    pub cluster_mean: Option<f64>,
    /// Mean in the population.
    pub population_mean: f64,
    /// `(cluster mean - population mean) / population standard deviation`.
    pub standardized_difference: f64,
    /// `cluster mean / population mean` when the population mean is positive.
    pub lift: Option<f64>,
    /// Whether it counts as distinguishing (`|standardized difference| >=`
    /// [`PERSONA_DISTINCT_SD`]).
    pub distinguishing: bool,
}

/// A category that is more common in a cluster than in the population.
#[derive(Debug, Clone, PartialEq)]
pub struct CategoryContrast {
    /// The feature.
    pub feature: String,
    /// The value (`None`: missing).
    pub value: Option<String>,
    /// Share of the cluster with this value.
    pub cluster_share: f64,
    /// Share of the population with this value.
    pub population_share: f64,
    /// `cluster_share / population_share`.
    pub lift: f64,
}

/// Bootstrap stability: the clustering is repeated on resamples (with replacement) and every
/// entity is assigned to the nearest resampled centroid; the adjusted Rand index compares that
/// with the reported labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Stability {
    /// Adjusted Rand index per round.
    pub rounds: Vec<f64>,
    /// Their mean.
    pub mean: f64,
    /// Their minimum.
    pub min: f64,
}

/// Why segment discovery could not run: every variant is a user error (bad input or options).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No feature columns were given.
    #[error("no features to cluster on")]
    NoFeatures,
    /// Columns of different lengths.
    #[error("feature `{name}` has {found} values, the first feature {expected}")]
    LengthMismatch {
        /// The feature.
        name: String,
        /// Its length.
        found: usize,
        /// The first feature's length.
        expected: usize,
    },
    /// Two features with one name.
    #[error("feature `{0}` is given twice")]
    DuplicateFeature(String),
    /// A NaN or infinite value.
    #[error("feature `{name}` has a non-finite value ({value}) for entity {row}")]
    NonFiniteValue {
        /// The feature.
        name: String,
        /// The entity's position.
        row: usize,
        /// The value.
        value: f64,
    },
    /// A feature with no values at all.
    #[error("feature `{0}` has no values (all missing)")]
    AllMissing(String),
    /// Too many distinct values for a categorical feature.
    #[error("feature `{name}` has {count} distinct values, more than {MAX_CATEGORIES}")]
    TooManyCategories {
        /// The feature.
        name: String,
        /// Its distinct values.
        count: usize,
    },
    /// More clusters than entities.
    #[error("cannot make {k} clusters from {n} entities")]
    TooFewEntities {
        /// Clusters asked for.
        k: usize,
        /// Entities.
        n: usize,
    },
    /// A low-level function got a matrix with a non-finite value.
    #[error("the data has a non-finite value at row {row}, column {column}")]
    NonFiniteData {
        /// Row.
        row: usize,
        /// Column.
        column: usize,
    },
    /// An option out of range.
    #[error("invalid option: {0}")]
    InvalidOption(String),
}

impl Error {
    /// A stable snake_case code for the error.
    pub fn code(&self) -> &'static str {
        match self {
            Error::NoFeatures => "no_features",
            Error::LengthMismatch { .. } => "feature_length_mismatch",
            Error::DuplicateFeature(_) => "duplicate_feature",
            Error::NonFiniteValue { .. } => "non_finite_value",
            Error::AllMissing(_) => "feature_all_missing",
            Error::TooManyCategories { .. } => "too_many_categories",
            Error::TooFewEntities { .. } => "too_few_entities",
            Error::NonFiniteData { .. } => "non_finite_data",
            Error::InvalidOption(_) => "invalid_option",
        }
    }
}
