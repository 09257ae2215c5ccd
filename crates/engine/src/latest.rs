//! Reads of the project's latest run: a segment's members and the run's summary.

use segmenta_store::Store;
use segmenta_store::formats::RunSummary;

use crate::error::{Error, Result};
use crate::project::Project;

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
    let store = Store::new(project.store_dir());
    let latest = store.latest()?;
    Ok(segmenta_store::read_members(&latest, segment)?)
}

/// The summary of the project's latest run.
pub fn latest_summary(project: &Project) -> Result<RunSummary> {
    let store = Store::new(project.store_dir());
    Ok(segmenta_store::read_run_summary(&store.latest()?)?)
}
