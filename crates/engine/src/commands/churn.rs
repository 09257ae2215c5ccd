//! `segmenta predict churn`: the `[churn]` model trained, evaluated on its holdout and scored as
//! of an instant with the command's options merged over the project's, written out as
//! `churn_model.json` and `churn.parquet` (entity_id, churn_risk, churn_drivers).

use std::collections::HashSet;
use std::path::PathBuf;

use arrow::array::{Array, AsArray};
use arrow::datatypes::Float64Type;
use segmenta_core::config::CHURN_TRAITS;
use segmenta_store::formats::ChurnModel;
use segmenta_store::{Document, OutputFile, Store};

use crate::error::{Error, Result};
use crate::evaluation::{self, RunOptions};
use crate::exec::Exec;
use crate::models::ChurnOutcome;
use crate::progress::Progress;
use crate::project::Project;
use crate::validate::validate;

/// The model report `segmenta predict churn` and runs with `[churn]` write.
pub const CHURN_MODEL_FILE: &str = segmenta_store::files::CHURN_MODEL;
/// The per-entity scores `segmenta predict churn` writes.
pub const CHURN_FILE: &str = "churn.parquet";

/// Options of `segmenta predict churn`: each one given overrides the project's `[churn]`.
#[derive(Debug, Clone, Default)]
pub struct ChurnCommand {
    /// The churn event condition (replaces the project's `inactive` and `activity`).
    pub churned: Option<String>,
    /// Churn by inactivity: the period without activity, e.g. `90d` (replaces the project's
    /// `churned` and `window`).
    pub inactive: Option<String>,
    /// With `inactive`: the condition of an activity event.
    pub activity: Option<String>,
    /// Features.
    pub features: Option<Vec<String>>,
    /// The window.
    pub window: Option<String>,
    /// As of when, where (default: a new folder under `predictions/` in the store), bad rows, threads.
    pub run: RunOptions,
}

/// What `segmenta predict churn` produced.
#[derive(Debug, Clone)]
pub struct ChurnCommandReport {
    /// The output folder.
    pub output: PathBuf,
    /// `churn_model.json`.
    pub model: ChurnModel,
    /// The entities with the highest risk: (id, risk, drivers), at most 10.
    pub top: Vec<(String, f64, String)>,
}

/// The project with the command's options merged over its `[churn]`; segments, schemes and
/// scores are not computed by the command, so they are dropped.
fn with_churn_options(project: &Project, options: &ChurnCommand) -> Result<Project> {
    project.with_section("churn", crate::project::SEGMENT_SECTIONS, |table| {
        // A definition given replaces the project's other one (both given: validation says so).
        if options.churned.is_some() {
            table.remove("inactive");
            table.remove("activity");
        }
        if options.inactive.is_some() {
            table.remove("churned");
            table.remove("window");
        }
        for (key, value) in
            [("churned", &options.churned), ("inactive", &options.inactive), ("activity", &options.activity)]
        {
            if let Some(value) = value {
                table.insert(key, toml_edit::value(value.clone()));
            }
        }
        if let Some(window) = &options.window {
            table.insert("window", toml_edit::value(window.clone()));
        }
        if let Some(features) = &options.features {
            let array: toml_edit::Array =
                features.iter().map(|f| f.trim()).filter(|f| !f.is_empty()).collect();
            table.insert("features", toml_edit::value(array));
        }
        if !table.contains_key("churned") && !table.contains_key("inactive") {
            return Err(Error::Usage {
                message: "no churn definition: the project has no [churn] churned or inactive and neither is given"
                    .into(),
                hint: Some(
                    "pass --churned \"event_type = 'cancellation'\" (a churn event) or --inactive 90d (no activity for 90 days)"
                        .into(),
                ),
            });
        }
        if !table.contains_key("features") {
            return Err(Error::Usage {
                message: "no churn features: the project has no [churn] features and it is not given".into(),
                hint: Some("pass --features a,b,c".into()),
            });
        }
        Ok(())
    })
}

/// `segmenta predict churn`: trains and evaluates the churn model and scores every active
/// entity; writes `churn_model.json` and `churn.parquet`.
pub(crate) fn churn_command(
    exec: &Exec,
    project: &Project,
    options: &ChurnCommand,
    progress: &dyn Progress,
) -> Result<ChurnCommandReport> {
    let project = with_churn_options(project, options)?;
    progress.step("validating project");
    let full = validate(&project)?;
    progress.done();
    let churn =
        full.model("churn").cloned().ok_or_else(|| Error::Internal("[churn] was not planned".into()))?;
    // The churn traits, the columns churn reads, and the models whose traits it reads.
    let mut keep: HashSet<String> = churn.reads().into_iter().collect();
    let mut models = Vec::new();
    for model in full.models.iter().filter(|m| m.section() != "churn") {
        if model.outputs().iter().any(|o| keep.contains(o)) {
            keep.extend(model.reads());
            models.push(model.clone());
        }
    }
    models.push(churn);
    // `churn.parquet` is the traits table of these outputs.
    let mut plan = full.narrowed(&keep, |name| CHURN_TRAITS.contains(&name));
    plan.models = models;
    let run_options = RunOptions { output: None, ..options.run.clone() };
    let evaluated = evaluation::evaluate(exec, &plan, &run_options, progress)?;
    let model = evaluated
        .outcomes
        .iter()
        .find_map(|o| o.as_any().downcast_ref::<ChurnOutcome>())
        .map(ChurnOutcome::model_file)
        .ok_or_else(|| Error::Internal("the churn report was not kept".into()))?;

    progress.step("writing output");
    let batch = evaluated.output.traits.clone();
    let column = |i: usize| batch.column(i);
    let (ids, risk, drivers) =
        (column(0).as_string::<i32>(), column(1).as_primitive::<Float64Type>(), column(2).as_string::<i32>());
    let mut top: Vec<(String, f64, String)> = (0..ids.len())
        .filter(|&r| risk.is_valid(r))
        .map(|r| (ids.value(r).to_string(), risk.value(r), drivers.value(r).to_string()))
        .collect();
    top.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    top.truncate(10);
    let store = Store::new(project.store_dir());
    let dest = options.run.output.clone().unwrap_or_else(|| store.new_dir("predictions"));
    segmenta_store::write_run(&dest, &[model.output()?, (CHURN_FILE, OutputFile::Parquet(batch))])?;
    progress.done();
    Ok(ChurnCommandReport { output: dest, model, top })
}
