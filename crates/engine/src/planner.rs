//! The state of one validation and the helpers every step uses: reading an entity's schema
//! once, parsing and resolving rules and traits with their problems located in the project
//! file, and adding aggregates and outputs. The steps (`crate::validate`) and the models'
//! planners (`crate::model::Model::plan`) work through it.

use std::collections::HashMap;

use segmenta_core::ValueType;
use segmenta_core::config::{self, ProjectConfig};
use segmenta_query::ingest::{self, TableSchema};
use segmenta_query::{Aggregate, ParentLink, TraitSource, TraitSpec};
use segmenta_rules::ast::{AggFunc, ColumnInfo, ColumnSource, TypedExpr, TypedTrait};
use toml::Spanned;

use crate::catalog::Catalog;
use crate::error::{Error, Result, RuleProblem};
use crate::project::Project;
use crate::sources::{PlannedEntity, PlannedEvents, PlannedLookup, SegmentInfo};

pub(crate) fn require_column(
    schema: &TableSchema,
    file: &str,
    column: &str,
    role: &str,
) -> Result<ValueType> {
    schema.get(column).ok_or_else(|| {
        let names: Vec<&str> = schema.columns.iter().map(|(n, _)| n.as_str()).collect();
        let listed: Vec<String> =
            names.iter().map(|n| segmenta_core::suggest::shown(n).into_owned()).collect();
        let hint = match config::did_you_mean(column, names.iter().copied()) {
            Some(best) => format!(
                "did you mean `{}`? the file's columns are: {}",
                segmenta_core::suggest::shown(best),
                listed.join(", ")
            ),
            None => format!("the file's columns are: {}", listed.join(", ")),
        };
        Error::Schema {
            message: format!("{file}: the {role} column `{column}` is not in the file"),
            hint: Some(hint),
        }
    })
}

/// A derived column (segment, scheme, score) for ordering and messages.
pub(crate) struct Node {
    /// Its name.
    pub name: String,
    /// The segments and derived columns it reads.
    pub references: Vec<String>,
    /// Where its text is, for a cycle message.
    pub text: Option<(String, Spanned<String>)>,
}

/// The state of a validation: the project, the problems found so far, the entities' schemas
/// read once, and the parts of the plan each step adds (aggregates, the catalogs, outputs,
/// models' segments). Every step records problems here and goes on, so that one validation
/// reports every problem it can find.
pub(crate) struct Planner<'p> {
    /// The project.
    pub project: &'p Project,
    /// Its configuration.
    pub config: &'p ProjectConfig,
    /// Problems in rules and traits, located in the project file.
    pub problems: Vec<RuleProblem>,
    /// Other problems (schemas, options), in the order found.
    pub errors: Vec<Error>,
    entities: HashMap<String, PlannedEntity>,
    /// The entity segments hold.
    pub entity_name: String,
    /// Its schema and links.
    pub entity: PlannedEntity,
    /// The events, if declared.
    pub events: Option<PlannedEvents>,
    /// What trait and event conditions may read: the event columns.
    pub event_catalog: Catalog,
    /// Per-entity aggregates, in computation order.
    pub specs: Vec<TraitSpec>,
    /// What rules may read; filled step by step.
    pub rules: Catalog,
    /// The columns of `traits.parquet` after `entity_id`, in order.
    pub outputs: Vec<(String, ValueType)>,
    /// Segments that models add, with their rule and what they are.
    pub model_segments: Vec<(String, TypedExpr, SegmentInfo)>,
}

impl<'p> Planner<'p> {
    /// A planner for `project`: reads the schema of the project's entity.
    pub(crate) fn new(project: &'p Project) -> Result<Planner<'p>> {
        let config = &project.config;
        let entity_name = config.project.entity.get_ref().clone();
        let mut entities = HashMap::new();
        let entity = read_entity(project, &mut entities, &entity_name)?;
        Ok(Planner {
            project,
            config,
            problems: Vec::new(),
            errors: Vec::new(),
            entities,
            entity_name,
            entity,
            events: None,
            event_catalog: Catalog::default(),
            specs: Vec::new(),
            rules: Catalog::for_rules(),
            outputs: Vec::new(),
            model_segments: Vec::new(),
        })
    }

    /// The schema of an entity, read once.
    pub(crate) fn entity(&mut self, name: &str) -> Result<PlannedEntity> {
        read_entity(self.project, &mut self.entities, name)
    }

    /// Records a problem that is not in a rule or trait text.
    pub(crate) fn error(&mut self, error: Error) {
        self.errors.push(error);
    }

    /// Records a schema problem.
    pub(crate) fn schema_problem(&mut self, message: String, hint: &str) {
        self.errors.push(Error::Schema { message, hint: Some(hint.into()) });
    }

    /// True when the events carry the project entity's key (or belong to it); otherwise
    /// records that `what` needs them.
    pub(crate) fn require_entity_events(&mut self, what: &str) -> bool {
        let Some(events) = &self.events else { return false };
        if events.entity == self.entity_name || events.schema.get(&self.entity.key).is_some() {
            return true;
        }
        let message = format!(
            "{what} needs the events of `{}`, and {} has no `{}` column",
            self.entity_name, events.spec.display, self.entity.key
        );
        self.schema_problem(message, "add the entity's key column to the events");
        false
    }

    /// A condition over event columns (no `in_segment`), parsed and resolved; problems recorded.
    pub(crate) fn event_condition(&mut self, source: &str, text: &Spanned<String>) -> Option<TypedExpr> {
        let expr = self.parse_rule(source, text)?;
        let mut catalog = self.event_catalog.clone();
        catalog.allows_segments = false;
        self.resolve_rule(source, text, &expr, &catalog)
    }

    /// A numeric column of the events named by `what` (`[rfm] amount`); problems recorded.
    pub(crate) fn numeric_event_column(&mut self, what: &str, column: &str) -> Option<ColumnInfo> {
        let events = self.events.as_ref()?;
        let ty = match require_column(&events.schema, &events.spec.display, column, what) {
            Ok(ty) => ty,
            Err(error) => {
                self.error(error);
                return None;
            }
        };
        if !ty.is_numeric() {
            let message =
                format!("{what}: column `{column}` of {} is {ty}, not a number", events.spec.display);
            self.schema_problem(message, "name a numeric event column, e.g. amount");
            return None;
        }
        Some(ColumnInfo { column: column.to_string(), ty, source: ColumnSource::EventColumn })
    }

    /// Adds an aggregate over the events to the project entity's stage-1 table.
    pub(crate) fn add_event_aggregate(&mut self, name: &str, aggregate: Aggregate) {
        self.specs.push(TraitSpec {
            name: name.to_string(),
            entity: self.entity_name.clone(),
            source: TraitSource::Events,
            aggregate,
        });
    }

    /// Adds a trait of the project entity that rules may read and `traits.parquet` holds.
    pub(crate) fn add_output(&mut self, name: &str, ty: ValueType) {
        self.rules.add(name.to_string(), name.to_string(), ty, ColumnSource::Trait);
        self.outputs.push((name.to_string(), ty));
    }

    /// Parses and resolves a trait expression against `catalog`, recording problems.
    pub(crate) fn resolve_trait(
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
    pub(crate) fn parse_rule(
        &mut self,
        source: &str,
        text: &Spanned<String>,
    ) -> Option<segmenta_rules::ast::Expr> {
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
    pub(crate) fn resolve_rule(
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
}

/// The problem of a rollup trait whose aggregate needs an event time.
pub(crate) fn rollup_problem(t: &TypedTrait) -> Option<&'static str> {
    if t.within.is_some() {
        return Some("a window needs events");
    }
    matches!(t.agg, AggFunc::FirstSeen | AggFunc::LastSeen | AggFunc::DaysSinceFirst | AggFunc::DaysSinceLast)
        .then_some("this aggregate needs event times")
}

/// Reads the identifier columns (keys, links to parents, hierarchies) of a text file as strings
/// unless their type is declared: inference would read `00123` as the integer 123, and the keys
/// of one file would silently stop matching the keys of another. Parquet files declare their
/// own types. Columns the file lacks are left to the caller's checks.
pub(crate) fn read_as_identifiers(
    spec: &mut ingest::SourceSpec,
    schema: &mut TableSchema,
    columns: &[&String],
) {
    if spec.format == config::SourceFormat::Parquet {
        return;
    }
    for column in columns {
        let declared = spec.overrides.iter().any(|(name, _)| name == *column);
        let Some(slot) = schema.columns.iter_mut().find(|(name, _)| name == *column) else { continue };
        if !declared {
            slot.1 = ValueType::String;
            spec.overrides.push(((*column).clone(), ValueType::String));
        }
    }
}

/// A lookup of an entity: its file's schema read, its key and the entity's `on` column checked
/// (present, one type), its other columns added to the entity's schema (no clash).
fn plan_lookup(
    project: &Project,
    entity_file: &str,
    schema: &mut TableSchema,
    name: &str,
    lookup: &config::LookupConfig,
) -> Result<PlannedLookup> {
    let mut spec = project.source_spec(&lookup.source, &lookup.columns, &[]);
    let mut lookup_schema = project.read_schema(&spec, &lookup.source)?;
    read_as_identifiers(&mut spec, &mut lookup_schema, &[&lookup.key]);
    let key_ty =
        require_column(&lookup_schema, &spec.display, &lookup.key, &format!("key (of lookup `{name}`)"))?;
    let on = lookup.on.clone().unwrap_or_else(|| lookup.key.clone());
    let on_ty = require_column(schema, entity_file, &on, &format!("lookup `{name}`"))?;
    if on_ty != key_ty {
        return Err(Error::Schema {
            message: format!(
                "lookup `{name}`: `{on}` of {entity_file} is {on_ty}, but the key `{}` of {} is {key_ty}",
                lookup.key, spec.display
            ),
            hint: Some(format!(
                "keys of different types never match; declare one type for both, e.g. columns = {{ {} = \"{on_ty}\" }} in [lookups.{name}]",
                lookup.key
            )),
        });
    }
    let mut columns = Vec::new();
    for (column, ty) in lookup_schema.columns.iter().filter(|(c, _)| *c != lookup.key) {
        if schema.get(column).is_some() {
            return Err(Error::Schema {
                message: format!(
                    "lookup `{name}`: the column `{column}` of {} is also a column of {entity_file}",
                    spec.display
                ),
                hint: Some("rename one of them: a lookup's columns become attributes of the entity".into()),
            });
        }
        columns.push((column.clone(), *ty));
    }
    schema.columns.extend(columns.iter().cloned());
    Ok(PlannedLookup { name: name.to_string(), spec, key: lookup.key.clone(), on, columns })
}

/// The schema of an entity, read once into `entities`.
fn read_entity(
    project: &Project,
    entities: &mut HashMap<String, PlannedEntity>,
    name: &str,
) -> Result<PlannedEntity> {
    if let Some(entity) = entities.get(name) {
        return Ok(entity.clone());
    }
    let config = project
        .config
        .entities
        .get(name)
        .ok_or_else(|| Error::Internal(format!("entity `{name}` vanished after parsing")))?;
    let parent_key = match &config.parent {
        None => None,
        Some(parent) => Some(
            &project
                .config
                .entities
                .get(parent.get_ref())
                .ok_or_else(|| Error::Internal(format!("parent `{}` vanished", parent.get_ref())))?
                .key,
        ),
    };
    let project_entity = project.config.project.entity.get_ref();
    let lookups: Vec<(&String, &config::LookupConfig)> = project
        .config
        .lookups
        .iter()
        .filter(|(_, l)| l.entity.as_ref().map_or(project_entity, |e| e.get_ref()) == name)
        .collect();
    let lookup_columns: Vec<&String> = lookups.iter().map(|(_, l)| l.on.as_ref().unwrap_or(&l.key)).collect();
    let identifiers: Vec<&String> = std::iter::once(&config.key)
        .chain(parent_key)
        .chain(config.hierarchy.as_ref().map(|h| h.get_ref()))
        .chain(lookup_columns.iter().copied())
        .collect();
    let (spec, schema) = match (&project.config.events, config.from_events) {
        (Some(events), true) => {
            // The distinct keys of the events: one column, typed as the events' key.
            let time = [(events.time.clone(), ValueType::Timestamp)];
            let mut spec = project.source_spec(&events.source, &events.columns, &time);
            let mut schema = project.read_schema(&spec, &events.source)?;
            read_as_identifiers(&mut spec, &mut schema, &[&events.entity_key]);
            let ty = require_column(&schema, &spec.display, &events.entity_key, "entity_key")?;
            (spec, TableSchema { columns: vec![(config.key.clone(), ty)] })
        }
        _ => {
            let mut spec = project.source_spec(&config.source, &config.columns, &[]);
            let mut schema = project.read_schema(&spec, &config.source)?;
            read_as_identifiers(&mut spec, &mut schema, &identifiers);
            (spec, schema)
        }
    };
    require_column(&schema, &spec.display, &config.key, "key")?;
    let parent = match (&config.parent, parent_key) {
        (Some(parent), Some(parent_key)) => {
            require_column(
                &schema,
                &spec.display,
                parent_key,
                &format!("parent key (of `{}`)", parent.get_ref()),
            )?;
            Some(ParentLink { entity: parent.get_ref().clone(), column: parent_key.clone() })
        }
        _ => None,
    };
    let hierarchy = match &config.hierarchy {
        None => None,
        Some(column) => {
            let ty = require_column(&schema, &spec.display, column.get_ref(), "hierarchy")?;
            let key_ty = schema.get(&config.key);
            if Some(ty) != key_ty {
                return Err(Error::Schema {
                    message: format!(
                        "{}: the hierarchy column `{}` is {ty} but the key `{}` is {}",
                        spec.display,
                        column.get_ref(),
                        config.key,
                        key_ty.map_or("missing", ValueType::name)
                    ),
                    hint: Some(format!(
                        "the hierarchy column holds keys of the same table: declare both the same type, e.g. columns = {{ {} = \"{}\" }}",
                        column.get_ref(),
                        key_ty.map_or("string", ValueType::name)
                    )),
                });
            }
            Some(column.get_ref().clone())
        }
    };
    let mut schema = schema;
    let mut planned_lookups = Vec::with_capacity(lookups.len());
    for (lookup_name, lookup) in lookups {
        planned_lookups.push(plan_lookup(project, &spec.display, &mut schema, lookup_name, lookup)?);
    }
    let entity = PlannedEntity {
        lookups: planned_lookups,
        name: name.to_string(),
        spec,
        schema,
        key: config.key.clone(),
        parent,
        hierarchy,
        from_events: config.from_events,
    };
    entities.insert(name.to_string(), entity.clone());
    Ok(entity)
}
