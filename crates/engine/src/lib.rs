//! The use cases shared by the CLI and (later) the server: validate a project, run it, list a
//! segment's members, discover segments by clustering, fit CLV and churn models. DataFusion sessions and store handles stay
//! behind this API.
#![warn(missing_docs)]

mod churn;
mod clv;
mod demo;
mod discover;
mod error;
mod lists;
mod preview;
mod project;
mod run;

pub use churn::{
    CHURN_FILE, CHURN_MODEL_FILE, ChurnCommand, ChurnCommandReport, ChurnFeature, ChurnPlan, ChurnReport,
    churn_command,
};
pub use clv::{CLV_FILE, CLV_PARAMS_FILE, ClvCommand, ClvCommandReport, ClvPlan, ClvReport, clv_command};
pub use demo::{
    AS_OF as DEMO_AS_OF, DEFAULT_ACCOUNTS as DEMO_DEFAULT_ACCOUNTS, DemoOptions, DemoReport, demo,
};
pub use discover::{
    Algorithm, ClusterIds, DEFAULT_SEGMENT_PREFIX, DISCOVERY_FORMAT_VERSION, DiscoverOptions, DiscoverReport,
    Discovery, KChoice, Method, SaveSegments, SavedSegment, Scaling, algorithm_name, discover, method_name,
    parse_k, scaling_name,
};
pub use error::{Error, ErrorCode, ErrorKind, Result, RuleProblem};
pub use lists::{ListReport, UnknownIds, freeze_segment, import_list};
pub use preview::{Preview, preview};
pub use project::{PROJECT_FILE, Project, Validated, validate};
pub use run::{AsOf, NoProgress, Progress, RunOptions, RunReport, SegmentSize, run, run_validated};
pub use segmenta_query::ingest::BadRows;
pub use segmenta_query::{Aggregate, Derived, StaticListReport, TraitSource, TraitSpec};

/// The members of a segment in the project's latest run.
pub fn members(project: &Project, segment: &str) -> Result<Vec<String>> {
    let names = project.config.segment_names();
    if !names.iter().any(|n| n == segment) {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let hint = match segmenta_core::config::did_you_mean(segment, names.iter().copied()) {
            Some(best) => Some(format!("did you mean `{best}`?")),
            None if names.is_empty() => Some("the project declares no segments".into()),
            None => Some(format!("declared segments: {}", names.join(", "))),
        };
        return Err(Error::UnknownSegment { name: segment.to_string(), hint });
    }
    let store = segmenta_store::Store::new(project.store_dir());
    let latest = store.latest()?;
    Ok(segmenta_store::read_members(&latest, segment)?)
}

/// The summary of the project's latest run.
pub fn latest_summary(project: &Project) -> Result<serde_json::Value> {
    let store = segmenta_store::Store::new(project.store_dir());
    Ok(segmenta_store::read_summary(&store.latest()?)?)
}
