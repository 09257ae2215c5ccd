//! Churn propensity as a model of the engine. With a window W and the as-of instant T, the
//! project is evaluated three times: as of T - 2W (the training cutoff), T - W (the holdout
//! cutoff) and T (the run itself). With a churn event (`[churn] churned`), an entity is
//! *active* at a cutoff when it has an event before it and no churn event before it, and an
//! active entity is labelled churned when it has a churn event within the window after the
//! cutoff (which the next evaluation counts as a trait over its last W). With churn by
//! inactivity (`[churn] inactive = W`, optionally only events meeting `activity`), an entity is
//! active at a cutoff when it has an activity event within W before it, and labelled churned
//! when it has none within W after it. The model (regularised logistic
//! regression, `segmenta_ml::churn`) is trained on the features as of T - 2W, evaluated (AUC,
//! calibration) on the features as of T - W against what happened by T, and scores every entity
//! active at T: the `churn_risk` and `churn_drivers` traits, added to the evaluation table as a
//! table extension. `segmenta predict churn` (`crate::commands::churn`) is the same computation
//! written out as `churn_model.json` and `churn.parquet`.

use std::any::Any;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use arrow::array::{ArrayRef, AsArray, Float64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use segmenta_core::config::{self, CHURN_TRAITS, ChurnDefinition, ConfigText};
use segmenta_core::{ValueType, Window, Within, hidden};
use segmenta_ml::churn::{self, ChurnModel, Evaluation, FeatureMatrix, FeatureStatus, TrainOptions};
use segmenta_query::{Aggregate, ExtensionError, TableExtension};
use segmenta_rules::AttributeCatalog;
use segmenta_rules::ast::{AggFunc, Ident, TypedExpr, TypedTrait};
use segmenta_store::formats::{self, FormatVersion, RunSummary, Warning};
use segmenta_store::{Document, OutputFile};

use crate::as_of::AsOf;
use crate::error::{Error, Result};
use crate::model::{Cutoffs, Model, ModelRun, Outcome, PlannedModel};
use crate::planner::Planner;
use crate::progress::Progress;

/// The model of `[churn]`.
pub(crate) struct Churn;

impl Model for Churn {
    fn section(&self) -> &'static str {
        "churn"
    }

    /// Three hidden event counts; features are columns of the entity's table, resolved before
    /// scores and schemes join the catalog (the cutoff evaluations compute no derived columns).
    fn plan(&self, planner: &mut Planner<'_>) -> Result<Option<Arc<dyn PlannedModel>>> {
        let project = planner.project;
        let Some(churn_config) = &project.config.churn else { return Ok(None) };
        if planner.events.is_none() {
            return Ok(None);
        }
        let window: Window = churn_config.window();
        let definition = churn_config
            .definition()
            .ok_or_else(|| Error::Internal("[churn] without `churned` or `inactive`".into()))?;
        let (label, description, activity_text) = match definition {
            ChurnDefinition::Event(condition) => {
                let churned = planner.event_condition("[churn] churned", condition);
                (ChurnLabel::Event(churned), condition.get_ref().clone(), None)
            }
            ChurnDefinition::Inactive { period, activity } => {
                let condition = activity.and_then(|a| planner.event_condition("[churn] activity", a));
                let description = match activity {
                    Some(a) => format!("no event matching `{}` for {period}", a.get_ref()),
                    None => format!("no event for {period}"),
                };
                (ChurnLabel::Inactive(condition), description, activity.map(|a| a.get_ref().clone()))
            }
        };
        if !planner.require_entity_events("[churn]") {
            return Ok(None);
        }
        let count = |filter: Option<TypedExpr>, within| TypedTrait {
            agg: AggFunc::Count,
            arg: None,
            condition: None,
            filter,
            within,
            output: ValueType::Int,
        };
        let counts = match &label {
            ChurnLabel::Event(churned) => vec![
                (hidden::CHURN_LABEL, count(churned.clone(), Some(Within::Last(window)))),
                (hidden::CHURN_BEFORE, count(churned.clone(), None)),
                (hidden::CHURN_SEEN, count(None, None)),
            ],
            ChurnLabel::Inactive(activity) => {
                vec![(hidden::CHURN_ACTIVE, count(activity.clone(), Some(Within::Last(window))))]
            }
        };
        for (name, t) in counts {
            planner.add_event_aggregate(name, Aggregate::Trait(Box::new(t)));
        }
        let mut features = Vec::new();
        let mut errors = Vec::new();
        let ct = ConfigText(&project.text);
        for feature in &churn_config.features {
            let name = feature.get_ref().trim();
            let ident = Ident { qualifier: None, name: name.to_string() };
            let (line, column) = ct.line_col(feature.span().start);
            let error = |message: String, hint: String| config::ConfigError {
                message,
                line: Some(line),
                column: Some(column),
                hint: Some(hint),
            };
            match planner.rules.lookup(&ident) {
                None => {
                    let names = planner.rules.names();
                    let hint = match config::did_you_mean(name, names.iter().map(String::as_str)) {
                        Some(best) => format!("did you mean `{best}`?"),
                        None => "name an attribute or trait of the project's entity".into(),
                    };
                    errors.push(error(format!("[churn] feature `{name}` is not an attribute or trait"), hint));
                }
                Some(info)
                    if matches!(info.ty, ValueType::Int | ValueType::Float | ValueType::Bool | ValueType::String) =>
                {
                    features.push(ChurnFeature {
                        name: name.to_string(),
                        column: info.column,
                        categorical: info.ty == ValueType::String,
                    });
                }
                Some(info) => errors.push(error(
                    format!(
                        "[churn] feature `{name}` is {}: the model reads numbers, booleans and strings (categories)",
                        info.ty
                    ),
                    "use a numeric trait instead, e.g. days_since_first() for a date".into(),
                )),
            }
        }
        if !errors.is_empty() {
            planner.error(Error::Config { path: project.file.clone(), errors });
            return Ok(None);
        }
        for (name, ty) in CHURN_TRAITS.iter().zip([ValueType::Float, ValueType::String]) {
            planner.add_output(name, ty);
        }
        Ok(Some(Arc::new(ChurnPlan {
            window,
            inactive: matches!(label, ChurnLabel::Inactive(_)),
            features,
            l2_penalty: churn_config.l2_penalty.unwrap_or(1.0),
            drivers: churn_config.drivers.unwrap_or(3),
            churned: description,
            activity: activity_text,
        })))
    }
}

impl PlannedModel for ChurnPlan {
    fn section(&self) -> &'static str {
        "churn"
    }

    fn outputs(&self) -> Vec<String> {
        CHURN_TRAITS.iter().map(|t| t.to_string()).collect()
    }

    /// Its hidden counts and the features' columns.
    fn reads(&self) -> Vec<String> {
        let mut reads: Vec<String> = self.counts().iter().map(|s| s.to_string()).collect();
        reads.extend(self.features.iter().map(|f| f.column.clone()));
        reads
    }

    fn prepare(
        &self,
        as_of: AsOf,
        cutoffs: &dyn Cutoffs,
        progress: &dyn Progress,
    ) -> Result<Arc<dyn ModelRun>> {
        Ok(prepare(self, as_of, cutoffs, progress)?)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Equal-count bins of the calibration table.
const CALIBRATION_BINS: usize = 10;

/// What makes an entity churned, resolved against the events.
enum ChurnLabel {
    /// A churn event (`None` when the condition did not resolve: validation fails then).
    Event(Option<TypedExpr>),
    /// No activity event within the window; `None`: every event is activity.
    Inactive(Option<TypedExpr>),
}

/// `[churn]` resolved.
#[derive(Debug, Clone)]
pub struct ChurnPlan {
    /// The label window and the spacing of the cutoffs (with `inactive`: the period).
    pub window: Window,
    /// Churn by inactivity (`[churn] inactive`) rather than by a churn event.
    pub inactive: bool,
    /// Features, in the order given.
    pub features: Vec<ChurnFeature>,
    /// L2 penalty.
    pub l2_penalty: f64,
    /// Drivers listed per entity.
    pub drivers: usize,
    /// What churned means, for reports: the churn condition, or "no event ... for 90d".
    pub churned: String,
    /// With `inactive`: the activity condition, if any.
    pub activity: Option<String>,
}

impl ChurnPlan {
    /// The hidden counts the model reads in every evaluation.
    fn counts(&self) -> &'static [&'static str] {
        if self.inactive {
            &[hidden::CHURN_ACTIVE]
        } else {
            &[hidden::CHURN_LABEL, hidden::CHURN_BEFORE, hidden::CHURN_SEEN]
        }
    }
}

/// One feature of `[churn]`.
#[derive(Debug, Clone)]
pub struct ChurnFeature {
    /// Its name in the project.
    pub name: String,
    /// Its column in the evaluation table.
    pub column: String,
    /// A string column: one-hot encoded (on the categories frequent in the training rows).
    pub categorical: bool,
}

/// At most this many categories of a string feature become indicators.
const MAX_CATEGORIES: usize = 20;
/// A category needs this share of the training rows (and at least 5 rows) to get an indicator.
const MIN_CATEGORY_SHARE: f64 = 0.01;

/// One feature's values in one evaluation.
#[derive(Debug, Clone)]
enum Values {
    Numbers(Vec<Option<f64>>),
    Categories(Vec<Option<String>>),
}

/// The model's columns: numeric features as they are, string features one-hot encoded on the
/// categories frequent in the training rows (rarer ones and NULL have every indicator 0). Fixed
/// at training, applied to the holdout and to scoring.
#[derive(Debug, Clone)]
struct Encoding {
    /// (model column name, feature index, the category of an indicator).
    columns: Vec<(String, usize, Option<String>)>,
}

impl Encoding {
    fn fit(plan: &ChurnPlan, snapshot: &Snapshot, rows: &[usize]) -> Encoding {
        let mut columns = Vec::new();
        for (index, (feature, values)) in plan.features.iter().zip(&snapshot.features).enumerate() {
            match values {
                Values::Numbers(_) => columns.push((feature.name.clone(), index, None)),
                Values::Categories(values) => {
                    let mut counts: std::collections::BTreeMap<&str, usize> =
                        std::collections::BTreeMap::new();
                    for value in rows.iter().filter_map(|&r| values[r].as_deref()) {
                        *counts.entry(value).or_default() += 1;
                    }
                    let needed = ((rows.len() as f64 * MIN_CATEGORY_SHARE).ceil() as usize).max(5);
                    let mut frequent: Vec<(&str, usize)> =
                        counts.into_iter().filter(|(_, n)| *n >= needed).collect();
                    frequent.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
                    for (value, _) in frequent.into_iter().take(MAX_CATEGORIES) {
                        columns.push((format!("{}={value}", feature.name), index, Some(value.to_string())));
                    }
                }
            }
        }
        Encoding { columns }
    }

    /// The feature matrix of `rows` of a snapshot.
    fn matrix(&self, snapshot: &Snapshot, rows: &[usize]) -> Result<FeatureMatrix> {
        let columns = self
            .columns
            .iter()
            .map(|(name, index, category)| {
                let values = match (&snapshot.features[*index], category) {
                    (Values::Numbers(values), None) => rows.iter().map(|&r| values[r]).collect(),
                    (Values::Categories(values), Some(category)) => rows
                        .iter()
                        .map(|&r| {
                            Some(if values[r].as_deref() == Some(category.as_str()) { 1.0 } else { 0.0 })
                        })
                        .collect(),
                    _ => return Err(Error::Internal(format!("churn feature `{name}` changed its type"))),
                };
                Ok((name.clone(), values))
            })
            .collect::<Result<Vec<_>>>()?;
        FeatureMatrix::from_columns(columns).map_err(churn_error)
    }

    /// How a driver reads: `logins_30d = 0` or `industry = retail` / `industry != retail`.
    fn describe(&self, feature: &str, value: Option<f64>) -> String {
        match self.columns.iter().find(|(name, _, _)| name == feature) {
            Some((_, _, Some(category))) => {
                let base = feature.strip_suffix(&format!("={category}")).unwrap_or(feature);
                let op = if value == Some(1.0) { "=" } else { "!=" };
                format!("{base} {op} {category}")
            }
            _ => format!("{feature} = {}", value.map_or_else(|| "missing".to_string(), format_number)),
        }
    }
}

/// What one evaluation showed of the entities: ids, features, activity and labels.
#[derive(Debug, Clone)]
struct Snapshot {
    ids: StringArray,
    /// Per feature, per row.
    features: Vec<Values>,
    /// Active at the evaluation instant.
    active: Vec<bool>,
    /// Churned within the window before the instant: a churn event in it, or (by inactivity) no
    /// activity in it.
    churned_in_window: Vec<bool>,
}

impl Snapshot {
    fn read(plan: &ChurnPlan, table: &RecordBatch) -> Result<Snapshot> {
        let column = |name: &str| {
            table
                .column_by_name(name)
                .ok_or_else(|| Error::Internal(format!("the evaluation table has no `{name}`")))
        };
        let ids = column(hidden::ENTITY_ID)?.as_string::<i32>().clone();
        let mut features = Vec::with_capacity(plan.features.len());
        for feature in &plan.features {
            let name = &feature.column;
            let target = if feature.categorical { DataType::Utf8 } else { DataType::Float64 };
            let values = arrow::compute::cast(column(name)?, &target)
                .map_err(|e| Error::Internal(format!("feature `{name}` as {target}: {e}")))?;
            features.push(if feature.categorical {
                Values::Categories(values.as_string::<i32>().iter().map(|v| v.map(str::to_string)).collect())
            } else {
                Values::Numbers(
                    values.as_primitive::<Float64Type>().iter().map(|v| v.filter(|v| !v.is_nan())).collect(),
                )
            });
        }
        let counts = |name: &str| -> Result<Vec<i64>> {
            let array = column(name)?
                .as_primitive_opt::<Int64Type>()
                .ok_or_else(|| Error::Internal(format!("`{name}` is not an int column")))?;
            Ok(array.iter().map(|v| v.unwrap_or(0)).collect())
        };
        if plan.inactive {
            // Active: an activity event within the period before the instant; an entity active
            // at a cutoff has churned by the next one when it has none in the period between.
            let recent = counts(hidden::CHURN_ACTIVE)?;
            return Ok(Snapshot {
                ids,
                features,
                active: recent.iter().map(|r| *r > 0).collect(),
                churned_in_window: recent.iter().map(|r| *r == 0).collect(),
            });
        }
        let (seen, before, label) =
            (counts(hidden::CHURN_SEEN)?, counts(hidden::CHURN_BEFORE)?, counts(hidden::CHURN_LABEL)?);
        Ok(Snapshot {
            ids,
            features,
            active: seen.iter().zip(&before).map(|(s, b)| *s > 0 && *b == 0).collect(),
            churned_in_window: label.iter().map(|l| *l > 0).collect(),
        })
    }

    fn active_rows(&self) -> Vec<usize> {
        (0..self.active.len()).filter(|&r| self.active[r]).collect()
    }

    fn same_entities(&self, other: &Snapshot) -> Result<()> {
        if self.ids != other.ids {
            return Err(Error::Internal("two evaluations of one project saw different entities".into()));
        }
        Ok(())
    }
}

/// Reads the snapshot of a cutoff evaluation and adds nothing.
#[derive(Debug)]
struct Capture {
    plan: ChurnPlan,
    snapshot: Mutex<Option<Snapshot>>,
}

impl TableExtension for Capture {
    fn columns(&self, table: &RecordBatch) -> std::result::Result<Vec<(String, ArrayRef)>, ExtensionError> {
        let snapshot = Snapshot::read(&self.plan, table).map_err(|e| Box::new(e) as ExtensionError)?;
        if let Ok(mut slot) = self.snapshot.lock() {
            *slot = Some(snapshot);
        }
        Ok(Vec::new())
    }
}

/// What training and the holdout showed, kept for the run's summary and `churn_model.json`.
#[derive(Debug, Clone)]
pub struct ChurnReport {
    /// The model.
    pub model: ChurnModel,
    /// The holdout's AUC and calibration.
    pub holdout: Evaluation,
    /// The training cutoff (T - 2W).
    pub train_cutoff: AsOf,
    /// The holdout cutoff (T - W).
    pub holdout_cutoff: AsOf,
    /// Entities scored (active at T).
    pub scored: usize,
    /// Entities not scored (churned before T, or without events).
    pub not_scored: usize,
}

/// The `[churn]` table extension of a run: the trained model, the holdout's features, and
/// after the run, the report.
#[derive(Debug)]
pub(crate) struct ChurnExtension {
    plan: ChurnPlan,
    model: ChurnModel,
    encoding: Encoding,
    holdout: Snapshot,
    train_cutoff: AsOf,
    holdout_cutoff: AsOf,
    as_of: AsOf,
    report: Mutex<Option<ChurnReport>>,
}

impl ModelRun for ChurnExtension {
    fn outcome(&self) -> Option<Arc<dyn Outcome>> {
        let report = self.report.lock().ok().and_then(|r| r.clone())?;
        Some(Arc::new(ChurnOutcome { plan: self.plan.clone(), report, as_of: self.as_of }))
    }

    fn trained_until(&self) -> Option<i64> {
        Some(self.train_cutoff.instant.max(self.holdout_cutoff.instant))
    }
}

impl ChurnExtension {
    fn compute(&self, table: &RecordBatch) -> Result<Vec<(String, ArrayRef)>> {
        let now = Snapshot::read(&self.plan, table)?;
        now.same_entities(&self.holdout)?;
        let rows = self.holdout.active_rows();
        let matrix = self.encoding.matrix(&self.holdout, &rows)?;
        let labels: Vec<bool> = rows.iter().map(|&r| now.churned_in_window[r]).collect();
        let holdout = churn::evaluate(&self.model, &matrix, &labels, CALIBRATION_BINS).map_err(|source| {
            Error::Churn {
                source,
                hint: Some(format!(
                    "the holdout is the entities active as of {} and what happened to them by the as-of instant",
                    self.holdout_cutoff.to_rfc3339()
                )),
            }
        })?;

        let (risk, drivers) = self.score(&now)?;
        let report = ChurnReport {
            model: self.model.clone(),
            holdout,
            train_cutoff: self.train_cutoff,
            holdout_cutoff: self.holdout_cutoff,
            scored: risk.iter().flatten().count(),
            not_scored: risk.iter().filter(|r| r.is_none()).count(),
        };
        if let Ok(mut slot) = self.report.lock() {
            *slot = Some(report);
        }
        Ok(Self::columns_of(risk, drivers))
    }

    fn columns_of(risk: Vec<Option<f64>>, drivers: Vec<Option<String>>) -> Vec<(String, ArrayRef)> {
        vec![
            (CHURN_TRAITS[0].to_string(), Arc::new(Float64Array::from(risk)) as ArrayRef),
            (CHURN_TRAITS[1].to_string(), Arc::new(StringArray::from(drivers)) as ArrayRef),
        ]
    }

    /// The risk and drivers of every row of `now` active at its instant (the others NULL):
    /// each row's from its own features and the trained model alone.
    #[allow(clippy::type_complexity)]
    fn score(&self, now: &Snapshot) -> Result<(Vec<Option<f64>>, Vec<Option<String>>)> {
        let active = now.active_rows();
        // Drivers are the features that raise the risk most ("why is this account at risk").
        let matrix = self.encoding.matrix(now, &active)?;
        let scores = churn::score(&self.model, &matrix, self.encoding.columns.len()).map_err(churn_error)?;
        let mut risk: Vec<Option<f64>> = vec![None; now.active.len()];
        let mut drivers: Vec<Option<String>> = vec![None; now.active.len()];
        for (&row, score) in active.iter().zip(&scores) {
            risk[row] = Some(score.probability);
            drivers[row] = Some(
                score
                    .drivers
                    .iter()
                    .filter(|d| d.contribution > 0.0)
                    .take(self.plan.drivers)
                    .map(|d| {
                        format!("{} ({:+.2})", self.encoding.describe(&d.feature, d.value), d.contribution)
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            );
        }
        Ok((risk, drivers))
    }
}

impl TableExtension for ChurnExtension {
    fn columns(&self, table: &RecordBatch) -> std::result::Result<Vec<(String, ArrayRef)>, ExtensionError> {
        self.compute(table).map_err(|e| Box::new(e) as ExtensionError)
    }

    /// Scoring is row by row with the trained model (the holdout's report, which reads every
    /// row, stays as the last full evaluation left it).
    fn row_columns(
        &self,
        table: &RecordBatch,
    ) -> Option<std::result::Result<Vec<(String, ArrayRef)>, ExtensionError>> {
        let scored = Snapshot::read(&self.plan, table).and_then(|now| self.score(&now));
        Some(
            scored
                .map(|(risk, drivers)| Self::columns_of(risk, drivers))
                .map_err(|e| Box::new(e) as ExtensionError),
        )
    }
}

/// A number as a driver shows it: whole numbers without decimals, others to 3 significant
/// decimals.
fn format_number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        let text = format!("{value:.3}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// A churn error, with a hint where the model's own message has none.
pub(crate) fn churn_error(source: churn::Error) -> Error {
    let hint = match &source {
        churn::Error::TooFewRows { .. } => Some(
            "too few entities are active at the training cutoff (as-of minus twice the window): use a shorter window or a later as-of".into(),
        ),
        churn::Error::Fit(_) => Some("raise [churn] l2_penalty, or drop features that repeat others".into()),
        _ => None,
    };
    Error::Churn { source, hint }
}

/// Trains the model on the cutoff evaluations and returns the run's extension.
fn prepare(
    plan: &ChurnPlan,
    as_of: AsOf,
    cutoffs: &dyn Cutoffs,
    progress: &dyn Progress,
) -> Result<Arc<ChurnExtension>> {
    let keep: HashSet<String> = plan.reads().into_iter().collect();
    let window = plan.window.micros();
    let train_cutoff = AsOf { instant: as_of.instant - 2 * window };
    let holdout_cutoff = AsOf { instant: as_of.instant - window };
    let mut snapshots = Vec::with_capacity(2);
    for cutoff in [train_cutoff, holdout_cutoff] {
        progress.step(&format!("churn: traits as of {}", cutoff.to_rfc3339()));
        let capture = Arc::new(Capture { plan: plan.clone(), snapshot: Mutex::new(None) });
        cutoffs.evaluate(cutoff, &keep, capture.clone())?;
        let snapshot = capture
            .snapshot
            .lock()
            .ok()
            .and_then(|mut s| s.take())
            .ok_or_else(|| Error::Internal("the churn snapshot was not taken".into()))?;
        snapshots.push(snapshot);
        progress.done();
    }
    let holdout = snapshots.pop().ok_or_else(|| Error::Internal("no holdout snapshot".into()))?;
    let train = snapshots.pop().ok_or_else(|| Error::Internal("no training snapshot".into()))?;
    train.same_entities(&holdout)?;
    progress.step("churn: training");
    let rows = train.active_rows();
    let labels: Vec<bool> = rows.iter().map(|&r| holdout.churned_in_window[r]).collect();
    let options = TrainOptions { l2_penalty: plan.l2_penalty, ..TrainOptions::default() };
    let encoding = Encoding::fit(plan, &train, &rows);
    let model = churn::train(&encoding.matrix(&train, &rows)?, &labels, &options).map_err(churn_error)?;
    progress.done();
    Ok(Arc::new(ChurnExtension {
        plan: plan.clone(),
        model,
        encoding,
        holdout,
        train_cutoff,
        holdout_cutoff,
        as_of,
        report: Mutex::new(None),
    }))
}

/// What the churn model found in one evaluation.
#[derive(Debug, Clone)]
pub(crate) struct ChurnOutcome {
    plan: ChurnPlan,
    report: ChurnReport,
    as_of: AsOf,
}

/// The warning code of a holdout too small to trust its AUC.
pub(crate) const SMALL_HOLDOUT: &str = "churn_holdout_too_small";

impl ChurnOutcome {
    /// What the model warns about: a holdout with fewer than
    /// [`churn::MIN_TRUSTED_CLASS`] churners or retained entities, whose AUC is too uncertain
    /// to read.
    pub(crate) fn warnings(&self) -> Vec<Warning> {
        let holdout = &self.report.holdout;
        if holdout.auc_is_trusted() {
            return Vec::new();
        }
        vec![Warning {
            code: SMALL_HOLDOUT.into(),
            message: format!(
                "the churn holdout has {} churned and {} retained entities, fewer than {} in a class: its AUC {:.3} is uncertain (standard error about {:.2})",
                holdout.positives,
                holdout.negatives(),
                churn::MIN_TRUSTED_CLASS,
                holdout.auc,
                holdout.auc_standard_error()
            ),
            hint: format!(
                "the holdout is the entities active as of {} and what happened to them by the as-of instant: a longer window, a later as-of or more entities give it more of both",
                self.report.holdout_cutoff.to_rfc3339()
            ),
        }]
    }

    /// `churn_model.json`.
    pub(crate) fn model_file(&self) -> formats::ChurnModel {
        let (plan, report) = (&self.plan, &self.report);
        let status = |s: FeatureStatus| match s {
            FeatureStatus::Used => formats::FeatureStatus::Used,
            FeatureStatus::Constant => formats::FeatureStatus::Constant,
            FeatureStatus::AllMissing => formats::FeatureStatus::AllMissing,
        };
        let calibration = &report.holdout.calibration;
        formats::ChurnModel {
            format_version: FormatVersion,
            model: formats::ChurnModelKind::LogisticRegression,
            as_of: self.as_of.to_rfc3339(),
            churned: plan.churned.clone(),
            inactive: plan.inactive.then(|| plan.window.to_string()),
            activity: plan.activity.clone(),
            window: plan.window.to_string(),
            l2_penalty: plan.l2_penalty,
            train: formats::ChurnTraining {
                cutoff: report.train_cutoff.to_rfc3339(),
                rows: report.model.rows as u64,
                churned: report.model.positives as u64,
            },
            holdout: formats::ChurnHoldout {
                cutoff: report.holdout_cutoff.to_rfc3339(),
                rows: report.holdout.rows as u64,
                churned: report.holdout.positives as u64,
                auc: report.holdout.auc,
                brier: calibration.brier,
                expected_calibration_error: calibration.expected_calibration_error,
                calibration: calibration
                    .bins
                    .iter()
                    .map(|b| formats::CalibrationBin {
                        count: b.count as u64,
                        min_predicted: b.min_predicted,
                        max_predicted: b.max_predicted,
                        mean_predicted: b.mean_predicted,
                        observed_rate: b.observed_rate,
                    })
                    .collect(),
            },
            intercept: report.model.intercept,
            features: report
                .model
                .features
                .iter()
                .map(|f| formats::ChurnModelFeature {
                    name: f.name.to_string(),
                    status: status(f.status),
                    coefficient: f.coefficient,
                    mean: f.mean,
                    scale: f.scale,
                    missing: f.missing as u64,
                })
                .collect(),
            scored: report.scored as u64,
            not_scored: report.not_scored as u64,
            warnings: self.warnings(),
        }
    }
}

impl Outcome for ChurnOutcome {
    fn record(&self, summary: &mut RunSummary) {
        let report = &self.report;
        summary.churn = Some(formats::ChurnSummary {
            model_file: formats::ChurnModel::FILE.to_string(),
            auc: report.holdout.auc,
            holdout_rows: report.holdout.rows as u64,
            train_rows: report.model.rows as u64,
            scored: report.scored as u64,
            not_scored: report.not_scored as u64,
        });
        summary.warnings.extend(self.warnings());
    }

    fn files(&self) -> Result<Vec<(&'static str, OutputFile)>> {
        Ok(vec![self.model_file().output()?])
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
