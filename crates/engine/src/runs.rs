//! Runs started in the background (the server's `POST /v1/runs`): one at a time per project, on
//! a thread of their own. Each is recorded in the store's run log (`segmenta_store::run_log`)
//! when it starts and when it ends, so the list survives a restart; the progress of the one
//! running is kept in memory. A run writes its folder and catalog row as `segmenta run` does
//! (atomically), so readers keep seeing the previous complete run until it is in place.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use segmenta_store::run_log::{LoggedRun, RunLog};

use crate::as_of::AsOf;
use crate::engine::Engine;
use crate::error::{Error, ErrorCode, Result};
use crate::evaluation::RunOptions;
use crate::progress::Progress;
use crate::project::Project;

/// Where a background run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Evaluating or writing.
    Running,
    /// Written: it is the latest run.
    Succeeded,
    /// Stopped by an error; nothing was written.
    Failed,
    /// The server stopped before it finished; nothing was written.
    Interrupted,
}

impl RunState {
    /// `running`, `succeeded`, `failed` or `interrupted`.
    pub fn name(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Succeeded => "succeeded",
            RunState::Failed => "failed",
            RunState::Interrupted => "interrupted",
        }
    }

    fn parse(text: &str) -> RunState {
        match text {
            "running" => RunState::Running,
            "succeeded" => RunState::Succeeded,
            "interrupted" => RunState::Interrupted,
            _ => RunState::Failed,
        }
    }
}

/// Why a background run failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunError {
    /// The error's stable code.
    pub code: String,
    /// What went wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

/// One background run.
#[derive(Debug, Clone)]
pub struct RunStatus {
    /// Its id (increasing across restarts of the server).
    pub id: u64,
    /// Where it is.
    pub state: RunState,
    /// When it started, RFC 3339.
    pub started_at: String,
    /// When it finished.
    pub finished_at: Option<String>,
    /// The as-of asked for (`None`: the project's default).
    pub requested_as_of: Option<String>,
    /// The step it is at (while running).
    pub step: Option<String>,
    /// How far a step with a known size is: (step, done, total).
    pub position: Option<(String, u64, u64)>,
    /// The run's as-of instant, once written.
    pub as_of: Option<String>,
    /// Its run folder, once written.
    pub output: Option<PathBuf>,
    /// Entities evaluated, once written.
    pub entities: Option<u64>,
    /// Segment sizes, once written: (name, size, share).
    pub segments: Vec<(String, u64, f64)>,
    /// Why it failed.
    pub error: Option<RunError>,
}

impl RunStatus {
    fn from_log(run: LoggedRun) -> RunStatus {
        RunStatus {
            id: run.id.max(0) as u64,
            state: RunState::parse(&run.state),
            started_at: run.started_at,
            finished_at: run.finished_at,
            requested_as_of: run.requested_as_of,
            step: None,
            position: None,
            as_of: run.as_of,
            output: run.output.map(PathBuf::from),
            entities: run.entities.map(|n| n.max(0) as u64),
            segments: run.segments.and_then(|text| serde_json::from_str(&text).ok()).unwrap_or_default(),
            error: run.error.map(|(code, message, hint)| RunError { code, message, hint }),
        }
    }
}

/// The step and position of the run in progress.
type Live = Arc<Mutex<Option<(u64, Option<String>, Option<(String, u64, u64)>)>>>;

/// The background runs of one project.
pub struct BackgroundRuns {
    log: Arc<Mutex<RunLog>>,
    live: Live,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn poisoned() -> Error {
    Error::Internal("the run log's lock is poisoned".into())
}

struct Recorded {
    live: Live,
    id: u64,
}

impl Recorded {
    fn update(&self, change: impl FnOnce(&mut Option<String>, &mut Option<(String, u64, u64)>)) {
        let mut live = match self.live.lock() {
            Ok(live) => live,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some((id, step, position)) = live.as_mut()
            && *id == self.id
        {
            change(step, position);
        }
    }
}

impl Progress for Recorded {
    fn step(&self, message: &str) {
        self.update(|step, position| {
            *step = Some(message.to_string());
            *position = None;
        });
    }

    fn done(&self) {}

    fn position(&self, name: &str, done: u64, total: u64) {
        self.update(|_, position| *position = Some((name.to_string(), done, total)));
    }
}

/// When a server runs the project by itself (`segmenta serve --refresh`, `--sweep`): memberships
/// then follow posted events, and windows that close as time passes, through full runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Refresh {
    /// Run when events were posted and at least this long passed since the last refresh.
    pub after_events: Option<std::time::Duration>,
    /// Run when this long passed since the last refresh, events or not.
    pub sweep: Option<std::time::Duration>,
}

impl Refresh {
    /// Whether a run is due, `since` the last refresh, with or without events `posted` since.
    pub fn due(&self, since: std::time::Duration, posted: bool) -> bool {
        self.after_events.is_some_and(|wait| posted && since >= wait)
            || self.sweep.is_some_and(|every| since >= every)
    }

    /// Whether any refresh is asked for.
    pub fn enabled(&self) -> bool {
        self.after_events.is_some() || self.sweep.is_some()
    }
}

impl BackgroundRuns {
    /// The runs of the project's store; a run a stopped server left running is marked
    /// interrupted.
    pub fn open(project: &Project) -> Result<BackgroundRuns> {
        let log = RunLog::open(&project.store_dir(), &now())?;
        Ok(BackgroundRuns { log: Arc::new(Mutex::new(log)), live: Arc::new(Mutex::new(None)) })
    }

    /// Starts a run as of the project's default (as [`Self::start`]) unless another one is
    /// running (`Ok(None)`): what a server's refresh does once [`Refresh::due`] says so.
    pub fn refresh(&self, engine: Arc<Engine>, project: Arc<Project>) -> Result<Option<u64>> {
        match self.start(engine, project, None) {
            Ok(id) => Ok(Some(id)),
            Err(Error::RunInProgress { .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Starts a run of `project` as of `as_of` (a date or an RFC 3339 instant; `None`: the
    /// project's default) on a thread of its own; its id. Refused while another runs.
    pub fn start(&self, engine: Arc<Engine>, project: Arc<Project>, as_of: Option<&str>) -> Result<u64> {
        let parsed = as_of.map(AsOf::parse).transpose()?;
        let id = {
            let log = self.log.lock().map_err(|_| poisoned())?;
            match log.start(&now(), as_of)? {
                Ok(id) => id.max(0) as u64,
                Err(running) => return Err(Error::RunInProgress { id: running.max(0) as u64 }),
            }
        };
        *self.live.lock().map_err(|_| poisoned())? = Some((id, None, None));
        let recorded = Recorded { live: self.live.clone(), id };
        let log = self.log.clone();
        let spawned = std::thread::Builder::new().name(format!("segmenta-run-{id}")).spawn(move || {
            let options = RunOptions { as_of: parsed, ..RunOptions::default() };
            let outcome = engine.run(&project, &options, &recorded);
            let mut ended = LoggedRun::ended(id as i64, RunState::Failed.name(), now());
            match outcome {
                Ok(report) => {
                    ended.state = RunState::Succeeded.name().into();
                    ended.as_of = Some(report.summary.as_of.clone());
                    ended.entities = Some(report.summary.entities as i64);
                    ended.output = Some(report.output.to_string_lossy().into_owned());
                    let sizes: Vec<(String, u64, f64)> =
                        report.segments.into_iter().map(|s| (s.name, s.size, s.share)).collect();
                    ended.segments = serde_json::to_string(&sizes).ok();
                }
                Err(error) => {
                    tracing::warn!(run = id, code = error.code(), "a background run failed");
                    let detail = error.detail();
                    ended.error = Some((detail.code.to_string(), detail.message, detail.hint));
                }
            }
            let recorded_end = log.lock().map_err(|_| poisoned()).and_then(|log| Ok(log.finish(&ended)?));
            if let Err(error) = recorded_end {
                tracing::error!(
                    run = id,
                    code = error.code(),
                    "the end of a background run was not recorded"
                );
            }
            recorded.update(|step, position| {
                *step = None;
                *position = None;
            });
        });
        if let Err(e) = spawned {
            let log = self.log.lock().map_err(|_| poisoned())?;
            let mut failed = LoggedRun::ended(id as i64, RunState::Failed.name(), now());
            failed.error = Some(("internal".into(), format!("cannot start a run's thread: {e}"), None));
            log.finish(&failed)?;
            return Err(Error::Internal(format!("cannot start a run's thread: {e}")));
        }
        Ok(id)
    }

    fn with_progress(&self, mut run: RunStatus) -> Result<RunStatus> {
        if run.state == RunState::Running
            && let Some((id, step, position)) = self.live.lock().map_err(|_| poisoned())?.as_ref()
            && *id == run.id
        {
            run.step = step.clone();
            run.position = position.clone();
        }
        Ok(run)
    }

    /// Every run, newest first.
    pub fn list(&self) -> Result<Vec<RunStatus>> {
        let runs = self.log.lock().map_err(|_| poisoned())?.list()?;
        runs.into_iter().map(|r| self.with_progress(RunStatus::from_log(r))).collect()
    }

    /// The run `id`.
    pub fn get(&self, id: u64) -> Result<RunStatus> {
        let log = self.log.lock().map_err(|_| poisoned())?;
        match log.get(id.min(i64::MAX as u64) as i64)? {
            Some(run) => {
                drop(log);
                self.with_progress(RunStatus::from_log(run))
            }
            None => {
                let last = log.list()?.first().map(|r| r.id);
                Err(Error::UnknownRun {
                    id,
                    hint: match last {
                        Some(last) => format!("runs are numbered 1 to {last}; GET /v1/runs lists them"),
                        None => "no run was started over HTTP yet: POST /v1/runs starts one".into(),
                    },
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refresh_is_due_after_events_and_their_wait_or_after_a_sweep_interval() {
        let secs = std::time::Duration::from_secs;
        let policy = Refresh { after_events: Some(secs(30)), sweep: Some(secs(3600)) };
        assert!(!policy.due(secs(10), true), "events, but not 30 s yet");
        assert!(policy.due(secs(30), true));
        assert!(!policy.due(secs(600), false), "no events, no sweep yet");
        assert!(policy.due(secs(3600), false));
        assert!(!Refresh::default().enabled() && !Refresh::default().due(secs(1 << 30), true));
    }

    fn project(dir: &std::path::Path) -> Arc<Project> {
        Arc::new(Project {
            dir: dir.to_path_buf(),
            file: dir.join("segmenta.toml"),
            text: String::new(),
            config: segmenta_core::config::parse_project(
                "[project]\nname = \"t\"\nentity = \"a\"\n[entities.a]\nsource = \"a.csv\"\nkey = \"id\"\n",
            )
            .expect("parses"),
        })
    }

    #[test]
    fn a_second_run_is_refused_while_one_runs_and_a_stopped_one_is_interrupted() {
        let dir = tempfile::tempdir().expect("a folder");
        let project = project(dir.path());
        let runs = BackgroundRuns::open(&project).expect("opens");
        // A run recorded as running (as a server that was killed leaves it).
        let running = runs.log.lock().expect("the lock").start("t", None).expect("records").expect("none");
        let engine =
            Arc::new(Engine::new(&crate::engine::EngineOptions { threads: Some(1) }).expect("an engine"));
        let refused = runs.start(engine, project.clone(), None).expect_err("refused");
        assert_eq!(refused.code(), "run_in_progress");
        assert_eq!(runs.list().expect("lists").len(), 1, "nothing was added");
        assert_eq!(runs.get(99).expect_err("no run 99").code(), "unknown_run");
        drop(runs);
        let reopened = BackgroundRuns::open(&project).expect("opens");
        let run = reopened.get(running as u64).expect("kept across the restart");
        assert_eq!(run.state, RunState::Interrupted);
        assert_eq!(run.error.map(|e| e.code), Some("interrupted".to_string()));
    }
}
