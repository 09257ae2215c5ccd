//! The run's summary (`summary.json`, typed as [`RunSummary`]): rows read, used and rejected per
//! file, the event accounting, every segment's size and share, what static lists matched, and
//! what each model recorded of itself.

use std::sync::Arc;

use segmenta_query::EvalOutput;
use segmenta_store::files;
use segmenta_store::formats::{
    EntityRows, EventsSummary, FormatVersion, RunSummary, SegmentKind, SegmentSummary, StaticListSummary,
    Warning,
};

use crate::as_of::AsOf;
use crate::model::Outcome;
use crate::plan::Plan;

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

/// What a summary is made of.
pub(crate) struct SummaryInput<'a> {
    /// The plan evaluated.
    pub plan: &'a Plan,
    /// What the evaluation computed.
    pub output: &'a EvalOutput,
    /// Segment sizes, in output order.
    pub segments: &'a [SegmentSize],
    /// The instant evaluated.
    pub as_of: AsOf,
    /// Rows per entity file, the project's entity first.
    pub entity_rows: Vec<EntityRows>,
    /// Rows read from an events file loaded whole (CSV, JSON Lines); Parquet is counted by the scan.
    pub event_rows_read: Option<u64>,
    /// Rows read from the event log of posted events.
    pub posted_rows: u64,
    /// Of those, the rows set aside.
    pub posted_rejected: u64,
    /// Rows set aside, in all files.
    pub rejected_rows: u64,
    /// Rows of the events file and the event log set aside.
    pub events_rejected: u64,
    /// Threads used.
    pub threads: usize,
    /// Wall time of the evaluation.
    pub elapsed_ms: u64,
    /// What the models found.
    pub outcomes: &'a [Arc<dyn Outcome>],
    /// What the run warns about.
    pub warnings: &'a [Warning],
}

/// The summary of one evaluation.
pub(crate) fn run_summary(input: &SummaryInput<'_>) -> RunSummary {
    let (plan, output) = (input.plan, input.output);
    let size_of = |name: &str| input.segments.iter().find(|s| s.name == name).map_or(0, |s| s.size);
    let events = plan.events.as_ref().map(|e| {
        let counts = output.events;
        EventsSummary {
            file: e.spec.display.clone(),
            entity: e.entity.clone(),
            // Parquet rows are counted by the scan, which never saw the posted rows rejected.
            read: input.event_rows_read.unwrap_or(counts.read + input.posted_rejected),
            posted: input.posted_rows,
            used: counts.used,
            ignored: counts.ignored_unknown_entity + counts.ignored_after_as_of + counts.ignored_no_time,
            ignored_unknown_entity: counts.ignored_unknown_entity,
            ignored_after_as_of: counts.ignored_after_as_of,
            ignored_no_time: counts.ignored_no_time,
            rejected: input.events_rejected,
        }
    });
    let segments = input
        .segments
        .iter()
        .map(|s| {
            let info = plan.segment_infos.get(&s.name);
            let parent = info.and_then(|i| i.parent.clone());
            let parent_size = parent.as_deref().map(size_of);
            SegmentSummary {
                name: s.name.clone(),
                kind: info.map_or(SegmentKind::Rule, |i| i.kind),
                size: s.size,
                share: s.share,
                parent,
                share_of_parent: parent_size.map(|p| if p == 0 { 0.0 } else { s.size as f64 / p as f64 }),
                description: info.and_then(|i| i.description.clone()),
            }
        })
        .collect();
    let static_lists = output
        .static_lists
        .iter()
        .map(|list| StaticListSummary {
            name: list.name.clone(),
            file: plan
                .static_lists
                .iter()
                .find(|(n, _)| *n == list.name)
                .map(|(_, spec)| spec.display.clone()),
            ids: list.ids,
            members: size_of(&list.name),
            unknown_ids: list.unknown,
            unknown_sample: list.unknown_sample.clone(),
        })
        .collect();
    let mut entity_rows = input.entity_rows.clone().into_iter();
    let first = entity_rows.next().unwrap_or_else(|| EntityRows {
        entity: plan.entity.clone(),
        file: plan.entity().spec.display.clone(),
        read: 0,
        used: 0,
        rejected: 0,
    });
    let rejected = input.rejected_rows;
    let mut summary = RunSummary {
        format_version: FormatVersion,
        project: plan.project.config.project.name.clone(),
        entity: plan.entity.clone(),
        as_of: input.as_of.to_rfc3339(),
        entities: output.entities,
        entity_rows: first,
        related_entity_rows: entity_rows.collect(),
        events,
        traits: plan.outputs.iter().map(|(n, _)| n.clone()).collect(),
        segments,
        static_lists,
        rejected_rows: rejected,
        rejects_file: (rejected > 0).then(|| files::REJECTS.to_string()),
        threads: input.threads as u64,
        elapsed_ms: input.elapsed_ms,
        clv: None,
        churn: None,
        warnings: input.warnings.to_vec(),
    };
    for outcome in input.outcomes {
        outcome.record(&mut summary);
    }
    summary
}
