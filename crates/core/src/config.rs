//! The project file `segmenta.toml`: its typed model, parsing with positions, and the checks
//! that need no data (unknown keys, references between sections, type names, file extensions).
//!
//! Every key is documented in `docs/project-file.md`; keep the two in step.

use std::ops::Range;

use indexmap::IndexMap;
use serde::Deserialize;
use toml::Spanned;

use crate::rfm::{RfmFrequency, Scoring, Thresholds};
use crate::{TimeUnit, ValueType, Window, Within};

/// A problem in the project file, with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    /// What is wrong, lowercase, naming the offending value.
    pub message: String,
    /// 1-based line of the offending text, when known.
    pub line: Option<usize>,
    /// 1-based column (in characters) of the offending text, when known.
    pub column: Option<usize>,
    /// How to fix it, when there is something useful to say.
    pub hint: Option<String>,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let (Some(line), Some(column)) = (self.line, self.column) {
            write!(f, "{line}:{column}: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// The supported data file formats, chosen by file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    /// `.csv`: comma-separated with a header row.
    Csv,
    /// `.parquet`.
    Parquet,
    /// `.jsonl` / `.ndjson`: one JSON object per line.
    JsonLines,
}

impl SourceFormat {
    /// The format for a path, from its extension (case-insensitive).
    pub fn from_path(path: &str) -> Option<SourceFormat> {
        let ext = path.rsplit_once('.')?.1.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(SourceFormat::Csv),
            "parquet" | "pq" => Some(SourceFormat::Parquet),
            "jsonl" | "ndjson" => Some(SourceFormat::JsonLines),
            _ => None,
        }
    }
}

/// The whole project file.
///
/// Values with a form of their own (types, windows, units, rollup targets) are held parsed; a
/// value that does not parse is a located [`ConfigError`] of [`parse_project`], never a default.
#[derive(Debug, Clone)]
pub struct ProjectConfig {
    /// `[project]`.
    pub project: ProjectSection,
    /// `[entities.NAME]`, in file order.
    pub entities: IndexMap<String, EntityConfig>,
    /// `[events]`, optional: a project without events has no traits.
    pub events: Option<EventsConfig>,
    /// `[traits]`: name to trait expression, in file order.
    pub traits: IndexMap<String, TraitConfig>,
    /// `[segments.NAME]`, in file order.
    pub segments: IndexMap<String, SegmentConfig>,
    /// `[schemes.NAME]`: ordered tiers, first match wins, in file order.
    pub schemes: IndexMap<String, SchemeConfig>,
    /// `[rfm]`: built-in recency / frequency / monetary scoring.
    pub rfm: Option<RfmConfig>,
    /// `[scores.NAME]`: points per rule and per event, in file order.
    pub scores: IndexMap<String, ScoreConfig>,
    /// `[clv]`: customer lifetime value (BG/NBD + Gamma-Gamma) as traits.
    pub clv: Option<ClvConfig>,
    /// `[churn]`: churn propensity (logistic regression on traits) as a trait.
    pub churn: Option<ChurnConfig>,
    /// `[lookups.NAME]`: enrichment tables joined to an entity by one of its columns, in file
    /// order.
    pub lookups: IndexMap<String, LookupConfig>,
    /// `[movements.NAME]`: segments of the entities that moved since the previous snapshot.
    pub movements: IndexMap<String, MovementConfig>,
    /// `[kpis]`: the revenue column and the goal of `segmenta kpis`.
    pub kpis: KpisConfig,
    /// `[quality]`: the thresholds of `segmenta quality`.
    pub quality: QualityConfig,
    /// `[coverage]`: engagement models and the CSM roster of `segmenta coverage`.
    pub coverage: Option<CoverageConfig>,
}

/// `[lookups.NAME]`: a table of facts about a value (postcode → lifestyle group, industry code
/// → sector, country → region) whose columns become attributes of an entity, joined by the
/// entity's `on` column to the table's `key`.
#[derive(Debug, Clone)]
pub struct LookupConfig {
    /// Data file, relative to the project folder.
    pub source: Spanned<String>,
    /// The lookup table's key column (unique).
    pub key: String,
    /// The entity it enriches; default: the project's entity.
    pub entity: Option<Spanned<String>>,
    /// The entity's column holding the key; default: a column named as `key`.
    pub on: Option<String>,
    /// Type overrides of the lookup table; other columns are inferred.
    pub columns: IndexMap<String, Spanned<ValueType>>,
}

/// `[project]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectSection {
    /// A display name.
    pub name: String,
    /// The entity that segments hold (a key of `[entities]`).
    pub entity: Spanned<String>,
    /// Where runs are stored, relative to the project folder (default `.segmenta`).
    #[serde(default)]
    pub store: Option<String>,
    /// The as-of date or instant of runs that do not give `--as-of` (default: now).
    #[serde(default)]
    pub as_of: Option<Spanned<String>>,
    /// The share of events (or of a child entity's rows) whose key matches no entity above
    /// which `run` and `validate` warn (default [`DEFAULT_MAX_UNKNOWN_SHARE`], 1%).
    #[serde(default)]
    pub max_unknown_share: Option<Spanned<f64>>,
    /// Unknown keys above that share are errors rather than warnings, as with `--strict`.
    #[serde(default)]
    pub strict: bool,
}

/// The default of `[project] max_unknown_share`.
pub const DEFAULT_MAX_UNKNOWN_SHARE: f64 = 0.01;

impl ProjectSection {
    /// `max_unknown_share`, or its default.
    pub fn max_unknown_share(&self) -> f64 {
        self.max_unknown_share.as_ref().map_or(DEFAULT_MAX_UNKNOWN_SHARE, |s| *s.get_ref())
    }
}

/// `[entities.NAME]`: a table of customers (accounts, contacts, ...).
#[derive(Debug, Clone)]
pub struct EntityConfig {
    /// Data file, relative to the project folder (with `from_events`: the events' file).
    pub source: Spanned<String>,
    /// The entity's rows are the distinct keys of the events (`key` is the events'
    /// `entity_key`): a project from a transaction log alone, without a file of customers.
    pub from_events: bool,
    /// Column holding the unique entity id.
    pub key: String,
    /// Type overrides; other columns are inferred.
    pub columns: IndexMap<String, Spanned<ValueType>>,
    /// Parent entity: this entity's rows carry the parent's key column.
    pub parent: Option<Spanned<String>>,
    /// A column holding the key of the parent row in the same table (subsidiaries point to
    /// their parent account); enables `over = "children"` and `over = "descendants"` rollups.
    pub hierarchy: Option<Spanned<String>>,
}

/// `[events]`: the event stream traits are computed from.
#[derive(Debug, Clone)]
pub struct EventsConfig {
    /// Data file, relative to the project folder.
    pub source: Spanned<String>,
    /// Column carrying the owning entity's key.
    pub entity_key: String,
    /// Which entity the events belong to; default: the entity whose `key` equals `entity_key`,
    /// else the project's entity.
    pub entity: Option<Spanned<String>>,
    /// Event time column (timestamp; dates mean midnight UTC).
    pub time: String,
    /// Event type column (informational; usable in conditions like any column).
    pub event_type: Option<String>,
    /// How the time column reads when it is not ISO 8601: `epoch_seconds`, `epoch_millis` or a
    /// strftime pattern (`%Y%m%d`); checked by validation.
    pub time_format: Option<Spanned<String>>,
    /// Type overrides; other columns are inferred.
    pub columns: IndexMap<String, Spanned<ValueType>>,
}

/// A trait: either `name = "expression"` or
/// `name = { expr = "...", description = "...", entity = "...", over = "..." }`.
#[derive(Debug, Clone)]
pub struct TraitConfig {
    /// The trait expression with its span in the project file.
    pub expr: Spanned<String>,
    /// What it means.
    pub description: Option<String>,
    /// The entity the trait belongs to; default: the parent of the `over` entity for a rollup
    /// over a child entity, else the project's entity.
    pub entity: Option<Spanned<String>>,
    /// What the aggregate runs over: absent for events; a child entity for a rollup over its
    /// rows; `children` or `descendants` for a rollup over the entity's hierarchy.
    pub over: Option<Spanned<RollupTarget>>,
}

/// What a rollup trait aggregates (`over = "..."`).
///
/// Every text is a target: whether an [`RollupTarget::Entity`] names a declared child entity
/// depends on the rest of the file and is checked by [`parse_project`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RollupTarget {
    /// `children`: the rows whose hierarchy column holds this row's key.
    Children,
    /// `descendants`: children, their children, and so on.
    Descendants,
    /// A child entity's name: the rows of that entity whose parent is this row.
    Entity(String),
}

impl RollupTarget {
    /// The target as written in the project file.
    pub fn as_str(&self) -> &str {
        match self {
            RollupTarget::Children => "children",
            RollupTarget::Descendants => "descendants",
            RollupTarget::Entity(name) => name,
        }
    }

    /// True for `children` and `descendants` (rollups over the entity's own hierarchy).
    pub fn is_hierarchy(&self) -> bool {
        matches!(self, RollupTarget::Children | RollupTarget::Descendants)
    }
}

impl From<&str> for RollupTarget {
    fn from(text: &str) -> RollupTarget {
        match text {
            "children" => RollupTarget::Children,
            "descendants" => RollupTarget::Descendants,
            name => RollupTarget::Entity(name.to_string()),
        }
    }
}

impl std::fmt::Display for RollupTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The two ways of writing a trait, before spans are attached.
enum TraitForm {
    Short(String),
    Long(TraitConfig),
}

impl<'de> Deserialize<'de> for TraitForm {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = TraitForm;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(r#"a trait such as "count() within 30d" or a table { expr = "..." }"#)
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<TraitForm, E> {
                Ok(TraitForm::Short(v.to_string()))
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<TraitForm, A::Error> {
                use serde::de::Error as _;
                const FIELDS: &[&str] = &["expr", "description", "entity", "over"];
                let (mut expr, mut description, mut entity, mut over) = (None, None, None, None);
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "expr" => expr = Some(map.next_value::<Spanned<String>>()?),
                        "description" => description = Some(map.next_value::<String>()?),
                        "entity" => entity = Some(map.next_value::<Spanned<String>>()?),
                        "over" => {
                            let text = map.next_value::<Spanned<String>>()?;
                            let span = text.span();
                            over = Some(Spanned::new(span, RollupTarget::from(text.get_ref().as_str())));
                        }
                        other => return Err(A::Error::unknown_field(other, FIELDS)),
                    }
                }
                let expr = expr.ok_or_else(|| A::Error::missing_field("expr"))?;
                Ok(TraitForm::Long(TraitConfig { expr, description, entity, over }))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

fn deserialize_traits<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<IndexMap<String, TraitConfig>, D::Error> {
    let forms = IndexMap::<String, Spanned<TraitForm>>::deserialize(deserializer)?;
    Ok(forms
        .into_iter()
        .map(|(name, form)| {
            let span = form.span();
            let config = match form.into_inner() {
                TraitForm::Short(expr) => TraitConfig {
                    expr: Spanned::new(span, expr),
                    description: None,
                    entity: None,
                    over: None,
                },
                TraitForm::Long(config) => config,
            };
            (name, config)
        })
        .collect())
}

impl TraitConfig {
    /// The trait expression with its span in the project file.
    pub fn expr(&self) -> &Spanned<String> {
        &self.expr
    }
}

/// `[segments.NAME]`: a rule segment (`rule`) or a static list (`static`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentConfig {
    /// The rule; an entity is a member iff it evaluates to TRUE.
    #[serde(default)]
    pub rule: Option<Spanned<String>>,
    /// A CSV file of member ids (a static list), relative to the project folder.
    #[serde(default, rename = "static")]
    pub static_list: Option<Spanned<String>>,
    /// The macro segment this (micro) segment lies inside: members must also be members of it.
    #[serde(default)]
    pub parent: Option<Spanned<String>>,
    /// What the segment is for.
    #[serde(default)]
    pub description: Option<String>,
    /// The team member or team responsible for the segment (`segmenta kpis --by owner`).
    #[serde(default)]
    pub owner: Option<String>,
    /// The channel the segment is worked through (e-mail, ads, sales, CS, ...).
    #[serde(default)]
    pub channel: Option<String>,
}

/// `[movements.NAME]`: a segment of the entities that moved since the previous snapshot: members
/// of `from` at the previous snapshot that are members of `to` now (and were not before). With
/// only `to`: the entities that entered `to`; with only `from`: those that left `from`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MovementConfig {
    /// The segment (or `scheme.tier`, `rfm.…`) the entities were in.
    #[serde(default)]
    pub from: Option<Spanned<String>>,
    /// The segment (or tier) they are in now.
    #[serde(default)]
    pub to: Option<Spanned<String>>,
    /// What the movement means.
    #[serde(default)]
    pub description: Option<String>,
    /// Who acts on it.
    #[serde(default)]
    pub owner: Option<String>,
    /// Through which channel.
    #[serde(default)]
    pub channel: Option<String>,
}

/// `[kpis]`: what `segmenta kpis` measures per segment.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KpisConfig {
    /// The numeric attribute or trait that is an entity's revenue (`arr`, `mrr`): revenue, ARPA,
    /// gross and net dollar retention. Without it those KPIs are left out.
    #[serde(default)]
    pub revenue: Option<Spanned<String>>,
    /// An event condition that is the goal (`event_type = 'upgrade'`): the share of a segment's
    /// members with a goal event within `goal_window` after the snapshot.
    #[serde(default)]
    pub goal: Option<Spanned<String>>,
    /// How long after the snapshot a goal event counts (default 30 days).
    #[serde(default)]
    pub goal_window: Option<Spanned<String>>,
}

/// `[quality]`: the thresholds of `segmenta quality` (every key optional; the defaults are
/// the `DEFAULT_*` constants of the engine's `quality` module, documented in docs/quality.md).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QualityConfig {
    /// Measurable: the largest share of entities with NULL in a column a rule reads.
    #[serde(default)]
    pub max_missing: Option<f64>,
    /// Accessible: a rule over the contact entity that makes a contact reachable
    /// (`email is not null and consent_email_marketing`).
    #[serde(default)]
    pub reachable: Option<Spanned<String>>,
    /// The contact entity (default: the entity whose `parent` is the project's entity).
    #[serde(default)]
    pub contact: Option<Spanned<String>>,
    /// Accessible: the smallest share of members with a reachable contact.
    #[serde(default)]
    pub min_reachable: Option<f64>,
    /// Substantial: the fewest members.
    #[serde(default)]
    pub min_size: Option<u64>,
    /// Substantial: the smallest share of the population's revenue (with `[kpis] revenue`).
    #[serde(default)]
    pub min_revenue_share: Option<f64>,
    /// Differentiated: the largest Jaccard overlap with another segment.
    #[serde(default)]
    pub max_overlap: Option<f64>,
    /// Actionable: the smallest distance of a KPI's lift from 1 (ARPA, goal conversion).
    #[serde(default)]
    pub min_lift: Option<f64>,
    /// Stable: the largest membership turnover between the last two snapshots.
    #[serde(default)]
    pub max_turnover: Option<f64>,
}

/// `[coverage]`: customer-success engagement models and the CSM roster of `segmenta coverage`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoverageConfig {
    /// A CSV file of the CSMs: `id`, `name`, `model`, and optionally `capacity` (accounts).
    pub roster: Spanned<String>,
    /// The numeric column balanced across CSMs (default: `[kpis] revenue`; without either,
    /// only account counts are balanced).
    #[serde(default)]
    pub revenue: Option<Spanned<String>>,
    /// The engagement models, in priority order: an account is in the first whose rule (or
    /// segment) holds it.
    #[serde(default)]
    pub models: Vec<CoverageModelConfig>,
}

/// One engagement model of `[coverage]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoverageModelConfig {
    /// Its name (the roster's `model` column names it).
    pub name: Spanned<String>,
    /// A rule over the run's table that puts an account in the model.
    #[serde(default)]
    pub rule: Option<Spanned<String>>,
    /// Or a segment whose members are in the model.
    #[serde(default)]
    pub segment: Option<Spanned<String>>,
    /// Accounts one CSM of this model carries.
    pub accounts_per_csm: Spanned<u64>,
}

/// `[schemes.NAME]`: an ordered list of tiers, first match wins, with an `otherwise` tier, so
/// that every entity is in exactly one tier.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemeConfig {
    /// The tiers, in priority order.
    pub tiers: Vec<TierConfig>,
    /// The tier of entities that match no tier's rule.
    pub otherwise: Spanned<String>,
    /// What the scheme is for.
    #[serde(default)]
    pub description: Option<String>,
}

/// One tier of a scheme.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierConfig {
    /// The tier's name; its segment is `SCHEME.NAME`.
    pub name: Spanned<String>,
    /// Entities for which this is TRUE, and no earlier tier's rule is, are in the tier.
    pub rule: Spanned<String>,
    /// What the tier means.
    #[serde(default)]
    pub description: Option<String>,
}

/// `[rfm]`: recency, frequency and monetary value over purchase events, scores (quintiles, or
/// fixed cut points per dimension) and the standard named RFM segments.
#[derive(Debug, Clone)]
pub struct RfmConfig {
    /// The condition (over event columns) that makes an event a purchase.
    pub purchase: Spanned<String>,
    /// The event column holding the purchase amount.
    pub amount: Spanned<String>,
    /// Only purchases within this window count (e.g. `365d`, `12mo`, `1y`); default: all.
    pub within: Option<Spanned<Within>>,
    /// What `rfm_frequency` counts (default: purchase events).
    pub frequency: Option<Spanned<RfmFrequency>>,
    /// `[rfm.thresholds]`: fixed cut points per dimension; a dimension without stays quintiles.
    pub thresholds: RfmThresholds,
}

impl RfmConfig {
    /// What `rfm_frequency` counts (default `purchases`).
    pub fn frequency(&self) -> RfmFrequency {
        self.frequency.as_ref().map_or_else(RfmFrequency::default, |f| *f.get_ref())
    }
}

/// `[rfm.thresholds]`: four ascending cut points per dimension, each the inclusive upper end of
/// a band (see [`Thresholds`]).
#[derive(Debug, Clone, Default)]
pub struct RfmThresholds {
    /// Of `rfm_recency_days`: `[30, 90, 180, 365]` scores R = 5 up to 30 days, 1 above 365.
    pub recency_days: Option<Spanned<Thresholds>>,
    /// Of `rfm_frequency`: `[1, 2, 4, 8]` scores F = 1 for 1 purchase, 5 above 8.
    pub frequency: Option<Spanned<Thresholds>>,
    /// Of `rfm_monetary`: `[100, 500, 1000, 5000]` scores M = 1 up to 100, 5 above 5000.
    pub monetary: Option<Spanned<Thresholds>>,
}

impl RfmThresholds {
    /// How each dimension is scored: (recency, frequency, monetary).
    pub fn scoring(&self) -> (Scoring, Scoring, Scoring) {
        let scoring = |t: &Option<Spanned<Thresholds>>| {
            t.as_ref().map_or(Scoring::Quintiles, |t| Scoring::Thresholds(*t.get_ref()))
        };
        (scoring(&self.recency_days), scoring(&self.frequency), scoring(&self.monetary))
    }
}

/// `[clv]`: purchase summaries (Fader, Hardie & Lee 2005), the BG/NBD and Gamma-Gamma models
/// fitted on them, and per-entity predictions as traits (see `docs/predictive.md`).
#[derive(Debug, Clone)]
pub struct ClvConfig {
    /// The condition (over event columns) that makes an event a purchase.
    pub purchase: Spanned<String>,
    /// The event column holding the purchase amount.
    pub amount: Spanned<String>,
    /// `day` or `week` (default): the unit the models are fitted in.
    pub time_unit: Option<Spanned<TimeUnit>>,
    /// The horizon of expected purchases (default `90d`); it names the trait
    /// `expected_purchases_<horizon>`.
    pub horizon: Option<Spanned<Window>>,
    /// Months of discounted CLV (default 12); it names the trait `clv_<months>m`.
    pub months: Option<u32>,
    /// Monthly discount rate of CLV (default 0.01).
    pub discount_rate: Option<f64>,
    /// L2 penalty on the model parameters (default 0, the paper's plain maximum likelihood).
    pub penalizer: Option<f64>,
    /// "Diamonds in the rough": the bottom share by current value (default 0.8)...
    pub bottom_value_share: Option<f64>,
    /// ...that is in the top share by predicted CLV (default 0.2).
    pub top_clv_share: Option<f64>,
}

/// The segment `[clv]` adds.
pub const DIAMONDS_SEGMENT: &str = "clv.diamonds_in_the_rough";

/// The default `[clv] horizon` and `[churn] window`.
pub const DEFAULT_MODEL_WINDOW: Window = Window { amount: 90, unit: crate::WindowUnit::Day };

impl ClvConfig {
    /// The unit the models are fitted in (default `week`).
    pub fn time_unit(&self) -> TimeUnit {
        self.time_unit.as_ref().map_or_else(TimeUnit::default, |u| *u.get_ref())
    }

    /// The horizon of expected purchases (default `90d`).
    pub fn horizon(&self) -> Window {
        self.horizon.as_ref().map_or(DEFAULT_MODEL_WINDOW, |h| *h.get_ref())
    }

    /// The expected-purchases horizon as it names the trait (default `90d`): the window
    /// written canonically (`12W` and `12w` name the same trait).
    pub fn horizon_text(&self) -> String {
        self.horizon().to_string()
    }

    /// Months of CLV (default 12).
    pub fn months(&self) -> u32 {
        self.months.unwrap_or(12)
    }

    /// The traits `[clv]` adds, in output order.
    pub fn trait_names(&self) -> Vec<String> {
        vec![
            "clv_frequency".into(),
            "clv_recency".into(),
            "clv_t".into(),
            "clv_monetary".into(),
            "clv_value".into(),
            "p_alive".into(),
            format!("expected_purchases_{}", self.horizon_text()),
            "expected_spend".into(),
            format!("clv_{}m", self.months()),
        ]
    }
}

/// `[churn]`: a label from what followed a past cutoff, a model trained on the traits as of that
/// cutoff, its quality on a later holdout, and a `churn_risk` trait (see `docs/predictive.md`).
///
/// Churn is defined by exactly one of `churned` (a churn event) and `inactive` (a period
/// without activity); [`ChurnConfig::definition`] gives the one a parsed project has.
#[derive(Debug, Clone)]
pub struct ChurnConfig {
    /// The condition (over event columns) of the event that marks a churn (a cancellation).
    pub churned: Option<Spanned<String>>,
    /// Churned means no activity for this long (`90d`); it is also the window.
    pub inactive: Option<Spanned<Window>>,
    /// With `inactive`: the condition (over event columns) an event meets to count as activity;
    /// default: every event.
    pub activity: Option<Spanned<String>>,
    /// Attributes and traits of the project's entity the model reads (numbers and booleans).
    pub features: Vec<Spanned<String>>,
    /// "Churned within the next window" (default `90d`); also the spacing of the cutoffs. At
    /// most [`MAX_CHURN_WINDOW_DAYS`]. Not given with `inactive`, which is the window then.
    pub window: Option<Spanned<Window>>,
    /// L2 penalty of the logistic regression on standardised features (default 1.0).
    pub l2_penalty: Option<f64>,
    /// Drivers listed per entity in `churn_drivers` (default 3).
    pub drivers: Option<usize>,
}

/// What makes an entity churned (`[churn] churned` or `[churn] inactive`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ChurnDefinition<'a> {
    /// A churn event: the condition over event columns (a cancellation).
    Event(&'a Spanned<String>),
    /// No activity for `period`: no event (meeting `activity`, when given) in that long.
    Inactive {
        /// How long without activity makes a churn; also the window.
        period: Window,
        /// What counts as activity; `None`: every event.
        activity: Option<&'a Spanned<String>>,
    },
}

impl ChurnConfig {
    /// The churn window: the `inactive` period, else `window` (default `90d`).
    pub fn window(&self) -> Window {
        match &self.inactive {
            Some(period) => *period.get_ref(),
            None => self.window.as_ref().map_or(DEFAULT_MODEL_WINDOW, |w| *w.get_ref()),
        }
    }

    /// How churn is defined; always `Some` in a project [`parse_project`] accepted.
    pub fn definition(&self) -> Option<ChurnDefinition<'_>> {
        match (&self.churned, &self.inactive) {
            (Some(condition), None) => Some(ChurnDefinition::Event(condition)),
            (None, Some(period)) => Some(ChurnDefinition::Inactive {
                period: *period.get_ref(),
                activity: self.activity.as_ref(),
            }),
            _ => None,
        }
    }

    /// Where problems of the section as a whole are reported: its definition, else its features.
    fn span(&self) -> Option<Range<usize>> {
        let definition =
            self.churned.as_ref().map(Spanned::span).or(self.inactive.as_ref().map(Spanned::span));
        definition.or_else(|| self.features.first().map(Spanned::span))
    }
}

/// The longest `[churn] window` (about 27 years: the cutoffs lie two windows back).
pub const MAX_CHURN_WINDOW_DAYS: i64 = 10_000;

/// The traits `[churn]` adds, in output order.
pub const CHURN_TRAITS: [&str; 2] = ["churn_risk", "churn_drivers"];

/// `[scores.NAME]`: a points-based score (fit from rules, engagement from events), a float
/// trait usable in rules.
#[derive(Debug, Clone)]
pub struct ScoreConfig {
    /// Points for entities matching a rule (fit).
    pub rules: Vec<ScoreRuleConfig>,
    /// Points per matching event (engagement), optionally decayed and capped.
    pub events: Vec<ScoreEventConfig>,
    /// The score never goes below this.
    pub min: Option<f64>,
    /// The score never goes above this.
    pub max: Option<f64>,
    /// What the score measures.
    pub description: Option<String>,
}

/// Points for entities whose rule is TRUE.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreRuleConfig {
    /// The rule, over attributes, traits and segments.
    pub rule: Spanned<String>,
    /// Points added (negative to subtract).
    pub points: f64,
}

/// Points per event matching a condition.
#[derive(Debug, Clone)]
pub struct ScoreEventConfig {
    /// The condition over event columns.
    pub condition: Spanned<String>,
    /// Points per matching event (negative to subtract).
    pub points: f64,
    /// An event's points halve every `half_life` of age (e.g. `14d`); default: no decay.
    pub half_life: Option<Spanned<Window>>,
    /// Only events within this window count (e.g. `90d`, `6mo`); default: all.
    pub within: Option<Spanned<Within>>,
    /// The points from this line never exceed this.
    pub max: Option<f64>,
}

/// The traits that `[rfm]` adds, in output order.
pub const RFM_TRAITS: [&str; 8] = [
    "rfm_recency_days",
    "rfm_frequency",
    "rfm_monetary",
    "rfm_r",
    "rfm_f",
    "rfm_m",
    "rfm_score",
    "rfm_segment",
];

// The file as deserialized, before values are parsed into their types. A value that does not
// parse must not stop the parse (toml's errors end it at the first problem) nor turn into a
// default: it becomes a located error kept in `Rejected`, and `parse_project` goes on to report
// every other problem too. The structs mirror the public ones field for field (same names and
// order: `deny_unknown_fields` lists them in its messages).

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProject {
    project: ProjectSection,
    #[serde(default)]
    entities: IndexMap<String, RawEntity>,
    events: Option<RawEvents>,
    #[serde(default, deserialize_with = "deserialize_traits")]
    traits: IndexMap<String, TraitConfig>,
    #[serde(default)]
    segments: IndexMap<String, SegmentConfig>,
    #[serde(default)]
    schemes: IndexMap<String, SchemeConfig>,
    #[serde(default)]
    rfm: Option<RawRfm>,
    #[serde(default)]
    scores: IndexMap<String, RawScore>,
    #[serde(default)]
    clv: Option<RawClv>,
    #[serde(default)]
    churn: Option<RawChurn>,
    #[serde(default)]
    lookups: IndexMap<String, RawLookup>,
    #[serde(default)]
    movements: IndexMap<String, MovementConfig>,
    #[serde(default)]
    kpis: Option<KpisConfig>,
    #[serde(default)]
    quality: Option<QualityConfig>,
    #[serde(default)]
    coverage: Option<CoverageConfig>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLookup {
    source: Spanned<String>,
    key: String,
    #[serde(default)]
    entity: Option<Spanned<String>>,
    #[serde(default)]
    on: Option<String>,
    #[serde(default)]
    columns: IndexMap<String, Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntity {
    #[serde(default)]
    source: Option<Spanned<String>>,
    #[serde(default)]
    from_events: Option<Spanned<bool>>,
    key: String,
    #[serde(default)]
    columns: IndexMap<String, Spanned<String>>,
    #[serde(default)]
    parent: Option<Spanned<String>>,
    #[serde(default)]
    hierarchy: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvents {
    source: Spanned<String>,
    entity_key: String,
    #[serde(default)]
    entity: Option<Spanned<String>>,
    time: String,
    #[serde(default, rename = "type")]
    event_type: Option<String>,
    #[serde(default)]
    time_format: Option<Spanned<String>>,
    #[serde(default)]
    columns: IndexMap<String, Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRfm {
    purchase: Spanned<String>,
    amount: Spanned<String>,
    #[serde(default)]
    within: Option<Spanned<String>>,
    #[serde(default)]
    frequency: Option<Spanned<String>>,
    #[serde(default)]
    thresholds: Option<RawRfmThresholds>,
}

/// Cut points as written: a list of numbers, each with its position.
type RawCuts = Option<Spanned<Vec<Spanned<f64>>>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRfmThresholds {
    #[serde(default)]
    recency_days: RawCuts,
    #[serde(default)]
    frequency: RawCuts,
    #[serde(default)]
    monetary: RawCuts,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClv {
    purchase: Spanned<String>,
    amount: Spanned<String>,
    #[serde(default)]
    time_unit: Option<Spanned<String>>,
    #[serde(default)]
    horizon: Option<Spanned<String>>,
    #[serde(default)]
    months: Option<u32>,
    #[serde(default)]
    discount_rate: Option<f64>,
    #[serde(default)]
    penalizer: Option<f64>,
    #[serde(default)]
    bottom_value_share: Option<f64>,
    #[serde(default)]
    top_clv_share: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChurn {
    #[serde(default)]
    churned: Option<Spanned<String>>,
    #[serde(default)]
    inactive: Option<Spanned<String>>,
    #[serde(default)]
    activity: Option<Spanned<String>>,
    features: Vec<Spanned<String>>,
    #[serde(default)]
    window: Option<Spanned<String>>,
    #[serde(default)]
    l2_penalty: Option<f64>,
    #[serde(default)]
    drivers: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScore {
    #[serde(default)]
    rules: Vec<ScoreRuleConfig>,
    #[serde(default)]
    events: Vec<RawScoreEvent>,
    #[serde(default)]
    min: Option<f64>,
    #[serde(default)]
    max: Option<f64>,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScoreEvent {
    #[serde(rename = "where")]
    condition: Spanned<String>,
    points: f64,
    #[serde(default)]
    half_life: Option<Spanned<String>>,
    #[serde(default)]
    within: Option<Spanned<String>>,
    #[serde(default)]
    max: Option<f64>,
}

/// The errors of values that did not parse, each kept under the key of the check that reports
/// it, so that `parse_project` reports them in their place among the other problems.
#[derive(Default)]
struct Rejected(Vec<(String, ConfigError)>);

impl Rejected {
    fn push(&mut self, key: &str, error: ConfigError) {
        self.0.push((key.to_string(), error));
    }

    /// Moves the errors kept under `key` into `errors`, in the order they were found.
    fn report(&mut self, key: &str, errors: &mut Vec<ConfigError>) {
        let (now, later): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.0).into_iter().partition(|(k, _)| k == key);
        self.0 = later;
        errors.extend(now.into_iter().map(|(_, e)| e));
    }
}

/// A window value, or its located error; `what` names the key in the message.
fn parse_window(
    ct: &ConfigText<'_>,
    value: &Spanned<String>,
    text: &str,
    what: &str,
) -> Result<Spanned<Window>, ConfigError> {
    match text.parse::<Window>() {
        Ok(window) => Ok(Spanned::new(value.span(), window)),
        Err(message) => Err(ct.error_at(
            Some(value.span()),
            format!("{what}: {message}"),
            Some(crate::WINDOW_HINT.into()),
        )),
    }
}

/// A window of events before the as-of instant as written in the project file: a length
/// (`90d`) or calendar months or years (`6mo`, `1y`), as after `within` in a trait.
fn parse_within(
    ct: &ConfigText<'_>,
    value: &Spanned<String>,
    what: &str,
) -> Result<Spanned<Within>, ConfigError> {
    match Within::parse_length(value.get_ref()) {
        Ok(within) => Ok(Spanned::new(value.span(), within)),
        Err(message) => Err(ct.error_at(
            Some(value.span()),
            format!("{what}: {message}"),
            Some(crate::WITHIN_HINT.into()),
        )),
    }
}

/// `[rfm]` typed: the frequency's name and the cut points checked, each problem kept in
/// `rejected` under `rfm.frequency` or `rfm.thresholds` (the value is then left out).
fn typed_rfm(
    ct: &ConfigText<'_>,
    rfm: RawRfm,
    within: Option<Spanned<Within>>,
    rejected: &mut Rejected,
) -> RfmConfig {
    let frequency = rfm.frequency.and_then(|text| match text.get_ref().parse::<RfmFrequency>() {
        Ok(parsed) => Some(Spanned::new(text.span(), parsed)),
        Err(message) => {
            rejected.push(
                "rfm.frequency",
                ct.error_at(
                    Some(text.span()),
                    format!("[rfm] frequency: {message}"),
                    Some("use `purchases` (purchase events, the default) or `repeat_days` (purchase days after the first, as clv_frequency)".into()),
                ),
            );
            None
        }
    });
    let mut cuts = |raw: RawCuts, key: &str, min: Option<f64>, example: &str| {
        let raw = raw?;
        let values: Vec<f64> = raw.get_ref().iter().map(|v| *v.get_ref()).collect();
        match Thresholds::new(&values, min) {
            Ok(thresholds) => Some(Spanned::new(raw.span(), thresholds)),
            Err(error) => {
                let span = error.index.and_then(|i| raw.get_ref().get(i)).map_or(raw.span(), |v| v.span());
                rejected.push(
                    "rfm.thresholds",
                    ct.error_at(
                        Some(span),
                        format!("[rfm.thresholds] {key}: {}", error.message),
                        Some(format!(
                            "give 4 ascending cut points, each the upper end (inclusive) of a band, e.g. {key} = {example}"
                        )),
                    ),
                );
                None
            }
        }
    };
    let thresholds = match rfm.thresholds {
        Some(t) => RfmThresholds {
            recency_days: cuts(t.recency_days, "recency_days", Some(0.0), "[30, 90, 180, 365]"),
            frequency: cuts(t.frequency, "frequency", Some(0.0), "[1, 2, 4, 8]"),
            monetary: cuts(t.monetary, "monetary", None, "[100, 500, 1000, 5000]"),
        },
        None => RfmThresholds::default(),
    };
    RfmConfig { purchase: rfm.purchase, amount: rfm.amount, within, frequency, thresholds }
}

/// `[churn]` as written: exactly one of `churned` and `inactive`, `activity` only with
/// `inactive`, and no `window` with `inactive` (the period is the window). Problems are kept in
/// `rejected` under `churn.definition`.
fn check_churn_definition(ct: &ConfigText<'_>, churn: &RawChurn, rejected: &mut Rejected) {
    let mut problem = |span: Option<Range<usize>>, message: &str, hint: &str| {
        rejected.push("churn.definition", ct.error_at(span, message.into(), Some(hint.into())));
    };
    match (&churn.churned, &churn.inactive) {
        (Some(_), Some(inactive)) => problem(
            Some(inactive.span()),
            "[churn] has both `churned` and `inactive`",
            "churn is either a churn event (churned = \"event_type = 'cancel'\") or a period without activity (inactive = \"90d\"): keep one",
        ),
        (None, None) => problem(
            churn.features.first().map(Spanned::span).or_else(|| ct.0.find("[churn]").map(|i| i..i + 7)),
            "[churn] does not say what churn is",
            "add churned = \"CONDITION\" (the event of a cancellation) or inactive = \"90d\" (no activity for 90 days)",
        ),
        _ => {}
    }
    if let (Some(activity), None) = (&churn.activity, &churn.inactive) {
        problem(
            Some(activity.span()),
            "[churn] activity is only read with `inactive`",
            "add inactive = \"90d\" (churned = no activity for 90 days), or remove activity",
        );
    }
    if let (Some(window), Some(_)) = (&churn.window, &churn.inactive) {
        problem(
            Some(window.span()),
            "[churn] window cannot be given with `inactive`: the inactivity period is the window",
            "remove window: inactive = \"90d\" predicts who goes 90 days without activity",
        );
    }
}

/// Parses the values of the raw file into their types. A value that does not parse is left out
/// of the result and its error kept in `rejected`.
fn typed(ct: &ConfigText<'_>, raw: RawProject, rejected: &mut Rejected) -> ProjectConfig {
    let columns = |columns: IndexMap<String, Spanned<String>>, key: &str, rejected: &mut Rejected| {
        let mut typed = IndexMap::new();
        for (column, ty) in columns {
            match ty.get_ref().parse::<ValueType>() {
                Ok(parsed) => {
                    typed.insert(column, Spanned::new(ty.span(), parsed));
                }
                Err(message) => rejected
                    .push(key, ct.error_at(Some(ty.span()), format!("column `{column}`: {message}"), None)),
            }
        }
        typed
    };
    let clv_time_unit = raw.clv.as_ref().and_then(|c| c.time_unit.as_ref()).and_then(|unit| {
        match unit.get_ref().parse::<TimeUnit>() {
            Ok(parsed) => Some(Spanned::new(unit.span(), parsed)),
            Err(message) => {
                rejected.push(
                    "clv.time_unit",
                    ct.error_at(
                        Some(unit.span()),
                        format!("[clv] time_unit: {message}"),
                        Some("use `day` or `week` (the default)".into()),
                    ),
                );
                None
            }
        }
    });
    let mut window = |value: Option<Spanned<String>>, text: fn(&str) -> &str, what: &str, key: &str| {
        let value = value?;
        parse_window(ct, &value, text(value.get_ref()), what).map_err(|e| rejected.push(key, e)).ok()
    };
    let as_written: fn(&str) -> &str = |t| t;
    let trimmed: fn(&str) -> &str = str::trim;
    let mut within_errors = Vec::new();
    let mut within = |value: Option<Spanned<String>>, what: &str, key: &str| {
        let value = value?;
        parse_within(ct, &value, what).map_err(|e| within_errors.push((key.to_string(), e))).ok()
    };
    let mut scores = IndexMap::new();
    for (name, score) in raw.scores {
        let key = format!("scores.{name}.events");
        let events = score
            .events
            .into_iter()
            .map(|line| ScoreEventConfig {
                condition: line.condition,
                points: line.points,
                half_life: window(line.half_life, as_written, &format!("score `{name}`: half_life"), &key),
                within: within(line.within, &format!("score `{name}`: within"), &key),
                max: line.max,
            })
            .collect();
        let typed = ScoreConfig {
            rules: score.rules,
            events,
            min: score.min,
            max: score.max,
            description: score.description,
        };
        scores.insert(name, typed);
    }
    let mut raw_rfm = raw.rfm;
    let rfm_within = raw_rfm.as_mut().and_then(|rfm| rfm.within.take());
    let rfm_within = within(rfm_within, "[rfm] within", "rfm.within");
    let clv = raw.clv.map(|clv| ClvConfig {
        purchase: clv.purchase,
        amount: clv.amount,
        time_unit: clv_time_unit,
        horizon: window(clv.horizon, trimmed, "[clv] horizon", "clv.horizon"),
        months: clv.months,
        discount_rate: clv.discount_rate,
        penalizer: clv.penalizer,
        bottom_value_share: clv.bottom_value_share,
        top_clv_share: clv.top_clv_share,
    });
    let churn_window = raw.churn.as_ref().and_then(|c| c.window.clone());
    let churn_window = window(churn_window, trimmed, "[churn] window", "churn.window");
    let churn_inactive = raw.churn.as_ref().and_then(|c| c.inactive.clone());
    let churn_inactive = window(churn_inactive, trimmed, "[churn] inactive", "churn.window");
    let churn = raw.churn.map(|churn| {
        let mut not_too_long = |value: Option<Spanned<Window>>, raw: &Option<Spanned<String>>, key: &str| {
            value.filter(|w| {
                let too_long = w.get_ref().micros() > MAX_CHURN_WINDOW_DAYS * crate::MICROS_PER_DAY;
                if too_long {
                    let text = raw.as_ref().map_or("", |w| w.get_ref().as_str());
                    rejected.push(
                        "churn.window",
                        ct.error_at(
                            Some(w.span()),
                            format!("[churn] {key} `{text}` is longer than {MAX_CHURN_WINDOW_DAYS} days"),
                            Some("the model trains on what happened within two windows before the as-of date: use e.g. 90d".into()),
                        ),
                    );
                }
                !too_long
            })
        };
        let window = not_too_long(churn_window, &churn.window, "window");
        let inactive = not_too_long(churn_inactive, &churn.inactive, "inactive");
        check_churn_definition(ct, &churn, rejected);
        ChurnConfig {
            churned: churn.churned,
            inactive,
            activity: churn.activity,
            features: churn.features,
            window,
            l2_penalty: churn.l2_penalty,
            drivers: churn.drivers,
        }
    });
    for (key, error) in within_errors {
        rejected.push(&key, error);
    }
    let rfm = raw_rfm.map(|rfm| typed_rfm(ct, rfm, rfm_within, rejected));
    let events_source = raw.events.as_ref().map(|e| (e.source.clone(), e.entity_key.clone()));
    let entities = raw
        .entities
        .into_iter()
        .map(|(name, entity)| {
            let key = format!("entities.{name}.columns");
            let from_events = entity.from_events.as_ref().is_some_and(|f| *f.get_ref());
            let source = match (entity.source, &entity.from_events, &events_source) {
                (Some(source), None, _) => source,
                (Some(source), Some(flag), _) => {
                    if *flag.get_ref() {
                        rejected.push(&key, ct.error_at(
                            Some(flag.span()),
                            format!("entity `{name}` has both a `source` and `from_events = true`"),
                            Some("keep `source` for a file of entities, or `from_events` for the distinct keys of the events".into()),
                        ));
                    }
                    source
                }
                (None, Some(flag), Some((events, entity_key))) if *flag.get_ref() => {
                    if *entity_key != entity.key {
                        rejected.push(&key, ct.error_at(
                            Some(flag.span()),
                            format!(
                                "entity `{name}` takes its rows from the events, so its key is the events' entity_key `{entity_key}`, not `{}`",
                                entity.key
                            ),
                            Some(format!("write key = \"{entity_key}\"")),
                        ));
                    }
                    events.clone()
                }
                (None, Some(flag), None) if *flag.get_ref() => {
                    rejected.push(&key, ct.error_at(
                        Some(flag.span()),
                        format!("entity `{name}` takes its rows from the events, but there is no [events] section"),
                        Some("add [events] with source, entity_key and time".into()),
                    ));
                    Spanned::new(flag.span(), String::new())
                }
                (None, flag, _) => {
                    rejected.push(&key, ct.error_at(
                        flag.as_ref().map(|f| f.span()),
                        format!("entity `{name}` has no `source`"),
                        Some("name its data file (source = \"customers.csv\"), or write from_events = true to take its rows from the distinct keys of the events".into()),
                    ));
                    Spanned::new(0..0, String::new())
                }
            };
            let typed = EntityConfig {
                source,
                from_events,
                key: entity.key,
                columns: columns(entity.columns, &format!("entities.{name}.columns"), rejected),
                parent: entity.parent,
                hierarchy: entity.hierarchy,
            };
            (name, typed)
        })
        .collect();
    let events = raw.events.map(|events| EventsConfig {
        source: events.source,
        entity_key: events.entity_key,
        entity: events.entity,
        time: events.time,
        event_type: events.event_type,
        time_format: events.time_format,
        columns: columns(events.columns, "events.columns", rejected),
    });
    let lookups = raw
        .lookups
        .into_iter()
        .map(|(name, lookup)| {
            let typed = LookupConfig {
                source: lookup.source,
                key: lookup.key,
                entity: lookup.entity,
                on: lookup.on,
                columns: columns(lookup.columns, &format!("lookups.{name}.columns"), rejected),
            };
            (name, typed)
        })
        .collect();
    ProjectConfig {
        lookups,
        project: raw.project,
        entities,
        events,
        traits: raw.traits,
        segments: raw.segments,
        schemes: raw.schemes,
        rfm,
        scores,
        clv,
        churn,
        movements: raw.movements,
        kpis: raw.kpis.unwrap_or_default(),
        quality: raw.quality.unwrap_or_default(),
        coverage: raw.coverage,
    }
}

/// The project file's text, for turning byte offsets into line and column.
#[derive(Debug, Clone)]
pub struct ConfigText<'a>(pub &'a str);

impl ConfigText<'_> {
    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.0.len());
        let before = &self.0[..self.0.floor_char_boundary(offset)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }

    /// Offset in the file of byte `offset_in_value` of a string value whose TOML literal spans
    /// `span`, when that literal is a one-line string without escapes (so that positions inside
    /// the value map one to one onto the file). Otherwise the literal's own start.
    pub fn value_offset(&self, span: &Range<usize>, offset_in_value: usize) -> usize {
        let literal = self.0.get(span.clone()).unwrap_or("");
        let simple = (literal.starts_with('"') && !literal.contains('\\') || literal.starts_with('\''))
            && !literal.starts_with("\"\"\"")
            && !literal.starts_with("'''");
        if simple { span.start + 1 + offset_in_value } else { span.start }
    }

    /// The text of the line holding byte `offset`.
    fn line_of(&self, offset: usize) -> &str {
        let offset = self.0.floor_char_boundary(offset.min(self.0.len()));
        let start = self.0[..offset].rfind('\n').map_or(0, |i| i + 1);
        let end = self.0[offset..].find('\n').map_or(self.0.len(), |i| offset + i);
        &self.0[start..end]
    }

    /// The 1-based line, before `before`, where `key` is first defined: as a key (`key = ...`) or
    /// as the last part of a table header (`[segments.key]`).
    fn first_definition(&self, key: &str, before: usize) -> Option<usize> {
        let head = &self.0[..self.0.floor_char_boundary(before.min(self.0.len()))];
        head.lines()
            .position(|line| {
                let line = line.trim();
                let as_key = line.strip_prefix(key).is_some_and(|rest| rest.trim_start().starts_with('='));
                let as_header = line.starts_with('[')
                    && line.trim_end_matches(']').trim_start_matches('[').rsplit('.').next() == Some(key);
                as_key || as_header
            })
            .map(|i| i + 1)
    }

    fn error_at(&self, span: Option<Range<usize>>, message: String, hint: Option<String>) -> ConfigError {
        let (line, column) = match span {
            Some(span) => {
                let (l, c) = self.line_col(span.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        ConfigError { message, line, column, hint }
    }
}

/// The closest candidate to `name` by edit distance, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    crate::suggest::closest(name, candidates)
}

/// Turns the toml crate's message into ours, adding a "did you mean" for unknown keys.
fn from_toml_error(text: &ConfigText<'_>, err: &toml::de::Error) -> ConfigError {
    let message = err.message().trim().to_string();
    let mut hint = None;
    // The message for deny_unknown_fields reads:
    // "unknown field `entiy`, expected one of `name`, `entity`, `store`".
    if let Some((field, expected)) =
        message.strip_prefix("unknown field `").and_then(|rest| rest.split_once('`'))
    {
        let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        hint = Some(match did_you_mean(field, candidates.iter().copied()) {
            Some(best) => format!("did you mean `{best}`?"),
            None => format!("the keys allowed here are: {}", candidates.join(", ")),
        });
    }
    let mut message = message
        .split_once(", expected")
        .filter(|_| hint.is_some())
        .map_or(message.clone(), |(head, _)| head.to_string());
    let span = err.span();
    let line_text = span.as_ref().map(|s| text.line_of(s.start)).unwrap_or_default();
    if message == "duplicate key"
        && let Some(span) = &span
    {
        let key = text.0.get(span.clone()).unwrap_or("").trim_matches(|c| c == '"' || c == '\'');
        message = format!("duplicate key `{key}`");
        if let Some(first) = text.first_definition(key, span.start) {
            hint = Some(format!("`{key}` is first defined at line {first}; merge the two or rename one"));
        }
    } else if hint.is_none() && line_text.matches('"').count() > 2 && line_text.contains("= \"") {
        hint = Some(
            "a double quote inside a double-quoted value ends the value: quote strings in rules with single quotes (plan = 'pro'), or write the whole value as a TOML literal string in single quotes"
                .into(),
        );
    }
    if !line_text.trim().is_empty()
        && let Some(span) = &span
    {
        let (_, column) = text.line_col(span.start);
        let shown: String = line_text.chars().take(120).collect();
        let caret = " ".repeat(column.saturating_sub(1).min(120));
        message = format!("{message}\n  {shown}\n  {caret}^");
    }
    text.error_at(span, message, hint)
}

/// Parses `segmenta.toml` text and checks what can be checked without data.
///
/// Returns every problem found, not only the first.
pub fn parse_project(text: &str) -> Result<ProjectConfig, Vec<ConfigError>> {
    let ct = ConfigText(text);
    let raw: RawProject = toml::from_str(text).map_err(|e| vec![from_toml_error(&ct, &e)])?;
    let mut rejected = Rejected::default();
    let config = typed(&ct, raw, &mut rejected);
    let mut errors = Vec::new();
    let entity_names: Vec<&str> = config.entities.keys().map(String::as_str).collect();
    let unknown_entity = |name: &Spanned<String>, what: &str| {
        let hint = match did_you_mean(name.get_ref(), entity_names.iter().copied()) {
            Some(best) => format!("did you mean `{best}`?"),
            None if entity_names.is_empty() => "declare it as [entities.NAME] with source and key".into(),
            None => format!("declared entities: {}", entity_names.join(", ")),
        };
        ct.error_at(
            Some(name.span()),
            format!("{what} `{}` is not a declared entity", name.get_ref()),
            Some(hint),
        )
    };
    if !config.entities.contains_key(config.project.entity.get_ref()) {
        errors.push(unknown_entity(&config.project.entity, "project entity"));
    }
    if let Some(share) = &config.project.max_unknown_share
        && !(0.0..=1.0).contains(share.get_ref())
    {
        errors.push(ct.error_at(
            Some(share.span()),
            format!("max_unknown_share = {} is not a share between 0 and 1", share.get_ref()),
            Some("write it as a fraction: 0.01 warns when more than 1% of keys match no entity".into()),
        ));
    }
    let check_source = |source: &Spanned<String>, errors: &mut Vec<ConfigError>| {
        if SourceFormat::from_path(source.get_ref()).is_none() {
            errors.push(ct.error_at(
                Some(source.span()),
                format!("unsupported file type `{}`", source.get_ref()),
                Some("use a .csv, .parquet, .jsonl or .ndjson file".into()),
            ));
        }
    };
    for (name, entity) in &config.entities {
        if !entity.source.get_ref().is_empty() && !entity.from_events {
            check_source(&entity.source, &mut errors);
        }
        rejected.report(&format!("entities.{name}.columns"), &mut errors);
        if let Some(parent) = &entity.parent {
            if !config.entities.contains_key(parent.get_ref()) {
                errors.push(unknown_entity(parent, &format!("parent of `{name}`")));
            } else if parent.get_ref() == name {
                errors.push(ct.error_at(
                    Some(parent.span()),
                    format!("entity `{name}` cannot be its own parent"),
                    None,
                ));
            }
        }
    }
    for (name, lookup) in &config.lookups {
        check_source(&lookup.source, &mut errors);
        rejected.report(&format!("lookups.{name}.columns"), &mut errors);
        if let Some(entity) = lookup.entity.as_ref().filter(|e| !config.entities.contains_key(e.get_ref())) {
            errors.push(unknown_entity(entity, &format!("entity of lookup `{name}`")));
        }
    }
    if let Some(events) = &config.events {
        check_source(&events.source, &mut errors);
        rejected.report("events.columns", &mut errors);
        if let Some(entity) = events.entity.as_ref().filter(|e| !config.entities.contains_key(e.get_ref())) {
            errors.push(unknown_entity(entity, "events entity"));
        }
    } else if let Some((name, t)) = config.traits.iter().find(|(_, t)| t.over.is_none()) {
        errors.push(ct.error_at(
            Some(t.expr.span()),
            format!("trait `{name}` is computed from events but there is no [events] section"),
            Some("add [events] with source, entity_key and time, or roll the trait up with `over`".into()),
        ));
    }
    check_traits(&ct, &config, &mut errors);
    check_derived(&ct, &config, &mut rejected, &mut errors);
    // Every rejected value has been reported in its place above; this keeps any other.
    errors.extend(rejected.0.into_iter().map(|(_, e)| e));
    if errors.is_empty() { Ok(config) } else { Err(errors) }
}

/// The offset of a `[section.name]` table header (or a `section.name` dotted key), for
/// positions of problems with a name, which TOML does not give spans for.
fn header_offset(text: &str, section: &str, name: &str) -> Option<Range<usize>> {
    let quoted = format!("{section}.\"{name}\"");
    let plain = format!("{section}.{name}");
    [quoted, plain].iter().find_map(|needle| {
        text.match_indices(needle.as_str())
            .find(|(i, _)| {
                let end = i + needle.len();
                text[end..].starts_with([']', ' ', '=', '.', '\n'])
            })
            .map(|(i, _)| i..i + needle.len())
    })
}

/// Checks a name of a segment, scheme, tier or score: not empty, no `.` (the separator of
/// `scheme.tier` segment names).
fn check_name(
    ct: &ConfigText<'_>,
    kind: &str,
    name: &str,
    span: Option<Range<usize>>,
) -> Option<ConfigError> {
    if name.is_empty() {
        return Some(ct.error_at(span, format!("a {kind} needs a name"), None));
    }
    if name.chars().any(char::is_control) {
        return Some(ct.error_at(
            span,
            format!("{kind} name {name:?} contains a control character (a line break, a tab)"),
            Some("names are written on one line; use letters, digits and `_`".into()),
        ));
    }
    if name.contains('.') {
        return Some(ct.error_at(
            span,
            format!("{kind} name `{name}` contains a `.`"),
            Some("`.` separates a scheme from its tiers (`lifecycle.at_risk`); use `_` instead".into()),
        ));
    }
    None
}

/// Trait entities and rollup sources.
fn check_traits(ct: &ConfigText<'_>, config: &ProjectConfig, errors: &mut Vec<ConfigError>) {
    let declared: Vec<&str> = config.entities.keys().map(String::as_str).collect();
    let declared_hint = || format!("declared entities: {}", declared.join(", "));
    for (name, t) in &config.traits {
        if let Some(entity) = &t.entity
            && !config.entities.contains_key(entity.get_ref())
        {
            let hint = did_you_mean(entity.get_ref(), declared.iter().copied())
                .map_or_else(declared_hint, |best| format!("did you mean `{best}`?"));
            errors.push(ct.error_at(
                Some(entity.span()),
                format!("trait `{name}`: entity `{}` is not a declared entity", entity.get_ref()),
                Some(hint),
            ));
            continue;
        }
        let Some(over) = &t.over else { continue };
        let owner = config.trait_entity(name);
        match over.get_ref() {
            RollupTarget::Children | RollupTarget::Descendants => {
                if owner.is_some_and(|o| config.entities.get(o).is_some_and(|e| e.hierarchy.is_none())) {
                    errors.push(ct.error_at(
                        Some(over.span()),
                        format!(
                            "trait `{name}`: `over = \"{}\"` needs a hierarchy on entity `{}`",
                            over.get_ref(),
                            owner.unwrap_or_default()
                        ),
                        Some(format!(
                            "add `hierarchy = \"PARENT_KEY_COLUMN\"` to [entities.{}]",
                            owner.unwrap_or_default()
                        )),
                    ));
                }
            }
            RollupTarget::Entity(child) => match config.entities.get(child) {
                None => {
                    let children: Vec<&str> = config
                        .entities
                        .iter()
                        .filter(|(_, e)| e.parent.as_ref().map(|p| p.get_ref().as_str()) == owner)
                        .map(|(name, _)| name.as_str())
                        .collect();
                    let mut candidates = children.clone();
                    candidates.extend(["children", "descendants"]);
                    let hint = did_you_mean(child, candidates.iter().copied()).map_or_else(
                        || match children.is_empty() {
                            true => "use `children` or `descendants` (with a hierarchy), or an entity whose parent is this one".to_string(),
                            false => format!("use a child entity ({}), `children` or `descendants`", children.join(", ")),
                        },
                        |best| format!("did you mean `{best}`?"),
                    );
                    errors.push(ct.error_at(
                        Some(over.span()),
                        format!("trait `{name}`: `over = \"{child}\"` is not a declared entity"),
                        Some(hint),
                    ));
                }
                Some(child_config) => {
                    let parent = child_config.parent.as_ref().map(|p| p.get_ref().as_str());
                    if parent.is_none() || parent != owner {
                        errors.push(ct.error_at(
                            Some(over.span()),
                            match parent {
                                None => format!(
                                    "trait `{name}`: a rollup over `{child}` needs `{child}` to have a parent"
                                ),
                                Some(p) => format!(
                                    "trait `{name}` belongs to `{}` but `{child}` rolls up to `{p}`",
                                    owner.unwrap_or_default()
                                ),
                            },
                            Some(format!(
                                "a rollup over `{child}` belongs to its parent entity; set `parent` on [entities.{child}] or the trait's `entity`"
                            )),
                        ));
                    }
                }
            },
        }
    }
}

/// Segments, schemes, scores and RFM: names, references, shapes.
fn check_derived(
    ct: &ConfigText<'_>,
    config: &ProjectConfig,
    rejected: &mut Rejected,
    errors: &mut Vec<ConfigError>,
) {
    let segment_names = config.segment_names();
    for (name, segment) in &config.segments {
        let span = header_offset(ct.0, "segments", name);
        errors.extend(check_name(ct, "segment", name, span.clone()));
        match (&segment.rule, &segment.static_list) {
            (Some(_), Some(list)) => errors.push(ct.error_at(
                Some(list.span()),
                format!("segment `{name}` has both a `rule` and a `static` list"),
                Some("a segment is either a rule or a static list; split it in two".into()),
            )),
            (None, None) => errors.push(ct.error_at(
                span.clone(),
                format!("segment `{name}` has neither a `rule` nor a `static` list"),
                Some("add `rule = \"...\"`, or `static = \"lists/NAME.csv\"` for a list of ids".into()),
            )),
            (None, Some(list)) => {
                if SourceFormat::from_path(list.get_ref()) != Some(SourceFormat::Csv) {
                    errors.push(ct.error_at(
                        Some(list.span()),
                        format!("static list `{}` is not a .csv file", list.get_ref()),
                        Some("a static list is a CSV file with an `entity_id` column".into()),
                    ));
                }
                if let Some(parent) = &segment.parent {
                    errors.push(ct.error_at(
                        Some(parent.span()),
                        format!("static segment `{name}` cannot have a parent"),
                        Some("a static list holds exactly its ids; use a rule segment with in_segment() to intersect".into()),
                    ));
                }
            }
            (Some(_), None) => {}
        }
        if let Some(parent) = &segment.parent
            && !segment_names.iter().any(|s| s == parent.get_ref())
        {
            let hint = did_you_mean(parent.get_ref(), segment_names.iter().map(String::as_str))
                .map(|best| format!("did you mean `{best}`?"));
            errors.push(ct.error_at(
                Some(parent.span()),
                format!("segment `{name}`: parent `{}` is not a segment", parent.get_ref()),
                hint,
            ));
        }
    }
    for (name, movement) in &config.movements {
        let span = header_offset(ct.0, "movements", name);
        errors.extend(check_name(ct, "movement", name, span.clone()));
        if config.segments.contains_key(name) {
            errors.push(ct.error_at(
                span.clone(),
                format!("movement `{name}` has the name of a segment"),
                Some("movements are segments too: give it a name of its own".into()),
            ));
        }
        if movement.from.is_none() && movement.to.is_none() {
            errors.push(ct.error_at(
                span.clone(),
                format!("movement `{name}` has neither `from` nor `to`"),
                Some("add from = \"SEGMENT\" and/or to = \"SEGMENT\" (a segment, `scheme.tier` or `rfm.…`)".into()),
            ));
        }
        for end in [&movement.from, &movement.to].into_iter().flatten() {
            let target = end.get_ref();
            let known = segment_names.iter().any(|s| s == target) && !config.movements.contains_key(target);
            if !known {
                let candidates = segment_names.iter().filter(|s| !config.movements.contains_key(*s));
                let hint = did_you_mean(target, candidates.map(String::as_str))
                    .map(|best| format!("did you mean `{best}`?"))
                    .or_else(|| Some("a movement goes between segments, scheme tiers (`scheme.tier`) or RFM segments; not other movements".into()));
                errors.push(ct.error_at(
                    Some(end.span()),
                    format!("movement `{name}`: `{target}` is not a segment"),
                    hint,
                ));
            }
        }
    }
    if let Some(coverage) = &config.coverage {
        let span =
            header_offset(ct.0, "coverage", "models").or_else(|| ct.0.find("[coverage]").map(|i| i..i + 10));
        if coverage.models.is_empty() {
            errors.push(ct.error_at(
                span,
                "[coverage] has no engagement models".into(),
                Some("add [[coverage.models]] with name, rule (or segment) and accounts_per_csm".into()),
            ));
        }
        let mut seen: Vec<&str> = Vec::new();
        for model in &coverage.models {
            let model_name = model.name.get_ref().as_str();
            errors.extend(check_name(ct, "engagement model", model_name, Some(model.name.span())));
            if seen.contains(&model_name) {
                errors.push(ct.error_at(
                    Some(model.name.span()),
                    format!("[coverage] has two models named `{model_name}`"),
                    None,
                ));
            }
            seen.push(model_name);
            if model.rule.is_some() == model.segment.is_some() {
                errors.push(ct.error_at(
                    Some(model.name.span()),
                    format!("engagement model `{model_name}` needs exactly one of `rule` and `segment`"),
                    Some("rule = \"arr >= 50000\" or segment = \"strategic_accounts\"".into()),
                ));
            }
            if let Some(segment) = &model.segment
                && !segment_names.iter().any(|s| s == segment.get_ref())
            {
                let hint = did_you_mean(segment.get_ref(), segment_names.iter().map(String::as_str))
                    .map(|best| format!("did you mean `{best}`?"));
                errors.push(ct.error_at(
                    Some(segment.span()),
                    format!("engagement model `{model_name}`: `{}` is not a segment", segment.get_ref()),
                    hint,
                ));
            }
            if *model.accounts_per_csm.get_ref() == 0 {
                errors.push(ct.error_at(
                    Some(model.accounts_per_csm.span()),
                    format!("engagement model `{model_name}`: accounts_per_csm must be at least 1"),
                    Some("from 10 to 100 in a high-touch model, 1,000 or more in a tech-touch model".into()),
                ));
            }
        }
    }
    for (name, scheme) in &config.schemes {
        let span = header_offset(ct.0, "schemes", name);
        errors.extend(check_name(ct, "scheme", name, span.clone()));
        if scheme.tiers.is_empty() {
            errors.push(ct.error_at(
                span,
                format!("scheme `{name}` has no tiers"),
                Some("add tiers = [{ name = \"...\", rule = \"...\" }, ...]".into()),
            ));
        }
        let mut seen: Vec<&str> = Vec::new();
        for tier in scheme.tiers.iter().map(|t| &t.name).chain([&scheme.otherwise]) {
            let tier_name = tier.get_ref().as_str();
            errors.extend(check_name(ct, "tier", tier_name, Some(tier.span())));
            if seen.contains(&tier_name) {
                errors.push(ct.error_at(
                    Some(tier.span()),
                    format!("scheme `{name}` has two tiers named `{tier_name}`"),
                    Some("every tier (and `otherwise`) needs its own name".into()),
                ));
            }
            seen.push(tier_name);
        }
    }
    for (name, score) in &config.scores {
        let span = header_offset(ct.0, "scores", name);
        errors.extend(check_name(ct, "score", name, span.clone()));
        if score.rules.is_empty() && score.events.is_empty() {
            errors.push(ct.error_at(
                span.clone(),
                format!("score `{name}` has neither `rules` nor `events`"),
                Some("add rules = [{ rule = \"...\", points = 10 }] or events = [{ where = \"...\", points = 1 }]".into()),
            ));
        }
        if let (Some(min), Some(max)) = (score.min, score.max)
            && min > max
        {
            errors.push(ct.error_at(
                span.clone(),
                format!("score `{name}`: min {min} is above max {max}"),
                None,
            ));
        }
        let numbers = score.rules.iter().map(|r| r.points).chain(score.events.iter().map(|e| e.points));
        if numbers.chain(score.min).chain(score.max).any(|v| !v.is_finite()) {
            errors.push(ct.error_at(span, format!("score `{name}`: points and bounds must be finite"), None));
        }
        // Half lives and windows that are not windows.
        rejected.report(&format!("scores.{name}.events"), errors);
    }
    if let Some(rfm) = &config.rfm {
        if config.events.is_none() {
            errors.push(ct.error_at(
                Some(rfm.purchase.span()),
                "[rfm] needs events, and there is no [events] section".into(),
                Some("add [events] with source, entity_key and time".into()),
            ));
        }
        rejected.report("rfm.within", errors);
        rejected.report("rfm.frequency", errors);
        rejected.report("rfm.thresholds", errors);
    }
    if let Some(clv) = &config.clv {
        check_clv(ct, config, clv, rejected, errors);
    }
    if let Some(churn) = &config.churn {
        check_churn(ct, config, churn, rejected, errors);
    }
    // Traits, scores, schemes and RFM values are all columns that rules read by name.
    let mut columns: Vec<(&str, &str)> = Vec::new();
    let rfm = config.rfm.iter().flat_map(|_| RFM_TRAITS.iter().map(|t| (*t, "an [rfm] trait")));
    let clv_names = config.clv.as_ref().map(ClvConfig::trait_names).unwrap_or_default();
    let predictive = clv_names
        .iter()
        .map(|n| (n.as_str(), "a [clv] trait"))
        .chain(config.churn.iter().flat_map(|_| CHURN_TRAITS.iter().map(|t| (*t, "a [churn] trait"))));
    let all = config
        .traits
        .keys()
        .map(|n| (n.as_str(), "a trait"))
        .chain(config.scores.keys().map(|n| (n.as_str(), "a score")))
        .chain(config.schemes.keys().map(|n| (n.as_str(), "a scheme")))
        .chain(rfm)
        .chain(predictive);
    for (name, kind) in all {
        if let Some((_, other)) = columns.iter().find(|(n, _)| *n == name) {
            errors.push(ConfigError {
                message: format!("`{name}` is both {other} and {kind}"),
                line: None,
                column: None,
                hint: Some("give one of them another name".into()),
            });
        }
        columns.push((name, kind));
    }
    for name in config.traits.keys() {
        if config.segments.contains_key(name) {
            errors.push(ConfigError {
                message: format!("`{name}` is both a trait and a segment"),
                line: None,
                column: None,
                hint: Some("give one of them another name".into()),
            });
        }
    }
}

/// `[clv]`: events, the unit, the horizon and the numbers.
fn check_clv(
    ct: &ConfigText<'_>,
    config: &ProjectConfig,
    clv: &ClvConfig,
    rejected: &mut Rejected,
    errors: &mut Vec<ConfigError>,
) {
    let at = Some(clv.purchase.span());
    if config.events.is_none() {
        errors.push(ct.error_at(
            at.clone(),
            "[clv] needs events, and there is no [events] section".into(),
            Some("add [events] with source, entity_key and time".into()),
        ));
    }
    rejected.report("clv.time_unit", errors);
    rejected.report("clv.horizon", errors);
    let mut number = |ok: bool, what: String, hint: &str| {
        if !ok {
            errors.push(ct.error_at(at.clone(), format!("[clv] {what}"), Some(hint.into())));
        }
    };
    if let Some(months) = clv.months {
        number((1..=1200).contains(&months), format!("months = {months} is out of range"), "use 1 to 1200");
    }
    if let Some(rate) = clv.discount_rate {
        number(
            rate.is_finite() && (0.0..1.0).contains(&rate),
            format!("discount_rate = {rate} is out of range"),
            "a monthly rate in [0, 1), e.g. 0.01",
        );
    }
    if let Some(penalizer) = clv.penalizer {
        number(
            penalizer.is_finite() && penalizer >= 0.0,
            format!("penalizer = {penalizer} is negative or not finite"),
            "use 0 (the default) or a small positive number such as 0.001",
        );
    }
    for (name, share) in
        [("bottom_value_share", clv.bottom_value_share), ("top_clv_share", clv.top_clv_share)]
    {
        if let Some(share) = share {
            number(
                (0.0..=1.0).contains(&share),
                format!("{name} = {share} is not a share"),
                "use a number in [0, 1]",
            );
        }
    }
}

/// `[churn]`: events, the window, the features and the numbers.
fn check_churn(
    ct: &ConfigText<'_>,
    config: &ProjectConfig,
    churn: &ChurnConfig,
    rejected: &mut Rejected,
    errors: &mut Vec<ConfigError>,
) {
    let at = churn.span();
    rejected.report("churn.definition", errors);
    if config.events.is_none() {
        errors.push(ct.error_at(
            at.clone(),
            "[churn] needs events, and there is no [events] section".into(),
            Some("add [events] with source, entity_key and time".into()),
        ));
    }
    // A window that is not one, or is longer than MAX_CHURN_WINDOW_DAYS.
    rejected.report("churn.window", errors);
    if churn.features.is_empty() {
        errors.push(ct.error_at(
            at.clone(),
            "[churn] features is empty".into(),
            Some("name the attributes and traits the model reads, e.g. features = [\"logins_30d\", \"tickets_90d\"]".into()),
        ));
    }
    for (i, feature) in churn.features.iter().enumerate() {
        if churn.features[..i].iter().any(|f| f.get_ref().trim() == feature.get_ref().trim()) {
            errors.push(ct.error_at(
                Some(feature.span()),
                format!("[churn] feature `{}` is named twice", feature.get_ref()),
                Some("name each feature once".into()),
            ));
        }
    }
    if let Some(penalty) = churn.l2_penalty
        && !(penalty.is_finite() && penalty >= 0.0)
    {
        errors.push(ct.error_at(
            at.clone(),
            format!("[churn] l2_penalty = {penalty} is negative or not finite"),
            Some("use 1.0 (the default) or another non-negative number".into()),
        ));
    }
    if let Some(drivers) = churn.drivers
        && drivers > 20
    {
        errors.push(ct.error_at(
            at,
            format!("[churn] drivers = {drivers} is too many"),
            Some("use 0 to 20".into()),
        ));
    }
}

impl ProjectConfig {
    /// Every segment name: user segments, `scheme.tier` for each scheme tier, and `rfm.NAME`
    /// for the RFM segments when `[rfm]` is declared.
    pub fn segment_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.segments.keys().cloned().collect();
        for (scheme, config) in &self.schemes {
            for tier in config.tiers.iter().map(|t| &t.name).chain([&config.otherwise]) {
                names.push(format!("{scheme}.{}", tier.get_ref()));
            }
        }
        if self.rfm.is_some() {
            names.extend(crate::rfm::RfmSegment::ALL.iter().map(|s| s.segment_name()));
        }
        if self.clv.is_some() {
            names.push(DIAMONDS_SEGMENT.to_string());
        }
        names.extend(self.movements.keys().cloned());
        names
    }

    /// The entity a trait belongs to: its `entity`, else the parent of the child entity a
    /// rollup runs over, else the project's entity. `None` for an unknown trait.
    pub fn trait_entity(&self, name: &str) -> Option<&str> {
        let t = self.traits.get(name)?;
        if let Some(entity) = &t.entity {
            return Some(entity.get_ref());
        }
        let over_child = t.over.as_ref().and_then(|o| match o.get_ref() {
            RollupTarget::Entity(child) => self.entities.get(child),
            RollupTarget::Children | RollupTarget::Descendants => None,
        });
        if let Some(parent) = over_child.and_then(|child| child.parent.as_ref()) {
            return Some(parent.get_ref());
        }
        Some(self.project.entity.get_ref())
    }

    /// The name of the entity the events belong to.
    pub fn events_entity(&self) -> Option<&str> {
        let events = self.events.as_ref()?;
        if let Some(entity) = &events.entity {
            return Some(entity.get_ref());
        }
        let by_key = self.entities.iter().find(|(_, e)| e.key == events.entity_key);
        Some(by_key.map_or(self.project.entity.get_ref().as_str(), |(name, _)| name.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[project]
name = "acme"
entity = "account"

[entities.account]
source = "data/accounts.csv"
key = "account_id"
columns = { employees = "int" }

[events]
source = "data/events.parquet"
entity_key = "account_id"
time = "ts"
type = "event_type"

[traits]
purchases_90d = "count() where event_type = 'purchase' within 90d"
revenue = { expr = "sum(amount)", description = "all revenue" }

[segments.big]
rule = "employees >= 1000"
"#;

    fn check_error(text: &str, expected_message: &str, expected_hint: Option<&str>, line: usize) {
        let errors = parse_project(text).expect_err("config must be rejected");
        let first = &errors[0];
        assert!(
            first.message.contains(expected_message),
            "message {:?} lacks {expected_message:?}",
            first.message
        );
        assert_eq!(
            first.hint.as_deref().map(|h| h.contains(expected_hint.unwrap_or(""))),
            expected_hint.map(|_| true),
            "{first}"
        );
        assert_eq!(first.line, Some(line), "{first}");
    }

    #[test]
    fn minimal_project_parses_in_order() {
        let config = parse_project(MINIMAL).expect("valid");
        assert_eq!(config.project.entity.get_ref(), "account");
        let traits: Vec<&str> = config.traits.keys().map(String::as_str).collect();
        assert_eq!(traits, ["purchases_90d", "revenue"]);
        assert_eq!(config.traits["revenue"].expr().get_ref(), "sum(amount)");
        assert_eq!(config.events_entity(), Some("account"));
    }

    #[test]
    fn unknown_key_has_a_did_you_mean() {
        let text = MINIMAL.replace("entity = \"account\"", "entiy = \"account\"");
        check_error(&text, "unknown field `entiy`", Some("did you mean `entity`?"), 4);
    }

    #[test]
    fn unknown_entity_reference() {
        let text = MINIMAL.replace("entity = \"account\"", "entity = \"acount\"");
        check_error(&text, "project entity `acount` is not a declared entity", Some("`account`"), 4);
    }

    #[test]
    fn bad_column_type_and_extension() {
        let text = MINIMAL.replace("\"int\"", "\"integr\"");
        check_error(&text, "column `employees`: unknown type `integr`", None, 9);
        let text = MINIMAL.replace("accounts.csv", "accounts.xlsx");
        check_error(&text, "unsupported file type", Some(".parquet"), 7);
    }

    #[test]
    fn models_sections_parse() {
        let text = format!(
            "{MINIMAL}{}",
            r#"
[schemes.tier]
otherwise = "rest"
tiers = [{ name = "top", rule = "employees > 10", description = "big" }]

[rfm]
purchase = "event_type = 'purchase'"
amount = "amount"

[scores.fit]
max = 100
rules = [{ rule = "employees > 10", points = 5 }]
events = [{ where = "event_type = 'login'", points = 1.5, half_life = "14d", max = 10 }]

[segments.vip]
static = "lists/vip.csv"

[segments.micro]
parent = "tier.top"
rule = "employees > 100"
"#
        );
        let config = parse_project(&text).expect("valid");
        assert_eq!(config.scores["fit"].events[0].points, 1.5);
        let names = config.segment_names();
        for name in ["big", "vip", "micro", "tier.top", "tier.rest", "rfm.champions", "rfm.no_purchases"] {
            assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
        }
    }

    #[test]
    fn models_sections_errors() {
        let add = |extra: &str| format!("{MINIMAL}{extra}");
        check_error(
            &add("[segments.both]\nrule = \"x\"\nstatic = \"l.csv\"\n"),
            "segment `both` has both a `rule` and a `static` list",
            Some("split it"),
            25,
        );
        check_error(
            &add("[segments.none]\ndescription = \"x\"\n"),
            "neither a `rule` nor",
            Some("static"),
            23,
        );
        check_error(
            &add("[segments.\"a.b\"]\nrule = \"x\"\n"),
            "segment name `a.b` contains a `.`",
            Some("`_`"),
            23,
        );
        // An escaped line break in a quoted key: refused (the key's position is not found in
        // the text, which holds the escape).
        let errors = parse_project(&add("[segments.\"a\\nb\"]\nrule = \"x\"\n")).expect_err("refused");
        assert!(errors[0].message.contains("contains a control character"), "{}", errors[0]);
        check_error(
            &add("[segments.m]\nrule = \"x\"\nparent = \"bigg\"\n"),
            "parent `bigg` is not a segment",
            Some("did you mean `big`?"),
            25,
        );
        check_error(
            &add("[schemes.s]\notherwise = \"a\"\ntiers = [{ name = \"a\", rule = \"x\" }]\n"),
            "scheme `s` has two tiers named `a`",
            Some("own name"),
            24,
        );
        check_error(
            &add("[scores.s]\nevents = [{ where = \"x\", points = 1, half_life = \"2y\" }]\n"),
            "score `s`: half_life: invalid window `2y`",
            Some("90d"),
            24,
        );
        check_error(
            &add("[scores.s]\nmin = 5\nmax = 1\nrules = []\n"),
            "neither `rules` nor `events`",
            Some("points = 10"),
            23,
        );
        let text = MINIMAL.replace(
            "revenue = { expr = \"sum(amount)\", description = \"all revenue\" }",
            "revenue = { expr = \"sum(amount)\", over = \"contacts\" }",
        );
        check_error(&text, "`over = \"contacts\"` is not a declared entity", Some("`children`"), 19);
        let text = MINIMAL.replace("description = \"all revenue\"", "over = \"children\"");
        check_error(&text, "needs a hierarchy on entity `account`", Some("hierarchy ="), 19);
        let text = MINIMAL.replace("description = \"all revenue\"", "entty = \"x\"");
        check_error(&text, "unknown field `entty`", Some("did you mean `entity`?"), 19);
        check_error(
            &add("[rfm]\npurchase = \"x\"\namount = \"a\"\nwithin = \"0d\"\n"),
            "window `0d` is empty",
            Some("90d"),
            26,
        );
    }

    /// The typed values of a project, one per line, for comparing with `check`.
    fn typed_values(config: &ProjectConfig) -> String {
        let mut out = Vec::new();
        let columns = config
            .entities
            .iter()
            .map(|(name, e)| (name.as_str(), &e.columns))
            .chain(config.events.iter().map(|e| ("events", &e.columns)));
        for (owner, columns) in columns {
            for (column, ty) in columns {
                out.push(format!("{owner}.{column}: {:?}", ty.get_ref()));
            }
        }
        for (name, t) in &config.traits {
            if let Some(over) = &t.over {
                out.push(format!("trait {name} over {:?}", over.get_ref()));
            }
        }
        if let Some(within) = config.rfm.as_ref().and_then(|r| r.within.as_ref()) {
            out.push(format!("rfm {}", within.get_ref()));
        }
        if let Some(rfm) = &config.rfm {
            let t = &rfm.thresholds;
            for (key, cuts) in
                [("recency_days", &t.recency_days), ("frequency", &t.frequency), ("monetary", &t.monetary)]
            {
                if let Some(cuts) = cuts {
                    out.push(format!("rfm thresholds {key} {:?}", cuts.get_ref().cuts()));
                }
            }
            if rfm.frequency.is_some() {
                out.push(format!("rfm frequency {}", rfm.frequency()));
            }
        }
        for (name, score) in &config.scores {
            for line in &score.events {
                let half_life = line.half_life.as_ref().map(|w| w.get_ref().to_string());
                let within = line.within.as_ref().map(|w| w.get_ref().to_string());
                out.push(format!("score {name} half_life {half_life:?} within {within:?}"));
            }
        }
        if let Some(clv) = &config.clv {
            out.push(format!("clv {:?} {} {}", clv.time_unit(), clv.horizon(), clv.horizon_text()));
        }
        if let Some(churn) = &config.churn {
            out.push(format!("churn {}", churn.window()));
            if let Some(ChurnDefinition::Inactive { period, activity }) = churn.definition() {
                out.push(format!("churn inactive {period} activity {:?}", activity.map(|a| a.get_ref())));
            }
        }
        out.join("\n")
    }

    /// Parses `text` and compares its typed values, or else every error (`line:column:
    /// message` and hint), with `expected`.
    fn check(text: &str, expected: &str) {
        let actual = match parse_project(text) {
            Ok(config) => typed_values(&config),
            Err(errors) => errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"),
        };
        assert_eq!(actual, expected.trim(), "{text}");
    }

    const CLV: &str = "[clv]\npurchase = \"event_type = 'purchase'\"\namount = \"amount\"\n";
    const CHURN: &str = "[churn]\nchurned = \"event_type = 'cancel'\"\nfeatures = [\"employees\"]\n";

    #[test]
    fn typed_values_parse_into_their_types() {
        let text = MINIMAL.replace(
            "columns = { employees = \"int\" }",
            "columns = { employees = \"int\", since = \"Date\" }\nhierarchy = \"parent_id\"",
        );
        let extra = r#"
[entities.contact]
source = "data/contacts.csv"
key = "contact_id"
parent = "account"
columns = { age = "integer" }

[traits.contacts]
expr = "count()"
over = "contact"

[traits.tree_revenue]
expr = "sum(revenue)"
over = "descendants"

[traits.kids]
expr = "count()"
over = "children"

[rfm]
purchase = "event_type = 'purchase'"
amount = "amount"
within = "365d"

[scores.engagement]
events = [{ where = "event_type = 'login'", points = 1, half_life = "2w", within = "36h" }]

[clv]
purchase = "event_type = 'purchase'"
amount = "amount"
time_unit = "day"
horizon = " 12W "

[churn]
churned = "event_type = 'cancel'"
features = ["employees"]
window = "8w"
"#;
        check(
            &format!("{text}{extra}"),
            r#"
account.employees: Int
account.since: Date
contact.age: Int
trait contacts over Entity("contact")
trait tree_revenue over Descendants
trait kids over Children
rfm within 365d
score engagement half_life Some("2w") within Some("within 36h")
clv Day 12w 12w
churn 8w
"#,
        );
    }

    #[test]
    fn absent_keys_take_the_documented_defaults() {
        check(&format!("{MINIMAL}{CLV}{CHURN}"), "account.employees: Int\nclv Week 90d 90d\nchurn 90d");
    }

    // Issue #10: the engine used to fall back silently (week, 90d, no window, an inferred
    // column type) when one of these values did not parse; each is a located error now.
    #[test]
    fn issue_10_bad_time_unit_and_horizon_are_located_errors() {
        check(
            &format!("{MINIMAL}{CLV}time_unit = \"month\"\nhorizon = \"3m\"\n"),
            "
26:13: [clv] time_unit: `month` is not a time unit
  hint: use `day` or `week` (the default)
27:11: [clv] horizon: invalid window `3m`
  hint: write a whole number followed by h, d or w, e.g. 90d
",
        );
        // Units are exact, as they always were.
        check(
            &format!("{MINIMAL}{CLV}time_unit = \"Day\"\n"),
            "26:13: [clv] time_unit: `Day` is not a time unit\n  hint: use `day` or `week` (the default)",
        );
    }

    #[test]
    fn issue_10_bad_windows_and_half_lives_are_located_errors() {
        check(
            &format!(
                "{MINIMAL}[rfm]\npurchase = \"x\"\namount = \"a\"\nwithin = \"1x\"\n\
                 [scores.s]\nevents = [{{ where = \"x\", points = 1, half_life = \"14\", within = \"-3d\" }}]\n"
            ),
            "
28:50: score `s`: half_life: window `14` has no unit
  hint: write a whole number followed by h, d or w, e.g. 90d
28:65: score `s`: within: invalid window `-3d`
  hint: write a whole number followed by h, d, w, mo or y, e.g. 90d or 6mo
26:10: [rfm] within: invalid window `1x`
  hint: write a whole number followed by h, d, w, mo or y, e.g. 90d or 6mo
",
        );
    }

    const RFM: &str = "[rfm]\npurchase = \"event_type = 'purchase'\"\namount = \"amount\"\n";

    // Issue #11: fixed RFM cut points per dimension, and what the frequency counts.
    #[test]
    fn issue_11_rfm_thresholds_and_frequency_parse() {
        check(
            &format!(
                "{MINIMAL}{RFM}frequency = \"repeat_days\"\n[rfm.thresholds]\n\
                 recency_days = [30, 90, 180, 365]\nmonetary = [100, 500.5, 1000, 5000]\n"
            ),
            "
account.employees: Int
rfm thresholds recency_days [30.0, 90.0, 180.0, 365.0]
rfm thresholds monetary [100.0, 500.5, 1000.0, 5000.0]
rfm frequency repeat_days
",
        );
        // Absent: quintiles everywhere, purchases counted.
        let config = parse_project(&format!("{MINIMAL}{RFM}")).expect("valid");
        let rfm = config.rfm.expect("[rfm]");
        assert_eq!(rfm.frequency(), RfmFrequency::Purchases);
        assert_eq!(rfm.thresholds.scoring(), (Scoring::Quintiles, Scoring::Quintiles, Scoring::Quintiles));
    }

    #[test]
    fn issue_11_bad_rfm_thresholds_are_located_errors() {
        // Each error points at the offending cut point, or at the list when its length is wrong;
        // every problem is reported.
        check(
            &format!(
                "{MINIMAL}{RFM}frequency = \"orders\"\n[rfm.thresholds]\nrecency_days = [30, 90, 90, 365]\n\
                 frequency = [1, 2, 4]\nmonetary = [100, 50, 1000, 5000]\n"
            ),
            "
26:13: [rfm] frequency: `orders` is not a frequency
  hint: use `purchases` (purchase events, the default) or `repeat_days` (purchase days after the first, as clv_frequency)
28:25: [rfm.thresholds] recency_days: cut point 90 is not above the one before it (90)
  hint: give 4 ascending cut points, each the upper end (inclusive) of a band, e.g. recency_days = [30, 90, 180, 365]
29:13: [rfm.thresholds] frequency: 3 cut points given, 4 needed (one between each two of the 5 scores)
  hint: give 4 ascending cut points, each the upper end (inclusive) of a band, e.g. frequency = [1, 2, 4, 8]
30:18: [rfm.thresholds] monetary: cut point 50 is not above the one before it (100)
  hint: give 4 ascending cut points, each the upper end (inclusive) of a band, e.g. monetary = [100, 500, 1000, 5000]
",
        );
        check(
            &format!("{MINIMAL}{RFM}[rfm.thresholds]\nrecency_days = [-30, 90, 180, 365]\n"),
            "27:17: [rfm.thresholds] recency_days: cut point -30 is below 0\n  hint: give 4 ascending cut points, each the upper end (inclusive) of a band, e.g. recency_days = [30, 90, 180, 365]",
        );
        check_error(
            &format!("{MINIMAL}{RFM}[rfm.thresholds]\nrecency = [30, 90, 180, 365]\n"),
            "unknown field `recency`",
            Some("did you mean `recency_days`?"),
            27,
        );
    }

    const INACTIVE: &str = "[churn]\ninactive = \"60d\"\nfeatures = [\"employees\"]\n";

    // Issue #11: churn as a period without activity, for businesses without a cancellation event.
    #[test]
    fn issue_11_churn_by_inactivity_parses() {
        check(
            &format!("{MINIMAL}{INACTIVE}activity = \"event_type = 'purchase'\"\n"),
            "account.employees: Int\nchurn 60d\nchurn inactive 60d activity Some(\"event_type = 'purchase'\")",
        );
        check(
            &format!("{MINIMAL}{INACTIVE}"),
            "account.employees: Int\nchurn 60d\nchurn inactive 60d activity None",
        );
        let config = parse_project(&format!("{MINIMAL}{CHURN}")).expect("valid");
        let churn = config.churn.expect("[churn]");
        assert!(
            matches!(churn.definition(), Some(ChurnDefinition::Event(c)) if c.get_ref() == "event_type = 'cancel'")
        );
    }

    #[test]
    fn issue_11_churn_definition_errors_are_located() {
        check(
            &format!("{MINIMAL}{INACTIVE}churned = \"event_type = 'cancel'\"\nwindow = \"30d\"\n"),
            "
24:12: [churn] has both `churned` and `inactive`
  hint: churn is either a churn event (churned = \"event_type = 'cancel'\") or a period without activity (inactive = \"90d\"): keep one
27:10: [churn] window cannot be given with `inactive`: the inactivity period is the window
  hint: remove window: inactive = \"90d\" predicts who goes 90 days without activity
",
        );
        check(
            &format!("{MINIMAL}[churn]\nfeatures = [\"employees\"]\nactivity = \"event_type = 'login'\"\n"),
            "
24:13: [churn] does not say what churn is
  hint: add churned = \"CONDITION\" (the event of a cancellation) or inactive = \"90d\" (no activity for 90 days)
25:12: [churn] activity is only read with `inactive`
  hint: add inactive = \"90d\" (churned = no activity for 90 days), or remove activity
",
        );
        check(
            &format!("{MINIMAL}{}", INACTIVE.replace("60d", "ninety")),
            "24:12: [churn] inactive: invalid window `ninety`\n  hint: write a whole number followed by h, d or w, e.g. 90d",
        );
        check(
            &format!("{MINIMAL}{}", INACTIVE.replace("60d", "2000w")),
            "24:12: [churn] inactive `2000w` is longer than 10000 days\n  hint: the model trains on what happened within two windows before the as-of date: use e.g. 90d",
        );
    }

    #[test]
    fn issue_10_bad_churn_windows_are_located_errors() {
        check(
            &format!("{MINIMAL}{CHURN}window = \"ninety days\"\n"),
            "26:10: [churn] window: invalid window `ninety days`\n  hint: write a whole number followed by h, d or w, e.g. 90d",
        );
        check(
            &format!("{MINIMAL}{CHURN}window = \"1500w\"\n"),
            "26:10: [churn] window `1500w` is longer than 10000 days\n  hint: the model trains on what happened within two windows before the as-of date: use e.g. 90d",
        );
    }

    #[test]
    fn issue_10_bad_column_types_are_located_errors() {
        // The message lists the accepted names; there is no separate hint.
        let text = MINIMAL.replace("\"int\"", "\"integr\"");
        check(
            &text,
            "9:25: column `employees`: unknown type `integr`; use one of string, int, float, bool, date, timestamp",
        );
        let text =
            text.replace("type = \"event_type\"", "type = \"event_type\"\ncolumns = { amount = \"money\" }");
        check(
            &text,
            "
9:25: column `employees`: unknown type `integr`; use one of string, int, float, bool, date, timestamp
16:22: column `amount`: unknown type `money`; use one of string, int, float, bool, date, timestamp
",
        );
    }

    #[test]
    fn issue_10_over_an_undeclared_entity_is_a_located_error() {
        let text = MINIMAL.replace("description = \"all revenue\"", "over = \"contacts\"");
        check(
            &text,
            "19:42: trait `revenue`: `over = \"contacts\"` is not a declared entity\n  hint: use `children` or `descendants` (with a hierarchy), or an entity whose parent is this one",
        );
    }

    #[test]
    fn rule_offsets_map_to_file_positions() {
        let config = parse_project(MINIMAL).expect("valid");
        let rule = config.segments["big"].rule.as_ref().expect("a rule segment");
        let ct = ConfigText(MINIMAL);
        // `>=` is at byte 10 of the rule.
        let (line, column) = ct.line_col(ct.value_offset(&rule.span(), 10));
        assert_eq!((line, column), (22, 19));
    }
}
