//! Events posted to a server (`POST /v1/events`): each row checked against the events' schema
//! (the events file's columns and types, the time column a timestamp), the accepted ones
//! appended to the store's event log and synced to disk before the answer. Every later run
//! (and backfill) reads the log after the events file, so a posted event counts exactly as
//! one in the file would.

use std::sync::Mutex;

use segmenta_query::ingest;
use segmenta_store::event_log::EventLog;

use crate::error::{Error, Result};
use crate::project::Project;
use crate::sources::PlannedEvents;

/// The most rows one call takes (a request body is bounded too).
pub const MAX_EVENTS: usize = 10_000;

/// What became of a batch of posted events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestReport {
    /// Rows appended to the event log (durable when this is returned).
    pub accepted: usize,
    /// The rows refused, in the order posted.
    pub rejected: Vec<RejectedEvent>,
}

/// A posted row that was refused, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedEvent {
    /// 0-based position of the row in the batch.
    pub index: usize,
    /// The column at fault, when one is.
    pub column: Option<String>,
    /// What is wrong.
    pub reason: String,
}

/// The store's event log with its one writer: appends are taken one at a time.
#[derive(Debug)]
pub struct Intake {
    log: Mutex<EventLog>,
}

impl Intake {
    /// The intake of `project`'s store (nothing is opened before the first batch).
    pub fn new(project: &Project) -> Intake {
        Intake { log: Mutex::new(EventLog::new(&project.store_dir())) }
    }

    /// Checks `rows` (each the text of one JSON object) against `events` and appends the
    /// accepted ones; when this returns, they are on disk. A batch with no accepted row writes
    /// nothing.
    pub fn ingest(&self, events: &PlannedEvents, rows: &[String]) -> Result<IngestReport> {
        if rows.len() > MAX_EVENTS {
            return Err(Error::Usage {
                message: format!("{} events in one batch; at most {MAX_EVENTS} are taken", rows.len()),
                hint: Some("send them in several batches".into()),
            });
        }
        let required = [events.key.as_str(), events.time.as_str()];
        let checked = ingest::check_rows(&events.spec, &events.schema, rows, &required)?;
        let mut log =
            self.log.lock().map_err(|_| Error::Internal("the event log's lock is poisoned".into()))?;
        log.append(&checked.lines)?;
        Ok(IngestReport {
            accepted: checked.lines.len(),
            rejected: checked
                .rejected
                .into_iter()
                .map(|p| RejectedEvent { index: p.index, column: p.column, reason: p.message })
                .collect(),
        })
    }
}
