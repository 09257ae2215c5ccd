//! `kpis`: the KPIs of every segment, and of the whole population, read from the snapshots'
//! run folders: size and share, revenue and ARPA as of one snapshot; between two snapshots,
//! logo retention and churn, gross and net dollar retention and acquisition; the CLV mean with
//! `[clv]`; and the conversion to a goal event in a window after the snapshot (an evaluation of
//! the events after it, so that a past snapshot can be backtested). `docs/kpis.md` states every
//! definition; `tests/differential/kpis_duckdb.py` recomputes them with DuckDB.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Float64Type};
use segmenta_core::Window;
use segmenta_store::catalog::Snapshot;
use segmenta_store::files;

use crate::as_of::AsOf;
use crate::error::{Error, Result};
use crate::evaluation::RunOptions;
use crate::exec::Exec;
use crate::progress::Progress;
use crate::project::Project;

/// The default goal window: 30 days after the snapshot.
pub const DEFAULT_GOAL_WINDOW: Window = Window { amount: 30, unit: segmenta_core::WindowUnit::Day };

/// The label of the whole population's row.
pub const ALL: &str = "(all)";
/// The group of segments without an owner (or channel) with `--by`.
pub const NONE: &str = "(none)";

/// How the rows are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KpiGrouping {
    /// One row per segment (the default).
    #[default]
    Segment,
    /// One row per owner: the members of all its segments together.
    Owner,
    /// One row per channel.
    Channel,
}

/// What `kpis` computes.
#[derive(Debug, Clone, Default)]
pub struct KpiOptions {
    /// The snapshot reported (id or as-of date); default: the latest run.
    pub at: Option<String>,
    /// A second snapshot: retention, churn and acquisition run from the earlier of the two to
    /// the later.
    pub compare: Option<String>,
    /// Rows per segment, owner or channel.
    pub by: KpiGrouping,
    /// Threads, bad rows and cancellation of the goal's evaluation.
    pub run: RunOptions,
}

/// One snapshot the report read.
#[derive(Debug, Clone)]
pub struct KpiSnapshot {
    /// Its catalog id.
    pub id: i64,
    /// Its as-of instant, RFC 3339.
    pub as_of: String,
}

/// The KPIs of one segment (or owner, channel, or the population).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KpiRow {
    /// The segment, owner or channel, or `(all)`.
    pub name: String,
    /// The segment's owner (per-segment rows).
    pub owner: Option<String>,
    /// The segment's channel (per-segment rows).
    pub channel: Option<String>,
    /// Members at the reported snapshot.
    pub size: u64,
    /// Of the snapshot's entities.
    pub share: f64,
    /// The sum of the revenue column over the members (with `[kpis] revenue`).
    pub revenue: Option<f64>,
    /// Revenue per member.
    pub arpa: Option<f64>,
    /// Logos at the start snapshot (with `--compare`): its members (with a revenue, those
    /// whose revenue there is above 0).
    pub start_members: Option<u64>,
    /// Of those, still entities at the end (and with revenue above 0 there, with a revenue).
    pub retained: Option<u64>,
    /// retained / start_members.
    pub logo_retention: Option<f64>,
    /// 1 - logo_retention.
    pub logo_churn: Option<f64>,
    /// Gross dollar retention.
    pub grr: Option<f64>,
    /// Net dollar retention.
    pub nrr: Option<f64>,
    /// Members at the end that were not entities at the start.
    pub acquired: Option<u64>,
    /// The mean of `clv_<months>m` over the members (with `[clv]`).
    pub clv_mean: Option<f64>,
    /// Members with a goal event in the window after the snapshot (with `[kpis] goal`).
    pub converted: Option<u64>,
    /// converted / size.
    pub conversion: Option<f64>,
}

/// What `kpis` found.
#[derive(Debug, Clone)]
pub struct KpiReport {
    /// The snapshot reported.
    pub at: KpiSnapshot,
    /// The start and end of the comparison, when there is one.
    pub compare: Option<(KpiSnapshot, KpiSnapshot)>,
    /// The revenue column.
    pub revenue: Option<String>,
    /// The goal condition and its window, and the end of the window (RFC 3339).
    pub goal: Option<(String, String, String)>,
    /// The column CLV means are of.
    pub clv: Option<String>,
    /// Per segment (owner, channel), in the project's order.
    pub rows: Vec<KpiRow>,
    /// The whole population.
    pub population: KpiRow,
}

/// What one run folder holds that KPIs read.
pub(crate) struct RunData {
    /// The segments the run computed (with members or not).
    pub computed: HashSet<String>,
    /// The run's entities.
    pub entities: HashSet<String>,
    /// Each segment's members.
    pub members: HashMap<String, HashSet<String>>,
    /// Each entity's revenue (NULL left out).
    pub revenue: HashMap<String, f64>,
    /// Each entity's CLV.
    pub clv: HashMap<String, f64>,
}

/// Reads a numeric column of the run's evaluation table, by entity (NULL left out).
fn numeric(path: &Path, column: &str, what: &str, run: &Path) -> Result<HashMap<String, f64>> {
    let columns = segmenta_store::read_parquet_schema(path)?;
    if !columns.iter().any(|c| c == column) {
        let hint = segmenta_core::config::did_you_mean(column, columns.iter().map(String::as_str))
            .map(|best| format!("did you mean `{best}`?"))
            .unwrap_or_else(|| "name a numeric attribute or trait of the project's entity".into());
        return Err(Error::UnknownColumn {
            message: format!("{what} `{column}` is not a column of the run in {}", run.display()),
            hint: Some(hint),
        });
    }
    let batch =
        segmenta_store::read_parquet_columns(path, &[segmenta_query::ENTITY_ID.to_string(), column.into()])?;
    let ids = batch.column(0).as_string::<i32>();
    let values = batch.column(1);
    let values = match values.data_type() {
        DataType::Int64 | DataType::Float64 | DataType::Int32 | DataType::UInt64 => {
            arrow::compute::cast(values, &DataType::Float64).map_err(|e| Error::Internal(e.to_string()))?
        }
        other => {
            return Err(Error::Usage {
                message: format!("{what} `{column}` is {other}, not a number"),
                hint: Some("name a numeric attribute or trait (an int or a float)".into()),
            });
        }
    };
    let values = values.as_primitive::<Float64Type>();
    Ok((0..ids.len())
        .filter(|&i| ids.is_valid(i) && values.is_valid(i))
        .map(|i| (ids.value(i).to_string(), values.value(i)))
        .collect())
}

pub(crate) fn read_run(run: &Path, revenue: Option<&str>, clv: Option<&str>) -> Result<RunData> {
    let mut ids = segmenta_store::read_text_columns(&run.join(files::TRAITS), &[segmenta_query::ENTITY_ID])?;
    let entities: HashSet<String> =
        ids.pop().flatten().map(|a| a.iter().flatten().map(String::from).collect()).unwrap_or_default();
    let (member_ids, segments) = segmenta_store::read_memberships(run)?;
    let mut members: HashMap<String, HashSet<String>> = HashMap::new();
    for (id, segment) in member_ids.iter().zip(segments.iter()) {
        if let (Some(id), Some(segment)) = (id, segment) {
            members.entry(segment.to_string()).or_default().insert(id.to_string());
        }
    }
    let table = run.join(files::TABLE);
    let revenue = match revenue {
        Some(column) => numeric(&table, column, "[kpis] revenue", run)?,
        None => HashMap::new(),
    };
    let clv = match clv {
        Some(column) => numeric(&table, column, "the CLV trait", run)?,
        None => HashMap::new(),
    };
    let computed = segmenta_store::read_run_summary(run)?.segments.into_iter().map(|s| s.name).collect();
    Ok(RunData { computed, entities, members, revenue, clv })
}

pub(crate) fn ratio(a: f64, b: f64) -> Option<f64> {
    (b != 0.0).then(|| a / b)
}

/// The KPIs of one group of members.
fn row(
    name: &str,
    members_at: &dyn Fn(&RunData) -> HashSet<String>,
    at: &RunData,
    span: Option<(&RunData, &RunData)>,
    revenue: bool,
    converted: Option<&HashSet<String>>,
) -> KpiRow {
    let members = members_at(at);
    let size = members.len() as u64;
    let sum =
        |run: &RunData, ids: &HashSet<String>| ids.iter().filter_map(|id| run.revenue.get(id)).sum::<f64>();
    let mut row = KpiRow {
        name: name.to_string(),
        size,
        share: if at.entities.is_empty() { 0.0 } else { size as f64 / at.entities.len() as f64 },
        ..KpiRow::default()
    };
    if revenue {
        let total = sum(at, &members);
        row.revenue = Some(total);
        row.arpa = ratio(total, size as f64);
    }
    if !at.clv.is_empty() {
        let values: Vec<f64> = members.iter().filter_map(|id| at.clv.get(id).copied()).collect();
        row.clv_mean = ratio(values.iter().sum(), values.len() as f64);
    }
    if let Some(converted) = converted {
        let n = members.iter().filter(|id| converted.contains(*id)).count() as u64;
        row.converted = Some(n);
        row.conversion = ratio(n as f64, size as f64);
    }
    if let Some((start, end)) = span {
        let cohort = members_at(start);
        let value = |run: &RunData, id: &str| run.revenue.get(id).copied().unwrap_or(0.0);
        // With a revenue, a logo is a member paying at the start, retained while it still pays.
        let logos: Vec<&String> = cohort.iter().filter(|id| !revenue || value(start, id) > 0.0).collect();
        let retained = logos
            .iter()
            .filter(|id| end.entities.contains(id.as_str()) && (!revenue || value(end, id) > 0.0))
            .count() as u64;
        row.start_members = Some(logos.len() as u64);
        row.retained = Some(retained);
        row.logo_retention = ratio(retained as f64, logos.len() as f64);
        row.logo_churn = row.logo_retention.map(|r| 1.0 - r);
        row.acquired = Some(members_at(end).iter().filter(|id| !start.entities.contains(*id)).count() as u64);
        if revenue {
            let base: f64 = cohort.iter().map(|id| value(start, id)).sum();
            let kept: f64 = cohort.iter().map(|id| value(end, id).min(value(start, id))).sum();
            let now: f64 = cohort.iter().map(|id| value(end, id)).sum();
            row.grr = ratio(kept, base);
            row.nrr = ratio(now, base);
        }
    }
    row
}

/// The snapshot `at` (id or date), or the latest run's.
pub(crate) fn snapshot(project: &Project, at: Option<&str>) -> Result<Snapshot> {
    match at {
        Some(at) => crate::stored::snapshot_at(project, at),
        None => {
            let store = segmenta_store::Store::new(project.store_dir());
            let latest = store.latest()?;
            let latest = latest.canonicalize().unwrap_or(latest);
            crate::stored::snapshots(project)?
                .into_iter()
                .find(|s| s.run_dir.canonicalize().is_ok_and(|d| d == latest))
                .ok_or_else(|| Error::UnknownSnapshot {
                    given: "the latest run".into(),
                    hint: "the latest run is not in the catalog of snapshots; run `segmenta run` again, or give --at".into(),
                })
        }
    }
}

/// The entities with at least one goal event in `[as_of, as_of + window)`: the project's
/// events evaluated as of the window's end with the one trait `count() where GOAL within
/// WINDOW` (so a goal is a condition of the trait language, with its positions in errors).
fn goal_converters(
    exec: &Exec,
    project: &Project,
    goal: &str,
    window: Window,
    as_of: i64,
    options: &RunOptions,
    progress: &dyn Progress,
) -> Result<HashSet<String>> {
    let text = format!("count() where {goal} within {window}");
    let counts =
        one_trait(exec, project, toml_edit::value(text), as_of + window.micros(), options, progress)?;
    Ok(counts.into_iter().filter(|(_, n)| *n > 0.0).map(|(id, _)| id).collect())
}

/// One trait of the project's entity evaluated as of `instant` on its own (the project's other
/// traits, segments and models left out), by entity id: what a report needs beyond a snapshot
/// (events after it, a rollup over contacts), in the trait language with its located errors.
pub(crate) fn one_trait(
    exec: &Exec,
    project: &Project,
    definition: toml_edit::Item,
    instant: i64,
    options: &RunOptions,
    progress: &dyn Progress,
) -> Result<HashMap<String, f64>> {
    const TRAIT: &str = "segmenta_report_trait";
    let drop = [crate::project::SEGMENT_SECTIONS, &["rfm", "clv", "churn", "kpis", "quality"]].concat();
    let derived = project.with_section("traits", &drop, |traits| {
        traits.clear();
        traits.insert(TRAIT, definition);
        Ok(())
    })?;
    let plan = crate::validate::validate(&derived)?;
    let options = RunOptions { as_of: Some(AsOf { instant }), output: None, ..options.clone() };
    let evaluated = crate::evaluation::evaluate(exec, &plan, &options, progress)?;
    let traits = &evaluated.output.traits;
    let index = traits
        .schema()
        .index_of(TRAIT)
        .map_err(|_| Error::Internal("the report's trait was not computed".into()))?;
    let ids = traits.column(0).as_string::<i32>();
    let values = arrow::compute::cast(traits.column(index), &DataType::Float64)
        .map_err(|e| Error::Internal(e.to_string()))?;
    let values = values.as_primitive::<Float64Type>();
    Ok((0..ids.len())
        .filter(|&i| values.is_valid(i))
        .map(|i| (ids.value(i).to_string(), values.value(i)))
        .collect())
}

/// Computes the KPIs.
pub(crate) fn kpis(
    exec: &Exec,
    project: &Project,
    options: &KpiOptions,
    progress: &dyn Progress,
) -> Result<KpiReport> {
    Ok(kpis_and_run(exec, project, options, progress)?.0)
}

/// The KPIs, with the snapshot reported and what was read of its run folder (`quality` judges
/// the same data, without reading it again).
pub(crate) fn kpis_and_run(
    exec: &Exec,
    project: &Project,
    options: &KpiOptions,
    progress: &dyn Progress,
) -> Result<(KpiReport, Snapshot, RunData)> {
    let config = &project.config;
    let at = snapshot(project, options.at.as_deref())?;
    let compare = options.compare.as_deref().map(|c| crate::stored::snapshot_at(project, c)).transpose()?;
    let revenue = config.kpis.revenue.as_ref().map(|r| r.get_ref().clone());
    let clv = config.clv.as_ref().map(|c| format!("clv_{}m", c.months()));
    progress.step("reading the snapshots");
    let data = read_run(&at.run_dir, revenue.as_deref(), clv.as_deref())?;
    let span = match &compare {
        Some(other) => {
            let other_data = read_run(&other.run_dir, revenue.as_deref(), None)?;
            Some((other.clone(), other_data))
        }
        None => None,
    };
    progress.done();
    let goal = match &config.kpis.goal {
        Some(goal) => {
            let window = match &config.kpis.goal_window {
                Some(text) => text.get_ref().parse::<Window>().map_err(|e| Error::Usage {
                    message: format!("[kpis] goal_window `{}`: {e}", text.get_ref()),
                    hint: Some("a window such as 30d, 12w or 36h".into()),
                })?,
                None => DEFAULT_GOAL_WINDOW,
            };
            progress.step("reading the goal events after the snapshot");
            let converted = goal_converters(
                exec,
                project,
                goal.get_ref(),
                window,
                at.as_of_micros,
                &options.run,
                progress,
            )?;
            progress.done();
            let end = AsOf { instant: at.as_of_micros + window.micros() }.to_rfc3339();
            Some((goal.get_ref().clone(), window.to_string(), end, converted))
        }
        None => None,
    };
    let converted = goal.as_ref().map(|g| &g.3);
    // The comparison runs forward in time, whichever way round the snapshots were given.
    let ordered = span.as_ref().map(|(other, other_data)| {
        if other.as_of_micros <= at.as_of_micros {
            ((other, other_data), (&at, &data))
        } else {
            ((&at, &data), (other, other_data))
        }
    });
    let runs = ordered.as_ref().map(|((_, s), (_, e))| (*s, *e));
    let has_revenue = revenue.is_some();

    // The groups: segments in the project's order (those the snapshot computed), or owners.
    let declared = config.segment_names();
    let computed: Vec<&String> = declared.iter().filter(|s| data.computed.contains(*s)).collect();
    let owner_of = |segment: &str| -> (Option<String>, Option<String>) {
        if let Some(s) = config.segments.get(segment) {
            (s.owner.clone(), s.channel.clone())
        } else if let Some(m) = config.movements.get(segment) {
            (m.owner.clone(), m.channel.clone())
        } else {
            (None, None)
        }
    };
    let mut rows = Vec::new();
    match options.by {
        KpiGrouping::Segment => {
            for segment in computed {
                let name = segment.clone();
                let members = move |run: &RunData| run.members.get(&name).cloned().unwrap_or_default();
                let mut r = row(segment, &members, &data, runs, has_revenue, converted);
                (r.owner, r.channel) = owner_of(segment);
                rows.push(r);
            }
        }
        KpiGrouping::Owner | KpiGrouping::Channel => {
            let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for segment in computed {
                let (owner, channel) = owner_of(segment);
                let key = if options.by == KpiGrouping::Owner { owner } else { channel };
                groups.entry(key.unwrap_or_else(|| NONE.to_string())).or_default().push(segment.clone());
            }
            for (group, segments) in groups {
                let members = move |run: &RunData| {
                    segments
                        .iter()
                        .filter_map(|s| run.members.get(s))
                        .flatten()
                        .cloned()
                        .collect::<HashSet<String>>()
                };
                rows.push(row(&group, &members, &data, runs, has_revenue, converted));
            }
        }
    }
    let everyone = |run: &RunData| run.entities.clone();
    let population = row(ALL, &everyone, &data, runs, has_revenue, converted);
    let reported = |s: &Snapshot| KpiSnapshot { id: s.id, as_of: s.as_of.clone() };
    let report = KpiReport {
        at: reported(&at),
        compare: ordered.map(|((s, _), (e, _))| (reported(s), reported(e))),
        revenue,
        goal: goal.map(|(g, w, end, _)| (g, w, end)),
        clv,
        rows,
        population,
    };
    Ok((report, at, data))
}
