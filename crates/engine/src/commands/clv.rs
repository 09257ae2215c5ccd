//! `segmenta clv`: the `[clv]` model fitted as of an instant with the command's options merged
//! over the project's, written out as `clv_params.json` and `clv.parquet` (entity_id and the
//! CLV traits) in a folder of its own; with `--holdout`, also fitted on the purchases before the
//! as-of instant minus the holdout and checked against the purchases after it (`holdout.json`,
//! `holdout.parquet`), as lifetimes' `calibration_and_holdout_data` does.
//!
//! The holdout check evaluates the same plan a second time, as of the calibration end: the
//! calibration summaries are that evaluation's CLV traits, and a customer's holdout purchase
//! days are its purchase days as of the as-of instant less those as of the calibration end
//! (the difference of the two `clv_frequency` values), so no aggregate is added to the scan.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema};
use segmenta_core::{MICROS_PER_DAY, Window, WindowUnit};
use segmenta_ml::clv::{self, CustomerSummary, HoldoutCustomer, TimeUnit};
use segmenta_store::formats::{self, ClvHoldout, ClvParams, FormatVersion};
use segmenta_store::{Document, OutputFile, Store};

use crate::as_of::AsOf;
use crate::error::{Error, Result};
use crate::evaluation::{self, RunOptions};
use crate::exec::Exec;
use crate::models::{ClvOutcome, ClvPlan, DAY_COLUMNS};
use crate::plan::Plan;
use crate::progress::Progress;
use crate::project::Project;
use crate::validate::validate;

/// The per-entity values `segmenta clv` writes.
pub const CLV_FILE: &str = "clv.parquet";
/// The per-customer holdout check `segmenta clv --holdout` writes: `entity_id`,
/// `frequency_cal`, `recency_cal`, `T_cal`, `predicted`, `actual`.
pub const HOLDOUT_FILE: &str = "holdout.parquet";

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
    /// The holdout check: a window of days or weeks (`39w`) or a number of time units; the
    /// models are also fitted on the purchases before the as-of instant minus it, and their
    /// predictions for it compared with what happened.
    pub holdout: Option<String>,
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
    /// With `--holdout`: `holdout.json`.
    pub holdout: Option<ClvHoldout>,
}

/// A holdout given as a number of time units (`39`) or a window of days or weeks.
fn holdout_window(text: &str, unit: TimeUnit) -> Result<Window> {
    let text = text.trim();
    let usage = |message: String| Error::Usage {
        message,
        hint: Some(
            "give a number of time units (--holdout 39) or a window of days or weeks (39w, 273d)".into(),
        ),
    };
    let window = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let amount: u32 = text.parse().map_err(|_| usage(format!("--holdout {text} is too long")))?;
        let unit = if unit == TimeUnit::Day { WindowUnit::Day } else { WindowUnit::Week };
        Window { amount, unit }
    } else {
        text.parse::<Window>().map_err(|message| usage(format!("--holdout: {message}")))?
    };
    if window.unit == WindowUnit::Hour {
        return Err(usage(format!(
            "--holdout {text}: the calibration and the holdout split at a day boundary, so the holdout is whole days"
        )));
    }
    if window.amount == 0 {
        return Err(usage(format!("--holdout {text} is empty")));
    }
    Ok(window)
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
    let drop = [crate::project::SEGMENT_SECTIONS, &["churn"]].concat();
    project.with_section("clv", &drop, |clv| {
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
    let (names, unit) = model
        .as_any()
        .downcast_ref::<ClvPlan>()
        .map(|plan| (plan.names.clone(), plan.unit))
        .ok_or_else(|| Error::Internal("[clv] planned as another model".into()))?;
    let holdout = options.holdout.as_deref().map(|text| holdout_window(text, unit)).transpose()?;
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

    let checked = match holdout {
        Some(window) => {
            let check = HoldoutRun { exec, plan: &plan, run_options: &run_options, unit, names: &names };
            Some(check.run(evaluated.as_of, window, &evaluated.output.traits, progress)?)
        }
        None => None,
    };

    progress.step("writing output");
    let batch = evaluated.output.traits.clone();
    let entities = batch.num_rows();
    let store = Store::new(project.store_dir());
    let dest = options.run.output.clone().unwrap_or_else(|| store.new_dir("clv"));
    let mut files = vec![params.output()?, (CLV_FILE, OutputFile::Parquet(batch))];
    if let Some((document, table)) = &checked {
        files.push(document.output()?);
        files.push((HOLDOUT_FILE, OutputFile::Parquet(table.clone())));
    }
    segmenta_store::write_run(&dest, &files)?;
    progress.done();
    Ok(ClvCommandReport { output: dest, params, entities, holdout: checked.map(|(document, _)| document) })
}

/// Arrow failing on columns the engine built: a bug.
fn arrow_error(error: arrow::error::ArrowError) -> Error {
    Error::Internal(format!("the holdout table: {error}"))
}

/// What the holdout check needs of the command.
struct HoldoutRun<'a> {
    exec: &'a Exec,
    plan: &'a Plan,
    run_options: &'a RunOptions,
    unit: TimeUnit,
    /// The `[clv]` traits: frequency, recency, T and monetary first.
    names: &'a [String],
}

impl HoldoutRun<'_> {
    /// Fits the models as of `as_of - window` and checks their predictions for the window
    /// against the purchase days in it; `traits` is the evaluation as of `as_of`.
    fn run(
        &self,
        as_of: AsOf,
        window: Window,
        traits: &RecordBatch,
        progress: &dyn Progress,
    ) -> Result<(ClvHoldout, RecordBatch)> {
        let calibration_end = AsOf { instant: as_of.instant - window.micros() };
        let options = RunOptions { as_of: Some(calibration_end), ..self.run_options.clone() };
        let calibration = evaluation::evaluate(self.exec, self.plan, &options, progress)?;
        let outcome = calibration
            .outcomes
            .iter()
            .find_map(|o| o.as_any().downcast_ref::<ClvOutcome>())
            .ok_or_else(|| Error::Internal("the calibration fit was not kept".into()))?;
        let model = outcome.model();

        progress.step("holdout check");
        let [frequency, recency, t, monetary] = [0, 1, 2, 3].map(|i| self.names[i].as_str());
        let ids = |batch: &RecordBatch| -> Result<StringArray> {
            let column = batch
                .column_by_name(segmenta_query::ENTITY_ID)
                .ok_or_else(|| Error::Internal("the CLV traits have no entity_id".into()))?;
            Ok(arrow::compute::cast(column, &DataType::Utf8).map_err(arrow_error)?.as_string::<i32>().clone())
        };
        let ints = |batch: &RecordBatch, name: &str| -> Result<Int64Array> {
            let column = batch
                .column_by_name(name)
                .ok_or_else(|| Error::Internal(format!("no CLV trait `{name}`")))?;
            Ok(arrow::compute::cast(column, &DataType::Int64)
                .map_err(arrow_error)?
                .as_primitive::<Int64Type>()
                .clone())
        };
        let floats = |batch: &RecordBatch, name: &str| -> Result<Float64Array> {
            let column = batch
                .column_by_name(name)
                .ok_or_else(|| Error::Internal(format!("no CLV trait `{name}`")))?;
            Ok(arrow::compute::cast(column, &DataType::Float64)
                .map_err(arrow_error)?
                .as_primitive::<Float64Type>()
                .clone())
        };
        let (end_ids, end_frequency) = (ids(traits)?, ints(traits, frequency)?);
        let at_end: HashMap<&str, i64> = (0..end_ids.len())
            .filter(|&row| end_ids.is_valid(row) && end_frequency.is_valid(row))
            .map(|row| (end_ids.value(row), end_frequency.value(row)))
            .collect();
        let table = &calibration.output.traits;
        let cal_ids = ids(table)?;
        let (x, tx, big_t, m) =
            (ints(table, frequency)?, floats(table, recency)?, floats(table, t)?, floats(table, monetary)?);
        let mut rows = Vec::new();
        let mut customers = Vec::new();
        for row in (0..table.num_rows()).filter(|&row| x.is_valid(row)) {
            let id = cal_ids.value(row);
            let later = at_end.get(id).copied().ok_or_else(|| {
                Error::Internal(format!(
                    "entity `{id}` bought before the calibration end but not before the as-of"
                ))
            })?;
            let calibration =
                CustomerSummary::new(x.value(row) as f64, tx.value(row), big_t.value(row), m.value(row))
                    .map_err(Error::Clv)?;
            // Purchase days only accumulate: the holdout's are the difference.
            let actual = later - x.value(row);
            if actual < 0 {
                return Err(Error::Internal(format!(
                    "entity `{id}` lost purchase days between two instants"
                )));
            }
            rows.push((id.to_string(), x.value(row), tx.value(row), big_t.value(row), actual));
            customers.push(HoldoutCustomer { calibration, actual: actual as f64 });
        }
        let duration = self.unit.from_days(window.micros() as f64 / MICROS_PER_DAY as f64);
        let check = clv::holdout_check(&model.bg_nbd, &customers, duration).map_err(Error::Clv)?;
        let schema = Schema::new(vec![
            Field::new(segmenta_query::ENTITY_ID, DataType::Utf8, false),
            Field::new("frequency_cal", DataType::Int64, false),
            Field::new("recency_cal", DataType::Float64, false),
            Field::new("T_cal", DataType::Float64, false),
            Field::new("predicted", DataType::Float64, false),
            Field::new("actual", DataType::Int64, false),
        ]);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0.as_str()))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1))),
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.2))),
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.3))),
            Arc::new(Float64Array::from(check.predicted.clone())),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.4))),
        ];
        let batch = RecordBatch::try_new(Arc::new(schema), columns).map_err(arrow_error)?;
        let document = ClvHoldout {
            format_version: FormatVersion,
            as_of: as_of.to_rfc3339(),
            calibration_end: calibration_end.to_rfc3339(),
            holdout: window.to_string(),
            duration,
            time_unit: match self.unit {
                TimeUnit::Day => formats::TimeUnit::Day,
                TimeUnit::Week => formats::TimeUnit::Week,
            },
            customers: customers.len() as u64,
            total_predicted: check.total_predicted,
            total_actual: check.total_actual,
            mean_absolute_error: check.mean_absolute_error,
            by_frequency: check
                .by_frequency
                .iter()
                .map(|g| formats::HoldoutGroup {
                    frequency_cal: u64::from(g.frequency_cal),
                    customers: g.customers as u64,
                    mean_actual: g.mean_actual,
                    mean_predicted: g.mean_predicted,
                })
                .collect(),
            calibration: outcome.params(),
        };
        progress.done();
        Ok((document, batch))
    }
}
