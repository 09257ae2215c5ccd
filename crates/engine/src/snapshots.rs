//! Segments over the project's snapshots (`crate::stored`): a segment's history, and the ids
//! that moved between two snapshots.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::error::{Error, Result};
use crate::project::Project;
use crate::stored::run_at;
pub use crate::stored::snapshots;

/// A segment in one snapshot, against the snapshot before it.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPoint {
    /// The snapshot's id.
    pub snapshot: i64,
    /// Its as-of instant, RFC 3339 UTC.
    pub as_of: String,
    /// Members.
    pub size: u64,
    /// Members over the snapshot's entities (0 without entities).
    pub share: f64,
    /// Members that were not members in the previous snapshot that computed the segment (every
    /// member, for the first).
    pub entered: u64,
    /// Members of that previous snapshot that are not members any more (0 for the first).
    pub exited: u64,
    /// The snapshot `entered` and `exited` are counted against (`None` for the first): the one
    /// before, or the one before a gap of snapshots left out ([`History::left_out`]).
    pub compared_with: Option<i64>,
}

/// A segment over the snapshots ([`history`]).
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    /// One per snapshot that computed the segment, in as-of order.
    pub points: Vec<HistoryPoint>,
    /// The snapshots of the catalog left out, in as-of order.
    pub left_out: Vec<LeftOut>,
}

/// A snapshot a history leaves out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftOut {
    /// The snapshot's id.
    pub snapshot: i64,
    /// Its as-of instant, RFC 3339 UTC.
    pub as_of: String,
    /// Why: `run_folder_gone` (its run folder was deleted or moved) or `not_computed` (its run
    /// did not compute the segment, e.g. one declared later).
    pub reason: &'static str,
}

/// [`LeftOut::reason`]: the snapshot's run folder was deleted or moved.
pub const RUN_FOLDER_GONE: &str = "run_folder_gone";
/// [`LeftOut::reason`]: the snapshot's run did not compute the segment.
pub const NOT_COMPUTED: &str = "not_computed";

impl LeftOut {
    /// The reason in words, for people.
    pub fn why(&self) -> &'static str {
        match self.reason {
            RUN_FOLDER_GONE => "its run folder is gone",
            _ => "its run did not compute the segment",
        }
    }
}

/// The ids that entered and exited a segment between two snapshots, in natural order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentDiff {
    /// The segment.
    pub segment: String,
    /// Members at `to` that were not members at `from`.
    pub entered: Vec<String>,
    /// Members at `from` that are not members at `to`.
    pub exited: Vec<String>,
}

/// The members of the segments `keep` in a run folder, read once.
fn all_members(run: &Path, keep: &[String]) -> Result<HashMap<String, HashSet<String>>> {
    let (ids, segments) = segmenta_store::read_memberships(run)?;
    let mut out: HashMap<String, HashSet<String>> =
        keep.iter().map(|k| (k.clone(), HashSet::new())).collect();
    for (id, segment) in ids.iter().zip(segments.iter()) {
        if let (Some(id), Some(members)) = (id, segment.and_then(|s| out.get_mut(s))) {
            members.insert(id.to_string());
        }
    }
    Ok(out)
}

fn sorted(ids: impl Iterator<Item = String>) -> Vec<String> {
    let mut ids: Vec<String> = ids.collect();
    ids.sort_by(|a, b| crate::latest::natural_order(a, b));
    ids
}

/// A segment's size, share, entered and exited in every snapshot that computed it, in as-of
/// order.
pub fn history(project: &Project, segment: &str) -> Result<History> {
    crate::latest::check_declared(project, segment)?;
    let mut points = Vec::new();
    let mut left_out = Vec::new();
    let mut previous: Option<(i64, HashSet<String>)> = None;
    for snapshot in snapshots(project)? {
        let leave_out = |reason| LeftOut { snapshot: snapshot.id, as_of: snapshot.as_of.clone(), reason };
        if !snapshot.run_dir.is_dir() {
            left_out.push(leave_out(RUN_FOLDER_GONE));
            continue;
        }
        let summary = segmenta_store::read_run_summary(&snapshot.run_dir)?;
        if !summary.segments.iter().any(|s| s.name == segment) {
            left_out.push(leave_out(NOT_COMPUTED));
            continue;
        }
        let members: HashSet<String> =
            segmenta_store::read_members(&snapshot.run_dir, segment)?.into_iter().collect();
        let (entered, exited) = match &previous {
            None => (members.len() as u64, 0),
            Some((_, before)) => {
                (members.difference(before).count() as u64, before.difference(&members).count() as u64)
            }
        };
        let size = members.len() as u64;
        let share = if summary.entities == 0 { 0.0 } else { size as f64 / summary.entities as f64 };
        points.push(HistoryPoint {
            snapshot: snapshot.id,
            as_of: snapshot.as_of.clone(),
            size,
            share,
            entered,
            exited,
            compared_with: previous.as_ref().map(|(id, _)| *id),
        });
        previous = Some((snapshot.id, members));
    }
    Ok(History { points, left_out })
}

/// The ids that entered and exited between snapshots `from` and `to` (ids or as-of dates): of
/// `segment`, or of every segment both computed, in the project's order.
pub fn diff(project: &Project, from: &str, to: &str, segment: Option<&str>) -> Result<Vec<SegmentDiff>> {
    if let Some(segment) = segment {
        crate::latest::check_declared(project, segment)?;
    }
    let (from_dir, to_dir) = (run_at(project, from)?, run_at(project, to)?);
    let summaries =
        [segmenta_store::read_run_summary(&from_dir)?, segmenta_store::read_run_summary(&to_dir)?];
    let computed = |name: &str, i: usize| summaries[i].segments.iter().any(|s| s.name == name);
    let names: Vec<String> = match segment {
        Some(segment) => {
            for (i, dir) in [&from_dir, &to_dir].into_iter().enumerate() {
                if !computed(segment, i) {
                    let as_of = summaries[i].as_of.clone();
                    return Err(Error::SegmentNotInRun {
                        name: segment.to_string(),
                        run: dir.clone(),
                        as_of,
                    });
                }
            }
            vec![segment.to_string()]
        }
        None => {
            let names = project.config.segment_names().into_iter();
            names.filter(|name| computed(name, 0) && computed(name, 1)).collect()
        }
    };
    let (mut before, mut after) = (all_members(&from_dir, &names)?, all_members(&to_dir, &names)?);
    Ok(names
        .into_iter()
        .map(|name| {
            let (a, b) = (before.remove(&name).unwrap_or_default(), after.remove(&name).unwrap_or_default());
            SegmentDiff {
                entered: sorted(b.difference(&a).cloned()),
                exited: sorted(a.difference(&b).cloned()),
                segment: name,
            }
        })
        .collect())
}

/// One cell of a transition matrix: how many entities moved from one tier to another.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The tier at the first snapshot, or `(new)` for entities that were not entities then.
    pub from: String,
    /// The tier at the second snapshot, or `(gone)` for entities that are not entities any more.
    pub to: String,
    /// Entities.
    pub count: u64,
    /// Their share of the row (of every entity in `from` at the first snapshot).
    pub share: f64,
}

/// The transition matrix of a scheme between two snapshots.
#[derive(Debug, Clone, PartialEq)]
pub struct Transitions {
    /// The scheme (`rfm` for the RFM segments).
    pub scheme: String,
    /// The rows' tiers, in the scheme's order, then `(new)`.
    pub from_tiers: Vec<String>,
    /// The columns' tiers, in the scheme's order, then `(gone)`.
    pub to_tiers: Vec<String>,
    /// Every cell with at least one entity, row by row.
    pub cells: Vec<Transition>,
}

/// The row of an entity that was not an entity at the first snapshot (in parentheses, so that
/// it cannot be a tier's name: the demo's lifecycle has a tier `new`).
pub const NEW: &str = "(new)";
/// The column of an entity that is not an entity at the second snapshot.
pub const GONE: &str = "(gone)";

/// Each entity's tier of `column` in a run's traits.
fn tiers_of(run: &Path, column: &str) -> Result<HashMap<String, String>> {
    let path = run.join(segmenta_store::files::TRAITS);
    let mut columns =
        segmenta_store::read_text_columns(&path, &[segmenta_query::ENTITY_ID, column])?.into_iter();
    let (Some(Some(ids)), Some(Some(tiers))) = (columns.next(), columns.next()) else {
        return Err(Error::SchemeNotInRun { name: column.to_string(), run: run.to_path_buf() });
    };
    Ok(ids
        .iter()
        .zip(tiers.iter())
        .filter_map(|(id, tier)| Some((id?.to_string(), tier.unwrap_or("").to_string())))
        .collect())
}

/// The transition matrix of `scheme` (a scheme of the project, or `rfm`) between snapshots
/// `from` and `to` (ids or as-of dates), with `(new)` and `(gone)` for entities that appear or
/// leave.
pub fn transitions(project: &Project, scheme: &str, from: &str, to: &str) -> Result<Transitions> {
    let config = &project.config;
    let (column, mut order): (&str, Vec<String>) = if scheme == "rfm" && config.rfm.is_some() {
        let labels = segmenta_core::rfm::RfmSegment::ALL.iter().map(|s| s.label().to_string()).collect();
        (segmenta_core::config::RFM_TRAITS[7], labels)
    } else if let Some(declared) = config.schemes.get(scheme) {
        let mut tiers: Vec<String> = declared.tiers.iter().map(|t| t.name.get_ref().clone()).collect();
        tiers.push(declared.otherwise.get_ref().clone());
        (scheme, tiers)
    } else {
        let mut names: Vec<&str> = config.schemes.keys().map(String::as_str).collect();
        if config.rfm.is_some() {
            names.push("rfm");
        }
        let hint = match segmenta_core::config::did_you_mean(scheme, names.iter().copied()) {
            Some(best) => format!("did you mean `{best}`?"),
            None if names.is_empty() => "the project declares no scheme and no [rfm]".to_string(),
            None => format!("schemes: {}", names.join(", ")),
        };
        return Err(Error::UnknownScheme { name: scheme.to_string(), hint });
    };
    let (before, after) =
        (tiers_of(&run_at(project, from)?, column)?, tiers_of(&run_at(project, to)?, column)?);
    // Tiers the runs hold that the project no longer declares come last, in text order.
    let mut extra: Vec<String> =
        before.values().chain(after.values()).filter(|t| !order.contains(t)).cloned().collect();
    extra.sort();
    extra.dedup();
    order.extend(extra);
    // The labels of appearing and leaving entities, parenthesised again if a tier has the name.
    let label = |base: &str| {
        let mut label = base.to_string();
        while order.contains(&label) {
            label = format!("({label})");
        }
        label
    };
    let (new, gone) = (label(NEW), label(GONE));
    let mut counts: HashMap<(String, String), u64> = HashMap::new();
    for (id, tier) in &before {
        let to = after.get(id).cloned().unwrap_or_else(|| gone.clone());
        *counts.entry((tier.clone(), to)).or_default() += 1;
    }
    for (id, tier) in &after {
        if !before.contains_key(id) {
            *counts.entry((new.clone(), tier.clone())).or_default() += 1;
        }
    }
    let from_tiers: Vec<String> = order.iter().cloned().chain([new]).collect();
    let to_tiers: Vec<String> = order.iter().cloned().chain([gone]).collect();
    let mut cells = Vec::new();
    for from in &from_tiers {
        let total: u64 = to_tiers.iter().filter_map(|to| counts.get(&(from.clone(), to.clone()))).sum();
        for to in &to_tiers {
            if let Some(&count) = counts.get(&(from.clone(), to.clone())) {
                cells.push(Transition {
                    from: from.clone(),
                    to: to.clone(),
                    count,
                    share: count as f64 / total as f64,
                });
            }
        }
    }
    Ok(Transitions { scheme: scheme.to_string(), from_tiers, to_tiers, cells })
}
