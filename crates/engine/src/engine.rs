//! [`Engine`]: the value a CLI session or a server keeps. It owns the execution resources (the
//! async runtime DataFusion runs on and the worker pool of the scan and the models), built once
//! and reused by every call, and offers the use cases as methods with plain, typed requests and
//! reports. It is `Send + Sync`: a server shares one engine between its handlers; long calls
//! stop cleanly when their request's `cancel` token is cancelled.

use crate::commands::churn::{ChurnCommand, ChurnCommandReport};
use crate::commands::clv::{ClvCommand, ClvCommandReport};
use crate::discover::{DiscoverOptions, DiscoverReport};
use crate::error::Result;
use crate::evaluation::{RunOptions, RunReport};
use crate::exec::Exec;
use crate::plan::Plan;
use crate::preview::Preview;
use crate::progress::Progress;
use crate::project::Project;
use segmenta_store::formats::RunSummary;

/// How an engine is built.
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    /// Worker threads (of the runtime and of the pool); default: every core.
    pub threads: Option<usize>,
}

/// The engine: build it once, call it many times.
#[derive(Debug)]
pub struct Engine {
    exec: Exec,
}

impl Engine {
    /// Builds the runtime and the worker pool.
    pub fn new(options: &EngineOptions) -> Result<Engine> {
        Ok(Engine { exec: Exec::new(options.threads)? })
    }

    /// The execution resources.
    pub(crate) fn exec(&self) -> &Exec {
        &self.exec
    }

    /// The number of worker threads.
    pub fn threads(&self) -> usize {
        self.exec.threads()
    }

    /// Validates a project (schemas, traits, rules) into its evaluation plan.
    pub fn validate(&self, project: &Project) -> Result<Plan> {
        let _span = tracing::info_span!("validate", project = %project.config.project.name).entered();
        crate::validate::validate(project)
    }

    /// Runs a project: validate, evaluate, write a run folder, make it the latest run.
    pub fn run(&self, project: &Project, options: &RunOptions, progress: &dyn Progress) -> Result<RunReport> {
        let _span = tracing::info_span!("run", project = %project.config.project.name).entered();
        crate::run::run(&self.exec, project, options, progress)
    }

    /// Runs an already validated plan.
    pub fn run_plan(&self, plan: &Plan, options: &RunOptions, progress: &dyn Progress) -> Result<RunReport> {
        let _span = tracing::info_span!("run", project = %plan.project.config.project.name).entered();
        crate::run::run_plan(&self.exec, plan, options, progress)
    }

    /// Writes a snapshot at every date of a range, each the run `run --as-of DATE` writes, from
    /// one load of the project and one read of the events per group of dates.
    pub fn backfill(
        &self,
        project: &Project,
        options: &crate::backfill::BackfillOptions,
        progress: &dyn Progress,
    ) -> Result<crate::backfill::BackfillReport> {
        let _span = tracing::info_span!("backfill", project = %project.config.project.name).entered();
        crate::backfill::backfill(&self.exec, project, options, progress)
    }

    /// The KPIs of every segment (and owner, channel) at a snapshot, and between two.
    pub fn kpis(
        &self,
        project: &Project,
        options: &crate::kpis::KpiOptions,
        progress: &dyn Progress,
    ) -> Result<crate::kpis::KpiReport> {
        let _span = tracing::info_span!("kpis", project = %project.config.project.name).entered();
        crate::kpis::kpis(&self.exec, project, options, progress)
    }

    /// Whether each segment is measurable, accessible, substantial, differentiated,
    /// actionable and stable, against `[quality]`.
    pub fn quality(
        &self,
        project: &Project,
        options: &crate::quality::QualityOptions,
        progress: &dyn Progress,
    ) -> Result<crate::quality::QualityReport> {
        let _span = tracing::info_span!("quality", project = %project.config.project.name).entered();
        crate::quality::quality(&self.exec, project, options, progress)
    }

    /// The members of a segment in the latest run.
    pub fn members(&self, project: &Project, segment: &str) -> Result<Vec<String>> {
        crate::latest::members(project, segment)
    }

    /// The summary of the latest run.
    pub fn latest_summary(&self, project: &Project) -> Result<RunSummary> {
        crate::latest::latest_summary(project)
    }

    /// The size of an ad-hoc rule on the latest run.
    pub fn preview(&self, project: &Project, rule: &str, sample: usize) -> Result<Preview> {
        crate::preview::preview(project, rule, sample)
    }

    /// Discovers segments by clustering.
    pub fn discover(
        &self,
        project: &Project,
        options: &DiscoverOptions,
        progress: &dyn Progress,
    ) -> Result<DiscoverReport> {
        let _span = tracing::info_span!("discover", project = %project.config.project.name).entered();
        crate::discover::discover(&self.exec, project, options, progress)
    }

    /// `segmenta clv`: fits the CLV models and writes their parameters and predictions.
    pub fn clv(
        &self,
        project: &Project,
        options: &ClvCommand,
        progress: &dyn Progress,
    ) -> Result<ClvCommandReport> {
        let _span = tracing::info_span!("clv", project = %project.config.project.name).entered();
        crate::commands::clv::clv_command(&self.exec, project, options, progress)
    }

    /// `segmenta predict churn`: trains, evaluates and scores the churn model.
    pub fn predict_churn(
        &self,
        project: &Project,
        options: &ChurnCommand,
        progress: &dyn Progress,
    ) -> Result<ChurnCommandReport> {
        let _span = tracing::info_span!("predict_churn", project = %project.config.project.name).entered();
        crate::commands::churn::churn_command(&self.exec, project, options, progress)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send_sync<T: Send + Sync>() {}

    #[test]
    fn the_engine_and_its_reports_can_be_shared_between_threads() {
        send_sync::<Engine>();
        send_sync::<RunReport>();
        send_sync::<RunOptions>();
        send_sync::<DiscoverReport>();
        send_sync::<ClvCommandReport>();
        send_sync::<ChurnCommandReport>();
        send_sync::<Plan>();
        send_sync::<Preview>();
    }
}
