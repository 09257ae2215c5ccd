//! `run`: load data, compute traits and memberships, write the run folder atomically.

use std::collections::HashSet;
use std::path::PathBuf;

use arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use arrow::compute::filter_record_batch;
use arrow::datatypes::DataType;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use segmenta_core::MICROS_PER_DAY;
use segmenta_core::config::SourceFormat;
use segmenta_query::ingest::{self, BadRows, LoadedTable, RejectedRow, SourceSpec};
use segmenta_query::{EvalRequest, EventsInput, EventsRequest, ParentRequest, Table};
use segmenta_store::{OutputFile, Store, files};
use serde_json::json;

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
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The as-of instant.
    pub as_of: AsOf,
    /// Output folder; default: a new run folder in the project's store.
    pub output: Option<PathBuf>,
    /// Strict (default) or reject bad rows.
    pub bad_rows: BadRows,
    /// Worker threads; default: all cores.
    pub threads: Option<usize>,
}

/// Hooks for showing progress of the long steps.
pub trait Progress {
    /// A step starts.
    fn step(&self, message: &str);
    /// The current step is done.
    fn done(&self);
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
    /// Segment sizes in evaluation order.
    pub segments: Vec<SegmentSize>,
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
    let started = std::time::Instant::now();
    let threads =
        options.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let mut rejects = Rejects { rows: Vec::new() };

    progress.step(&format!("reading {}", v.entity_spec.display));
    let loaded = ingest::load_table(&v.entity_spec, options.bad_rows)?;
    let entity_rows_read = loaded.rows_read;
    let entities = check_keys(loaded, &v.entity_spec, &v.key, options.bad_rows, &mut rejects)?;
    progress.done();

    let parent = match &v.parent {
        None => None,
        Some(p) => {
            progress.step(&format!("reading {}", p.spec.display));
            let loaded = ingest::load_table(&p.spec, options.bad_rows)?;
            let table = check_keys(loaded, &p.spec, &p.key, options.bad_rows, &mut rejects)?;
            progress.done();
            Some(ParentRequest {
                table,
                key: p.key.clone(),
                child_column: p.key.clone(),
                attributes: p.attributes.clone(),
            })
        }
    };

    let mut event_rows_read = None;
    let events = match &v.events {
        None => None,
        Some(e) => {
            let config =
                v.project.config.events.as_ref().ok_or_else(|| Error::Internal("events vanished".into()))?;
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
            Some(EventsRequest { input, key: config.entity_key.clone(), time: config.time.clone() })
        }
    };

    let steps = format!("computing {} traits and {} segments", v.traits.len(), v.segments.len());
    progress.step(&steps);
    let request = EvalRequest {
        entities,
        key: v.key.clone(),
        parent,
        events,
        traits: v.traits.clone(),
        segments: v.segments.clone(),
        as_of: options.as_of.instant,
        threads,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .map_err(|source| Error::Io { path: PathBuf::from("<tokio runtime>"), source })?;
    let output = runtime.block_on(segmenta_query::evaluate(&request))?;
    progress.done();

    let share = |size: u64| if output.entities == 0 { 0.0 } else { size as f64 / output.entities as f64 };
    let segments: Vec<SegmentSize> = output
        .segment_sizes
        .iter()
        .map(|(name, size)| SegmentSize { name: name.clone(), size: *size, share: share(*size) })
        .collect();
    // Summary segments in the project file's order (evaluation order may differ).
    let declared: Vec<&String> = v.project.config.segments.keys().collect();
    let mut ordered = segments.clone();
    ordered.sort_by_key(|s| declared.iter().position(|d| **d == s.name));

    let entity_rejected = rejects.count(&v.entity_spec.display);
    let events_json = v.events.as_ref().map(|e| {
        let rejected = rejects.count(&e.spec.display);
        let counts = output.events;
        let ignored = counts.ignored_unknown_entity + counts.ignored_after_as_of + counts.ignored_no_time;
        json!({
            "file": e.spec.display,
            "read": event_rows_read.unwrap_or(counts.read),
            "used": counts.used,
            "ignored": ignored,
            "ignored_unknown_entity": counts.ignored_unknown_entity,
            "ignored_after_as_of": counts.ignored_after_as_of,
            "ignored_no_time": counts.ignored_no_time,
            "rejected": rejected,
        })
    });
    let summary = json!({
        "format_version": 1,
        "project": v.project.config.project.name,
        "entity": v.entity,
        "as_of": options.as_of.to_rfc3339(),
        "entities": output.entities,
        "entity_rows": {
            "file": v.entity_spec.display,
            "read": entity_rows_read,
            "used": rows(&request.entities.batches),
            "rejected": entity_rejected,
        },
        "events": events_json,
        "traits": v.traits.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
        "segments": ordered.iter().map(|s| json!({
            "name": s.name,
            "size": s.size,
            "share": s.share,
            "description": v.project.config.segments.get(&s.name).and_then(|c| c.description.clone()),
        })).collect::<Vec<_>>(),
        "rejected_rows": rejects.rows.len(),
        "rejects_file": if rejects.rows.is_empty() { None } else { Some(files::REJECTS) },
        "threads": threads,
        "elapsed_ms": started.elapsed().as_millis() as u64,
    });

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
    segmenta_store::write_run(&dest, &outputs)?;
    // An explicit --output also becomes the latest run, so `members` reads what was just made.
    store.set_latest(&dest)?;
    progress.done();
    Ok(RunReport { output: dest, summary, segments: ordered })
}
