//! CLV as a model of the engine: the purchase-day aggregates the event scan computes (hidden
//! columns of stage 1), the per-entity summaries of Fader, Hardie & Lee (2005) built from them,
//! the BG/NBD and Gamma-Gamma fits of `segmenta_ml::clv`, and the prediction columns (traits)
//! and the "diamonds in the rough" flag added to the evaluation table as a table extension.
//! `segmenta run` fits the models on every run (seconds at a million entities) so that the
//! traits follow from the definitions and the data alone; `segmenta clv`
//! (`crate::commands::clv`) is the same computation written out as `clv_params.json` and
//! `clv.parquet`.

use std::any::Any;
use std::sync::{Arc, Mutex};

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, RecordBatch};
use arrow::datatypes::{Float64Type, Int64Type};
use segmenta_core::config::DIAMONDS_SEGMENT;
use segmenta_core::{MICROS_PER_DAY, ValueType, Window, hidden};
use segmenta_ml::clv::{
    self, ClvFit, ClvOptions, CustomerSummary, DiamondOptions, FitOptions, PredictOptions, TimeUnit,
};
use segmenta_query::{Aggregate, DayPart, DaysSpec, ExtensionError, TableExtension};
use segmenta_rules::ast::{ColumnInfo, ColumnSource, TypedExpr, TypedValue};
use segmenta_store::formats::{
    BgNbdParams, ClvEntities, ClvParams, DiamondsParams, FormatVersion, GammaGammaParams, RunSummary,
    SegmentKind,
};
use segmenta_store::{Document, OutputFile};

use crate::as_of::AsOf;
use crate::error::{Error, Result};
use crate::model::{Cutoffs, Model, ModelRun, Outcome, PlannedModel};
use crate::planner::Planner;
use crate::progress::Progress;
use crate::sources::SegmentInfo;

/// The hidden stage-1 columns holding each entity's purchase-day facts.
pub(crate) const DAY_COLUMNS: [(DayPart, &str); 5] = [
    (DayPart::Distinct, hidden::CLV_DAYS),
    (DayPart::First, hidden::CLV_FIRST_DAY),
    (DayPart::Last, hidden::CLV_LAST_DAY),
    (DayPart::Total, hidden::CLV_TOTAL),
    (DayPart::FirstDayTotal, hidden::CLV_FIRST_DAY_TOTAL),
];

/// The model of `[clv]`.
pub(crate) struct Clv;

impl Model for Clv {
    fn section(&self) -> &'static str {
        "clv"
    }

    /// Purchase-day facts from the event scan; the model columns come from the run's table
    /// extension.
    fn plan(&self, planner: &mut Planner<'_>) -> Result<Option<Arc<dyn PlannedModel>>> {
        let Some(config) = &planner.config.clv else { return Ok(None) };
        if planner.events.is_none() {
            return Ok(None);
        }
        let purchase = planner.event_condition("[clv] purchase", &config.purchase);
        let amount = planner.numeric_event_column("[clv] amount", config.amount.get_ref());
        if !planner.require_entity_events("[clv]") {
            return Ok(None);
        }
        let Some(amount) = amount else { return Ok(None) };
        for (part, name) in DAY_COLUMNS {
            let days =
                DaysSpec { condition: purchase.clone(), amount: Some(amount.clone()), part, within: None };
            planner.add_event_aggregate(name, Aggregate::Days(days));
        }
        let plan = ClvPlan::new(config);
        for (i, name) in plan.names.iter().enumerate() {
            planner.add_output(name, if i == 0 { ValueType::Int } else { ValueType::Float });
        }
        let percent = |share: f64| (share * 100.0).round();
        let description = format!(
            "bottom {}% by current value (clv_value), top {}% by predicted CLV",
            percent(plan.diamonds.bottom_value_share),
            percent(plan.diamonds.top_clv_share)
        );
        let flag = ColumnInfo {
            column: hidden::CLV_DIAMOND.into(),
            ty: ValueType::Bool,
            source: ColumnSource::Trait,
        };
        planner.model_segments.push((
            DIAMONDS_SEGMENT.into(),
            TypedExpr::Truthy(TypedValue::Column { column: flag, ty: ValueType::Bool }),
            SegmentInfo { kind: SegmentKind::Clv, parent: None, description: Some(description) },
        ));
        Ok(Some(Arc::new(plan)))
    }
}

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
    /// The traits, in output order (see `ClvConfig::trait_names`).
    pub names: Vec<String>,
    /// The purchase condition and amount column, for reports.
    pub purchase: String,
    /// The amount column.
    pub amount: String,
}

impl ClvPlan {
    /// The plan of a (syntactically checked) `[clv]` section.
    pub(crate) fn new(config: &segmenta_core::config::ClvConfig) -> ClvPlan {
        let defaults = DiamondOptions::default();
        ClvPlan {
            unit: match config.time_unit() {
                segmenta_core::TimeUnit::Day => TimeUnit::Day,
                segmenta_core::TimeUnit::Week => TimeUnit::Week,
            },
            horizon: config.horizon(),
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

    fn stored_unit(&self) -> segmenta_store::formats::TimeUnit {
        match self.unit {
            TimeUnit::Day => segmenta_store::formats::TimeUnit::Day,
            TimeUnit::Week => segmenta_store::formats::TimeUnit::Week,
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

impl PlannedModel for ClvPlan {
    fn section(&self) -> &'static str {
        "clv"
    }

    fn outputs(&self) -> Vec<String> {
        self.names.clone()
    }

    fn reads(&self) -> Vec<String> {
        DAY_COLUMNS.iter().map(|(_, name)| name.to_string()).collect()
    }

    fn prepare(&self, as_of: AsOf, _: &dyn Cutoffs, _: &dyn Progress) -> Result<Arc<dyn ModelRun>> {
        Ok(Arc::new(ClvExtension::new(self.clone(), as_of)))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The `[clv]` table extension of one evaluation.
#[derive(Debug)]
pub(crate) struct ClvExtension {
    plan: ClvPlan,
    as_of: AsOf,
    report: Mutex<Option<ClvReport>>,
}

impl ClvExtension {
    fn new(plan: ClvPlan, as_of: AsOf) -> ClvExtension {
        ClvExtension { plan, as_of, report: Mutex::new(None) }
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
        let as_of_day = (self.as_of.instant - 1).div_euclid(MICROS_PER_DAY);
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
            (hidden::CLV_DIAMOND.to_string(), Arc::new(BooleanArray::from(diamonds.clone())) as ArrayRef),
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

impl ModelRun for ClvExtension {
    fn outcome(&self) -> Option<Arc<dyn Outcome>> {
        let report = self.report.lock().ok().and_then(|r| r.clone())?;
        Some(Arc::new(ClvOutcome { plan: self.plan.clone(), report, as_of: self.as_of }))
    }
}

/// A CLV error: the models' messages carry their own hints.
pub(crate) fn clv_error(source: clv::Error) -> Error {
    Error::Clv(source)
}

/// What a CLV fit found in one evaluation.
#[derive(Debug, Clone)]
pub(crate) struct ClvOutcome {
    plan: ClvPlan,
    report: ClvReport,
    as_of: AsOf,
}

impl ClvOutcome {
    /// The fitted models.
    pub(crate) fn model(&self) -> clv::ClvModel {
        self.report.fit.model()
    }

    /// `clv_params.json`.
    pub(crate) fn params(&self) -> ClvParams {
        let (plan, report) = (&self.plan, &self.report);
        let bg = &report.fit.bg_nbd;
        let gg = &report.fit.gamma_gamma;
        ClvParams {
            format_version: FormatVersion,
            as_of: self.as_of.to_rfc3339(),
            purchase: plan.purchase.clone(),
            amount: plan.amount.clone(),
            time_unit: plan.stored_unit(),
            horizon: plan.horizon.to_string(),
            months: plan.months,
            discount_rate: plan.discount_rate,
            penalizer: plan.penalizer,
            bg_nbd: BgNbdParams {
                r: bg.model.r(),
                alpha: bg.model.alpha(),
                a: bg.model.a(),
                b: bg.model.b(),
                log_likelihood: bg.log_likelihood,
                iterations: bg.iterations,
                converged: bg.converged,
                customers: bg.customers as u64,
            },
            gamma_gamma: GammaGammaParams {
                p: gg.model.p(),
                q: gg.model.q(),
                gamma: gg.model.gamma(),
                log_likelihood: gg.log_likelihood,
                iterations: gg.iterations,
                converged: gg.converged,
                customers: gg.customers as u64,
                excluded_one_time: gg.excluded_one_time as u64,
                excluded_unusable_monetary: gg.excluded_unusable_monetary as u64,
                population_mean_spend: gg.model.population_mean(),
            },
            entities: ClvEntities {
                with_purchases: bg.customers as u64,
                without_purchases: report.without_purchases as u64,
            },
            diamonds_in_the_rough: DiamondsParams {
                segment: DIAMONDS_SEGMENT.into(),
                bottom_value_share: plan.diamonds.bottom_value_share,
                top_clv_share: plan.diamonds.top_clv_share,
                members: report.diamonds as u64,
            },
            traits: plan.names.clone(),
        }
    }
}

impl Outcome for ClvOutcome {
    fn record(&self, summary: &mut RunSummary) {
        summary.clv = Some(self.params());
    }

    fn files(&self) -> Result<Vec<(&'static str, OutputFile)>> {
        Ok(vec![self.params().output()?])
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
