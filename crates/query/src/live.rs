//! A live scan: the event scan of a request at one instant, with the state of every aggregate
//! kept after it finishes, so that events arriving later are folded into that state instead of
//! reading all the events again (`segmenta serve`'s memberships that follow events).
//!
//! Folding a batch scans only the batch (with the same plan: windows, conditions, arguments)
//! into fresh states and merges them into the kept ones, as a scan merges its workers: the
//! result is what a scan of the events followed by the batch computes. Counts, integer sums,
//! extremes, first and last times, distinct counts, shares, percentiles and purchase days are
//! exact whatever the order; float sums and averages add in another order than a full scan's
//! (as they do between thread counts), so they can differ in the last bits.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::RecordBatch;

use crate::accumulator::Accumulator;
use crate::evaluate::{
    EventMapping, entity_rows, event_mapping, events_source, scan_spec, scanned_entities, specs,
};
use crate::request::{EvalRequest, EventKeys, ScanResult, ScannedEvents, TraitSource, check_cancelled};
use crate::scan::{self, Source};
use crate::{Error, Result};

/// The kept scan of one entity.
struct LiveEntity {
    name: String,
    mapping: EventMapping,
    states: Vec<Box<dyn Accumulator>>,
    result: ScanResult,
}

/// The event scan of a request at its instant, kept to fold later events into.
pub struct LiveScan {
    as_of: i64,
    entities: Vec<LiveEntity>,
}

impl std::fmt::Debug for LiveScan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveScan")
            .field("as_of", &self.as_of)
            .field("entities", &self.entities.len())
            .finish()
    }
}

/// Scans the events of `request` at its instant, as an evaluation would, keeping the states:
/// what the evaluation reads ([`EvalRequest::scanned`]) and the live scan.
pub fn scan_live(request: &EvalRequest) -> Result<(Arc<ScannedEvents>, LiveScan)> {
    let as_of = request.as_of;
    let mut live = LiveScan { as_of, entities: Vec::new() };
    if let Some(events) = &request.events {
        for (entity, event_specs) in scanned_entities(request, events) {
            check_cancelled(&request.cancel)?;
            let table = entity_rows(entity)?;
            let mapping = event_mapping(request, entity, &table, events, &event_specs)?;
            let spec = scan_spec(request, &mapping, events, &event_specs, std::slice::from_ref(&as_of));
            let _span = tracing::info_span!("scan_live", entity = %entity.name).entered();
            let (mut results, states) =
                scan::scan_states(&events_source(events), &mapping.key_map, &spec, &mapping.needed)?;
            let result = results.pop().ok_or_else(|| Error::Internal("a scan without its instant".into()))?;
            live.entities.push(LiveEntity { name: entity.name.clone(), mapping, states, result });
        }
    }
    let scanned = live.scanned();
    Ok((scanned, live))
}

impl LiveScan {
    /// The instant scanned.
    pub fn as_of(&self) -> i64 {
        self.as_of
    }

    /// Folds `batches` (events in the events' canonical types, after every event scanned so
    /// far) into the kept states of every entity; returns what an evaluation of `request` (the
    /// request scanned by [`scan_live`]) reads now.
    pub fn absorb(&mut self, request: &EvalRequest, batches: &[RecordBatch]) -> Result<Arc<ScannedEvents>> {
        if request.as_of != self.as_of {
            return Err(Error::Internal("a live scan folds events at its own instant only".into()));
        }
        let events =
            request.events.as_ref().ok_or_else(|| Error::Internal("a live scan without events".into()))?;
        let as_of = self.as_of;
        for live in &mut self.entities {
            check_cancelled(&request.cancel)?;
            let event_specs = specs(request, &live.name, |s| *s == TraitSource::Events);
            let mut spec =
                scan_spec(request, &live.mapping, events, &event_specs, std::slice::from_ref(&as_of));
            // A batch is small: one worker, whose rows keep their order.
            spec.threads = 1;
            let _span = tracing::info_span!("scan_absorb", entity = %live.name).entered();
            let (mut results, fresh) = scan::scan_states(
                &Source::Batches(batches),
                &live.mapping.key_map,
                &spec,
                &live.mapping.needed,
            )?;
            let added = results.pop().ok_or_else(|| Error::Internal("a scan without its instant".into()))?;
            if fresh.len() != live.states.len() {
                return Err(Error::Internal("a live scan's aggregates changed".into()));
            }
            let mut columns = Vec::with_capacity(fresh.len());
            for (state, fresh) in live.states.iter_mut().zip(fresh) {
                state.merge(fresh)?;
                columns.push(state.finish()?);
            }
            let counts = &mut live.result.counts;
            counts.read += added.counts.read;
            counts.used += added.counts.used;
            counts.ignored_after_as_of += added.counts.ignored_after_as_of;
            counts.ignored_no_time += added.counts.ignored_no_time;
            counts.ignored_unknown_entity += added.counts.ignored_unknown_entity;
            counts.rejected_no_key += added.counts.rejected_no_key;
            live.result.keys = merged_keys(&live.result.keys, added.keys);
            live.result.columns = columns;
        }
        Ok(self.scanned())
    }

    fn scanned(&self) -> Arc<ScannedEvents> {
        let entities: HashMap<String, ScanResult> =
            self.entities.iter().map(|e| (e.name.clone(), e.result.clone())).collect();
        Arc::new(ScannedEvents { as_of: self.as_of, entities })
    }
}

/// The keys of a scan followed by those of a later batch: the smallest unknown keys of both.
/// (Posted events always have a key: a batch adds no rows without one.)
fn merged_keys(before: &EventKeys, added: EventKeys) -> EventKeys {
    let mut unknown: std::collections::BTreeSet<String> = before.unknown_sample.iter().cloned().collect();
    unknown.extend(added.unknown_sample);
    let mut missing_key_rows = before.missing_key_rows.clone();
    missing_key_rows.extend(added.missing_key_rows);
    EventKeys { unknown_sample: unknown.into_iter().take(scan::UNKNOWN_SAMPLE).collect(), missing_key_rows }
}
