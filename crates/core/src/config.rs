//! The project file `segmenta.toml`: its typed model, parsing with positions, and the checks
//! that need no data (unknown keys, references between sections, type names, file extensions).
//!
//! Every key is documented in `docs/project-file.md`; keep the two in step.

use std::ops::Range;

use indexmap::IndexMap;
use serde::Deserialize;
use toml::Spanned;

use crate::ValueType;

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
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    /// `[project]`.
    pub project: ProjectSection,
    /// `[entities.NAME]`, in file order.
    #[serde(default)]
    pub entities: IndexMap<String, EntityConfig>,
    /// `[events]`, optional: a project without events has no traits.
    pub events: Option<EventsConfig>,
    /// `[traits]`: name to trait expression, in file order.
    #[serde(default, deserialize_with = "deserialize_traits")]
    pub traits: IndexMap<String, TraitConfig>,
    /// `[segments.NAME]`, in file order.
    #[serde(default)]
    pub segments: IndexMap<String, SegmentConfig>,
    /// `[schemes.NAME]`: ordered tiers, first match wins, in file order.
    #[serde(default)]
    pub schemes: IndexMap<String, SchemeConfig>,
    /// `[rfm]`: built-in recency / frequency / monetary scoring.
    #[serde(default)]
    pub rfm: Option<RfmConfig>,
    /// `[scores.NAME]`: points per rule and per event, in file order.
    #[serde(default)]
    pub scores: IndexMap<String, ScoreConfig>,
    /// `[clv]`: customer lifetime value (BG/NBD + Gamma-Gamma) as traits.
    #[serde(default)]
    pub clv: Option<ClvConfig>,
    /// `[churn]`: churn propensity (logistic regression on traits) as a trait.
    #[serde(default)]
    pub churn: Option<ChurnConfig>,
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
}

/// `[entities.NAME]`: a table of customers (accounts, contacts, ...).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntityConfig {
    /// Data file, relative to the project folder.
    pub source: Spanned<String>,
    /// Column holding the unique entity id.
    pub key: String,
    /// Type overrides; other columns are inferred.
    #[serde(default)]
    pub columns: IndexMap<String, Spanned<String>>,
    /// Parent entity: this entity's rows carry the parent's key column.
    #[serde(default)]
    pub parent: Option<Spanned<String>>,
    /// A column holding the key of the parent row in the same table (subsidiaries point to
    /// their parent account); enables `over = "children"` and `over = "descendants"` rollups.
    #[serde(default)]
    pub hierarchy: Option<Spanned<String>>,
}

/// `[events]`: the event stream traits are computed from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsConfig {
    /// Data file, relative to the project folder.
    pub source: Spanned<String>,
    /// Column carrying the owning entity's key.
    pub entity_key: String,
    /// Which entity the events belong to; default: the entity whose `key` equals `entity_key`,
    /// else the project's entity.
    #[serde(default)]
    pub entity: Option<Spanned<String>>,
    /// Event time column (timestamp; dates mean midnight UTC).
    pub time: String,
    /// Event type column (informational; usable in conditions like any column).
    #[serde(default, rename = "type")]
    pub event_type: Option<String>,
    /// Type overrides; other columns are inferred.
    #[serde(default)]
    pub columns: IndexMap<String, Spanned<String>>,
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
    /// What the aggregate runs over: absent for events; a child entity's name for a rollup over
    /// its rows; `children` or `descendants` for a rollup over the entity's hierarchy.
    pub over: Option<Spanned<String>>,
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
                        "over" => over = Some(map.next_value::<Spanned<String>>()?),
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

/// `[rfm]`: recency, frequency and monetary value over purchase events, quintile scores and the
/// standard named RFM segments.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RfmConfig {
    /// The condition (over event columns) that makes an event a purchase.
    pub purchase: Spanned<String>,
    /// The event column holding the purchase amount.
    pub amount: Spanned<String>,
    /// Only purchases within this window count (e.g. `365d`); default: all.
    #[serde(default)]
    pub within: Option<Spanned<String>>,
}

/// `[clv]`: purchase summaries (Fader, Hardie & Lee 2005), the BG/NBD and Gamma-Gamma models
/// fitted on them, and per-entity predictions as traits (see `docs/predictive.md`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClvConfig {
    /// The condition (over event columns) that makes an event a purchase.
    pub purchase: Spanned<String>,
    /// The event column holding the purchase amount.
    pub amount: Spanned<String>,
    /// `day` or `week` (default): the unit the models are fitted in.
    #[serde(default)]
    pub time_unit: Option<Spanned<String>>,
    /// The horizon of expected purchases (default `90d`); it names the trait
    /// `expected_purchases_<horizon>`.
    #[serde(default)]
    pub horizon: Option<Spanned<String>>,
    /// Months of discounted CLV (default 12); it names the trait `clv_<months>m`.
    #[serde(default)]
    pub months: Option<u32>,
    /// Monthly discount rate of CLV (default 0.01).
    #[serde(default)]
    pub discount_rate: Option<f64>,
    /// L2 penalty on the model parameters (default 0, the paper's plain maximum likelihood).
    #[serde(default)]
    pub penalizer: Option<f64>,
    /// "Diamonds in the rough": the bottom share by current value (default 0.8)...
    #[serde(default)]
    pub bottom_value_share: Option<f64>,
    /// ...that is in the top share by predicted CLV (default 0.2).
    #[serde(default)]
    pub top_clv_share: Option<f64>,
}

/// The segment `[clv]` adds.
pub const DIAMONDS_SEGMENT: &str = "clv.diamonds_in_the_rough";

impl ClvConfig {
    /// The expected-purchases horizon as written (default `90d`).
    pub fn horizon_text(&self) -> String {
        self.horizon.as_ref().map_or_else(|| "90d".to_string(), |h| h.get_ref().trim().to_ascii_lowercase())
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
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChurnConfig {
    /// The condition (over event columns) of the event that marks a churn (a cancellation).
    pub churned: Spanned<String>,
    /// Attributes and traits of the project's entity the model reads (numbers and booleans).
    pub features: Vec<Spanned<String>>,
    /// "Churned within the next window" (default `90d`); also the spacing of the cutoffs.
    #[serde(default)]
    pub window: Option<Spanned<String>>,
    /// L2 penalty of the logistic regression on standardised features (default 1.0).
    #[serde(default)]
    pub l2_penalty: Option<f64>,
    /// Drivers listed per entity in `churn_drivers` (default 3).
    #[serde(default)]
    pub drivers: Option<usize>,
}

/// The longest `[churn] window` (about 27 years: the cutoffs lie two windows back).
pub const MAX_CHURN_WINDOW_DAYS: i64 = 10_000;

/// The traits `[churn]` adds, in output order.
pub const CHURN_TRAITS: [&str; 2] = ["churn_risk", "churn_drivers"];

/// `[scores.NAME]`: a points-based score (fit from rules, engagement from events), a float
/// trait usable in rules.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreConfig {
    /// Points for entities matching a rule (fit).
    #[serde(default)]
    pub rules: Vec<ScoreRuleConfig>,
    /// Points per matching event (engagement), optionally decayed and capped.
    #[serde(default)]
    pub events: Vec<ScoreEventConfig>,
    /// The score never goes below this.
    #[serde(default)]
    pub min: Option<f64>,
    /// The score never goes above this.
    #[serde(default)]
    pub max: Option<f64>,
    /// What the score measures.
    #[serde(default)]
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
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreEventConfig {
    /// The condition over event columns.
    #[serde(rename = "where")]
    pub condition: Spanned<String>,
    /// Points per matching event (negative to subtract).
    pub points: f64,
    /// An event's points halve every `half_life` of age (e.g. `14d`); default: no decay.
    #[serde(default)]
    pub half_life: Option<Spanned<String>>,
    /// Only events within this window count (e.g. `90d`); default: all.
    #[serde(default)]
    pub within: Option<Spanned<String>>,
    /// The points from this line never exceed this.
    #[serde(default)]
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
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(&name.to_lowercase(), &c.to_lowercase()), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
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
    let message = message
        .split_once(", expected")
        .filter(|_| hint.is_some())
        .map_or(message.clone(), |(head, _)| head.to_string());
    text.error_at(err.span(), message, hint)
}

/// Parses `segmenta.toml` text and checks what can be checked without data.
///
/// Returns every problem found, not only the first.
pub fn parse_project(text: &str) -> Result<ProjectConfig, Vec<ConfigError>> {
    let ct = ConfigText(text);
    let config: ProjectConfig = toml::from_str(text).map_err(|e| vec![from_toml_error(&ct, &e)])?;
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
    let check_columns = |columns: &IndexMap<String, Spanned<String>>, errors: &mut Vec<ConfigError>| {
        for (column, ty) in columns {
            if let Err(message) = ty.get_ref().parse::<ValueType>() {
                errors.push(ct.error_at(Some(ty.span()), format!("column `{column}`: {message}"), None));
            }
        }
    };
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
        check_source(&entity.source, &mut errors);
        check_columns(&entity.columns, &mut errors);
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
    if let Some(events) = &config.events {
        check_source(&events.source, &mut errors);
        check_columns(&events.columns, &mut errors);
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
    check_derived(&ct, &config, &mut errors);
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
        match over.get_ref().as_str() {
            "children" | "descendants" => {
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
            child => match config.entities.get(child) {
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
fn check_derived(ct: &ConfigText<'_>, config: &ProjectConfig, errors: &mut Vec<ConfigError>) {
    let window = |value: &Spanned<String>, what: String, errors: &mut Vec<ConfigError>| {
        if let Err(message) = value.get_ref().parse::<crate::Window>() {
            errors.push(ct.error_at(
                Some(value.span()),
                format!("{what}: {message}"),
                Some(crate::WINDOW_HINT.into()),
            ));
        }
    };
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
        for line in &score.events {
            if let Some(half_life) = &line.half_life {
                window(half_life, format!("score `{name}`: half_life"), errors);
            }
            if let Some(within) = &line.within {
                window(within, format!("score `{name}`: within"), errors);
            }
        }
    }
    if let Some(rfm) = &config.rfm {
        if config.events.is_none() {
            errors.push(ct.error_at(
                Some(rfm.purchase.span()),
                "[rfm] needs events, and there is no [events] section".into(),
                Some("add [events] with source, entity_key and time".into()),
            ));
        }
        if let Some(within) = &rfm.within {
            window(within, "[rfm] within".into(), errors);
        }
    }
    if let Some(clv) = &config.clv {
        check_clv(ct, config, clv, errors);
    }
    if let Some(churn) = &config.churn {
        check_churn(ct, config, churn, errors);
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
fn check_clv(ct: &ConfigText<'_>, config: &ProjectConfig, clv: &ClvConfig, errors: &mut Vec<ConfigError>) {
    let at = Some(clv.purchase.span());
    if config.events.is_none() {
        errors.push(ct.error_at(
            at.clone(),
            "[clv] needs events, and there is no [events] section".into(),
            Some("add [events] with source, entity_key and time".into()),
        ));
    }
    if let Some(unit) = &clv.time_unit
        && !matches!(unit.get_ref().as_str(), "day" | "week")
    {
        errors.push(ct.error_at(
            Some(unit.span()),
            format!("[clv] time_unit: `{}` is not a time unit", unit.get_ref()),
            Some("use `day` or `week` (the default)".into()),
        ));
    }
    if let Some(horizon) = &clv.horizon
        && let Err(message) = horizon.get_ref().trim().parse::<crate::Window>()
    {
        errors.push(ct.error_at(
            Some(horizon.span()),
            format!("[clv] horizon: {message}"),
            Some(crate::WINDOW_HINT.into()),
        ));
    }
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
    errors: &mut Vec<ConfigError>,
) {
    let at = Some(churn.churned.span());
    if config.events.is_none() {
        errors.push(ct.error_at(
            at.clone(),
            "[churn] needs events, and there is no [events] section".into(),
            Some("add [events] with source, entity_key and time".into()),
        ));
    }
    if let Some(window) = &churn.window
        && let Ok(parsed) = window.get_ref().trim().parse::<crate::Window>()
        && parsed.micros() > MAX_CHURN_WINDOW_DAYS * crate::MICROS_PER_DAY
    {
        errors.push(ct.error_at(
            Some(window.span()),
            format!("[churn] window `{}` is longer than {MAX_CHURN_WINDOW_DAYS} days", window.get_ref()),
            Some("the model trains on what happened within two windows before the as-of date: use e.g. 90d".into()),
        ));
    }
    if let Some(window) = &churn.window
        && let Err(message) = window.get_ref().trim().parse::<crate::Window>()
    {
        errors.push(ct.error_at(
            Some(window.span()),
            format!("[churn] window: {message}"),
            Some(crate::WINDOW_HINT.into()),
        ));
    }
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
        names
    }

    /// The entity a trait belongs to: its `entity`, else the parent of the child entity a
    /// rollup runs over, else the project's entity. `None` for an unknown trait.
    pub fn trait_entity(&self, name: &str) -> Option<&str> {
        let t = self.traits.get(name)?;
        if let Some(entity) = &t.entity {
            return Some(entity.get_ref());
        }
        let over_child = t.over.as_ref().and_then(|o| self.entities.get(o.get_ref()));
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
