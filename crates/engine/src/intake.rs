//! Events posted to a server (`POST /v1/events`): each row checked against the events' schema
//! (the events file's columns and types, the time column a timestamp), the accepted ones
//! appended to the store's event log and synced to disk before the answer. Every later run
//! (and backfill) reads the log after the events file, so a posted event counts exactly as
//! one in the file would. A batch posted with an id is taken once: its record
//! (`{"$batch": ID, "events": N}`) goes into the log in the same write as its events.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::array::RecordBatch;
use segmenta_query::ingest::{self, RowProblem};
use segmenta_store::event_log::EventLog;

use crate::error::{Error, Result};
use crate::project::Project;
use crate::sources::PlannedEvents;

/// The most rows one call takes (a request body is bounded too).
pub const MAX_EVENTS: usize = 10_000;

/// The longest batch id taken, in bytes.
pub const MAX_BATCH_ID: usize = 128;

/// What became of a batch of posted events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestReport {
    /// Rows appended to the event log (durable when this is returned), or, for a duplicate,
    /// the rows the batch gives.
    pub accepted: usize,
    /// The rows refused, in the order posted, each with its 0-based index, column and reason.
    pub rejected: Vec<RowProblem>,
    /// The batch id was taken before: nothing was appended this time.
    pub duplicate: bool,
    /// Of the accepted rows, those whose key is no entity of the run served now (kept: the
    /// entity may arrive with a later run's data); `None` when that cannot be told (no run
    /// yet, or events keyed by another entity).
    pub unknown_entities: Option<usize>,
}

/// The store's event log with its one writer: appends are taken one at a time.
#[derive(Debug)]
pub struct Intake {
    log: Mutex<Log>,
    /// Events appended since this intake was made.
    appended: AtomicU64,
    /// The accepted rows of each batch since [`Intake::read_quietly`], while a live evaluation
    /// follows the log (`crate::live`); `None` otherwise.
    pending: Mutex<Option<Vec<RecordBatch>>>,
}

#[derive(Debug)]
struct Log {
    file: EventLog,
    /// The batch ids the log records, read from it on first use.
    batches: Option<HashSet<String>>,
}

impl Intake {
    /// The intake of `project`'s store (nothing is opened before the first batch).
    pub fn new(project: &Project) -> Intake {
        Intake {
            log: Mutex::new(Log { file: EventLog::new(&project.store_dir()), batches: None }),
            appended: AtomicU64::new(0),
            pending: Mutex::new(None),
        }
    }

    /// How many events were appended since this intake was made (a server's refresh starts a
    /// run when it grew).
    pub fn appended(&self) -> u64 {
        self.appended.load(Ordering::SeqCst)
    }

    /// Checks `rows` (each the text of one JSON object) against `events` and appends the
    /// accepted ones; when this returns, they are on disk. A batch with no accepted row writes
    /// nothing. With a `batch` id, a batch is taken once: posting the same id again (a client
    /// retrying after a lost answer) appends nothing and says `duplicate`.
    /// `known` tells whether a key (as text) is an entity, when that can be told.
    pub fn ingest(
        &self,
        events: &PlannedEvents,
        rows: &[String],
        batch: Option<&str>,
        known: Option<&dyn Fn(&str) -> bool>,
    ) -> Result<IngestReport> {
        if rows.len() > MAX_EVENTS {
            return Err(Error::Usage {
                message: format!("{} events in one batch; at most {MAX_EVENTS} are taken", rows.len()),
                hint: Some("send them in several batches".into()),
            });
        }
        if let Some(id) = batch {
            check_batch_id(id)?;
        }
        let required = [events.key.as_str(), events.time.as_str()];
        let checked = ingest::check_rows(&events.spec, &events.schema, rows, &required)?;
        let mut report = IngestReport {
            accepted: checked.lines.len(),
            rejected: checked.rejected,
            duplicate: false,
            unknown_entities: match known {
                Some(known) => Some(unknown_keys(&checked.batches, &events.key, known)?),
                None => None,
            },
        };
        let mut log = self.log.lock().map_err(|_| poisoned())?;
        let mut lines = Vec::with_capacity(checked.lines.len() + 1);
        if let Some(id) = batch {
            if log.batches.is_none() {
                let records = log.file.lines_starting_with(ingest::BATCH_MARKER)?;
                log.batches = Some(records.iter().filter_map(|line| batch_of(line)).collect());
            }
            if log.batches.as_ref().is_some_and(|seen| seen.contains(id)) {
                report.duplicate = true;
                return Ok(report);
            }
            // The batch's record and its events in one write: both are on disk, or neither is.
            lines.push(format!(
                "{}{},\"events\":{}}}",
                ingest::BATCH_MARKER,
                serde_json::Value::String(id.to_string()),
                checked.lines.len()
            ));
        }
        lines.extend(checked.lines);
        log.file.append(&lines)?;
        self.appended.fetch_add(report.accepted as u64, Ordering::SeqCst);
        // Under the log's lock: a live evaluation that read the log before this batch gets it
        // here, one that reads it later finds it there, never both.
        if let Some(pending) = self.pending.lock().map_err(|_| poisoned())?.as_mut() {
            pending.extend(checked.batches.iter().filter(|b| b.num_rows() > 0).cloned());
        }
        if let (Some(id), Some(seen)) = (batch, log.batches.as_mut()) {
            seen.insert(id.to_string());
        }
        Ok(report)
    }
}

impl Intake {
    /// Runs `read` (which reads the event log) while no batch is appended, and from then on
    /// keeps the accepted rows of every batch for [`Intake::take_pending`]: each event is in
    /// what `read` read or in what is taken later, once.
    /// With what `read` returned: [`Intake::appended`] as of the read.
    pub(crate) fn read_quietly<T>(&self, read: impl FnOnce() -> Result<T>) -> Result<(T, u64)> {
        let _log = self.log.lock().map_err(|_| poisoned())?;
        let value = read()?;
        *self.pending.lock().map_err(|_| poisoned())? = Some(Vec::new());
        Ok((value, self.appended()))
    }

    /// The rows appended since the last call (or since [`Intake::read_quietly`]), in order,
    /// and [`Intake::appended`] as of the last of them.
    pub(crate) fn take_pending(&self) -> Result<(Vec<RecordBatch>, u64)> {
        let _log = self.log.lock().map_err(|_| poisoned())?;
        let taken =
            self.pending.lock().map_err(|_| poisoned())?.as_mut().map(std::mem::take).unwrap_or_default();
        Ok((taken, self.appended()))
    }

    /// Stops keeping appended rows (a live evaluation stopped following the log).
    pub(crate) fn stop_pending(&self) {
        if let Ok(mut pending) = self.pending.lock() {
            *pending = None;
        }
    }
}

fn poisoned() -> Error {
    Error::Internal("the event log's lock is poisoned".into())
}

/// How many rows of `batches` have a key (column `key`, as text) that is not `known`.
fn unknown_keys(
    batches: &[arrow::array::RecordBatch],
    key: &str,
    known: &dyn Fn(&str) -> bool,
) -> Result<usize> {
    use arrow::array::AsArray;
    let mut unknown = 0;
    for batch in batches {
        let column = batch
            .column_by_name(key)
            .ok_or_else(|| Error::Internal(format!("posted events lost their key column `{key}`")))?;
        let text = arrow::compute::cast(column, &arrow::datatypes::DataType::Utf8)
            .map_err(segmenta_query::Error::from)?;
        unknown += text.as_string::<i32>().iter().flatten().filter(|k| !known(k)).count();
    }
    Ok(unknown)
}

/// The id of a batch record line.
fn batch_of(line: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    value.get("$batch")?.as_str().map(str::to_string)
}

fn check_batch_id(id: &str) -> Result<()> {
    if id.is_empty() || id.len() > MAX_BATCH_ID || id.chars().any(char::is_control) {
        return Err(Error::Usage {
            message: format!(
                "`batch` must be 1 to {MAX_BATCH_ID} bytes without control characters (this one has {} bytes)",
                id.len()
            ),
            hint: Some("use an id the sender makes up once per batch, such as a UUID".into()),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn batch_records_read_back_and_bad_ids_are_refused() {
        let record =
            format!("{}{},\"events\":3}}", ingest::BATCH_MARKER, serde_json::json!("a \"quoted\" id"));
        assert_eq!(batch_of(&record).as_deref(), Some("a \"quoted\" id"));
        assert_eq!(batch_of("{\"account_id\":\"a1\"}"), None);
        for bad in ["", "a\nb", &"x".repeat(MAX_BATCH_ID + 1)] {
            assert_eq!(check_batch_id(bad).map_err(|e| e.code()), Err("usage"), "{bad:?}");
        }
        assert!(check_batch_id("0b6c1f7e-5d1a-4c55-9d0b-4f1f2f6b1a11").is_ok());
    }
}
