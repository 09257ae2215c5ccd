//! Loading a project folder and validating it: the project file, the schemas of its data files
//! (header and sample only), and every trait, score, scheme and segment rule, before any data
//! is scanned. Validation yields the evaluation plan a run executes.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use segmenta_core::ValueType;
use segmenta_core::config::{self, ConfigText, ProjectConfig, RFM_TRAITS, SourceFormat};
use segmenta_core::rfm::RfmSegment;
use segmenta_query::ingest::{self, SourceSpec, TableSchema};
use segmenta_query::{
    Aggregate, DaysSpec, Derived, ParentLink, PointsSpec, RfmColumns, TraitSource, TraitSpec,
};
use segmenta_rules::ast::{AggFunc, ColumnInfo, ColumnSource, Ident, TypedExpr, TypedTrait, TypedValue};
use segmenta_rules::{AttributeCatalog, Diagnostic};
use toml::Spanned;

use crate::error::{Error, Result, RuleProblem};
use crate::run::AsOf;

/// The project file's name inside a project folder.
pub const PROJECT_FILE: &str = "segmenta.toml";

/// The column prefix under which parent attributes and traits appear in the evaluation table.
const PARENT_PREFIX: &str = "__segmenta_parent__";

/// The column header of a static list file.
pub const STATIC_LIST_COLUMN: &str = "entity_id";

/// A project folder and its parsed project file.
#[derive(Debug, Clone)]
pub struct Project {
    /// The project folder.
    pub dir: PathBuf,
    /// `DIR/segmenta.toml`.
    pub file: PathBuf,
    /// The file's text (positions in errors refer to it).
    pub text: String,
    /// The parsed configuration.
    pub config: ProjectConfig,
}

impl Project {
    /// Reads and parses `DIR/segmenta.toml`.
    pub fn load(dir: &Path) -> Result<Project> {
        let file = if dir.is_file() { dir.to_path_buf() } else { dir.join(PROJECT_FILE) };
        let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::ProjectNotFound { path: file });
            }
            Err(source) => return Err(Error::Io { path: file, source }),
        };
        let config =
            config::parse_project(&text).map_err(|errors| Error::Config { path: file.clone(), errors })?;
        Ok(Project { dir, file, text, config })
    }

    /// This project with another project file text (edited in memory: options of a command
    /// merged over the file), parsed and checked as the file would be.
    pub(crate) fn with_text(&self, text: String) -> Result<Project> {
        let config = config::parse_project(&text)
            .map_err(|errors| Error::Config { path: self.file.clone(), errors })?;
        Ok(Project { dir: self.dir.clone(), file: self.file.clone(), text, config })
    }

    /// This project with `[section]` edited in memory by `edit` (created if absent) and the
    /// sections named in `drop` removed: a model command's options merged over the file.
    pub(crate) fn with_section(
        &self,
        section: &str,
        drop: &[&str],
        edit: impl FnOnce(&mut dyn toml_edit::TableLike) -> Result<()>,
    ) -> Result<Project> {
        let mut document: toml_edit::DocumentMut = self
            .text
            .parse()
            .map_err(|e| Error::Internal(format!("the project file no longer parses: {e}")))?;
        for name in drop {
            document.remove(name);
        }
        let item = document.entry(section).or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()));
        let table = item.as_table_like_mut().ok_or_else(|| Error::Usage {
            message: format!("`{section}` in {} is not a table", self.file.display()),
            hint: Some(format!("write it as a [{section}] section")),
        })?;
        edit(table)?;
        // Positions in messages are in the edited text, which holds the command's options.
        let merged = Project { file: merged_path(&self.file), ..self.clone() };
        merged.with_text(document.to_string())
    }

    /// The store folder (default `DIR/.segmenta`).
    pub fn store_dir(&self) -> PathBuf {
        self.dir.join(self.config.project.store.as_deref().unwrap_or(".segmenta"))
    }

    /// The source spec of a data file named in the project.
    pub(crate) fn source_spec(
        &self,
        source: &Spanned<String>,
        columns: &IndexMap<String, Spanned<String>>,
        extra: &[(String, ValueType)],
    ) -> SourceSpec {
        let display = source.get_ref().clone();
        let mut overrides: Vec<(String, ValueType)> = columns
            .iter()
            .filter_map(|(name, ty)| ty.get_ref().parse().ok().map(|ty| (name.clone(), ty)))
            .collect();
        for (name, ty) in extra {
            if !overrides.iter().any(|(n, _)| n == name) {
                overrides.push((name.clone(), *ty));
            }
        }
        SourceSpec {
            path: self.dir.join(&display),
            display: display.clone(),
            format: SourceFormat::from_path(&display).unwrap_or(SourceFormat::Csv),
            overrides,
            infer_rows: ingest::DEFAULT_INFER_ROWS,
        }
    }

    /// A rule problem located in the project file.
    pub(crate) fn problem(
        &self,
        source: String,
        text: &Spanned<String>,
        diagnostic: Diagnostic,
    ) -> RuleProblem {
        let ct = ConfigText(&self.text);
        let offset = ct.value_offset(&text.span(), diagnostic.span.start);
        RuleProblem {
            source,
            text: text.get_ref().to_string(),
            diagnostic,
            file_position: Some(ct.line_col(offset)),
        }
    }
}

/// A catalog over a fixed set of columns (and, for rules, segments).
#[derive(Debug, Default, Clone)]
pub(crate) struct Catalog {
    columns: HashMap<String, ColumnInfo>,
    order: Vec<String>,
    segments: Vec<String>,
    allows_segments: bool,
}

impl Catalog {
    fn add(&mut self, name: String, column: String, ty: ValueType, source: ColumnSource) {
        if !self.columns.contains_key(&name) {
            self.order.push(name.clone());
        }
        self.columns.insert(name, ColumnInfo { column, ty, source });
    }

    fn add_schema(&mut self, schema: &TableSchema, source: ColumnSource) {
        for (name, ty) in &schema.columns {
            self.add(name.clone(), name.clone(), *ty, source);
        }
    }
}

impl AttributeCatalog for Catalog {
    fn lookup(&self, ident: &Ident) -> Option<ColumnInfo> {
        let key = match &ident.qualifier {
            Some(q) => format!("{}.{}", q.to_lowercase(), ident.name),
            None => ident.name.clone(),
        };
        self.columns.get(&key).cloned()
    }

    fn names(&self) -> Vec<String> {
        self.order.clone()
    }

    fn has_segment(&self, name: &str) -> bool {
        self.segments.iter().any(|s| s == name)
    }

    fn segment_names(&self) -> Vec<String> {
        self.segments.clone()
    }

    fn allows_segments(&self) -> bool {
        self.allows_segments
    }
}

/// An entity a run reads.
#[derive(Debug, Clone)]
pub struct ValidatedEntity {
    /// Its name.
    pub name: String,
    /// Where it comes from.
    pub spec: SourceSpec,
    /// Its schema.
    pub schema: TableSchema,
    /// Its key column.
    pub key: String,
    /// Its parent entity.
    pub parent: Option<ParentLink>,
    /// The column holding the parent row's key in its hierarchy.
    pub hierarchy: Option<String>,
}

/// The events side of a validated project.
#[derive(Debug, Clone)]
pub struct ValidatedEvents {
    /// Where they come from.
    pub spec: SourceSpec,
    /// Their schema (time column forced to timestamp).
    pub schema: TableSchema,
    /// The entity they belong to.
    pub entity: String,
    /// The column holding that entity's key.
    pub key: String,
    /// The time column.
    pub time: String,
}

/// A project whose traits, scores, schemes and rules resolved against the data files' schemas:
/// the plan of a run.
#[derive(Debug, Clone)]
pub struct Validated {
    /// The project.
    pub project: Project,
    /// The entity that segments hold.
    pub entity: String,
    /// The entities the run reads, the project's entity first.
    pub entities: Vec<ValidatedEntity>,
    /// The events, if any.
    pub events: Option<ValidatedEvents>,
    /// Per-entity aggregates (traits, rollups, RFM values, score points).
    pub traits: Vec<TraitSpec>,
    /// Parent columns rules read: (column of the parent's table, evaluation column).
    pub parent_columns: Vec<(String, String)>,
    /// The RFM value columns, when `[rfm]` is declared.
    pub rfm: Option<RfmColumns>,
    /// Derived columns in dependency order; static lists carry no ids yet (the run reads them).
    pub derived: Vec<Derived>,
    /// CLV, when `[clv]` is declared.
    pub clv: Option<crate::clv::ClvPlan>,
    /// Churn propensity, when `[churn]` is declared.
    pub churn: Option<crate::churn::ChurnPlan>,
    /// Static list files by segment.
    pub static_lists: Vec<(String, SourceSpec)>,
    /// The columns of `traits.parquet` after `entity_id`: the entity's traits, RFM values and
    /// scores, scores and schemes.
    pub outputs: Vec<(String, ValueType)>,
    /// Every segment in output order: rule and static segments, scheme tiers, RFM segments.
    pub segments: Vec<String>,
    /// `[project] as_of`, if given.
    pub as_of: Option<AsOf>,
    /// What rules of the project's entity may read (for previews of ad-hoc rules).
    pub(crate) rules_catalog: Catalog,
}

/// How messages name a project file with a command's options merged in.
fn merged_path(path: &Path) -> PathBuf {
    PathBuf::from(format!("{} (with the command's options merged in)", path.display()))
}

/// What [`Validated::narrowed_traits`] keeps.
pub(crate) struct Narrowed {
    /// The aggregates.
    pub traits: Vec<TraitSpec>,
    /// RFM, when one of its values is kept.
    pub rfm: Option<RfmColumns>,
    /// The parent's columns that are still computed.
    pub parent_columns: Vec<(String, String)>,
}

impl Validated {
    /// The entity the run's segments hold.
    pub fn entity(&self) -> &ValidatedEntity {
        &self.entities[0]
    }

    /// The aggregates an evaluation needs to compute the project entity's columns named in
    /// `keep` (trait names, or evaluation-table columns of the parent's traits), with what they
    /// read: every aggregate of a child entity a kept rollup reads, of an entity a kept
    /// hierarchy rollup reads, and of the parent when one of its columns is kept; RFM only when
    /// one of its values is kept. Model commands and churn's cutoff evaluations compute no more.
    pub(crate) fn narrowed_traits(&self, keep: &HashSet<String>) -> Narrowed {
        let rfm = self.rfm.clone().filter(|_| RFM_TRAITS.iter().any(|t| keep.contains(*t)));
        let raw_rfm: &[&str] = if rfm.is_some() { &RFM_TRAITS[..3] } else { &[] };
        let own = |s: &TraitSpec| {
            s.entity == self.entity && (keep.contains(&s.name) || raw_rfm.contains(&s.name.as_str()))
        };
        let mut entities: HashSet<String> = HashSet::new();
        if keep.iter().any(|k| k.starts_with(PARENT_PREFIX))
            && let Some(link) = &self.entity().parent
        {
            entities.insert(link.entity.clone());
        }
        // Entities whose every aggregate is kept, to a fixed point.
        loop {
            let read: Vec<String> = self
                .traits
                .iter()
                .filter(|s| own(s) || entities.contains(&s.entity))
                .filter_map(|spec| match &spec.source {
                    TraitSource::Rollup { child } => Some(child.clone()),
                    TraitSource::Hierarchy { .. } => Some(spec.entity.clone()),
                    TraitSource::Events => None,
                })
                .filter(|e| !entities.contains(e))
                .collect();
            if read.is_empty() {
                break;
            }
            entities.extend(read);
        }
        let traits = self.traits.iter().filter(|s| own(s) || entities.contains(&s.entity)).cloned().collect();
        // The parent's attributes always join; its traits only when they are computed.
        let parent = self.entity().parent.as_ref().map(|link| link.entity.as_str());
        let parent_traits: HashSet<&str> = self
            .traits
            .iter()
            .filter(|s| Some(s.entity.as_str()) == parent)
            .map(|s| s.name.as_str())
            .collect();
        let parent_kept = parent.is_some_and(|p| entities.contains(p));
        let parent_columns = self
            .parent_columns
            .iter()
            .filter(|(name, _)| parent_kept || !parent_traits.contains(name.as_str()))
            .cloned()
            .collect();
        Narrowed { traits, rfm, parent_columns }
    }
}

fn require_column(schema: &TableSchema, file: &str, column: &str, role: &str) -> Result<ValueType> {
    schema.get(column).ok_or_else(|| {
        let names: Vec<&str> = schema.columns.iter().map(|(n, _)| n.as_str()).collect();
        let hint = match config::did_you_mean(column, names.iter().copied()) {
            Some(best) => format!("did you mean `{best}`? the file's columns are: {}", names.join(", ")),
            None => format!("the file's columns are: {}", names.join(", ")),
        };
        Error::Schema {
            message: format!("{file}: the {role} column `{column}` is not in the file"),
            hint: Some(hint),
        }
    })
}

/// What the run's derived columns are, for ordering and messages.
struct Node {
    name: String,
    references: Vec<String>,
    /// Where its text is, for a cycle message.
    text: Option<(String, Spanned<String>)>,
}

struct Validator<'p> {
    project: &'p Project,
    config: &'p ProjectConfig,
    problems: Vec<RuleProblem>,
    entities: HashMap<String, ValidatedEntity>,
}

impl<'p> Validator<'p> {
    /// The schema of an entity, read once.
    fn entity(&mut self, name: &str) -> Result<ValidatedEntity> {
        if let Some(entity) = self.entities.get(name) {
            return Ok(entity.clone());
        }
        let config = self
            .config
            .entities
            .get(name)
            .ok_or_else(|| Error::Internal(format!("entity `{name}` vanished after parsing")))?;
        let spec = self.project.source_spec(&config.source, &config.columns, &[]);
        let schema = ingest::read_schema(&spec)?;
        require_column(&schema, &spec.display, &config.key, "key")?;
        let parent = match &config.parent {
            None => None,
            Some(parent) => {
                let parent_key = &self
                    .config
                    .entities
                    .get(parent.get_ref())
                    .ok_or_else(|| Error::Internal(format!("parent `{}` vanished", parent.get_ref())))?
                    .key;
                require_column(
                    &schema,
                    &spec.display,
                    parent_key,
                    &format!("parent key (of `{}`)", parent.get_ref()),
                )?;
                Some(ParentLink { entity: parent.get_ref().clone(), column: parent_key.clone() })
            }
        };
        let hierarchy = match &config.hierarchy {
            None => None,
            Some(column) => {
                let ty = require_column(&schema, &spec.display, column.get_ref(), "hierarchy")?;
                let key_ty = schema.get(&config.key);
                if Some(ty) != key_ty && ty != ValueType::String && key_ty != Some(ValueType::String) {
                    return Err(Error::Schema {
                        message: format!(
                            "{}: the hierarchy column `{}` is {ty} but the key `{}` is {}",
                            spec.display,
                            column.get_ref(),
                            config.key,
                            key_ty.map_or("missing", ValueType::name)
                        ),
                        hint: Some("the hierarchy column holds keys of the same table".into()),
                    });
                }
                Some(column.get_ref().clone())
            }
        };
        let entity = ValidatedEntity {
            name: name.to_string(),
            spec,
            schema,
            key: config.key.clone(),
            parent,
            hierarchy,
        };
        self.entities.insert(name.to_string(), entity.clone());
        Ok(entity)
    }

    /// Parses and resolves a trait expression against `catalog`, recording problems.
    fn resolve_trait(
        &mut self,
        source: &str,
        text: &Spanned<String>,
        catalog: &Catalog,
    ) -> Option<TypedTrait> {
        let resolved = segmenta_rules::parse_trait(text.get_ref())
            .and_then(|parsed| segmenta_rules::resolve_trait(&parsed, catalog));
        match resolved {
            Ok(t) => Some(t),
            Err(diagnostics) => {
                for d in diagnostics {
                    self.problems.push(self.project.problem(source.to_string(), text, d));
                }
                None
            }
        }
    }

    /// Parses a rule, recording problems.
    fn parse_rule(&mut self, source: &str, text: &Spanned<String>) -> Option<segmenta_rules::ast::Expr> {
        match segmenta_rules::parse_rule(text.get_ref()) {
            Ok(expr) => Some(expr),
            Err(diagnostics) => {
                for d in diagnostics {
                    self.problems.push(self.project.problem(source.to_string(), text, d));
                }
                None
            }
        }
    }

    /// Resolves a parsed rule against `catalog`, recording problems.
    fn resolve_rule(
        &mut self,
        source: &str,
        text: &Spanned<String>,
        expr: &segmenta_rules::ast::Expr,
        catalog: &Catalog,
    ) -> Option<TypedExpr> {
        match segmenta_rules::resolve_rule(expr, catalog) {
            Ok(typed) => Some(typed),
            Err(diagnostics) => {
                for d in diagnostics {
                    self.problems.push(self.project.problem(source.to_string(), text, d));
                }
                None
            }
        }
    }

    fn schema_error<T>(message: String, hint: &str) -> Result<T> {
        Err(Error::Schema { message, hint: Some(hint.into()) })
    }
}

/// The problem of a rollup trait whose aggregate needs an event time.
fn rollup_problem(t: &TypedTrait) -> Option<&'static str> {
    if t.within.is_some() {
        return Some("a window needs events");
    }
    matches!(t.agg, AggFunc::FirstSeen | AggFunc::LastSeen | AggFunc::DaysSinceFirst | AggFunc::DaysSinceLast)
        .then_some("this aggregate needs event times")
}

/// Validates a project: schemas, traits, rules, references. Reads only headers and samples of
/// the data files.
pub fn validate(project: &Project) -> Result<Validated> {
    let config = &project.config;
    let mut v = Validator { project, config, problems: Vec::new(), entities: HashMap::new() };
    let entity_name = config.project.entity.get_ref().clone();
    let entity = v.entity(&entity_name)?;

    let as_of = match &config.project.as_of {
        None => None,
        Some(text) => Some(AsOf::parse(text.get_ref()).map_err(|_| {
            let (line, column) = ConfigText(&project.text).line_col(text.span().start);
            Error::Config {
                path: project.file.clone(),
                errors: vec![config::ConfigError {
                    message: format!("invalid as_of `{}`", text.get_ref()),
                    line: Some(line),
                    column: Some(column),
                    hint: Some(
                        "use a date such as 2024-06-30 or an RFC 3339 instant such as 2024-06-30T12:00:00Z"
                            .into(),
                    ),
                }],
            }
        })?),
    };

    // Events.
    let events = match &config.events {
        None => None,
        Some(events_config) => {
            let owner = config.events_entity().unwrap_or(&entity_name).to_string();
            let spec = project.source_spec(
                &events_config.source,
                &events_config.columns,
                &[(events_config.time.clone(), ValueType::Timestamp)],
            );
            let schema = ingest::read_schema(&spec)?;
            require_column(&schema, &spec.display, &events_config.entity_key, "entity_key")?;
            let time_type = require_column(&schema, &spec.display, &events_config.time, "time")?;
            if time_type != ValueType::Timestamp {
                return Validator::schema_error(
                    format!(
                        "{}: the time column `{}` is {time_type}, not a timestamp",
                        spec.display, events_config.time
                    ),
                    "the time column must hold dates or timestamps",
                );
            }
            v.entity(&owner)?;
            Some(ValidatedEvents {
                spec,
                schema,
                entity: owner,
                key: events_config.entity_key.clone(),
                time: events_config.time.clone(),
            })
        }
    };
    let mut event_catalog = Catalog::default();
    if let Some(events) = &events {
        event_catalog.add_schema(&events.schema, ColumnSource::EventColumn);
    }

    // Traits, entity by entity, children before parents (a rollup reads its child's traits).
    let depth = |name: &str| {
        let mut depth = 0;
        let mut current = config.entities.get(name).and_then(|e| e.parent.as_ref());
        while let Some(parent) = current {
            depth += 1;
            if depth > config.entities.len() {
                break;
            }
            current = config.entities.get(parent.get_ref()).and_then(|e| e.parent.as_ref());
        }
        depth
    };
    let mut owners: Vec<String> = Vec::new();
    for name in config.traits.keys() {
        if let Some(owner) = config.trait_entity(name)
            && !owners.iter().any(|o| o == owner)
        {
            owners.push(owner.to_string());
        }
    }
    owners.sort_by_key(|o| std::cmp::Reverse(depth(o)));
    let mut specs: Vec<TraitSpec> = Vec::new();
    // Per entity, its traits' names and types, for the catalogs of rollups and rules.
    let mut trait_types: HashMap<String, Vec<(String, ValueType)>> = HashMap::new();
    for owner in &owners {
        let owner_entity = v.entity(owner)?;
        let own: Vec<(&String, &config::TraitConfig)> =
            config.traits.iter().filter(|(name, _)| config.trait_entity(name) == Some(owner)).collect();
        let mut types: Vec<(String, ValueType)> = Vec::new();
        let kind = |t: &config::TraitConfig| match t.over.as_ref().map(|o| o.get_ref().as_str()) {
            None => 0,
            Some("children" | "descendants") => 2,
            Some(_) => 1,
        };
        for pass in 0..3 {
            for (name, t) in own.iter().filter(|(_, t)| kind(t) == pass) {
                let source = format!("trait `{name}`");
                let (catalog, trait_source) = match t.over.as_ref().map(|o| o.get_ref().as_str()) {
                    None => {
                        let Some(events) = &events else {
                            return Validator::schema_error(
                                format!("trait `{name}` needs events and there is no [events] section"),
                                "add [events] with source, entity_key and time",
                            );
                        };
                        let reachable = events.entity == *owner
                            || events.schema.get(&owner_entity.key).is_some()
                            || v.entity(&events.entity)?.parent.as_ref().is_some_and(|p| p.entity == *owner);
                        if !reachable {
                            return Validator::schema_error(
                                format!(
                                    "trait `{name}` belongs to `{owner}` but {} carries no `{}` column and its events belong to `{}`",
                                    events.spec.display, owner_entity.key, events.entity
                                ),
                                &format!(
                                    "add the `{}` column to the events, or make `{owner}` the parent of `{}`",
                                    owner_entity.key, events.entity
                                ),
                            );
                        }
                        (event_catalog.clone(), TraitSource::Events)
                    }
                    Some(over @ ("children" | "descendants")) => {
                        let mut catalog = Catalog::default();
                        catalog.add_schema(&owner_entity.schema, ColumnSource::Attribute);
                        for (trait_name, ty) in &types {
                            catalog.add(trait_name.clone(), trait_name.clone(), *ty, ColumnSource::Trait);
                        }
                        (catalog, TraitSource::Hierarchy { descendants: over == "descendants" })
                    }
                    Some(child) => {
                        let child_entity = v.entity(child)?;
                        let mut catalog = Catalog::default();
                        catalog.add_schema(&child_entity.schema, ColumnSource::Attribute);
                        for (trait_name, ty) in trait_types.get(child).into_iter().flatten() {
                            catalog.add(trait_name.clone(), trait_name.clone(), *ty, ColumnSource::Trait);
                        }
                        (catalog, TraitSource::Rollup { child: child.to_string() })
                    }
                };
                let Some(typed) = v.resolve_trait(&source, &t.expr, &catalog) else { continue };
                if let Some(over) = &t.over
                    && let Some(problem) = rollup_problem(&typed)
                {
                    let hint = if typed.within.is_some() {
                        "a rollup runs over rows without times; compute the windowed trait on the rows' entity and roll it up"
                    } else {
                        "over entity rows use min(column) or max(column) of a date or timestamp column"
                    };
                    let diagnostic = Diagnostic::new(
                        "rollup_needs_events",
                        format!("{}() over `{}`: {problem}", typed.agg.name(), over.get_ref()),
                        segmenta_rules::ast::Span::new(0, t.expr.get_ref().len()),
                    )
                    .with_hint(hint);
                    v.problems.push(project.problem(source, &t.expr, diagnostic));
                    continue;
                }
                if owner_entity.schema.get(name).is_some() {
                    return Validator::schema_error(
                        format!("trait `{name}` has the name of a column of {}", owner_entity.spec.display),
                        "rename the trait",
                    );
                }
                types.push(((*name).clone(), typed.output));
                specs.push(TraitSpec {
                    name: (*name).clone(),
                    entity: owner.clone(),
                    source: trait_source,
                    aggregate: Aggregate::Trait(typed),
                });
            }
        }
        trait_types.insert(owner.clone(), types);
    }
    let type_of = |entity: &str, name: &str| {
        trait_types.get(entity).and_then(|types| types.iter().find(|(n, _)| n == name)).map(|(_, ty)| *ty)
    };

    // The catalog of rules: attributes, traits, parent.*, RFM values, scores, schemes.
    let mut rules = Catalog { allows_segments: true, ..Catalog::default() };
    rules.add_schema(&entity.schema, ColumnSource::Attribute);
    let mut outputs: Vec<(String, ValueType)> = Vec::new();
    for name in config.traits.keys() {
        if config.trait_entity(name) == Some(entity_name.as_str())
            && let Some(ty) = type_of(&entity_name, name)
        {
            rules.add(name.clone(), name.clone(), ty, ColumnSource::Trait);
            outputs.push((name.clone(), ty));
        }
    }
    let mut parent_columns = Vec::new();
    if let Some(link) = &entity.parent {
        let parent = v.entity(&link.entity)?;
        let parent_traits = trait_types.get(&link.entity).cloned().unwrap_or_default();
        for (name, ty) in parent.schema.columns.iter().chain(&parent_traits) {
            let column = format!("{PARENT_PREFIX}{name}");
            rules.add(format!("parent.{name}"), column.clone(), *ty, ColumnSource::ParentAttribute);
            parent_columns.push((name.clone(), column));
        }
    }

    // RFM: three traits over purchase events, then scores.
    let mut rfm = None;
    if let (Some(rfm_config), Some(events)) = (&config.rfm, &events) {
        let source = "[rfm] purchase";
        let purchase = v.parse_rule(source, &rfm_config.purchase).and_then(|expr| {
            let mut catalog = event_catalog.clone();
            catalog.allows_segments = false;
            v.resolve_rule(source, &rfm_config.purchase, &expr, &catalog)
        });
        let amount = rfm_config.amount.get_ref();
        let amount_type = require_column(&events.schema, &events.spec.display, amount, "[rfm] amount")?;
        if !amount_type.is_numeric() {
            return Validator::schema_error(
                format!(
                    "[rfm] amount: column `{amount}` of {} is {amount_type}, not a number",
                    events.spec.display
                ),
                "name a numeric event column, e.g. amount",
            );
        }
        let within = rfm_config.within.as_ref().and_then(|w| w.get_ref().parse().ok());
        let amount_info =
            ColumnInfo { column: amount.clone(), ty: amount_type, source: ColumnSource::EventColumn };
        let rfm_trait = |agg: AggFunc, arg: Option<ColumnInfo>, output: ValueType| TypedTrait {
            agg,
            arg,
            condition: None,
            filter: purchase.clone(),
            within,
            output,
        };
        let raw = [
            (RFM_TRAITS[0], rfm_trait(AggFunc::DaysSinceLast, None, ValueType::Int)),
            (RFM_TRAITS[1], rfm_trait(AggFunc::Count, None, ValueType::Int)),
            (RFM_TRAITS[2], rfm_trait(AggFunc::Sum, Some(amount_info), amount_type)),
        ];
        let reachable = events.entity == entity_name || events.schema.get(&entity.key).is_some();
        if !reachable {
            return Validator::schema_error(
                format!(
                    "[rfm] needs the events of `{entity_name}`, and {} has no `{}` column",
                    events.spec.display, entity.key
                ),
                "add the entity's key column to the events",
            );
        }
        for (name, t) in raw {
            specs.push(TraitSpec {
                name: name.into(),
                entity: entity_name.clone(),
                source: TraitSource::Events,
                aggregate: Aggregate::Trait(t),
            });
        }
        let types = [
            ValueType::Int,
            ValueType::Int,
            amount_type,
            ValueType::Int,
            ValueType::Int,
            ValueType::Int,
            ValueType::Int,
            ValueType::String,
        ];
        for (name, ty) in RFM_TRAITS.iter().zip(types) {
            rules.add(name.to_string(), name.to_string(), ty, ColumnSource::Trait);
            outputs.push((name.to_string(), ty));
        }
        rfm = Some(RfmColumns {
            recency: RFM_TRAITS[0].into(),
            frequency: RFM_TRAITS[1].into(),
            monetary: RFM_TRAITS[2].into(),
        });
    }

    // CLV: purchase-day facts from the event scan; the model columns come from the run's
    // table extension.
    let mut clv = None;
    if let (Some(clv_config), Some(events)) = (&config.clv, &events) {
        let source = "[clv] purchase";
        let purchase = v.parse_rule(source, &clv_config.purchase).and_then(|expr| {
            let mut catalog = event_catalog.clone();
            catalog.allows_segments = false;
            v.resolve_rule(source, &clv_config.purchase, &expr, &catalog)
        });
        let amount = clv_config.amount.get_ref();
        let amount_type = require_column(&events.schema, &events.spec.display, amount, "[clv] amount")?;
        if !amount_type.is_numeric() {
            return Validator::schema_error(
                format!(
                    "[clv] amount: column `{amount}` of {} is {amount_type}, not a number",
                    events.spec.display
                ),
                "name a numeric event column, e.g. amount",
            );
        }
        if !(events.entity == entity_name || events.schema.get(&entity.key).is_some()) {
            return Validator::schema_error(
                format!(
                    "[clv] needs the events of `{entity_name}`, and {} has no `{}` column",
                    events.spec.display, entity.key
                ),
                "add the entity's key column to the events",
            );
        }
        let amount_info =
            ColumnInfo { column: amount.clone(), ty: amount_type, source: ColumnSource::EventColumn };
        for (part, name) in crate::clv::DAY_COLUMNS {
            specs.push(TraitSpec {
                name: name.into(),
                entity: entity_name.clone(),
                source: TraitSource::Events,
                aggregate: Aggregate::Days(DaysSpec {
                    condition: purchase.clone(),
                    amount: Some(amount_info.clone()),
                    part,
                }),
            });
        }
        let plan = crate::clv::ClvPlan::new(clv_config);
        for (i, name) in plan.names.iter().enumerate() {
            let ty = if i == 0 { ValueType::Int } else { ValueType::Float };
            rules.add(name.clone(), name.clone(), ty, ColumnSource::Trait);
            outputs.push((name.clone(), ty));
        }
        clv = Some(plan);
    }

    // Churn: three hidden event counts; features are columns of the entity's table (resolved
    // before scores and schemes join the catalog: the cutoff evaluations compute no derived
    // columns).
    let mut churn = None;
    if let (Some(churn_config), Some(events)) = (&config.churn, &events) {
        let source = "[churn] churned";
        let churned = v.parse_rule(source, &churn_config.churned).and_then(|expr| {
            let mut catalog = event_catalog.clone();
            catalog.allows_segments = false;
            v.resolve_rule(source, &churn_config.churned, &expr, &catalog)
        });
        if !(events.entity == entity_name || events.schema.get(&entity.key).is_some()) {
            return Validator::schema_error(
                format!(
                    "[churn] needs the events of `{entity_name}`, and {} has no `{}` column",
                    events.spec.display, entity.key
                ),
                "add the entity's key column to the events",
            );
        }
        let window: segmenta_core::Window = churn_config
            .window
            .as_ref()
            .and_then(|w| w.get_ref().trim().parse().ok())
            .unwrap_or(segmenta_core::Window { amount: 90, unit: segmenta_core::WindowUnit::Day });
        let count = |filter: Option<TypedExpr>, within| TypedTrait {
            agg: AggFunc::Count,
            arg: None,
            condition: None,
            filter,
            within,
            output: ValueType::Int,
        };
        for (name, t) in [
            (crate::churn::LABEL, count(churned.clone(), Some(window))),
            (crate::churn::BEFORE, count(churned.clone(), None)),
            (crate::churn::SEEN, count(None, None)),
        ] {
            specs.push(TraitSpec {
                name: name.into(),
                entity: entity_name.clone(),
                source: TraitSource::Events,
                aggregate: Aggregate::Trait(t),
            });
        }
        let mut features = Vec::new();
        let mut errors = Vec::new();
        let ct = ConfigText(&project.text);
        for feature in &churn_config.features {
            let name = feature.get_ref().trim();
            let ident = Ident { qualifier: None, name: name.to_string() };
            let (line, column) = ct.line_col(feature.span().start);
            let error = |message: String, hint: String| config::ConfigError {
                message,
                line: Some(line),
                column: Some(column),
                hint: Some(hint),
            };
            match rules.lookup(&ident) {
                None => {
                    let names = rules.names();
                    let hint = match config::did_you_mean(name, names.iter().map(String::as_str)) {
                        Some(best) => format!("did you mean `{best}`?"),
                        None => "name an attribute or trait of the project's entity".into(),
                    };
                    errors
                        .push(error(format!("[churn] feature `{name}` is not an attribute or trait"), hint));
                }
                Some(info) if matches!(info.ty, ValueType::Int | ValueType::Float | ValueType::Bool | ValueType::String) => {
                    features.push(crate::churn::ChurnFeature {
                        name: name.to_string(),
                        column: info.column,
                        categorical: info.ty == ValueType::String,
                    });
                }
                Some(info) => errors.push(error(
                    format!(
                        "[churn] feature `{name}` is {}: the model reads numbers, booleans and strings (categories)",
                        info.ty
                    ),
                    "use a numeric trait instead, e.g. days_since_first() for a date".into(),
                )),
            }
        }
        if !errors.is_empty() {
            return Err(Error::Config { path: project.file.clone(), errors });
        }
        for (name, ty) in config::CHURN_TRAITS.iter().zip([ValueType::Float, ValueType::String]) {
            rules.add(name.to_string(), name.to_string(), ty, ColumnSource::Trait);
            outputs.push((name.to_string(), ty));
        }
        churn = Some(crate::churn::ChurnPlan {
            window,
            features,
            l2_penalty: churn_config.l2_penalty.unwrap_or(1.0),
            drivers: churn_config.drivers.unwrap_or(3),
            churned: churn_config.churned.get_ref().clone(),
        });
    }

    // Score event lines: points aggregated with the other event traits.
    let mut score_events: HashMap<&str, Vec<(String, Option<f64>)>> = HashMap::new();
    for (s, (score, score_config)) in config.scores.iter().enumerate() {
        for (i, line) in score_config.events.iter().enumerate() {
            let source = format!("score `{score}` events[{i}]");
            let Some(events) = &events else {
                return Validator::schema_error(
                    format!("score `{score}` counts events and there is no [events] section"),
                    "add [events] with source, entity_key and time",
                );
            };
            let condition = v
                .parse_rule(&source, &line.condition)
                .and_then(|expr| v.resolve_rule(&source, &line.condition, &expr, &event_catalog));
            let Some(condition) = condition else { continue };
            if !(events.entity == entity_name || events.schema.get(&entity.key).is_some()) {
                return Validator::schema_error(
                    format!("score `{score}` needs the events of `{entity_name}`"),
                    "add the entity's key column to the events",
                );
            }
            let column = format!("__segmenta_points_{s}_{i}");
            specs.push(TraitSpec {
                name: column.clone(),
                entity: entity_name.clone(),
                source: TraitSource::Events,
                aggregate: Aggregate::Points(PointsSpec {
                    points: line.points,
                    half_life: line.half_life.as_ref().and_then(|h| h.get_ref().parse().ok()),
                    condition: Some(condition),
                    within: line.within.as_ref().and_then(|w| w.get_ref().parse().ok()),
                }),
            });
            score_events.entry(score.as_str()).or_default().push((column, line.max));
        }
        rules.add(score.clone(), score.clone(), ValueType::Float, ColumnSource::Trait);
        outputs.push((score.clone(), ValueType::Float));
    }
    for scheme in config.schemes.keys() {
        rules.add(scheme.clone(), scheme.clone(), ValueType::String, ColumnSource::Trait);
        outputs.push((scheme.clone(), ValueType::String));
    }
    for (name, _) in &outputs {
        if entity.schema.get(name).is_some() {
            return Validator::schema_error(
                format!("`{name}` is the name of a column of {}", entity.spec.display),
                "rename the trait, score or scheme",
            );
        }
    }
    rules.segments = config.segment_names();

    // Derived columns: parse, resolve, order.
    let derived_columns: HashSet<&str> =
        config.scores.keys().chain(config.schemes.keys()).map(String::as_str).collect();
    let references = |expr: &segmenta_rules::ast::Expr| -> Vec<String> {
        let mut refs: Vec<String> =
            segmenta_rules::segment_references(expr).into_iter().map(|(n, _)| n).collect();
        refs.extend(
            segmenta_rules::name_references(expr)
                .into_iter()
                .filter(|n| derived_columns.contains(n.as_str())),
        );
        refs
    };
    let mut nodes: Vec<Node> = Vec::new();
    let mut items: Vec<Option<Derived>> = Vec::new();
    let mut static_lists = Vec::new();
    for (name, segment) in &config.segments {
        let source = format!("segment `{name}`");
        if let Some(list) = &segment.static_list {
            let spec = project.source_spec(
                list,
                &IndexMap::new(),
                &[(STATIC_LIST_COLUMN.to_string(), ValueType::String)],
            );
            let schema = ingest::read_schema(&spec)?;
            require_column(&schema, &spec.display, STATIC_LIST_COLUMN, "id")?;
            static_lists.push((name.clone(), spec));
            nodes.push(Node { name: name.clone(), references: Vec::new(), text: None });
            items.push(Some(Derived::Static { name: name.clone(), ids: Vec::new() }));
            continue;
        }
        let Some(rule) = &segment.rule else { continue };
        let parsed = v.parse_rule(&source, rule);
        let mut refs = parsed.as_ref().map(&references).unwrap_or_default();
        refs.extend(segment.parent.iter().map(|p| p.get_ref().clone()));
        let typed = parsed.and_then(|expr| v.resolve_rule(&source, rule, &expr, &rules));
        nodes.push(Node { name: name.clone(), references: refs, text: Some((source, rule.clone())) });
        items.push(typed.map(|rule| Derived::Segment {
            name: name.clone(),
            rule,
            parent: segment.parent.as_ref().map(|p| p.get_ref().clone()),
        }));
    }
    for (scheme, scheme_config) in &config.schemes {
        let mut refs = Vec::new();
        let mut tiers = Vec::new();
        let mut text = None;
        for tier in &scheme_config.tiers {
            let source = format!("scheme `{scheme}` tier `{}`", tier.name.get_ref());
            let parsed = v.parse_rule(&source, &tier.rule);
            refs.extend(parsed.as_ref().map(&references).unwrap_or_default());
            if let Some(typed) = parsed.and_then(|expr| v.resolve_rule(&source, &tier.rule, &expr, &rules)) {
                tiers.push((tier.name.get_ref().clone(), typed));
            }
            text.get_or_insert((source, tier.rule.clone()));
        }
        let complete = tiers.len() == scheme_config.tiers.len();
        nodes.push(Node { name: scheme.clone(), references: refs, text });
        items.push(complete.then(|| Derived::Scheme {
            name: scheme.clone(),
            tiers,
            otherwise: scheme_config.otherwise.get_ref().clone(),
        }));
        for tier in scheme_config.tiers.iter().map(|t| &t.name).chain([&scheme_config.otherwise]) {
            let segment = format!("{scheme}.{}", tier.get_ref());
            nodes.push(Node { name: segment.clone(), references: vec![scheme.clone()], text: None });
            items.push(Some(Derived::Equals {
                name: segment,
                column: scheme.clone(),
                value: tier.get_ref().clone(),
            }));
        }
    }
    if clv.is_some() {
        nodes.push(Node { name: config::DIAMONDS_SEGMENT.into(), references: Vec::new(), text: None });
        items.push(Some(Derived::Segment {
            name: config::DIAMONDS_SEGMENT.into(),
            rule: TypedExpr::Truthy(TypedValue::Column {
                column: ColumnInfo {
                    column: crate::clv::DIAMOND_FLAG.into(),
                    ty: ValueType::Bool,
                    source: ColumnSource::Trait,
                },
                ty: ValueType::Bool,
            }),
            parent: None,
        }));
    }
    if rfm.is_some() {
        for segment in RfmSegment::ALL {
            nodes.push(Node { name: segment.segment_name(), references: Vec::new(), text: None });
            items.push(Some(Derived::Equals {
                name: segment.segment_name(),
                column: RFM_TRAITS[7].into(),
                value: segment.label().into(),
            }));
        }
    }
    for (score, score_config) in &config.scores {
        let mut refs = Vec::new();
        let mut rules_points = Vec::new();
        let mut text = None;
        for (i, line) in score_config.rules.iter().enumerate() {
            let source = format!("score `{score}` rules[{i}]");
            let parsed = v.parse_rule(&source, &line.rule);
            refs.extend(parsed.as_ref().map(&references).unwrap_or_default());
            if let Some(typed) = parsed.and_then(|expr| v.resolve_rule(&source, &line.rule, &expr, &rules)) {
                rules_points.push((typed, line.points));
            }
            text.get_or_insert((source, line.rule.clone()));
        }
        let complete = rules_points.len() == score_config.rules.len();
        nodes.push(Node { name: score.clone(), references: refs, text });
        items.push(complete.then(|| Derived::Score {
            name: score.clone(),
            rules: rules_points,
            events: score_events.remove(score.as_str()).unwrap_or_default(),
            min: score_config.min,
            max: score_config.max,
        }));
    }
    let deps: Vec<(String, Vec<String>)> =
        nodes.iter().map(|n| (n.name.clone(), n.references.clone())).collect();
    let order = match segmenta_rules::order_segments(&deps) {
        Ok(order) => order,
        Err(cycle) => {
            let first = cycle.first().cloned().unwrap_or_default();
            let node = nodes.iter().find(|n| n.name == first);
            let diagnostic = Diagnostic::new(
                "segment_cycle",
                format!(
                    "segments, schemes and scores reference each other in a cycle: {}",
                    cycle.join(" -> ")
                ),
                segment_span(node, cycle.get(1)),
            )
            .with_hint("break the cycle: nothing can depend on itself");
            match node.and_then(|n| n.text.as_ref()) {
                Some((source, text)) => v.problems.push(project.problem(source.clone(), text, diagnostic)),
                None => {
                    return Err(Error::Schema { message: diagnostic.message, hint: diagnostic.hint });
                }
            }
            Vec::new()
        }
    };
    if !v.problems.is_empty() {
        return Err(Error::Rules { path: project.file.clone(), problems: v.problems });
    }
    let mut derived = Vec::with_capacity(order.len());
    for i in order {
        derived.push(
            items[i]
                .take()
                .ok_or_else(|| Error::Internal(format!("`{}` has no resolved definition", nodes[i].name)))?,
        );
    }
    let segments: Vec<String> = config.segment_names();

    // The entities a run reads: the project's, its parent (for parent.*), the children that
    // rollups read, and the events' owner (for the accounting).
    let mut needed = vec![entity_name.clone()];
    if let Some(link) = &entity.parent {
        needed.push(link.entity.clone());
    }
    let mut i = 0;
    while i < needed.len() {
        let current = needed[i].clone();
        for spec in specs.iter().filter(|s| s.entity == current) {
            if let TraitSource::Rollup { child } = &spec.source
                && !needed.contains(child)
            {
                needed.push(child.clone());
            }
        }
        i += 1;
    }
    if let Some(events) = &events
        && !needed.contains(&events.entity)
    {
        needed.push(events.entity.clone());
    }
    let mut entities = Vec::with_capacity(needed.len());
    for name in &needed {
        entities.push(v.entity(name)?);
    }
    let loaded: HashSet<&str> = needed.iter().map(String::as_str).collect();
    specs.retain(|s| loaded.contains(s.entity.as_str()));

    Ok(Validated {
        project: project.clone(),
        entity: entity_name,
        entities,
        events,
        traits: specs,
        parent_columns,
        rfm,
        derived,
        clv,
        churn,
        static_lists,
        outputs,
        segments,
        as_of,
        rules_catalog: rules,
    })
}

/// The plan of a model command (`segmenta clv`, `segmenta predict churn`): the project
/// validated, without derived columns, segments or static lists, its outputs narrowed to `keep`.
pub(crate) fn validate_for_model(
    project: &Project,
    keep: impl Fn(&Validated, &str) -> bool,
    progress: &dyn crate::run::Progress,
) -> Result<Validated> {
    progress.step("validating project");
    let mut validated = validate(project)?;
    progress.done();
    validated.derived.clear();
    validated.segments.clear();
    validated.static_lists.clear();
    let outputs = std::mem::take(&mut validated.outputs);
    validated.outputs = outputs.into_iter().filter(|(name, _)| keep(&validated, name)).collect();
    Ok(validated)
}

/// Narrows a model command's plan to the aggregates named in `keep` (see
/// [`Validated::narrowed_traits`]).
pub(crate) fn narrow(validated: &mut Validated, keep: &HashSet<String>) {
    let narrowed = validated.narrowed_traits(keep);
    validated.traits = narrowed.traits;
    validated.rfm = narrowed.rfm;
    validated.parent_columns = narrowed.parent_columns;
}

/// The span of the `in_segment` reference to `next` in a node's rule, for cycle messages.
fn segment_span(node: Option<&Node>, next: Option<&String>) -> segmenta_rules::ast::Span {
    let Some((_, text)) = node.and_then(|n| n.text.as_ref()) else { return Default::default() };
    let Ok(expr) = segmenta_rules::parse_rule(text.get_ref()) else { return Default::default() };
    segmenta_rules::segment_references(&expr)
        .into_iter()
        .find(|(n, _)| Some(n) == next)
        .map(|(_, span)| span)
        .unwrap_or_default()
}
