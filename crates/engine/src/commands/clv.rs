//! `segmenta clv`: the `[clv]` model fitted as of an instant with the command's options merged
//! over the project's, written out as `clv_params.json` and `clv.parquet` (entity_id and the
//! CLV traits) in a folder of its own.

use std::collections::HashSet;
use std::path::PathBuf;

use segmenta_store::formats::ClvParams;
use segmenta_store::{Document, OutputFile, Store};

use crate::error::{Error, Result};
use crate::evaluation::{self, RunOptions};
use crate::exec::Exec;
use crate::models::{ClvOutcome, ClvPlan, DAY_COLUMNS};
use crate::progress::Progress;
use crate::project::Project;
use crate::validate::validate;

/// The per-entity values `segmenta clv` writes.
pub const CLV_FILE: &str = "clv.parquet";

/// Options of `segmenta clv`: each one given overrides the project's `[clv]`.
#[derive(Debug, Clone, Default)]
pub struct ClvCommand {
    /// The purchase condition.
    pub purchase: Option<String>,
    /// The amount column.
    pub amount: Option<String>,
    /// `day` or `week`.
    pub time_unit: Option<String>,
    /// Horizon of expected purchases: a window (`90d`) or a number of time units.
    pub horizon: Option<String>,
    /// Months of CLV.
    pub months: Option<u32>,
    /// Monthly discount rate.
    pub discount_rate: Option<f64>,
    /// As of when, where (default: a new folder under `clv/` in the store), bad rows, threads.
    pub run: RunOptions,
}

/// What `segmenta clv` produced.
#[derive(Debug, Clone)]
pub struct ClvCommandReport {
    /// The output folder.
    pub output: PathBuf,
    /// `clv_params.json`.
    pub params: ClvParams,
    /// The entities, and those with a prediction.
    pub entities: usize,
}

/// The project with the command's options merged over its `[clv]`. Segments, schemes, scores
/// and churn are not computed by the command (and their rules may read CLV traits under the
/// names the project's own options give them), so they are dropped.
fn with_clv_options(project: &Project, options: &ClvCommand) -> Result<Project> {
    let horizon = options.horizon.as_ref().map(|h| {
        let h = h.trim();
        if !h.is_empty() && h.bytes().all(|b| b.is_ascii_digit()) {
            let unit = options
                .time_unit
                .as_deref()
                .or_else(|| {
                    project.config.clv.as_ref().and_then(|c| c.time_unit.as_ref()).map(|u| u.get_ref().name())
                })
                .unwrap_or("week");
            format!("{h}{}", if unit == "day" { "d" } else { "w" })
        } else {
            h.to_string()
        }
    });
    project.with_section("clv", &["segments", "schemes", "scores", "churn"], |clv| {
        for (key, value) in [
            ("purchase", options.purchase.clone()),
            ("amount", options.amount.clone()),
            ("time_unit", options.time_unit.clone()),
            ("horizon", horizon),
        ] {
            if let Some(value) = value {
                clv.insert(key, toml_edit::value(value));
            }
        }
        if let Some(months) = options.months {
            clv.insert("months", toml_edit::value(i64::from(months)));
        }
        if let Some(rate) = options.discount_rate {
            clv.insert("discount_rate", toml_edit::value(rate));
        }
        for key in ["purchase", "amount"] {
            if !clv.contains_key(key) {
                return Err(Error::Usage {
                    message: format!(
                        "no purchase {key}: the project has no [clv] {key} and --{key} is not given"
                    ),
                    hint: Some(if key == "purchase" {
                        "pass --purchase \"event_type = 'purchase'\" (a condition over event columns)".into()
                    } else {
                        "pass --amount COLUMN (a numeric event column)".into()
                    }),
                });
            }
        }
        Ok(())
    })
}

/// `segmenta clv`: fits the CLV models as of an instant and writes `clv_params.json` and
/// `clv.parquet` (entity_id and the `[clv]` traits).
pub(crate) fn clv_command(
    exec: &Exec,
    project: &Project,
    options: &ClvCommand,
    progress: &dyn Progress,
) -> Result<ClvCommandReport> {
    let project = with_clv_options(project, options)?;
    progress.step("validating project");
    let full = validate(&project)?;
    progress.done();
    let model = full.model("clv").cloned().ok_or_else(|| Error::Internal("[clv] was not planned".into()))?;
    let names: Vec<String> = model
        .as_any()
        .downcast_ref::<ClvPlan>()
        .map(|plan| plan.names.clone())
        .ok_or_else(|| Error::Internal("[clv] planned as another model".into()))?;
    // Only the purchase-day facts are computed; `clv.parquet` holds the [clv] traits.
    let keep: HashSet<String> = DAY_COLUMNS.iter().map(|(_, name)| name.to_string()).collect();
    let mut plan = full.narrowed(&keep, |name| names.iter().any(|n| n == name));
    plan.models = vec![model];
    let run_options = RunOptions { output: None, ..options.run.clone() };
    let evaluated = evaluation::evaluate(exec, &plan, &run_options, progress)?;
    let params = evaluated
        .outcomes
        .iter()
        .find_map(|o| o.as_any().downcast_ref::<ClvOutcome>())
        .map(ClvOutcome::params)
        .ok_or_else(|| Error::Internal("the CLV fit was not kept".into()))?;

    progress.step("writing output");
    let batch = evaluated.output.traits.clone();
    let entities = batch.num_rows();
    let store = Store::new(project.store_dir());
    let dest = options.run.output.clone().unwrap_or_else(|| store.new_dir("clv"));
    segmenta_store::write_run(&dest, &[params.output()?, (CLV_FILE, OutputFile::Parquet(batch))])?;
    progress.done();
    Ok(ClvCommandReport { output: dest, params, entities })
}
