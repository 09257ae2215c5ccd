//! One evaluation of a plan as of an instant: load every entity the plan needs (checking keys),
//! read static lists, prepare the models (training on earlier cutoffs where a model needs it),
//! evaluate, and summarize. `run` writes the result as a run folder; `discover` and the model
//! commands read its evaluation table. Nothing is written here.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use arrow::compute::filter_record_batch;
use arrow::datatypes::DataType;
use segmenta_core::Cancel;
use segmenta_core::config::SourceFormat;
use segmenta_query::ingest::{self, BadRows, LoadedTable, RejectedRow, SourceSpec};
use segmenta_query::{
    Derived, EntityData, EvalOutput, EvalRequest, EventsInput, EventsRequest, StaticListReport, Table,
    TableExtension,
};
use segmenta_store::formats::{EntityRows, RunSummary};

use crate::as_of::AsOf;
use crate::error::{Error, Result};
use crate::exec::{Exec, check_cancelled};
use crate::hints;
use crate::keys::{self, KeyPolicy};
use crate::model::{Cutoffs, ModelRun, Outcome, PlannedModel};
use crate::plan::Plan;
use crate::progress::Progress;
use crate::project::STATIC_LIST_COLUMN;
use crate::summary::{self, SegmentSize};

/// Options of a run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The as-of instant; default: the project's `as_of`, else now.
    pub as_of: Option<AsOf>,
    /// Output folder; default: a new run folder in the project's store.
    pub output: Option<PathBuf>,
    /// Strict (default) or reject bad rows.
    pub bad_rows: BadRows,
    /// Worker threads of the scan and DataFusion partitions; default: the engine's threads.
    pub threads: Option<usize>,
    /// Asks the run to stop between stages and scan units (clones share the flag).
    pub cancel: Cancel,
    /// Keys that match no entity (above `[project] max_unknown_share`) are an error rather
    /// than a warning; `[project] strict` sets it too.
    pub strict: bool,
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The run folder.
    pub output: PathBuf,
    /// The summary written to `summary.json`.
    pub summary: RunSummary,
    /// Segment sizes in output order.
    pub segments: Vec<SegmentSize>,
    /// What the static lists matched.
    pub static_lists: Vec<StaticListReport>,
}

/// The rows set aside, by file.
#[derive(Clone)]
pub(crate) struct Rejects {
    rows: Vec<(String, RejectedRow)>,
}

impl Rejects {
    /// How many rows were set aside.
    pub(crate) fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when no row was set aside.
    pub(crate) fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    fn add(&mut self, file: &str, rows: Vec<RejectedRow>) {
        self.rows.extend(rows.into_iter().map(|r| (file.to_string(), r)));
    }

    pub(crate) fn count(&self, file: &str) -> u64 {
        self.rows.iter().filter(|(f, _)| f == file).count() as u64
    }

    pub(crate) fn to_csv(&self) -> Result<Vec<u8>> {
        let mut writer = csv::Writer::from_writer(Vec::new());
        let internal = |e: csv::Error| Error::Internal(format!("writing rejects: {e}"));
        writer.write_record(["file", "line", "reason", "raw"]).map_err(internal)?;
        for (file, row) in &self.rows {
            writer
                .write_record([file.as_str(), &row.line.to_string(), &row.reason, &row.raw])
                .map_err(internal)?;
        }
        writer.into_inner().map_err(|e| Error::Internal(format!("writing rejects: {e}")))
    }
}

/// Rejects (or fails on) rows with a NULL or duplicate key, keeping the first occurrence.
fn check_keys(
    table: LoadedTable,
    spec: &SourceSpec,
    key: &str,
    bad_rows: BadRows,
    rejects: &mut Rejects,
) -> Result<Table> {
    let LoadedTable { schema, batches, rejected, .. } = table;
    rejects.add(&spec.display, rejected);
    let mut seen: HashSet<String> = HashSet::new();
    let mut out = Vec::with_capacity(batches.len());
    let mut row_number = 0u64;
    for batch in batches {
        let keys = batch
            .column_by_name(key)
            .ok_or_else(|| Error::Internal(format!("key column `{key}` missing from loaded data")))?;
        let keys = arrow::compute::cast(keys, &DataType::Utf8).map_err(segmenta_query::Error::from)?;
        let keys = keys.as_string::<i32>();
        let mut keep = Vec::with_capacity(keys.len());
        for i in 0..keys.len() {
            row_number += 1;
            let problem = if keys.is_null(i) {
                Some(format!("the key column `{key}` is empty"))
            } else if !seen.insert(keys.value(i).to_string()) {
                Some(format!("duplicate key `{}` in column `{key}`", keys.value(i)))
            } else {
                None
            };
            match (problem, bad_rows) {
                (None, _) => keep.push(true),
                (Some(message), BadRows::Strict) => {
                    return Err(Error::Query(segmenta_query::Error::bad_input(
                        segmenta_query::Location { file: spec.display.clone(), line: None, column: Some(key.to_string()) },
                        format!("{message} (data row {row_number})"),
                        Some("entity keys must be unique and present; fix the file or run with --on-bad-rows reject".into()),
                    )));
                }
                (Some(message), BadRows::Reject) => {
                    keep.push(false);
                    rejects.rows.push((
                        spec.display.clone(),
                        RejectedRow {
                            line: row_number,
                            reason: format!("{message} (data row {row_number})"),
                            raw: keys.value(i).to_string(),
                        },
                    ));
                }
            }
        }
        let mask = BooleanArray::from(keep);
        out.push(filter_record_batch(&batch, &mask).map_err(segmenta_query::Error::from)?);
    }
    Ok(Table { schema, batches: out })
}

/// An entity's table with the columns of its lookups joined on (NULL where the entity's value
/// matches no key of the lookup); unmatched values above the share are a warning.
fn join_lookups(
    mut table: Table,
    entity: &crate::sources::PlannedEntity,
    bad_rows: BadRows,
    rejects: &mut Rejects,
    policy: &KeyPolicy,
    warnings: &mut Vec<segmenta_store::formats::Warning>,
) -> Result<Table> {
    for lookup in &entity.lookups {
        let loaded = ingest::load_table(&lookup.spec, bad_rows)?;
        let lookup_table = check_keys(loaded, &lookup.spec, &lookup.key, bad_rows, rejects)?;
        let rows = arrow::compute::concat_batches(&lookup_table.schema.arrow_schema(), &lookup_table.batches)
            .map_err(segmenta_query::Error::from)?;
        let keys = keys::column_text(&rows, &lookup.key)?;
        let index: std::collections::HashMap<&str, u32> = keys
            .as_string::<i32>()
            .iter()
            .enumerate()
            .filter_map(|(i, k)| k.map(|k| (k, i as u32)))
            .collect();
        let mut unmatched = keys::Unmatched::default();
        let mut batches = Vec::with_capacity(table.batches.len());
        for batch in &table.batches {
            let on = keys::column_text(batch, &lookup.on)?;
            let on = on.as_string::<i32>();
            let indices: arrow::array::UInt32Array = on
                .iter()
                .map(|value| {
                    let value = value?;
                    let found = index.get(value).copied();
                    unmatched.observe(value, found.is_some());
                    found
                })
                .collect();
            let mut columns = batch.columns().to_vec();
            for (name, _) in &lookup.columns {
                let column = rows.column_by_name(name).ok_or_else(|| {
                    Error::Internal(format!("lookup `{}` lost its column `{name}`", lookup.name))
                })?;
                columns.push(
                    arrow::compute::take(column.as_ref(), &indices, None)
                        .map_err(segmenta_query::Error::from)?,
                );
            }
            batches.push(columns);
        }
        let mut schema = table.schema.clone();
        schema.columns.extend(lookup.columns.iter().cloned());
        let arrow_schema = schema.arrow_schema();
        table = Table {
            batches: batches
                .into_iter()
                .map(|columns| RecordBatch::try_new(arrow_schema.clone(), columns))
                .collect::<std::result::Result<_, _>>()
                .map_err(segmenta_query::Error::from)?,
            schema,
        };
        if policy.above(unmatched.unknown, unmatched.present) {
            warnings.push(segmenta_store::formats::Warning {
                code: "unknown_lookup_keys".into(),
                message: format!(
                    "lookup `{}`: {} of {} rows of {} ({:.1}%) have a `{}` that {} does not hold: {}",
                    lookup.name,
                    unmatched.unknown,
                    unmatched.present,
                    entity.spec.display,
                    unmatched.percent(),
                    lookup.on,
                    lookup.spec.display,
                    unmatched.examples()
                ),
                hint: format!(
                    "their lookup columns are NULL; add the missing keys to {} or check `{}`'s spelling",
                    lookup.spec.display, lookup.on
                ),
            });
        }
    }
    Ok(table)
}

/// The table of an entity whose rows are the distinct keys of the events: its key column only,
/// typed as declared, keys in order of first appearance (events without a key add none).
fn keys_of_events(
    entity: &crate::sources::PlannedEntity,
    events: &crate::sources::PlannedEvents,
    loaded: Option<&[RecordBatch]>,
    posted: &[RecordBatch],
) -> Result<Table> {
    let mut batches: Vec<RecordBatch> = match loaded {
        Some(loaded) => loaded.to_vec(),
        None => {
            vec![segmenta_store::read_parquet_columns(&events.spec.path, std::slice::from_ref(&events.key))?]
        }
    };
    batches.extend(posted.iter().cloned());
    let mut seen: HashSet<String> = HashSet::new();
    let mut keys: Vec<String> = Vec::new();
    for batch in &batches {
        let column = batch
            .column_by_name(&events.key)
            .ok_or_else(|| Error::Internal(format!("the events lost their key column `{}`", events.key)))?;
        let text = arrow::compute::cast(column, &DataType::Utf8).map_err(segmenta_query::Error::from)?;
        for key in text.as_string::<i32>().iter().flatten() {
            if seen.insert(key.to_string()) {
                keys.push(key.to_string());
            }
        }
    }
    let schema = entity.schema.clone();
    let ty = schema.get(&entity.key).ok_or_else(|| Error::Internal("an entity without its key".into()))?;
    let text: arrow::array::ArrayRef = Arc::new(arrow::array::StringArray::from(keys));
    let column = arrow::compute::cast(&text, &ingest::arrow_type(ty)).map_err(segmenta_query::Error::from)?;
    let batch =
        RecordBatch::try_new(schema.arrow_schema(), vec![column]).map_err(segmenta_query::Error::from)?;
    Ok(Table { schema, batches: vec![batch] })
}

/// The events posted to a server (the store's event log), typed by `schema`, when any were.
pub(crate) fn read_posted(plan: &Plan, schema: &ingest::TableSchema) -> Result<Option<LoadedTable>> {
    let log = segmenta_store::event_log::EventLog::new(&plan.project.store_dir());
    if !log.exists() {
        return Ok(None);
    }
    Ok(Some(ingest::load_log(log.path(), &posted_display(plan), schema)?))
}

/// How messages and the rejects file name the event log: its path in the project folder.
fn posted_display(plan: &Plan) -> String {
    let path = plan.project.store_dir().join(segmenta_store::event_log::EVENT_LOG);
    path.strip_prefix(&plan.project.dir).unwrap_or(&path).display().to_string()
}

fn rows(batches: &[RecordBatch]) -> u64 {
    batches.iter().map(|b| b.num_rows() as u64).sum()
}

/// A project evaluated as of an instant: the evaluation output and the run's summary, not yet
/// written anywhere.
pub(crate) struct Evaluated {
    /// What DataFusion computed: traits, memberships, the evaluation table.
    pub output: EvalOutput,
    /// The summary a run writes to `summary.json`.
    pub summary: RunSummary,
    /// Segment sizes in output order.
    pub segments: Vec<SegmentSize>,
    /// The instant evaluated.
    pub as_of: AsOf,
    /// The rows set aside.
    pub rejects: Rejects,
    /// What each model found, in planning order.
    pub outcomes: Vec<Arc<dyn Outcome>>,
}

/// The evaluations of a plan at other instants that models train on: the plan narrowed to the
/// columns kept, no derived columns, the models whose traits are kept, the capture last.
struct CutoffEvaluations<'a> {
    exec: &'a Exec,
    plan: &'a Plan,
    base: &'a EvalRequest,
    progress: &'a dyn Progress,
}

impl Cutoffs for CutoffEvaluations<'_> {
    fn evaluate(
        &self,
        instant: AsOf,
        keep: &HashSet<String>,
        capture: Arc<dyn TableExtension>,
    ) -> Result<()> {
        let mut keep = keep.clone();
        let mut models: Vec<&Arc<dyn PlannedModel>> = Vec::new();
        for model in &self.plan.models {
            if model.outputs().iter().any(|o| keep.contains(o)) {
                keep.extend(model.reads());
                models.push(model);
            }
        }
        let narrowed = self.plan.narrowed_traits(&keep);
        let mut request = self.base.clone();
        request.traits = narrowed.traits;
        request.rfm = narrowed.rfm;
        request.parent_columns = narrowed.parent_columns;
        request.derived.clear();
        request.segments.clear();
        request.outputs.clear();
        request.as_of = instant.instant;
        request.scanned = None;
        request.extensions = Vec::new();
        for model in models {
            let run = model.prepare(instant, self, self.progress)?;
            request.extensions.push(run as Arc<dyn TableExtension>);
        }
        request.extensions.push(capture);
        let _span = tracing::info_span!("cutoff", as_of = %instant.to_rfc3339()).entered();
        self.exec.block_on(segmenta_query::evaluate(&request)).map_err(query_error)?;
        Ok(())
    }
}

/// Loads every entity the plan needs, checks keys, reads static lists, prepares the models and
/// evaluates: everything of a run but writing it.
pub(crate) fn evaluate(
    exec: &Exec,
    plan: &Plan,
    options: &RunOptions,
    progress: &dyn Progress,
) -> Result<Evaluated> {
    evaluate_plan(exec, plan, options, progress).map_err(|error| plan.project.locate(error))
}

fn evaluate_plan(
    exec: &Exec,
    plan: &Plan,
    options: &RunOptions,
    progress: &dyn Progress,
) -> Result<Evaluated> {
    let started = std::time::Instant::now();
    let as_of = options.as_of.or(plan.as_of).unwrap_or_else(AsOf::now);
    let loaded = load(exec, plan, options, progress)?;
    evaluate_loaded(exec, plan, options, &loaded, as_of, None, progress, started)
}

/// What every evaluation of a plan reads, loaded once: the request (at no instant yet) with
/// its entity tables and events, and what loading found.
pub(crate) struct Loaded {
    /// The request; [`evaluate_loaded`] sets its instant.
    pub(crate) base: EvalRequest,
    rejects: Rejects,
    entity_rows: Vec<EntityRows>,
    warnings: Vec<segmenta_store::formats::Warning>,
    event_rows_read: Option<u64>,
    posted_rows: u64,
    policy: KeyPolicy,
}

/// Loads every entity the plan needs (checking keys and joining lookups), the events when
/// they are not Parquet (read where they are otherwise) and the static lists.
pub(crate) fn load(
    exec: &Exec,
    plan: &Plan,
    options: &RunOptions,
    progress: &dyn Progress,
) -> Result<Loaded> {
    let posted = match &plan.events {
        Some(e) => read_posted(plan, &e.schema)?,
        None => None,
    };
    load_with_posted(exec, plan, options, progress, posted)
}

/// [`load`], with the posted events read by the caller (a live evaluation reads them while
/// no batch is appended).
fn load_with_posted(
    exec: &Exec,
    plan: &Plan,
    options: &RunOptions,
    progress: &dyn Progress,
    posted: Option<LoadedTable>,
) -> Result<Loaded> {
    let threads = options.threads.filter(|&n| n > 0).unwrap_or_else(|| exec.threads());
    let cancel = &options.cancel;
    let mut rejects = Rejects { rows: Vec::new() };
    let project = &plan.project.config.project;
    let policy = KeyPolicy {
        max_unknown_share: project.max_unknown_share(),
        strict: options.strict || project.strict,
    };

    // Events loaded whole (CSV, JSON Lines), read once for the events and for an entity whose
    // rows are their keys.
    let mut loaded_events: Option<LoadedTable> = None;
    let load_events = |slot: &mut Option<LoadedTable>, e: &crate::sources::PlannedEvents| -> Result<()> {
        if slot.is_none() {
            check_cancelled(cancel)?;
            progress.step(&format!("reading {}", e.spec.display));
            let _span = tracing::info_span!("read_events").entered();
            *slot = Some(ingest::load_table(&e.spec, options.bad_rows)?);
            progress.done();
        }
        Ok(())
    };
    // The events posted to a server, read once; they come after the events file's rows.
    let posted_batches = posted.as_ref().map_or(&[][..], |p| &p.batches[..]);

    // Entity tables, the project's entity first.
    let mut lookup_warnings = Vec::new();
    let mut entities = Vec::with_capacity(plan.entities.len());
    let mut entity_rows = Vec::with_capacity(plan.entities.len());
    for entity in &plan.entities {
        check_cancelled(cancel)?;
        if entity.from_events {
            let events = plan.events.as_ref().ok_or_else(|| {
                Error::Internal(format!("entity `{}` from events without events", entity.name))
            })?;
            if events.spec.format != SourceFormat::Parquet {
                load_events(&mut loaded_events, events)?;
            }
            let table = keys_of_events(
                entity,
                events,
                loaded_events.as_ref().map(|loaded| &loaded.batches[..]),
                posted_batches,
            )?;
            let table =
                join_lookups(table, entity, options.bad_rows, &mut rejects, &policy, &mut lookup_warnings)?;
            let rows = rows(&table.batches);
            entity_rows.push(EntityRows {
                entity: entity.name.clone(),
                file: entity.spec.display.clone(),
                read: rows,
                used: rows,
                rejected: 0,
            });
            entities.push(EntityData {
                name: entity.name.clone(),
                source: entity.spec.display.clone(),
                table,
                key: entity.key.clone(),
                parent: None,
                hierarchy: None,
            });
            continue;
        }
        progress.step(&format!("reading {}", entity.spec.display));
        let _span = tracing::info_span!("read_entity", entity = %entity.name).entered();
        let loaded = ingest::load_table(&entity.spec, options.bad_rows)?;
        let read = loaded.rows_read;
        let table = check_keys(loaded, &entity.spec, &entity.key, options.bad_rows, &mut rejects)?;
        let table =
            join_lookups(table, entity, options.bad_rows, &mut rejects, &policy, &mut lookup_warnings)?;
        entity_rows.push(EntityRows {
            entity: entity.name.clone(),
            file: entity.spec.display.clone(),
            read,
            used: rows(&table.batches),
            rejected: rejects.count(&entity.spec.display),
        });
        entities.push(EntityData {
            name: entity.name.clone(),
            source: entity.spec.display.clone(),
            table,
            key: entity.key.clone(),
            parent: entity.parent.clone(),
            hierarchy: entity.hierarchy.clone(),
        });
        progress.done();
    }

    let mut warnings = policy.judge(keys::link_warnings(&entities, &policy)?)?;
    warnings.extend(policy.judge(lookup_warnings)?);
    if let Some(entity) = entities.first() {
        warnings.extend(hints::case_warnings(&plan.derived, entity)?);
    }

    let mut event_rows_read = None;
    let posted_rows = posted.as_ref().map_or(0, |p| p.rows_read);
    let (posted_batches, posted_rejected) = posted.map(|p| (p.batches, p.rejected)).unwrap_or_default();
    rejects.add(&posted_display(plan), posted_rejected);
    let events = match &plan.events {
        None => None,
        Some(e) => {
            let input = if e.spec.format == SourceFormat::Parquet {
                EventsInput::Parquet {
                    path: e.spec.path.clone(),
                    schema: e.schema.clone(),
                    appended: posted_batches,
                }
            } else {
                load_events(&mut loaded_events, e)?;
                let mut loaded = loaded_events
                    .take()
                    .ok_or_else(|| Error::Internal("the events were not loaded".into()))?;
                if loaded.schema != e.schema && !posted_batches.is_empty() {
                    return Err(Error::Internal(format!(
                        "{} was read with other types than planned",
                        e.spec.display
                    )));
                }
                event_rows_read = Some(loaded.rows_read + posted_rows);
                rejects.add(&e.spec.display, loaded.rejected);
                loaded.batches.extend(posted_batches);
                EventsInput::Table(Table { schema: loaded.schema, batches: loaded.batches })
            };
            Some(EventsRequest { input, entity: e.entity.clone(), key: e.key.clone(), time: e.time.clone() })
        }
    };

    // Static lists: their ids.
    let mut derived = plan.derived.clone();
    for item in &mut derived {
        if let Derived::Static { name, ids } = item {
            let spec = plan
                .static_lists
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, spec)| spec)
                .ok_or_else(|| Error::Internal(format!("static list `{name}` has no file")))?;
            *ids = read_static_list(spec)?;
        }
    }

    let base = EvalRequest {
        entities,
        entity: plan.entity.clone(),
        parent_columns: plan.parent_columns.clone(),
        events,
        traits: plan.traits.clone(),
        rfm: plan.rfm.clone(),
        derived,
        outputs: plan.outputs.clone(),
        segments: plan.segments.clone(),
        as_of: 0,
        threads,
        extensions: Vec::new(),
        cancel: cancel.clone(),
        pool: Some(exec.pool().clone()),
        scanned: None,
    };
    Ok(Loaded { base, rejects, entity_rows, warnings, event_rows_read, posted_rows, policy })
}

/// Evaluates a loaded plan as of `as_of`: prepares the models, evaluates (reading the events
/// scanned before when `scanned` holds them) and summarizes.
#[allow(clippy::too_many_arguments)]
pub(crate) fn evaluate_loaded(
    exec: &Exec,
    plan: &Plan,
    options: &RunOptions,
    loaded: &Loaded,
    as_of: AsOf,
    scanned: Option<Arc<segmenta_query::ScannedEvents>>,
    progress: &dyn Progress,
    started: std::time::Instant,
) -> Result<Evaluated> {
    let cancel = &options.cancel;
    let mut base = loaded.base.clone();
    base.as_of = as_of.instant;
    let threads = base.threads;
    let policy = &loaded.policy;
    let mut rejects = loaded.rejects.clone();
    let mut warnings = loaded.warnings.clone();

    // Models: prepared in planning order (churn trains on evaluations as of earlier cutoffs).
    let cutoffs = CutoffEvaluations { exec, plan, base: &base, progress };
    let mut runs: Vec<Arc<dyn ModelRun>> = Vec::with_capacity(plan.models.len());
    for model in &plan.models {
        check_cancelled(cancel)?;
        let _span = tracing::info_span!("prepare_model", model = model.section()).entered();
        runs.push(model.prepare(as_of, &cutoffs, progress)?);
    }

    check_cancelled(cancel)?;
    let steps = format!("computing {} traits and {} segments", plan.outputs.len(), plan.segments.len());
    progress.step(&steps);
    let mut request = base;
    request.scanned = scanned;
    fill_movements(plan, &mut request.derived, as_of)?;
    request.extensions.extend(runs.iter().map(|run| run.clone() as Arc<dyn TableExtension>));
    let output = {
        let _span = tracing::info_span!("evaluate", as_of = %as_of.to_rfc3339(), threads).entered();
        exec.block_on(segmenta_query::evaluate(&request)).map_err(query_error)?
    };
    drop(request);
    let outcomes: Vec<Arc<dyn Outcome>> = runs.iter().filter_map(|run| run.outcome()).collect();
    progress.done();

    if let Some(events) = &plan.events {
        let missing = keys::missing_event_keys(
            &output.event_keys,
            &events.spec.display,
            &events.key,
            options.bad_rows,
        )?;
        rejects.add(&events.spec.display, missing);
        let owner = plan.entities.iter().find(|e| e.name == events.entity);
        if let Some(owner) = owner
            && let Some(warning) = keys::event_warning(
                &output.events,
                &output.event_keys,
                &events.spec.display,
                &events.key,
                (&owner.spec.display, &owner.key),
                policy,
            )
        {
            warnings.extend(policy.judge(vec![warning])?);
        }
    }

    let share = |size: u64| if output.entities == 0 { 0.0 } else { size as f64 / output.entities as f64 };
    let segments: Vec<SegmentSize> = output
        .segment_sizes
        .iter()
        .map(|(name, size)| SegmentSize { name: name.clone(), size: *size, share: share(*size) })
        .collect();
    let summary = summary::run_summary(&summary::SummaryInput {
        plan,
        output: &output,
        segments: &segments,
        as_of,
        entity_rows: loaded.entity_rows.clone(),
        event_rows_read: loaded.event_rows_read,
        posted_rows: loaded.posted_rows,
        posted_rejected: rejects.count(&posted_display(plan)),
        rejected_rows: rejects.len() as u64,
        events_rejected: plan
            .events
            .as_ref()
            .map_or(0, |e| rejects.count(&e.spec.display) + rejects.count(&posted_display(plan))),
        threads,
        elapsed_ms: started.elapsed().as_millis() as u64,
        outcomes: &outcomes,
        warnings: &warnings,
    });
    Ok(Evaluated { output, summary, segments, as_of, rejects, outcomes })
}

/// An evaluation kept live (`crate::live`): the request as of its instant with its models
/// prepared and movements filled, and the event scan's state, so that later events are folded
/// in and the rest evaluated again without reading the events.
pub(crate) struct LiveEvaluation {
    request: EvalRequest,
    scan: segmenta_query::LiveScan,
    /// Where each entity's rows are in the evaluation table (`segmenta_query::evaluate_rows`).
    index: segmenta_query::RowIndex,
    /// The evaluation after the last batch.
    last: EvalOutput,
    /// Events before this instant change what a model trained on (churn's cutoffs): a batch
    /// holding one needs a full evaluation.
    pub(crate) trained_until: Option<i64>,
    /// The keys of every entity made from the events' keys (an event with a new key makes a
    /// new entity: a full evaluation).
    pub(crate) event_entity_keys: Vec<HashSet<String>>,
}

impl std::fmt::Debug for LiveEvaluation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveEvaluation").field("scan", &self.scan).finish_non_exhaustive()
    }
}

/// Evaluates `plan` as of `as_of` as a run would (the events file and `posted`, bad rows as
/// `bad_rows` says), keeping what [`LiveEvaluation::absorb`] needs.
pub(crate) fn evaluate_live(
    exec: &Exec,
    plan: &Plan,
    posted: Option<LoadedTable>,
    as_of: AsOf,
    bad_rows: BadRows,
) -> Result<(LiveEvaluation, EvalOutput)> {
    let located = |error| plan.project.locate(error);
    let options = RunOptions { as_of: Some(as_of), bad_rows, ..RunOptions::default() };
    let progress = &crate::progress::NoProgress;
    let loaded = load_with_posted(exec, plan, &options, progress, posted).map_err(located)?;
    let mut request = loaded.base;
    request.as_of = as_of.instant;
    let mut runs: Vec<Arc<dyn ModelRun>> = Vec::with_capacity(plan.models.len());
    {
        let cutoffs = CutoffEvaluations { exec, plan, base: &request, progress };
        for model in &plan.models {
            runs.push(model.prepare(as_of, &cutoffs, progress).map_err(located)?);
        }
    }
    fill_movements(plan, &mut request.derived, as_of)?;
    for (model, run) in plan.models.iter().zip(&runs) {
        let reused = Reused { run: run.clone(), reads: model.reads(), last: std::sync::Mutex::new(None) };
        request.extensions.push(Arc::new(reused));
    }
    let (scanned, scan) = {
        let _span = tracing::info_span!("scan_live").entered();
        segmenta_query::scan_live(&request).map_err(query_error).map_err(located)?
    };
    request.scanned = Some(scanned);
    let output = exec.block_on(segmenta_query::evaluate(&request)).map_err(query_error).map_err(located)?;
    let event_entity_keys = plan
        .entities
        .iter()
        .filter(|e| e.from_events)
        .filter_map(|e| request.entities.iter().find(|d| d.name == e.name))
        .map(|data| key_set(&data.table, &data.key))
        .collect::<Result<_>>()?;
    let trained_until = runs.iter().filter_map(|run| run.trained_until()).max();
    let index = segmenta_query::RowIndex::new(&request, &output).map_err(query_error)?;
    let live =
        LiveEvaluation { request, scan, index, last: output.clone(), trained_until, event_entity_keys };
    Ok((live, output))
}

impl LiveEvaluation {
    /// The request's events.
    pub(crate) fn events(&self) -> Option<&segmenta_query::EventsRequest> {
        self.request.events.as_ref()
    }

    /// Folds `batches` (posted events, in the events' types) into the scan and evaluates the
    /// rest again: what a full evaluation with them appended to the events computes. The rows
    /// the batch touched are evaluated alone where that is exact
    /// (`segmenta_query::evaluate_rows`; they come back, ascending), every row otherwise.
    pub(crate) fn absorb(
        &mut self,
        exec: &Exec,
        batches: &[RecordBatch],
    ) -> Result<(EvalOutput, Option<Vec<u32>>)> {
        let (scanned, touched) = self.scan.absorb(&self.request, batches).map_err(query_error)?;
        self.request.scanned = Some(scanned);
        let rows = {
            let _span = tracing::info_span!("evaluate_rows").entered();
            exec.block_on(segmenta_query::evaluate_rows(&self.request, &touched, &self.index, &self.last))
                .map_err(query_error)?
        };
        let (output, rows) = match rows {
            Some(evaluated) => (evaluated.output, Some(evaluated.rows)),
            None => {
                let _span = tracing::info_span!("evaluate_live").entered();
                (exec.block_on(segmenta_query::evaluate(&self.request)).map_err(query_error)?, None)
            }
        };
        self.last = output.clone();
        Ok((output, rows))
    }
}

/// A model's columns in a live evaluation, computed again only when a column the model reads
/// changed: a batch of events the model does not read (logins, for CLV's purchases) leaves
/// its fit and predictions as they were, exactly (a model's columns depend on the table only
/// through [`PlannedModel::reads`]).
struct Reused {
    run: Arc<dyn ModelRun>,
    reads: Vec<String>,
    last: std::sync::Mutex<Option<(Vec<Option<arrow::array::ArrayRef>>, ModelColumns)>>,
}

type ModelColumns = Vec<(String, arrow::array::ArrayRef)>;

impl std::fmt::Debug for Reused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reused").field("run", &self.run).finish_non_exhaustive()
    }
}

impl TableExtension for Reused {
    fn columns(
        &self,
        table: &RecordBatch,
    ) -> std::result::Result<ModelColumns, segmenta_query::ExtensionError> {
        let inputs: Vec<Option<arrow::array::ArrayRef>> =
            self.reads.iter().map(|name| table.column_by_name(name).cloned()).collect();
        let mut last =
            self.last.lock().map_err(|_| Box::new(Error::Internal("a model cache is poisoned".into())))?;
        if let Some((before, columns)) = last.as_ref() {
            let same = |a: &Option<arrow::array::ArrayRef>, b: &Option<arrow::array::ArrayRef>| match (a, b) {
                (Some(a), Some(b)) => a.as_ref() == b.as_ref(),
                (None, None) => true,
                _ => false,
            };
            if before.len() == inputs.len() && before.iter().zip(&inputs).all(|(a, b)| same(a, b)) {
                return Ok(columns.clone());
            }
        }
        let columns = self.run.columns(table)?;
        *last = Some((inputs, columns.clone()));
        Ok(columns)
    }

    /// What the model reads, and what it added the last time it computed every row.
    fn names(&self) -> Option<(Vec<String>, Vec<String>)> {
        let last = self.last.lock().ok()?;
        let (_, columns) = last.as_ref()?;
        Some((self.reads.clone(), columns.iter().map(|(name, _)| name.clone()).collect()))
    }

    fn row_columns(
        &self,
        table: &RecordBatch,
    ) -> Option<std::result::Result<ModelColumns, segmenta_query::ExtensionError>> {
        self.run.row_columns(table)
    }
}

/// The text of every key in `table`'s column `key`.
fn key_set(table: &Table, key: &str) -> Result<HashSet<String>> {
    let mut keys = HashSet::new();
    for batch in &table.batches {
        let column = batch
            .column_by_name(key)
            .ok_or_else(|| Error::Internal(format!("an entity lost its key column `{key}`")))?;
        let text = arrow::compute::cast(column, &DataType::Utf8).map_err(segmenta_query::Error::from)?;
        keys.extend(text.as_string::<i32>().iter().flatten().map(str::to_string));
    }
    Ok(keys)
}

/// An evaluation error; a model's error passes through a table extension as it was raised.
fn query_error(error: segmenta_query::Error) -> Error {
    match error {
        segmenta_query::Error::Extension(inner) => match inner.downcast::<Error>() {
            Ok(error) => *error,
            Err(other) => Error::Internal(other.to_string()),
        },
        other => Error::Query(other),
    }
}

/// The ids of a static list file (its `entity_id` column), in file order.
fn read_static_list(spec: &SourceSpec) -> Result<Vec<String>> {
    let loaded = ingest::load_table(spec, BadRows::Strict)?;
    let mut ids = Vec::with_capacity(loaded.num_rows());
    for batch in &loaded.batches {
        let column = batch
            .column_by_name(STATIC_LIST_COLUMN)
            .ok_or_else(|| Error::Internal(format!("{} lost its id column", spec.display)))?;
        let column = arrow::compute::cast(column, &DataType::Utf8).map_err(segmenta_query::Error::from)?;
        ids.extend(column.as_string::<i32>().iter().flatten().map(str::to_string));
    }
    Ok(ids)
}

/// Gives each movement segment the previous snapshot's members of its ends: the newest snapshot
/// before `as_of` in the catalog. Without one, movements are empty.
fn fill_movements(plan: &Plan, derived: &mut [Derived], as_of: AsOf) -> Result<()> {
    if !derived.iter().any(|d| matches!(d, Derived::Movement { .. })) {
        return Ok(());
    }
    let ends: Vec<&str> = derived
        .iter()
        .filter_map(|d| match d {
            Derived::Movement { from, to, .. } => Some([from, to]),
            _ => None,
        })
        .flatten()
        .flatten()
        .map(String::as_str)
        .collect();
    // Without an earlier snapshot nobody moved: the movements stay empty (docs/project-file.md).
    let Some(previous) = crate::stored::previous(&plan.project, as_of.instant)? else {
        return Ok(());
    };
    let members = crate::stored::members_of(&previous.run_dir, &ends)?;
    let of = |end: &Option<String>| end.as_ref().and_then(|e| members.get(e)).cloned().unwrap_or_default();
    for item in derived.iter_mut() {
        if let Derived::Movement { from, to, previous, .. } = item {
            *previous = Some(segmenta_query::PreviousMembers { from: of(from), to: of(to) });
        }
    }
    Ok(())
}
