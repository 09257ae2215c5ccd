//! Loading a project folder and validating it: the project file, the schemas of its data files
//! (header and sample only), and every trait and segment rule, before any data is scanned.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use segmenta_core::ValueType;
use segmenta_core::config::{self, ConfigText, ProjectConfig, SourceFormat};
use segmenta_query::ingest::{self, SourceSpec, TableSchema};
use segmenta_rules::AttributeCatalog;
use segmenta_rules::ast::{ColumnInfo, ColumnSource, Ident, TypedExpr, TypedTrait};
use toml::Spanned;

use crate::error::{Error, Result, RuleProblem};

/// The project file's name inside a project folder.
pub const PROJECT_FILE: &str = "segmenta.toml";

/// The column prefix under which parent attributes appear in the evaluation table.
const PARENT_PREFIX: &str = "__segmenta_parent__";

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

    /// The store folder (default `DIR/.segmenta`).
    pub fn store_dir(&self) -> PathBuf {
        self.dir.join(self.config.project.store.as_deref().unwrap_or(".segmenta"))
    }

    /// The source spec of a data file named in the project.
    pub(crate) fn source_spec(
        &self,
        source: &Spanned<String>,
        columns: &indexmap::IndexMap<String, Spanned<String>>,
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

    fn problem(
        &self,
        source: String,
        text: &str,
        span: &std::ops::Range<usize>,
        diagnostic: segmenta_rules::Diagnostic,
    ) -> RuleProblem {
        let ct = ConfigText(&self.text);
        let offset = ct.value_offset(span, diagnostic.span.start);
        RuleProblem { source, text: text.to_string(), diagnostic, file_position: Some(ct.line_col(offset)) }
    }
}

/// A catalog over a fixed set of columns (and, for rules, segments).
#[derive(Debug, Default)]
pub(crate) struct Catalog {
    columns: HashMap<String, ColumnInfo>,
    order: Vec<String>,
    segments: Vec<String>,
    allows_segments: bool,
}

impl Catalog {
    fn add(&mut self, name: String, info: ColumnInfo) {
        if !self.columns.contains_key(&name) {
            self.order.push(name.clone());
        }
        self.columns.insert(name, info);
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

/// The events side of a validated project.
#[derive(Debug, Clone)]
pub struct ValidatedEvents {
    /// Where they come from.
    pub spec: SourceSpec,
    /// Their schema (time column forced to timestamp).
    pub schema: TableSchema,
}

/// The parent side of a validated project.
#[derive(Debug, Clone)]
pub struct ValidatedParent {
    /// The parent entity's name.
    pub name: String,
    /// Where it comes from.
    pub spec: SourceSpec,
    /// Its key column (also the column of child rows that points to it).
    pub key: String,
    /// Attributes rules read: (attribute, evaluation column).
    pub attributes: Vec<(String, String)>,
}

/// A project whose traits and rules resolved against the data files' schemas.
#[derive(Debug, Clone)]
pub struct Validated {
    /// The project.
    pub project: Project,
    /// The entity that segments hold.
    pub entity: String,
    /// Its source.
    pub entity_spec: SourceSpec,
    /// Its schema.
    pub entity_schema: TableSchema,
    /// Its key column.
    pub key: String,
    /// The parent entity, if any.
    pub parent: Option<ValidatedParent>,
    /// The events, if any.
    pub events: Option<ValidatedEvents>,
    /// Resolved traits, in file order.
    pub traits: Vec<(String, TypedTrait)>,
    /// Resolved segments, each after those it references.
    pub segments: Vec<(String, TypedExpr)>,
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

/// Validates a project: schemas, traits, rules, segment references. Reads only headers and
/// samples of the data files.
pub fn validate(project: &Project) -> Result<Validated> {
    let config = &project.config;
    let entity = config.project.entity.get_ref().clone();
    let entity_config = config
        .entities
        .get(&entity)
        .ok_or_else(|| Error::Internal(format!("entity `{entity}` vanished after parsing")))?;
    let entity_spec = project.source_spec(&entity_config.source, &entity_config.columns, &[]);
    let entity_schema = ingest::read_schema(&entity_spec)?;
    require_column(&entity_schema, &entity_spec.display, &entity_config.key, "key")?;

    let mut rules = Catalog { allows_segments: true, ..Catalog::default() };
    for (name, ty) in &entity_schema.columns {
        rules
            .add(name.clone(), ColumnInfo { column: name.clone(), ty: *ty, source: ColumnSource::Attribute });
    }

    let parent = match &entity_config.parent {
        None => None,
        Some(parent_name) => {
            let parent_name = parent_name.get_ref();
            let parent_config = config
                .entities
                .get(parent_name)
                .ok_or_else(|| Error::Internal(format!("parent `{parent_name}` vanished")))?;
            let spec = project.source_spec(&parent_config.source, &parent_config.columns, &[]);
            let schema = ingest::read_schema(&spec)?;
            require_column(&schema, &spec.display, &parent_config.key, "key")?;
            require_column(
                &entity_schema,
                &entity_spec.display,
                &parent_config.key,
                &format!("parent key (of `{parent_name}`)"),
            )?;
            let mut attributes = Vec::new();
            for (name, ty) in &schema.columns {
                let column = format!("{PARENT_PREFIX}{name}");
                rules.add(
                    format!("parent.{name}"),
                    ColumnInfo { column: column.clone(), ty: *ty, source: ColumnSource::ParentAttribute },
                );
                attributes.push((name.clone(), column));
            }
            Some(ValidatedParent {
                name: parent_name.clone(),
                spec,
                key: parent_config.key.clone(),
                attributes,
            })
        }
    };

    let mut problems = Vec::new();
    let mut traits = Vec::new();
    let events = match &config.events {
        None => None,
        Some(events_config) => {
            let events_entity = config.events_entity().unwrap_or(&entity);
            if events_entity != entity {
                return Err(Error::Schema {
                    message: format!("events belong to `{events_entity}` but segments hold `{entity}`"),
                    hint: Some("computing traits for another entity (rollups) is not supported yet; point [events] at the project's entity".into()),
                });
            }
            let spec = project.source_spec(
                &events_config.source,
                &events_config.columns,
                &[(events_config.time.clone(), ValueType::Timestamp)],
            );
            let schema = ingest::read_schema(&spec)?;
            require_column(&schema, &spec.display, &events_config.entity_key, "entity_key")?;
            let time_type = require_column(&schema, &spec.display, &events_config.time, "time")?;
            if time_type != ValueType::Timestamp {
                return Err(Error::Schema {
                    message: format!(
                        "{}: the time column `{}` is {time_type}, not a timestamp",
                        spec.display, events_config.time
                    ),
                    hint: Some("the time column must hold dates or timestamps".into()),
                });
            }
            let mut event_catalog = Catalog::default();
            for (name, ty) in &schema.columns {
                event_catalog.add(
                    name.clone(),
                    ColumnInfo { column: name.clone(), ty: *ty, source: ColumnSource::EventColumn },
                );
            }
            for (name, trait_config) in &config.traits {
                let expr = trait_config.expr();
                let source = format!("trait `{name}`");
                let resolved = segmenta_rules::parse_trait(expr.get_ref())
                    .and_then(|parsed| segmenta_rules::resolve_trait(&parsed, &event_catalog));
                match resolved {
                    Ok(t) => traits.push((name.clone(), t)),
                    Err(diagnostics) => {
                        for d in diagnostics {
                            problems.push(project.problem(source.clone(), expr.get_ref(), &expr.span(), d));
                        }
                    }
                }
            }
            Some(ValidatedEvents { spec, schema })
        }
    };

    // Traits become attributes of the entity for rules; a clash would make rules ambiguous.
    for (name, t) in &traits {
        if entity_schema.get(name).is_some() {
            return Err(Error::Schema {
                message: format!("trait `{name}` has the name of a column of {}", entity_spec.display),
                hint: Some("rename the trait".into()),
            });
        }
        rules.add(
            name.clone(),
            ColumnInfo { column: name.clone(), ty: t.output, source: ColumnSource::Trait },
        );
    }
    // A trait that failed to resolve is still a known name (so its rules report only the trait).
    rules.segments = config.segments.keys().cloned().collect();

    let mut parsed = Vec::new();
    for (name, segment) in &config.segments {
        let rule = &segment.rule;
        let source = format!("segment `{name}`");
        match segmenta_rules::parse_rule(rule.get_ref()) {
            Ok(expr) => parsed.push((name.clone(), expr)),
            Err(diagnostics) => {
                for d in diagnostics {
                    problems.push(project.problem(source.clone(), rule.get_ref(), &rule.span(), d));
                }
            }
        }
    }
    let mut resolved = HashMap::new();
    for (name, expr) in &parsed {
        let rule = &config.segments[name].rule;
        match segmenta_rules::resolve_rule(expr, &rules) {
            Ok(typed) => {
                resolved.insert(name.clone(), typed);
            }
            Err(diagnostics) => {
                for d in diagnostics {
                    problems.push(project.problem(
                        format!("segment `{name}`"),
                        rule.get_ref(),
                        &rule.span(),
                        d,
                    ));
                }
            }
        }
    }
    let deps: Vec<(String, Vec<String>)> = parsed
        .iter()
        .map(|(name, expr)| {
            (name.clone(), segmenta_rules::segment_references(expr).into_iter().map(|(n, _)| n).collect())
        })
        .collect();
    let order = match segmenta_rules::order_segments(&deps) {
        Ok(order) => order,
        Err(cycle) => {
            let first = cycle.first().cloned().unwrap_or_default();
            let rule = &config.segments[&first].rule;
            let span = parsed
                .iter()
                .find(|(n, _)| *n == first)
                .and_then(|(_, e)| {
                    segmenta_rules::segment_references(e)
                        .into_iter()
                        .find(|(n, _)| cycle.get(1) == Some(n))
                        .map(|(_, s)| s)
                })
                .unwrap_or_default();
            let diagnostic = segmenta_rules::Diagnostic {
                code: "segment_cycle",
                message: format!("segments reference each other in a cycle: {}", cycle.join(" -> ")),
                span,
                hint: Some("break the cycle: a segment cannot depend on itself".into()),
            };
            problems.push(project.problem(
                format!("segment `{first}`"),
                rule.get_ref(),
                &rule.span(),
                diagnostic,
            ));
            Vec::new()
        }
    };
    if !problems.is_empty() {
        return Err(Error::Rules { path: project.file.clone(), problems });
    }
    let segments = order
        .into_iter()
        .map(|i| {
            let name = deps[i].0.clone();
            let rule = resolved
                .remove(&name)
                .ok_or_else(|| Error::Internal(format!("segment `{name}` has no resolved rule")))?;
            Ok((name, rule))
        })
        .collect::<Result<Vec<_>>>()?;

    Ok(Validated {
        project: project.clone(),
        entity,
        entity_spec,
        entity_schema,
        key: entity_config.key.clone(),
        parent,
        events,
        traits,
        segments,
    })
}
