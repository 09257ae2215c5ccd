//! The project's snapshots as the store's catalog records them (`segmenta_store::catalog`):
//! every run under its as-of instant, listed, and found by id or by date for the commands that
//! read a past run (`members --at`, `history`, `diff`).

use std::path::PathBuf;

use segmenta_store::catalog::{self, Snapshot};

use crate::as_of::AsOf;
use crate::error::{Error, Result};
use crate::project::Project;

/// Every snapshot of the project, in as-of order (none before the first run).
pub fn snapshots(project: &Project) -> Result<Vec<Snapshot>> {
    match catalog::existing(&project.store_dir())? {
        Some(catalog) => Ok(catalog.list()?),
        None => Ok(Vec::new()),
    }
}

/// What `prune` removed.
#[derive(Debug, Clone)]
pub struct PruneReport {
    /// The snapshots removed (or, with `dry_run`, that would be), in as-of order.
    pub removed: Vec<Snapshot>,
    /// Snapshots left.
    pub kept: usize,
    /// Run folders outside the store (a run's `--output`) dropped from the catalog but left
    /// on disk.
    pub left_on_disk: Vec<PathBuf>,
}

/// Removes every snapshot but the `keep` newest (by as-of) and the latest run: their catalog
/// rows in one transaction, then their run folders inside the store (each renamed aside, then
/// deleted, so a crash leaves no half folder that looks like a run). With `dry_run`, nothing
/// is removed and the report says what would be.
pub fn prune(project: &Project, keep: usize, dry_run: bool) -> Result<PruneReport> {
    let store_dir = project.store_dir();
    let all = snapshots(project)?;
    let latest = segmenta_store::Store::new(&store_dir).latest().ok();
    let same = |a: &std::path::Path, b: &std::path::Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    };
    let newest: Vec<i64> = all.iter().rev().take(keep).map(|s| s.id).collect();
    let removed: Vec<Snapshot> = all
        .iter()
        .filter(|s| !newest.contains(&s.id) && !latest.as_deref().is_some_and(|l| same(l, &s.run_dir)))
        .cloned()
        .collect();
    let runs = store_dir.join("runs");
    let inside = |dir: &std::path::Path| dir.parent().is_some_and(|parent| same(parent, &runs));
    let left_on_disk: Vec<PathBuf> =
        removed.iter().filter(|s| !inside(&s.run_dir)).map(|s| s.run_dir.clone()).collect();
    let report = PruneReport { kept: all.len() - removed.len(), removed, left_on_disk };
    if dry_run || report.removed.is_empty() {
        return Ok(report);
    }
    let mut catalog = catalog::Catalog::open(&store_dir)?;
    catalog.forget(&report.removed.iter().map(|s| s.id).collect::<Vec<_>>())?;
    let io = |path: &std::path::Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    for snapshot in report.removed.iter().filter(|s| inside(&s.run_dir)) {
        let Some(name) = snapshot.run_dir.file_name() else { continue };
        let aside = runs.join(format!(".pruned-{}", name.to_string_lossy()));
        match std::fs::rename(&snapshot.run_dir, &aside) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io(&snapshot.run_dir)(e)),
        }
        std::fs::remove_dir_all(&aside).map_err(io(&aside))?;
    }
    // Folders a crash left aside.
    if let Ok(entries) = std::fs::read_dir(&runs) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(".pruned-") {
                std::fs::remove_dir_all(entry.path()).map_err(io(&entry.path()))?;
            }
        }
    }
    Ok(report)
}

/// The run folder of the snapshot `at`: its id (`3`), or the as-of it was run with (a date
/// `2025-01-31` as `run --as-of` reads it, or an RFC 3339 instant).
pub(crate) fn run_at(project: &Project, at: &str) -> Result<PathBuf> {
    Ok(snapshot_at(project, at)?.run_dir)
}

/// The snapshot `at` (an id or an as-of), whose run folder is there.
pub(crate) fn snapshot_at(project: &Project, at: &str) -> Result<Snapshot> {
    let all = snapshots(project)?;
    let found = match at.trim().parse::<i64>() {
        Ok(id) => all.iter().find(|s| s.id == id),
        Err(_) => match AsOf::parse(at.trim()) {
            Ok(as_of) => all.iter().find(|s| s.as_of_micros == as_of.instant),
            Err(_) => {
                return Err(Error::UnknownSnapshot {
                    given: at.to_string(),
                    hint: "give a snapshot's id or its as-of date, e.g. --at 3 or --at 2025-01-31 (`segmenta snapshots` lists them)".into(),
                });
            }
        },
    };
    let Some(snapshot) = found else {
        // `--at 2025-02-01` for the snapshot listed as 2025-02-01T00:00:00Z, which `run --as-of
        // 2025-01-31` made: a date means its whole day, as in `run --as-of`.
        let day_before = AsOf::parse(at.trim()).ok().filter(|_| at.trim().len() == 10).and_then(|as_of| {
            all.iter().find(|s| s.as_of_micros == as_of.instant - segmenta_core::MICROS_PER_DAY)
        });
        let hint = match (day_before, all.last()) {
            (Some(snapshot), _) => format!(
                "a date means its whole day, as in `run --as-of`: snapshot {} (as of {}) is the run as of the day before; give --at {}",
                snapshot.id, snapshot.as_of, snapshot.id
            ),
            (None, None) => "there is no snapshot yet: `segmenta run` makes one".to_string(),
            (None, Some(_)) => {
                let shown: Vec<String> =
                    all.iter().rev().take(5).map(|s| format!("{} ({})", s.id, s.as_of)).collect();
                format!("snapshots (newest first): {}; `segmenta snapshots` lists all", shown.join(", "))
            }
        };
        return Err(Error::UnknownSnapshot { given: at.to_string(), hint });
    };
    if !snapshot.run_dir.is_dir() {
        return Err(Error::Store(segmenta_store::Error::Layout {
            path: snapshot.run_dir.clone(),
            message: format!("the folder of snapshot {} is gone", snapshot.id),
        }));
    }
    Ok(snapshot.clone())
}

/// The newest snapshot as of an instant before `instant` whose run folder is still there (what
/// movement segments compare with), if any.
pub(crate) fn previous(project: &Project, instant: i64) -> Result<Option<Snapshot>> {
    Ok(snapshots(project)?.into_iter().rev().find(|s| s.as_of_micros < instant && s.run_dir.is_dir()))
}

/// The members of each of `segments` in a run folder (a segment the run did not compute has
/// none).
pub(crate) fn members_of(
    run: &std::path::Path,
    segments: &[&str],
) -> Result<std::collections::HashMap<String, Vec<String>>> {
    let (ids, names) = segmenta_store::read_memberships(run)?;
    let mut out: std::collections::HashMap<String, Vec<String>> =
        segments.iter().map(|s| (s.to_string(), Vec::new())).collect();
    for (id, name) in ids.iter().zip(names.iter()) {
        if let (Some(id), Some(members)) = (id, name.and_then(|n| out.get_mut(n))) {
            members.push(id.to_string());
        }
    }
    Ok(out)
}
