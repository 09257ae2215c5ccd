//! Memberships that follow events: a server keeps the evaluation of its run live
//! ([`crate::evaluation::LiveEvaluation`]) and folds every posted batch into it, without a full
//! run.
//!
//! ```text
//! start:  stored run ──as-of──► evaluate_live (events file + event log, read while no batch
//!         is appended; the scan's states kept) ──► live view, changes from the stored run
//! batch:  POST /v1/events ──► event log (durable) ──► pending ──► absorb: the batch scanned
//!         alone and merged into the kept states; traits, RFM, scores, schemes and segments of
//!         every entity evaluated again from them (no event is read again) ──► live view,
//!         changes (entered / exited) recorded in the catalog
//! ```
//!
//! The live view is what `segmenta run` as of the same instant computes over the events file
//! and the log (the property test in `tests/integration/live.rs` holds that), because it is the
//! same evaluation: only the event scan is replaced by the kept states. Population-wide
//! values (RFM quintiles, CLV fits) are recomputed on every batch, so they stay exact too.
//! A batch the kept state cannot take exactly asks for a fresh start instead ([`Applied::Restart`]):
//! an event before a model's training cutoff (churn trains on earlier instants), or a new
//! entity made from the events' keys.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use segmenta_query::ingest::BadRows;
use segmenta_store::catalog::{Catalog, NewChange};

use crate::as_of::AsOf;
use crate::error::{Error, Result};
use crate::evaluation::{LiveEvaluation, evaluate_live, read_posted};
use crate::exec::Exec;
use crate::intake::Intake;
use crate::project::Project;
use crate::serving::{LiveState, ServedProject, ServedRun};

/// A live evaluation of a served run.
pub(crate) struct Live {
    evaluation: LiveEvaluation,
    /// The stored run it started from.
    base: Arc<ServedRun>,
    /// The view now.
    view: Arc<ServedRun>,
    /// Posted events folded in since the start.
    events: u64,
    /// The events this server appended that the view holds ([`Intake::appended`]).
    through: u64,
}

/// What became of a batch.
pub(crate) enum Applied {
    /// The view moved (or stayed: no membership changed).
    Updated,
    /// The batch cannot be folded in exactly: start again from the stored run and the log
    /// (which holds the batch).
    Restart(&'static str),
}

impl Live {
    /// Evaluates `base` (the stored run served now) again at its instant over the events file
    /// and the event log, keeping the scan; records the changes from the stored run.
    pub(crate) fn start(
        exec: &Exec,
        project: &Project,
        base: Arc<ServedRun>,
        intake: &Intake,
    ) -> Result<Live> {
        let _span = tracing::info_span!("live_start").entered();
        let plan = crate::validate::validate(project)?;
        let events = plan.events.as_ref().ok_or(Error::NoEvents)?;
        let as_of = AsOf::parse(base.as_of())?;
        let (posted, through) = intake.read_quietly(|| read_posted(&plan, &events.schema))?;
        // Rows set aside by the run are set aside again; a run without any was strict.
        let bad_rows = if base.summary.rejected_rows > 0 { BadRows::Reject } else { BadRows::Strict };
        let (evaluation, output) = evaluate_live(exec, &plan, posted, as_of, bad_rows)?;
        let mut live = Live { evaluation, view: base.clone(), base, events: 0, through };
        live.publish(project, &output, None)?;
        Ok(live)
    }

    /// The stored run it started from.
    pub(crate) fn base(&self) -> &Arc<ServedRun> {
        &self.base
    }

    /// The live view.
    pub(crate) fn view(&self) -> &Arc<ServedRun> {
        &self.view
    }

    /// Folds `batches` (the accepted rows of posted batches, in order, the last of them the
    /// `through`-th event this server appended) in.
    pub(crate) fn apply(
        &mut self,
        exec: &Exec,
        project: &Project,
        batches: &[RecordBatch],
        through: u64,
    ) -> Result<Applied> {
        let events = self.evaluation.events().ok_or(Error::NoEvents)?;
        let (key, time) = (events.key.clone(), events.time.clone());
        if let Some(cutoff) = self.evaluation.trained_until
            && earliest(batches, &time)?.is_some_and(|t| t < cutoff)
        {
            return Ok(Applied::Restart("an event before the churn model's training cutoff"));
        }
        if !self.evaluation.event_entity_keys.is_empty() {
            for batch in batches {
                let Some(column) = batch.column_by_name(&key) else { continue };
                let text = cast(column, &DataType::Utf8).map_err(segmenta_query::Error::from)?;
                let new_key = text
                    .as_string::<i32>()
                    .iter()
                    .flatten()
                    .any(|k| self.evaluation.event_entity_keys.iter().any(|keys| !keys.contains(k)));
                if new_key {
                    return Ok(Applied::Restart("a new entity among the events' keys"));
                }
            }
        }
        let started = Instant::now();
        let (output, rows) = self.evaluation.absorb(exec, batches)?;
        tracing::info!(
            target: "segmenta::live",
            evaluated = rows.as_ref().map_or("every row".to_string(), |r| format!("{} rows", r.len())),
            ms = started.elapsed().as_millis() as u64,
            "batch evaluated"
        );
        self.events += batches.iter().map(|b| b.num_rows() as u64).sum::<u64>();
        self.through = through;
        self.publish(project, &output, rows.as_deref())?;
        Ok(Applied::Updated)
    }

    /// Makes `output` the view, recording the changes from the view before; `rows`: the only
    /// rows of the table that may have changed, when the evaluation says so.
    fn publish(
        &mut self,
        project: &Project,
        output: &segmenta_query::EvalOutput,
        rows: Option<&[u32]>,
    ) -> Result<()> {
        let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let state = LiveState {
            events: self.events,
            through: self.through,
            updated_at: at.clone(),
            last_change: None,
        };
        let (mut next, changes) = match rows {
            Some(rows) => self.view.patched_view(output, rows, state)?,
            None => {
                let next = ServedRun::live_view(&self.base, output, state)?;
                let changes = self.view.changes_to(&next);
                (next, changes)
            }
        };
        let rows: Vec<NewChange<'_>> = changes
            .iter()
            .flat_map(|(segment, entered, exited)| {
                let entered =
                    entered.iter().map(move |id| NewChange { segment, entity_id: id, entered: true });
                let exited =
                    exited.iter().map(move |id| NewChange { segment, entity_id: id, entered: false });
                entered.chain(exited)
            })
            .collect();
        let last = match rows.is_empty() {
            true => self.view.live().and_then(|l| l.last_change),
            false => Catalog::open(&project.store_dir())?.record_changes(&at, self.base.as_of(), &rows)?,
        };
        next.set_last_change(last);
        tracing::info!(target: "segmenta::live", changes = rows.len(), events = self.events, "live view updated");
        self.view = Arc::new(next);
        Ok(())
    }
}

/// The earliest time in the `time` column of `batches`.
fn earliest(batches: &[RecordBatch], time: &str) -> Result<Option<i64>> {
    let mut earliest: Option<i64> = None;
    for batch in batches {
        let Some(column) = batch.column_by_name(time) else { continue };
        let Some(times) = column.as_primitive_opt::<arrow::datatypes::TimestampMicrosecondType>() else {
            return Err(Error::Internal("posted times are not in microseconds".into()));
        };
        for i in 0..times.len() {
            if times.is_valid(i) {
                let t = times.value(i);
                earliest = Some(earliest.map_or(t, |e| e.min(t)));
            }
        }
    }
    Ok(earliest)
}

impl ServedProject {
    /// Makes memberships follow posted events (`crate::live`): a thread keeps the served run's
    /// evaluation live, folds every accepted batch into it and serves the result; it starts
    /// again when a later run lands or the project file is edited, and stops with the last
    /// reference to `self`.
    pub fn follow_events(self: &Arc<Self>, engine: Arc<crate::engine::Engine>) -> Result<()> {
        let served = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("segmenta-live".into())
            .spawn(move || {
                let mut follower = Follower { live: None, retry_at: None, failed: None };
                while let Some(project) = served.upgrade() {
                    let busy = follower.step(&project, &engine);
                    drop(project);
                    if !busy {
                        std::thread::sleep(LIVE_POLL);
                    }
                }
            })
            .map(|_| ())
            .map_err(|e| Error::Internal(format!("cannot start the live thread: {e}")))
    }
}

/// How often the live thread looks for posted batches when idle.
const LIVE_POLL: Duration = Duration::from_millis(20);

/// How long the live thread waits before it looks again at a project without a run or without
/// events.
const LIVE_RETRY: Duration = Duration::from_secs(1);

/// The live thread's state.
struct Follower {
    /// The live evaluation and the project generation it was made for.
    live: Option<(Live, u64)>,
    retry_at: Option<Instant>,
    /// The stored run and project generation a start failed for: not tried again until one
    /// of them changes (the failure is logged once).
    failed: Option<(std::path::PathBuf, u64)>,
}

impl Follower {
    /// One step: (re)start the live evaluation when it is missing or stale, else fold the
    /// pending batches in. Whether it did anything.
    fn step(&mut self, served: &ServedProject, engine: &crate::engine::Engine) -> bool {
        if self.retry_at.is_some_and(|t| Instant::now() < t) {
            return false;
        }
        let Ok(stored) = served.current_stored() else {
            // No run yet: look again in a while.
            self.retry_at = Some(Instant::now() + LIVE_RETRY);
            return false;
        };
        let generation = served.generation();
        let fresh = self
            .live
            .as_ref()
            .is_some_and(|(live, g)| *g == generation && live.base().run_dir == stored.run_dir);
        if !fresh {
            if self.failed.as_ref().is_some_and(|(dir, g)| *dir == stored.run_dir && *g == generation) {
                return false;
            }
            self.live = None;
            served.set_live_view(None);
            let project = served.project();
            if project.config.events.is_none() {
                self.retry_at = Some(Instant::now() + LIVE_RETRY);
                return false;
            }
            let run_dir = stored.run_dir.clone();
            match Live::start(engine.exec(), &project, stored, served.intake()) {
                Ok(live) => {
                    served.set_live_view(Some(live.view().clone()));
                    self.live = Some((live, generation));
                    (self.retry_at, self.failed) = (None, None);
                }
                Err(error) => {
                    served.intake().stop_pending();
                    tracing::warn!(target: "segmenta::live", code = crate::error::ErrorCode::code(&error), "memberships cannot follow events until the next run or edit: {error}");
                    self.failed = Some((run_dir, generation));
                }
            }
            return true;
        }
        let Some((live, _)) = self.live.as_mut() else { return false };
        let (batches, through) = match served.intake().take_pending() {
            Ok((batches, through)) if !batches.is_empty() => (batches, through),
            _ => return false,
        };
        match live.apply(engine.exec(), &served.project(), &batches, through) {
            Ok(Applied::Updated) => served.set_live_view(Some(live.view().clone())),
            Ok(Applied::Restart(why)) => {
                tracing::info!(target: "segmenta::live", "evaluating again from the stored run: {why}");
                self.live = None;
            }
            Err(error) => {
                tracing::warn!(target: "segmenta::live", code = crate::error::ErrorCode::code(&error), "a posted batch could not be folded in: {error}");
                self.live = None;
            }
        }
        true
    }
}
