//! CLV in the engine: the purchase-day aggregates the event scan computes (hidden columns of
//! stage 1), the per-entity summaries of Fader, Hardie & Lee (2005) built from them, the BG/NBD
//! and Gamma-Gamma fits of `segmenta_ml::clv`, and the prediction columns (traits) and the
//! "diamonds in the rough" flag added to the evaluation table as a [`TableExtension`].
//! `segmenta run` fits the models on every run (seconds at a million entities) so that the
//! traits follow from the definitions and the data alone; `segmenta clv` is the same
//! computation written out as `clv_params.json` and `clv.parquet`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, RecordBatch};
use arrow::datatypes::{Float64Type, Int64Type};
use segmenta_core::config::{ClvConfig, DIAMONDS_SEGMENT};
use segmenta_core::{MICROS_PER_DAY, Window};
use segmenta_ml::clv::{
    self, ClvFit, ClvOptions, CustomerSummary, DiamondOptions, FitOptions, PredictOptions, TimeUnit,
};
use segmenta_query::{DayPart, ExtensionError, TableExtension};
use segmenta_store::{OutputFile, Store};
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::project::{Project, narrow, validate_for_model};
use crate::run::{AsOf, Progress, RunOptions, evaluate_validated};

/// The hidden stage-1 columns holding each entity's purchase-day facts.
pub(crate) const DAY_COLUMNS: [(DayPart, &str); 5] = [
    (DayPart::Distinct, "__segmenta_clv_days"),
    (DayPart::First, "__segmenta_clv_first_day"),
    (DayPart::Last, "__segmenta_clv_last_day"),
    (DayPart::Total, "__segmenta_clv_total"),
    (DayPart::FirstDayTotal, "__segmenta_clv_first_day_total"),
];

/// The hidden column flagging the diamonds in the rough.
pub(crate) const DIAMOND_FLAG: &str = "__segmenta_clv_diamond";

/// The file `segmenta clv` and runs with `[clv]` write the fitted parameters to.
pub const CLV_PARAMS_FILE: &str = "clv_params.json";
/// The per-entity values `segmenta clv` writes.
pub const CLV_FILE: &str = "clv.parquet";

/// `[clv]` resolved: the options of the fit and of the predictions.
#[derive(Debug, Clone)]
pub struct ClvPlan {
    /// The unit of recency, T and the horizon.
    pub unit: TimeUnit,
    /// The horizon of expected purchases.
    pub horizon: Window,
    /// Months of discounted CLV.
    pub months: u32,
    /// Monthly discount rate.
    pub discount_rate: f64,
    /// L2 penalty of the fits.
    pub penalizer: f64,
    /// The diamonds' shares.
    pub diamonds: DiamondOptions,
    /// The traits, in output order (see [`ClvConfig::trait_names`]).
    pub names: Vec<String>,
    /// The purchase condition and amount column, for reports.
    pub purchase: String,
    /// The amount column.
    pub amount: String,
}

impl ClvPlan {
    /// The plan of a (syntactically checked) `[clv]` section.
    pub(crate) fn new(config: &ClvConfig) -> ClvPlan {
        let defaults = DiamondOptions::default();
        ClvPlan {
            unit: match config.time_unit.as_ref().map(|u| u.get_ref().as_str()) {
                Some("day") => TimeUnit::Day,
                _ => TimeUnit::Week,
            },
            horizon: config
                .horizon_text()
                .parse()
                .unwrap_or(Window { amount: 90, unit: segmenta_core::WindowUnit::Day }),
            months: config.months(),
            discount_rate: config.discount_rate.unwrap_or(0.01),
            penalizer: config.penalizer.unwrap_or(0.0),
            diamonds: DiamondOptions {
                bottom_value_share: config.bottom_value_share.unwrap_or(defaults.bottom_value_share),
                top_clv_share: config.top_clv_share.unwrap_or(defaults.top_clv_share),
            },
            names: config.trait_names(),
            purchase: config.purchase.get_ref().clone(),
            amount: config.amount.get_ref().clone(),
        }
    }

    fn unit_name(&self) -> &'static str {
        match self.unit {
            TimeUnit::Day => "day",
            TimeUnit::Week => "week",
        }
    }
}

/// What a fit found, kept for the run's summary and `clv_params.json`.
#[derive(Debug, Clone)]
pub struct ClvReport {
    /// Both fits.
    pub fit: ClvFit,
    /// Entities without a purchase on or before the as-of day (no predictions).
    pub without_purchases: usize,
    /// Diamonds in the rough.
    pub diamonds: usize,
}

/// The `[clv]` table extension of one evaluation.
#[derive(Debug)]
pub(crate) struct ClvExtension {
    plan: ClvPlan,
    as_of: i64,
    report: Mutex<Option<ClvReport>>,
}

impl ClvExtension {
    pub(crate) fn new(plan: ClvPlan, as_of: AsOf) -> Arc<ClvExtension> {
        Arc::new(ClvExtension { plan, as_of: as_of.instant, report: Mutex::new(None) })
    }

    /// The fit of the evaluation (after it ran).
    pub(crate) fn report(&self) -> Option<ClvReport> {
        self.report.lock().ok().and_then(|r| r.clone())
    }
}

fn int_column<'a>(table: &'a RecordBatch, name: &str) -> Result<&'a Int64Array> {
    table
        .column_by_name(name)
        .and_then(|c| c.as_primitive_opt::<Int64Type>())
        .ok_or_else(|| Error::Internal(format!("the evaluation table has no int column `{name}`")))
}

fn float_column<'a>(table: &'a RecordBatch, name: &str) -> Result<&'a Float64Array> {
    table
        .column_by_name(name)
        .and_then(|c| c.as_primitive_opt::<Float64Type>())
        .ok_or_else(|| Error::Internal(format!("the evaluation table has no float column `{name}`")))
}

/// One entity's summary from its purchase-day facts; `None` without a purchase day.
fn summary(
    days: i64,
    first: i64,
    last: i64,
    total: f64,
    first_total: f64,
    as_of_day: i64,
    unit: TimeUnit,
) -> Result<Option<CustomerSummary>> {
    if days <= 0 {
        return Ok(None);
    }
    let frequency = (days - 1) as f64;
    // NaN amounts make the mean NaN: Gamma-Gamma leaves such entities out (documented).
    let monetary = if days > 1 { (total - first_total) / frequency } else { 0.0 };
    let summary = CustomerSummary::new(
        frequency,
        unit.from_days((last - first) as f64),
        unit.from_days((as_of_day - first) as f64),
        monetary,
    )
    .map_err(clv_error)?;
    Ok(Some(summary))
}

impl ClvExtension {
    fn compute(&self, table: &RecordBatch) -> Result<Vec<(String, ArrayRef)>> {
        let [days, first, last, total, first_total] = DAY_COLUMNS.map(|(_, name)| name);
        let (days, first, last) =
            (int_column(table, days)?, int_column(table, first)?, int_column(table, last)?);
        let (total, first_total) = (float_column(table, total)?, float_column(table, first_total)?);
        // Purchases strictly before the as-of instant count; the as-of day is the day of the
        // last instant that counts.
        let as_of_day = (self.as_of - 1).div_euclid(MICROS_PER_DAY);
        let unit = self.plan.unit;
        let mut summaries = Vec::with_capacity(table.num_rows());
        for row in 0..table.num_rows() {
            let count = if days.is_null(row) { 0 } else { days.value(row) };
            summaries.push(if count > 0 {
                summary(
                    count,
                    first.value(row),
                    last.value(row),
                    total.value(row),
                    if first_total.is_null(row) { 0.0 } else { first_total.value(row) },
                    as_of_day,
                    unit,
                )?
            } else {
                None
            });
        }
        let present: Vec<CustomerSummary> = summaries.iter().flatten().copied().collect();
        let options = FitOptions { penalizer: self.plan.penalizer, ..FitOptions::default() };
        let fit = clv::fit(&present, unit, &options).map_err(clv_error)?;
        let clv_options = ClvOptions::new(self.plan.months, self.plan.discount_rate).map_err(clv_error)?;
        let horizon = unit.from_days(self.plan.horizon.micros() as f64 / MICROS_PER_DAY as f64);
        let predict = PredictOptions::new(horizon, clv_options).map_err(clv_error)?;
        let predictions = clv::predict_all(&fit.model(), &summaries, &predict);

        let value: Vec<Option<f64>> =
            summaries.iter().enumerate().map(|(row, s)| s.map(|_| total.value(row))).collect();
        let clv_values: Vec<Option<f64>> = predictions.iter().map(|p| p.clv).collect();
        let diamonds =
            clv::diamonds_in_the_rough(&value, &clv_values, &self.plan.diamonds).map_err(clv_error)?;

        let floats = |values: Vec<Option<f64>>| Arc::new(Float64Array::from(values)) as ArrayRef;
        let names = &self.plan.names;
        let columns = vec![
            (
                names[0].clone(),
                Arc::new(Int64Array::from_iter(summaries.iter().map(|s| s.map(|s| s.frequency() as i64))))
                    as ArrayRef,
            ),
            (names[1].clone(), floats(summaries.iter().map(|s| s.map(|s| s.recency())).collect())),
            (names[2].clone(), floats(summaries.iter().map(|s| s.map(|s| s.t())).collect())),
            (names[3].clone(), floats(summaries.iter().map(|s| s.map(|s| s.monetary())).collect())),
            (names[4].clone(), floats(value)),
            (names[5].clone(), floats(predictions.iter().map(|p| p.p_alive).collect())),
            (names[6].clone(), floats(predictions.iter().map(|p| p.expected_purchases).collect())),
            (names[7].clone(), floats(predictions.iter().map(|p| p.expected_spend).collect())),
            (names[8].clone(), floats(clv_values)),
            (DIAMOND_FLAG.to_string(), Arc::new(BooleanArray::from(diamonds.clone())) as ArrayRef),
        ];
        let report = ClvReport {
            fit,
            without_purchases: summaries.len() - present.len(),
            diamonds: diamonds.iter().filter(|d| **d).count(),
        };
        if let Ok(mut slot) = self.report.lock() {
            *slot = Some(report);
        }
        Ok(columns)
    }
}

impl TableExtension for ClvExtension {
    fn columns(&self, table: &RecordBatch) -> std::result::Result<Vec<(String, ArrayRef)>, ExtensionError> {
        self.compute(table).map_err(|e| Box::new(e) as ExtensionError)
    }
}

/// A CLV error: the models' messages carry their own hints.
pub(crate) fn clv_error(source: clv::Error) -> Error {
    Error::Clv(source)
}

/// `clv_params.json`.
pub(crate) fn params_document(plan: &ClvPlan, report: &ClvReport, as_of: AsOf) -> Value {
    let bg = &report.fit.bg_nbd;
    let gg = &report.fit.gamma_gamma;
    json!({
        "format_version": 1,
        "as_of": as_of.to_rfc3339(),
        "purchase": plan.purchase,
        "amount": plan.amount,
        "time_unit": plan.unit_name(),
        "horizon": plan.horizon.to_string(),
        "months": plan.months,
        "discount_rate": plan.discount_rate,
        "penalizer": plan.penalizer,
        "bg_nbd": {
            "r": bg.model.r(),
            "alpha": bg.model.alpha(),
            "a": bg.model.a(),
            "b": bg.model.b(),
            "log_likelihood": bg.log_likelihood,
            "iterations": bg.iterations,
            "converged": bg.converged,
            "customers": bg.customers,
        },
        "gamma_gamma": {
            "p": gg.model.p(),
            "q": gg.model.q(),
            "gamma": gg.model.gamma(),
            "log_likelihood": gg.log_likelihood,
            "iterations": gg.iterations,
            "converged": gg.converged,
            "customers": gg.customers,
            "excluded_one_time": gg.excluded_one_time,
            "excluded_unusable_monetary": gg.excluded_unusable_monetary,
            "population_mean_spend": gg.model.population_mean(),
        },
        "entities": {
            "with_purchases": bg.customers,
            "without_purchases": report.without_purchases,
        },
        "diamonds_in_the_rough": {
            "segment": DIAMONDS_SEGMENT,
            "bottom_value_share": plan.diamonds.bottom_value_share,
            "top_clv_share": plan.diamonds.top_clv_share,
            "members": report.diamonds,
        },
        "traits": plan.names,
    })
}

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
    pub params: Value,
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
                    project
                        .config
                        .clv
                        .as_ref()
                        .and_then(|c| c.time_unit.as_ref())
                        .map(|u| u.get_ref().as_str())
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
pub fn clv_command(
    project: &Project,
    options: &ClvCommand,
    progress: &dyn Progress,
) -> Result<ClvCommandReport> {
    let project = with_clv_options(project, options)?;
    let keep = |v: &crate::project::Validated, name: &str| {
        v.clv.as_ref().is_some_and(|c| c.names.iter().any(|n| n == name))
    };
    let mut validated = validate_for_model(&project, keep, progress)?;
    let plan = validated.clv.clone().ok_or_else(|| Error::Internal("[clv] was not planned".into()))?;
    narrow(&mut validated, &DAY_COLUMNS.iter().map(|(_, name)| name.to_string()).collect());
    let run_options = RunOptions { output: None, ..options.run.clone() };
    let evaluated = evaluate_validated(&validated, &run_options, progress)?;
    let report = evaluated.clv.clone().ok_or_else(|| Error::Internal("the CLV fit was not kept".into()))?;
    let params = params_document(&plan, &report, evaluated.as_of);

    progress.step("writing output");
    // The traits table: `entity_id` and the outputs, narrowed to the [clv] traits.
    let batch = evaluated.output.traits.clone();
    let entities = batch.num_rows();
    let store = Store::new(project.store_dir());
    let dest = options.run.output.clone().unwrap_or_else(|| store.new_dir("clv"));
    segmenta_store::write_run(
        &dest,
        &[(CLV_PARAMS_FILE, OutputFile::Json(params.clone())), (CLV_FILE, OutputFile::Parquet(batch))],
    )?;
    progress.done();
    Ok(ClvCommandReport { output: dest, params, entities })
}
