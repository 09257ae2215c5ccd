//! The seam between the engine and its predictive models (`[clv]`, `[churn]`, and the next
//! one). A model is planned once per project ([`Model::plan`]: its hidden aggregates, its traits
//! and segments, through the [`Planner`]), prepared once per evaluation
//! ([`PlannedModel::prepare`]: models trained on earlier cutoffs evaluate them through
//! [`Cutoffs`]), adds its columns to the evaluation table as a [`TableExtension`], and leaves an
//! [`Outcome`] that records itself in the run's summary and adds its files to the run folder.
//! Validation, evaluation and the run know models only through these traits; the registry
//! (`crate::models`) lists them.

use std::any::Any;
use std::collections::HashSet;
use std::fmt::Debug;
use std::sync::Arc;

use segmenta_query::TableExtension;
use segmenta_store::OutputFile;
use segmenta_store::formats::RunSummary;

use crate::as_of::AsOf;
use crate::error::Result;
use crate::planner::Planner;
use crate::progress::Progress;

/// A predictive model, planned from its section of `segmenta.toml`.
pub(crate) trait Model: Sync {
    /// The section that declares it (`clv`, `churn`).
    fn section(&self) -> &'static str;

    /// Plans the model when the project declares its section (`None` otherwise): adds its
    /// hidden aggregates, its traits and its segments through `planner`, and records problems
    /// there. Runs after the traits, RFM and earlier models are planned, before scores and
    /// schemes join the catalog of rules.
    fn plan(&self, planner: &mut Planner<'_>) -> Result<Option<Arc<dyn PlannedModel>>>;
}

/// A model as planned for a project.
pub(crate) trait PlannedModel: Debug + Send + Sync {
    /// The section that declared it.
    fn section(&self) -> &'static str;

    /// The traits it adds, in output order.
    fn outputs(&self) -> Vec<String>;

    /// The columns of the evaluation table its extension reads: its hidden aggregates and
    /// any trait or attribute it uses as input.
    fn reads(&self) -> Vec<String>;

    /// Prepares its extension for an evaluation as of `as_of` (training on earlier cutoffs,
    /// evaluated through `cutoffs`, happens here).
    fn prepare(
        &self,
        as_of: AsOf,
        cutoffs: &dyn Cutoffs,
        progress: &dyn Progress,
    ) -> Result<Arc<dyn ModelRun>>;

    /// For the model's own command, which reads its plan back.
    fn as_any(&self) -> &dyn Any;
}

/// Evaluations of the project at other instants, computing only some columns.
pub(crate) trait Cutoffs {
    /// Evaluates the project as of `instant` computing only the columns in `keep` (and what
    /// they read, including other models whose traits are kept), with `capture` added last.
    fn evaluate(&self, instant: AsOf, keep: &HashSet<String>, capture: Arc<dyn TableExtension>)
    -> Result<()>;
}

/// A model prepared for one evaluation: its columns, then what it found.
pub(crate) trait ModelRun: TableExtension {
    /// After the evaluation: what the model found (`None` when the evaluation never reached it).
    fn outcome(&self) -> Option<Arc<dyn Outcome>>;

    /// The latest instant of the earlier evaluations it trained on, if any: an event before
    /// it changes the model, so a live evaluation (`crate::live`) cannot fold it in.
    fn trained_until(&self) -> Option<i64> {
        None
    }
}

/// What a model found in one evaluation.
pub(crate) trait Outcome: Debug + Send + Sync {
    /// Records itself in the run's summary.
    fn record(&self, summary: &mut RunSummary);

    /// The files it adds to a run folder.
    fn files(&self) -> Result<Vec<(&'static str, OutputFile)>>;

    /// For the model's own command, which reads the outcome back.
    fn as_any(&self) -> &dyn Any;
}
