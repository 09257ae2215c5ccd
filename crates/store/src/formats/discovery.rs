//! `discovery.json` (format version 1), a discovery's report: the features and options, the
//! k-selection table, what preprocessing did to each feature, bootstrap stability, how cluster
//! ids were assigned, per cluster its size, persona, rule and centroid, and the warnings.
//!
//! `warnings` was added within version 1: files without the key read as having none, and the
//! key is written only when there is something to warn about, so earlier files keep their bytes.

use serde::{Deserialize, Serialize};

use super::{Document, FormatVersion};

/// A discovery folder's `discovery.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiscoveryReport {
    /// Always the current version, 1.
    pub format_version: FormatVersion<1>,
    /// The project's display name.
    pub project: String,
    /// The entity clustered.
    pub entity: String,
    /// The instant evaluated (RFC 3339).
    pub as_of: String,
    /// Entities clustered.
    pub entities: u64,
    /// Input rows set aside as rejects by the evaluation.
    pub rejected_rows: u64,
    /// The features, in the order given.
    pub features: Vec<DiscoveryFeature>,
    /// The options of the discovery.
    pub options: DiscoveryOptions,
    /// The random seed.
    pub seed: u64,
    /// The algorithm actually run.
    pub method: Method,
    /// The number of clusters.
    pub k: u64,
    /// k-means inertia or k-prototypes cost, in the space clustered.
    pub inertia: f64,
    /// Iterations of the kept run.
    pub n_iter: u64,
    /// The categorical weight used.
    pub gamma: f64,
    /// The k-selection table and the explanation of the choice.
    pub selection: KSelection,
    /// What was done to each feature, in feature order.
    pub preprocessing: Vec<FeaturePreprocessing>,
    /// Bootstrap stability (`null` without bootstrap rounds).
    pub stability: Option<Stability>,
    /// How the cluster ids were assigned.
    pub ids: ClusterIdAssignment,
    /// The clusters, by id.
    pub clusters: Vec<ClusterSummary>,
    /// Wall time of the discovery.
    pub elapsed_ms: u64,
    /// What the discovery warns about: the k choice first, then by cluster. The key is absent
    /// when there is nothing to warn about.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<DiscoveryWarning>,
}

/// Something a discovery warns about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveryWarning {
    /// What kind of warning.
    pub code: DiscoveryWarningCode,
    /// The cluster it is about (absent for the k choice).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<u32>,
    /// What, with the numbers.
    pub message: String,
    /// What to check or change.
    pub hint: String,
}

/// The kinds of discovery warnings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscoveryWarningCode {
    /// Automatic k chose the smallest or the largest k it tried.
    KAtRangeEdge,
    /// A cluster's rule is TRUE for every entity.
    RuleMatchesAll,
    /// A cluster's rule is TRUE for no entity.
    RuleMatchesNone,
    /// A cluster's rule agrees with the cluster on too few entities.
    LowFidelity,
}

impl Document for DiscoveryReport {
    const FILE: &'static str = crate::files::DISCOVERY;
    const VERSION: u32 = 1;
}

/// One feature of a discovery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveryFeature {
    /// The name as rules reference it (`parent.x` for a parent column).
    pub name: String,
    /// The column's value type.
    #[serde(rename = "type")]
    pub ty: FeatureType,
    /// Clustered as a number or as categories.
    pub kind: FeatureKind,
    /// Where the column comes from.
    pub source: FeatureSource,
}

/// A column's value type, as configuration names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureType {
    /// Text.
    String,
    /// 64-bit integer.
    Int,
    /// 64-bit float.
    Float,
    /// Boolean.
    Bool,
    /// Calendar date.
    Date,
    /// UTC instant.
    Timestamp,
}

/// How a feature is clustered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureKind {
    /// As a number.
    Numeric,
    /// As categories.
    Categorical,
}

/// Where a feature's column comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureSource {
    /// An attribute of the entity.
    Attribute,
    /// A trait.
    Trait,
    /// An attribute or trait of the parent entity.
    ParentAttribute,
    /// A column of events.
    EventColumn,
}

/// The options of a discovery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiscoveryOptions {
    /// The number of clusters asked for.
    pub k: KSetting,
    /// The algorithm asked for.
    pub algorithm: Algorithm,
    /// The scaling of numeric features.
    pub scaling: Scaling,
    /// When `ln(1 + x)` is applied.
    pub log_transform: LogTransform,
    /// Initialisations per k.
    pub n_init: u64,
    /// Iterations per initialisation at most.
    pub max_iter: u64,
    /// Convergence tolerance.
    pub tol: f64,
    /// Depth of the rule trees.
    pub tree_depth: u64,
    /// Bootstrap rounds of the stability check.
    pub bootstrap_rounds: u64,
    /// Rows the silhouette is computed on at most.
    pub silhouette_sample: u64,
    /// How cluster ids are chosen.
    pub ids: ClusterIds,
}

/// The number of clusters asked for: `{"auto": {"min": 2, "max": 8}}` or a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum KSetting {
    /// Chosen from a range by the selection table.
    Auto {
        /// The range.
        auto: KRange,
    },
    /// Fixed.
    Fixed(u64),
}

/// The range of k tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KRange {
    /// The smallest k.
    pub min: u64,
    /// The largest k.
    pub max: u64,
}

/// The algorithm asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    /// k-means without categorical features, k-prototypes with.
    Auto,
    /// k-means.
    #[serde(rename = "kmeans")]
    KMeans,
    /// k-prototypes.
    #[serde(rename = "kprototypes")]
    KPrototypes,
}

/// The algorithm run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Method {
    /// k-means.
    #[serde(rename = "kmeans")]
    KMeans,
    /// k-prototypes.
    #[serde(rename = "kprototypes")]
    KPrototypes,
}

/// The scaling of numeric features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scaling {
    /// Mean and standard deviation.
    Standard,
    /// Median and interquartile range.
    Robust,
    /// None.
    None,
}

/// When `ln(1 + x)` is applied to a numeric feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogTransform {
    /// To skewed non-negative features (the only setting written today).
    Auto,
    /// Never.
    Never,
}

/// How cluster ids are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClusterIds {
    /// Matched to the kept centroids of the last discovery on the same key.
    Stable,
    /// By cluster size, largest first.
    BySize,
}

/// The k-selection table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KSelection {
    /// One row per k tried, by k.
    pub table: Vec<KScore>,
    /// The k chosen.
    pub chosen: u64,
    /// Why, in a sentence or two.
    pub explanation: String,
    /// Rows the silhouette was computed on.
    pub silhouette_rows: u64,
}

/// The quality of the clustering with one k (`null` where undefined).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KScore {
    /// Number of clusters.
    pub k: u64,
    /// Mean silhouette.
    pub silhouette: Option<f64>,
    /// Calinski-Harabasz score.
    pub calinski_harabasz: Option<f64>,
    /// Davies-Bouldin score.
    pub davies_bouldin: Option<f64>,
    /// Inertia or cost.
    pub inertia: f64,
}

/// What preprocessing did to one feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FeaturePreprocessing {
    /// A numeric feature: `scaled = (t - center) / scale`, `t = ln(1 + x)` when `log1p`.
    Numeric {
        /// The feature.
        feature: String,
        /// Missing values.
        missing: u64,
        /// Whether `ln(1 + x)` was applied.
        log1p: bool,
        /// Why or why not.
        log1p_reason: String,
        /// Skewness before any transform.
        skewness: f64,
        /// The scaling applied.
        scaling: Scaling,
        /// Subtracted after the transform.
        center: f64,
        /// Divided by after the transform.
        scale: f64,
        /// The median imputed for missing values (`null`: none missing).
        imputed: Option<f64>,
        /// The same in a sentence.
        summary: String,
    },
    /// A categorical feature.
    Categorical {
        /// The feature.
        feature: String,
        /// Missing values.
        missing: u64,
        /// Distinct values, the missing category included.
        categories: u64,
        /// For k-means, the weight of each one-hot column (`null` for k-prototypes).
        one_hot_weight: Option<f64>,
        /// The same in a sentence.
        summary: String,
    },
}

/// Bootstrap stability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stability {
    /// Adjusted Rand index per round.
    pub rounds: Vec<f64>,
    /// Their mean.
    pub mean: f64,
    /// Their minimum.
    pub min: f64,
}

/// How the cluster ids were assigned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterIdAssignment {
    /// A sentence.
    pub assignment: String,
    /// The discovery whose kept centroids were matched (`null` when none).
    pub previous_discovery: Option<String>,
}

/// One cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterSummary {
    /// The cluster id.
    pub id: u32,
    /// Entities in the cluster.
    pub size: u64,
    /// `size` over all entities.
    pub share: f64,
    /// Name, description and the facts they are made of.
    pub persona: Persona,
    /// A rule that approximates the cluster.
    pub rule: String,
    /// Share of all entities on which the rule and the cluster agree.
    pub fidelity: f64,
    /// Share of the rule's matches in the cluster.
    pub precision: f64,
    /// Share of the cluster the rule matches.
    pub recall: f64,
    /// Entities the rule matches.
    pub rule_size: u64,
    /// The segment saved for the cluster with `--save` (`null` otherwise).
    pub segment: Option<String>,
    /// The centroid, per feature.
    pub centroid: Vec<DiscoveryCenter>,
}

/// A cluster's persona.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Persona {
    /// A short name.
    pub name: String,
    /// One paragraph.
    pub description: String,
    /// Every numeric feature, most distinctive first.
    pub numeric: Vec<NumericContrast>,
    /// Over-represented categories, most distinctive first.
    pub categories: Vec<CategoryContrast>,
}

/// A numeric feature in a cluster against the population.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumericContrast {
    /// The feature.
    pub feature: String,
    /// Mean in the cluster (`null`: all missing).
    pub cluster_mean: Option<f64>,
    /// Mean in the population.
    pub population_mean: f64,
    /// `(cluster mean - population mean) / population standard deviation`.
    pub standardized_difference: f64,
    /// `cluster mean / population mean` (`null` unless the population mean is positive).
    pub lift: Option<f64>,
    /// Whether it counts as distinguishing.
    pub distinguishing: bool,
}

/// A category more common in a cluster than in the population.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryContrast {
    /// The feature.
    pub feature: String,
    /// The value (`null`: missing).
    pub value: Option<String>,
    /// Share of the cluster with this value.
    pub cluster_share: f64,
    /// Share of the population with this value.
    pub population_share: f64,
    /// `cluster_share / population_share`.
    pub lift: f64,
}

/// The centre of one feature in a cluster, as the report shows it (the kept centroids of
/// [`super::StoredCentroids`] have their own layout).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DiscoveryCenter {
    /// A numeric feature.
    Numeric {
        /// The feature.
        feature: String,
        /// In original units.
        value: f64,
        /// In the clustered space.
        scaled: f64,
    },
    /// A categorical feature.
    Categorical {
        /// The feature.
        feature: String,
        /// The most frequent value (`null`: missing).
        mode: Option<String>,
        /// The share of every value, sorted by value, missing first.
        shares: Vec<CategoryShare>,
    },
}

/// The share of one value of a categorical feature in a cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryShare {
    /// The value (`null`: missing).
    pub value: Option<String>,
    /// Its share.
    pub share: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<T: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug>(value: T, json: &str) {
        assert_eq!(serde_json::to_string(&value).expect("serializes"), json);
        assert_eq!(serde_json::from_str::<T>(json).expect("reads"), value);
    }

    #[test]
    fn k_is_a_range_or_a_number() {
        check(KSetting::Auto { auto: KRange { min: 2, max: 8 } }, r#"{"auto":{"min":2,"max":8}}"#);
        check(KSetting::Fixed(4), "4");
    }

    #[test]
    fn warnings_name_their_cluster_when_they_have_one() {
        check(
            vec![
                DiscoveryWarning {
                    code: DiscoveryWarningCode::KAtRangeEdge,
                    cluster: None,
                    message: "m".into(),
                    hint: "h".into(),
                },
                DiscoveryWarning {
                    code: DiscoveryWarningCode::LowFidelity,
                    cluster: Some(2),
                    message: "m".into(),
                    hint: "h".into(),
                },
            ],
            r#"[{"code":"k_at_range_edge","message":"m","hint":"h"},{"code":"low_fidelity","cluster":2,"message":"m","hint":"h"}]"#,
        );
        check(
            vec![DiscoveryWarningCode::RuleMatchesAll, DiscoveryWarningCode::RuleMatchesNone],
            r#"["rule_matches_all","rule_matches_none"]"#,
        );
    }

    #[test]
    fn names_are_those_written_by_the_engine() {
        check(
            vec![Algorithm::Auto, Algorithm::KMeans, Algorithm::KPrototypes],
            r#"["auto","kmeans","kprototypes"]"#,
        );
        check(Method::KPrototypes, r#""kprototypes""#);
        check(vec![ClusterIds::Stable, ClusterIds::BySize], r#"["stable","by_size"]"#);
        check(FeatureSource::ParentAttribute, r#""parent_attribute""#);
        check(
            DiscoveryCenter::Categorical {
                feature: "plan".into(),
                mode: None,
                shares: vec![CategoryShare { value: None, share: 1.0 }],
            },
            r#"{"kind":"categorical","feature":"plan","mode":null,"shares":[{"value":null,"share":1.0}]}"#,
        );
    }
}
