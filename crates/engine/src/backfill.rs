//! `backfill`: a snapshot at every instant of a range of dates, each the run `run --as-of D`
//! would write, from one load of the project's files and one read of the events per group of
//! instants.
//!
//! The entity tables, lookups, static lists and (CSV, JSON Lines) events are loaded once. The
//! event traits of all the instants of a group come from one scan
//! ([`segmenta_query::scan_events`]): an aggregate whose result does not depend on the order of
//! rows folds each event once and carries its state from instant to instant; the others fold
//! each event into every instant that sees it, in the order a scan at that instant alone
//! would, so every snapshot is the run as of its instant, to the bit. Rules, schemes, RFM and
//! the models then run per instant on the entity table, and each snapshot is written like a
//! run and recorded in the catalog.

use std::sync::Arc;
use std::time::Instant;

use chrono::{Datelike, Months, NaiveDate};

use crate::as_of::AsOf;
use crate::error::{Error, Result};
use crate::evaluation::{self, RunOptions, RunReport};
use crate::exec::{Exec, check_cancelled};
use crate::plan::Plan;
use crate::progress::Progress;
use crate::project::Project;
use crate::validate::validate;

/// The most snapshots one backfill writes.
pub const MAX_SNAPSHOTS: usize = 1000;

/// The per-entity state one scan may hold for all of its instants, in bytes (an estimate of
/// 24 bytes per entity, event trait and instant): more instants than fit are scanned in
/// groups, each group reading the events once.
const SCAN_STATE_BUDGET: usize = 4 << 30;

/// How far apart the snapshots are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Every {
    /// Every N days.
    Days(u32),
    /// Every N weeks.
    Weeks(u32),
    /// Every N months, on the start's day of the month (clamped to the month's end; a start on
    /// a month's last day stays on month ends).
    Months(u32),
}

impl Every {
    /// Parses `1d`, `7d`, `1w`, `1mo`, `3mo`.
    pub fn parse(text: &str) -> Result<Every> {
        let text = text.trim();
        let usage = || Error::Usage {
            message: format!("invalid --every `{text}`"),
            hint: Some("use a whole number of days, weeks or months: 1d, 7d, 1w, 2w, 1mo, 3mo".into()),
        };
        let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(usage)?;
        let (count, unit) = text.split_at(split);
        let count: u32 = count.parse().map_err(|_| usage())?;
        if count == 0 || count > 10_000 {
            return Err(usage());
        }
        match unit {
            "d" => Ok(Every::Days(count)),
            "w" => Ok(Every::Weeks(count)),
            "mo" => Ok(Every::Months(count)),
            _ => Err(usage()),
        }
    }

    /// The text it is parsed from.
    pub fn text(self) -> String {
        match self {
            Every::Days(n) => format!("{n}d"),
            Every::Weeks(n) => format!("{n}w"),
            Every::Months(n) => format!("{n}mo"),
        }
    }

    /// The `k`-th date from `start` (`k = 0` is the start).
    fn nth(self, start: NaiveDate, k: u32) -> Option<NaiveDate> {
        match self {
            Every::Days(n) => start.checked_add_days(chrono::Days::new(u64::from(n) * u64::from(k))),
            Every::Weeks(n) => start.checked_add_days(chrono::Days::new(7 * u64::from(n) * u64::from(k))),
            Every::Months(n) => {
                // Counted from the start (not from the previous date), so a day clamped in a
                // short month comes back in the next long one.
                let month_end = start.checked_add_days(chrono::Days::new(1))?.month() != start.month();
                let date = start.checked_add_months(Months::new(n.checked_mul(k)?))?;
                if month_end { last_day_of_month(date) } else { Some(date) }
            }
        }
    }
}

fn last_day_of_month(date: NaiveDate) -> Option<NaiveDate> {
    let first = date.with_day(1)?;
    first.checked_add_months(Months::new(1))?.pred_opt()
}

/// The dates of a backfill: from `from` to `to` inclusive, `every` apart.
pub fn backfill_dates(from: NaiveDate, to: NaiveDate, every: Every) -> Result<Vec<NaiveDate>> {
    if from > to {
        return Err(Error::Usage {
            message: format!("--from {from} is after --to {to}"),
            hint: Some("give the earlier date as --from".into()),
        });
    }
    let mut dates = Vec::new();
    for k in 0.. {
        match every.nth(from, k) {
            Some(date) if date <= to => dates.push(date),
            _ => break,
        }
        if dates.len() > MAX_SNAPSHOTS {
            return Err(Error::Usage {
                message: format!(
                    "--from {from} --to {to} every {} makes more than {MAX_SNAPSHOTS} snapshots",
                    every.text()
                ),
                hint: Some("choose a shorter range or a longer --every".into()),
            });
        }
    }
    Ok(dates)
}

/// Parses a `--from` / `--to` date.
pub fn parse_date(flag: &str, text: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").map_err(|_| Error::Usage {
        message: format!("invalid {flag} `{text}`"),
        hint: Some("use a date such as 2025-01-31 (each date means its whole day, as in run --as-of)".into()),
    })
}

/// Options of a backfill.
#[derive(Debug, Clone)]
pub struct BackfillOptions {
    /// The first date.
    pub from: NaiveDate,
    /// The last date (included when the steps land on it).
    pub to: NaiveDate,
    /// How far apart.
    pub every: Every,
    /// Threads, bad rows, strictness and cancellation as for a run (`as_of` and `output` are
    /// not read).
    pub run: RunOptions,
}

/// One snapshot a backfill wrote.
#[derive(Debug, Clone)]
pub struct BackfilledSnapshot {
    /// The snapshot's id in the catalog.
    pub id: i64,
    /// The date given.
    pub date: NaiveDate,
    /// The as-of instant (the end of the date), RFC 3339.
    pub as_of: String,
    /// The run folder.
    pub output: std::path::PathBuf,
    /// Entities.
    pub entities: u64,
    /// Segments.
    pub segments: u64,
}

/// What a backfill did.
#[derive(Debug, Clone)]
pub struct BackfillReport {
    /// The snapshots, in date order.
    pub snapshots: Vec<BackfilledSnapshot>,
    /// How many times the events were read (one per group of instants).
    pub event_scans: usize,
    /// Wall time, milliseconds.
    pub elapsed_ms: u64,
}

/// Runs a backfill.
pub(crate) fn backfill(
    exec: &Exec,
    project: &Project,
    options: &BackfillOptions,
    progress: &dyn Progress,
) -> Result<BackfillReport> {
    let started = Instant::now();
    let dates = backfill_dates(options.from, options.to, options.every)?;
    progress.step("validating project");
    let plan = validate(project)?;
    progress.done();
    backfill_plan(exec, &plan, &dates, options, progress, started).map_err(|e| plan.project.locate(e))
}

fn backfill_plan(
    exec: &Exec,
    plan: &Plan,
    dates: &[NaiveDate],
    options: &BackfillOptions,
    progress: &dyn Progress,
    started: Instant,
) -> Result<BackfillReport> {
    let run = &options.run;
    let loaded = evaluation::load(exec, plan, run, progress)?;
    let instants: Vec<AsOf> = dates.iter().map(|d| AsOf::end_of(*d)).collect();
    let entities = loaded
        .base
        .entities
        .iter()
        .map(|e| e.table.batches.iter().map(|b| b.num_rows()).sum::<usize>())
        .max()
        .unwrap_or(0)
        .max(1);
    let aggregates = loaded.base.traits.len().max(1);
    let per_instant = entities.saturating_mul(aggregates).saturating_mul(24);
    let group = (SCAN_STATE_BUDGET / per_instant).clamp(1, instants.len().max(1));
    // Snapshot n is written on a thread of its own while snapshot n + 1 is evaluated (one write
    // at a time in flight). Movement segments read the previous snapshot from the catalog, so
    // with movements each write is finished before the next evaluation.
    let movements = plan.derived.iter().any(|d| matches!(d, segmenta_query::Derived::Movement { .. }));
    let mut reports: Vec<RunReport> = Vec::with_capacity(dates.len());
    let mut event_scans = 0;
    std::thread::scope(|scope| -> Result<()> {
        let mut pending: Option<std::thread::ScopedJoinHandle<'_, Result<RunReport>>> = None;
        let mut finish =
            |pending: &mut Option<std::thread::ScopedJoinHandle<'_, Result<RunReport>>>| -> Result<()> {
                if let Some(handle) = pending.take() {
                    let report =
                        handle.join().map_err(|_| Error::Internal("a snapshot writer panicked".into()))??;
                    reports.push(report);
                }
                Ok(())
            };
        for (g, chunk) in instants.chunks(group).enumerate() {
            check_cancelled(&run.cancel)?;
            let scanned: Vec<Option<Arc<segmenta_query::ScannedEvents>>> = if loaded.base.events.is_some() {
                progress.step(&format!(
                    "reading the events for {} snapshot(s) as of {} to {}",
                    chunk.len(),
                    dates[g * group],
                    dates[g * group + chunk.len() - 1]
                ));
                let micros: Vec<i64> = chunk.iter().map(|a| a.instant).collect();
                let _span = tracing::info_span!("backfill_scan", instants = chunk.len()).entered();
                let scanned = segmenta_query::scan_events(&loaded.base, &micros).map_err(Error::Query)?;
                event_scans += 1;
                progress.done();
                scanned.into_iter().map(Some).collect()
            } else {
                chunk.iter().map(|_| None).collect()
            };
            for (i, (as_of, scanned)) in chunk.iter().zip(scanned).enumerate() {
                check_cancelled(&run.cancel)?;
                if movements {
                    finish(&mut pending)?;
                }
                let n = g * group + i;
                progress.position("snapshots", n as u64, dates.len() as u64);
                progress.step(&format!("snapshot {} of {} as of {}", n + 1, dates.len(), dates[n]));
                let evaluated = {
                    let _span =
                        tracing::info_span!("backfill_snapshot", as_of = %as_of.to_rfc3339()).entered();
                    let quiet = crate::progress::NoProgress;
                    evaluation::evaluate_loaded(
                        exec,
                        plan,
                        run,
                        &loaded,
                        *as_of,
                        scanned,
                        &quiet,
                        Instant::now(),
                    )?
                };
                finish(&mut pending)?;
                let span = tracing::Span::current();
                pending =
                    Some(scope.spawn(move || span.in_scope(|| crate::run::write_snapshot(plan, evaluated))));
                progress.done();
            }
        }
        finish(&mut pending)
    })?;
    let mut snapshots: Vec<BackfilledSnapshot> = reports
        .into_iter()
        .zip(dates)
        .zip(&instants)
        .map(|((report, date), as_of)| BackfilledSnapshot {
            id: 0,
            date: *date,
            as_of: as_of.to_rfc3339(),
            output: report.output,
            entities: report.summary.entities,
            segments: report.segments.len() as u64,
        })
        .collect();
    progress.position("snapshots", dates.len() as u64, dates.len() as u64);
    // The latest run becomes the newest snapshot of the catalog (a backfill of past dates
    // leaves a later run the latest).
    let store = segmenta_store::Store::new(plan.project.store_dir());
    let catalog = segmenta_store::catalog::Catalog::open(store.root())?;
    let listed = catalog.list()?;
    for (snapshot, as_of) in snapshots.iter_mut().zip(&instants) {
        snapshot.id =
            listed.iter().find(|s| s.as_of_micros == as_of.instant).map(|s| s.id).unwrap_or_default();
    }
    if let Some(newest) = listed.last() {
        store.set_latest(&newest.run_dir)?;
    }
    Ok(BackfillReport { snapshots, event_scans, elapsed_ms: started.elapsed().as_millis() as u64 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("a date")
    }

    fn dates(from: &str, to: &str, every: &str) -> Vec<String> {
        backfill_dates(date(from), date(to), Every::parse(every).expect("parses"))
            .expect("dates")
            .iter()
            .map(|d| d.to_string())
            .collect()
    }

    #[test]
    fn months_keep_the_day_and_month_ends_stay_month_ends() {
        let ends = dates("2025-01-31", "2025-12-31", "1mo");
        assert_eq!(ends.len(), 12);
        assert_eq!(&ends[..4], ["2025-01-31", "2025-02-28", "2025-03-31", "2025-04-30"]);
        assert_eq!(ends[11], "2025-12-31");
        // A 30th is not a month end in January: clamped in February, back to the 30th after.
        assert_eq!(
            dates("2024-01-30", "2024-04-30", "1mo"),
            ["2024-01-30", "2024-02-29", "2024-03-30", "2024-04-30"]
        );
        assert_eq!(
            dates("2024-11-30", "2025-03-01", "1mo"),
            ["2024-11-30", "2024-12-31", "2025-01-31", "2025-02-28"]
        );
        assert_eq!(dates("2025-01-15", "2025-07-14", "3mo"), ["2025-01-15", "2025-04-15"]);
    }

    #[test]
    fn days_and_weeks_step_evenly_and_the_range_is_checked() {
        assert_eq!(dates("2025-01-01", "2025-01-03", "1d"), ["2025-01-01", "2025-01-02", "2025-01-03"]);
        assert_eq!(dates("2025-01-01", "2025-01-20", "1w"), ["2025-01-01", "2025-01-08", "2025-01-15"]);
        assert_eq!(dates("2025-01-01", "2025-01-01", "1mo"), ["2025-01-01"]);
        for bad in ["", "mo", "0d", "1y", "1.5d", "-1d", "1 d"] {
            assert!(Every::parse(bad).is_err(), "{bad}");
        }
        let reversed = backfill_dates(date("2025-02-01"), date("2025-01-01"), Every::Days(1));
        assert_eq!(reversed.expect_err("reversed").code(), "usage");
        let many = backfill_dates(date("2000-01-01"), date("2025-01-01"), Every::Days(1));
        assert!(many.expect_err("too many").to_string().contains("more than 1000 snapshots"));
    }
}
