//! `discover`: segment discovery on a project. The project is evaluated as of an instant (as a
//! run would be, without writing a run), the features' columns are taken from the evaluation
//! table, `segmenta_ml::cluster::discover` clusters the entities on a rayon pool sized by the
//! thread option, and the result is written as a discovery folder (`clusters.parquet`,
//! `discovery.json`). The centroids are kept in the store so that the next discovery on the same
//! features keeps its cluster ids; `--save` adds every cluster's rule to `segmenta.toml` as a
//! segment, unless a rule does not describe its cluster (it matches every entity or none, or
//! its fidelity is below `LOW_FIDELITY`) and the save is not forced.
//!
//! Every value crossing into `segmenta_ml` is converted here: the ml types do not derive
//! `Serialize` (persisted and printed forms are decisions of the store and of this module).

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Float64Type, Schema};
use segmenta_core::ValueType;
use segmenta_ml::cluster::{
    self, CenterValue, Centroid, ClusterReport, DiscoveryOptions, FeatureCenter, FeatureColumn,
    FeatureReport, KSelection, LOW_FIDELITY, LogTransform, Persona, Preparation, Warning,
};
use segmenta_query::ingest::BadRows;
use segmenta_rules::AttributeCatalog;
use segmenta_rules::ast::{ColumnSource, ExprKind, Ident, ValueKind};
use segmenta_store::formats::discovery::{DiscoveryWarning, DiscoveryWarningCode};
use segmenta_store::formats::{self, DiscoveryReport, Document, FormatVersion};
use segmenta_store::{
    CENTROIDS_FORMAT_VERSION, CentroidsKey, OutputFile, Store, StoredCenter, StoredCentroid, StoredCentroids,
    files,
};

pub use segmenta_ml::cluster::{Algorithm, Discovery, KChoice, Method, Scaling};

use crate::as_of::AsOf;
use crate::error::{Error, Result, RuleProblem};
use crate::evaluation::{self, RunOptions};
use crate::exec::Exec;
use crate::lists::{with_segments, write_project_file};
use crate::plan::Plan;
use crate::progress::Progress;
use crate::project::Project;
use crate::validate::validate;

/// The version of `discovery.json` this version writes.
pub const DISCOVERY_FORMAT_VERSION: u32 = DiscoveryReport::VERSION;

/// The default prefix of saved segment names.
pub const DEFAULT_SEGMENT_PREFIX: &str = "cluster";

/// How cluster ids are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClusterIds {
    /// Matched to the centroids kept by the last discovery on the same entity, features,
    /// algorithm and scaling (ids follow cluster size when there are none).
    #[default]
    Stable,
    /// Ids follow cluster size, largest first; kept centroids are ignored (and replaced).
    BySize,
}

/// Whether and how to add the discovered clusters to the project as segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaveSegments {
    /// Saved names are `PREFIX_ID_NAME`, NAME the slug of the persona's name.
    pub prefix: String,
    /// Save the rules the discovery warns about too (a rule that matches every entity or none,
    /// or whose fidelity is below [`LOW_FIDELITY`]); without it such a save is refused.
    pub force: bool,
}

/// Options of [`crate::Engine::discover`].
#[derive(Debug, Clone)]
pub struct DiscoverOptions {
    /// Attributes, traits, scores, schemes or `parent.x` columns to cluster on.
    pub features: Vec<String>,
    /// Number of clusters; default `Auto { min: 2, max: 10 }`.
    pub k: KChoice,
    /// Default [`Algorithm::Auto`]: k-prototypes with a categorical feature, else k-means.
    pub algorithm: Algorithm,
    /// Default [`Scaling::Standard`].
    pub scaling: Scaling,
    /// Seed of every random choice; default 0.
    pub seed: u64,
    /// The as-of instant; default: the project's `as_of`, else now.
    pub as_of: Option<AsOf>,
    /// Output folder; default: a new folder in the store's `discoveries/`.
    pub output: Option<PathBuf>,
    /// Add the clusters to `segmenta.toml` as rule segments; default no.
    pub save: Option<SaveSegments>,
    /// Default [`ClusterIds::Stable`].
    pub ids: ClusterIds,
    /// Strict (default) or reject bad rows while loading the data.
    pub bad_rows: BadRows,
    /// Worker threads of the evaluation; default: the engine's.
    pub threads: Option<usize>,
    /// Asks the discovery to stop between stages (clones share the flag).
    pub cancel: segmenta_core::Cancel,
}

impl DiscoverOptions {
    /// The defaults, clustering on `features`.
    pub fn new(features: Vec<String>) -> DiscoverOptions {
        let defaults = DiscoveryOptions::default();
        DiscoverOptions {
            features,
            k: defaults.k,
            algorithm: defaults.algorithm,
            scaling: defaults.scaling,
            seed: defaults.seed,
            as_of: None,
            output: None,
            save: None,
            ids: ClusterIds::Stable,
            bad_rows: BadRows::Strict,
            threads: None,
            cancel: segmenta_core::Cancel::new(),
        }
    }
}

/// A cluster saved as a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedSegment {
    /// The segment's name in `segmenta.toml`.
    pub name: String,
    /// The cluster id.
    pub cluster: u32,
    /// Its rule.
    pub rule: String,
}

/// What a discovery produced. Its warnings are `discovery.warnings` (typed) and
/// `document.warnings` (with messages and hints, as `discovery.json` holds them).
#[derive(Debug, Clone)]
pub struct DiscoverReport {
    /// The discovery folder.
    pub output: PathBuf,
    /// The clustering, personas and rules.
    pub discovery: Discovery,
    /// The document written to `discovery.json`.
    pub document: DiscoveryReport,
    /// The instant evaluated.
    pub as_of: AsOf,
    /// Entities clustered.
    pub entities: usize,
    /// The folder of the discovery whose centroids gave the ids, if any.
    pub previous: Option<String>,
    /// The segments added to `segmenta.toml` (empty without `save`).
    pub saved: Vec<SavedSegment>,
    /// Where the centroids were kept for the next discovery.
    pub centroids_file: PathBuf,
}

/// Reads `--k`: `auto` (2 to 10), a number, or a range `MIN..MAX` (also `MIN-MAX`).
pub fn parse_k(text: &str) -> Result<KChoice> {
    let text = text.trim();
    let usage = || Error::Usage {
        message: format!("invalid --k `{text}`"),
        hint: Some("use `auto` (tries 2 to 10), a number such as 4, or a range such as 3..8".into()),
    };
    if text.eq_ignore_ascii_case("auto") {
        return Ok(DiscoveryOptions::default().k);
    }
    if let Ok(k) = text.parse::<usize>() {
        return if k >= 1 { Ok(KChoice::Fixed(k)) } else { Err(usage()) };
    }
    let (min, max) = text.split_once("..").or_else(|| text.split_once('-')).ok_or_else(usage)?;
    let (min, max) = (min.trim().parse::<usize>(), max.trim().parse::<usize>());
    match (min, max) {
        (Ok(min), Ok(max)) if 2 <= min && min <= max => Ok(KChoice::Auto { min, max }),
        _ => Err(usage()),
    }
}

/// The text of an algorithm, as flags and `discovery.json` write it.
pub fn algorithm_name(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::Auto => "auto",
        Algorithm::KMeans => "kmeans",
        Algorithm::KPrototypes => "kprototypes",
    }
}

/// The text of a method actually run.
pub fn method_name(method: Method) -> &'static str {
    match method {
        Method::KMeans => "kmeans",
        Method::KPrototypes => "kprototypes",
    }
}

/// The text of a scaling.
pub fn scaling_name(scaling: Scaling) -> &'static str {
    match scaling {
        Scaling::Standard => "standard",
        Scaling::Robust => "robust",
        Scaling::None => "none",
    }
}

/// A feature resolved against the rules' catalog.
#[derive(Debug, Clone)]
struct Feature {
    /// The name as rules reference it (`parent.x` for a parent column): the ml feature name.
    name: String,
    /// Its column in the evaluation table.
    column: String,
    ty: ValueType,
    source: ColumnSource,
}

impl Feature {
    fn categorical(&self) -> bool {
        self.ty == ValueType::String
    }
}

/// Reads a `--features` name: an identifier as rules write it (`arr`, `parent.industry`,
/// `` `order count` ``), or else the plain column name as given (`order count`).
fn parse_feature_name(text: &str) -> Ident {
    if let Ok(expr) = segmenta_rules::parse_rule(text)
        && let ExprKind::Truthy(value) = expr.kind
        && let ValueKind::Ident(ident) = value.kind
    {
        return ident;
    }
    Ident { qualifier: None, name: text.to_string() }
}

/// Resolves every feature name through the catalog rules are checked against, so that the rules
/// written for the clusters read the same columns.
fn resolve_features(validated: &Plan, names: &[String]) -> Result<Vec<Feature>> {
    let catalog = &validated.rules_catalog;
    let mut features = Vec::with_capacity(names.len());
    for text in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        let ident = parse_feature_name(text);
        let Some(info) = catalog.lookup(&ident) else {
            let known = catalog.names();
            let hint = match segmenta_core::config::did_you_mean(text, known.iter().map(String::as_str)) {
                Some(best) => format!("did you mean `{best}`?"),
                None => {
                    let sample: Vec<&str> = known.iter().take(12).map(String::as_str).collect();
                    let more = if known.len() > sample.len() { ", ..." } else { "" };
                    format!(
                        "features are the attributes, traits, scores, schemes and parent.* columns of `{}`: {}{more}",
                        validated.entity,
                        sample.join(", ")
                    )
                }
            };
            return Err(Error::UnknownFeature { name: text.to_string(), hint: Some(hint) });
        };
        let name = match &ident.qualifier {
            Some(_) => format!("parent.{}", ident.name),
            None => ident.name.clone(),
        };
        // The rule generator writes the name back; it must read as the same column.
        let written = segmenta_ml::cluster::rules::quote_identifier(&name);
        let lowercase = |i: Ident| Ident { qualifier: i.qualifier.map(|q| q.to_lowercase()), name: i.name };
        if lowercase(parse_feature_name(&written)) != lowercase(ident.clone()) {
            return Err(Error::Usage {
                message: format!("feature `{text}` cannot be written unambiguously in a rule (`{written}`)"),
                hint: Some("rename the column".into()),
            });
        }
        let hint = match info.ty {
            ValueType::Int | ValueType::Float | ValueType::String => None,
            ValueType::Bool => Some(format!(
                "rules compare categories with strings, so booleans are not features; make a string of it \
                 with a scheme, e.g. [schemes.{0}_text] otherwise = \"no\", tiers = [{{ name = \"yes\", rule = \
                 \"{1}\" }}], and pass --features {0}_text",
                ident.name.replace(|c: char| !c.is_ascii_alphanumeric() && c != '_', "_"),
                written
            )),
            ValueType::Date | ValueType::Timestamp => Some(
                "cluster on a number of days instead: a trait such as days_since_first() or \
                 days_since_last(), or a numeric attribute"
                    .to_string(),
            ),
        };
        if let Some(hint) = hint {
            return Err(Error::UnsupportedFeature { name: text.to_string(), ty: info.ty, hint });
        }
        features.push(Feature { name, column: info.column, ty: info.ty, source: info.source });
    }
    Ok(features)
}

/// The features' values and the entity ids, in the evaluation table's order (by `entity_id`).
fn feature_columns(table: &RecordBatch, features: &[Feature]) -> Result<(Vec<String>, Vec<FeatureColumn>)> {
    let column = |name: &str| {
        table
            .column_by_name(name)
            .ok_or_else(|| Error::Internal(format!("the evaluation table has no column `{name}`")))
    };
    let cast = |array: &ArrayRef, ty: &DataType| {
        arrow::compute::cast(array, ty).map_err(|e| Error::Internal(format!("casting a feature column: {e}")))
    };
    let ids = cast(column(segmenta_query::ENTITY_ID)?, &DataType::Utf8)?;
    let ids: Vec<String> =
        ids.as_string::<i32>().iter().map(|id| id.unwrap_or_default().to_string()).collect();
    let mut columns = Vec::with_capacity(features.len());
    for feature in features {
        let array = column(&feature.column)?;
        if feature.categorical() {
            let values = cast(array, &DataType::Utf8)?;
            let values = values.as_string::<i32>().iter().map(|v| v.map(str::to_string)).collect();
            columns.push(FeatureColumn::Categorical { name: feature.name.clone(), values });
        } else {
            let values = cast(array, &DataType::Float64)?;
            let values = values.as_primitive::<Float64Type>().iter().collect();
            columns.push(FeatureColumn::Numeric { name: feature.name.clone(), values });
        }
    }
    Ok((ids, columns))
}

/// Adds a hint (naming the entity where the error names a row) to an ml error.
fn discovery_error(source: cluster::Error, ids: &[String], options: &DiscoverOptions) -> Error {
    let hint = match &source {
        cluster::Error::NonFiniteValue { row, .. } => Some(format!(
            "the entity is `{}`; fix the value in the data (discovery needs finite numbers)",
            ids.get(*row).map_or("?", String::as_str)
        )),
        cluster::Error::AllMissing(_) => {
            Some("every entity lacks it as of this instant: check the trait's window or --as-of".into())
        }
        cluster::Error::TooManyCategories { .. } => {
            Some("a categorical feature with that many values is likely an id; leave it out".into())
        }
        cluster::Error::TooFewEntities { .. } => Some("ask for fewer clusters with --k".into()),
        cluster::Error::DuplicateFeature(_) | cluster::Error::NoFeatures => {
            Some("name each feature once: --features a,b,c".into())
        }
        cluster::Error::InvalidOption(_) if options.algorithm == Algorithm::KPrototypes => {
            Some("pass --algorithm kmeans, or add a categorical (string) feature".into())
        }
        _ => None,
    };
    Error::Discovery { source, hint }
}

/// The algorithm `discover` will run (as `segmenta_ml` decides it), for the centroids' key.
fn planned_method(algorithm: Algorithm, features: &[Feature]) -> Method {
    match algorithm {
        Algorithm::KMeans => Method::KMeans,
        Algorithm::KPrototypes => Method::KPrototypes,
        Algorithm::Auto if features.iter().any(Feature::categorical) => Method::KPrototypes,
        Algorithm::Auto => Method::KMeans,
    }
}

fn centroids_key(entity: &str, features: &[Feature], method: Method, scaling: Scaling) -> CentroidsKey {
    let mut names: Vec<String> = features.iter().map(|f| f.name.clone()).collect();
    names.sort();
    CentroidsKey {
        entity: entity.to_string(),
        features: names,
        method: method_name(method).to_string(),
        scaling: scaling_name(scaling).to_string(),
    }
}

fn to_stored(centroid: &Centroid) -> StoredCentroid {
    let features = centroid
        .features
        .iter()
        .map(|f| match &f.value {
            CenterValue::Numeric { original, scaled } => {
                StoredCenter::Numeric { name: f.name.clone(), original: *original, scaled: *scaled }
            }
            CenterValue::Categorical { mode, shares } => {
                StoredCenter::Categorical { name: f.name.clone(), mode: mode.clone(), shares: shares.clone() }
            }
        })
        .collect();
    StoredCentroid { id: centroid.id, features }
}

fn from_stored(stored: &StoredCentroid) -> Centroid {
    let features = stored
        .features
        .iter()
        .map(|f| match f {
            StoredCenter::Numeric { name, original, scaled } => FeatureCenter {
                name: name.clone(),
                value: CenterValue::Numeric { original: *original, scaled: *scaled },
            },
            StoredCenter::Categorical { name, mode, shares } => FeatureCenter {
                name: name.clone(),
                value: CenterValue::Categorical { mode: mode.clone(), shares: shares.clone() },
            },
        })
        .collect();
    Centroid { id: stored.id, features }
}

/// A segment-name fragment of a persona name: lowercase ASCII letters, digits and `_`, at most
/// [`SLUG_MAX`] characters, made of the name's whole facts (the comma-separated parts) while they
/// fit, else the first fact cut at a word boundary.
fn slug(text: &str) -> String {
    let slug_of = |part: &str| {
        let mut out = String::new();
        for c in part.chars() {
            if c.is_ascii_alphanumeric() {
                out.push(c.to_ascii_lowercase());
            } else if !out.ends_with('_') && !out.is_empty() {
                out.push('_');
            }
        }
        out.trim_end_matches('_').to_string()
    };
    let mut out = String::new();
    for part in text.split(',').map(slug_of).filter(|p| !p.is_empty()) {
        let joined = if out.is_empty() { part.clone() } else { format!("{out}_{part}") };
        if joined.len() <= SLUG_MAX {
            out = joined;
        } else if out.is_empty() {
            out = part[..=SLUG_MAX].rfind('_').map_or(&part[..SLUG_MAX], |cut| &part[..cut]).to_string();
            break;
        } else {
            break;
        }
    }
    out
}

/// The longest slug of a persona name in a saved segment's name.
const SLUG_MAX: usize = 40;

fn check_prefix(prefix: &str) -> Result<()> {
    let ok = !prefix.is_empty() && prefix.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(Error::Usage {
            message: format!("invalid segment name prefix `{prefix}`"),
            hint: Some("use letters, digits, `_` and `-`".into()),
        })
    }
}

/// The store's name of a column's value type.
fn feature_type(ty: ValueType) -> formats::FeatureType {
    match ty {
        ValueType::String => formats::FeatureType::String,
        ValueType::Int => formats::FeatureType::Int,
        ValueType::Float => formats::FeatureType::Float,
        ValueType::Bool => formats::FeatureType::Bool,
        ValueType::Date => formats::FeatureType::Date,
        ValueType::Timestamp => formats::FeatureType::Timestamp,
    }
}

fn feature_source(source: ColumnSource) -> formats::FeatureSource {
    match source {
        ColumnSource::Attribute => formats::FeatureSource::Attribute,
        ColumnSource::Trait => formats::FeatureSource::Trait,
        ColumnSource::ParentAttribute => formats::FeatureSource::ParentAttribute,
        ColumnSource::EventColumn => formats::FeatureSource::EventColumn,
    }
}

fn stored_feature(feature: &Feature) -> formats::DiscoveryFeature {
    formats::DiscoveryFeature {
        name: feature.name.clone(),
        ty: feature_type(feature.ty),
        kind: if feature.categorical() {
            formats::FeatureKind::Categorical
        } else {
            formats::FeatureKind::Numeric
        },
        source: feature_source(feature.source),
    }
}

fn stored_k(k: KChoice) -> formats::KSetting {
    match k {
        KChoice::Auto { min, max } => {
            formats::KSetting::Auto { auto: formats::KRange { min: min as u64, max: max as u64 } }
        }
        KChoice::Fixed(k) => formats::KSetting::Fixed(k as u64),
    }
}

fn stored_algorithm(algorithm: Algorithm) -> formats::Algorithm {
    match algorithm {
        Algorithm::Auto => formats::Algorithm::Auto,
        Algorithm::KMeans => formats::Algorithm::KMeans,
        Algorithm::KPrototypes => formats::Algorithm::KPrototypes,
    }
}

fn stored_method(method: Method) -> formats::Method {
    match method {
        Method::KMeans => formats::Method::KMeans,
        Method::KPrototypes => formats::Method::KPrototypes,
    }
}

fn stored_scaling(scaling: Scaling) -> formats::Scaling {
    match scaling {
        Scaling::Standard => formats::Scaling::Standard,
        Scaling::Robust => formats::Scaling::Robust,
        Scaling::None => formats::Scaling::None,
    }
}

fn stored_log_transform(log_transform: LogTransform) -> formats::LogTransform {
    match log_transform {
        LogTransform::Auto => formats::LogTransform::Auto,
        LogTransform::Never => formats::LogTransform::Never,
    }
}

fn stored_options(options: &DiscoverOptions, defaults: &DiscoveryOptions) -> formats::DiscoveryOptions {
    formats::DiscoveryOptions {
        k: stored_k(options.k),
        algorithm: stored_algorithm(options.algorithm),
        scaling: stored_scaling(options.scaling),
        log_transform: stored_log_transform(defaults.log_transform),
        n_init: defaults.n_init as u64,
        max_iter: defaults.max_iter as u64,
        tol: defaults.tol,
        tree_depth: defaults.tree_depth as u64,
        bootstrap_rounds: defaults.bootstrap_rounds as u64,
        silhouette_sample: defaults.silhouette_sample as u64,
        ids: match options.ids {
            ClusterIds::Stable => formats::ClusterIds::Stable,
            ClusterIds::BySize => formats::ClusterIds::BySize,
        },
    }
}

fn stored_selection(selection: &KSelection) -> formats::KSelection {
    formats::KSelection {
        table: selection
            .table
            .iter()
            .map(|row| formats::KScore {
                k: row.k as u64,
                silhouette: row.silhouette,
                calinski_harabasz: row.calinski_harabasz,
                davies_bouldin: row.davies_bouldin,
                inertia: row.inertia,
            })
            .collect(),
        chosen: selection.chosen as u64,
        explanation: selection.explanation.clone(),
        silhouette_rows: selection.silhouette_rows as u64,
    }
}

fn stored_preprocessing(report: &FeatureReport) -> formats::FeaturePreprocessing {
    match &report.preparation {
        Preparation::Numeric { log1p, log1p_reason, skewness, scaling, center, scale, imputed } => {
            formats::FeaturePreprocessing::Numeric {
                feature: report.name.clone(),
                missing: report.missing as u64,
                log1p: *log1p,
                log1p_reason: log1p_reason.clone(),
                skewness: *skewness,
                scaling: stored_scaling(*scaling),
                center: *center,
                scale: *scale,
                imputed: *imputed,
                summary: report.summary.clone(),
            }
        }
        Preparation::Categorical { categories, one_hot_weight } => {
            formats::FeaturePreprocessing::Categorical {
                feature: report.name.clone(),
                missing: report.missing as u64,
                categories: *categories as u64,
                one_hot_weight: *one_hot_weight,
                summary: report.summary.clone(),
            }
        }
    }
}

fn stored_center(center: &FeatureCenter) -> formats::DiscoveryCenter {
    match &center.value {
        CenterValue::Numeric { original, scaled } => formats::DiscoveryCenter::Numeric {
            feature: center.name.clone(),
            value: *original,
            scaled: *scaled,
        },
        CenterValue::Categorical { mode, shares } => formats::DiscoveryCenter::Categorical {
            feature: center.name.clone(),
            mode: mode.clone(),
            shares: shares
                .iter()
                .map(|(value, share)| formats::CategoryShare { value: value.clone(), share: *share })
                .collect(),
        },
    }
}

fn stored_persona(persona: &Persona) -> formats::Persona {
    formats::Persona {
        name: persona.name.clone(),
        description: persona.description.clone(),
        numeric: persona
            .numeric
            .iter()
            .map(|n| formats::NumericContrast {
                feature: n.feature.clone(),
                cluster_mean: n.cluster_mean,
                population_mean: n.population_mean,
                standardized_difference: n.standardized_difference,
                lift: n.lift,
                distinguishing: n.distinguishing,
            })
            .collect(),
        categories: persona
            .categories
            .iter()
            .map(|c| formats::CategoryContrast {
                feature: c.feature.clone(),
                value: c.value.clone(),
                cluster_share: c.cluster_share,
                population_share: c.population_share,
                lift: c.lift,
            })
            .collect(),
    }
}

fn stored_cluster(cluster: &ClusterReport, saved: Option<&SavedSegment>) -> formats::ClusterSummary {
    formats::ClusterSummary {
        id: cluster.id,
        size: cluster.size as u64,
        share: cluster.share,
        persona: stored_persona(&cluster.persona),
        rule: cluster.rule.clone(),
        fidelity: cluster.fidelity,
        precision: cluster.precision,
        recall: cluster.recall,
        rule_size: cluster.rule_size as u64,
        segment: saved.map(|s| s.name.clone()),
        centroid: cluster.centroid.iter().map(stored_center).collect(),
    }
}

/// Everything `discovery.json` holds but the time it was made.
struct DocumentInput<'a> {
    validated: &'a Plan,
    options: &'a DiscoverOptions,
    features: &'a [Feature],
    discovery: &'a Discovery,
    entities: usize,
    rejected_rows: u64,
    as_of: AsOf,
    previous: Option<&'a str>,
    saved: &'a [SavedSegment],
    defaults: &'a DiscoveryOptions,
}

/// The `discovery.json` document, converted field by field from the ml types.
fn document(input: &DocumentInput<'_>, elapsed_ms: u64) -> DiscoveryReport {
    let DocumentInput {
        validated,
        options,
        features,
        discovery,
        entities,
        rejected_rows,
        as_of,
        previous,
        saved,
        defaults,
    } = *input;
    DiscoveryReport {
        format_version: FormatVersion,
        project: validated.project.config.project.name.clone(),
        entity: validated.entity.clone(),
        as_of: as_of.to_rfc3339(),
        entities: entities as u64,
        rejected_rows,
        features: features.iter().map(stored_feature).collect(),
        options: stored_options(options, defaults),
        seed: options.seed,
        method: stored_method(discovery.method),
        k: discovery.k as u64,
        inertia: discovery.inertia,
        n_iter: discovery.n_iter as u64,
        gamma: discovery.gamma,
        selection: stored_selection(&discovery.selection),
        preprocessing: discovery.preprocessing.iter().map(stored_preprocessing).collect(),
        stability: discovery.stability.as_ref().map(|s| formats::Stability {
            rounds: s.rounds.clone(),
            mean: s.mean,
            min: s.min,
        }),
        ids: formats::ClusterIdAssignment {
            assignment: discovery.id_assignment.clone(),
            previous_discovery: previous.map(str::to_string),
        },
        clusters: discovery
            .clusters
            .iter()
            .map(|c| stored_cluster(c, saved.iter().find(|s| s.cluster == c.id)))
            .collect(),
        elapsed_ms,
        warnings: stored_warnings(discovery, options),
    }
}

/// A warning with its message and hint, in the words of the command's options.
fn stored_warning(warning: &Warning, discovery: &Discovery, options: &DiscoverOptions) -> DiscoveryWarning {
    let rule = |id: u32| discovery.clusters.iter().find(|c| c.id == id).map_or("", |c| c.rule.as_str());
    let other_features = "the features cannot tell this cluster apart with a short rule: try other --features \
                          or another --k";
    let refused = "--save refuses it unless --force";
    let (code, message, hint) = match *warning {
        Warning::KAtRangeEdge { k, smallest, largest } => {
            let asked_max = match options.k {
                KChoice::Auto { max, .. } => max,
                KChoice::Fixed(k) => k,
            };
            let (which, hint) = if k == smallest && smallest > 2 {
                (
                    "smallest",
                    format!(
                        "fewer clusters may score better: try a range that starts lower, e.g. --k 2..{largest}"
                    ),
                )
            } else if k == smallest {
                (
                    "smallest",
                    "2 is the fewest clusters automatic k can choose and a coarse split often scores best: look at \
                     the selection table, or pass --k N for N clusters"
                        .to_string(),
                )
            } else if largest < asked_max {
                (
                    "largest",
                    format!("there are only {} entities, so k stops at {largest}", discovery.labels.len()),
                )
            } else {
                (
                    "largest",
                    format!(
                        "more clusters may score better: try a wider range, e.g. --k {smallest}..{}",
                        2 * largest
                    ),
                )
            };
            (
                DiscoveryWarningCode::KAtRangeEdge,
                format!("automatic k chose k = {k}, the {which} k tried ({smallest} to {largest})"),
                hint,
            )
        }
        Warning::RuleMatchesAll { cluster } => (
            DiscoveryWarningCode::RuleMatchesAll,
            format!(
                "the rule of cluster {cluster} (`{}`) matches every entity: it does not describe the cluster",
                rule(cluster)
            ),
            format!("{other_features}; {refused}"),
        ),
        Warning::RuleMatchesNone { cluster } => (
            DiscoveryWarningCode::RuleMatchesNone,
            format!("the rule of cluster {cluster} (`{}`) matches no entity", rule(cluster)),
            format!("{other_features}; {refused}"),
        ),
        Warning::LowFidelity { cluster, fidelity } => (
            DiscoveryWarningCode::LowFidelity,
            format!(
                "the rule of cluster {cluster} agrees with the cluster on {:.1}% of the entities, below {:.0}%",
                fidelity * 100.0,
                LOW_FIDELITY * 100.0
            ),
            format!("the rule is a poor stand-in for the cluster; {other_features}; {refused}"),
        ),
    };
    DiscoveryWarning { code, cluster: warning.cluster(), message, hint }
}

/// The warnings `discovery.json` and the report hold.
fn stored_warnings(discovery: &Discovery, options: &DiscoverOptions) -> Vec<DiscoveryWarning> {
    discovery.warnings.iter().map(|w| stored_warning(w, discovery, options)).collect()
}

/// Refuses to save the rules the discovery warns about (those of a cluster), unless forced.
fn check_rules_to_save(warnings: &[DiscoveryWarning], save: &SaveSegments) -> Result<()> {
    let reasons: Vec<&str> =
        warnings.iter().filter(|w| w.cluster.is_some()).map(|w| w.message.as_str()).collect();
    if save.force || reasons.is_empty() {
        return Ok(());
    }
    Err(Error::Usage {
        message: format!("not saving the clusters as segments: {}", reasons.join("; ")),
        hint: Some(
            "pass --force to save these rules anyway, or look at the discovery without --save and cluster on \
             other --features or another --k"
                .into(),
        ),
    })
}

/// `entity_id` (Utf8) and `cluster` (Int64), in the evaluation table's order (by `entity_id`).
fn clusters_batch(ids: Vec<String>, labels: &[u32]) -> Result<RecordBatch> {
    let schema = Schema::new(vec![
        Field::new(segmenta_query::ENTITY_ID, DataType::Utf8, false),
        Field::new("cluster", DataType::Int64, false),
    ]);
    let ids: ArrayRef = Arc::new(StringArray::from(ids));
    let labels: ArrayRef = Arc::new(labels.iter().map(|&l| i64::from(l)).collect::<Int64Array>());
    RecordBatch::try_new(Arc::new(schema), vec![ids, labels])
        .map_err(|e| Error::Internal(format!("building clusters.parquet: {e}")))
}

/// The segments `--save` adds: one per cluster, `PREFIX_ID_SLUG`.
fn saved_segments(prefix: &str, discovery: &Discovery) -> Vec<SavedSegment> {
    discovery
        .clusters
        .iter()
        .map(|c| {
            let slug = slug(&c.persona.name);
            let name = if slug.is_empty() {
                format!("{prefix}_{}", c.id)
            } else {
                format!("{prefix}_{}_{slug}", c.id)
            };
            SavedSegment { name, cluster: c.id, rule: c.rule.clone() }
        })
        .collect()
}

/// The project with the saved segments added; checked by validating it, so nothing is written
/// unless every saved rule resolves.
fn project_with_segments(
    validated: &Plan,
    discovery: &Discovery,
    saved: &[SavedSegment],
    options: &DiscoverOptions,
    as_of: AsOf,
) -> Result<Project> {
    let features: Vec<&str> = options.features.iter().map(|f| f.trim()).filter(|f| !f.is_empty()).collect();
    let existing = validated.project.config.segment_names();
    let taken: Vec<&str> =
        saved.iter().map(|s| s.name.as_str()).filter(|name| existing.iter().any(|e| e == name)).collect();
    if !taken.is_empty() {
        return Err(Error::Usage {
            message: format!(
                "{}: the project already has segment(s) named {}",
                validated.project.file.display(),
                taken.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
            ),
            hint: Some(
                "pass --prefix to save under other names, or remove the earlier discovered segments from the \
                 project file"
                    .into(),
            ),
        });
    }
    let mut tables = Vec::with_capacity(saved.len());
    for (i, segment) in saved.iter().enumerate() {
        let cluster = discovery
            .clusters
            .iter()
            .find(|c| c.id == segment.cluster)
            .ok_or_else(|| Error::Internal(format!("cluster {} vanished", segment.cluster)))?;
        let mut table = toml_edit::Table::new();
        table.insert("rule", toml_edit::value(segment.rule.clone()));
        table.insert(
            "description",
            toml_edit::value(format!(
                "{} (discovered cluster {}: {} entities, rule fidelity {:.1}%)",
                cluster.persona.name,
                cluster.id,
                cluster.size,
                cluster.fidelity * 100.0
            )),
        );
        if i == 0 {
            table.decor_mut().set_prefix(format!(
                "\n# Discovered by `segmenta discover` as of {} (k = {}, {}, seed {}),\n# features: {}.\n",
                as_of.to_rfc3339(),
                discovery.k,
                method_name(discovery.method),
                options.seed,
                features.join(", "),
            ));
        }
        tables.push((segment.name.clone(), table));
    }
    let edited = with_segments(&validated.project, tables)?;
    validate(&edited)?;
    Ok(edited)
}

/// Every rule must resolve against the catalog segments are checked against: a rule that does
/// not is a bug of the rule generator, not the user's.
fn check_rules(validated: &Plan, discovery: &Discovery) -> Result<()> {
    for cluster in &discovery.clusters {
        let typed = segmenta_rules::parse_rule(&cluster.rule)
            .and_then(|expr| segmenta_rules::resolve_rule(&expr, &validated.rules_catalog));
        if let Err(diagnostics) = typed {
            let problems = diagnostics
                .into_iter()
                .map(|diagnostic| RuleProblem {
                    source: format!("the rule of cluster {}", cluster.id),
                    text: cluster.rule.clone(),
                    diagnostic,
                    file_position: None,
                })
                .collect();
            let rendered = Error::Rules { path: "<discover>".into(), problems }.to_string();
            return Err(Error::Internal(format!("a discovered rule does not resolve: {rendered}")));
        }
    }
    Ok(())
}

/// Discovers segments: evaluates the project, clusters its entities on `options.features`,
/// explains every cluster with a persona and a rule, writes the discovery folder, keeps the
/// centroids for stable ids and, with `options.save`, adds the rules to `segmenta.toml`.
pub(crate) fn discover(
    exec: &Exec,
    project: &Project,
    options: &DiscoverOptions,
    progress: &dyn Progress,
) -> Result<DiscoverReport> {
    let started = std::time::Instant::now();
    if let Some(save) = &options.save {
        check_prefix(&save.prefix)?;
    }
    if options.features.iter().all(|f| f.trim().is_empty()) {
        return Err(Error::Discovery {
            source: cluster::Error::NoFeatures,
            hint: Some("name the attributes or traits to cluster on: --features a,b,c".into()),
        });
    }
    progress.step("validating project");
    let validated = validate(project)?;
    progress.done();
    let features = resolve_features(&validated, &options.features)?;
    let run_options = RunOptions {
        as_of: options.as_of,
        output: None,
        bad_rows: options.bad_rows,
        threads: options.threads,
        cancel: options.cancel.clone(),
        strict: false,
    };
    let evaluated = evaluation::evaluate(exec, &validated, &run_options, progress)?;
    let as_of = evaluated.as_of;
    let rejected_rows = evaluated.summary.rejected_rows;
    let (ids, columns) = feature_columns(&evaluated.output.table, &features)?;
    drop(evaluated);
    let entities = ids.len();

    let store = Store::new(project.store_dir());
    let method = planned_method(options.algorithm, &features);
    let key = centroids_key(&validated.entity, &features, method, options.scaling);
    let kept = match options.ids {
        ClusterIds::Stable => store.read_centroids(&key)?,
        ClusterIds::BySize => None,
    };
    let defaults = DiscoveryOptions::default();
    let ml_options = DiscoveryOptions {
        k: options.k,
        algorithm: options.algorithm,
        scaling: options.scaling,
        seed: options.seed,
        previous_centroids: kept.as_ref().map(|k| k.centroids.iter().map(from_stored).collect()),
        ..defaults.clone()
    };

    progress.step(&format!("clustering {entities} entities on {} features", features.len()));
    // CPU-bound and synchronous: on the engine's worker pool, off the async runtime (the result
    // does not depend on the number of threads).
    crate::exec::check_cancelled(&options.cancel)?;
    let discovery = exec
        .install(|| cluster::discover(&columns, &ml_options))
        .map_err(|source| discovery_error(source, &ids, options))?;
    progress.done();
    check_rules(&validated, &discovery)?;

    // Everything that can be refused is checked before anything is written.
    if let Some(save) = &options.save {
        check_rules_to_save(&stored_warnings(&discovery, options), save)?;
    }
    let saved = options.save.as_ref().map(|s| saved_segments(&s.prefix, &discovery)).unwrap_or_default();
    let edited = match &options.save {
        Some(_) => Some(project_with_segments(&validated, &discovery, &saved, options, as_of)?),
        None => None,
    };

    progress.step("writing output");
    let previous = kept.as_ref().map(|k| k.discovery.clone());
    let input = DocumentInput {
        validated: &validated,
        options,
        features: &features,
        discovery: &discovery,
        entities,
        rejected_rows,
        as_of,
        previous: previous.as_deref(),
        saved: &saved,
        defaults: &defaults,
    };
    let document = document(&input, started.elapsed().as_millis() as u64);
    let dest = options.output.clone().unwrap_or_else(|| store.new_discovery_dir());
    segmenta_store::write_run(
        &dest,
        &[
            (files::CLUSTERS, OutputFile::Parquet(clusters_batch(ids, &discovery.labels)?)),
            document.output()?,
        ],
    )?;
    if let Some(edited) = &edited {
        write_project_file(edited)?;
    }
    // Kept only now, after a discovery that is complete and written.
    let dest_absolute = dest.canonicalize().unwrap_or_else(|_| dest.clone());
    let centroids_file = store.write_centroids(&StoredCentroids {
        format_version: CENTROIDS_FORMAT_VERSION,
        key,
        discovery: dest_absolute.display().to_string(),
        as_of: as_of.to_rfc3339(),
        centroids: discovery.centroids.iter().map(to_stored).collect(),
    })?;
    progress.done();
    Ok(DiscoverReport { output: dest, discovery, document, as_of, entities, previous, saved, centroids_file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn k_choices() {
        let check = |text: &str, expected: Option<KChoice>| {
            assert_eq!(parse_k(text).ok(), expected, "{text}");
        };
        check("auto", Some(KChoice::Auto { min: 2, max: 10 }));
        check(" AUTO ", Some(KChoice::Auto { min: 2, max: 10 }));
        check("4", Some(KChoice::Fixed(4)));
        check("1", Some(KChoice::Fixed(1)));
        check("3..8", Some(KChoice::Auto { min: 3, max: 8 }));
        check("3-8", Some(KChoice::Auto { min: 3, max: 8 }));
        check("0", None);
        check("1..4", None);
        check("8..3", None);
        check("many", None);
        check("", None);
    }

    #[test]
    fn slugs_of_persona_names() {
        let check = |name: &str, expected: &str| assert_eq!(slug(name), expected, "{name}");
        check("Industry healthcare, plan enterprise, low logins", "industry_healthcare_plan_enterprise");
        check(
            "Very high tickets_30d, very high arr, very high logins_30d",
            "very_high_tickets_30d_very_high_arr",
        );
        check(
            "Plan 'an extremely long plan name with many words in it'",
            "plan_an_extremely_long_plan_name_with",
        );
        check("High arr", "high_arr");
        check("Typical profile (cluster 3)", "typical_profile_cluster_3");
        check("  --  ", "");
        check("Plan 'pro', café", "plan_pro_caf");
        assert_eq!(slug(&"abcdefghij ".repeat(10)), "abcdefghij_abcdefghij_abcdefghij");
        assert_eq!(slug(&"x".repeat(100)), "x".repeat(40));
    }

    #[test]
    fn feature_names_read_like_rule_identifiers() {
        let ident =
            |q: Option<&str>, name: &str| Ident { qualifier: q.map(str::to_string), name: name.into() };
        assert_eq!(parse_feature_name("arr"), ident(None, "arr"));
        assert_eq!(parse_feature_name("parent.industry"), ident(Some("parent"), "industry"));
        assert_eq!(parse_feature_name("`order count`"), ident(None, "order count"));
        assert_eq!(parse_feature_name("order count"), ident(None, "order count"));
        assert_eq!(parse_feature_name("a or b"), ident(None, "a or b"));
    }
}
