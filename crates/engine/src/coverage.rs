//! `coverage`: customer-success coverage. Every account of a snapshot goes to the first
//! engagement model of `[coverage]` whose rule (over the run's table) or segment holds it; the
//! accounts of a model are assigned to the CSMs of that model in the roster, balancing revenue
//! and account count, and **sticky**: an account keeps the CSM it had in the newest earlier
//! coverage while it stays in the model and that CSM has room. Written to the snapshot's run
//! folder as `coverage.parquet` (entity_id, model, csm). `docs/coverage.md` states the rules.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use indexmap::IndexMap;
use segmenta_core::ValueType;
use segmenta_query::ingest::{self, BadRows};

use crate::error::{Error, Result};
use crate::kpis::{self, KpiSnapshot};
use crate::project::Project;

/// The file `coverage` writes into the snapshot's run folder.
pub const COVERAGE_FILE: &str = "coverage.parquet";

/// One CSM of the roster.
#[derive(Debug, Clone, PartialEq)]
pub struct Csm {
    /// Their id.
    pub id: String,
    /// Their name.
    pub name: String,
    /// Their engagement model.
    pub model: String,
    /// Accounts they can carry (the roster's `capacity`, else the model's ratio).
    pub capacity: u64,
    /// Accounts assigned.
    pub accounts: u64,
    /// The assigned accounts' revenue.
    pub revenue: f64,
    /// Of those accounts, how many kept their earlier CSM.
    pub kept: u64,
}

/// One engagement model's coverage.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelCoverage {
    /// The model.
    pub model: String,
    /// Its accounts-per-CSM ratio.
    pub accounts_per_csm: u64,
    /// Accounts in the model.
    pub accounts: u64,
    /// CSMs needed at the ratio: ceil(accounts / ratio).
    pub csms_needed: u64,
    /// CSMs of the model in the roster.
    pub csms_available: u64,
    /// max(0, needed - available).
    pub shortfall: u64,
    /// Accounts no CSM had room for.
    pub unassigned: u64,
    /// The accounts' revenue.
    pub revenue: f64,
}

/// What `coverage` did.
#[derive(Debug, Clone)]
pub struct CoverageReport {
    /// The snapshot covered.
    pub at: KpiSnapshot,
    /// The earlier coverage the assignment kept to, if any.
    pub previous: Option<KpiSnapshot>,
    /// Per model, in `[coverage]` order.
    pub models: Vec<ModelCoverage>,
    /// Per CSM, in roster order.
    pub csms: Vec<Csm>,
    /// The file written.
    pub output: std::path::PathBuf,
}

fn roster_error(path: &str, message: String, hint: &str) -> Error {
    Error::Usage { message: format!("{path}: {message}"), hint: Some(hint.into()) }
}

/// Reads the roster: `id`, `name`, `model`, optional `capacity`.
fn read_roster(project: &Project, models: &IndexMap<String, u64>) -> Result<Vec<Csm>> {
    let coverage = project.config.coverage.as_ref().ok_or_else(|| Error::Internal("no [coverage]".into()))?;
    let source = &coverage.roster;
    let spec = project.source_spec(
        source,
        &IndexMap::new(),
        &[
            ("id".to_string(), ValueType::String),
            ("name".to_string(), ValueType::String),
            ("model".to_string(), ValueType::String),
            ("capacity".to_string(), ValueType::Int),
        ],
    );
    let loaded = ingest::load_table(&spec, BadRows::Strict)?;
    let display = source.get_ref();
    let mut csms = Vec::new();
    let mut seen = HashSet::new();
    for batch in &loaded.batches {
        let text = |name: &str| -> Result<StringArray> {
            let column = batch.column_by_name(name).ok_or_else(|| {
                roster_error(
                    display,
                    format!("no `{name}` column"),
                    "the roster's columns are id, name, model and optionally capacity",
                )
            })?;
            Ok(arrow::compute::cast(column, &DataType::Utf8)
                .map_err(segmenta_query::Error::from)?
                .as_string::<i32>()
                .clone())
        };
        let (ids, names, model_column) = (text("id")?, text("name")?, text("model")?);
        let capacity = batch
            .column_by_name("capacity")
            .map(|c| arrow::compute::cast(c, &DataType::Int64))
            .transpose()
            .map_err(segmenta_query::Error::from)?;
        for row in 0..batch.num_rows() {
            let line = csms.len() + 2;
            let (Some(id), Some(model)) = (
                ids.is_valid(row).then(|| ids.value(row)),
                model_column.is_valid(row).then(|| model_column.value(row)),
            ) else {
                return Err(roster_error(
                    display,
                    format!("line {line}: a CSM needs an id and a model"),
                    "fill in the id and model columns",
                ));
            };
            let Some(&ratio) = models.get(model) else {
                let hint = segmenta_core::config::did_you_mean(model, models.keys().map(String::as_str))
                    .map(|best| format!("did you mean `{best}`?"))
                    .unwrap_or_else(|| {
                        format!(
                            "the models of [coverage]: {}",
                            models.keys().cloned().collect::<Vec<_>>().join(", ")
                        )
                    });
                return Err(roster_error(
                    display,
                    format!("line {line}: CSM `{id}` has model `{model}`, which [coverage] does not declare"),
                    &hint,
                ));
            };
            if !seen.insert(id.to_string()) {
                return Err(roster_error(
                    display,
                    format!("line {line}: CSM id `{id}` is listed twice"),
                    "give every CSM one row",
                ));
            }
            let capacity = match capacity.as_ref().map(|c| c.as_primitive::<arrow::datatypes::Int64Type>()) {
                Some(c) if c.is_valid(row) => {
                    let value = c.value(row);
                    if value < 0 {
                        return Err(roster_error(
                            display,
                            format!("line {line}: capacity {value} is negative"),
                            "a capacity is a number of accounts",
                        ));
                    }
                    value as u64
                }
                _ => ratio,
            };
            let name = if names.is_valid(row) { names.value(row).to_string() } else { id.to_string() };
            csms.push(Csm {
                id: id.to_string(),
                name,
                model: model.to_string(),
                capacity,
                accounts: 0,
                revenue: 0.0,
                kept: 0,
            });
        }
    }
    if csms.is_empty() {
        return Err(roster_error(
            display,
            "the roster lists no CSM".into(),
            "add rows: id,name,model[,capacity]",
        ));
    }
    Ok(csms)
}

/// The earlier assignment: the newest snapshot up to `at` with a coverage file.
fn previous_assignment(
    project: &Project,
    instant: i64,
) -> Result<Option<(segmenta_store::catalog::Snapshot, HashMap<String, String>)>> {
    for snapshot in crate::stored::snapshots(project)?.into_iter().rev().filter(|s| s.as_of_micros <= instant)
    {
        let path = snapshot.run_dir.join(COVERAGE_FILE);
        if path.is_file() {
            let mut columns = segmenta_store::read_text_columns(&path, &["entity_id", "csm"])?.into_iter();
            let (Some(Some(ids)), Some(Some(csms))) = (columns.next(), columns.next()) else { continue };
            let assigned = ids
                .iter()
                .zip(csms.iter())
                .filter_map(|(id, csm)| Some((id?.to_string(), csm?.to_string())))
                .collect();
            return Ok(Some((snapshot, assigned)));
        }
    }
    Ok(None)
}

/// The members of each model, first match wins.
fn model_members(project: &Project, run: &Path) -> Result<Vec<Vec<String>>> {
    let coverage = project.config.coverage.as_ref().ok_or_else(|| Error::Internal("no [coverage]".into()))?;
    let validated = crate::validate::validate(project)?;
    let mut taken: HashSet<String> = HashSet::new();
    let mut out = Vec::new();
    for model in &coverage.models {
        let ids: Vec<String> = match (&model.rule, &model.segment) {
            (Some(rule), _) => {
                let source = format!("[coverage] model `{}`", model.name.get_ref());
                let typed = segmenta_rules::parse_rule(rule.get_ref())
                    .and_then(|expr| segmenta_rules::resolve_rule(&expr, &validated.rules_catalog))
                    .map_err(|diagnostics| Error::Rules {
                        path: project.file.clone(),
                        problems: diagnostics
                            .into_iter()
                            .map(|diagnostic| crate::error::RuleProblem {
                                source: source.clone(),
                                text: rule.get_ref().clone(),
                                diagnostic,
                                file_position: None,
                            })
                            .collect(),
                    })?;
                segmenta_query::preview_file(&run.join(segmenta_store::files::TABLE), &typed, usize::MAX)?
                    .sample
            }
            (None, Some(segment)) => segmenta_store::read_members(run, segment.get_ref())?,
            (None, None) => Vec::new(),
        };
        out.push(ids.into_iter().filter(|id| taken.insert(id.clone())).collect());
    }
    Ok(out)
}

/// Assigns the accounts of a snapshot and writes `coverage.parquet` into its run folder.
pub fn coverage(project: &Project, at: Option<&str>) -> Result<CoverageReport> {
    let config = &project.config;
    let coverage = config.coverage.as_ref().ok_or_else(|| Error::Usage {
        message: "the project has no [coverage] section".into(),
        hint: Some("add [coverage] with a roster and [[coverage.models]] (docs/coverage.md)".into()),
    })?;
    let ratios: IndexMap<String, u64> =
        coverage.models.iter().map(|m| (m.name.get_ref().clone(), *m.accounts_per_csm.get_ref())).collect();
    let mut csms = read_roster(project, &ratios)?;
    let snapshot = kpis::snapshot(project, at)?;
    let revenue_column =
        coverage.revenue.as_ref().or(config.kpis.revenue.as_ref()).map(|r| r.get_ref().clone());
    let data = kpis::read_run(&snapshot.run_dir, revenue_column.as_deref(), None)?;
    let members = model_members(project, &snapshot.run_dir)?;
    let previous = previous_assignment(project, snapshot.as_of_micros)?;
    let empty = HashMap::new();
    let before = previous.as_ref().map_or(&empty, |(_, a)| a);

    let mut assigned: Vec<(String, String, Option<String>)> = Vec::new();
    let mut models = Vec::new();
    for (model, ids) in coverage.models.iter().zip(members) {
        let name = model.name.get_ref();
        let ratio = *model.accounts_per_csm.get_ref();
        let of_model: Vec<usize> = (0..csms.len()).filter(|&c| &csms[c].model == name).collect();
        let revenue = |id: &str| data.revenue.get(id).copied().unwrap_or(0.0);
        // Biggest accounts first (then by id), so that balancing places the large ones evenly.
        let mut order = ids.clone();
        order.sort_by(|a, b| revenue(b).total_cmp(&revenue(a)).then_with(|| a.cmp(b)));
        let total_revenue: f64 = order.iter().map(|id| revenue(id)).sum();
        let mut csm_of: HashMap<&str, Option<usize>> = HashMap::new();
        // Sticky: the earlier CSM keeps the account while they are of this model and have room.
        for id in &order {
            if let Some(c) =
                before.get(id.as_str()).and_then(|csm| of_model.iter().copied().find(|&c| &csms[c].id == csm))
                && csms[c].accounts < csms[c].capacity
            {
                csms[c].accounts += 1;
                csms[c].revenue += revenue(id);
                csms[c].kept += 1;
                csm_of.insert(id.as_str(), Some(c));
            }
        }
        // The rest: to the CSM with room whose share of the model's accounts and revenue is
        // lowest (ties: roster order).
        let (n, total) = (order.len().max(1) as f64, if total_revenue > 0.0 { total_revenue } else { 1.0 });
        let mut unassigned = 0;
        for id in &order {
            if csm_of.contains_key(id.as_str()) {
                continue;
            }
            let load = |c: usize| csms[c].accounts as f64 / n + csms[c].revenue / total;
            let best = of_model
                .iter()
                .copied()
                .filter(|&c| csms[c].accounts < csms[c].capacity)
                .min_by(|&a, &b| load(a).total_cmp(&load(b)).then(a.cmp(&b)));
            if let Some(c) = best {
                csms[c].accounts += 1;
                csms[c].revenue += revenue(id);
            } else {
                unassigned += 1;
            }
            csm_of.insert(id.as_str(), best);
        }
        for id in &ids {
            let csm = csm_of.get(id.as_str()).copied().flatten().map(|c| csms[c].id.clone());
            assigned.push((id.clone(), name.clone(), csm));
        }
        let accounts = ids.len() as u64;
        let needed = accounts.div_ceil(ratio);
        models.push(ModelCoverage {
            model: name.clone(),
            accounts_per_csm: ratio,
            accounts,
            csms_needed: needed,
            csms_available: of_model.len() as u64,
            shortfall: needed.saturating_sub(of_model.len() as u64),
            unassigned,
            revenue: total_revenue,
        });
    }
    assigned.sort_by(|a, b| crate::latest::natural_order(&a.0, &b.0));
    let schema = Arc::new(Schema::new(vec![
        Field::new("entity_id", DataType::Utf8, false),
        Field::new("model", DataType::Utf8, false),
        Field::new("csm", DataType::Utf8, true),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from_iter_values(assigned.iter().map(|a| a.0.as_str()))),
            Arc::new(StringArray::from_iter_values(assigned.iter().map(|a| a.1.as_str()))),
            Arc::new(assigned.iter().map(|a| a.2.as_deref()).collect::<StringArray>()),
        ],
    )
    .map_err(|e| Error::Internal(e.to_string()))?;
    let output = snapshot.run_dir.join(COVERAGE_FILE);
    segmenta_store::write_atomically(&output, &segmenta_store::parquet_bytes(&batch)?)?;
    let reported = |s: &segmenta_store::catalog::Snapshot| KpiSnapshot { id: s.id, as_of: s.as_of.clone() };
    Ok(CoverageReport {
        at: reported(&snapshot),
        previous: previous.as_ref().map(|(s, _)| reported(s)),
        models,
        csms,
        output,
    })
}
