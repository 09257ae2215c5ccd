//! `quality`: whether each segment is worth acting on, as segmentation textbooks test it
//! (measurable, accessible, substantial, differentiated and actionable, stable), each check a
//! value against a threshold of `[quality]` with a pass or a flag and the reason. It reads a
//! snapshot (and the one before it, for stability) and the KPIs of `kpis`; accessibility
//! evaluates the `reachable` rule over the contacts as of the snapshot. `docs/quality.md`
//! states the definitions and defaults.

use std::collections::{HashMap, HashSet};

use arrow::array::Array;

use crate::error::{Error, Result};
use crate::exec::Exec;
use crate::kpis::{self, KpiOptions, KpiRow, KpiSnapshot};
use crate::progress::Progress;
use crate::project::Project;

/// Default largest share of NULLs in a column a rule reads.
pub const DEFAULT_MAX_MISSING: f64 = 0.2;
/// Default smallest share of members with a reachable contact.
pub const DEFAULT_MIN_REACHABLE: f64 = 0.5;
/// Default fewest members.
pub const DEFAULT_MIN_SIZE: u64 = 30;
/// Default smallest share of the population's revenue.
pub const DEFAULT_MIN_REVENUE_SHARE: f64 = 0.01;
/// Default largest Jaccard overlap with another segment.
pub const DEFAULT_MAX_OVERLAP: f64 = 0.9;
/// Default smallest distance of a KPI's lift from 1.
pub const DEFAULT_MIN_LIFT: f64 = 0.1;
/// Default largest turnover between the last two snapshots.
pub const DEFAULT_MAX_TURNOVER: f64 = 0.5;

/// One check of one segment.
#[derive(Debug, Clone, PartialEq)]
pub struct QualityCheck {
    /// `measurable`, `accessible`, `substantial`, `substantial_revenue`, `differentiated`,
    /// `actionable` or `stable`.
    pub check: &'static str,
    /// The measured value (NULL when the check does not apply).
    pub value: Option<f64>,
    /// The threshold it is held to.
    pub threshold: f64,
    /// Whether it passes (a check that does not apply passes).
    pub pass: bool,
    /// Why, in words.
    pub reason: String,
}

/// One segment's checks.
#[derive(Debug, Clone)]
pub struct SegmentQuality {
    /// The segment.
    pub segment: String,
    /// Its members at the snapshot.
    pub size: u64,
    /// Every check passes.
    pub pass: bool,
    /// The checks, in the order above.
    pub checks: Vec<QualityCheck>,
}

/// What `quality` found.
#[derive(Debug, Clone)]
pub struct QualityReport {
    /// The snapshot judged.
    pub at: KpiSnapshot,
    /// The snapshot before it (stability), if any.
    pub previous: Option<KpiSnapshot>,
    /// Per segment, in the project's order.
    pub segments: Vec<SegmentQuality>,
}

/// Options of `quality`.
#[derive(Debug, Clone, Default)]
pub struct QualityOptions {
    /// The snapshot judged; default: the latest run.
    pub at: Option<String>,
    /// Threads and cancellation of the evaluations it needs (goal, reachability).
    pub run: crate::evaluation::RunOptions,
}

fn check(
    check: &'static str,
    value: Option<f64>,
    threshold: f64,
    pass: bool,
    reason: String,
) -> QualityCheck {
    QualityCheck { check, value, threshold, pass, reason }
}

fn percent(v: f64) -> String {
    format!("{:.1}%", v * 100.0)
}

/// The columns each segment's rule reads (a scheme tier: every tier rule of its scheme; a
/// movement: the columns of its ends).
fn columns_read(project: &Project) -> HashMap<String, Vec<String>> {
    let config = &project.config;
    let names = |rule: &str| -> Vec<String> {
        segmenta_rules::parse_rule(rule).map(|e| segmenta_rules::name_references(&e)).unwrap_or_default()
    };
    let mut read: HashMap<String, Vec<String>> = HashMap::new();
    for (name, segment) in &config.segments {
        if let Some(rule) = &segment.rule {
            read.insert(name.clone(), names(rule.get_ref()));
        }
    }
    for (scheme, config) in &config.schemes {
        let all: Vec<String> = config.tiers.iter().flat_map(|t| names(t.rule.get_ref())).collect();
        for tier in config.tiers.iter().map(|t| &t.name).chain([&config.otherwise]) {
            read.insert(format!("{scheme}.{}", tier.get_ref()), all.clone());
        }
    }
    for (name, movement) in &config.movements {
        let ends = [&movement.from, &movement.to].into_iter().flatten();
        let cols = ends.flat_map(|e| read.get(e.get_ref()).cloned().unwrap_or_default()).collect();
        read.insert(name.clone(), cols);
    }
    for columns in read.values_mut() {
        columns.sort();
        columns.dedup();
    }
    read
}

/// The share of NULLs of each column of the run's evaluation table that a rule reads.
fn missing_shares(run: &std::path::Path, columns: &HashSet<&String>) -> Result<HashMap<String, f64>> {
    let path = run.join(segmenta_store::files::TABLE);
    let present = segmenta_store::read_parquet_schema(&path)?;
    let wanted: Vec<String> = present.into_iter().filter(|c| columns.contains(c)).collect();
    if wanted.is_empty() {
        return Ok(HashMap::new());
    }
    let batch = segmenta_store::read_parquet_columns(&path, &wanted)?;
    let rows = batch.num_rows().max(1) as f64;
    Ok(wanted
        .iter()
        .zip(batch.columns())
        .map(|(name, array)| (name.clone(), array.null_count() as f64 / rows))
        .collect())
}

/// The contact entity: `[quality] contact`, else the one entity whose parent is the project's.
fn contact_entity(project: &Project) -> Result<String> {
    let config = &project.config;
    if let Some(contact) = &config.quality.contact {
        return Ok(contact.get_ref().clone());
    }
    let entity = config.project.entity.get_ref();
    let children: Vec<&String> = config
        .entities
        .iter()
        .filter(|(_, e)| e.parent.as_ref().is_some_and(|p| p.get_ref() == entity))
        .map(|(name, _)| name)
        .collect();
    match children.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(Error::Usage {
            message: format!(
                "[quality] reachable needs a contact entity, and no entity has `parent = \"{entity}\"`"
            ),
            hint: Some(
                "declare the contacts as [entities.contact] with parent, or set [quality] contact".into(),
            ),
        }),
        many => Err(Error::Usage {
            message: format!(
                "[quality] reachable: several entities belong to `{entity}` ({})",
                many.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            ),
            hint: Some("say which holds the contacts with [quality] contact = \"NAME\"".into()),
        }),
    }
}

/// Judges every segment of a snapshot.
pub(crate) fn quality(
    exec: &Exec,
    project: &Project,
    options: &QualityOptions,
    progress: &dyn Progress,
) -> Result<QualityReport> {
    let config = &project.config;
    let q = &config.quality;
    let kpi_options = KpiOptions { at: options.at.clone(), run: options.run.clone(), ..Default::default() };
    let (kpi, at, data) = kpis::kpis_and_run(exec, project, &kpi_options, progress)?;
    let previous = crate::stored::previous(project, at.as_of_micros)?;
    let before = previous.as_ref().map(|p| kpis::read_run(&p.run_dir, None, None)).transpose()?;

    progress.step("measuring the segments");
    let read = columns_read(project);
    let all_columns: HashSet<&String> = read.values().flatten().collect();
    let missing = missing_shares(&at.run_dir, &all_columns)?;
    let reachable: Option<HashMap<String, f64>> = match &q.reachable {
        Some(rule) => {
            let contact = contact_entity(project)?;
            let mut rollup = toml_edit::InlineTable::new();
            rollup.insert("over", contact.as_str().into());
            rollup.insert("expr", format!("count() where {}", rule.get_ref()).into());
            let item = toml_edit::Item::Value(toml_edit::Value::InlineTable(rollup));
            Some(kpis::one_trait(exec, project, item, at.as_of_micros, &options.run, progress)?)
        }
        None => None,
    };

    // Pairwise overlaps, counted per entity over the segments it is in.
    let order: Vec<&String> = kpi.rows.iter().map(|r| &r.name).collect();
    let index: HashMap<&str, usize> = order.iter().enumerate().map(|(i, s)| (s.as_str(), i)).collect();
    let n = order.len();
    let mut both = vec![0u64; n * n];
    let mut of_entity: HashMap<&str, Vec<usize>> = HashMap::new();
    for (segment, members) in &data.members {
        if let Some(&i) = index.get(segment.as_str()) {
            for id in members {
                of_entity.entry(id.as_str()).or_default().push(i);
            }
        }
    }
    for segments in of_entity.values() {
        for &a in segments {
            for &b in segments {
                both[a * n + b] += 1;
            }
        }
    }
    // A micro segment lies inside its macro segment by design: that overlap is not a duplicate.
    let related = |a: &str, b: &str| {
        let parent =
            |s: &str| config.segments.get(s).and_then(|c| c.parent.as_ref()).map(|p| p.get_ref().as_str());
        parent(a) == Some(b) || parent(b) == Some(a)
    };
    let population = &kpi.population;
    let lift = |row: &KpiRow| -> Vec<(&'static str, f64)> {
        let mut lifts = Vec::new();
        if let (Some(a), Some(p)) = (row.arpa, population.arpa)
            && p != 0.0
        {
            lifts.push(("ARPA", a / p));
        }
        if let (Some(c), Some(p)) = (row.conversion, population.conversion)
            && p != 0.0
        {
            lifts.push(("goal conversion", c / p));
        }
        lifts
    };

    let max_missing = q.max_missing.unwrap_or(DEFAULT_MAX_MISSING);
    let min_reachable = q.min_reachable.unwrap_or(DEFAULT_MIN_REACHABLE);
    let min_size = q.min_size.unwrap_or(DEFAULT_MIN_SIZE);
    let min_revenue_share = q.min_revenue_share.unwrap_or(DEFAULT_MIN_REVENUE_SHARE);
    let max_overlap = q.max_overlap.unwrap_or(DEFAULT_MAX_OVERLAP);
    let min_lift = q.min_lift.unwrap_or(DEFAULT_MIN_LIFT);
    let max_turnover = q.max_turnover.unwrap_or(DEFAULT_MAX_TURNOVER);
    let mut segments = Vec::new();
    for (i, row) in kpi.rows.iter().enumerate() {
        let name = row.name.as_str();
        let members = data.members.get(name).cloned().unwrap_or_default();
        let mut checks = Vec::new();

        // Measurable.
        let worst = read
            .get(name)
            .into_iter()
            .flatten()
            .filter_map(|c| missing.get(c).map(|m| (c, *m)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        checks.push(match worst {
            Some((column, share)) => check(
                "measurable",
                Some(share),
                max_missing,
                share <= max_missing,
                format!(
                    "`{column}`, the most often missing column its rule reads, is NULL for {} of entities",
                    percent(share)
                ),
            ),
            None => check(
                "measurable",
                None,
                max_missing,
                true,
                "its definition reads no column of the data".into(),
            ),
        });

        // Accessible.
        checks.push(match &reachable {
            Some(counts) => {
                let reached = members.iter().filter(|id| counts.get(*id).is_some_and(|c| *c > 0.0)).count();
                match kpis::ratio(reached as f64, members.len() as f64) {
                    Some(share) => check(
                        "accessible",
                        Some(share),
                        min_reachable,
                        share >= min_reachable,
                        format!("{} of members ({reached}) have a reachable contact", percent(share)),
                    ),
                    None => check("accessible", None, min_reachable, true, "no members".into()),
                }
            }
            None => check("accessible", None, min_reachable, true, "no [quality] reachable rule".into()),
        });

        // Substantial.
        checks.push(check(
            "substantial",
            Some(row.size as f64),
            min_size as f64,
            row.size >= min_size,
            format!("{} members ({} of the population)", row.size, percent(row.share)),
        ));
        checks.push(match (row.revenue, population.revenue) {
            (Some(revenue), Some(total)) if total > 0.0 => {
                let share = revenue / total;
                check(
                    "substantial_revenue",
                    Some(share),
                    min_revenue_share,
                    share >= min_revenue_share,
                    format!("{} of the population's revenue", percent(share)),
                )
            }
            _ => check(
                "substantial_revenue",
                None,
                min_revenue_share,
                true,
                "no [kpis] revenue (or none at all)".into(),
            ),
        });

        // Differentiated: the largest overlap with another segment.
        let closest = (0..n)
            .filter(|&j| j != i && !related(name, order[j]))
            .filter_map(|j| {
                let union = both[i * n + i] + both[j * n + j] - both[i * n + j];
                (union > 0).then(|| (j, both[i * n + j] as f64 / union as f64))
            })
            .max_by(|a, b| a.1.total_cmp(&b.1));
        checks.push(match closest {
            Some((j, jaccard)) => check(
                "differentiated",
                Some(jaccard),
                max_overlap,
                jaccard <= max_overlap,
                if jaccard > max_overlap {
                    format!("a near-duplicate of `{}` (Jaccard {jaccard:.2})", order[j])
                } else {
                    format!("overlaps `{}` the most (Jaccard {jaccard:.2})", order[j])
                },
            ),
            None => check("differentiated", None, max_overlap, true, "no other segment with members".into()),
        });

        // Actionable: some KPI differs from the population's.
        let lifts = lift(row);
        checks.push(match lifts.iter().max_by(|a, b| (a.1 - 1.0).abs().total_cmp(&(b.1 - 1.0).abs())) {
            Some((kpi_name, l)) => check(
                "actionable",
                Some(*l),
                min_lift,
                (l - 1.0).abs() >= min_lift,
                format!(
                    "{kpi_name} is {l:.2}x the population's{}",
                    if (l - 1.0).abs() < min_lift { ": it behaves like everyone else" } else { "" }
                ),
            ),
            None if row.size == 0 => check("actionable", None, min_lift, true, "no members".into()),
            None => check(
                "actionable",
                None,
                min_lift,
                true,
                "no KPI to compare (set [kpis] revenue or goal)".into(),
            ),
        });

        // Stable: turnover since the previous snapshot.
        let movement = config.movements.contains_key(name);
        checks.push(match (&before, movement) {
            (_, true) => check("stable", None, max_turnover, true, "a movement changes by design".into()),
            (None, false) => check("stable", None, max_turnover, true, "no earlier snapshot".into()),
            (Some(before), false) if !before.computed.contains(name) => {
                check("stable", None, max_turnover, true, "the earlier snapshot did not compute it".into())
            }
            (Some(before), false) => {
                let empty = HashSet::new();
                let was = before.members.get(name).unwrap_or(&empty);
                let union = was.union(&members).count();
                let changed = was.symmetric_difference(&members).count();
                match kpis::ratio(changed as f64, union as f64) {
                    Some(turnover) => check(
                        "stable",
                        Some(turnover),
                        max_turnover,
                        turnover <= max_turnover,
                        format!(
                            "{changed} of {union} members changed since the previous snapshot ({})",
                            percent(turnover)
                        ),
                    ),
                    None => check("stable", None, max_turnover, true, "no members in either snapshot".into()),
                }
            }
        });
        segments.push(SegmentQuality {
            segment: name.to_string(),
            size: row.size,
            pass: checks.iter().all(|c| c.pass),
            checks,
        });
    }
    progress.done();
    let reported = |s: &segmenta_store::catalog::Snapshot| KpiSnapshot { id: s.id, as_of: s.as_of.clone() };
    Ok(QualityReport { at: reported(&at), previous: previous.as_ref().map(reported), segments })
}
