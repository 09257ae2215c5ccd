//! Runs started in the background (the server's `POST /v1/runs`): one at a time per project, on
//! a thread of their own, with their progress and outcome kept for `GET /v1/runs/{id}`. A run
//! writes its folder and catalog row as `segmenta run` does (atomically), so readers keep
//! seeing the previous complete run until it is in place.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::as_of::AsOf;
use crate::engine::Engine;
use crate::error::{Error, ErrorDetail, Result};
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
}

impl RunState {
    /// `running`, `succeeded` or `failed`.
    pub fn name(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Succeeded => "succeeded",
            RunState::Failed => "failed",
        }
    }
}

/// One background run.
#[derive(Debug, Clone)]
pub struct RunStatus {
    /// Its number among this process's runs (from 1).
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
    pub error: Option<ErrorDetail>,
}

impl RunStatus {
    /// A run that starts now.
    fn running(id: u64, requested_as_of: Option<&str>) -> RunStatus {
        RunStatus {
            id,
            state: RunState::Running,
            started_at: now(),
            finished_at: None,
            requested_as_of: requested_as_of.map(String::from),
            step: None,
            position: None,
            as_of: None,
            output: None,
            entities: None,
            segments: Vec::new(),
            error: None,
        }
    }
}

/// The background runs of one project.
#[derive(Default)]
pub struct BackgroundRuns {
    runs: Arc<Mutex<Vec<RunStatus>>>,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

struct Recorded {
    runs: Arc<Mutex<Vec<RunStatus>>>,
    id: u64,
}

impl Recorded {
    fn update(&self, change: impl FnOnce(&mut RunStatus)) {
        let mut runs = match self.runs.lock() {
            Ok(runs) => runs,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(run) = runs.iter_mut().find(|r| r.id == self.id) {
            change(run);
        }
    }
}

impl Progress for Recorded {
    fn step(&self, message: &str) {
        self.update(|run| {
            run.step = Some(message.to_string());
            run.position = None;
        });
    }

    fn done(&self) {}

    fn position(&self, step: &str, done: u64, total: u64) {
        self.update(|run| run.position = Some((step.to_string(), done, total)));
    }
}

impl BackgroundRuns {
    /// No runs yet.
    pub fn new() -> BackgroundRuns {
        BackgroundRuns::default()
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Vec<RunStatus>>> {
        self.runs.lock().map_err(|_| Error::Internal("the run list's lock is poisoned".into()))
    }

    /// Starts a run of `project` as of `as_of` (a date or an RFC 3339 instant; `None`: the
    /// project's default) on a thread of its own; its id. Refused while another runs.
    pub fn start(&self, engine: Arc<Engine>, project: Arc<Project>, as_of: Option<&str>) -> Result<u64> {
        let parsed = as_of.map(AsOf::parse).transpose()?;
        let id = {
            let mut runs = self.lock()?;
            if let Some(running) = runs.iter().find(|r| r.state == RunState::Running) {
                return Err(Error::RunInProgress { id: running.id });
            }
            let id = runs.last().map_or(1, |r| r.id + 1);
            runs.push(RunStatus::running(id, as_of));
            id
        };
        let recorded = Recorded { runs: self.runs.clone(), id };
        let spawned = std::thread::Builder::new().name(format!("segmenta-run-{id}")).spawn(move || {
            let options = RunOptions { as_of: parsed, ..RunOptions::default() };
            let outcome = engine.run(&project, &options, &recorded);
            recorded.update(|run| {
                run.finished_at = Some(now());
                run.step = None;
                run.position = None;
                match outcome {
                    Ok(report) => {
                        run.state = RunState::Succeeded;
                        run.as_of = Some(report.summary.as_of.clone());
                        run.entities = Some(report.summary.entities);
                        run.output = Some(report.output);
                        run.segments =
                            report.segments.into_iter().map(|s| (s.name, s.size, s.share)).collect();
                    }
                    Err(error) => {
                        tracing::warn!(
                            run = run.id,
                            code = crate::error::ErrorCode::code(&error),
                            "a background run failed"
                        );
                        run.state = RunState::Failed;
                        run.error = Some(error.detail());
                    }
                }
            });
        });
        if let Err(e) = spawned {
            let mut runs = self.lock()?;
            runs.retain(|r| r.id != id);
            return Err(Error::Internal(format!("cannot start a run's thread: {e}")));
        }
        Ok(id)
    }

    /// Every run, newest first.
    pub fn list(&self) -> Result<Vec<RunStatus>> {
        Ok(self.lock()?.iter().rev().cloned().collect())
    }

    /// The run `id`.
    pub fn get(&self, id: u64) -> Result<RunStatus> {
        let runs = self.lock()?;
        runs.iter().find(|r| r.id == id).cloned().ok_or_else(|| Error::UnknownRun {
            id,
            hint: match runs.last() {
                Some(last) => format!("runs of this server are numbered 1 to {}", last.id),
                None => "no run was started on this server yet: POST /v1/runs starts one".into(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_run_is_refused_while_one_runs() {
        let runs = BackgroundRuns::new();
        runs.lock().expect("the lock").push(RunStatus::running(1, None));
        let engine =
            Arc::new(Engine::new(&crate::engine::EngineOptions { threads: Some(1) }).expect("an engine"));
        let project = Arc::new(Project {
            dir: PathBuf::from("."),
            file: PathBuf::from("segmenta.toml"),
            text: String::new(),
            config: segmenta_core::config::parse_project(
                "[project]\nname = \"t\"\nentity = \"a\"\n[entities.a]\nsource = \"a.csv\"\nkey = \"id\"\n",
            )
            .expect("parses"),
        });
        let refused = runs.start(engine, project, None).expect_err("refused");
        assert_eq!(crate::error::ErrorCode::code(&refused), "run_in_progress");
        assert_eq!(runs.list().expect("lists").len(), 1, "nothing was added");
        assert_eq!(crate::error::ErrorCode::code(&runs.get(2).expect_err("no run 2")), "unknown_run");
    }
}
