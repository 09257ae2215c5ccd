//! Validation: a project file and the schemas of its data files (header and sample only) turned
//! into the evaluation [`Plan`], before any data is scanned. It runs in steps, each adding to
//! the [`Planner`] and recording the problems it finds (every step runs even after a problem, so
//! one validation reports every problem it can):
//!
//! 1. the project's entity and `as_of`, then the events and their catalog;
//! 2. traits, entity by entity, children before parents (a rollup reads its child's traits);
//! 3. the catalog of rules: attributes, traits, the parent's columns;
//! 4. RFM; then every registered model (`crate::models`), in order;
//! 5. scores' event lines, then scores and schemes join the catalog; reserved and clashing names;
//! 6. derived columns (segments, schemes and their tiers, models' segments, RFM segments,
//!    scores), parsed, resolved and ordered by dependency (cycles reported);
//! 7. the entities a run must read;
//! 8. the keys matched against each other: one type on both sides.

use std::collections::{HashMap, HashSet};

use indexmap::IndexMap;
use segmenta_core::config::{self, ConfigText, RFM_TRAITS, RollupTarget};
use segmenta_core::rfm::{RfmFrequency, RfmSegment};
use segmenta_core::{ValueType, hidden};
use segmenta_query::ingest;
use segmenta_query::{Aggregate, DayPart, DaysSpec, Derived, PointsSpec, RfmColumns, TraitSource};
use segmenta_rules::Diagnostic;
use segmenta_rules::ast::{AggFunc, ColumnSource, TypedTrait};
use segmenta_store::formats::SegmentKind;
use toml::Spanned;

use crate::as_of::AsOf;
use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::models;
use crate::plan::Plan;
use crate::planner::{Node, Planner, require_column, rollup_problem};
use crate::project::{Project, STATIC_LIST_COLUMN};
use crate::sources::{PlannedEntity, PlannedEvents, SegmentInfo};

/// Validates a project: schemas, traits, rules, references. Reads only headers and samples of
/// the data files. Every problem found is reported (one error, or [`Error::Invalid`] with all).
pub fn validate(project: &Project) -> Result<Plan> {
    let mut planner = Planner::new(project)?;
    let as_of = plan_as_of(&mut planner);
    plan_events(&mut planner)?;
    let trait_types = plan_traits(&mut planner)?;
    let parent_columns = plan_rule_catalog(&mut planner, &trait_types)?;
    let rfm = plan_rfm(&mut planner);
    let mut planned_models = Vec::new();
    for model in models::registered() {
        let _span = tracing::debug_span!("plan_model", model = model.section()).entered();
        if let Some(planned) = model.plan(&mut planner)? {
            planned_models.push(planned);
        }
    }
    let score_events = plan_score_events(&mut planner);
    plan_names(&mut planner);
    let (derived, static_lists, segment_infos) = plan_derived(&mut planner, score_events, rfm.is_some())?;
    let entities = plan_entities(&mut planner)?;
    plan_keys(&mut planner, &entities);

    let mut errors = std::mem::take(&mut planner.errors);
    if !planner.problems.is_empty() {
        errors.push(Error::Rules {
            path: project.file.clone(),
            problems: std::mem::take(&mut planner.problems),
        });
    }
    if let Some(error) = Error::from_problems(errors) {
        return Err(error);
    }
    let Planner { entity_name, events, mut specs, outputs, rules, .. } = planner;
    let loaded: HashSet<&str> = entities.iter().map(|e| e.name.as_str()).collect();
    specs.retain(|s| loaded.contains(s.entity.as_str()));
    Ok(Plan {
        project: project.clone(),
        entity: entity_name,
        entities,
        events,
        traits: specs,
        parent_columns,
        rfm,
        derived,
        models: planned_models,
        static_lists,
        outputs,
        segments: project.config.segment_names(),
        segment_infos,
        as_of,
        rules_catalog: rules,
    })
}

/// `[project] as_of`, if given.
fn plan_as_of(planner: &mut Planner<'_>) -> Option<AsOf> {
    let project = planner.project;
    let text = project.config.project.as_of.as_ref()?;
    match AsOf::parse(text.get_ref()) {
        Ok(as_of) => Some(as_of),
        Err(_) => {
            let (line, column) = ConfigText(&project.text).line_col(text.span().start);
            planner.error(Error::Config {
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
            });
            None
        }
    }
}

/// Step 1: the events, their owner and the catalog of event columns.
fn plan_events(planner: &mut Planner<'_>) -> Result<()> {
    let project = planner.project;
    let config = &project.config;
    let Some(events_config) = &config.events else { return Ok(()) };
    let owner = config.events_entity().unwrap_or(&planner.entity_name).to_string();
    let mut spec = project.source_spec(
        &events_config.source,
        &events_config.columns,
        &[(events_config.time.clone(), ValueType::Timestamp)],
    );
    // A time column declared `date` is read as timestamps at midnight UTC, as the docs say of
    // dates in the time column.
    for (name, ty) in &mut spec.overrides {
        if *name == events_config.time && *ty == ValueType::Date {
            *ty = ValueType::Timestamp;
        }
    }
    if let Some(format) = &events_config.time_format {
        match ingest::TimeFormat::parse(format.get_ref()) {
            Ok(parsed) => spec.time_formats.push((events_config.time.clone(), parsed)),
            Err(message) => {
                let (line, column) = ConfigText(&project.text).line_col(format.span().start);
                planner.error(Error::Config {
                    path: project.file.clone(),
                    errors: vec![config::ConfigError {
                        message: format!("[events] time_format: {message}"),
                        line: Some(line),
                        column: Some(column),
                        hint: Some("use epoch_seconds, epoch_millis or a strftime pattern such as %Y%m%d or %d/%m/%Y %H:%M".into()),
                    }],
                });
            }
        }
    }
    let mut schema = project.read_schema(&spec, &events_config.source)?;
    let identifiers = [&events_config.entity_key, &planner.entity.key];
    crate::planner::read_as_identifiers(&mut spec, &mut schema, &identifiers);
    require_column(&schema, &spec.display, &events_config.entity_key, "entity_key")?;
    let time_type = require_column(&schema, &spec.display, &events_config.time, "time")?;
    if time_type != ValueType::Timestamp {
        planner.schema_problem(
            format!(
                "{}: the time column `{}` is {time_type}, not a timestamp",
                spec.display, events_config.time
            ),
            &format!(
                "the time column must hold dates or timestamps; declare it with columns = {{ {} = \"timestamp\" }} (or \"date\") to read its text as times",
                events_config.time
            ),
        );
    }
    planner.entity(&owner)?;
    planner.event_catalog.add_schema(&schema, ColumnSource::EventColumn);
    planner.events = Some(PlannedEvents {
        spec,
        schema,
        entity: owner,
        key: events_config.entity_key.clone(),
        time: events_config.time.clone(),
    });
    Ok(())
}

/// Per entity, its traits' names and types.
type TraitTypes = HashMap<String, Vec<(String, ValueType)>>;

/// Step 2: traits, entity by entity, children before parents (a rollup reads its child's
/// traits); within an entity, event traits, then rollups over children, then hierarchy rollups.
fn plan_traits(planner: &mut Planner<'_>) -> Result<TraitTypes> {
    let project = planner.project;
    let config = &project.config;
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
    let mut trait_types: TraitTypes = HashMap::new();
    for owner in &owners {
        let owner_entity = planner.entity(owner)?;
        let own: Vec<(&String, &config::TraitConfig)> =
            config.traits.iter().filter(|(name, _)| config.trait_entity(name) == Some(owner)).collect();
        let mut types: Vec<(String, ValueType)> = Vec::new();
        let kind = |t: &config::TraitConfig| match t.over.as_ref().map(|o| o.get_ref()) {
            _ if segmenta_rules::is_derived_trait(t.expr.get_ref()) => 3,
            None => 0,
            Some(RollupTarget::Children | RollupTarget::Descendants) => 2,
            Some(RollupTarget::Entity(_)) => 1,
        };
        for pass in 0..3 {
            for (name, t) in own.iter().filter(|(_, t)| kind(t) == pass) {
                let source = format!("trait `{name}`");
                let (catalog, trait_source) = match t.over.as_ref().map(|o| o.get_ref()) {
                    None => {
                        let Some(events) = planner.events.clone() else {
                            planner.schema_problem(
                                format!("trait `{name}` needs events and there is no [events] section"),
                                "add [events] with source, entity_key and time",
                            );
                            continue;
                        };
                        let reachable = events.entity == *owner
                            || events.schema.get(&owner_entity.key).is_some()
                            || planner
                                .entity(&events.entity)?
                                .parent
                                .as_ref()
                                .is_some_and(|p| p.entity == *owner);
                        if !reachable {
                            planner.schema_problem(
                                format!(
                                    "trait `{name}` belongs to `{owner}` but {} carries no `{}` column and its events belong to `{}`",
                                    events.spec.display, owner_entity.key, events.entity
                                ),
                                &format!(
                                    "add the `{}` column to the events, or make `{owner}` the parent of `{}`",
                                    owner_entity.key, events.entity
                                ),
                            );
                            continue;
                        }
                        (planner.event_catalog.clone(), TraitSource::Events)
                    }
                    Some(over @ (RollupTarget::Children | RollupTarget::Descendants)) => {
                        let mut catalog = Catalog::default();
                        catalog.add_schema(&owner_entity.schema, ColumnSource::Attribute);
                        for (trait_name, ty) in &types {
                            catalog.add(trait_name.clone(), trait_name.clone(), *ty, ColumnSource::Trait);
                        }
                        (catalog, TraitSource::Hierarchy { descendants: *over == RollupTarget::Descendants })
                    }
                    Some(RollupTarget::Entity(child)) => {
                        let child_entity = planner.entity(child)?;
                        let mut catalog = Catalog::default();
                        catalog.add_schema(&child_entity.schema, ColumnSource::Attribute);
                        for (trait_name, ty) in trait_types.get(child).into_iter().flatten() {
                            catalog.add(trait_name.clone(), trait_name.clone(), *ty, ColumnSource::Trait);
                        }
                        (catalog, TraitSource::Rollup { child: child.to_string() })
                    }
                };
                let Some(typed) = planner.resolve_trait(&source, &t.expr, &catalog) else { continue };
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
                    planner.problems.push(project.problem(source, &t.expr, diagnostic));
                    continue;
                }
                if clashes_with_column(planner, name, &owner_entity) {
                    continue;
                }
                types.push(((*name).clone(), typed.output));
                planner.specs.push(segmenta_query::TraitSpec {
                    name: (*name).clone(),
                    entity: owner.clone(),
                    source: trait_source,
                    aggregate: Aggregate::Trait(Box::new(typed)),
                });
            }
        }
        let derived: Vec<(&String, &config::TraitConfig)> =
            own.iter().filter(|(_, t)| kind(t) == 3).copied().collect();
        plan_derived_traits(planner, owner, &derived, &mut types)?;
        trait_types.insert(owner.clone(), types);
    }
    Ok(trait_types)
}

/// Whether trait `name` takes the name of a column of its entity (recorded as a problem).
fn clashes_with_column(planner: &mut Planner<'_>, name: &str, owner: &PlannedEntity) -> bool {
    let clash = owner.schema.get(name).is_some();
    if clash {
        planner.schema_problem(
            format!("trait `{name}` has the name of a column of {}", owner.spec.display),
            "rename the trait",
        );
    }
    clash
}

/// Step 2, last: an entity's derived traits (values over its attributes and other traits),
/// parsed, ordered so that each comes after the derived traits it reads (a cycle is a located
/// error), and resolved against the attributes and the traits before them.
fn plan_derived_traits(
    planner: &mut Planner<'_>,
    owner: &str,
    derived: &[(&String, &config::TraitConfig)],
    types: &mut Vec<(String, ValueType)>,
) -> Result<()> {
    let project = planner.project;
    let owner_entity = planner.entity(owner)?;
    let mut parsed = Vec::new();
    for (name, t) in derived {
        let source = format!("trait `{name}`");
        if let Some(over) = &t.over {
            let diagnostic = Diagnostic::new(
                "derived_rollup",
                format!("trait `{name}` computes a value from other traits, so it cannot roll up over `{}`", over.get_ref()),
                segmenta_rules::ast::Span::new(0, t.expr.get_ref().len()),
            )
            .with_hint("remove `over`: a derived trait reads its own entity's attributes and traits; roll up an aggregate instead");
            planner.problems.push(project.problem(source, &t.expr, diagnostic));
            continue;
        }
        if clashes_with_column(planner, name, &owner_entity) {
            continue;
        }
        match segmenta_rules::parse_derived(t.expr.get_ref()) {
            Ok(value) => parsed.push((*name, *t, value)),
            Err(diagnostics) => {
                for d in diagnostics {
                    planner.problems.push(project.problem(source.clone(), &t.expr, d));
                }
            }
        }
    }
    // Each cycle is reported (at its first trait) and its traits left out; the rest is planned.
    let order = loop {
        let deps: Vec<(String, Vec<String>)> = parsed
            .iter()
            .map(|(name, _, value)| {
                let reads =
                    value.idents().into_iter().filter(|i| i.qualifier.is_none()).map(|i| i.name.clone());
                ((*name).clone(), reads.collect())
            })
            .collect();
        match segmenta_rules::order_segments(&deps) {
            Ok(order) => break order,
            Err(cycle) => {
                let Some((_, t, _)) = parsed.iter().find(|(name, _, _)| **name == cycle[0]) else {
                    break Vec::new();
                };
                let diagnostic = Diagnostic::new(
                    "trait_cycle",
                    format!("derived traits read each other in a cycle: {}", cycle.join(" → ")),
                    segmenta_rules::ast::Span::new(0, t.expr.get_ref().len()),
                )
                .with_hint("a derived trait may read only traits that do not read it back");
                planner.problems.push(project.problem(format!("trait `{}`", cycle[0]), &t.expr, diagnostic));
                parsed.retain(|(name, _, _)| !cycle.contains(name));
            }
        }
    };
    for i in order {
        let (name, t, value) = &parsed[i];
        let source = format!("trait `{name}`");
        let mut catalog = Catalog::default();
        catalog.add_schema(&owner_entity.schema, ColumnSource::Attribute);
        for (trait_name, ty) in types.iter() {
            catalog.add(trait_name.clone(), trait_name.clone(), *ty, ColumnSource::Trait);
        }
        let typed = match segmenta_rules::resolve_derived(value, &catalog) {
            Ok(typed) => typed,
            Err(diagnostics) => {
                for d in diagnostics {
                    planner.problems.push(project.problem(source.clone(), &t.expr, d));
                }
                continue;
            }
        };
        let Some(ty) = typed.value_type() else { continue };
        types.push(((*name).clone(), ty));
        planner.specs.push(segmenta_query::TraitSpec {
            name: (*name).clone(),
            entity: owner.to_string(),
            source: TraitSource::Derived,
            aggregate: Aggregate::Value(typed),
        });
    }
    Ok(())
}

/// Step 3: the catalog of rules starts with the entity's attributes, its traits and the
/// parent's attributes and traits (as `parent.*`); returns the parent columns rules may read.
fn plan_rule_catalog(planner: &mut Planner<'_>, trait_types: &TraitTypes) -> Result<Vec<(String, String)>> {
    let config = &planner.project.config;
    let entity_name = planner.entity_name.clone();
    let schema = planner.entity.schema.clone();
    planner.rules.add_schema(&schema, ColumnSource::Attribute);
    let own = trait_types.get(&entity_name);
    for name in config.traits.keys() {
        let ty = own.and_then(|types| types.iter().find(|(n, _)| n == name)).map(|(_, ty)| *ty);
        if config.trait_entity(name) == Some(entity_name.as_str())
            && let Some(ty) = ty
        {
            planner.add_output(name, ty);
        }
    }
    let mut parent_columns = Vec::new();
    if let Some(link) = planner.entity.parent.clone() {
        let parent = planner.entity(&link.entity)?;
        let parent_traits = trait_types.get(&link.entity).cloned().unwrap_or_default();
        for (name, ty) in parent.schema.columns.iter().chain(&parent_traits) {
            let column = hidden::parent_column(name);
            planner.rules.add(format!("parent.{name}"), column.clone(), *ty, ColumnSource::ParentAttribute);
            parent_columns.push((name.clone(), column));
        }
    }
    Ok(parent_columns)
}

/// Step 4: RFM, three traits over purchase events (the frequency counts purchase events, or
/// repeat purchase days as `[clv]` does), then scores (quintiles or fixed cut points).
fn plan_rfm(planner: &mut Planner<'_>) -> Option<RfmColumns> {
    let project = planner.project;
    let rfm_config = project.config.rfm.as_ref()?;
    planner.events.as_ref()?;
    let purchase = planner.event_condition("[rfm] purchase", &rfm_config.purchase);
    let amount = planner.numeric_event_column("[rfm] amount", rfm_config.amount.get_ref());
    if !planner.require_entity_events("[rfm]") {
        return None;
    }
    let amount = amount?;
    let amount_type = amount.ty;
    let amount_value = segmenta_rules::ast::TypedValue::Column { ty: amount.ty, column: amount };
    let within = rfm_config.within.as_ref().map(|w| *w.get_ref());
    let rfm_trait = |agg: AggFunc, arg, output| TypedTrait {
        agg,
        arg,
        condition: None,
        filter: purchase.clone(),
        within,
        output,
    };
    let frequency = match rfm_config.frequency() {
        RfmFrequency::Purchases => {
            Aggregate::Trait(Box::new(rfm_trait(AggFunc::Count, None, ValueType::Int)))
        }
        RfmFrequency::RepeatDays => Aggregate::Days(DaysSpec {
            condition: purchase.clone(),
            amount: None,
            part: DayPart::RepeatDays,
            within,
        }),
    };
    let raw = [
        (RFM_TRAITS[0], Aggregate::Trait(Box::new(rfm_trait(AggFunc::DaysSinceLast, None, ValueType::Int)))),
        (RFM_TRAITS[1], frequency),
        (RFM_TRAITS[2], Aggregate::Trait(Box::new(rfm_trait(AggFunc::Sum, Some(amount_value), amount_type)))),
    ];
    for (name, aggregate) in raw {
        planner.add_event_aggregate(name, aggregate);
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
        planner.add_output(name, ty);
    }
    let (recency_scoring, frequency_scoring, monetary_scoring) = rfm_config.thresholds.scoring();
    Some(RfmColumns {
        recency: RFM_TRAITS[0].into(),
        frequency: RFM_TRAITS[1].into(),
        monetary: RFM_TRAITS[2].into(),
        recency_scoring,
        frequency_scoring,
        monetary_scoring,
    })
}

/// Per score, its event lines' points columns and caps.
type ScoreEvents = HashMap<String, Vec<(String, Option<f64>)>>;

/// Step 5a: score event lines, points aggregated with the other event traits; then scores and
/// schemes join the catalog of rules.
fn plan_score_events(planner: &mut Planner<'_>) -> ScoreEvents {
    let config = &planner.project.config;
    let mut score_events: ScoreEvents = HashMap::new();
    for (s, (score, score_config)) in config.scores.iter().enumerate() {
        for (i, line) in score_config.events.iter().enumerate() {
            let source = format!("score `{score}` events[{i}]");
            if planner.events.is_none() {
                planner.schema_problem(
                    format!("score `{score}` counts events and there is no [events] section"),
                    "add [events] with source, entity_key and time",
                );
                break;
            }
            let Some(condition) = planner.event_condition(&source, &line.condition) else { continue };
            let reaches = planner.events.as_ref().is_some_and(|events| {
                events.entity == planner.entity_name || events.schema.get(&planner.entity.key).is_some()
            });
            if !reaches {
                planner.schema_problem(
                    format!("score `{score}` needs the events of `{}`", planner.entity_name),
                    "add the entity's key column to the events",
                );
                break;
            }
            let column = hidden::points_column(s, i);
            planner.add_event_aggregate(
                &column,
                Aggregate::Points(PointsSpec {
                    points: line.points,
                    half_life: line.half_life.as_ref().map(|h| *h.get_ref()),
                    condition: Some(condition),
                    within: line.within.as_ref().map(|w| *w.get_ref()),
                }),
            );
            score_events.entry(score.clone()).or_default().push((column, line.max));
        }
        planner.add_output(score, ValueType::Float);
    }
    for scheme in config.schemes.keys() {
        planner.add_output(scheme, ValueType::String);
    }
    score_events
}

/// Step 5b: output names that clash with the entity's columns, and user names that take the
/// prefix reserved for hidden columns.
fn plan_names(planner: &mut Planner<'_>) {
    let clashes: Vec<String> = planner
        .outputs
        .iter()
        .map(|(name, _)| name.clone())
        .filter(|name| planner.entity.schema.get(name).is_some())
        .collect();
    for name in clashes {
        let message = format!("`{name}` is the name of a column of {}", planner.entity.spec.display);
        planner.schema_problem(message, "rename the trait, score or scheme");
    }
    reserved_names(planner);
}

/// User columns, traits, scores, schemes and segments may not start with the hidden columns'
/// prefix: each such name is a located error.
fn reserved_names(planner: &mut Planner<'_>) {
    let project = planner.project;
    let config = &project.config;
    let text = ConfigText(&project.text);
    let mut errors = Vec::new();
    let mut located = |name: &str, what: &str, at: Option<usize>| {
        let problem = if name.trim().is_empty() {
            Some((
                format!("a {what} has an empty name"),
                "give it a name of letters, digits and `_`".to_string(),
            ))
        } else if name == segmenta_query::ENTITY_ID {
            Some((
                format!("{what} `{name}` takes the name of the id column of every output file"),
                "rename it; `entity_id` is the first column of traits.parquet, memberships.parquet and table.parquet"
                    .to_string(),
            ))
        } else if hidden::is_reserved(name) {
            Some((
                format!(
                    "{what} `{name}` starts with `{}`, which segmenta reserves for its own columns",
                    hidden::PREFIX
                ),
                format!("rename it so that it does not start with `{}`", hidden::PREFIX),
            ))
        } else {
            None
        };
        if let Some((message, hint)) = problem {
            let (line, column) = at.map(|offset| text.line_col(offset)).unzip();
            errors.push(config::ConfigError { message, line, column, hint: Some(hint) });
        }
    };
    for (name, t) in &config.traits {
        located(name, "trait", Some(t.expr().span().start));
    }
    for (name, s) in &config.scores {
        located(name, "score", s.rules.first().map(|r| r.rule.span().start));
    }
    for (name, s) in &config.schemes {
        located(name, "scheme", Some(s.otherwise.span().start));
    }
    for (name, s) in &config.segments {
        located(name, "segment", s.rule.as_ref().or(s.static_list.as_ref()).map(|r| r.span().start));
    }
    let mut schemas: Vec<(String, Vec<String>)> = vec![(
        planner.entity.spec.display.clone(),
        planner.entity.schema.names().map(String::from).collect(),
    )];
    if let Some(events) = &planner.events {
        schemas.push((events.spec.display.clone(), events.schema.names().map(String::from).collect()));
    }
    for (file, names) in schemas {
        for name in names.iter().filter(|n| hidden::is_reserved(n)) {
            planner.errors.push(Error::Schema {
                message: format!(
                    "{file}: the column `{name}` starts with `{}`, which segmenta reserves for its own columns",
                    hidden::PREFIX
                ),
                hint: Some("rename the column in the file (or in the query that writes it)".into()),
            });
        }
    }
    if !errors.is_empty() {
        planner.error(Error::Config { path: project.file.clone(), errors });
    }
}

/// What step 6 yields: derived columns in dependency order, static list files, segment infos.
type DerivedPlan = (Vec<Derived>, Vec<(String, ingest::SourceSpec)>, HashMap<String, SegmentInfo>);

/// Step 6: derived columns parsed, resolved and ordered by dependency.
fn plan_derived(planner: &mut Planner<'_>, mut score_events: ScoreEvents, rfm: bool) -> Result<DerivedPlan> {
    let project = planner.project;
    let config = &project.config;
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
    planner.rules.segments = config.segment_names();
    let rules = planner.rules.clone();
    let mut nodes: Vec<Node> = Vec::new();
    let mut items: Vec<Option<Derived>> = Vec::new();
    let mut static_lists = Vec::new();
    let mut infos: HashMap<String, SegmentInfo> = HashMap::new();
    for (name, segment) in &config.segments {
        let source = format!("segment `{name}`");
        infos.insert(
            name.clone(),
            SegmentInfo {
                kind: if segment.static_list.is_some() { SegmentKind::Static } else { SegmentKind::Rule },
                parent: segment.parent.as_ref().map(|p| p.get_ref().clone()),
                description: segment.description.clone(),
            },
        );
        if let Some(list) = &segment.static_list {
            let spec = project.source_spec(
                list,
                &IndexMap::new(),
                &[(STATIC_LIST_COLUMN.to_string(), ValueType::String)],
            );
            let schema = project.read_schema(&spec, list)?;
            if let Err(error) = require_column(&schema, &spec.display, STATIC_LIST_COLUMN, "id") {
                planner.error(error);
            }
            static_lists.push((name.clone(), spec));
            nodes.push(Node { name: name.clone(), references: Vec::new(), text: None });
            items.push(Some(Derived::Static { name: name.clone(), ids: Vec::new() }));
            continue;
        }
        let Some(rule) = &segment.rule else { continue };
        let parsed = planner.parse_rule(&source, rule);
        let mut refs = parsed.as_ref().map(&references).unwrap_or_default();
        refs.extend(segment.parent.iter().map(|p| p.get_ref().clone()));
        let typed = parsed.and_then(|expr| planner.resolve_rule(&source, rule, &expr, &rules));
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
            let parsed = planner.parse_rule(&source, &tier.rule);
            refs.extend(parsed.as_ref().map(&references).unwrap_or_default());
            if let Some(typed) =
                parsed.and_then(|expr| planner.resolve_rule(&source, &tier.rule, &expr, &rules))
            {
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
            let description = scheme_config
                .tiers
                .iter()
                .find(|t| t.name.get_ref() == tier.get_ref())
                .and_then(|t| t.description.clone())
                .or_else(|| {
                    (scheme_config.otherwise.get_ref() == tier.get_ref())
                        .then(|| "none of the tiers above".into())
                });
            infos.insert(
                segment.clone(),
                SegmentInfo { kind: SegmentKind::Scheme, parent: None, description },
            );
            nodes.push(Node { name: segment.clone(), references: vec![scheme.clone()], text: None });
            items.push(Some(Derived::Equals {
                name: segment,
                column: scheme.clone(),
                value: tier.get_ref().clone(),
            }));
        }
    }
    for (name, rule, info) in std::mem::take(&mut planner.model_segments) {
        infos.insert(name.clone(), info);
        nodes.push(Node { name: name.clone(), references: Vec::new(), text: None });
        items.push(Some(Derived::Segment { name, rule, parent: None }));
    }
    if rfm {
        for segment in RfmSegment::ALL {
            infos.insert(
                segment.segment_name(),
                SegmentInfo {
                    kind: SegmentKind::Rfm,
                    parent: None,
                    description: Some(segment.label().into()),
                },
            );
            nodes.push(Node { name: segment.segment_name(), references: Vec::new(), text: None });
            items.push(Some(Derived::Equals {
                name: segment.segment_name(),
                column: RFM_TRAITS[7].into(),
                value: segment.label().into(),
            }));
        }
    }
    for (name, movement) in &config.movements {
        infos.insert(
            name.clone(),
            SegmentInfo {
                kind: SegmentKind::Movement,
                parent: None,
                description: movement.description.clone(),
            },
        );
        let ends: Vec<String> =
            [&movement.from, &movement.to].into_iter().flatten().map(|e| e.get_ref().clone()).collect();
        nodes.push(Node { name: name.clone(), references: ends, text: None });
        items.push(Some(Derived::Movement {
            name: name.clone(),
            from: movement.from.as_ref().map(|e| e.get_ref().clone()),
            to: movement.to.as_ref().map(|e| e.get_ref().clone()),
            previous: None,
        }));
    }
    for (score, score_config) in &config.scores {
        let mut refs = Vec::new();
        let mut rules_points = Vec::new();
        let mut text = None;
        for (i, line) in score_config.rules.iter().enumerate() {
            let source = format!("score `{score}` rules[{i}]");
            let parsed = planner.parse_rule(&source, &line.rule);
            refs.extend(parsed.as_ref().map(&references).unwrap_or_default());
            if let Some(typed) =
                parsed.and_then(|expr| planner.resolve_rule(&source, &line.rule, &expr, &rules))
            {
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
                Some((source, text)) => {
                    planner.problems.push(project.problem(source.clone(), text, diagnostic))
                }
                None => planner.error(Error::Schema { message: diagnostic.message, hint: diagnostic.hint }),
            }
            Vec::new()
        }
    };
    if !planner.problems.is_empty() || !planner.errors.is_empty() {
        // Some items did not resolve: the plan is not returned, only the problems.
        return Ok((Vec::new(), static_lists, infos));
    }
    let mut derived = Vec::with_capacity(order.len());
    for i in order {
        derived.push(
            items[i]
                .take()
                .ok_or_else(|| Error::Internal(format!("`{}` has no resolved definition", nodes[i].name)))?,
        );
    }
    Ok((derived, static_lists, infos))
}

/// Step 7: the entities a run reads: the project's, its parent (for `parent.*`), the children
/// that rollups read, and the events' owner (for the accounting).
fn plan_entities(planner: &mut Planner<'_>) -> Result<Vec<PlannedEntity>> {
    let mut needed = vec![planner.entity_name.clone()];
    if let Some(link) = &planner.entity.parent {
        needed.push(link.entity.clone());
    }
    let mut i = 0;
    while i < needed.len() {
        let current = needed[i].clone();
        for spec in planner.specs.iter().filter(|s| s.entity == current) {
            if let TraitSource::Rollup { child } = &spec.source
                && !needed.contains(child)
            {
                needed.push(child.clone());
            }
        }
        i += 1;
    }
    if let Some(events) = &planner.events
        && !needed.contains(&events.entity)
    {
        needed.push(events.entity.clone());
    }
    needed.iter().map(|name| planner.entity(name)).collect()
}

/// Step 8: keys that are matched against each other (events to their entity, a child's link to
/// its parent's key) have one type, and keys are strings or integers. Keys of different types
/// never match silently: the user converts one explicitly by declaring its type.
fn plan_keys(planner: &mut Planner<'_>, entities: &[PlannedEntity]) {
    let project = planner.project;
    let config = &project.config;
    let text = ConfigText(&project.text);
    let mut errors = Vec::new();
    let mut located = |at: &Spanned<String>, message: String, hint: String| {
        let (line, column) = text.line_col(at.span().start);
        errors.push(config::ConfigError {
            message,
            line: Some(line),
            column: Some(column),
            hint: Some(hint),
        });
    };
    for entity in entities {
        let Some(entity_config) = config.entities.get(&entity.name) else { continue };
        if let Some(ty) = entity.schema.get(&entity.key)
            && !matches!(ty, ValueType::String | ValueType::Int)
        {
            located(
                &entity_config.source,
                format!(
                    "the key `{}` of {} is {ty}; keys are strings or integers",
                    entity.key, entity.spec.display
                ),
                format!("declare it as text: columns = {{ {} = \"string\" }}", entity.key),
            );
        }
        let Some(link) = &entity.parent else { continue };
        let Some(parent) = entities.iter().find(|e| e.name == link.entity) else { continue };
        if let (Some(child_ty), Some(parent_ty)) =
            (entity.schema.get(&link.column), parent.schema.get(&parent.key))
            && child_ty != parent_ty
        {
            located(
                &entity_config.source,
                format!(
                    "the link `{}` of {} to its parent is {child_ty}, but the key `{}` of {} is {parent_ty}",
                    link.column, entity.spec.display, parent.key, parent.spec.display
                ),
                convert_hint(&entity.name, &link.column, &parent.name, &parent.key, parent_ty),
            );
        }
    }
    if let (Some(events), Some(events_config)) = (&planner.events, &config.events) {
        let mut pairs = vec![(&events.key, events.entity.as_str())];
        if events.entity != planner.entity_name {
            pairs.push((&planner.entity.key, planner.entity_name.as_str()));
        }
        for (column, owner) in pairs {
            let Some(owner) = entities.iter().find(|e| e.name == owner) else { continue };
            if let (Some(event_ty), Some(key_ty)) = (events.schema.get(column), owner.schema.get(&owner.key))
                && event_ty != key_ty
            {
                located(
                    &events_config.source,
                    format!(
                        "the events' key `{column}` in {} is {event_ty}, but the key `{}` of {} is {key_ty}",
                        events.spec.display, owner.key, owner.spec.display
                    ),
                    convert_hint("events", column, &owner.name, &owner.key, key_ty),
                );
            }
        }
    }
    if !errors.is_empty() {
        planner.error(Error::Config { path: project.file.clone(), errors });
    }
}

/// How to make two key columns one type: declare either one as the other's type.
fn convert_hint(from: &str, column: &str, to: &str, key: &str, key_ty: ValueType) -> String {
    let section =
        |name: &str| if name == "events" { "[events]".to_string() } else { format!("[entities.{name}]") };
    let other = if key_ty == ValueType::String { "int" } else { "string" };
    format!(
        "keys of different types never match; declare one type for both: columns = {{ {column} = \"{}\" }} in {} \
         (an integer then reads as its decimal text), or columns = {{ {key} = \"{other}\" }} in {}",
        key_ty.name(),
        section(from),
        section(to)
    )
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
