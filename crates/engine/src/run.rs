//! `run`: load data, compute traits and memberships (`evaluate_validated`, which `discover`
//! shares), then write the run folder atomically.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use arrow::compute::filter_record_batch;
use arrow::datatypes::DataType;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use segmenta_core::MICROS_PER_DAY;
use segmenta_core::config::SourceFormat;
use segmenta_core::rfm::RfmSegment;
use segmenta_query::ingest::{self, BadRows, LoadedTable, RejectedRow, SourceSpec};
use segmenta_query::{
    Derived, EntityData, EvalOutput, EvalRequest, EventsInput, EventsRequest, StaticListReport, Table,
    TableExtension,
};
use segmenta_store::{OutputFile, Store, files};
use serde_json::json;

use crate::clv::ClvExtension;
use crate::error::{Error, Result};
use crate::project::{Project, Validated, validate};

/// When a run is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsOf {
    /// The instant, microseconds since the epoch, UTC: events at or after it are ignored.
    pub instant: i64,
}

impl AsOf {
    /// Now.
    pub fn now() -> AsOf {
        AsOf { instant: Utc::now().timestamp_micros() }
    }

    /// Parses `--as-of`: a date `D` means the instant `D+1 00:00:00 UTC` (the whole day counts);
    /// an RFC 3339 instant is taken as is; a date-time without offset is UTC.
    pub fn parse(value: &str) -> Result<AsOf> {
        let value = value.trim();
        if let Ok(date) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
            let days = date.signed_duration_since(NaiveDate::default()).num_days();
            return Ok(AsOf { instant: (days + 1) * MICROS_PER_DAY });
        }
        if let Ok(instant) = DateTime::parse_from_rfc3339(value) {
            return Ok(AsOf { instant: instant.timestamp_micros() });
        }
        for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
            if let Ok(naive) = chrono::NaiveDateTime::parse_from_str(value, format) {
                return Ok(AsOf { instant: naive.and_utc().timestamp_micros() });
            }
        }
        Err(Error::AsOf { value: value.to_string() })
    }

    /// RFC 3339 text of the instant.
    pub fn to_rfc3339(self) -> String {
        DateTime::from_timestamp_micros(self.instant)
            .map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
            .unwrap_or_else(|| self.instant.to_string())
    }
}

/// Options of a run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The as-of instant; default: the project's `as_of`, else now.
    pub as_of: Option<AsOf>,
    /// Output folder; default: a new run folder in the project's store.
    pub output: Option<PathBuf>,
    /// Strict (default) or reject bad rows.
    pub bad_rows: BadRows,
    /// Worker threads; default: all cores.
    pub threads: Option<usize>,
}

/// Hooks for showing progress of the long steps.
pub trait Progress: Sync {
    /// A step starts.
    fn step(&self, message: &str);
    /// The current step is done.
    fn done(&self);
    /// How far a step with a known size is: `done` of `total` units. Default: nothing.
    fn position(&self, _step: &str, _done: u64, _total: u64) {}
}

/// Shows nothing.
pub struct NoProgress;

impl Progress for NoProgress {
    fn step(&self, _message: &str) {}
    fn done(&self) {}
}

/// One segment's size.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentSize {
    /// The segment.
    pub name: String,
    /// Members.
    pub size: u64,
    /// Members / entities (0 when there are no entities).
    pub share: f64,
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The run folder.
    pub output: PathBuf,
    /// The summary written to `summary.json`.
    pub summary: serde_json::Value,
    /// Segment sizes in output order.
    pub segments: Vec<SegmentSize>,
    /// What the static lists matched.
    pub static_lists: Vec<StaticListReport>,
}

struct Rejects {
    rows: Vec<(String, RejectedRow)>,
}

impl Rejects {
    fn add(&mut self, file: &str, rows: Vec<RejectedRow>) {
        self.rows.extend(rows.into_iter().map(|r| (file.to_string(), r)));
    }

    fn count(&self, file: &str) -> u64 {
        self.rows.iter().filter(|(f, _)| f == file).count() as u64
    }

    fn to_csv(&self) -> Result<Vec<u8>> {
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

fn rows(batches: &[RecordBatch]) -> u64 {
    batches.iter().map(|b| b.num_rows() as u64).sum()
}

/// Runs a project: validate, load, evaluate, write.
pub fn run(project: &Project, options: &RunOptions, progress: &dyn Progress) -> Result<RunReport> {
    progress.step("validating project");
    let validated = validate(project)?;
    progress.done();
    run_validated(&validated, options, progress)
}

/// Runs an already validated project.
pub fn run_validated(v: &Validated, options: &RunOptions, progress: &dyn Progress) -> Result<RunReport> {
    let evaluated = evaluate_validated(v, options, progress)?;
    write_run_folder(v, options, evaluated, progress)
}

/// A project evaluated as of an instant: the evaluation output and the run's summary, not yet
/// written anywhere. `run` writes it as a run folder; `discover` reads its evaluation table.
pub(crate) struct Evaluated {
    /// What DataFusion computed: traits, memberships, the evaluation table.
    pub output: EvalOutput,
    /// The summary a run writes to `summary.json`.
    pub summary: serde_json::Value,
    /// Segment sizes in output order.
    pub segments: Vec<SegmentSize>,
    /// The instant evaluated.
    pub as_of: AsOf,
    rejects: Rejects,
    /// The CLV fit, with `[clv]`.
    pub clv: Option<crate::clv::ClvReport>,
    /// The churn model and its holdout, with `[churn]`.
    pub churn: Option<crate::churn::ChurnReport>,
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

/// Loads every entity the plan needs, checks keys, reads static lists and evaluates: everything
/// of a run but writing it.
pub(crate) fn evaluate_validated(
    v: &Validated,
    options: &RunOptions,
    progress: &dyn Progress,
) -> Result<Evaluated> {
    let started = std::time::Instant::now();
    let threads =
        options.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let as_of = options.as_of.or(v.as_of).unwrap_or_else(AsOf::now);
    let mut rejects = Rejects { rows: Vec::new() };

    // Entity tables, the project's entity first.
    let mut entities = Vec::with_capacity(v.entities.len());
    let mut entity_rows = Vec::with_capacity(v.entities.len());
    for entity in &v.entities {
        progress.step(&format!("reading {}", entity.spec.display));
        let loaded = ingest::load_table(&entity.spec, options.bad_rows)?;
        let read = loaded.rows_read;
        let table = check_keys(loaded, &entity.spec, &entity.key, options.bad_rows, &mut rejects)?;
        entity_rows.push(json!({
            "entity": entity.name,
            "file": entity.spec.display,
            "read": read,
            "used": rows(&table.batches),
            "rejected": rejects.count(&entity.spec.display),
        }));
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

    let mut event_rows_read = None;
    let events = match &v.events {
        None => None,
        Some(e) => {
            let input = if e.spec.format == SourceFormat::Parquet {
                EventsInput::Parquet { path: e.spec.path.clone(), schema: e.schema.clone() }
            } else {
                progress.step(&format!("reading {}", e.spec.display));
                let loaded = ingest::load_table(&e.spec, options.bad_rows)?;
                event_rows_read = Some(loaded.rows_read);
                rejects.add(&e.spec.display, loaded.rejected);
                progress.done();
                EventsInput::Table(Table { schema: loaded.schema, batches: loaded.batches })
            };
            Some(EventsRequest { input, entity: e.entity.clone(), key: e.key.clone(), time: e.time.clone() })
        }
    };

    // Static lists: their ids.
    let mut derived = v.derived.clone();
    for item in &mut derived {
        if let Derived::Static { name, ids } = item {
            let spec = v
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
        entity: v.entity.clone(),
        parent_columns: v.parent_columns.clone(),
        events,
        traits: v.traits.clone(),
        rfm: v.rfm.clone(),
        derived,
        outputs: v.outputs.clone(),
        segments: v.segments.clone(),
        as_of: as_of.instant,
        threads,
        extensions: Vec::new(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .map_err(|source| Error::Io { path: PathBuf::from("<tokio runtime>"), source })?;
    let evaluate =
        |request: &EvalRequest| runtime.block_on(segmenta_query::evaluate(request)).map_err(query_error);
    let clv_at = |instant: AsOf| v.clv.as_ref().map(|plan| ClvExtension::new(plan.clone(), instant));

    // Churn: the model is trained on evaluations as of two earlier cutoffs.
    let churn = match &v.churn {
        None => None,
        Some(plan) => {
            // The cutoff evaluations compute only what churn reads.
            let (needed, uses_clv) = crate::churn::needed_traits(plan, v);
            let narrowed = v.narrowed_traits(&needed);
            let evaluate_at = |cutoff: AsOf, capture: Arc<dyn TableExtension>| -> Result<()> {
                let mut request = base.clone();
                request.traits = narrowed.traits.clone();
                request.rfm = narrowed.rfm.clone();
                request.parent_columns = narrowed.parent_columns.clone();
                request.derived.clear();
                request.segments.clear();
                request.outputs.clear();
                request.as_of = cutoff.instant;
                request.extensions = Vec::new();
                if uses_clv {
                    request.extensions.extend(clv_at(cutoff).map(|e| e as Arc<dyn TableExtension>));
                }
                request.extensions.push(capture);
                evaluate(&request).map(|_| ())
            };
            Some(crate::churn::prepare(plan, as_of, &evaluate_at, progress)?)
        }
    };

    let steps = format!("computing {} traits and {} segments", v.outputs.len(), v.segments.len());
    progress.step(&steps);
    let clv = clv_at(as_of);
    let mut request = base;
    request.extensions.extend(clv.clone().map(|e| e as Arc<dyn TableExtension>));
    request.extensions.extend(churn.clone().map(|e| e as Arc<dyn TableExtension>));
    let output = evaluate(&request)?;
    drop(request);
    let clv = clv.and_then(|e| e.report());
    let churn = churn.and_then(|e| e.report());
    progress.done();

    let share = |size: u64| if output.entities == 0 { 0.0 } else { size as f64 / output.entities as f64 };
    let segments: Vec<SegmentSize> = output
        .segment_sizes
        .iter()
        .map(|(name, size)| SegmentSize { name: name.clone(), size: *size, share: share(*size) })
        .collect();
    let size_of = |name: &str| segments.iter().find(|s| s.name == name).map_or(0, |s| s.size);

    let events_json = v.events.as_ref().map(|e| {
        let rejected = rejects.count(&e.spec.display);
        let counts = output.events;
        let ignored = counts.ignored_unknown_entity + counts.ignored_after_as_of + counts.ignored_no_time;
        json!({
            "file": e.spec.display,
            "entity": e.entity,
            "read": event_rows_read.unwrap_or(counts.read),
            "used": counts.used,
            "ignored": ignored,
            "ignored_unknown_entity": counts.ignored_unknown_entity,
            "ignored_after_as_of": counts.ignored_after_as_of,
            "ignored_no_time": counts.ignored_no_time,
            "rejected": rejected,
        })
    });
    let config = &v.project.config;
    let segments_json: Vec<serde_json::Value> = segments
        .iter()
        .map(|s| {
            let info = segment_info(config, &s.name);
            let parent_size = info.parent.as_deref().map(size_of);
            json!({
                "name": s.name,
                "kind": info.kind,
                "size": s.size,
                "share": s.share,
                "parent": info.parent,
                "share_of_parent": parent_size.map(|p| if p == 0 { 0.0 } else { s.size as f64 / p as f64 }),
                "description": info.description,
            })
        })
        .collect();
    let static_json: Vec<serde_json::Value> = output
        .static_lists
        .iter()
        .map(|list| {
            json!({
                "name": list.name,
                "file": v.static_lists.iter().find(|(n, _)| *n == list.name).map(|(_, spec)| spec.display.clone()),
                "ids": list.ids,
                "members": size_of(&list.name),
                "unknown_ids": list.unknown,
                "unknown_sample": list.unknown_sample,
            })
        })
        .collect();
    let summary = json!({
        "format_version": 1,
        "project": config.project.name,
        "entity": v.entity,
        "as_of": as_of.to_rfc3339(),
        "entities": output.entities,
        "entity_rows": entity_rows.first().cloned().unwrap_or_default(),
        "related_entity_rows": entity_rows.iter().skip(1).cloned().collect::<Vec<_>>(),
        "events": events_json,
        "traits": v.outputs.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
        "segments": segments_json,
        "static_lists": static_json,
        "rejected_rows": rejects.rows.len(),
        "rejects_file": if rejects.rows.is_empty() { None } else { Some(files::REJECTS) },
        "threads": threads,
        "elapsed_ms": started.elapsed().as_millis() as u64,
    });
    let mut summary = summary;
    if let (Some(plan), Some(report)) = (&v.clv, &clv) {
        summary["clv"] = crate::clv::params_document(plan, report, as_of);
    }
    if let Some(report) = &churn {
        summary["churn"] = json!({
            "model_file": crate::churn::CHURN_MODEL_FILE,
            "auc": report.holdout.auc,
            "holdout_rows": report.holdout.rows,
            "train_rows": report.model.rows,
            "scored": report.scored,
            "not_scored": report.not_scored,
        });
    }

    Ok(Evaluated { output, summary, segments, as_of, rejects, clv, churn })
}

/// Writes an evaluation as a run folder (atomically) and makes it the latest run.
fn write_run_folder(
    v: &Validated,
    options: &RunOptions,
    evaluated: Evaluated,
    progress: &dyn Progress,
) -> Result<RunReport> {
    let Evaluated { output, summary, segments, rejects, as_of, clv, churn } = evaluated;
    progress.step("writing output");
    let store = Store::new(v.project.store_dir());
    let dest = options.output.clone().unwrap_or_else(|| store.new_run_dir());
    let mut outputs = vec![
        (files::TRAITS, OutputFile::Parquet(output.traits)),
        (files::MEMBERSHIPS, OutputFile::Parquet(output.memberships)),
        (files::SUMMARY, OutputFile::Json(summary.clone())),
    ];
    if !rejects.rows.is_empty() {
        outputs.push((files::REJECTS, OutputFile::Bytes(rejects.to_csv()?)));
    }
    outputs.push((files::TABLE, OutputFile::Parquet(output.table)));
    if let (Some(plan), Some(report)) = (&v.clv, &clv) {
        outputs.push((
            crate::clv::CLV_PARAMS_FILE,
            OutputFile::Json(crate::clv::params_document(plan, report, as_of)),
        ));
    }
    if let (Some(plan), Some(report)) = (&v.churn, &churn) {
        outputs.push((
            crate::churn::CHURN_MODEL_FILE,
            OutputFile::Json(crate::churn::model_document(plan, report, as_of)),
        ));
    }
    segmenta_store::write_run(&dest, &outputs)?;
    // An explicit --output also becomes the latest run, so `members` reads what was just made.
    store.set_latest(&dest)?;
    progress.done();
    let static_lists = output.static_lists;
    Ok(RunReport { output: dest, summary, segments, static_lists })
}

/// What kind of segment a name is, its macro segment and its description.
pub(crate) struct SegmentInfo {
    /// `rule`, `static`, `scheme` or `rfm`.
    pub kind: &'static str,
    /// The macro segment of a micro segment.
    pub parent: Option<String>,
    /// What it is for.
    pub description: Option<String>,
}

pub(crate) fn segment_info(config: &segmenta_core::config::ProjectConfig, name: &str) -> SegmentInfo {
    if let Some(segment) = config.segments.get(name) {
        return SegmentInfo {
            kind: if segment.static_list.is_some() { "static" } else { "rule" },
            parent: segment.parent.as_ref().map(|p| p.get_ref().clone()),
            description: segment.description.clone(),
        };
    }
    if let Some(clv) = config.clv.as_ref().filter(|_| name == segmenta_core::config::DIAMONDS_SEGMENT) {
        let share = |s: Option<f64>, default: f64| (s.unwrap_or(default) * 100.0).round();
        let description = format!(
            "bottom {}% by current value (clv_value), top {}% by predicted CLV",
            share(clv.bottom_value_share, 0.8),
            share(clv.top_clv_share, 0.2)
        );
        return SegmentInfo { kind: "clv", parent: None, description: Some(description) };
    }
    if let Some((scheme, tier)) = name.split_once('.') {
        if scheme == "rfm" && config.rfm.is_some() {
            let label =
                RfmSegment::ALL.iter().find(|s| s.segment_name() == name).map(|s| s.label().to_string());
            return SegmentInfo { kind: "rfm", parent: None, description: label };
        }
        if let Some(scheme_config) = config.schemes.get(scheme) {
            let description = scheme_config
                .tiers
                .iter()
                .find(|t| t.name.get_ref() == tier)
                .and_then(|t| t.description.clone())
                .or_else(|| {
                    (scheme_config.otherwise.get_ref() == tier).then(|| "none of the tiers above".into())
                });
            return SegmentInfo { kind: "scheme", parent: None, description };
        }
    }
    SegmentInfo { kind: "rule", parent: None, description: None }
}

/// The ids of a static list file (its `entity_id` column), in file order.
fn read_static_list(spec: &SourceSpec) -> Result<Vec<String>> {
    let loaded = ingest::load_table(spec, BadRows::Strict)?;
    let mut ids = Vec::with_capacity(loaded.num_rows());
    for batch in &loaded.batches {
        let column = batch
            .column_by_name(crate::project::STATIC_LIST_COLUMN)
            .ok_or_else(|| Error::Internal(format!("{} lost its id column", spec.display)))?;
        let column = arrow::compute::cast(column, &DataType::Utf8).map_err(segmenta_query::Error::from)?;
        ids.extend(column.as_string::<i32>().iter().flatten().map(str::to_string));
    }
    Ok(ids)
}
