//! What `segmenta validate` checks of the data beyond headers and types, on a sample: the first
//! [`SAMPLE_ROWS`] events read as a run reads them. Values that will not parse (a time in
//! another format, a number with a unit) are reported with their line, and events whose key
//! matches no entity are warned about above `[project] max_unknown_share` (an error when
//! strict). Only `segmenta validate` calls this; a run reads everything anyway.

use segmenta_query::ingest::{self, BadRows};
use segmenta_store::formats::Warning;

use crate::error::{Error, Result};
use crate::keys::{KeyPolicy, Unmatched, text_set};
use crate::plan::Plan;

/// The number of leading event rows `validate` reads.
pub const SAMPLE_ROWS: u64 = 10_000;

/// What the sample showed.
#[derive(Debug, Clone, Default)]
pub struct SampleReport {
    /// Event rows read.
    pub rows: u64,
    /// What looks wrong but does not stop a run.
    pub warnings: Vec<Warning>,
}

/// Reads the head of the events (and the keys of their entity) and reports what a run would
/// trip over: the first value that will not parse (an error naming its line, with the count of
/// such rows in the sample), and unknown keys above the share (a warning, an error when
/// `strict`).
pub fn check_sample(plan: &Plan, strict: bool) -> Result<SampleReport> {
    let Some(events) = &plan.events else { return Ok(SampleReport::default()) };
    let project = &plan.project.config.project;
    let policy =
        KeyPolicy { max_unknown_share: project.max_unknown_share(), strict: strict || project.strict };
    let head = ingest::load_head(&events.spec, BadRows::Reject, SAMPLE_ROWS)?;
    if let Some(first) = head.rejected.first() {
        let more = head.rejected.len() - 1;
        let message = if more > 0 {
            format!("{} (and {more} more of the first {} rows)", first.reason, head.rows_read)
        } else {
            first.reason.clone()
        };
        return Err(plan.project.locate(Error::Query(segmenta_query::Error::bad_input(
            segmenta_query::Location { file: events.spec.display.clone(), line: Some(first.line), column: None },
            message,
            Some("fix the values, declare the column's type or [events] time_format, or run with --on-bad-rows reject to set such rows aside".into()),
        ))));
    }
    let mut report = SampleReport { rows: head.rows_read, warnings: Vec::new() };
    let Some(owner) = plan.entities.iter().find(|e| e.name == events.entity) else { return Ok(report) };
    if owner.from_events {
        return Ok(report);
    }
    let entity = ingest::load_table(&owner.spec, BadRows::Reject)?;
    let keys = text_set(&entity.batches, &owner.key)?;
    let found = Unmatched::of(&head.batches, &events.key, &keys)?;
    if policy.above(found.unknown, found.present) {
        let warning = Warning {
            code: "unknown_event_keys".into(),
            message: format!(
                "{} of the first {} events of {} ({:.1}%) have a `{}` that is no key of {}: {}",
                found.unknown,
                found.present,
                events.spec.display,
                found.percent(),
                events.key,
                owner.spec.display,
                found.examples()
            ),
            hint: format!(
                "check that `{}` of {} holds the same ids as `{}` of {} (same spelling, no leading zeros lost)",
                events.key, events.spec.display, owner.key, owner.spec.display
            ),
        };
        report.warnings.extend(policy.judge(vec![warning])?);
    }
    Ok(report)
}
