//! The use cases shared by the CLI and the server: validate a project, run it, list a segment's
//! members, preview a rule, discover segments by clustering, fit CLV and churn models. An
//! [`Engine`] owns the runtime and worker threads and offers every use case as a method; the
//! free functions below build an engine for one call. DataFusion sessions and store handles
//! stay behind this API.
#![warn(missing_docs)]

mod access;
mod as_of;
mod backfill;
mod catalog;
mod commands;
mod coverage;
mod demo;
mod discover;
mod engine;
mod error;
mod evaluation;
mod exec;
mod explain;
mod hints;
mod init;
mod intake;
mod keys;
mod kpis;
mod latest;
mod lists;
mod live;
mod model;
mod models;
mod plan;
mod planner;
mod preview;
mod progress;
mod project;
mod quality;
mod run;
mod runs;
mod sample;
mod segment_edit;
mod serving;
mod snapshots;
mod sources;
mod stored;
mod summary;
mod validate;

pub use access::{
    ApiToken, CreatedToken, Role, TOKEN_PREFIX, TOKEN_REFRESH, TokenVerifier, create_token, list_tokens,
    revoke_token,
};
pub use as_of::AsOf;
pub use backfill::{
    BackfillOptions, BackfillReport, BackfilledSnapshot, Every, MAX_SNAPSHOTS, backfill_dates, parse_date,
};
pub use commands::churn::{CHURN_FILE, CHURN_MODEL_FILE, ChurnCommand, ChurnCommandReport};
pub use commands::clv::{CLV_FILE, ClvCommand, ClvCommandReport, HOLDOUT_FILE};
pub use coverage::{COVERAGE_FILE, CoverageReport, Csm, ModelCoverage, coverage};
pub use demo::{
    AS_OF as DEMO_AS_OF, DEFAULT_ACCOUNTS as DEMO_DEFAULT_ACCOUNTS, DemoOptions, DemoReport, demo,
};
pub use discover::{
    Algorithm, ClusterIds, DEFAULT_SEGMENT_PREFIX, DISCOVERY_FORMAT_VERSION, DiscoverOptions, DiscoverReport,
    Discovery, KChoice, Method, SaveSegments, SavedSegment, Scaling, algorithm_name, method_name, parse_k,
    scaling_name,
};
pub use engine::{Engine, EngineOptions};
pub use error::{
    Error, ErrorCode, ErrorDetail, ErrorKind, ProblemDetail, Result, RuleProblem, render_warnings,
};
pub use evaluation::{RunOptions, RunReport};
pub use explain::{ExplainNode, Explanation, Operand, SchemeChoice, TierTried, Truth, explain};
pub use init::{InitOptions, InitReport, init};
pub use intake::{IngestReport, Intake, MAX_BATCH_ID, MAX_EVENTS};
pub use kpis::{ALL as KPI_ALL, KpiGrouping, KpiOptions, KpiReport, KpiRow, KpiSnapshot};
pub use latest::{
    Cell, MembersFormat, MembersQuery, latest_summary, members, members_at, members_export, natural_order,
};
pub use lists::{ListReport, UnknownIds, freeze_segment, import_list};
pub use plan::Plan;
pub use preview::{Preview, preview};
pub use progress::{NoProgress, Progress};
pub use project::{PROJECT_FILE, Project};
pub use quality::{QualityCheck, QualityOptions, QualityReport, SegmentQuality};
pub use runs::{BackgroundRuns, Refresh, RunState, RunStatus};
pub use sample::{SAMPLE_ROWS, SampleReport, check_sample};
pub use segment_edit::{Saved, delete_segment, save_segment};
pub use segmenta_core::Cancel;
pub use segmenta_query::ingest::{BadRows, RowProblem};
pub use segmenta_query::{Aggregate, Derived, StaticListReport, TraitSource, TraitSpec};
pub use segmenta_store::catalog::Snapshot;
pub use segmenta_store::event_log::EVENT_LOG;
pub use segmenta_store::formats;
pub use serving::{
    EntityView, LiveState, MAX_PAGE, MembersPage, MembershipChange, RELOAD_CHECK, SegmentDefinition,
    ServedProject, ServedRun, ServedSegment, changes, segment_definition,
};
pub use snapshots::{
    History, HistoryPoint, LeftOut, SegmentDiff, Transition, Transitions, diff, history, snapshots,
    transitions,
};
pub use sources::{PlannedEntity, PlannedEvents, PlannedLookup};
pub use stored::{PruneReport, prune};
pub use summary::SegmentSize;
pub use validate::validate;

/// The CLV parameter file a run with `[clv]` and `segmenta clv` write.
pub const CLV_PARAMS_FILE: &str = segmenta_store::files::CLV_PARAMS;

/// Runs a project with an engine built for this call (threads from `options`).
pub fn run(project: &Project, options: &RunOptions, progress: &dyn Progress) -> Result<RunReport> {
    Engine::new(&EngineOptions { threads: options.threads })?.run(project, options, progress)
}

/// Runs an already validated plan with an engine built for this call.
pub fn run_validated(plan: &Plan, options: &RunOptions, progress: &dyn Progress) -> Result<RunReport> {
    Engine::new(&EngineOptions { threads: options.threads })?.run_plan(plan, options, progress)
}

/// Backfills snapshots with an engine built for this call.
pub fn backfill(
    project: &Project,
    options: &BackfillOptions,
    progress: &dyn Progress,
) -> Result<BackfillReport> {
    Engine::new(&EngineOptions { threads: options.run.threads })?.backfill(project, options, progress)
}

/// Discovers segments with an engine built for this call.
pub fn discover(
    project: &Project,
    options: &DiscoverOptions,
    progress: &dyn Progress,
) -> Result<DiscoverReport> {
    Engine::new(&EngineOptions { threads: options.threads })?.discover(project, options, progress)
}

/// `segmenta clv` with an engine built for this call.
pub fn clv_command(
    project: &Project,
    options: &ClvCommand,
    progress: &dyn Progress,
) -> Result<ClvCommandReport> {
    Engine::new(&EngineOptions { threads: options.run.threads })?.clv(project, options, progress)
}

/// `segmenta predict churn` with an engine built for this call.
pub fn churn_command(
    project: &Project,
    options: &ChurnCommand,
    progress: &dyn Progress,
) -> Result<ChurnCommandReport> {
    Engine::new(&EngineOptions { threads: options.run.threads })?.predict_churn(project, options, progress)
}
